//! The command line: `bulk-audit audit …` and `bulk-audit exports …`, their options, and the
//! friendly error messages and exit statuses at the edge.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::audit::{self, AuditConfig};
use crate::compartment::FhirVersion;
use crate::error::{Error, Result};
use crate::index::Boundary;
use crate::output::Format;
use crate::resolve::NonCompartment;
use crate::scopes::Wildcard;
use crate::timestamp;

#[derive(Parser, Debug)]
#[command(name = "bulk-audit", version, about = "Which resource versions did each FHIR bulk-data client receive, for which patients, in which $export?",
          long_about = "Reconstructs, offline, what every FHIR $export on an Aidbox server sent: from exported request logs \
                        (Aidbox NDJSON, Elasticsearch, Kibana CSV) and history dumps, one row per exported resource version and patient.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Resolve every export kickoff in the logs against the history and write the audit tables.
    Audit(AuditArgs),
    /// List the export kickoffs found in the logs, as CSV on stdout.
    Exports(ExportsArgs),
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Request logs: files or folders (read recursively); plain, .zst or .gz; Aidbox NDJSON,
    /// Elasticsearch hits or search responses, or Kibana Discover CSV.
    #[arg(long, num_args = 1.., required = true, value_name = "PATH")]
    pub logs: Vec<PathBuf>,
    /// History dumps: files or folders; Aidbox history rows, resources with meta, history
    /// Bundles or Bundle entries, in any mix.
    #[arg(long, num_args = 1.., required = true, value_name = "PATH")]
    pub history: Vec<PathBuf>,
    /// Only exports of this client (repeatable; none = every client).
    #[arg(long = "client", value_name = "ID")]
    pub clients: Vec<String>,
    /// Only exports at or after this time (ISO-8601; without an offset read in --tz).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Only exports at or before this time.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// IANA time zone for timestamps without an offset (Kibana CSV dates).
    #[arg(long, default_value = "UTC", value_name = "IANA")]
    pub tz: String,
    /// Output folder.
    #[arg(long, default_value = "audit-out", value_name = "DIR")]
    pub out: PathBuf,
    /// Table format.
    #[arg(long, value_enum, default_value = "parquet")]
    pub format: Format,
    /// as-of(T): `strict` takes versions with lastUpdated < T (the guide's rule), `inclusive` <= T.
    #[arg(long, value_enum, default_value = "strict")]
    pub boundary: Boundary,
    /// What `*` in a scope grants: smartbox (18 types), aidbox (+ Group), all (every type in the
    /// history), or a file listing types.
    #[arg(long, default_value = "smartbox", value_name = "smartbox|aidbox|all|FILE")]
    pub wildcard: String,
    /// Types outside the patient compartment in group/patient exports: every resource, only
    /// those the exported rows reference, or none.
    #[arg(long, value_enum, default_value = "all")]
    pub non_compartment: NonCompartment,
    /// Which patient compartment table to use.
    #[arg(long, value_enum, default_value = "r4")]
    pub fhir_version: FhirVersion,
    /// Leave out Group members marked inactive or whose period excludes T.
    #[arg(long)]
    pub skip_inactive_members: bool,
    /// Add each version's JSON body to the resources table (column `resource`).
    #[arg(long)]
    pub with_resource: bool,
    /// Also write, per export, <DIR>/<export_id>/<Type>.ndjson with the exact bodies sent.
    #[arg(long, value_name = "DIR")]
    pub reconstruct: Option<PathBuf>,
    /// Report holes in the logs longer than this (e.g. 24h, 90m, 2d, 1h30m).
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    pub max_log_gap: String,
    /// Replace a non-empty --out or --reconstruct folder that holds no previous bulk-audit output.
    #[arg(long)]
    pub force: bool,
    /// Go on past unreadable input lines: each is listed in findings (input-skipped) and
    /// counted in the manifest and the summary. Without it the first one stops the run.
    #[arg(long)]
    pub skip_invalid: bool,
}

#[derive(Args, Debug)]
pub struct ExportsArgs {
    /// Request logs: files or folders.
    #[arg(long, num_args = 1.., required = true, value_name = "PATH")]
    pub logs: Vec<PathBuf>,
    /// Only exports of this client (repeatable).
    #[arg(long = "client", value_name = "ID")]
    pub clients: Vec<String>,
    /// IANA time zone for timestamps without an offset.
    #[arg(long, default_value = "UTC", value_name = "IANA")]
    pub tz: String,
}

