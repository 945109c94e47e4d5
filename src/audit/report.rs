//! `report.html`: the audit for the people who sign it, the answer first. Which exports are
//! incomplete; who received what (per client: exports, patients, resources) and what needs
//! attention; per client, then per export, who asked for what, what the scopes allowed, what was
//! sent and each finding explained; an accounting of disclosures per patient (HIPAA
//! §164.528(b)(2)); and last what was audited (inputs with hashes, the logs' span and gaps, the
//! options). Aggregates only, so it stays small on a
//! whole hospital's history; every string from the inputs is escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::output_tables::export_order;
use super::AuditResult;
use crate::output::html::{self, esc};
use crate::rules::findings::{Finding, FindingKind};

/// Version ids are listed per disclosure up to this many rows in the audit; beyond, the page
/// points to the `resources` table, so it stays small.
const VERSION_IDS_UP_TO: usize = 20_000;

/// The whole page.
pub(super) fn render(r: &AuditResult, manifest: &serde_json::Value) -> String {
    let mut b = String::new();
    let rows: usize = r.resolutions.iter().map(|x| x.rows.len()).sum();
    let _ = write!(
        b,
        "<h1>bulk-audit report</h1>\n<p class=\"muted\">What every FHIR <code>$export</code> in these logs sent, \
         version by version, as reconstructed offline by bulk-audit {} from the files listed at the end. {} exports, {} resource \
         rows.</p>\n{}",
        esc(env!("CARGO_PKG_VERSION")),
        r.events.len(),
        rows,
        html::SEARCH_BOX
    );
    // Before any table: an answer the inputs cannot give is said first, never left as a zero.
    let incomplete: Vec<(usize, Vec<String>)> = super::output_tables::export_order(r)
        .into_iter()
        .map(|i| (i, super::completeness::incomplete_because(r, i)))
        .filter(|(_, reasons)| !reasons.is_empty())
        .collect();
    if !incomplete.is_empty() {
        let _ = writeln!(
            b,
            "<div class=\"finding\" id=\"incomplete\"><strong>{} of {} exports are incomplete</strong>: their rows \
             depend on what these inputs do not hold, so what they list (or do not) is not the whole answer.<ul>",
            incomplete.len(),
            r.events.len()
        );
        for (i, reasons) in &incomplete {
            let _ = writeln!(
                b,
                "<li>Export <span class=\"id\">{}</span>: {}</li>",
                esc(&r.events[*i].id),
                reasons.iter().map(|x| esc(x)).collect::<Vec<_>>().join("; ")
            );
        }
        b.push_str("</ul></div>\n");
    }
    // The answer first (who received what, how many patients, what needs attention), then each
    // export, the accounting per patient, and last how it was established.
    answer(&mut b, r);
    exports(&mut b, r);
    disclosures(&mut b, r, rows <= VERSION_IDS_UP_TO);
    general_findings(&mut b, &r.general_findings);
    audited(&mut b, r, manifest);
    html::page("bulk-audit report", &b)
}

/// Who received what: per client, its exports (accepted, refused, incomplete), the distinct
/// patients and resources sent and the rows; then what needs attention, the findings by kind.
fn answer(b: &mut String, r: &AuditResult) {
    b.push_str(
        "<h2 id=\"answer\">Who received what</h2>\n<table><tr><th>client</th><th>exports</th><th>refused</th>\
         <th>incomplete</th><th>patients</th><th>resources</th><th>rows</th><th>findings</th></tr>\n",
    );
    #[derive(Default)]
    struct Tally {
        exports: usize,
        refused: usize,
        incomplete: usize,
        patients: std::collections::BTreeSet<Option<u32>>,
        resources: std::collections::BTreeSet<u32>,
        rows: usize,
        findings: usize,
    }
    let mut by_client: BTreeMap<Option<&str>, Tally> = BTreeMap::new();
    for i in export_order(r) {
        let (e, x) = (&r.events[i], &r.resolutions[i]);
        let t = by_client.entry(e.client_id.as_deref()).or_default();
        t.exports += 1;
        t.refused += usize::from(!e.accepted);
        t.incomplete += usize::from(!super::completeness::incomplete_because(r, i).is_empty());
        t.patients.extend(x.rows.iter().filter(|row| row.patient.is_some()).map(|row| row.patient));
        t.resources.extend(x.rows.iter().map(|row| row.resource));
        t.rows += x.rows.len();
        t.findings += x.findings.len();
    }
    for (client, t) in &by_client {
        let _ = writeln!(
            b,
            "<tr><td class=\"id\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(client.unwrap_or("(no client id logged)")),
            t.exports,
            t.refused,
            t.incomplete,
            t.patients.len(),
            t.resources.len(),
            t.rows,
            t.findings
        );
    }
    b.push_str(
        "</table>\n<p class=\"muted\">Patients and resources are distinct across a client's exports; rows are \
         (resource version, patient) pairs. How this was established (the inputs, their hashes, the options) is at \
         the end.</p>\n",
    );
    let mut kinds: BTreeMap<FindingKind, usize> = BTreeMap::new();
    for f in r.resolutions.iter().flat_map(|x| &x.findings).chain(&r.general_findings) {
        *kinds.entry(f.kind).or_default() += 1;
    }
    if kinds.is_empty() {
        b.push_str("<p>Nothing needs attention: no finding.</p>\n");
        return;
    }
    b.push_str("<h3 id=\"attention\">What needs attention</h3>\n<ul>\n");
    for (kind, n) in kinds {
        let _ = writeln!(b, "<li><b>{}</b> ×{n}: {}</li>", kind.as_str(), esc(kind.check_next()));
    }
    b.push_str("</ul>\n");
}

