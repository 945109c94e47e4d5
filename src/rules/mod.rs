//! The SPEC's rules: which requests are export kickoffs, what a Client's scopes grant, how one
//! export resolves into rows, how the server's own BulkExportStatus evidence compares, and the
//! catalogue of findings. FHIR's own tables (the compartment, the types) are `fhir/`.

pub(crate) mod evidence;
pub(crate) mod findings;
pub(crate) mod kickoff;
pub(crate) mod resolve;
pub(crate) mod scopes;
