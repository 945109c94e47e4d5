//! The stored version index (`bulk-audit index`, `audit --index`): the inputs read once into
//! Parquet tables that an audit — this tool's, or `sql/audit.sql` on DuckDB or Spark — resolves
//! exports against, and `index.json`, which names the tool version and the options that made
//! it, and keeps what reading found besides the versions (the kickoffs, skipped lines, inputs).

#[cfg(feature = "parquet")]
mod load;
#[cfg(feature = "parquet")]
mod plan;
mod shards;
mod tables;
mod verify;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::audit::{self, AuditConfig, AuditResult, ReadOptions, Reading, RuleOptions};
use crate::error::{Error, Result};
use crate::history::pg_text::Columns;
use crate::index::Conflict;
use crate::output::{self, Staging};

/// The layout of the index's tables; an index of another layout is refused.
const LAYOUT: u32 = 4;
/// The file that describes an index.
pub(crate) const INFO: &str = "index.json";

/// The options an index was built with: those that decide what is read and which rows an
/// export has. An audit from the index runs with these; the fields are the options' clap ids.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IndexOptions {
    pub(crate) logs: Vec<PathBuf>,
    pub(crate) history: Vec<PathBuf>,
    pub(crate) tz: Option<String>,
    pub(crate) max_log_gap: String,
    pub(crate) skip_invalid: bool,
    pub(crate) tsv_columns: Option<Columns>,
    #[serde(flatten)]
    pub(crate) rules: RuleOptions,
}

/// One option two builds differ in: its clap id, and each build's value as people write it.
pub(crate) struct Difference {
    pub(crate) id: &'static str,
    pub(crate) this: String,
    pub(crate) other: String,
}

impl IndexOptions {
    pub(crate) fn of(read: &ReadOptions, rules: &RuleOptions) -> IndexOptions {
        IndexOptions {
            logs: read.logs.clone(),
            history: read.history.clone(),
            tz: read.zone.name().map(str::to_string),
            max_log_gap: read.max_log_gap.clone(),
            skip_invalid: read.skip_invalid,
            tsv_columns: read.tsv_columns.clone(),
            rules: rules.clone(),
        }
    }

    /// The options (all but the inputs) in which this build differs from `other`, compared as
    /// values: a duration is the same however it is written (`1d`, `24h`).
    pub(crate) fn differences(&self, other: &IndexOptions) -> Vec<Difference> {
        let mut found = Vec::new();
        let mut compare = |id: &'static str, same: bool, this: &dyn erased::Shown, other: &dyn erased::Shown| {
            if !same {
                found.push(Difference { id, this: this.shown(), other: other.shown() });
            }
        };
        let (a, b) = (self, other);
        let gap = |s: &str| crate::timestamp::parse_duration(s).ok();
        compare("tz", a.tz == b.tz, &a.tz, &b.tz);
        compare("max_log_gap", gap(&a.max_log_gap) == gap(&b.max_log_gap), &a.max_log_gap, &b.max_log_gap);
        compare("skip_invalid", a.skip_invalid == b.skip_invalid, &a.skip_invalid, &b.skip_invalid);
        compare("tsv_columns", a.tsv_columns == b.tsv_columns, &a.tsv_columns, &b.tsv_columns);
        let (r, s) = (&a.rules, &b.rules);
        compare("boundary", r.boundary == s.boundary, &r.boundary, &s.boundary);
        compare("wildcard", r.wildcard == s.wildcard, &r.wildcard, &s.wildcard);
        compare("non_compartment", r.non_compartment == s.non_compartment, &r.non_compartment, &s.non_compartment);
        compare("fhir_version", r.fhir_version == s.fhir_version, &r.fhir_version, &s.fhir_version);
        compare(
            "skip_inactive_members",
            r.skip_inactive_members == s.skip_inactive_members,
            &r.skip_inactive_members,
            &s.skip_inactive_members,
        );
        found
    }
}

/// An option's value as a person would write it on the command line.
mod erased {
    pub(crate) trait Shown {
        fn shown(&self) -> String;
    }

