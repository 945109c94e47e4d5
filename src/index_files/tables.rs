//! The index's Parquet tables: `versions` (one row per resource version, its validity interval
//! and where it was read), `version_patients`, `version_references`, the details few versions
//! have (`clients`, `groups`, `access_policies`, `statuses`), the kickoffs with each export's
//! types and patients as bulk-audit resolved them, and `inputs`.

use std::path::Path;

use crate::audit::{AuditConfig, AuditResult, SourceNames};
use crate::bodies;
use crate::error::Result;
use crate::fhir::compartment::Compartment;
use crate::index::{Boundary, History, Version, NO_TENANT};
use crate::output::{self, Cell, ColumnData, Kind, Rows, Table, TableBuilder, Values};
use crate::rules::kickoff::Level;
use crate::rules::resolve::NonCompartment;
use crate::version::{ClientScopes, Detail};

/// Every table of an index, in the order they are written.
pub(super) const TABLES: [&str; 14] = [
    "versions",
    "version_patients",
    "version_references",
    "clients",
    "groups",
    "access_policies",
    "statuses",
    "kickoffs",
    "export_types",
    "export_patients",
    "planned_exports",
    "planned_findings",
    "status_counts",
    "inputs",
];

/// The key, in each table's Parquet metadata, of the identity of the index it belongs to.
pub(super) const IDENTITY_KEY: &str = "bulk-audit:index";

/// Writes every table into `dir`, each tagged with the index's `identity`.
pub(super) fn write(cfg: &AuditConfig, r: &AuditResult, dir: &Path, identity: &str) -> Result<()> {
    let versions = VersionRows::new(r)?;
    let put = |table: &dyn Rows, name: &str| {
        output::write_parquet_tagged(table, &dir.join(format!("{name}.parquet")), &[(IDENTITY_KEY, identity)])
    };
    put(&versions, "versions")?;
    put(&LinkRows::patients(&versions), "version_patients")?;
    put(&LinkRows::references(&versions), "version_references")?;
    let details = details(&versions);
    put(&details.clients, "clients")?;
    put(&details.groups, "groups")?;
    put(&details.access_policies, "access_policies")?;
    put(&details.statuses, "statuses")?;
    write_plan(cfg, r, dir, identity)?;
    put(&inputs(r), "inputs")?;
    Ok(())
}

/// The tables of a plan (`bulk-audit plan` over shards; an index holds them too): the kickoffs
/// as resolved through step 3, with what `sql/audit.sql` needs to finish the `exports` and
/// `findings` rows, each tagged with the plan's (or index's) `identity`.
pub(super) fn write_plan(cfg: &AuditConfig, r: &AuditResult, dir: &Path, identity: &str) -> Result<()> {
    let put = |table: &dyn Rows, name: &str| {
        output::write_parquet_tagged(table, &dir.join(format!("{name}.parquet")), &[(IDENTITY_KEY, identity)])
    };
    let (kickoffs, types, patients) = kickoffs(cfg, r);
    put(&kickoffs, "kickoffs")?;
    put(&types, "export_types")?;
    put(&patients, "export_patients")?;
    put(&crate::audit::planned_exports_table(r), "planned_exports")?;
    put(&planned_findings(r), "planned_findings")?;
    put(&status_counts(r), "status_counts")
}

/// The tables of a plan.
#[cfg_attr(not(feature = "parquet"), allow(dead_code))]
pub(super) const PLAN_TABLES: [&str; 6] =
    ["kickoffs", "export_types", "export_patients", "planned_exports", "planned_findings", "status_counts"];

/// `planned_findings`: every finding resolving through step 3 found, each export's keyed by its
/// `export_key`, then those about the inputs as a whole (no key). What needs the rows or the
/// whole history (`boundary-ambiguous` of the exported resources, `tenant-unmarked`,
/// `count-mismatch`, a `version-conflict` between shards of a type a plan does not read) the SQL
/// finds.
fn planned_findings(r: &AuditResult) -> Table {
    let keyed: Vec<(Option<i64>, &crate::rules::findings::Finding)> = r
        .resolutions
        .iter()
        .enumerate()
        .flat_map(|(i, x)| x.findings.iter().map(move |f| (Some(i as i64), f)))
        .chain(r.general_findings.iter().map(|f| (None, f)))
        .collect();
    let mut columns =
        vec![ColumnData { name: "export_key", values: Values::Int(keyed.iter().map(|(k, _)| *k).collect()) }];
    columns.extend(crate::audit::finding_columns(keyed.iter().map(|(_, f)| *f)));
    Table::new(columns)
}

