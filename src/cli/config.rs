//! From the arguments to one checked configuration: every option is read and checked here,
//! before any input is opened — times and the zone parsed, the `--wildcard` file read, the
//! `--out` and `--reconstruct` folders known to be writable and not someone else's, the input
//! paths known to exist — so a mistake costs a tenth of a second, not a read of the whole dump.

use super::{
    AuditArgs, BoundaryArg, FhirVersionArg, FormatArg, IndexArgs, NonCompartmentArg, PlanArgs, ReadArgs, RuleArgs,
};
use crate::audit::{AuditConfig, Outputs, ReadOptions, RuleOptions, Selection};
use crate::error::{Error, Result};
use crate::fhir::compartment::FhirVersion;
use crate::history::pg_text::Columns;
use crate::index::Boundary;
use crate::index_files::IndexOptions;
use crate::output::{self, overlapping, Format};
use crate::rules::resolve::NonCompartment;
use crate::rules::scopes::Wildcard;
use crate::source;
use crate::timestamp::{self, parse_duration, Stamp, TimeError, Zone};

/// `256MiB`, `1GiB`, `64k`, `1000000` → bytes (k/M/G and KiB/MiB/GiB alike are powers of 1024).
pub(crate) fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let bad = || format!("unreadable size {s:?} (expected e.g. 256MiB, 1GiB, 64k)");
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let n: u64 = t[..digits].parse().map_err(|_| bad())?;
    let mult: u64 = match t[digits..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).filter(|&b| b > 0).ok_or_else(bad)
}

/// `--tz`: the zone timestamps without an offset were written in; none when not given.
pub(crate) fn zone(tz: Option<&str>) -> Result<Zone> {
    match tz {
        Some(name) => timestamp::parse_zone(name).map(Zone::given).map_err(|e| Error::Usage(format!("--tz: {e}"))),
        None => Ok(Zone::NONE),
    }
}

/// `--from` and `--to` read in `zone`: each covers the unit it is written in (`--to 2022-12-05`
/// takes the whole day).
pub(crate) fn window(
    from: Option<&str>,
    to: Option<&str>,
    zone: &Zone,
) -> Result<(Option<crate::timestamp::Instant>, Option<crate::timestamp::Instant>)> {
    let time = |opt: Option<&str>, name: &str| -> Result<Option<Stamp>> {
        opt.map(|s| {
            timestamp::parse_stamp(s, zone).map_err(|e| match e {
                TimeError::NoZone => Error::Usage(format!(
                    "--{name} {s}: no UTC offset, and no --tz: write the offset (e.g. {s}Z) or give --tz"
                )),
                e => Error::Usage(format!("--{name}: {e}")),
            })
        })
        .transpose()
    };
    Ok((time(from, "from")?.map(|s| s.at), time(to, "to")?.map(Stamp::end)))
}