fn audited(b: &mut String, r: &AuditResult, manifest: &serde_json::Value) {
    b.push_str(
        "<h2 id=\"audited\">What was audited</h2>\n<h3>Inputs</h3>\n<table><tr><th>role</th><th>path</th>\
                <th>bytes</th><th>SHA-256</th><th>lines</th><th>skipped</th></tr>\n",
    );
    for i in &r.inputs {
        let _ = writeln!(
            b,
            "<tr><td>{}</td><td class=\"id\">{}</td><td>{}</td><td class=\"id\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(i.role.as_str()),
            esc(&i.path),
            i.size,
            esc(&i.sha256),
            i.lines,
            i.lines_skipped
        );
    }
    b.push_str("</table>\n<h3>Time span of the logs</h3>\n");
    let c = &r.coverage;
    let _ = writeln!(
        b,
        "<p>From <b>{}</b> to <b>{}</b> ({} timed lines).</p>",
        esc(c.first.as_deref().unwrap_or("unknown")),
        esc(c.last.as_deref().unwrap_or("unknown")),
        c.lines_with_time
    );
    if c.gaps.is_empty() {
        b.push_str("<p>No gap longer than <code>--max-log-gap</code>.</p>\n");
    } else {
        b.push_str("<p>Gaps: exports in them are <b>not</b> in this audit.</p>\n<table><tr><th>from</th><th>to</th><th>hours</th></tr>\n");
        for g in &c.gaps {
            let _ = writeln!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{:.1}</td></tr>",
                esc(&g.from),
                esc(&g.to),
                g.seconds / 3600.0
            );
        }
        b.push_str("</table>\n");
    }
    b.push_str("<h3>Options</h3>\n<table>\n");
    if let Some(options) = manifest["options"].as_object() {
        for (k, v) in options {
            let shown = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "—".into(),
                other => other.to_string(),
            };
            let _ =
                writeln!(b, "<tr><th>--{}</th><td class=\"id\">{}</td></tr>", esc(&k.replace('_', "-")), esc(&shown));
        }
    }
    b.push_str("</table>\n");
}

fn exports(b: &mut String, r: &AuditResult) {
    b.push_str("<h2 id=\"exports\">Exports, per client</h2>\n");
    let mut by_client: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for i in export_order(r) {
        by_client.entry(r.events[i].client_id.as_deref()).or_default().push(i);
    }
    for (client, list) in by_client {
        let _ = writeln!(
            b,
            "<h3>Client <span class=\"id\">{}</span> — {}</h3>",
            esc(client.unwrap_or("(no client id logged)")),
            crate::output::terminal::counted(list.len() as u64, "export")
        );
        for i in list {
            export(b, r, i);
        }
    }
}