/// `24h`, `90m`, `30s`, `2d`, `1h30m`, `1500ms` → nanoseconds.
pub fn parse_duration(s: &str) -> std::result::Result<i64, String> {
    let bad = || format!("unreadable duration {s:?} (expected e.g. 24h, 90m, 2d, 1h30m)");
    let mut total: i64 = 0;
    let mut num = String::new();
    let b = s.trim();
    let mut chars = b.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next().expect("peeked"));
        }
        let n: i64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let mult: i64 = match unit.as_str() {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3600 * 1_000_000_000,
            "d" => 86400 * 1_000_000_000,
            _ => return Err(bad()),
        };
        total = total.checked_add(n.checked_mul(mult).ok_or_else(bad)?).ok_or_else(bad)?;
        any = true;
    }
    if !num.is_empty() {
        // A bare number is seconds.
        total = total.checked_add(num.parse::<i64>().map_err(|_| bad())?.checked_mul(1_000_000_000).ok_or_else(bad)?).ok_or_else(bad)?;
        any = true;
    }
    if !any {
        return Err(bad());
    }
    Ok(total)
}

/// The audit configuration the command line asks for (defaults filled in, times and zone read).
pub fn config_of(a: AuditArgs) -> Result<AuditConfig> {
    let zone = timestamp::parse_zone(&a.tz).map_err(|e| Error::Usage(format!("--tz: {e}")))?;
    let time = |opt: &Option<String>, name: &str| -> Result<Option<timestamp::Instant>> {
        opt.as_deref().map(|s| timestamp::parse(s, &zone).map_err(|e| Error::Usage(format!("--{name}: {e}")))).transpose()
    };
    let from = time(&a.from, "from")?;
    let to = time(&a.to, "to")?;
    let max_log_gap_nanos = parse_duration(&a.max_log_gap).map_err(|e| Error::Usage(format!("--max-log-gap: {e}")))?;
    Ok(AuditConfig {
        logs: a.logs,
        history: a.history,
        clients: a.clients,
        from,
        to,
        zone,
        out: a.out,
        format: a.format,
        boundary: a.boundary,
        wildcard: Wildcard::parse(&a.wildcard),
        non_compartment: a.non_compartment,
        fhir_version: a.fhir_version,
        skip_inactive_members: a.skip_inactive_members,
        with_resource: a.with_resource,
        reconstruct: a.reconstruct,
        max_log_gap_nanos,
        max_log_gap_text: a.max_log_gap,
        force: a.force,
        skip_invalid: a.skip_invalid,
    })
}

fn run_audit(a: AuditArgs) -> Result<()> {
    let cfg = config_of(a)?;
    let result = audit::run(&cfg)?;
    let (rows, exports, findings) = audit::write(&cfg, &result)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for line in audit::summary_lines(&result) {
        let _ = writeln!(out, "{line}");
    }
    let skipped: u64 = result.inputs.iter().map(|i| i.lines_skipped).sum();
    if cfg.skip_invalid {
        let _ = writeln!(out, "{skipped} input lines skipped (--skip-invalid): each is an input-skipped finding");
    }
    let _ = writeln!(out, "{exports} exports, {rows} resource rows, {findings} findings -> {}", cfg.out.display());
    // The process ends here: freeing the index (millions of small allocations) one by one would
    // only delay the exit, by about a tenth of a second at the reference size.
    std::mem::forget(result);
    Ok(())
}

fn run_exports(a: ExportsArgs) -> Result<()> {
    let zone = timestamp::parse_zone(&a.tz).map_err(|e| Error::Usage(format!("--tz: {e}")))?;
    let (events, _) = audit::read_exports(&a.logs, &zone, i64::MAX, false)?;
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(std::io::stdout());
    let _ = w.write_record(["export_id", "client_id", "export_time", "method", "url", "status", "accepted", "level", "tenant", "group_id", "types", "since", "until", "source"]);
    for e in events.iter().filter(|e| audit::selected(e, &a.clients, None, None)) {
        let _ = w.write_record([
            e.id.as_str(),
            e.client_id.as_deref().unwrap_or(""),
            &e.time.map(|t| t.to_rfc3339()).unwrap_or_default(),
            &e.method,
            &e.url,
            &e.status.map(|s| s.to_string()).unwrap_or_default(),
            if e.accepted { "true" } else { "false" },
            e.level.as_str(),
            e.tenant.as_deref().unwrap_or(""),
            e.group_id.as_deref().unwrap_or(""),
            &e.params.types.as_ref().map(|t| t.join(",")).unwrap_or_default(),
            e.params.since_text.as_deref().unwrap_or(""),
            e.params.until_text.as_deref().unwrap_or(""),
            &e.source,
        ]);
    }
    let _ = w.flush();
    Ok(())
}

/// Runs the command line; returns the process exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    crate::output::remove_staging_on_interrupt();
    let result = match cli.command {
        Command::Audit(a) => run_audit(a),
        Command::Exports(a) => run_exports(a),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("bulk-audit: {e}");
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h").unwrap(), 24 * 3600 * 1_000_000_000);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400 * 1_000_000_000);
        assert_eq!(parse_duration("1500ms").unwrap(), 1_500_000_000);
        assert_eq!(parse_duration("90").unwrap(), 90 * 1_000_000_000);
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }
}