/// The audit configuration the command line asks for, checked. With `--index`, the options
/// that shaped the index are taken from it, and one given otherwise is refused.
pub(crate) fn audit_config(mut a: AuditArgs) -> Result<AuditConfig> {
    // `out/` and `out/.` are `out`: a trailing separator would follow a link the checks must see.
    a.out = output::clean(&a.out);
    a.reconstruct = a.reconstruct.as_deref().map(output::clean);
    let shards = if a.index.is_empty() { Vec::new() } else { crate::index_files::shard_dirs(&a.index)? };
    let stored = if shards.is_empty() { None } else { Some(crate::index_files::options(&shards)?) };
    if stored.is_none() && (a.read.logs.is_empty() || a.read.history.is_empty()) {
        return Err(Error::Usage(
            "audit needs --logs and --history, or --index IDX (a version index written by bulk-audit index)".into(),
        ));
    }
    let given = |id: &str| a.given.contains(&id);
    let tz = match &stored {
        Some(s) if !given("tz") => s.tz.clone(),
        _ => a.read.tz.clone(),
    };
    let zone = zone(tz.as_deref())?;
    let (from, to) = window(a.from.as_deref(), a.to.as_deref(), &zone)?;
    if let Some(dir) = &a.reconstruct {
        if overlapping(dir, &a.out) {
            return Err(Error::Usage(format!(
                "--reconstruct {} and --out {}: the same folder, or one inside the other (each is replaced whole)",
                dir.display(),
                a.out.display()
            )));
        }
    }
    let (mut read, mut rules) = (read_options(a.read, zone, stored.is_none())?, rule_options(a.rules)?);
    let mut index = Vec::new();
    if let Some(stored) = stored {
        let dir = crate::index_files::named(&shards);
        let differ: Vec<String> = IndexOptions::of(&read, &rules)
            .differences(&stored)
            .into_iter()
            .filter(|d| given(d.id))
            .map(|d| format!("--{} {} (the index has {})", d.id.replace('_', "-"), d.this, d.other))
            .collect();
        if !differ.is_empty() {
            return Err(Error::Usage(format!(
                "--index {dir}: built with other options than this audit asks: {}; leave them out to use the index's, \
                 or build another index with them",
                differ.join(", ")
            )));
        }
        (read, rules) = from_index(read, stored, &dir)?;
        index = shards;
    }
    for kind in &a.fail_on {
        if kind != "incomplete" && crate::rules::findings::FindingKind::from_name(kind).is_none() {
            return Err(Error::Usage(format!(
                "--fail-on {kind}: not a finding kind (the kind column of findings, e.g. group-not-found, \
                 boundary-ambiguous) nor incomplete"
            )));
        }
    }
    let outputs = Outputs {
        out: a.out,
        format: match a.format {
            FormatArg::Parquet => Format::Parquet,
            FormatArg::Csv => Format::Csv,
        },
        with_resource: a.with_resource,
        reconstruct: a.reconstruct,
        audit_events: a.audit_events,
        report: !a.no_report,
        fail_on: a.fail_on,
    };
    let cfg = AuditConfig { read, rules, select: Selection { clients: a.clients, from, to }, outputs, index };
    // The outputs last, once every input is known (with --index, the files the index names).
    let mut inputs: Vec<std::path::PathBuf> = cfg.read.logs.iter().chain(&cfg.read.history).cloned().collect();
    inputs.extend(cfg.index.iter().cloned());
    output::claim(&cfg.outputs.out, "audit", a.force, "--out", &inputs)?;
    if let Some(dir) = &cfg.outputs.reconstruct {
        output::claim(dir, "reconstruct", a.force, "--reconstruct", &inputs)?;
    }
    if cfg.index.is_empty() && (cfg.outputs.with_resource || cfg.outputs.reconstruct.is_some()) {
        let history = source::collect(&cfg.read.history)?;
        if let Some(stream) = history.iter().find(|f| f.is_stream()) {
            let option = if cfg.outputs.with_resource { "--with-resource" } else { "--reconstruct" };
            return Err(Error::Usage(format!(
                "{option} re-reads the bodies from the history files, and {} is a stream (standard input, a pipe or a FIFO) \
                 that can be read only once: save it to a file and give that instead",
                stream.path.display()
            )));
        }
    }
    Ok(cfg)
}

/// What decides reading and the rules, taken from the index (one index or the union of shards
/// named `dir`): the audit runs as the index was built. The zone is read from it already.
fn from_index(mut read: ReadOptions, stored: IndexOptions, dir: &str) -> Result<(ReadOptions, RuleOptions)> {
    read.logs = stored.logs;
    read.history = stored.history;
    read.max_log_gap_nanos =
        parse_duration(&stored.max_log_gap).map_err(|e| Error::Usage(format!("--index {dir}: {e}")))?;
    read.max_log_gap = stored.max_log_gap;
    read.skip_invalid = stored.skip_invalid;
    read.tsv_columns = stored.tsv_columns;
    Ok((read, stored.rules))
}

/// The configuration of `bulk-audit plan`: the union's options, its shards, where to write.
pub(crate) fn plan_config(mut a: PlanArgs) -> Result<AuditConfig> {
    a.out = output::clean(&a.out);
    let shards = crate::index_files::shard_dirs(&a.index)?;
    let stored = crate::index_files::options(&shards)?;
    let zone = zone(stored.tz.as_deref())?;
    // Reading options at their defaults, then the index's, and its rules.
    use clap::{Args, FromArgMatches};
    let defaults = ReadArgs::augment_args(clap::Command::new("defaults"))
        .try_get_matches_from(["defaults"])
        .map_err(|e| Error::Internal(e.to_string()))?;
    let read = ReadArgs::from_arg_matches(&defaults).map_err(|e| Error::Internal(e.to_string()))?;
    let (read, rules) = from_index(read_options(read, zone, false)?, stored, &crate::index_files::named(&shards))?;
    let cfg = AuditConfig { read, rules, select: Selection::default(), outputs: Outputs::into(a.out), index: shards };
    output::claim(&cfg.outputs.out, "plan", a.force, "--out", &cfg.index)?;
    Ok(cfg)
}

