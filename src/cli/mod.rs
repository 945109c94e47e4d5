//! The command line: `bulk-audit audit …` and `bulk-audit exports …`, their options, and the
//! friendly messages and exit statuses at the edge. clap's derives live here only; the rest of
//! the library sees one checked [`AuditConfig`](crate::audit::AuditConfig).

mod config;
mod generate;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::audit;
use crate::error::{Error, Result};
use crate::output::terminal::{counted, printable, to_stdout};

#[derive(Parser, Debug)]
#[command(
    name = "bulk-audit",
    version,
    about = "Which resource versions did each FHIR bulk-data client receive, for which patients, in which $export?",
    long_about = "Reconstructs, offline, what every FHIR $export on an Aidbox server sent: from exported request logs \
                        (Aidbox NDJSON, Elasticsearch, Kibana CSV) and history dumps, one row per exported resource version and patient."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Print errors only: no summary on stdout, no notes on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Also print each stage's wall and CPU time and memory on stderr.
    #[arg(short, long, global = true)]
    pub(crate) verbose: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Resolve every export kickoff in the logs against the history and write the audit tables.
    #[command(after_help = AUDIT_EXAMPLES)]
    Audit(Box<AuditArgs>),
    /// Read the logs and history dumps once into a version index (Parquet tables and
    /// index.json) that `audit --index` and `sql/audit.sql` resolve exports against.
    #[command(after_help = INDEX_EXAMPLES)]
    Index(Box<IndexArgs>),
    /// Resolve every kickoff of an index in shards against its small resources (Clients, Groups,
    /// AccessPolicies, BulkExportStatus, Patients) and write what the SQL over the shards needs
    /// (kickoffs, export_types, export_patients), in memory that follows those, not the history.
    #[command(after_help = PLAN_EXAMPLES)]
    Plan(PlanArgs),
    /// List the export kickoffs found in the logs, as CSV on stdout.
    Exports(ExportsArgs),
    /// Each patient's accounting of disclosures (HIPAA §164.528), from a finished audit's
    /// output folder: one row per patient and export.
    #[command(after_help = DISCLOSURES_EXAMPLES)]
    Disclosures(DisclosuresArgs),
    /// Print a shell completion script: `bulk-audit completions bash > ~/.local/share/bash-completion/completions/bulk-audit`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `bulk-audit man > ~/.local/share/man/man1/bulk-audit.1`; with
    /// `--out DIR`, write every page (`bulk-audit.1`, `bulk-audit-audit.1`, …) into DIR.
    Man {
        /// Write every command's page into this folder (e.g. ~/.local/share/man/man1).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

const PLAN_EXAMPLES: &str = "\
Examples:
  # The logs and each part of the history indexed on their own, then the plan of their union:
  bulk-audit index --logs logs/ --tz UTC --out idx/logs
  bulk-audit index --history part-0001.ndjson.zst --tz UTC --out idx/h-0001
  bulk-audit plan --index idx --out idx-plan
  python3 scripts/duckdb-audit.py idx rows.parquet --plan idx-plan --memory-limit 2GB
";

const AUDIT_EXAMPLES: &str = "\
Examples:
  # Kibana CSV exports (dates without an offset, written in Berlin) and a $dump-sql dump:
  bulk-audit audit --logs kibana/ --history dump/ --tz Europe/Berlin --out audit-2024

  # One client's exports on one day, as CSV, with the FHIR AuditEvents the server never wrote
  # (the guide shipped in the repository):
  bulk-audit audit --logs fixtures/guide/logs --history fixtures/guide/history --tz UTC \\
      --client inferno-my-clinic-bulk-client --from 2022-12-05 --to 2022-12-05 --format csv \\
      --audit-events --out one-day

  # The exact bodies each export sent, one folder per export:
  bulk-audit audit --logs logs/ --history history/ --tz UTC --reconstruct sent/ --out audit

  # Which kickoffs are in these logs (no history read):
  bulk-audit exports --logs logs/ --tz UTC

What a complete audit needs (log fields, Aidbox tables, a dump recipe): the README's
\"What an audit needs\". An export the inputs cannot answer whole is marked incomplete;
--fail-on incomplete makes that exit 5.";

const INDEX_EXAMPLES: &str = "\
Examples:
  # Read the dumps once, then ask many questions of the index (the guide in the repository):
  bulk-audit index --logs fixtures/guide/logs --history fixtures/guide/history --tz UTC --out idx
  bulk-audit audit --index idx --client inferno-my-clinic-bulk-client --from 2022-12-05 --format csv --out one-client

  # The same audit as SQL, on DuckDB or on Spark:
  python3 scripts/duckdb-audit.py idx rows.csv

  # A history too big for one process, in shards (then `bulk-audit plan` for the SQL):
  bulk-audit index --logs logs/ --tz UTC --out idx/logs
  bulk-audit index --history part-0001.ndjson.zst --tz UTC --out idx/h-0001";

const DISCLOSURES_EXAMPLES: &str = "\
Examples:
  # One patient's accounting of disclosures from an audit written earlier:
  bulk-audit disclosures --audit audit-2024 --patient 5f2c9a

  # Every patient's, as Parquet, and as a page to print:
  bulk-audit disclosures --audit audit-2024 --format parquet --out disclosures.parquet
  bulk-audit disclosures --audit audit-2024 --patient 5f2c9a --format html --out 5f2c9a.html";

#[derive(Args, Debug)]
pub(crate) struct DisclosuresArgs {
    /// A finished audit's output folder (its --out).
    #[arg(long, value_name = "DIR")]
    pub(crate) audit: PathBuf,
    /// Only this patient (repeatable; none = every patient).
    #[arg(long = "patient", value_name = "ID")]
    pub(crate) patients: Vec<String>,
    /// Only disclosures to this client (repeatable; none = every client).
    #[arg(long = "client", value_name = "ID")]
    pub(crate) clients: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    pub(crate) format: DisclosuresFormatArg,
    /// Output file (written whole, then renamed into place); CSV and HTML go to stdout without it.
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
}

/// What is read, and how: the inputs of `audit` and `index`.
#[derive(Args, Debug)]
pub(crate) struct ReadArgs {
    /// Request logs: files or folders (read recursively); plain, .zst or .gz; Aidbox NDJSON,
    /// Elasticsearch hits or search responses, or Kibana Discover CSV.
    #[arg(help_heading = "Inputs", long, num_args = 1.., value_name = "PATH")]
    pub(crate) logs: Vec<PathBuf>,
    /// History dumps: files or folders; Aidbox history rows, resources with meta, history
    /// Bundles or Bundle entries, in any mix.
    #[arg(help_heading = "Inputs", long, num_args = 1.., value_name = "PATH")]
    pub(crate) history: Vec<PathBuf>,
    /// IANA time zone the timestamps without an offset were written in (every Kibana CSV date).
    /// No default: such a timestamp without --tz stops the run, naming a file that holds it.
    #[arg(help_heading = "Inputs", long, value_name = "IANA")]
    pub(crate) tz: Option<String>,
    /// The columns of `$dump-sql` TSV files that have no header row, comma separated (any order,
    /// any subset holding id, txid, ts, resource_type and resource; unknown names skip a column).
    /// Without it they are inferred from the first rows and checked on every row.
    #[arg(help_heading = "Inputs", long, value_name = "COLUMNS")]
    pub(crate) tsv_columns: Option<String>,
    /// Go on past unreadable input lines: each is listed in findings (input-skipped) and
    /// counted in the manifest and the summary. Without it the first one stops the run.
    #[arg(help_heading = "Inputs", long)]
    pub(crate) skip_invalid: bool,
    /// Audit even when the history holds no version, or none written before the last accepted
    /// kickoff (without it, such a history stops the run: it cannot answer any export).
    #[arg(help_heading = "Inputs", long)]
    pub(crate) allow_empty_history: bool,
    /// The longest line, document or table row read (e.g. 256MiB, 1GiB, 64k): a longer one is an
    /// input error naming the file, line and length (a damaged file or a compression bomb),
    /// never an allocation the machine cannot make.
    #[arg(help_heading = "Inputs", long, default_value = "256MiB", value_name = "SIZE")]
    pub(crate) max_line: String,
    /// Report holes in the logs longer than this (e.g. 24h, 90m, 2d, 1h30m).
    #[arg(help_heading = "Rules", long, default_value = "24h", value_name = "DURATION")]
    pub(crate) max_log_gap: String,
}

/// The rules that decide which rows an export has.
#[derive(Args, Debug)]
pub(crate) struct RuleArgs {
    /// as-of(T): `strict` takes versions with lastUpdated < T (the guide's rule), `inclusive` <= T.
    #[arg(help_heading = "Rules", long, value_enum, default_value = "strict")]
    pub(crate) boundary: BoundaryArg,
    /// What `*` in a scope grants: smartbox (18 types), aidbox (+ Group), all (every FHIR type of
    /// --fhir-version), or a file listing types.
    #[arg(help_heading = "Rules", long, default_value = "smartbox", value_name = "smartbox|aidbox|all|FILE")]
    pub(crate) wildcard: String,
    /// Types outside the patient compartment in group/patient exports: every resource, only
    /// those the exported rows reference, or none.
    #[arg(help_heading = "Rules", long, value_enum, default_value = "all")]
    pub(crate) non_compartment: NonCompartmentArg,
    /// Which patient compartment table to use.
    #[arg(help_heading = "Rules", long, value_enum, default_value = "r4")]
    pub(crate) fhir_version: FhirVersionArg,
    /// Leave out Group members marked inactive or whose period excludes T.
    #[arg(help_heading = "Rules", long)]
    pub(crate) skip_inactive_members: bool,
}

/// The options `audit --index` takes from the index when they are not given, and refuses when
/// they are given otherwise (clap's ids: the field names).
pub(crate) const INDEX_OPTIONS: [&str; 9] = [
    "tz",
    "tsv_columns",
    "skip_invalid",
    "max_log_gap",
    "boundary",
    "wildcard",
    "non_compartment",
    "fhir_version",
    "skip_inactive_members",
];

#[derive(Args, Debug)]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    pub(crate) read: ReadArgs,
    /// Resolve from a version index written by `bulk-audit index` instead of reading --logs and
    /// --history; its options are this audit's (any given must match them). Repeat it, or give a
    /// folder of indexes, for an index in shards (one of the logs, any number of history parts):
    /// the audit is that of all their inputs.
    #[arg(help_heading = "Inputs", long, value_name = "IDX", conflicts_with_all = ["logs", "history"])]
    pub(crate) index: Vec<PathBuf>,
    /// Only exports of this client (repeatable; none = every client).
    #[arg(help_heading = "Which exports", long = "client", value_name = "ID")]
    pub(crate) clients: Vec<String>,
    /// Only exports at or after this time (ISO-8601; without an offset read in --tz).
    #[arg(help_heading = "Which exports", long, value_name = "TIME")]
    pub(crate) from: Option<String>,
    /// Only exports at or before this time.
    #[arg(help_heading = "Which exports", long, value_name = "TIME")]
    pub(crate) to: Option<String>,
    #[command(flatten)]
    pub(crate) rules: RuleArgs,
    /// Output folder.
    #[arg(help_heading = "Outputs", long, default_value = "audit-out", value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Table format.
    #[arg(help_heading = "Outputs", long, value_enum, default_value = "parquet")]
    pub(crate) format: FormatArg,
    /// Add each version's JSON body to the resources table (column `resource`).
    #[arg(help_heading = "Outputs", long)]
    pub(crate) with_resource: bool,
    /// Also write, per export, <DIR>/<export_id>/<Type>.ndjson with the exact bodies sent.
    #[arg(help_heading = "Outputs", long, value_name = "DIR")]
    pub(crate) reconstruct: Option<PathBuf>,
    /// Also write auditevents.ndjson and auditevents-bundle.json: one FHIR R4 AuditEvent (IHE
    /// BALP Privacy Disclosure at Source) per export and patient.
    #[arg(help_heading = "Outputs", long)]
    pub(crate) audit_events: bool,
    /// Do not write report.html (the audit for people: inputs, exports per client, findings
    /// explained, disclosures per patient).
    #[arg(help_heading = "Outputs", long)]
    pub(crate) no_report: bool,
    /// Exit with status 5, after writing every output, when a selected export has a finding of
    /// one of these kinds (comma separated, repeatable), or `incomplete` when its rows are
    /// unknown (a Group or Client not in the history at T): the gate for audits run in CI.
    #[arg(help_heading = "Outputs", long, value_delimiter = ',', value_name = "KIND")]
    pub(crate) fail_on: Vec<String>,
    /// Also replace a previous bulk-audit output (--out, --reconstruct) that was changed since it
    /// was written, or is of another kind. A folder holding files bulk-audit did not write is
    /// never replaced.
    #[arg(help_heading = "Outputs", long)]
    pub(crate) force: bool,
    /// The options of `INDEX_OPTIONS` given on the command line (filled from clap's matches).
    #[arg(skip)]
    pub(crate) given: Vec<&'static str>,
}