fn export(b: &mut String, r: &AuditResult, i: usize) {
    let (e, x) = (&r.events[i], &r.resolutions[i]);
    let class = if e.accepted { "export" } else { "export rejected" };
    let _ = writeln!(
        b,
        "<div class=\"{class}\" data-search><h4>Export <span class=\"id\">{}</span> at {}</h4>",
        esc(&e.id),
        esc(&e.time.map(|t| t.to_rfc3339()).unwrap_or_else(|| "an unknown time".into()))
    );
    let reasons = super::completeness::incomplete_because(r, i);
    if !reasons.is_empty() {
        let _ = writeln!(
            b,
            "<p class=\"finding\"><strong>Incomplete</strong>: {}</p>",
            reasons.iter().map(|x| esc(x)).collect::<Vec<_>>().join("; ")
        );
    }
    b.push_str("<table>\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(b, "<tr><th>{k}</th><td>{v}</td></tr>");
    };
    let label = x.client_label.as_deref().map(|l| format!(" ({})", esc(l))).unwrap_or_default();
    row("client", format!("<span class=\"id\">{}</span>{label}", esc(e.client_id.as_deref().unwrap_or("—"))));
    if let Some(u) = &e.user_id {
        row("user", format!("<span class=\"id\">{}</span>", esc(u)));
    }
    row("request", format!("<code>{} {}</code>", esc(&e.method), esc(&e.url)));
    row(
        "answer",
        match (e.status, e.accepted) {
            (Some(s), true) => format!("{s}, accepted"),
            (Some(s), false) => format!("{s}, refused: nothing was sent"),
            (None, a) => format!("no status logged; {}", if a { "taken as accepted" } else { "refused" }),
        },
    );
    let level = match (&e.group_id, &e.tenant) {
        (Some(g), Some(t)) => format!(
            "{} <span class=\"id\">{}</span>, tenant <span class=\"id\">{}</span>",
            e.level.as_str(),
            esc(g),
            esc(t)
        ),
        (Some(g), None) => format!("{} <span class=\"id\">{}</span>", e.level.as_str(), esc(g)),
        (None, Some(t)) => format!("{}, tenant <span class=\"id\">{}</span>", e.level.as_str(), esc(t)),
        (None, None) => e.level.as_str().to_string(),
    };
    row("level", level);
    row("asked for", e.params.types.as_ref().map(|t| esc(&t.join(", "))).unwrap_or_else(|| "every type".into()));
    if x.resolved {
        row(
            "scopes",
            if x.scopes.is_empty() { "—".into() } else { format!("<code>{}</code>", esc(&x.scopes.join(" "))) },
        );
        row(
            "allowed",
            match &x.allowed_types {
                Some(a) => format!("{} types: {}", a.len(), esc(&a.iter().cloned().collect::<Vec<_>>().join(", "))),
                None => "every FHIR type (see the findings)".into(),
            },
        );
        if !x.types_not_in_history.is_empty() {
            row(
                "not in the history",
                format!(
                    "{} types: {} (no version, and no file or table named for them)",
                    x.types_not_in_history.len(),
                    esc(&x.types_not_in_history.join(", "))
                ),
            );
        }
        if !x.types_none_sent.is_empty() {
            row(
                "not in the history, none sent",
                format!(
                    "{} types: {} (no version in the history; the server's BulkExportStatus lists no file of them)",
                    x.types_none_sent.len(),
                    esc(&x.types_none_sent.join(", "))
                ),
            );
        }
        let sent: Vec<String> = x.counts.iter().map(|(t, n)| format!("{} {}", esc(t), n)).collect();
        row("sent", if sent.is_empty() { "nothing".into() } else { sent.join(", ") });
        row("patients", x.patient_count(e).to_string());
        row("rows", format!("{} (resource versions × patients)", x.rows.len()));
        row(
            "server's status",
            match r.statuses[i].as_ref() {
                Some(s) => format!(
                    "BulkExportStatus <span class=\"id\">{}</span>: {}",
                    esc(&s.id),
                    esc(s.status.as_deref().unwrap_or("no status"))
                ),
                None => "no BulkExportStatus matched".into(),
            },
        );
    }
    b.push_str("</table>\n");
    findings(b, &x.findings);
    b.push_str("</div>\n");
}

