//! The audit from end to end: read the logs and the history, index the versions, resolve every
//! selected export in parallel, cross-check with the server's own evidence, and write the
//! tables, the manifest and the reconstruction.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use chrono_tz::Tz;
use rayon::prelude::*;
use serde_json::json;

use crate::bodies;
use crate::compartment::{Compartment, FhirVersion};
use crate::error::Result;
use crate::evidence::{self, StatusMatch};
use crate::history::{self, ParseOptions};
use crate::index::{Boundary, History};
use crate::inputs::{self, InputRecord};
use crate::kickoff::{self, ExportEvent};
use crate::logs;
use crate::output::{self, Cell, ColumnData, Decimal, Format, Kind, Rows, Staging, Table, Values};
use crate::resolve::{self, Finding, NonCompartment, Resolution, ResolveOptions};
use crate::scopes::Wildcard;
use crate::timestamp::Instant;

/// Everything `bulk-audit audit` was asked.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub logs: Vec<PathBuf>,
    pub history: Vec<PathBuf>,
    pub clients: Vec<String>,
    pub from: Option<Instant>,
    pub to: Option<Instant>,
    pub zone: Tz,
    pub out: PathBuf,
    pub format: Format,
    pub boundary: Boundary,
    pub wildcard: Wildcard,
    pub non_compartment: NonCompartment,
    pub fhir_version: FhirVersion,
    pub skip_inactive_members: bool,
    pub with_resource: bool,
    pub reconstruct: Option<PathBuf>,
    pub max_log_gap_nanos: i64,
    pub max_log_gap_text: String,
    pub force: bool,
    /// Note unreadable lines as findings and go on, instead of stopping at the first.
    pub skip_invalid: bool,
}

/// What an audit found, before it is written.
pub struct AuditResult {
    pub events: Vec<ExportEvent>,
    pub resolutions: Vec<Resolution>,
    pub statuses: Vec<Option<StatusMatch>>,
    /// Findings not tied to one export (log gaps, version conflicts, orphan statuses).
    pub general_findings: Vec<Finding>,
    pub history: History,
    pub history_files: Vec<inputs::InputFile>,
    pub inputs: Vec<InputRecord>,
    pub coverage: logs::Coverage,
}

/// Whether an export is selected by `--client`, `--from` and `--to`.
pub fn selected(e: &ExportEvent, clients: &[String], from: Option<Instant>, to: Option<Instant>) -> bool {
    let client_ok = clients.is_empty() || e.client_id.as_ref().is_some_and(|c| clients.contains(c));
    let from_ok = from.is_none_or(|f| e.time.is_some_and(|t| t >= f));
    let to_ok = to.is_none_or(|l| e.time.is_some_and(|t| t <= l));
    client_ok && from_ok && to_ok
}

/// Reads the logs and finds the kickoffs (the `exports` command, and the audit's first step).
pub fn read_exports(log_paths: &[PathBuf], zone: &Tz, max_gap_nanos: i64, skip_invalid: bool) -> Result<(Vec<ExportEvent>, logs::Logs)> {
    let files = inputs::collect(log_paths)?;
    let l = logs::read(&files, zone, max_gap_nanos, skip_invalid)?;
    let events = kickoff::find(&l.requests, zone);
    Ok((events, l))
}

/// Prints how long each stage took to stderr when `BULK_AUDIT_TIMINGS` is set.
pub struct Stopwatch {
    start: std::time::Instant,
    last: std::time::Instant,
    /// Process CPU seconds (user + system) at the last lap.
    cpu: f64,
    on: bool,
}

/// User plus system CPU seconds of this process so far, from /proc (0 where there is none).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces): utime is the
    // 12th and stime the 13th, in clock ticks of 1/100 s.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

impl Stopwatch {
    pub fn new() -> Stopwatch {
        let now = std::time::Instant::now();
        let on = std::env::var_os("BULK_AUDIT_TIMINGS").is_some();
        Stopwatch { start: now, last: now, cpu: if on { cpu_seconds() } else { 0.0 }, on }
    }

