//! What `bulk-audit audit` (and `index`, `plan`) was asked, checked, in four typed parts that
//! `cli/config.rs` builds once: what is read and how (`ReadOptions`), the rules (`RuleOptions`),
//! which exports (`Selection`) and what is written (`Outputs`). An index stores the first two
//! (`index_files::IndexOptions`), and an audit of it compares them as values.

use std::path::PathBuf;

use crate::fhir::compartment::FhirVersion;
use crate::history::pg_text::Columns;
use crate::index::Boundary;
use crate::output::Format;
use crate::rules::resolve::NonCompartment;
use crate::rules::scopes::Wildcard;
use crate::timestamp::{Instant, Zone};

/// Everything an audit was asked, checked: times and zone read, the wildcard file read, the
/// output folders known to be writable.
#[derive(Debug, Clone)]
pub(crate) struct AuditConfig {
    pub(crate) read: ReadOptions,
    pub(crate) rules: RuleOptions,
    pub(crate) select: Selection,
    pub(crate) outputs: Outputs,
    /// `--index`: resolve from this version index (or the union of these shards) instead of
    /// reading the dumps (`read.logs` and `read.history` then name what it was built from);
    /// empty: read the dumps.
    pub(crate) index: Vec<PathBuf>,
}

/// What is read, and how.
#[derive(Debug, Clone)]
pub(crate) struct ReadOptions {
    pub(crate) logs: Vec<PathBuf>,
    pub(crate) history: Vec<PathBuf>,
    pub(crate) zone: Zone,
    /// The columns of `$dump-sql` TSV files without a header (`--tsv-columns`).
    pub(crate) tsv_columns: Option<Columns>,
    /// Note unreadable lines as findings and go on, instead of stopping at the first.
    pub(crate) skip_invalid: bool,
    /// `--max-log-gap`: as given, and in nanoseconds.
    pub(crate) max_log_gap: String,
    pub(crate) max_log_gap_nanos: i64,
    /// Audit against a history that holds no version, or none in force at any kickoff (every
    /// export is then incomplete), instead of refusing it.
    pub(crate) allow_empty_history: bool,
    /// `index --lines`: only this run of the one history file's lines is read (a shard).
    pub(crate) lines: Option<crate::source::LineRange>,
}

/// The rules' options: what decides which rows an export has.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct RuleOptions {
    pub(crate) boundary: Boundary,
    pub(crate) wildcard: Wildcard,
    pub(crate) non_compartment: NonCompartment,
    pub(crate) fhir_version: FhirVersion,
    pub(crate) skip_inactive_members: bool,
}

/// Which exports are audited (`--client`, `--from`, `--to`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection {
    pub(crate) clients: Vec<String>,
    pub(crate) from: Option<Instant>,
    pub(crate) to: Option<Instant>,
}

/// What is written, and where.
#[derive(Debug, Clone)]
pub(crate) struct Outputs {
    pub(crate) out: PathBuf,
    pub(crate) format: Format,
    pub(crate) with_resource: bool,
    pub(crate) reconstruct: Option<PathBuf>,
    /// Also write the FHIR AuditEvents (`--audit-events`).
    pub(crate) audit_events: bool,
    /// Write `report.html` (off with `--no-report`).
    pub(crate) report: bool,
    /// `--fail-on`: finding kinds (or `incomplete`) that make the run exit 5 once written.
    pub(crate) fail_on: Vec<String>,
}

impl Outputs {
    /// The tables in Parquet into `out`, with the report: what `index` and `plan` start from.
    pub(crate) fn into(out: PathBuf) -> Outputs {
        Outputs {
            out,
            format: Format::Parquet,
            with_resource: false,
            reconstruct: None,
            audit_events: false,
            report: true,
            fail_on: Vec::new(),
        }
    }
}
