//! The index's Parquet tables: `versions` (one row per resource version, its validity interval
//! and where it was read), `version_patients`, `version_references`, the details few versions
//! have (`clients`, `groups`, `access_policies`, `statuses`), the kickoffs with each export's
//! types and patients as bulk-audit resolved them, and `inputs`.

use std::path::Path;

use crate::audit::{AuditConfig, AuditResult, SourceNames};
use crate::bodies;
use crate::error::Result;
use crate::index::{Boundary, History, Version, NO_TENANT};
use crate::output::{self, Cell, ColumnData, Format, Kind, Rows, Table, Values};
use crate::rules::compartment::Compartment;
use crate::rules::kickoff::Level;
use crate::rules::resolve::NonCompartment;
use crate::version::{ClientScopes, Detail};

pub(super) fn write(cfg: &AuditConfig, r: &AuditResult, dir: &Path) -> Result<()> {
    let versions = VersionRows::new(r)?;
    let put = |table: &dyn Rows, name: &str| {
        output::write_table(table, &dir.join(format!("{name}.parquet")), Format::Parquet)
    };
    put(&versions, "versions")?;
    put(&LinkRows::patients(&versions), "version_patients")?;
    put(&LinkRows::references(&versions), "version_references")?;
    let details = details(&versions);
    put(&details.clients, "clients")?;
    put(&details.groups, "groups")?;
    put(&details.access_policies, "access_policies")?;
    put(&details.statuses, "statuses")?;
    let (kickoffs, types, patients) = kickoffs(cfg, r);
    put(&kickoffs, "kickoffs")?;
    put(&types, "export_types")?;
    put(&patients, "export_patients")?;
    put(&inputs(r), "inputs")?;
    Ok(())
}

/// Every version in index order: resources by (type, id, tenant), each one's versions by
/// (lastUpdated, versionId). A version's row number is its `version_key`.
struct VersionRows<'a> {
    h: &'a History,
    names: SourceNames,
    /// (resource, version) per row.
    keys: Vec<(u32, u32)>,
    /// The SHA-256 of each row's body, where it has one (not a deletion) that can be read again
    /// (not from a stream).
    body_sha256: Vec<Option<[u8; 32]>>,
}

const VERSION_SCHEMA: [(&str, Kind); 18] = [
    ("version_key", Kind::Int),
    ("resource_type", Kind::Text),
    ("resource_id", Kind::Text),
    ("tenant", Kind::Text),
    ("version_id", Kind::Text),
    ("valid_from", Kind::Time),
    ("valid_to", Kind::Time),
    ("valid_from_ns", Kind::Int),
    ("valid_to_ns", Kind::Int),
    ("deleted", Kind::Bool),
    ("file", Kind::Text),
    ("file_number", Kind::Int),
    ("line", Kind::Int),
    ("byte_offset", Kind::Int),
    ("entry", Kind::Int),
    ("source", Kind::Text),
    // The Group members, Client scopes, AccessPolicy links or export status a version carries,
    // as JSON: what `audit --index` reads back (the detail tables are for people and SQL).
    ("detail", Kind::Text),
    // The SHA-256 of the body as `audit --with-resource` writes it (compact JSON), in hex.
    ("body_sha256", Kind::Text),
];

impl<'a> VersionRows<'a> {
    fn new(r: &'a AuditResult) -> Result<VersionRows<'a>> {
        let h = &r.history;
        let keys: Vec<(u32, u32)> = h
            .resources
            .iter()
            .enumerate()
            .flat_map(|(i, res)| (0..res.versions.len() as u32).map(move |j| (i as u32, j)))
            .collect();
        crate::progress::stage("hashing the bodies");
        let mut first_row = Vec::with_capacity(h.resources.len());
        let mut n = 0u32;
        for res in &h.resources {
            first_row.push(n);
            n += res.versions.len() as u32;
        }
        let hashed: Vec<(u32, u32)> = keys
            .iter()
            .copied()
            .filter(|&(i, j)| {
                let v = &h.resources[i as usize].versions[j as usize];
                !v.deleted && !r.history_files[v.source.file as usize].is_stream()
            })
            .collect();
        let mut body_sha256 = vec![None; keys.len()];
        for ((i, j), sum) in bodies::digests(&r.history_files, &r.layouts, h, &hashed)? {
            body_sha256[(first_row[i as usize] + j) as usize] = Some(sum);
        }
        Ok(VersionRows { h, names: SourceNames::new(&r.history_files), keys, body_sha256 })
    }

    fn version(&self, row: usize) -> &'a Version {
        let (i, j) = self.keys[row];
        &self.h.resources[i as usize].versions[j as usize]
    }

