//! The audit from end to end, as orchestration only: read the logs and find the kickoffs, read
//! the history into the version index, resolve every selected export in parallel, cross-check
//! with the server's own evidence, and write the tables, the manifest and the reconstruction.

mod audit_events;
pub(crate) mod completeness;
mod config;
mod manifest;
mod output_tables;
mod reconstruct;
mod report;
mod summary;

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::timestamp::Zone;
use rayon::prelude::*;

use crate::bodies;
use crate::error::Skipped;
use crate::error::{Error, Result};
use crate::fhir::compartment::Compartment;
use crate::fhir::types as fhir_types;
use crate::history::forms::Layout;
use crate::history::{self, ParseOptions};
use crate::index::{self, Boundary, History};
use crate::logs;
use crate::output::{self, Staging};
use crate::progress;
use crate::rules::evidence::{self, StatusMatch};
use crate::rules::findings::{Finding, FindingKind};
use crate::rules::kickoff::{self, ExportEvent};
use crate::rules::resolve::{self, NonCompartment, Resolution, ResolveOptions};
use crate::source::{self, InputFile, InputRecord};
use crate::stopwatch::Stopwatch;
use crate::timestamp::Instant;

pub(crate) use config::{AuditConfig, Outputs, ReadOptions, RuleOptions, Selection};
#[cfg(test)]
pub(crate) use output_tables::ResourceRows;
pub(crate) use output_tables::{finding_columns, kickoffs_table, planned_exports_table, SourceNames};
pub(crate) use summary::{failed_on, nothing_resolved, summary_lines};

/// What an audit found, before it is written.
pub(crate) struct AuditResult {
    pub(crate) events: Vec<ExportEvent>,
    pub(crate) resolutions: Vec<Resolution>,
    pub(crate) statuses: Vec<Option<StatusMatch>>,
    /// Findings not tied to one export (log gaps, version conflicts, orphan statuses).
    pub(crate) general_findings: Vec<Finding>,
    pub(crate) history: History,
    pub(crate) history_files: Vec<InputFile>,
    /// Where each history file's table rows are, for re-reading their bodies.
    pub(crate) layouts: Vec<Layout>,
    pub(crate) inputs: Vec<InputRecord>,
    pub(crate) coverage: logs::Coverage,
    /// What the logs hold before `--client`/`--from`/`--to` chose among the kickoffs.
    pub(crate) seen: Seen,
}

/// What the logs hold, for telling a user whose selection resolved nothing what there was.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Seen {
    /// Requests in the logs, and the kickoffs among them.
    pub(crate) requests: usize,
    pub(crate) kickoffs: usize,
    /// The clients of the kickoffs (or, with none, of every request), each once.
    pub(crate) clients: std::collections::BTreeSet<String>,
}

impl Seen {
    fn of(events: &[ExportEvent], logs: &logs::Logs) -> Seen {
        let mut clients: std::collections::BTreeSet<String> =
            events.iter().filter_map(|e| e.client_id.clone()).collect();
        if events.is_empty() {
            clients = logs.requests.iter().filter_map(|r| r.client_id.clone()).collect();
        }
        Seen { requests: logs.requests.len(), kickoffs: events.len(), clients }
    }
}

/// The row counts of what was written.
pub(crate) struct Written {
    pub(crate) resources: usize,
    pub(crate) exports: usize,
    pub(crate) findings: usize,
}

/// Whether an export is selected by `--client`, `--from` and `--to`.
pub(crate) fn selected(e: &ExportEvent, clients: &[String], from: Option<Instant>, to: Option<Instant>) -> bool {
    let client_ok = clients.is_empty() || e.client_id.as_ref().is_some_and(|c| clients.contains(c));
    let from_ok = from.is_none_or(|f| e.time.is_some_and(|t| t >= f));
    let to_ok = to.is_none_or(|l| e.time.is_some_and(|t| t <= l));
    client_ok && from_ok && to_ok
}

