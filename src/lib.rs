//! bulk-audit: which resource versions did each FHIR bulk-data client receive, for which
//! patients, in which `$export`? The library behind the `bulk-audit` command, one module per
//! stage of the flow:
//!
//! inputs → logs → kickoff (export events) → history → index (as-of) → scopes / compartment →
//! resolve (in parallel) → evidence (the server's BulkExportStatus) → bodies → output.

pub mod audit;
pub mod bodies;
pub mod cli;
pub mod compartment;
pub mod error;
pub mod evidence;
pub mod history;
pub mod index;
pub mod inputs;
pub mod kickoff;
pub mod logs;
pub mod output;
pub mod resolve;
pub mod scopes;
pub mod timestamp;
pub mod world;