    /// The next version's lastUpdated: where this one's validity ends.
    fn valid_to(&self, row: usize) -> Option<i64> {
        let (i, j) = self.keys[row];
        self.h.resources[i as usize].versions.get(j as usize + 1).map(|v| v.last_updated.0)
    }
}

impl Rows for VersionRows<'_> {
    fn schema(&self) -> &[(&'static str, Kind)] {
        &VERSION_SCHEMA
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    fn cell<'a>(&'a self, row: usize, col: usize, scratch: &'a mut String) -> Cell<'a> {
        let res = &self.h.resources[self.keys[row].0 as usize];
        let v = self.version(row);
        let int = |n: u64| Cell::Int(n as i64);
        match col {
            0 => int(row as u64),
            1 => Cell::Text(self.h.type_name(res.resource_type)),
            2 => Cell::Text(&res.id),
            3 if res.tenant == NO_TENANT => Cell::Null,
            3 => Cell::Text(self.h.tenant_name(res.tenant)),
            4 => {
                use std::fmt::Write;
                let _ = write!(scratch, "{}", v.version_id);
                Cell::Text(scratch)
            }
            5 => Cell::Time(v.last_updated.0),
            6 => self.valid_to(row).map_or(Cell::Null, Cell::Time),
            7 => Cell::Int(v.last_updated.0),
            8 => self.valid_to(row).map_or(Cell::Null, Cell::Int),
            9 => Cell::Bool(v.deleted),
            10 => Cell::Text(self.names.name(v.source.file)),
            11 => int(v.source.file.into()),
            12 => int(v.source.line),
            13 => int(v.source.offset),
            14 => v.source.entry.map_or(Cell::Null, |e| int(e.index().into())),
            15 => {
                *scratch = self.names.text(&v.source);
                Cell::Text(scratch)
            }
            16 => match self.h.detail_of(v).and_then(|d| serde_json::to_string(d).ok()) {
                Some(json) => {
                    *scratch = json;
                    Cell::Text(scratch)
                }
                None => Cell::Null,
            },
            _ => match &self.body_sha256[row] {
                Some(sum) => {
                    *scratch = crate::source::hex(sum);
                    Cell::Text(scratch)
                }
                None => Cell::Null,
            },
        }
    }
}

/// Links of each version: its patients (`version_patients`) or the resources it references
/// (`version_references`), one row per link.
struct LinkRows<'a> {
    h: &'a History,
    /// (version_key, patient) or (version_key, (type, referenced id)).
    rows: Vec<(u32, u32, u32)>,
    schema: &'static [(&'static str, Kind)],
}

