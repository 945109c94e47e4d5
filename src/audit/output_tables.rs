//! The audit's answer as tables: `resources` (computed cell by cell from the resolutions, never
//! stored as strings), `exports` and `findings`.

use super::AuditResult;
use crate::bodies::Bodies;
use crate::output::{self, Cell, ColumnData, Decimal, Kind, Rows, Table, TableBuilder, Values};
use crate::rules::findings::Finding;
use crate::source::{self, InputFile};
use crate::version::{Source, VersionId};

/// The history files' names as given, for the `source` column and messages: where a version
/// was read is `file:line`, with `#entryN` for a Bundle entry.
pub(crate) struct SourceNames {
    names: Vec<String>,
    /// Whether each name is a CSV field as it is (no quotes needed).
    plain: Vec<bool>,
}

/// Text a source position is written into: a `String` cell or a CSV buffer.
trait Text {
    fn add(&mut self, s: &[u8]);
}

impl Text for String {
    fn add(&mut self, s: &[u8]) {
        // Only file names (UTF-8, from `display`), digits and ASCII are added.
        self.push_str(std::str::from_utf8(s).expect("UTF-8 text"));
    }
}

impl Text for Vec<u8> {
    fn add(&mut self, s: &[u8]) {
        self.extend_from_slice(s);
    }
}

impl SourceNames {
    pub(crate) fn new(files: &[InputFile]) -> SourceNames {
        let names: Vec<String> = files.iter().map(|f| source::display(&f.path)).collect();
        let plain = names
            .iter()
            .map(|n| {
                let mut field = Vec::new();
                output::push_csv_field(&mut field, n.as_bytes());
                field == n.as_bytes()
            })
            .collect();
        SourceNames { names, plain }
    }

    fn push(&self, s: &Source, out: &mut impl Text) {
        out.add(self.names[s.file as usize].as_bytes());
        out.add(b":");
        out.add(Decimal::of(s.line).as_bytes());
        if let Some(entry) = s.entry {
            out.add(b"#entry");
            out.add(Decimal::of(entry.index().into()).as_bytes());
        }
    }

    /// The name of history file number `file`, as given.
    pub(crate) fn name(&self, file: u32) -> &str {
        &self.names[file as usize]
    }

    /// `file:line`, with `#entryN` for a Bundle entry.
    pub(crate) fn text(&self, s: &Source) -> String {
        let mut out = String::new();
        self.push(s, &mut out);
        out
    }
}

fn text(v: impl Into<String>) -> Option<String> {
    let s = v.into();
    (!s.is_empty()).then_some(s)
}

/// The export order of the output: (T, export id).
pub(super) fn export_order(r: &AuditResult) -> Vec<usize> {
    let mut order: Vec<usize> = (0..r.events.len()).collect();
    order.sort_by(|&a, &b| (r.events[a].time, &r.events[a].id).cmp(&(r.events[b].time, &r.events[b].id)));
    order
}

/// The `resources` table, computed cell by cell from the resolutions (and the bodies when
/// asked): nothing is copied into strings.
pub(crate) struct ResourceRows<'a> {
    r: &'a AuditResult,
    sources: SourceNames,
    /// (export index, row index) in output order.
    order: Vec<(u32, u32)>,
    bodies: Option<&'a Bodies>,
    schema: Vec<(&'static str, Kind)>,
}

impl<'a> ResourceRows<'a> {
    pub(crate) fn new(r: &'a AuditResult, bodies: Option<&'a Bodies>) -> ResourceRows<'a> {
        let sources = SourceNames::new(&r.history_files);
        let order = export_order(r)
            .into_iter()
            .flat_map(|i| (0..r.resolutions[i].rows.len() as u32).map(move |j| (i as u32, j)))
            .collect();
        let mut schema = vec![
            ("export_id", Kind::Text),
            ("client_id", Kind::Text),
            ("export_time", Kind::Time),
            ("level", Kind::Text),
            ("group_id", Kind::Text),
            ("patient_id", Kind::Text),
            ("resource_type", Kind::Text),
            ("resource_id", Kind::Text),
            ("version_id", Kind::Text),
            ("last_updated", Kind::Time),
            ("source", Kind::Text),
        ];
        if bodies.is_some() {
            schema.push(("resource", Kind::Text));
        }
        ResourceRows { r, sources, order, bodies, schema }
    }

    /// Asks for the row's version and id to be brought into the cache: versions live in one
    /// allocation per resource and ids in another, so each row read without this is a cache
    /// miss or two.
    fn prefetch(&self, row: usize) {
        let Some(&(i, j)) = self.order.get(row) else { return };
        let x = &self.r.resolutions[i as usize].rows[j as usize];
        let res = &self.r.history.resources[x.resource as usize];
        crate::index::prefetch(res.versions.as_ptr().wrapping_add(x.version as usize));
        crate::index::prefetch(res.id.as_ptr());
    }
}