/// Reads the logs and finds the kickoffs (the `exports` command, and the audit's first step).
pub(crate) fn read_exports(
    log_paths: &[PathBuf],
    zone: &Zone,
    max_gap_nanos: i64,
    skip_invalid: bool,
) -> Result<(Vec<ExportEvent>, logs::Logs)> {
    let files = source::collect_for("--logs", log_paths)?;
    progress::add_total(files.iter().filter_map(|f| f.size).sum());
    let l = logs::read(&files, zone, max_gap_nanos, skip_invalid)?;
    let events = kickoff::find(&l.requests, zone)?;
    Ok((events, l))
}

/// What reading the inputs found besides the version index: every kickoff (before `--client`,
/// `--from` and `--to` choose), what the logs hold, the lines skipped (the logs', then the
/// history's), the history files and where their rows are, the FHIR types their names and tables
/// name, and every input read. A stored index keeps it in its `index.json`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Reading {
    pub(crate) events: Vec<ExportEvent>,
    pub(crate) seen: Seen,
    pub(crate) coverage: logs::Coverage,
    pub(crate) skipped: Vec<Skipped>,
    pub(crate) history_files: Vec<InputFile>,
    pub(crate) layouts: Vec<Layout>,
    /// Types a history file or table is named for (dumped, even if empty).
    pub(crate) named_types: BTreeSet<String>,
    pub(crate) inputs: Vec<InputRecord>,
}

/// The whole audit: read the inputs, then resolve.
pub(crate) fn run(cfg: &AuditConfig) -> Result<AuditResult> {
    let (reading, h) = read(cfg)?;
    Ok(resolve_all(cfg, reading, h))
}

/// Reads the logs and the history into the kickoffs and the version index.
pub(crate) fn read(cfg: &AuditConfig) -> Result<(Reading, History)> {
    let mut sw = Stopwatch::new();
    // Listed first, so the progress total holds the history from the start.
    let history_files = source::collect_for("--history", &cfg.read.history)?;
    progress::add_total(history_files.iter().filter_map(|f| f.size).sum());
    progress::stage("reading logs");
    let (events, log_data) =
        read_exports(&cfg.read.logs, &cfg.read.zone, cfg.read.max_log_gap_nanos, cfg.read.skip_invalid)?;
    sw.lap("logs");
    let seen = Seen::of(&events, &log_data);

    let compartment = Compartment::load(cfg.rules.fhir_version);
    progress::stage("reading history");
    let mut parse_opts =
        ParseOptions::new(&compartment, cfg.read.zone, cfg.rules.non_compartment == NonCompartment::Referenced);
    parse_opts.skip_invalid = cfg.read.skip_invalid;
    parse_opts.tsv_columns = cfg.read.tsv_columns.clone();
    parse_opts.lines = cfg.read.lines;
    let (h, reading) = index::build(|to_index| history::read(&history_files, &parse_opts, to_index))?;
    let history::FilesRead { records: history_inputs, skipped: history_skipped, layouts } = reading;
    sw.lap("history: read and index");
    // A shard of only the logs or only part of the history is checked in the union it joins.
    if !cfg.read.allow_empty_history && !cfg.read.logs.is_empty() && !cfg.read.history.is_empty() {
        nothing_in_force(cfg, &events, &h)?;
    }
    let logs::Logs { coverage, inputs: mut all_inputs, mut skipped, .. } = log_data;
    skipped.extend(history_skipped);
    all_inputs.extend(history_inputs);
    let named_types = history::named_types(&history_files, &layouts, &fhir_types::fhir_types(cfg.rules.fhir_version));
    Ok((Reading { events, seen, coverage, skipped, history_files, layouts, named_types, inputs: all_inputs }, h))
}

