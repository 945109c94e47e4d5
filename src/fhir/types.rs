//! The FHIR resource types of each version (R4 4.0.1, R4B 4.3.0, R5 5.0.0), embedded from the
//! tables in `data/`: what "every type" means for a Client without scopes, a missing Client or
//! `--wildcard all`, and the only types an export ever sends — never Aidbox's own resources
//! (Client, User, AccessPolicy, BulkExportStatus, Session, …).

use std::collections::BTreeSet;

use super::compartment::FhirVersion;

const R4: &str = include_str!("../../data/resource-types-r4.txt");
const R4B: &str = include_str!("../../data/resource-types-r4b.txt");
const R5: &str = include_str!("../../data/resource-types-r5.txt");

/// Every resource type of the version.
pub(crate) fn fhir_types(version: FhirVersion) -> BTreeSet<String> {
    let text = match version {
        FhirVersion::R4 => R4,
        FhirVersion::R4b => R4B,
        FhirVersion::R5 => R5,
    };
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_hold_the_fhir_types_and_no_aidbox_ones() {
        let counts = [FhirVersion::R4, FhirVersion::R4b, FhirVersion::R5].map(|v| fhir_types(v).len());
        assert_eq!(counts, [146, 141, 158]);
        let r4 = fhir_types(FhirVersion::R4);
        for t in ["Patient", "Observation", "Group", "Location", "Organization"] {
            assert!(r4.contains(t), "{t}");
        }
        for t in ["Client", "User", "AccessPolicy", "BulkExportStatus", "Session", "Tenant"] {
            assert!(!r4.contains(t), "{t}");
        }
        assert!(fhir_types(FhirVersion::R5).contains("NutritionIntake"));
        assert!(!r4.contains("NutritionIntake"));
    }
}
