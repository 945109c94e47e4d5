//! `bulk-audit disclosures`: an accounting of disclosures per patient (HIPAA §164.528(b)(2): date,
//! recipient, what was sent), read from a finished audit's `resources` table alone, without
//! re-reading any dump.

mod read;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::output::{self, ColumnData, Format, Table, Values};

pub(crate) use read::ResourceRow;

/// One patient's disclosure in one export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Disclosure {
    pub(crate) patient_id: String,
    pub(crate) export_time: Option<i64>,
    pub(crate) client_id: Option<String>,
    pub(crate) level: String,
    pub(crate) types: Vec<String>,
    /// `None` where the export is incomplete and this patient is not among its rows: it may
    /// have sent part of their record, which the audit cannot tell.
    pub(crate) resource_count: Option<i64>,
    pub(crate) version_count: Option<i64>,
    /// Each version sent, as `Type/id/_history/vid`.
    pub(crate) versions: Vec<String>,
    /// Why it was asked for, as far as the logs show it: the request and the client's scopes.
    pub(crate) purpose: String,
    /// `complete`, or `incomplete: ` and why (from the audit's manifest).
    pub(crate) completeness: String,
    pub(crate) export_id: String,
}

/// What `bulk-audit disclosures` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    Table(Format),
    Html,
}

/// Reads `audit_dir`'s resources table (Parquet or CSV, whichever is there) and writes the
/// disclosures of `patients` (all when empty) to `out` (standard output for CSV and HTML
/// without it).
pub(crate) fn run(
    audit_dir: &Path,
    patients: &[String],
    clients: &[String],
    form: Form,
    out: Option<&PathBuf>,
) -> Result<usize> {
    if let Some(out) = out {
        if output::overlapping(out, audit_dir) {
            return Err(Error::Usage(format!(
                "--out {}: inside the audit it reads (--audit {}): an output never writes into its input",
                out.display(),
                audit_dir.display()
            )));
        }
        if std::fs::symlink_metadata(out).is_ok_and(|m| m.file_type().is_symlink() || m.is_dir()) {
            return Err(Error::Usage(format!(
                "--out {}: a symbolic link or a folder: bulk-audit writes a new file there only in place of a file",
                out.display()
            )));
        }
    }
    let mut sw = crate::stopwatch::Stopwatch::new();
    let mut rows = read::resources(audit_dir)?;
    sw.lap("resources table: read");
    let mut incomplete = read::incomplete_exports(audit_dir)?;
    if !clients.is_empty() {
        let of = |c: &Option<String>| c.as_ref().is_some_and(|c| clients.contains(c));
        rows.retain(|r| of(&r.client_id));
        incomplete.retain(|x| of(&x.client_id));
    }
    let mut list = accounting(&rows, patients);
    with_incomplete_exports(&mut list, &rows, patients, &incomplete);
    let purposes = read::purposes(audit_dir)?;
    for d in &mut list {
        d.purpose = purposes.get(&d.export_id).cloned().unwrap_or_default();
    }
    sw.lap("accounting");
    let table = table(&list);
    let text = match form {
        Form::Table(Format::Parquet) => None,
        Form::Table(Format::Csv) => {
            let mut buf = Vec::new();
            output::csv_text(&table, &mut buf);
            Some(buf)
        }
        Form::Html => Some(html(&list, audit_dir).into_bytes()),
    };
    match (out, text) {
        (Some(path), Some(bytes)) => write_atomically(path, |tmp| {
            output::write_text(tmp, std::str::from_utf8(&bytes).map_err(|e| Error::Internal(e.to_string()))?)
        })?,
        (Some(path), None) => write_atomically(path, |tmp| output::write_table(&table, tmp, Format::Parquet))?,
        (None, Some(bytes)) => output::terminal::to_stdout(&bytes)?,
        (None, None) => return Err(Error::Usage("--format parquet needs --out FILE".into())),
    }
    sw.lap("written");
    Ok(list.len())
}