/// A history that cannot answer any export is an input error, never an audit of nothing: one
/// that holds no version at all, or one whose every version was written at or after the last
/// accepted kickoff (nothing of it was in force when any export ran).
pub(crate) fn nothing_in_force(cfg: &AuditConfig, events: &[ExportEvent], h: &History) -> Result<()> {
    let paths = cfg.read.history.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ");
    let advice = "give the history dumps the audit needs (README: \"What an audit needs\"), or \
                  --allow-empty-history to audit against it anyway (every export then incomplete)";
    if h.version_count == 0 {
        return Err(Error::Usage(format!(
            "--history {paths}: holds no resource version at all (no file, or no line that is one): an audit of \
             nothing would read as \"nothing was disclosed\"; {advice}"
        )));
    }
    let last_kickoff = events.iter().filter(|e| e.accepted).filter_map(|e| e.time).max();
    let first_version = h.resources.iter().filter_map(|r| r.versions.first()).map(|v| v.last_updated).min();
    if let (Some(t), Some(first)) = (last_kickoff, first_version) {
        let none_before = match cfg.rules.boundary {
            Boundary::Strict => first >= t,
            Boundary::Inclusive => first > t,
        };
        if none_before {
            return Err(Error::Usage(format!(
                "--history {paths}: every version in it was written at or after the last accepted kickoff ({}): \
                 nothing of it was in force when any export ran, so it cannot be the history those exports read; {advice}",
                t.to_rfc3339()
            )));
        }
    }
    Ok(())
}

/// Resolves every selected export against the index and gathers the findings not tied to one.
pub(crate) fn resolve_all(cfg: &AuditConfig, reading: Reading, h: History) -> AuditResult {
    resolve_planned(cfg, reading, h, None)
}

/// `resolve_all`, or with `plan` (the types the whole history holds, `h` holding only its small
/// resources) every export resolved through step 3 only: what the SQL over shards needs.
pub(crate) fn resolve_planned(
    cfg: &AuditConfig,
    reading: Reading,
    h: History,
    plan: Option<&BTreeSet<String>>,
) -> AuditResult {
    let mut sw = Stopwatch::new();
    let Reading { events, seen, coverage, skipped, history_files, layouts, named_types, inputs } = reading;
    let events: Vec<ExportEvent> =
        events.into_iter().filter(|e| selected(e, &cfg.select.clients, cfg.select.from, cfg.select.to)).collect();
    let compartment = Compartment::load(cfg.rules.fhir_version);
    let fhir_types = fhir_types::fhir_types(cfg.rules.fhir_version);
    let ropts = ResolveOptions {
        boundary: cfg.rules.boundary,
        wildcard_types: cfg.rules.wildcard.expand(&fhir_types.iter().cloned().collect::<Vec<_>>()),
        fhir_types,
        fhir_version_name: cfg.rules.fhir_version.name(),
        non_compartment: cfg.rules.non_compartment,
        skip_inactive_members: cfg.rules.skip_inactive_members,
        compartment: &compartment,
        named_types: &named_types,
        present_types: plan,
        selection_only: plan.is_some(),
    };
    progress::stage("resolving exports");
    let mut resolutions: Vec<Resolution> = events.par_iter().map(|e| resolve::resolve(e, &h, &ropts)).collect();
    let (statuses, orphans) = evidence::match_statuses(&events, &mut resolutions, &h, plan.is_none());
    // Each export's findings in one order, whatever step found them: (kind, resource, detail).
    resolutions.par_iter_mut().for_each(|r| {
        r.findings.sort();
        r.findings.dedup();
    });
    sw.lap("resolve");

    let mut general = orphans;
    for s in &skipped {
        let span = match s.lines {
            0 => " (the rest of the file)".to_string(),
            1 => String::new(),
            n => format!(" ({n} lines)"),
        };
        general.push(Finding::new(
            "",
            FindingKind::InputSkipped,
            format!("{}:{} (byte {}){span}: {}", s.path.display(), s.line, s.offset, s.reason),
        ));
    }
    for g in &coverage.gaps {
        general.push(Finding::new(
            "",
            FindingKind::LogGap,
            format!("no log line between {} and {} ({:.0} s, more than --max-log-gap {}): kickoffs in this span are unknown", g.from, g.to, g.seconds, cfg.read.max_log_gap),
        ));
    }
    let names = output_tables::SourceNames::new(&history_files);
    for c in &h.conflicts {
        general.push(
            Finding::new(
                "",
                FindingKind::VersionConflict,
                format!(
                    "the same version appears twice with different contents: kept {}, ignored {}",
                    names.text(&c.kept),
                    names.text(&c.dropped)
                ),
            )
            .about(&c.resource_type, &c.id, &c.version_id),
        );
    }
    general.sort();
    AuditResult {
        events,
        resolutions,
        statuses,
        general_findings: general,
        history: h,
        history_files,
        layouts,
        inputs,
        coverage,
        seen,
    }
}