impl Rows for ResourceRows<'_> {
    fn schema(&self) -> &[(&'static str, Kind)] {
        &self.schema
    }

    fn len(&self) -> usize {
        self.order.len()
    }

    fn cell<'s>(&'s self, row: usize, col: usize, scratch: &'s mut String) -> Cell<'s> {
        let (i, j) = self.order[row];
        let e = &self.r.events[i as usize];
        let x = &self.r.resolutions[i as usize].rows[j as usize];
        let h = &self.r.history;
        let res = &h.resources[x.resource as usize];
        let v = &res.versions[x.version as usize];
        let opt = |s: Option<&'s str>| s.map(Cell::Text).unwrap_or(Cell::Null);
        match col {
            0 => Cell::Text(&e.id),
            1 => opt(e.client_id.as_deref()),
            2 => e.time.map(|t| Cell::Time(t.0)).unwrap_or(Cell::Null),
            3 => Cell::Text(e.level.as_str()),
            4 => opt(e.group_id.as_deref()),
            5 => opt(x.patient.map(|p| h.patient_name(p))),
            6 => Cell::Text(h.type_name(res.resource_type)),
            7 => Cell::Text(&res.id),
            8 => match &v.version_id {
                VersionId::Text(t) => Cell::Text(t),
                VersionId::Number(n) => {
                    Decimal::of(*n).push_to(scratch);
                    Cell::Text(scratch)
                }
            },
            9 => Cell::Time(v.last_updated.0),
            10 => {
                self.sources.push(&v.source, scratch);
                Cell::Text(scratch)
            }
            // A body that cannot be read back is noted in `bodies` and fails the run after the
            // table is written (the output is then never committed).
            _ => match self.bodies.and_then(|b| b.cell((x.resource, x.version), scratch)) {
                Some(body) => Cell::Text(body),
                None => Cell::Null,
            },
        }
    }

    #[cfg(feature = "parquet")]
    fn prefetch_row(&self, row: usize) {
        self.prefetch(row);
    }

    /// The same text as cell by cell, faster: the export's five columns and the type are
    /// formatted once per run of rows that share them, numbers and times on the stack.
    fn csv_rows(&self, rows: std::ops::Range<usize>, buf: &mut Vec<u8>) {
        let h = &self.r.history;
        let mut scratch = String::new();
        // The export columns (with their trailing comma) of the export `prefix_of`.
        let (mut prefix, mut prefix_of) = (Vec::new(), u32::MAX);
        // The resource_type column (with its trailing comma) of the type `type_of`.
        let (mut type_field, mut type_of) = (Vec::new(), u32::MAX);
        for row in rows {
            // A row a few ahead is fetched while this one is written.
            self.prefetch(row + 8);
            let (i, j) = self.order[row];
            if i != prefix_of {
                prefix.clear();
                for col in 0..5 {
                    scratch.clear();
                    output::push_csv_cell(&mut prefix, self.cell(row, col, &mut scratch));
                    prefix.push(b',');
                }
                prefix_of = i;
            }
            let x = &self.r.resolutions[i as usize].rows[j as usize];
            let res = &h.resources[x.resource as usize];
            let v = &res.versions[x.version as usize];
            if res.resource_type != type_of {
                type_field.clear();
                output::push_csv_field(&mut type_field, h.type_name(res.resource_type).as_bytes());
                type_field.push(b',');
                type_of = res.resource_type;
            }
            buf.extend_from_slice(&prefix);
            if let Some(p) = x.patient {
                output::push_csv_field(buf, h.patient_name(p).as_bytes());
            }
            buf.push(b',');
            buf.extend_from_slice(&type_field);
            output::push_csv_field(buf, res.id.as_bytes());
            buf.push(b',');
            match &v.version_id {
                VersionId::Text(t) => output::push_csv_field(buf, t.as_bytes()),
                VersionId::Number(n) => buf.extend_from_slice(Decimal::of(*n).as_bytes()),
            }
            buf.push(b',');
            crate::timestamp::push_rfc3339(v.last_updated.0, buf);
            buf.push(b',');
            if self.sources.plain[v.source.file as usize] {
                // `name:line#entryN` needs quotes only when the name does.
                self.sources.push(&v.source, buf);
            } else {
                scratch.clear();
                output::push_csv_cell(buf, self.cell(row, 10, &mut scratch));
            }
            if self.bodies.is_some() {
                buf.push(b',');
                scratch.clear();
                output::push_csv_cell(buf, self.cell(row, 11, &mut scratch));
            }
            buf.push(b'\n');
        }
    }
}

