//! bulk-audit: which resource versions did each FHIR bulk-data client receive, for which
//! patients, in which `$export`? The library behind the `bulk-audit` command, one module per
//! stage of the flow, each depending only on the stages before it:
//!
//! cli → audit → (source → logs, history → version → index) → rules (kickoff, scopes, resolve,
//! evidence, findings) → bodies → output; `fhir` (the compartment and the resource types) below
//! the readers and the rules; and `disclosures`, which reads a finished audit's output → output.
//!
//! Only [`cli::main`] is the library's API; the `hooks` feature opens a few entry points for the
//! fuzz targets, the benches and the parse-floor example.

mod audit;
mod bodies;
pub mod cli;
mod disclosures;
mod error;
mod fhir;
mod history;
mod index;
mod index_files;
mod logs;
mod output;
mod progress;
mod rules;
mod source;
mod stopwatch;
mod timestamp;
mod version;

#[cfg(feature = "hooks")]
pub mod hooks;

#[cfg(test)]
mod layout_tests;