    impl<T: serde::Serialize> Shown for T {
        fn shown(&self) -> String {
            match serde_json::to_value(self) {
                Ok(serde_json::Value::String(s)) => s,
                Ok(serde_json::Value::Null) => "(none)".into(),
                Ok(v) => v.to_string(),
                Err(_) => "(unknown)".into(),
            }
        }
    }
}

/// `index.json`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Info {
    tool: String,
    version: String,
    layout: u32,
    options: IndexOptions,
    /// Versions and resources indexed, for people (the tables hold them).
    versions: u64,
    resources: u64,
    duplicate_copies_ignored: u64,
    conflicts: Vec<Conflict>,
    /// The types it holds versions of (a plan over shards takes their union).
    present_types: Vec<String>,
    reading: Reading,
}

/// Reads and checks `IDX/index.json`: written by this version of the tool, in this layout; then
/// verifies the whole index (`verify`) once per run, and reads `index.json` from the text that
/// was verified.
fn read_info(dir: &Path) -> Result<Info> {
    let path = dir.join(INFO);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::Usage(format!("--index {}: not a bulk-audit index ({}: {e})", dir.display(), path.display()))
    })?;
    let head: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Usage(format!("--index {}: {INFO} is unreadable ({e})", dir.display())))?;
    let (tool, version) = (head["tool"].as_str().unwrap_or(""), head["version"].as_str().unwrap_or(""));
    if tool != "bulk-audit" || version != env!("CARGO_PKG_VERSION") || head["layout"].as_u64() != Some(LAYOUT.into()) {
        return Err(Error::Usage(format!(
            "--index {}: built by {} {} (layout {}), and this is bulk-audit {} (layout {LAYOUT}): build the index again \
             with this version (bulk-audit index)",
            dir.display(),
            if tool.is_empty() { "an unknown tool" } else { tool },
            version,
            head["layout"],
            env!("CARGO_PKG_VERSION")
        )));
    }
    let text = verified(dir)?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Usage(format!("--index {}: {INFO} is unreadable ({e})", dir.display())))
}

/// `index.json`'s text once the index in `dir` is verified; verified once per run.
fn verified(dir: &Path) -> Result<String> {
    static VERIFIED: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());
    let mut done = VERIFIED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, text)) = done.iter().find(|(d, _)| d == dir) {
        return Ok(text.clone());
    }
    // Reading a table's footer for its identity decodes Parquet too.
    #[cfg(feature = "parquet")]
    let text = undecodable_is_an_error(dir, || verify::verify(dir))?;
    #[cfg(not(feature = "parquet"))]
    let text = verify::verify(dir)?;
    done.push((dir.to_path_buf(), text.clone()));
    Ok(text)
}

/// The shard folders `--index` names (one index, several, or folders of them), in order.
pub(crate) use shards::{named, shard_dirs};

/// The options the index in `dirs` was built with (each checked to be this version's index; the
/// shards of a union built alike, exactly one of them holding the logs).
pub(crate) fn options(dirs: &[PathBuf]) -> Result<IndexOptions> {
    let infos = dirs.iter().map(|d| read_info(d)).collect::<Result<Vec<Info>>>()?;
    shards::options(dirs, &infos)
}