/// The configuration of `bulk-audit index`: what an audit reads, and its rules.
pub(crate) fn index_config(mut a: IndexArgs) -> Result<AuditConfig> {
    a.out = output::clean(&a.out);
    if a.read.logs.is_empty() && a.read.history.is_empty() {
        return Err(Error::Usage(
            "index needs --logs, --history or both (a shard of the logs or of part of the history: audit --index \
             takes them together)"
                .into(),
        ));
    }
    let zone = zone(a.read.tz.as_deref())?;
    let (mut read, rules) = (read_options(a.read, zone, true)?, rule_options(a.rules)?);
    if let Some(text) = &a.lines {
        let range = source::LineRange::parse(text).map_err(|e| Error::Usage(format!("--lines {text}: {e}")))?;
        let files = source::collect_for("--history", &read.history)?;
        if files.len() != 1 {
            return Err(Error::Usage(format!(
                "--lines {text}: reads part of one history file, and --history names {} files; give one file (a \
                 shard of each file, or of each part of a big one)",
                files.len()
            )));
        }
        read.lines = Some(range);
    }
    let cfg =
        AuditConfig { read, rules, select: Selection::default(), outputs: Outputs::into(a.out), index: Vec::new() };
    let inputs: Vec<std::path::PathBuf> = cfg.read.logs.iter().chain(&cfg.read.history).cloned().collect();
    output::claim(&cfg.outputs.out, "index", a.force, "--out", &inputs)?;
    Ok(cfg)
}

/// What reading asks, checked. `inputs`: the input paths are checked to exist (not with
/// `--index`).
fn read_options(read: ReadArgs, zone: Zone, inputs: bool) -> Result<ReadOptions> {
    let max_log_gap_nanos =
        parse_duration(&read.max_log_gap).map_err(|e| Error::Usage(format!("--max-log-gap: {e}")))?;
    source::set_max_line(parse_size(&read.max_line).map_err(|e| Error::Usage(format!("--max-line: {e}")))?);
    let tsv_columns = read
        .tsv_columns
        .as_deref()
        .map(|list| {
            Columns::of_names(list.split(',')).ok_or_else(|| {
                Error::Usage(format!(
                    "--tsv-columns {list}: the columns must hold id, txid, ts, resource_type and resource, each once"
                ))
            })
        })
        .transpose()?;
    if inputs {
        // The inputs exist, and streams are where they can be read (nothing is opened here).
        let logs = source::collect_for("--logs", &read.logs)?;
        let history = source::collect_for("--history", &read.history)?;
        let stdin = |files: &[source::InputFile]| files.iter().any(|f| f.path.as_os_str() == source::STDIN);
        if stdin(&logs) && stdin(&history) {
            return Err(Error::Usage(
                "standard input (-) can be read only once: give it to --logs or --history".into(),
            ));
        }
    }
    Ok(ReadOptions {
        logs: read.logs,
        history: read.history,
        zone,
        tsv_columns,
        skip_invalid: read.skip_invalid,
        max_log_gap: read.max_log_gap,
        max_log_gap_nanos,
        allow_empty_history: read.allow_empty_history,
        lines: None,
    })
}

/// What the rules ask, checked (the `--wildcard` file read).
fn rule_options(rules: RuleArgs) -> Result<RuleOptions> {
    Ok(RuleOptions {
        boundary: match rules.boundary {
            BoundaryArg::Strict => Boundary::Strict,
            BoundaryArg::Inclusive => Boundary::Inclusive,
        },
        wildcard: Wildcard::parse(&rules.wildcard)?,
        non_compartment: match rules.non_compartment {
            NonCompartmentArg::All => NonCompartment::All,
            NonCompartmentArg::Referenced => NonCompartment::Referenced,
            NonCompartmentArg::None => NonCompartment::None,
        },
        fhir_version: match rules.fhir_version {
            FhirVersionArg::R4 => FhirVersion::R4,
            FhirVersionArg::R4b => FhirVersion::R4b,
            FhirVersionArg::R5 => FhirVersion::R5,
        },
        skip_inactive_members: rules.skip_inactive_members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("0").is_err() && parse_size("lots").is_err() && parse_size("5 parsecs").is_err());
    }
}