#[derive(Args, Debug)]
pub(crate) struct IndexArgs {
    #[command(flatten)]
    pub(crate) read: ReadArgs,
    #[command(flatten)]
    pub(crate) rules: RuleArgs,
    /// Read only these lines of the one --history file (FIRST..LAST or FIRST.. to its end,
    /// numbered from 1): a shard of a file too big for one task. The union refuses shards that
    /// leave lines of a file unread.
    #[arg(help_heading = "Inputs", long, value_name = "FIRST..LAST")]
    pub(crate) lines: Option<String>,
    /// The index folder: Parquet tables and index.json.
    #[arg(help_heading = "Outputs", long, required = true, value_name = "IDX")]
    pub(crate) out: PathBuf,
    /// Also replace a previous bulk-audit output that was changed since it was written, or is of
    /// another kind. A folder holding files bulk-audit did not write is never replaced.
    #[arg(help_heading = "Outputs", long)]
    pub(crate) force: bool,
}

#[derive(Args, Debug)]
pub(crate) struct PlanArgs {
    /// The index in shards: a folder of them, or each shard (repeatable).
    #[arg(help_heading = "Inputs", long, required = true, value_name = "IDX")]
    pub(crate) index: Vec<PathBuf>,
    /// The plan folder: kickoffs, export_types and export_patients as Parquet, and plan.json.
    #[arg(help_heading = "Outputs", long, required = true, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Also replace a previous bulk-audit output that was changed since it was written, or is of
    /// another kind. A folder holding files bulk-audit did not write is never replaced.
    #[arg(help_heading = "Outputs", long)]
    pub(crate) force: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ExportsArgs {
    /// Request logs: files or folders.
    #[arg(long, num_args = 1.., required = true, value_name = "PATH")]
    pub(crate) logs: Vec<PathBuf>,
    /// Only exports of this client (repeatable).
    #[arg(long = "client", value_name = "ID")]
    pub(crate) clients: Vec<String>,
    /// Only exports at or after this time (ISO-8601; without an offset read in --tz).
    #[arg(long, value_name = "TIME")]
    pub(crate) from: Option<String>,
    /// Only exports at or before this time (a date takes the whole day).
    #[arg(long, value_name = "TIME")]
    pub(crate) to: Option<String>,
    /// IANA time zone the timestamps without an offset were written in (no default).
    #[arg(long, value_name = "IANA")]
    pub(crate) tz: Option<String>,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FormatArg {
    Parquet,
    Csv,
}

/// `bulk-audit disclosures --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DisclosuresFormatArg {
    Csv,
    Parquet,
    Html,
}

/// `--boundary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BoundaryArg {
    Strict,
    Inclusive,
}