/// `bulk-audit index`: reads the inputs as an audit does, resolves every kickoff (the kickoff
/// tables carry each export's types and patients), and writes the index folder.
pub(crate) fn build(cfg: &AuditConfig) -> Result<IndexSummary> {
    let (reading, h) = audit::read(cfg)?;
    let reading_kept = serde_json::to_value(&reading).map_err(|e| Error::Internal(e.to_string()))?;
    let conflicts = h.conflicts.clone();
    let duplicates = h.duplicates;
    // Resolved through step 3, as a plan is: the kickoff tables are what the SQL needs.
    let present: std::collections::BTreeSet<String> = h.present_types().into_iter().collect();
    let result = audit::resolve_planned(cfg, reading, h, Some(&present));
    crate::progress::stage("writing the index");
    let staging = Staging::begin(&cfg.outputs.out, "index")?;
    let mut info = serde_json::json!({
        "tool": "bulk-audit",
        "version": env!("CARGO_PKG_VERSION"),
        "layout": LAYOUT,
        "options": IndexOptions::of(&cfg.read, &cfg.rules),
        "versions": result.history.version_count,
        "resources": result.history.resources.len(),
        "duplicate_copies_ignored": duplicates,
        "conflicts": conflicts,
        "present_types": result.history.present_types(),
        "reading": reading_kept,
    });
    // Each table carries the identity of this index.json; index.json names each table's SHA-256.
    tables::write(cfg, &result, &staging.dir, &verify::identity(&info))?;
    let mut names = serde_json::Map::new();
    for table in tables::TABLES {
        let name = format!("{table}.parquet");
        let sha256 = output::written_sha256(&staging.dir.join(&name))?;
        names.insert(name, sha256.into());
    }
    info["tables"] = serde_json::Value::Object(names);
    output::write_json(&staging.dir.join(INFO), &info)?;
    staging.commit()?;
    let summary = IndexSummary {
        versions: result.history.version_count,
        resources: result.history.resources.len(),
        kickoffs: result.events.len(),
    };
    // The process ends soon: freeing the index one allocation at a time would only delay it.
    std::mem::forget(result);
    Ok(summary)
}

/// What `bulk-audit index` wrote, for its summary line.
pub(crate) struct IndexSummary {
    pub(crate) versions: u64,
    pub(crate) resources: usize,
    pub(crate) kickoffs: usize,
}

/// The fuzz target `stored_index` (`hooks`): the index in `dir` read as `audit --index` reads it
/// (`verified`: checked, then loaded) or as an index re-summed by a forger would be (loaded
/// without the checks). Returns the versions loaded; never panics.
#[cfg(all(feature = "parquet", feature = "hooks"))]
pub(crate) fn load_for_fuzzing(dir: &Path, verified: bool) -> Result<u64> {
    let text = if verified {
        verify::verify(dir)?
    } else {
        std::fs::read_to_string(dir.join(INFO)).map_err(|e| Error::Usage(e.to_string()))?
    };
    let info: Info = serde_json::from_str(&text).map_err(|e| Error::Usage(e.to_string()))?;
    let h = undecodable_is_an_error(dir, || load::history(dir, &info.reading.history_files))?;
    Ok(h.version_count)
}

#[cfg(feature = "parquet")]
pub(crate) use plan::plan;

/// `bulk-audit plan` in a build without Parquet: refused.
#[cfg(not(feature = "parquet"))]
pub(crate) fn plan(_cfg: &AuditConfig) -> Result<PlanSummary> {
    Err(Error::Usage("this build has no Parquet support (the `parquet` feature is off): no plan".into()))
}

/// What `bulk-audit plan` wrote, for its summary line.
pub(crate) struct PlanSummary {
    pub(crate) kickoffs: usize,
    pub(crate) incomplete: usize,
    pub(crate) versions: u64,
}

/// `bulk-audit audit --index` in a build without Parquet: refused.
#[cfg(not(feature = "parquet"))]
pub(crate) fn audit(_cfg: &AuditConfig, _dirs: &[PathBuf]) -> Result<AuditResult> {
    Err(Error::Usage("this build has no Parquet support (the `parquet` feature is off): no --index".into()))
}

