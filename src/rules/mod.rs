//! The SPEC's rules: which requests are export kickoffs, what a Client's scopes grant, which
//! resources are in a patient's compartment, how one export resolves into rows, how the
//! server's own BulkExportStatus evidence compares, and the catalogue of findings.

pub(crate) mod compartment;
pub(crate) mod evidence;
pub(crate) mod fhir_types;
pub(crate) mod findings;
pub(crate) mod kickoff;
pub(crate) mod resolve;
pub(crate) mod scopes;