    pub fn lap(&mut self, stage: &str) {
        let now = std::time::Instant::now();
        if self.on {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let field = |k: &str| status.lines().find(|l| l.starts_with(k)).map(|l| l[k.len()..].trim().to_string()).unwrap_or_default();
            let cpu = cpu_seconds();
            eprintln!(
                "  {stage:<28} {:>8.3}s  cpu {:>7.3}s  (total {:.3}s)  rss {}  peak {}",
                (now - self.last).as_secs_f64(),
                cpu - self.cpu,
                (now - self.start).as_secs_f64(),
                field("VmRSS:"),
                field("VmHWM:")
            );
            self.cpu = cpu;
        }
        self.last = now;
    }
}

impl Default for Stopwatch {
    fn default() -> Self {
        Stopwatch::new()
    }
}

pub fn run(cfg: &AuditConfig) -> Result<AuditResult> {
    let mut sw = Stopwatch::new();
    let (events, log_data) = read_exports(&cfg.logs, &cfg.zone, cfg.max_log_gap_nanos, cfg.skip_invalid)?;
    sw.lap("logs");
    let events: Vec<ExportEvent> = events.into_iter().filter(|e| selected(e, &cfg.clients, cfg.from, cfg.to)).collect();

    let compartment = Compartment::load(cfg.fhir_version);
    let history_files = inputs::collect(&cfg.history)?;
    let mut parse_opts = ParseOptions::new(&compartment, cfg.zone, cfg.non_compartment == NonCompartment::Referenced);
    parse_opts.skip_invalid = cfg.skip_invalid;
    let (h, history_inputs, history_skipped) = history::read(&history_files, &parse_opts)?;
    sw.lap("history: read and index");

    let wildcard_types = cfg.wildcard.expand(&h.present_types())?;
    let ropts = ResolveOptions {
        boundary: cfg.boundary,
        wildcard_types,
        non_compartment: cfg.non_compartment,
        skip_inactive_members: cfg.skip_inactive_members,
        compartment: &compartment,
    };
    let mut resolutions: Vec<Resolution> = events.par_iter().map(|e| resolve::resolve(e, &h, &ropts)).collect();
    let (statuses, orphans) = evidence::match_statuses(&events, &mut resolutions, &h);
    sw.lap("resolve");

    let mut general = orphans;
    for s in log_data.skipped.iter().chain(&history_skipped) {
        let span = match s.lines {
            0 => " (the rest of the file)".to_string(),
            1 => String::new(),
            n => format!(" ({n} lines)"),
        };
        general.push(Finding::new("", "input-skipped", format!("{}:{} (byte {}){span}: {}", s.path.display(), s.line, s.offset, s.reason)));
    }
    for g in &log_data.coverage.gaps {
        general.push(Finding::new("", "log-gap", format!("no log line between {} and {} ({:.0} s, more than --max-log-gap {}): kickoffs in this span are unknown", g.from, g.to, g.seconds, cfg.max_log_gap_text)));
    }
    let names: Vec<String> = history_files.iter().map(|f| inputs::display(&f.path)).collect();
    for c in &h.conflicts {
        general.push(
            Finding::new("", "version-conflict", format!("the same version appears twice with different contents: kept {}, ignored {}", source_text(&names, &c.kept), source_text(&names, &c.dropped)))
                .about(&c.resource_type, &c.id, &c.version_id),
        );
    }
    general.sort();
    let mut all_inputs = log_data.inputs.clone();
    all_inputs.extend(history_inputs);
    Ok(AuditResult { events, resolutions, statuses, general_findings: general, history: h, history_files, inputs: all_inputs, coverage: log_data.coverage })
}