/// `status_counts`: the per-type `output[].count` of each export's matched BulkExportStatus
/// (none when it lists no count), for the SQL's `count-mismatch`.
fn status_counts(r: &AuditResult) -> Table {
    use Kind::{Int, Text};
    let mut t = TableBuilder::new(&[("export_key", Int), ("status_id", Text), ("resource_type", Text), ("count", Int)]);
    for (i, st) in r.statuses.iter().enumerate() {
        let Some(st) = st else { continue };
        for (ty, n) in &st.counts {
            t.row()
                .int("export_key", Some(i as i64))
                .text("status_id", Some(&st.id))
                .text("resource_type", Some(ty))
                .int("count", i64::try_from(*n).ok());
        }
    }
    t.finish()
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

const VERSION_SCHEMA: [(&str, Kind); 19] = [
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
    // The version id as a number, when it is one (that fits): versions tied on lastUpdated are
    // ordered by it, as the index orders them, when SQL recomputes valid_to over shards.
    ("version_number", Kind::Int),
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
            18 => match v.version_id {
                crate::version::VersionId::Number(n) => i64::try_from(n).map_or(Cell::Null, Cell::Int),
                crate::version::VersionId::Text(_) => Cell::Null,
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

struct Details {
    clients: Table,
    groups: Table,
    access_policies: Table,
    statuses: Table,
}

/// The details of Client, Group, AccessPolicy and BulkExportStatus versions, each version (and
/// each Group member, each AccessPolicy link) a row, with the version's key, id and validity.
fn details(v: &VersionRows) -> Details {
    use Kind::{Bool, Int, List, Text, Time};
    let common = [("version_key", Int), ("id", Text), ("version_id", Text), ("valid_from", Time), ("valid_to", Time)];
    let with = |more: &[(&'static str, Kind)]| TableBuilder::new(&[&common[..], more].concat());
    let mut clients = with(&[("scope_state", Text), ("scopes", List), ("label", Text)]);
    let mut groups = with(&[
        ("member_type", Text),
        ("member_id", Text),
        ("inactive", Bool),
        ("period_start", Time),
        ("period_end", Time),
    ]);
    let mut policies = with(&[("link_type", Text), ("link_id", Text)]);
    let mut statuses = with(&[
        ("requester", Text),
        ("transaction_time", Time),
        ("status", Text),
        ("group_id", Text),
        ("types", List),
        ("since", Text),
    ]);
    for row in 0..v.len() {
        let version = v.version(row);
        let Some(detail) = v.h.detail_of(version) else { continue };
        let res = &v.h.resources[v.keys[row].0 as usize];
        let version_id = version.version_id.to_string();
        // A new row of `table` with this version's common cells.
        let head = |table: &mut TableBuilder| {
            table
                .row()
                .int("version_key", Some(row as i64))
                .text("id", Some(&res.id))
                .text("version_id", Some(&version_id))
                .time("valid_from", Some(version.last_updated.0))
                .time("valid_to", v.valid_to(row));
        };
        match detail {
            Detail::Client { scopes, label } => {
                head(&mut clients);
                let (state, granted) = match scopes {
                    ClientScopes::Granted(s) => ("granted", s.clone()),
                    ClientScopes::Missing => ("missing", Vec::new()),
                    ClientScopes::Unreadable(_) => ("unreadable", Vec::new()),
                };
                clients
                    .text("scope_state", Some(state))
                    .list("scopes", Some(granted))
                    .text("label", (!label.is_empty()).then_some(label.as_str()));
            }
            Detail::Group { members } => {
                for m in members {
                    head(&mut groups);
                    groups
                        .text("member_type", m.entity.as_ref().map(|e| e.0.as_str()))
                        .text("member_id", m.entity.as_ref().map(|e| e.1.as_str()))
                        .flag("inactive", Some(m.inactive))
                        .time("period_start", m.period_start.map(|t| t.0))
                        .time("period_end", m.period_end.map(|t| t.0));
                }
            }
            Detail::AccessPolicy { links } => {
                for (t, id) in links {
                    head(&mut policies);
                    policies.text("link_type", Some(t)).text("link_id", Some(id));
                }
            }
            Detail::Status(s) => {
                head(&mut statuses);
                statuses
                    .text("requester", s.requester.as_deref())
                    .time("transaction_time", s.transaction_time.map(|t| t.0))
                    .text("status", s.status.as_deref())
                    .text("group_id", s.group_id.as_deref())
                    .list("types", Some(s.types.clone()))
                    .text("since", s.since.as_deref());
            }
        }
    }
    Details {
        clients: clients.finish(),
        groups: groups.finish(),
        access_policies: policies.finish(),
        statuses: statuses.finish(),
    }
}

/// `kickoffs` (one row per kickoff, with what `sql/audit.sql` needs to resolve it),
/// `export_types` (each resolved export's types, and whether each is in the patient
/// compartment) and `export_patients` (the patients a group- or patient-level export selects).
fn kickoffs(cfg: &AuditConfig, r: &AuditResult) -> (Table, Table, Table) {
    use Kind::{Bool, Int, Text, Time};
    let compartment = Compartment::load(cfg.rules.fhir_version);
    let mut k = TableBuilder::new(&[
        // The kickoff's row number: export ids may repeat (a log line without `ctx` names each
        // request it holds by its file and line), and the other tables join on this.
        ("export_key", Int),
        ("export_id", Text),
        ("client_id", Text),
        ("export_time", Time),
        ("export_time_ns", Int),
        ("request_end_ns", Int),
        ("method", Text),
        ("url", Text),
        ("status", Int),
        ("accepted", Bool),
        ("resolved", Bool),
        ("level", Text),
        ("tenant", Text),
        ("group_id", Text),
        ("since_ns", Int),
        ("until_ns", Int),
        ("boundary", Text),
        ("non_compartment", Text),
        ("selection", Text),
        ("client_version", Text),
        ("group_version", Text),
        ("source", Text),
        ("completeness", Text),
        ("incomplete_because", Text),
    ]);
    let mut types = TableBuilder::new(&[
        ("export_key", Int),
        ("export_id", Text),
        ("resource_type", Text),
        ("in_compartment", Bool),
    ]);
    let mut patients = TableBuilder::new(&[("export_key", Int), ("export_id", Text), ("patient_id", Text)]);
    let boundary = match cfg.rules.boundary {
        Boundary::Strict => "strict",
        Boundary::Inclusive => "inclusive",
    };
    for (i, (e, res)) in r.events.iter().zip(&r.resolutions).enumerate() {
        let key = Some(i as i64);
        let policy = if e.level == Level::System { NonCompartment::All } else { cfg.rules.non_compartment };
        let selection = match (res.resolved, e.level) {
            (false, _) => None,
            (true, Level::System) => Some("every"),
            (true, Level::Group) if res.group_version.is_none() => Some("nothing"),
            (true, _) => Some("these"),
        };
        k.row()
            .int("export_key", key)
            .text("export_id", Some(&e.id))
            .text("client_id", e.client_id.as_deref())
            .time("export_time", e.time.map(|t| t.0))
            .int("export_time_ns", e.time.map(|t| t.0))
            .int("request_end_ns", e.request_end().map(|t| t.0))
            .text("method", Some(&e.method))
            .text("url", Some(&e.url))
            .int("status", e.status.map(i64::from))
            .flag("accepted", Some(e.accepted))
            .flag("resolved", Some(res.resolved))
            .text("level", Some(e.level.as_str()))
            .text("tenant", e.tenant.as_deref())
            .text("group_id", e.group_id.as_deref())
            .int("since_ns", e.params.since.map(|t| t.0))
            .int("until_ns", e.params.until.map(|t| t.0))
            .text("boundary", Some(boundary))
            .text(
                "non_compartment",
                Some(match policy {
                    NonCompartment::All => "all",
                    NonCompartment::Referenced => "referenced",
                    NonCompartment::None => "none",
                }),
            )
            .text("selection", selection)
            .text("client_version", res.client_version.as_deref())
            .text("group_version", res.group_version.as_deref())
            .text("source", Some(&e.source));
        // The same completeness as the exports table, for the SQL engines.
        let (completeness, because) = crate::audit::completeness::cells(r, i);
        k.text("completeness", Some(completeness)).text("incomplete_because", because.as_deref());
        if !res.resolved {
            continue;
        }
        for t in &res.exported_types {
            types
                .row()
                .int("export_key", key)
                .text("export_id", Some(&e.id))
                .text("resource_type", Some(t))
                .flag("in_compartment", Some(compartment.contains(t)));
        }
        if selection == Some("these") {
            for p in &res.patients {
                patients.row().int("export_key", key).text("export_id", Some(&e.id)).text("patient_id", Some(p));
            }
        }
    }
    (k.finish(), types.finish(), patients.finish())
}

/// `inputs`: every file read, as the manifest records it.
fn inputs(r: &AuditResult) -> Table {
    use Kind::{Int, Text};
    let mut t = TableBuilder::new(&[
        ("role", Text),
        ("path", Text),
        ("compression", Text),
        ("sha256", Text),
        ("size", Int),
        ("lines", Int),
        ("lines_read", Int),
        ("lines_blank", Int),
        ("lines_skipped", Int),
    ]);
    for i in &r.inputs {
        let compression = serde_json::to_value(i.compression).ok();
        let n = |n: u64| Some(n as i64);
        t.row()
            .text("role", Some(i.role.as_str()))
            .text("path", Some(&i.path))
            .text("compression", compression.as_ref().and_then(|v| v.as_str()))
            .text("sha256", Some(&i.sha256))
            .int("size", n(i.size))
            .int("lines", n(i.lines))
            .int("lines_read", n(i.lines_read))
            .int("lines_blank", n(i.lines_blank))
            .int("lines_skipped", n(i.lines_skipped));
    }
    t.finish()
}