/// `bulk-audit audit --index`: the version index loaded from the folder (or the union of its
/// shards: every shard's versions fed to one index), then the same resolution as an audit of
/// the dumps.
#[cfg(feature = "parquet")]
pub(crate) fn audit(cfg: &AuditConfig, dirs: &[PathBuf]) -> Result<AuditResult> {
    let mut sw = crate::stopwatch::Stopwatch::new();
    let infos = dirs.iter().map(|d| read_info(d)).collect::<Result<Vec<Info>>>()?;
    shards::options(dirs, &infos)?;
    // An index of the logs and the history together was checked to answer when it was built;
    // any other is one history only now.
    let checked = matches!(&infos[..], [one] if !one.options.logs.is_empty() && !one.options.history.is_empty());
    crate::progress::stage("loading the index");
    let mut h = load_union(dirs, &infos, None)?;
    // A copy of a version in two shards is met only now; those within a shard were counted
    // when it was built.
    h.duplicates += infos.iter().map(|i| i.duplicate_copies_ignored).sum::<u64>();
    h.conflicts = shards::conflicts(&infos, std::mem::take(&mut h.conflicts));
    sw.lap("index: load");
    if cfg.outputs.with_resource || cfg.outputs.reconstruct.is_some() {
        for (dir, info) in dirs.iter().zip(&infos) {
            check_history_files(dir, &info.reading)?;
        }
        sw.lap("index: history files unchanged");
    }
    let reading = shards::reading(infos);
    if !checked && !cfg.read.allow_empty_history {
        audit::nothing_in_force(cfg, &reading.events, &h)?;
    }
    Ok(audit::resolve_all(cfg, reading, h))
}

/// One index of every shard's versions (of the types `only` names; `None`: all), each shard's
/// file numbers moved past those of the shards before it.
#[cfg(feature = "parquet")]
fn load_union(
    dirs: &[PathBuf],
    infos: &[Info],
    only: Option<&std::collections::BTreeSet<&str>>,
) -> Result<crate::index::History> {
    let (h, ()) = crate::index::build(|to_index| {
        for ((dir, info), first_file) in dirs.iter().zip(infos).zip(shards::first_files(infos)) {
            let files = info.reading.history_files.len();
            undecodable_is_an_error(dir, || load::feed(dir, first_file, files, only, to_index))?;
        }
        Ok(())
    })?;
    Ok(h)
}

/// Runs `load`, turning a panic of the Parquet decoder (a table that passed its checksum yet
/// cannot be decoded: written by something else) into an error naming the index, never a crash.
#[cfg(feature = "parquet")]
fn undecodable_is_an_error<T>(dir: &Path, load: impl FnOnce() -> Result<T>) -> Result<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(load));
    std::panic::set_hook(hook);
    loaded.unwrap_or_else(|_| {
        Err(Error::Usage(format!(
            "--index {}: a table cannot be decoded (its Parquet is damaged or was not written by bulk-audit index); \
             build the index again",
            dir.display()
        )))
    })
}

#[cfg(feature = "parquet")]
/// Before bodies are re-read from the files the index names: each is still there, the same
/// size and with the same SHA-256 as when it was indexed.
fn check_history_files(dir: &Path, reading: &Reading) -> Result<()> {
    let refuse = |path: &str, why: String| {
        Err(Error::Usage(format!(
            "--index {}: the bodies cannot be re-read: history file {path} {why}; give it back as it was, or build the \
             index again",
            dir.display()
        )))
    };
    let files: Vec<_> = reading
        .history_files
        .iter()
        .zip(reading.inputs.iter().filter(|i| i.role == crate::source::Role::History))
        .collect();
    for (file, record) in &files {
        if file.is_stream() {
            return Err(Error::Usage(format!(
                "--index {}: the bodies cannot be re-read: history input {} was a stream (standard input, a pipe or \
                 a FIFO) read once; build the index from files to audit with --with-resource or --reconstruct",
                dir.display(),
                record.path
            )));
        }
        let meta = match std::fs::metadata(&file.path) {
            Ok(m) => m,
            Err(e) => return refuse(&record.path, format!("is gone ({e})")),
        };
        if meta.len() != record.size {
            return refuse(&record.path, format!("changed: {} bytes, {} when indexed", meta.len(), record.size));
        }
    }
    // The hashes on every core (each file is one sequential stream); the first change in file
    // order is the one named.
    use rayon::prelude::*;
    let now: Vec<std::io::Result<String>> =
        files.par_iter().map(|(file, _)| crate::source::sha256_file(&file.path)).collect();
    for ((file, record), now) in files.iter().zip(now) {
        let now = now.map_err(|e| Error::io(&file.path, e))?;
        if now != record.sha256 {
            return refuse(&record.path, format!("changed: SHA-256 {now}, {} when indexed", record.sha256));
        }
    }
    Ok(())
}