/// The accounting as a self-contained page: per patient, each disclosure.
fn html(list: &[Disclosure], audit_dir: &Path) -> String {
    use crate::output::html::{esc, page, SEARCH_BOX};
    use std::fmt::Write as _;
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>Accounting of disclosures</h1>\n<p class=\"muted\">HIPAA §164.528(b)(2), from the audit in \
         <code>{}</code>: for each patient, each export that sent part of their record. {} disclosures.</p>\n{SEARCH_BOX}",
        esc(&audit_dir.display().to_string()),
        list.len()
    );
    let mut by_patient: BTreeMap<&str, Vec<&Disclosure>> = BTreeMap::new();
    for d in list {
        by_patient.entry(&d.patient_id).or_default().push(d);
    }
    for (patient, ds) in by_patient {
        let _ = writeln!(
            b,
            "<div data-search><h4>Patient <span class=\"id\">{}</span></h4>\n<table><tr><th>date</th><th>recipient</th>\
             <th>level</th><th>types</th><th>resources</th><th>versions</th><th>purpose (request, scopes)</th><th>export</th></tr>",
            esc(patient)
        );
        for d in ds {
            let _ = writeln!(
                b,
                "<tr><td>{}</td><td class=\"id\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td \
                 class=\"id\">{}</td></tr>",
                esc(&d.export_time.map(|t| crate::timestamp::Instant(t).to_rfc3339()).unwrap_or_default()),
                esc(d.client_id.as_deref().unwrap_or("—")),
                esc(&d.level),
                esc(&d.types.join(", ")),
                d.resource_count.map(|n| n.to_string()).unwrap_or_else(|| "unknown".into()),
                d.version_count.map(|n| n.to_string()).unwrap_or_else(|| "unknown".into()),
                if d.versions.is_empty() {
                    String::new()
                } else {
                    let ids: Vec<String> =
                        d.versions.iter().map(|v| format!("<div class=\"id\">{}</div>", esc(v))).collect();
                    format!("<details><summary>version ids</summary>{}</details>", ids.concat())
                },
                esc(&d.purpose),
                esc(&d.export_id)
            );
        }
        b.push_str("</table></div>\n");
    }
    page("Accounting of disclosures", &b)
}

/// One disclosure per (patient, export) among the rows with a patient, sorted by patient, then
/// export time and id. Rows without a patient (resources outside every compartment) disclose no
/// patient's record and are left out.
pub(crate) fn accounting(rows: &[ResourceRow], patients: &[String]) -> Vec<Disclosure> {
    let wanted: BTreeSet<&str> = patients.iter().map(String::as_str).collect();
    type Key<'a> = (&'a str, Option<i64>, &'a str);
    let mut groups: BTreeMap<Key, Vec<&ResourceRow>> = BTreeMap::new();
    for r in rows {
        let Some(p) = r.patient_id.as_deref() else { continue };
        if wanted.is_empty() || wanted.contains(p) {
            groups.entry((p, r.export_time, &r.export_id)).or_default().push(r);
        }
    }
    groups
        .into_iter()
        .map(|((patient, time, export), rows)| {
            let types: BTreeSet<&str> = rows.iter().map(|r| r.resource_type.as_str()).collect();
            let resources: BTreeSet<(&str, &str)> =
                rows.iter().map(|r| (r.resource_type.as_str(), r.resource_id.as_str())).collect();
            let versions: BTreeSet<(&str, &str, &str)> = rows
                .iter()
                .map(|r| (r.resource_type.as_str(), r.resource_id.as_str(), r.version_id.as_str()))
                .collect();
            Disclosure {
                patient_id: patient.to_string(),
                export_time: time,
                client_id: rows[0].client_id.clone(),
                level: rows[0].level.clone(),
                types: types.into_iter().map(str::to_string).collect(),
                resource_count: Some(resources.len() as i64),
                version_count: Some(versions.len() as i64),
                versions: versions.iter().map(|(t, id, v)| format!("{t}/{id}/_history/{v}")).collect(),
                purpose: String::new(),
                completeness: "complete".into(),
                export_id: export.to_string(),
            }
        })
        .collect()
}

/// Marks the disclosures of incomplete exports, and adds, for every patient of the accounting,
/// each incomplete export they are not among the rows of (its rows are unknown: it may have sent
/// part of their record), with unknown counts. Sorted again by patient, time and export.
fn with_incomplete_exports(
    list: &mut Vec<Disclosure>,
    rows: &[ResourceRow],
    patients: &[String],
    incomplete: &[read::IncompleteExport],
) {
    if incomplete.is_empty() {
        return;
    }
    let mut everyone: BTreeSet<String> = patients.iter().cloned().collect();
    if everyone.is_empty() {
        everyone = rows.iter().filter_map(|r| r.patient_id.clone()).collect();
    }
    for x in incomplete {
        let said = format!("incomplete: {}", x.reasons.join("; "));
        let mut listed: BTreeSet<String> = BTreeSet::new();
        for d in list.iter_mut().filter(|d| d.export_id == x.export_id) {
            d.completeness = said.clone();
            listed.insert(d.patient_id.clone());
        }
        for p in everyone.iter().filter(|p| !listed.contains(*p)) {
            list.push(Disclosure {
                patient_id: p.clone(),
                export_time: x.export_time,
                client_id: x.client_id.clone(),
                level: x.level.clone(),
                types: Vec::new(),
                resource_count: None,
                version_count: None,
                versions: Vec::new(),
                purpose: String::new(),
                export_id: x.export_id.clone(),
                completeness: format!("{said}; whether it sent part of this record is unknown"),
            });
        }
    }
    list.sort_by(|a, b| {
        (&a.patient_id, a.export_time, &a.export_id).cmp(&(&b.patient_id, b.export_time, &b.export_id))
    });
}

