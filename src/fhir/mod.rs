//! FHIR's own tables, data every stage reads: the patient compartment (which search parameters
//! put a resource in a patient's compartment, per FHIR version) and every resource type per
//! version. Below the readers: `history/` takes a version's patients from here, `rules/` what
//! "every type" means.

pub(crate) mod compartment;
pub(crate) mod types;