impl<'a> LinkRows<'a> {
    fn patients(v: &VersionRows<'a>) -> LinkRows<'a> {
        let rows = (0..v.keys.len())
            .flat_map(|k| v.h.patients_of(v.version(k)).iter().map(move |&p| (k as u32, p, 0)))
            .collect();
        LinkRows { h: v.h, rows, schema: &[("version_key", Kind::Int), ("patient_id", Kind::Text)] }
    }

    fn references(v: &VersionRows<'a>) -> LinkRows<'a> {
        let rows = (0..v.keys.len())
            .flat_map(|k| v.h.references_of(v.version(k)).iter().map(move |&(t, id)| (k as u32, t, id)))
            .collect();
        LinkRows {
            h: v.h,
            rows,
            schema: &[("version_key", Kind::Int), ("resource_type", Kind::Text), ("resource_id", Kind::Text)],
        }
    }
}

impl Rows for LinkRows<'_> {
    fn schema(&self) -> &[(&'static str, Kind)] {
        self.schema
    }

    fn len(&self) -> usize {
        self.rows.len()
    }

    fn cell<'a>(&'a self, row: usize, col: usize, _scratch: &'a mut String) -> Cell<'a> {
        let (k, a, b) = self.rows[row];
        match (col, self.schema.len()) {
            (0, _) => Cell::Int(k.into()),
            (1, 2) => Cell::Text(self.h.patient_name(a)),
            (1, _) => Cell::Text(self.h.type_name(a)),
            _ => Cell::Text(self.h.ref_name(b)),
        }
    }
}

/// A table built column by column from named values.
#[derive(Default)]
struct Columns {
    names: Vec<&'static str>,
    values: Vec<Values>,
}

impl Columns {
    fn col(&mut self, name: &'static str, empty: Values) -> usize {
        self.names.push(name);
        self.values.push(empty);
        self.names.len() - 1
    }

    fn table(self) -> Table {
        Table::new(self.names.into_iter().zip(self.values).map(|(name, values)| ColumnData { name, values }).collect())
    }
}

fn text(v: &mut Values, s: Option<&str>) {
    if let Values::Text(x) = v {
        x.push(s.map(str::to_string))
    }
}
fn int(v: &mut Values, n: Option<i64>) {
    if let Values::Int(x) | Values::Time(x) = v {
        x.push(n)
    }
}
fn flag(v: &mut Values, b: Option<bool>) {
    if let Values::Bool(x) = v {
        x.push(b)
    }
}
fn list(v: &mut Values, items: &[String]) {
    if let Values::List(x) = v {
        x.push((!items.is_empty()).then(|| items.to_vec()))
    }
}

struct Details {
    clients: Table,
    groups: Table,
    access_policies: Table,
    statuses: Table,
}

/// The details of Client, Group, AccessPolicy and BulkExportStatus versions, each version (and
/// each Group member) a row, with the version's key, id and validity.
fn details(v: &VersionRows) -> Details {
    let blank = || Values::Text(Vec::new());
    let time = || Values::Time(Vec::new());
    let common = |c: &mut Columns| {
        for (name, kind) in [("version_key", 0), ("id", 1), ("version_id", 1), ("valid_from", 2), ("valid_to", 2)] {
            c.col(name, [Values::Int(Vec::new()), blank(), time()][kind].clone());
        }
    };
    let (mut clients, mut groups, mut policies, mut statuses) =
        (Columns::default(), Columns::default(), Columns::default(), Columns::default());
    for c in [&mut clients, &mut groups, &mut policies, &mut statuses] {
        common(c);
    }
    for (name, empty) in [("scope_state", blank()), ("scopes", Values::List(Vec::new())), ("label", blank())] {
        clients.col(name, empty);
    }
    for (name, empty) in [
        ("member_type", blank()),
        ("member_id", blank()),
        ("inactive", Values::Bool(Vec::new())),
        ("period_start", time()),
        ("period_end", time()),
    ] {
        groups.col(name, empty);
    }
    for name in ["link_type", "link_id"] {
        policies.col(name, blank());
    }
    for (name, empty) in [
        ("requester", blank()),
        ("transaction_time", time()),
        ("status", blank()),
        ("group_id", blank()),
        ("types", Values::List(Vec::new())),
        ("since", blank()),
    ] {
        statuses.col(name, empty);
    }
    let mut scratch = String::new();
    for row in 0..v.len() {
        let version = v.version(row);
        let Some(detail) = v.h.detail_of(version) else { continue };
        let head = |c: &mut Columns, scratch: &mut String| {
            let res = &v.h.resources[v.keys[row].0 as usize];
            int(&mut c.values[0], Some(row as i64));
            text(&mut c.values[1], Some(&res.id));
            scratch.clear();
            let version_id = match v.cell(row, 4, scratch) {
                Cell::Text(t) => t.to_string(),
                _ => String::new(),
            };
            text(&mut c.values[2], Some(&version_id));
            int(&mut c.values[3], Some(version.last_updated.0));
            int(&mut c.values[4], v.valid_to(row));
        };
        match detail {
            Detail::Client { scopes, label } => {
                head(&mut clients, &mut scratch);
                let (state, granted): (&str, &[String]) = match scopes {
                    ClientScopes::Granted(s) => ("granted", s),
                    ClientScopes::Missing => ("missing", &[]),
                    ClientScopes::Unreadable(_) => ("unreadable", &[]),
                };
                text(&mut clients.values[5], Some(state));
                list(&mut clients.values[6], granted);
                text(&mut clients.values[7], (!label.is_empty()).then_some(label.as_str()));
            }
            Detail::Group { members } => {
                for m in members {
                    head(&mut groups, &mut scratch);
                    text(&mut groups.values[5], m.entity.as_ref().map(|e| e.0.as_str()));
                    text(&mut groups.values[6], m.entity.as_ref().map(|e| e.1.as_str()));
                    flag(&mut groups.values[7], Some(m.inactive));
                    int(&mut groups.values[8], m.period_start.map(|t| t.0));
                    int(&mut groups.values[9], m.period_end.map(|t| t.0));
                }
            }
            Detail::AccessPolicy { links } => {
                for (t, id) in links {
                    head(&mut policies, &mut scratch);
                    text(&mut policies.values[5], Some(t));
                    text(&mut policies.values[6], Some(id));
                }
            }
            Detail::Status(s) => {
                head(&mut statuses, &mut scratch);
                text(&mut statuses.values[5], s.requester.as_deref());
                int(&mut statuses.values[6], s.transaction_time.map(|t| t.0));
                text(&mut statuses.values[7], s.status.as_deref());
                text(&mut statuses.values[8], s.group_id.as_deref());
                list(&mut statuses.values[9], &s.types);
                text(&mut statuses.values[10], s.since.as_deref());
            }
        }
    }
    Details {
        clients: clients.table(),
        groups: groups.table(),
        access_policies: policies.table(),
        statuses: statuses.table(),
    }
}

/// `kickoffs` (one row per kickoff, with what `sql/audit.sql` needs to resolve it),
/// `export_types` (each resolved export's types, and whether each is in the patient
/// compartment) and `export_patients` (the patients a group- or patient-level export selects).
fn kickoffs(cfg: &AuditConfig, r: &AuditResult) -> (Table, Table, Table) {
    let compartment = Compartment::load(cfg.fhir_version);
    let mut k = Columns::default();
    let names: [(&str, Values); 22] = [
        // The kickoff's row number: export ids may repeat (a log line without `ctx` names each
        // request it holds by its file and line), and the other tables join on this.
        ("export_key", Values::Int(Vec::new())),
        ("export_id", Values::Text(Vec::new())),
        ("client_id", Values::Text(Vec::new())),
        ("export_time", Values::Time(Vec::new())),
        ("export_time_ns", Values::Int(Vec::new())),
        ("request_end_ns", Values::Int(Vec::new())),
        ("method", Values::Text(Vec::new())),
        ("url", Values::Text(Vec::new())),
        ("status", Values::Int(Vec::new())),
        ("accepted", Values::Bool(Vec::new())),
        ("resolved", Values::Bool(Vec::new())),
        ("level", Values::Text(Vec::new())),
        ("tenant", Values::Text(Vec::new())),
        ("group_id", Values::Text(Vec::new())),
        ("since_ns", Values::Int(Vec::new())),
        ("until_ns", Values::Int(Vec::new())),
        ("boundary", Values::Text(Vec::new())),
        ("non_compartment", Values::Text(Vec::new())),
        ("selection", Values::Text(Vec::new())),
        ("client_version", Values::Text(Vec::new())),
        ("group_version", Values::Text(Vec::new())),
        ("source", Values::Text(Vec::new())),
    ];
    for (name, empty) in names {
        k.col(name, empty);
    }
    let (mut types, mut patients) = (Columns::default(), Columns::default());
    types.col("export_key", Values::Int(Vec::new()));
    types.col("export_id", Values::Text(Vec::new()));
    types.col("resource_type", Values::Text(Vec::new()));
    types.col("in_compartment", Values::Bool(Vec::new()));
    patients.col("export_key", Values::Int(Vec::new()));
    patients.col("export_id", Values::Text(Vec::new()));
    patients.col("patient_id", Values::Text(Vec::new()));
    for (key, (e, res)) in r.events.iter().zip(&r.resolutions).enumerate() {
        int(&mut k.values[0], Some(key as i64));
        let v = &mut k.values[1..];
        text(&mut v[0], Some(&e.id));
        text(&mut v[1], e.client_id.as_deref());
        int(&mut v[2], e.time.map(|t| t.0));
        int(&mut v[3], e.time.map(|t| t.0));
        int(&mut v[4], e.request_end().map(|t| t.0));
        text(&mut v[5], Some(&e.method));
        text(&mut v[6], Some(&e.url));
        int(&mut v[7], e.status.map(i64::from));
        flag(&mut v[8], Some(e.accepted));
        flag(&mut v[9], Some(res.resolved));
        text(&mut v[10], Some(e.level.as_str()));
        text(&mut v[11], e.tenant.as_deref());
        text(&mut v[12], e.group_id.as_deref());
        int(&mut v[13], e.params.since.map(|t| t.0));
        int(&mut v[14], e.params.until.map(|t| t.0));
        text(
            &mut v[15],
            Some(match cfg.boundary {
                Boundary::Strict => "strict",
                Boundary::Inclusive => "inclusive",
            }),
        );
        let policy = if e.level == Level::System { NonCompartment::All } else { cfg.non_compartment };
        text(
            &mut v[16],
            Some(match policy {
                NonCompartment::All => "all",
                NonCompartment::Referenced => "referenced",
                NonCompartment::None => "none",
            }),
        );
        let selection = match (res.resolved, e.level) {
            (false, _) => None,
            (true, Level::System) => Some("every"),
            (true, Level::Group) if res.group_version.is_none() => Some("nothing"),
            (true, _) => Some("these"),
        };
        text(&mut v[17], selection);
        text(&mut v[18], res.client_version.as_deref());
        text(&mut v[19], res.group_version.as_deref());
        text(&mut v[20], Some(&e.source));
        if !res.resolved {
            continue;
        }
        for t in &res.exported_types {
            int(&mut types.values[0], Some(key as i64));
            text(&mut types.values[1], Some(&e.id));
            text(&mut types.values[2], Some(t));
            flag(&mut types.values[3], Some(compartment.contains(t)));
        }
        if selection == Some("these") {
            for p in &res.patients {
                int(&mut patients.values[0], Some(key as i64));
                text(&mut patients.values[1], Some(&e.id));
                text(&mut patients.values[2], Some(p));
            }
        }
    }
    (k.table(), types.table(), patients.table())
}

/// `inputs`: every file read, as the manifest records it.
fn inputs(r: &AuditResult) -> Table {
    let mut c = Columns::default();
    for name in ["role", "path", "compression", "sha256"] {
        c.col(name, Values::Text(Vec::new()));
    }
    for name in ["size", "lines", "lines_read", "lines_blank", "lines_skipped"] {
        c.col(name, Values::Int(Vec::new()));
    }
    for i in &r.inputs {
        let compression = serde_json::to_value(i.compression).ok();
        text(&mut c.values[0], Some(i.role.as_str()));
        text(&mut c.values[1], Some(&i.path));
        text(&mut c.values[2], compression.as_ref().and_then(|v| v.as_str()));
        text(&mut c.values[3], Some(&i.sha256));
        for (col, n) in [i.size, i.lines, i.lines_read, i.lines_blank, i.lines_skipped].into_iter().enumerate() {
            int(&mut c.values[4 + col], Some(n as i64));
        }
    }
    c.table()
}