/// Findings grouped by kind: what it means, what to check next, a few examples.
fn findings(b: &mut String, list: &[Finding]) {
    let mut by_kind: BTreeMap<FindingKind, Vec<&Finding>> = BTreeMap::new();
    for f in list {
        by_kind.entry(f.kind).or_default().push(f);
    }
    for (kind, fs) in by_kind {
        let _ = write!(
            b,
            "<div class=\"finding\"><b>{}</b> ×{}: {}. <i>Next:</i> {}",
            kind.as_str(),
            fs.len(),
            esc(&kind.when().replace('`', "")),
            esc(kind.check_next())
        );
        b.push_str("<ul>");
        for f in fs.iter().take(5) {
            let what = [f.resource_type.as_str(), f.resource_id.as_str(), f.version_id.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join("/");
            let _ = write!(b, "<li><span class=\"id\">{}</span> {}</li>", esc(&what), esc(&f.detail));
        }
        if fs.len() > 5 {
            let _ = write!(b, "<li class=\"muted\">… {} more in findings</li>", fs.len() - 5);
        }
        b.push_str("</ul></div>\n");
    }
}

/// The accounting of disclosures: per patient, each export that sent any of their record.
fn disclosures(b: &mut String, r: &AuditResult, with_versions: bool) {
    let h = &r.history;
    // Each patient's rows as (export rank, resource, version), gathered by interned patient id
    // rather than in trees keyed by name (see BENCHMARKS.md); the patients are then listed by
    // name, each export's types by name.
    let order = export_order(r);
    let mut rows_of: Vec<Vec<(u32, u32, u32)>> = vec![Vec::new(); h.patient_count()];
    for (rank, &i) in order.iter().enumerate() {
        for row in &r.resolutions[i].rows {
            if let Some(p) = row.patient {
                rows_of[p as usize].push((rank as u32, row.resource, row.version));
            }
        }
    }
    let mut patients: Vec<u32> = (0..rows_of.len() as u32).filter(|&p| !rows_of[p as usize].is_empty()).collect();
    patients.sort_unstable_by(|&a, &b| h.patient_name(a).cmp(h.patient_name(b)));
    let _ =
        writeln!(
        b,
        "<h2 id=\"disclosures\">Accounting of disclosures, per patient</h2>\n<p class=\"muted\">HIPAA §164.528(b)(2): \
         for each patient, each disclosure's date, recipient, what was sent and its purpose as far as the logs show it \
         (the request and the client's scopes). {} patients. Resources outside every patient's compartment are in the \
         resources table only.{}</p>",
        patients.len(),
        if with_versions { "" } else { " Version ids: see the resources table or <code>bulk-audit disclosures</code>." }
    );
    for p in patients {
        let _ = writeln!(
            b,
            "<div data-search><h4>Patient <span class=\"id\">{}</span></h4>\n<table><tr><th>date</th><th>recipient</th>\
             <th>export</th><th>what was sent</th><th>purpose (request, scopes)</th></tr>",
            esc(h.patient_name(p))
        );
        let mut rows = std::mem::take(&mut rows_of[p as usize]);
        rows.sort_unstable();
        rows.dedup();
        for per_export in rows.chunk_by(|a, b| a.0 == b.0) {
            let i = order[per_export[0].0 as usize];
            let (e, x) = (&r.events[i], &r.resolutions[i]);
            // Distinct resources per type name.
            let mut typed: Vec<(&str, u32)> = per_export
                .iter()
                .map(|&(_, res, _)| (h.type_name(h.resources[res as usize].resource_type), res))
                .collect();
            typed.sort_unstable();
            typed.dedup();
            let sent: Vec<String> =
                typed.chunk_by(|a, b| a.0 == b.0).map(|t| format!("{} {}", esc(t[0].0), t.len())).collect();
            let mut what = format!("{} ({} versions)", sent.join(", "), per_export.len());
            if with_versions {
                what.push_str("<details><summary>version ids</summary>");
                for &(_, res, v) in per_export {
                    let resource = &h.resources[res as usize];
                    let vid = resource.versions[v as usize].version_id.to_string();
                    let _ = write!(
                        what,
                        "<div class=\"id\">{}/{}/_history/{}</div>",
                        esc(h.type_name(resource.resource_type)),
                        esc(&resource.id),
                        esc(&vid)
                    );
                }
                what.push_str("</details>");
            }
            let _ = writeln!(
                b,
                "<tr><td>{}</td><td class=\"id\">{}</td><td class=\"id\">{}</td><td>{what}</td><td><code>{} {}</code><br>{}</td></tr>",
                esc(&e.time.map(|t| t.to_rfc3339()).unwrap_or_default()),
                esc(e.client_id.as_deref().unwrap_or("—")),
                esc(&e.id),
                esc(&e.method),
                esc(&e.url),
                esc(&x.scopes.join(" "))
            );
        }
        b.push_str("</table></div>\n");
    }
}

fn general_findings(b: &mut String, list: &[Finding]) {
    b.push_str("<h2 id=\"general\">Findings about the inputs</h2>\n");
    if list.is_empty() {
        b.push_str("<p>None: no log gap, no conflicting versions, no status without its kickoff.</p>\n");
    } else {
        b.push_str("<div data-search>");
        findings(b, list);
        b.push_str("</div>\n");
    }
}