fn join<'a>(items: impl IntoIterator<Item = &'a String>, sep: &str) -> Option<String> {
    text(items.into_iter().map(String::as_str).collect::<Vec<_>>().join(sep))
}

/// The `exports` table: one row per kickoff found (accepted or rejected).
pub(crate) fn exports_table(r: &AuditResult) -> Table {
    exports_rows(r, false)
}

/// The `exports` rows as a plan holds them for the SQL (`planned_exports`, sql/audit.sql): keyed
/// by `export_key` (the kickoff's number), with the times in exact nanoseconds too, and without
/// what needs the rows (`resource_count`, `row_count`, `finding_count`, and a system export's
/// `patient_count`), which the SQL counts.
pub(crate) fn planned_exports_table(r: &AuditResult) -> Table {
    exports_rows(r, true)
}

/// The columns of `exports`.
const EXPORT_COLUMNS: [(&str, Kind); 36] = {
    use Kind::{Bool, Int, List, Text, Time};
    [
        ("export_id", Text),
        ("client_id", Text),
        ("user_id", Text),
        ("export_time", Time),
        ("request_end", Time),
        ("method", Text),
        ("url", Text),
        ("status", Int),
        ("accepted", Bool),
        ("resolved", Bool),
        ("level", Text),
        ("tenant", Text),
        ("group_id", Text),
        ("group_version", Text),
        ("client_version", Text),
        ("scopes", List),
        ("access_policies", List),
        ("allowed_types", List),
        ("requested_types", List),
        ("exported_types", List),
        ("since", Text),
        ("until", Text),
        ("type_filter", Text),
        ("elements", Text),
        ("output_format", Text),
        ("patient_param", Text),
        ("patient_count", Int),
        ("resource_count", Int),
        ("row_count", Int),
        ("finding_count", Int),
        ("status_resource_id", Text),
        ("status_resource_status", Text),
        ("status_transaction_time", Time),
        ("source", Text),
        ("completeness", Text),
        ("incomplete_because", Text),
    ]
};

fn exports_rows(r: &AuditResult, planned: bool) -> Table {
    let mut schema = Vec::with_capacity(EXPORT_COLUMNS.len() + 4);
    if planned {
        schema.push(("export_key", Kind::Int));
    }
    schema.extend(EXPORT_COLUMNS);
    if planned {
        schema.extend([
            ("export_time_ns", Kind::Int),
            ("request_end_ns", Kind::Int),
            ("status_transaction_time_ns", Kind::Int),
        ]);
    }
    let mut b = TableBuilder::new(&schema);
    for i in export_order(r) {
        let e = &r.events[i];
        let x = &r.resolutions[i];
        let st = r.statuses[i].as_ref();
        let counted = x.resolved && !planned;
        let patients_known = x.resolved && (!planned || e.level != crate::rules::kickoff::Level::System);
        let allowed = match &x.allowed_types {
            Some(a) => Some(a.iter().cloned().collect()),
            None if x.resolved => Some(vec!["*".into()]),
            None => None,
        };
        kickoff_cells(b.row(), e)
            .text("group_version", x.group_version.as_deref())
            .text("client_version", x.client_version.as_deref())
            .list("scopes", Some(x.scopes.to_vec()))
            .list("access_policies", Some(x.access_policies.to_vec()))
            .list("allowed_types", allowed)
            .list("exported_types", Some(x.exported_types.iter().cloned().collect()))
            .text("status_resource_id", st.map(|s| s.id.as_str()))
            .text("status_resource_status", st.and_then(|s| s.status.as_deref()))
            .time("status_transaction_time", st.and_then(|s| s.transaction_time).map(|t| t.0))
            .int("patient_count", patients_known.then(|| x.patient_count(e) as i64))
            .int("resource_count", counted.then(|| x.resource_count() as i64))
            .int("row_count", counted.then_some(x.rows.len() as i64))
            .int("finding_count", (!planned).then_some(x.findings.len() as i64))
            .flag("resolved", Some(x.resolved));
        if planned {
            b.int("export_key", Some(i as i64))
                .int("export_time_ns", e.time.map(|t| t.0))
                .int("request_end_ns", e.request_end().map(|t| t.0))
                .int("status_transaction_time_ns", st.and_then(|s| s.transaction_time).map(|t| t.0));
        }
        let (completeness, because) = super::completeness::cells(r, i);
        b.text("completeness", Some(completeness)).text("incomplete_because", because.as_deref());
    }
    b.finish()
}