/// `file:line`, with `#entry` for a Bundle entry.
pub fn source_text(names: &[String], s: &history::Source) -> String {
    match s.entry {
        Some(e) => format!("{}:{}#entry{}", names[s.file as usize], s.line, e.index()),
        None => format!("{}:{}", names[s.file as usize], s.line),
    }
}

fn text(v: impl Into<String>) -> Option<String> {
    let s = v.into();
    (!s.is_empty()).then_some(s)
}

/// The export order of the output: (T, export id).
fn export_order(r: &AuditResult) -> Vec<usize> {
    let mut order: Vec<usize> = (0..r.events.len()).collect();
    order.sort_by(|&a, &b| (r.events[a].time, &r.events[a].id).cmp(&(r.events[b].time, &r.events[b].id)));
    order
}

/// The `resources` table, computed cell by cell from the resolutions (and the bodies when
/// asked): nothing is copied into strings.
pub struct ResourceRows<'a> {
    r: &'a AuditResult,
    names: Vec<String>,
    /// Whether each name is a CSV field as it is (no quotes needed).
    plain_names: Vec<bool>,
    /// (export index, row index) in output order.
    order: Vec<(u32, u32)>,
    bodies: Option<&'a std::collections::HashMap<(u32, u32), String>>,
    schema: Vec<(&'static str, Kind)>,
}