/// `--non-compartment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum NonCompartmentArg {
    All,
    Referenced,
    None,
}

/// `--fhir-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FhirVersionArg {
    R4,
    R4b,
    R5,
}

fn run_audit(a: AuditArgs, quiet: bool) -> Result<()> {
    let cfg = config::audit_config(a)?;
    let result = if cfg.index.is_empty() { audit::run(&cfg)? } else { crate::index_files::audit(&cfg, &cfg.index)? };
    let written = audit::write(&cfg, &result);
    crate::progress::finish();
    let written = written?;
    if quiet {
        let failed = audit::failed_on(&result, &cfg.outputs.fail_on);
        std::mem::forget(result);
        return failed.map_or(Ok(()), |f| Err(Error::FailOn(f)));
    }
    if let Some(what) = audit::nothing_resolved(&result) {
        eprintln!("bulk-audit: {}", printable(&what));
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut say = |line: &str| writeln!(out, "{line}").map_err(|e| Error::output("standard output", e));
    for line in audit::summary_lines(&result) {
        say(&printable(&line))?;
    }
    if cfg.read.skip_invalid {
        let skipped: u64 = result.inputs.iter().map(|i| i.lines_skipped).sum();
        say(&format!("{skipped} input lines skipped (--skip-invalid): each is an input-skipped finding"))?;
        // A file cut short hides an unknown number of lines: never a bare count.
        let cut: Vec<&str> = result.inputs.iter().filter(|i| i.rest_unread).map(|i| i.path.as_str()).collect();
        if !cut.is_empty() {
            say(&printable(&format!(
                "and {} could not be read to the end, its lines past the cut unknown and not counted (rest_unread \
                 in the manifest): {}",
                counted(cut.len() as u64, "input file"),
                cut.join(", ")
            )))?;
        }
    }
    if !cfg.index.is_empty() {
        // The outputs are the same as from the dumps: only this line tells them apart.
        let dumps = if cfg.outputs.with_resource || cfg.outputs.reconstruct.is_some() {
            "the bodies re-read from the history files it names, checked unchanged"
        } else {
            "the dumps were not read"
        };
        let index = crate::index_files::named(&cfg.index);
        let shards = if cfg.index.len() > 1 { format!(" ({} shards)", cfg.index.len()) } else { String::new() };
        say(&printable(&format!("resolved from the index {index}{shards} ({dumps})")))?;
    }
    say(&format!(
        "{}, {}, {} -> {}",
        counted(written.exports as u64, "export"),
        counted(written.resources as u64, "resource row"),
        counted(written.findings as u64, "finding"),
        cfg.outputs.out.display()
    ))?;
    out.flush().map_err(|e| Error::output("standard output", e))?;
    if let Some(failed) = audit::failed_on(&result, &cfg.outputs.fail_on) {
        std::mem::forget(result);
        return Err(Error::FailOn(failed));
    }
    // The process ends here: freeing the index (millions of small allocations) one by one would
    // only delay the exit.
    std::mem::forget(result);
    Ok(())
}

fn run_index(a: IndexArgs, quiet: bool) -> Result<()> {
    let cfg = config::index_config(a)?;
    let built = crate::index_files::build(&cfg);
    crate::progress::finish();
    let built = built?;
    if !quiet {
        println!(
            "{} of {}, {} -> {}",
            counted(built.versions, "version"),
            counted(built.resources as u64, "resource"),
            counted(built.kickoffs as u64, "kickoff"),
            printable(&cfg.outputs.out.display().to_string())
        );
    }
    Ok(())
}

fn run_plan(a: PlanArgs, quiet: bool) -> Result<()> {
    let cfg = config::plan_config(a)?;
    let planned = crate::index_files::plan(&cfg);
    crate::progress::finish();
    let planned = planned?;
    if !quiet {
        println!(
            "{} of {} planned ({} incomplete), from {} -> {}",
            counted(planned.kickoffs as u64, "kickoff"),
            counted(cfg.index.len() as u64, "shard"),
            planned.incomplete,
            counted(planned.versions, "small version"),
            printable(&cfg.outputs.out.display().to_string())
        );
    }
    Ok(())
}

fn run_exports(a: ExportsArgs) -> Result<()> {
    let zone = config::zone(a.tz.as_deref())?;
    let (from, to) = config::window(a.from.as_deref(), a.to.as_deref(), &zone)?;
    let mut sw = crate::stopwatch::Stopwatch::new();
    let (events, _) = audit::read_exports(&a.logs, &zone, i64::MAX, false)?;
    sw.lap("logs: read, kickoffs found");
    // The exports table's kickoff columns, written as every table's CSV is.
    let table = audit::kickoffs_table(events.iter().filter(|e| audit::selected(e, &a.clients, from, to)));
    let mut csv = Vec::new();
    crate::output::csv_text(&table, &mut csv);
    to_stdout(&csv)?;
    sw.lap("written");
    Ok(())
}

fn run_disclosures(a: DisclosuresArgs, quiet: bool) -> Result<()> {
    use crate::disclosures::Form;
    let form = match a.format {
        DisclosuresFormatArg::Csv => Form::Table(crate::output::Format::Csv),
        DisclosuresFormatArg::Parquet => Form::Table(crate::output::Format::Parquet),
        DisclosuresFormatArg::Html => Form::Html,
    };
    let n = crate::disclosures::run(&a.audit, &a.patients, &a.clients, form, a.out.as_ref())?;
    if let (Some(out), false) = (&a.out, quiet) {
        eprintln!("bulk-audit: {n} disclosures -> {}", printable(&out.display().to_string()));
    }
    Ok(())
}

/// Runs the command line; returns the process exit status.
pub fn main() -> i32 {
    use clap::{CommandFactory, FromArgMatches};
    // Before any thread starts: signals go to the handler's thread only.
    crate::output::signals::install();
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let (Command::Audit(a), Some(m)) = (&mut cli.command, matches.subcommand_matches("audit")) {
        a.given = INDEX_OPTIONS
            .into_iter()
            .filter(|id| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
            .collect();
    }
    crate::stopwatch::set_verbose(cli.verbose);
    crate::output::terminal::set_quiet(cli.quiet);
    let audit = matches!(cli.command, Command::Audit(_) | Command::Index(_));
    // Not with -v: its stage lines would break the line being redrawn.
    crate::progress::enable(
        audit && !cli.quiet && !cli.verbose && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    );
    let result = match cli.command {
        Command::Audit(a) => run_audit(*a, cli.quiet),
        Command::Index(a) => run_index(*a, cli.quiet),
        Command::Plan(a) => run_plan(a, cli.quiet),
        Command::Exports(a) => run_exports(a),
        Command::Disclosures(a) => run_disclosures(a, cli.quiet),
        Command::Completions { shell } => generate::completions(shell),
        Command::Man { out } => generate::man(out.as_deref()),
    };
    crate::progress::finish();
    crate::output::release_locks();
    match result {
        Ok(()) => 0,
        Err(e) => {
            // Named by the output folder, never by its hidden staging name.
            eprintln!("bulk-audit: {}", printable(&crate::output::public_paths(&e.to_string())));
            if audit && crate::error::Skipped::of(&e).is_some() {
                eprintln!(
                    "bulk-audit: nothing was written; to note each unreadable line as an input-skipped finding and \
                     go on, give --skip-invalid (docs/inputs.md: \"Broken inputs\")"
                );
            }
            e.exit_code()
        }
    }
}