/// The columns of `exports` that a kickoff tells by itself, before it is resolved: what
/// `bulk-audit exports` lists from the logs alone, as the exports table names and writes them.
const KICKOFF_COLUMNS: [&str; 20] = [
    "export_id",
    "client_id",
    "user_id",
    "export_time",
    "request_end",
    "method",
    "url",
    "status",
    "accepted",
    "level",
    "tenant",
    "group_id",
    "requested_types",
    "since",
    "until",
    "type_filter",
    "elements",
    "output_format",
    "patient_param",
    "source",
];

/// Sets the cells of KICKOFF_COLUMNS in the row being built: one writer of them for the exports
/// table, the plan's and `bulk-audit exports`.
fn kickoff_cells<'b>(b: &'b mut TableBuilder, e: &crate::rules::kickoff::ExportEvent) -> &'b mut TableBuilder {
    b.text("export_id", Some(&e.id))
        .text("client_id", e.client_id.as_deref())
        .text("user_id", e.user_id.as_deref())
        .time("export_time", e.time.map(|t| t.0))
        .time("request_end", e.request_end().map(|t| t.0))
        .text("method", Some(&e.method))
        .text("url", Some(&e.url))
        .int("status", e.status.map(i64::from))
        .flag("accepted", Some(e.accepted))
        .text("level", Some(e.level.as_str()))
        .text("tenant", e.tenant.as_deref())
        .text("group_id", e.group_id.as_deref())
        .list("requested_types", e.params.types.clone())
        .text("since", e.params.since_text.as_deref())
        .text("until", e.params.until_text.as_deref())
        .text("type_filter", join(&e.params.type_filter, " ").as_deref())
        .text("elements", join(&e.params.elements, ",").as_deref())
        .text("output_format", e.params.output_format.as_deref())
        .text("patient_param", join(&e.params.patients, ",").as_deref())
        .text("source", Some(&e.source))
}

/// `bulk-audit exports`: the kickoffs the logs hold, in the exports table's kickoff columns.
pub(crate) fn kickoffs_table<'a>(events: impl Iterator<Item = &'a crate::rules::kickoff::ExportEvent>) -> Table {
    let schema: Vec<(&'static str, Kind)> = KICKOFF_COLUMNS
        .iter()
        .map(|name| *EXPORT_COLUMNS.iter().find(|(c, _)| c == name).expect("a column of exports"))
        .collect();
    let mut b = TableBuilder::new(&schema);
    for e in events {
        kickoff_cells(b.row(), e);
    }
    b.finish()
}

/// Every finding, export by export in output order, then the general ones.
pub(crate) fn all_findings(r: &AuditResult) -> Vec<Finding> {
    let mut out: Vec<Finding> =
        export_order(r).into_iter().flat_map(|i| r.resolutions[i].findings.iter().cloned()).collect();
    out.extend(r.general_findings.iter().cloned());
    out
}

pub(crate) fn findings_table(findings: &[Finding]) -> Table {
    Table::new(finding_columns(findings.iter()))
}

/// The findings' columns, a cell per finding, empty text null: the findings table's, and the
/// plan's `planned_findings` after its `export_key`.
pub(crate) fn finding_columns<'a>(findings: impl Iterator<Item = &'a Finding> + Clone) -> Vec<ColumnData> {
    let col = |name: &'static str, f: &dyn Fn(&Finding) -> &str| ColumnData {
        name,
        values: Values::Text(findings.clone().map(|x| text(f(x))).collect()),
    };
    vec![
        col("export_id", &|x| &x.export_id),
        col("kind", &|x| x.kind.as_str()),
        col("resource_type", &|x| &x.resource_type),
        col("resource_id", &|x| &x.resource_id),
        col("version_id", &|x| &x.version_id),
        col("detail", &|x| &x.detail),
    ]
}