fn table(list: &[Disclosure]) -> Table {
    let text = |f: &dyn Fn(&Disclosure) -> Option<String>| Values::Text(list.iter().map(f).collect());
    let int = |f: &dyn Fn(&Disclosure) -> Option<i64>| Values::Int(list.iter().map(f).collect());
    Table::new(vec![
        ColumnData { name: "patient_id", values: text(&|d| Some(d.patient_id.clone())) },
        ColumnData { name: "export_time", values: Values::Time(list.iter().map(|d| d.export_time).collect()) },
        ColumnData { name: "client_id", values: text(&|d| d.client_id.clone()) },
        ColumnData { name: "level", values: text(&|d| Some(d.level.clone())) },
        ColumnData { name: "types", values: Values::List(list.iter().map(|d| Some(d.types.clone())).collect()) },
        ColumnData { name: "resource_count", values: int(&|d| d.resource_count) },
        ColumnData { name: "version_count", values: int(&|d| d.version_count) },
        ColumnData { name: "versions", values: Values::List(list.iter().map(|d| Some(d.versions.clone())).collect()) },
        ColumnData { name: "purpose", values: text(&|d| Some(d.purpose.clone()).filter(|p| !p.is_empty())) },
        ColumnData { name: "export_id", values: text(&|d| Some(d.export_id.clone())) },
        ColumnData { name: "completeness", values: text(&|d| Some(d.completeness.clone())) },
    ])
}

/// Writes to a hidden name beside `path`, then renames it into place: never a half-written file.
fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let name = path.file_name().ok_or_else(|| Error::Usage(format!("--out {}: not a file name", path.display())))?;
    let tmp = path.with_file_name(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id()));
    // A signal removes the temporary file, as it removes an audit's staging folder.
    output::register_temporary(&tmp);
    let written = write(&tmp).and_then(|_| std::fs::rename(&tmp, path).map_err(|e| Error::output(path, e)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    output::forget_temporary(&tmp);
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(patient: Option<&str>, export: &str, t: i64, ty: &str, id: &str, v: &str) -> ResourceRow {
        ResourceRow {
            export_id: export.into(),
            client_id: Some("c".into()),
            export_time: Some(t),
            level: "group".into(),
            patient_id: patient.map(str::to_string),
            resource_type: ty.into(),
            resource_id: id.into(),
            version_id: v.into(),
        }
    }

    #[test]
    fn one_line_per_patient_and_export_counting_resources_and_versions() {
        let rows = vec![
            row(Some("p1"), "e1", 2, "Observation", "o1", "1"),
            row(Some("p1"), "e1", 2, "Observation", "o1", "2"),
            row(Some("p1"), "e1", 2, "Patient", "p1", "7"),
            row(None, "e1", 2, "Location", "l1", "1"),
            row(Some("p2"), "e1", 2, "Patient", "p2", "3"),
            row(Some("p1"), "e0", 1, "Patient", "p1", "6"),
        ];
        let all = accounting(&rows, &[]);
        type Row<'a> = (&'a str, &'a str, Vec<String>, Option<i64>, Option<i64>);
        let got: Vec<Row> = all
            .iter()
            .map(|d| (d.patient_id.as_str(), d.export_id.as_str(), d.types.clone(), d.resource_count, d.version_count))
            .collect();
        assert_eq!(
            got,
            vec![
                ("p1", "e0", vec!["Patient".to_string()], Some(1), Some(1)),
                ("p1", "e1", vec!["Observation".to_string(), "Patient".to_string()], Some(2), Some(3)),
                ("p2", "e1", vec!["Patient".to_string()], Some(1), Some(1)),
            ]
        );
        let only = accounting(&rows, &["p2".to_string()]);
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].patient_id, "p2");
    }
}