/// Writes every output of the audit.
pub(crate) fn write(cfg: &AuditConfig, r: &AuditResult) -> Result<Written> {
    let staging = Staging::begin(&cfg.outputs.out, "audit")?;
    let mut sw = Stopwatch::new();
    // Re-read into a spill file inside the staging folder (private, removed before the commit,
    // and with the folder on failure or interrupt): memory holds where each body is, not the
    // bodies.
    let bodies = if cfg.outputs.with_resource || cfg.outputs.reconstruct.is_some() {
        let mut wanted: Vec<bodies::VersionKey> =
            r.resolutions.iter().flat_map(|x| x.rows.iter().map(|row| (row.resource, row.version))).collect();
        wanted.sort_unstable();
        wanted.dedup();
        Some(bodies::read(&r.history_files, &r.layouts, &r.history, &wanted, &staging.dir.join(BODIES_SPILL))?)
    } else {
        None
    };
    if bodies.is_some() {
        sw.lap("bodies re-read");
    }

    progress::stage("writing");
    let ext = cfg.outputs.format.extension();
    let resources = output_tables::ResourceRows::new(r, if cfg.outputs.with_resource { bodies.as_ref() } else { None });
    let exports = output_tables::exports_table(r);
    let findings = output_tables::all_findings(r);
    // The counts are known before anything is written: the manifest and the report need not
    // wait for the big table, and the report is rendered while it is written.
    let written = Written {
        resources: output::Rows::len(&resources),
        exports: output::Rows::len(&exports),
        findings: findings.len(),
    };
    let manifest = manifest::manifest(cfg, r, &written, &findings);
    sw.lap("resources table");
    let (resources_written, report) = rayon::join(
        || output::write_table(&resources, &staging.dir.join(format!("resources.{ext}")), cfg.outputs.format),
        || cfg.outputs.report.then(|| report::render(r, &manifest)),
    );
    resources_written?;
    if let Some(b) = &bodies {
        b.check()?;
    }
    sw.lap("resources write (and the report rendered)");
    output::write_table(&exports, &staging.dir.join(format!("exports.{ext}")), cfg.outputs.format)?;
    output::write_table(
        &output_tables::findings_table(&findings),
        &staging.dir.join(format!("findings.{ext}")),
        cfg.outputs.format,
    )?;
    output::write_json(&staging.dir.join(output::MANIFEST), &manifest)?;
    if cfg.outputs.audit_events {
        audit_events::write(r, &staging.dir)?;
    }
    if let Some(html) = report {
        output::write_text(&staging.dir.join("report.html"), &html)?;
    }

    let recon_staging = match (&cfg.outputs.reconstruct, &bodies) {
        (Some(dir), Some(bodies)) => {
            let s = Staging::begin(dir, "reconstruct")?;
            reconstruct::write(r, &s.dir, bodies)?;
            Some(s)
        }
        _ => None,
    };
    // The spill files go before the folder is checksummed and moved into place.
    drop(resources);
    if let Some(b) = bodies {
        b.remove()?;
    }
    staging.commit()?;
    sw.lap("other outputs");
    if let Some(s) = recon_staging {
        s.commit()?;
    }
    Ok(written)
}

/// The spill file of re-read bodies, inside the staging folder.
const BODIES_SPILL: &str = ".bodies.spill";