impl<'a> ResourceRows<'a> {
    pub fn new(r: &'a AuditResult, bodies: Option<&'a std::collections::HashMap<(u32, u32), String>>) -> ResourceRows<'a> {
        let names: Vec<String> = r.history_files.iter().map(|f| inputs::display(&f.path)).collect();
        let plain_names = names
            .iter()
            .map(|n| {
                let mut field = Vec::new();
                output::push_csv_field(&mut field, n.as_bytes());
                field == n.as_bytes()
            })
            .collect();
        let order = export_order(r).into_iter().flat_map(|i| (0..r.resolutions[i].rows.len() as u32).map(move |j| (i as u32, j))).collect();
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
        ResourceRows { r, names, plain_names, order, bodies, schema }
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
                history::VersionId::Text(t) => Cell::Text(t),
                history::VersionId::Number(n) => {
                    Decimal::of(*n).push_to(scratch);
                    Cell::Text(scratch)
                }
            },
            9 => Cell::Time(v.last_updated.0),
            10 => {
                scratch.push_str(&self.names[v.source.file as usize]);
                scratch.push(':');
                Decimal::of(v.source.line).push_to(scratch);
                if let Some(entry) = v.source.entry {
                    scratch.push_str("#entry");
                    Decimal::of(entry.index().into()).push_to(scratch);
                }
                Cell::Text(scratch)
            }
            _ => opt(self.bodies.and_then(|b| b.get(&(x.resource, x.version))).map(String::as_str)),
        }
    }

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
                history::VersionId::Text(t) => output::push_csv_field(buf, t.as_bytes()),
                history::VersionId::Number(n) => buf.extend_from_slice(Decimal::of(*n).as_bytes()),
            }
            buf.push(b',');
            crate::timestamp::push_rfc3339(v.last_updated.0, buf);
            buf.push(b',');
            let file = v.source.file as usize;
            if self.plain_names[file] {
                // `name:line#entryN` needs quotes only when the name does.
                buf.extend_from_slice(self.names[file].as_bytes());
                buf.push(b':');
                buf.extend_from_slice(Decimal::of(v.source.line).as_bytes());
                if let Some(entry) = v.source.entry {
                    buf.extend_from_slice(b"#entry");
                    buf.extend_from_slice(Decimal::of(entry.index().into()).as_bytes());
                }
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
pub fn exports_table(r: &AuditResult) -> Table {
    let mut cols: BTreeMap<&'static str, Values> = BTreeMap::new();
    let order = export_order(r);
    let names = [
        "export_id", "client_id", "user_id", "export_time", "request_end", "method", "url", "status", "accepted", "resolved", "level", "tenant", "group_id",
        "group_version", "client_version", "scopes", "allowed_types", "requested_types", "exported_types", "since", "until", "type_filter", "elements",
        "output_format", "patient_param", "patient_count", "resource_count", "row_count", "finding_count", "status_resource_id", "status_resource_status",
        "status_transaction_time", "source",
    ];
    let mut text_cols: BTreeMap<&str, Vec<Option<String>>> = BTreeMap::new();
    let mut time_cols: BTreeMap<&str, Vec<Option<i64>>> = BTreeMap::new();
    let mut int_cols: BTreeMap<&str, Vec<Option<i64>>> = BTreeMap::new();
    let mut bool_cols: BTreeMap<&str, Vec<Option<bool>>> = BTreeMap::new();
    for i in order {
        let e = &r.events[i];
        let x = &r.resolutions[i];
        let st = r.statuses[i].as_ref();
        let mut t = |k: &'static str, v: Option<String>| text_cols.entry(k).or_default().push(v);
        t("export_id", Some(e.id.clone()));
        t("client_id", e.client_id.clone());
        t("user_id", e.user_id.clone());
        t("method", Some(e.method.clone()));
        t("url", Some(e.url.clone()));
        t("level", Some(e.level.as_str().into()));
        t("tenant", e.tenant.clone());
        t("group_id", e.group_id.clone());
        t("group_version", x.group_version.clone());
        t("client_version", x.client_version.clone());
        t("scopes", join(&x.scopes, " "));
        t("allowed_types", match &x.allowed_types {
            Some(a) => join(a, ","),
            None if x.resolved => Some("*".into()),
            None => None,
        });
        t("requested_types", e.params.types.as_ref().and_then(|v| join(v, ",")));
        t("exported_types", join(&x.exported_types, ","));
        t("since", e.params.since_text.clone());
        t("until", e.params.until_text.clone());
        t("type_filter", join(&e.params.type_filter, " "));
        t("elements", join(&e.params.elements, ","));
        t("output_format", e.params.output_format.clone());
        t("patient_param", join(&e.params.patients, ","));
        t("status_resource_id", st.map(|s| s.id.clone()));
        t("status_resource_status", st.and_then(|s| s.status.clone()));
        t("source", Some(e.source.clone()));
        let mut tm = |k: &'static str, v: Option<Instant>| time_cols.entry(k).or_default().push(v.map(|t| t.0));
        tm("export_time", e.time);
        tm("request_end", e.request_end());
        tm("status_transaction_time", st.and_then(|s| s.transaction_time));
        let patients: BTreeSet<u32> = x.rows.iter().filter_map(|row| row.patient).collect();
        let patient_count = if x.resolved { Some(if e.level == kickoff::Level::System { patients.len() } else { x.patients.len() } as i64) } else { None };
        let mut n = |k: &'static str, v: Option<i64>| int_cols.entry(k).or_default().push(v);
        n("status", e.status.map(i64::from));
        n("patient_count", patient_count);
        n("resource_count", x.resolved.then(|| x.counts.values().sum::<u64>() as i64));
        n("row_count", x.resolved.then_some(x.rows.len() as i64));
        n("finding_count", Some(x.findings.len() as i64));
        let mut bl = |k: &'static str, v: bool| bool_cols.entry(k).or_default().push(Some(v));
        bl("accepted", e.accepted);
        bl("resolved", x.resolved);
    }
    for k in names {
        let v = if let Some(v) = text_cols.remove(k) {
            Values::Text(v)
        } else if let Some(v) = time_cols.remove(k) {
            Values::Time(v)
        } else if let Some(v) = int_cols.remove(k) {
            Values::Int(v)
        } else if let Some(v) = bool_cols.remove(k) {
            Values::Bool(v)
        } else {
            // No exports: an empty column of the right type.
            match k {
                "export_time" | "request_end" | "status_transaction_time" => Values::Time(vec![]),
                "status" | "patient_count" | "resource_count" | "row_count" | "finding_count" => Values::Int(vec![]),
                "accepted" | "resolved" => Values::Bool(vec![]),
                _ => Values::Text(vec![]),
            }
        };
        cols.insert(k, v);
    }
    Table::new(names.iter().map(|k| ColumnData { name: k, values: cols.remove(k).expect("every column built") }).collect())
}

/// Every finding, export by export in output order, then the general ones.
pub fn all_findings(r: &AuditResult) -> Vec<Finding> {
    let mut out: Vec<Finding> = export_order(r).into_iter().flat_map(|i| r.resolutions[i].findings.iter().cloned()).collect();
    out.extend(r.general_findings.iter().cloned());
    out
}

pub fn findings_table(findings: &[Finding]) -> Table {
    let col = |name: &'static str, f: &dyn Fn(&Finding) -> &str| ColumnData { name, values: Values::Text(findings.iter().map(|x| text(f(x))).collect()) };
    Table::new(vec![
        col("export_id", &|x| &x.export_id),
        col("kind", &|x| x.kind),
        col("resource_type", &|x| &x.resource_type),
        col("resource_id", &|x| &x.resource_id),
        col("version_id", &|x| &x.version_id),
        col("detail", &|x| &x.detail),
    ])
}

/// Writes every output of the audit. Returns the row counts.
pub fn write(cfg: &AuditConfig, r: &AuditResult) -> Result<(usize, usize, usize)> {
    let wanted: Vec<(u32, u32)> = if cfg.with_resource || cfg.reconstruct.is_some() {
        let mut w: Vec<(u32, u32)> = r.resolutions.iter().flat_map(|x| x.rows.iter().map(|row| (row.resource, row.version))).collect();
        w.sort_unstable();
        w.dedup();
        w
    } else {
        Vec::new()
    };
    let bodies = if wanted.is_empty() { None } else { Some(bodies::read(&r.history_files, &r.history, &wanted)?) };

    let mut sw = Stopwatch::new();
    let staging = Staging::begin(&cfg.out, cfg.force)?;
    let ext = cfg.format.extension();
    let resources = ResourceRows::new(r, if cfg.with_resource { bodies.as_ref() } else { None });
    sw.lap("resources table");
    output::write_table(&resources, &staging.dir.join(format!("resources.{ext}")), cfg.format)?;
    sw.lap("resources write");
    let exports = exports_table(r);
    output::write_table(&exports, &staging.dir.join(format!("exports.{ext}")), cfg.format)?;
    let findings = all_findings(r);
    output::write_table(&findings_table(&findings), &staging.dir.join(format!("findings.{ext}")), cfg.format)?;
    let manifest = manifest(cfg, r, resources.len(), exports.len(), &findings);
    output::write_text(&staging.dir.join(output::MARKER), &(serde_json::to_string_pretty(&manifest).unwrap_or_default() + "\n"))?;

    let recon_staging = match &cfg.reconstruct {
        Some(dir) => {
            let s = Staging::begin(dir, cfg.force)?;
            write_reconstruction(r, &s.dir, bodies.as_ref().expect("bodies read for --reconstruct"))?;
            output::write_text(&s.dir.join(".bulk-audit"), "reconstructed exports written by bulk-audit\n")?;
            Some(s)
        }
        None => None,
    };
    staging.commit()?;
    sw.lap("other outputs");
    if let Some(s) = recon_staging {
        s.commit()?;
    }
    Ok((resources.len(), exports.len(), findings.len()))
}

/// `<dir>/<export_id>/<Type>.ndjson`: each exported version's body, one line per resource.
fn write_reconstruction(r: &AuditResult, dir: &std::path::Path, bodies: &std::collections::HashMap<(u32, u32), String>) -> Result<()> {
    let h = &r.history;
    let mut used_names = BTreeSet::new();
    for i in export_order(r) {
        let x = &r.resolutions[i];
        if !x.resolved {
            continue;
        }
        let mut name = output::safe_name(&r.events[i].id);
        while !used_names.insert(name.clone()) {
            name.push('_');
        }
        let edir = dir.join(&name);
        output::create_private_dir(&edir)?;
        let mut by_type: BTreeMap<&str, Vec<(u32, u32)>> = BTreeMap::new();
        for row in &x.rows {
            by_type.entry(h.type_name(h.resources[row.resource as usize].resource_type)).or_default().push((row.resource, row.version));
        }
        for (ty, mut keys) in by_type {
            keys.dedup();
            let mut text = String::new();
            for k in keys {
                text.push_str(bodies.get(&k).map(String::as_str).unwrap_or("{}"));
                text.push('\n');
            }
            output::write_text(&edir.join(format!("{}.ndjson", output::safe_name(ty))), &text)?;
        }
    }
    Ok(())
}

fn manifest(cfg: &AuditConfig, r: &AuditResult, resources: usize, exports: usize, findings: &[Finding]) -> serde_json::Value {
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    for f in findings {
        *by_kind.entry(f.kind).or_insert(0) += 1;
    }
    json!({
        "tool": "bulk-audit",
        "version": env!("CARGO_PKG_VERSION"),
        "options": {
            "logs": cfg.logs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "history": cfg.history.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "client": cfg.clients,
            "from": cfg.from.map(|t| t.to_rfc3339()),
            "to": cfg.to.map(|t| t.to_rfc3339()),
            "tz": cfg.zone.name(),
            "format": cfg.format,
            "boundary": cfg.boundary,
            "wildcard": cfg.wildcard.name(),
            "non_compartment": cfg.non_compartment,
            "fhir_version": cfg.fhir_version,
            "skip_inactive_members": cfg.skip_inactive_members,
            "with_resource": cfg.with_resource,
            "reconstruct": cfg.reconstruct.as_ref().map(|p| p.display().to_string()),
            "max_log_gap": cfg.max_log_gap_text,
            "skip_invalid": cfg.skip_invalid,
        },
        "lines_skipped": r.inputs.iter().map(|i| i.lines_skipped).sum::<u64>(),
        "inputs": r.inputs,
        "rows": {"resources": resources, "exports": exports, "findings": findings.len()},
        "findings_by_kind": by_kind,
        "log_coverage": r.coverage,
        "history": {
            "resources": r.history.resources.len(),
            "versions": r.history.version_count,
            "duplicate_copies_ignored": r.history.duplicates,
            "conflicting_copies": r.history.conflicts.len(),
            "versions_per_type": r.history.versions_per_type(),
        },
    })
}

/// One line per export for stdout.
pub fn summary_lines(r: &AuditResult) -> Vec<String> {
    export_order(r)
        .into_iter()
        .map(|i| {
            let e = &r.events[i];
            let x = &r.resolutions[i];
            let when = e.time.map(|t| t.to_rfc3339()).unwrap_or_else(|| "time unknown".into());
            let who = e.client_id.as_deref().unwrap_or("(no client)");
            let target = match (&e.group_id, e.level) {
                (Some(g), _) => format!("group {g}"),
                (None, l) => l.as_str().to_string(),
            };
            let state = if !e.accepted {
                format!("rejected ({})", e.status.map(|s| s.to_string()).unwrap_or_default())
            } else if x.resolved {
                let patients: BTreeSet<u32> = x.rows.iter().filter_map(|row| row.patient).collect();
                let pc = if e.level == kickoff::Level::System { patients.len() } else { x.patients.len() };
                format!("{} patients, {} resources, {} rows", pc, x.counts.values().sum::<u64>(), x.rows.len())
            } else {
                "not resolved".into()
            };
            format!("{}  {}  {}  {}  {}  {} findings", e.id, when, who, target, state, x.findings.len())
        })
        .collect()
}
