//! The generator's own reading of the FHIR R4 patient compartment (the HL7 table shipped in
//! `data/`), of the references in a resource body and of a reference's text. Deliberately
//! naive and written apart from the audit's code, so that the truth checks the audit rather
//! than repeating it. Bodies are in FHIR format (`{"reference": "Patient/p"}`); the Aidbox
//! form `{"resourceType": "Patient", "id": "p"}`, which the generator writes into some Group
//! members, is read too.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

const R4_TABLE: &str = include_str!("../../data/patient-compartment-r4.tsv");

/// For each resource type in the compartment, the field routes from its root to the references
/// that put a body in a patient's compartment.
pub(crate) struct Compartment {
    routes: BTreeMap<String, Vec<Vec<String>>>,
}

impl Compartment {
    pub(crate) fn r4() -> Compartment {
        Compartment::from_table(R4_TABLE)
    }

    /// Reads the TSV: `resource_type, param, fhirpath_expression, …`, a header line first.
    fn from_table(table: &str) -> Compartment {
        let mut routes: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
        for line in table.lines() {
            let mut columns = line.split('\t');
            let (Some(rtype), Some(_param), Some(expression)) = (columns.next(), columns.next(), columns.next()) else {
                continue;
            };
            if rtype == "resource_type" {
                continue;
            }
            // A type is in the compartment even when none of its expressions gives a route.
            let list = routes.entry(rtype.to_string()).or_default();
            list.extend(expression.split('|').filter_map(|alternative| route_of(rtype, alternative)));
        }
        Compartment { routes }
    }

    /// Whether resources of this type belong to patient compartments at all.
    pub(crate) fn covers(&self, rtype: &str) -> bool {
        self.routes.contains_key(rtype)
    }

    /// The patients whose compartment the body is in, sorted, each once. A Patient is in its
    /// own compartment.
    pub(crate) fn patients_of(&self, rtype: &str, id: &str, body: &Value) -> Vec<String> {
        let mut patients = BTreeSet::new();
        if rtype == "Patient" {
            patients.insert(id.to_string());
        }
        for route in self.routes.get(rtype).into_iter().flatten() {
            let mut ends = Vec::new();
            follow(body, route, &mut ends);
            for end in ends {
                if let Some(("Patient", patient)) = target_of(end) {
                    patients.insert(patient.to_string());
                }
            }
        }
        patients.into_iter().collect()
    }
}

/// One alternative of a FHIRPath expression → the fields to follow from the root, the type
/// name first and dropped. Forms in the tables: `T.a.b`, `T.a.where(resolve() is Patient)`
/// (only Patient references are looked at anyway), `(T.a as Reference)` and
/// `T.a.ofType(Reference)` (a choice element: `aReference` in FHIR JSON), `T.a.ofType(canonical)`
/// and `{def}` (no reference to a Patient).
fn route_of(rtype: &str, alternative: &str) -> Option<Vec<String>> {
    let mut text = alternative.trim();
    if let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        text = inner.trim();
    }
    let mut choice = false;
    if let Some((path, as_type)) = text.split_once(" as ") {
        if as_type.trim() != "Reference" {
            return None;
        }
        text = path.trim();
        choice = true;
    }
    let mut parts = text.split('.');
    if parts.next() != Some(rtype) {
        return None;
    }
    let mut fields: Vec<String> = Vec::new();
    for part in parts {
        if part.starts_with("where(") {
            continue;
        }
        if let Some(of_type) = part.strip_prefix("ofType(").and_then(|p| p.strip_suffix(')')) {
            if of_type != "Reference" {
                return None;
            }
            choice = true;
            continue;
        }
        if part.is_empty() || !part.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        fields.push(part.to_string());
    }
    if choice {
        fields.last_mut()?.push_str("Reference");
    }
    (!fields.is_empty()).then_some(fields)
}

/// Collects the values at the end of the route, going through every item of each array met.
fn follow<'a>(node: &'a Value, route: &[String], ends: &mut Vec<&'a Value>) {
    if let Value::Array(items) = node {
        for item in items {
            follow(item, route, ends);
        }
        return;
    }
    match route {
        [] => ends.push(node),
        [field, rest @ ..] => {
            if let Some(next) = node.get(field) {
                follow(next, rest, ends);
            }
        }
    }
}

/// The (type, id) a reference element points to: its `reference` text when it has one, else
/// the Aidbox pair `resourceType` and `id`.
fn target_of(node: &Value) -> Option<(&str, &str)> {
    match node.get("reference") {
        Some(Value::String(text)) => parse_reference(text),
        _ => {
            let rtype = node.get("resourceType")?.as_str()?;
            let id = node.get("id")?.as_str()?;
            (is_type(rtype) && is_id(id)).then_some((rtype, id))
        }
    }
}

/// Every (type, id) a body refers to, outside its contained resources.
pub(crate) fn all_references(body: &Value) -> Vec<(String, String)> {
    fn gather(node: &Value, found: &mut BTreeSet<(String, String)>) {
        match node {
            Value::Array(items) => items.iter().for_each(|item| gather(item, found)),
            Value::Object(fields) => match target_of(node) {
                Some((rtype, id)) => {
                    found.insert((rtype.to_string(), id.to_string()));
                }
                None => fields.iter().filter(|(k, _)| *k != "contained").for_each(|(_, v)| gather(v, found)),
            },
            _ => {}
        }
    }
    let mut found = BTreeSet::new();
    // The body itself is no reference, though it has a resourceType and an id.
    for (key, value) in body.as_object().into_iter().flatten() {
        if key != "contained" {
            gather(value, &mut found);
        }
    }
    found.into_iter().collect()
}

/// `Type/id`, `Type/id/_history/v`, or an absolute URL ending so → (type, id). Local (`#x`)
/// and `urn:` references name nothing on the server.
pub(crate) fn parse_reference(text: &str) -> Option<(&str, &str)> {
    let text = text.trim();
    if text.starts_with('#') || text.starts_with("urn:") {
        return None;
    }
    let path = text.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/');
    let segments: Vec<&str> = path.split('/').collect();
    let (rtype, id) = match segments.as_slice() {
        [.., rtype, id, "_history", _version] => (*rtype, *id),
        [.., rtype, id] => (*rtype, *id),
        _ => return None,
    };
    (is_type(rtype) && is_id(id)).then_some((rtype, id))
}

/// A resource type name: a capital letter, then letters and digits.
fn is_type(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase()) && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A FHIR id, 1 to 64 of `A-Z a-z 0-9 - .`, and `_` as Aidbox allows it.
fn is_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compartment_of_a_body() {
        let c = Compartment::r4();
        let obs = json!({"resourceType": "Observation", "subject": {"reference": "Patient/p"},
                         "performer": [{"reference": "Practitioner/x"}]});
        assert_eq!(c.patients_of("Observation", "o", &obs), ["p"]);
        let obs = json!({"subject": {"reference": "Patient/b"},
                         "performer": [{"reference": "Patient/a"}, {"reference": "Patient/b"}]});
        assert_eq!(c.patients_of("Observation", "o", &obs), ["a", "b"]);
        // R4's Encounter is in the compartment by its subject only: a participant is not enough.
        let enc = json!({"subject": {"reference": "https://x.org/fhir/Patient/s/_history/2"},
                         "participant": [{"individual": {"reference": "Patient/q"}}]});
        assert_eq!(c.patients_of("Encounter", "e", &enc), ["s"]);
        let enc = json!({"participant": [{"individual": {"reference": "Patient/q"}}]});
        assert!(c.patients_of("Encounter", "e", &enc).is_empty());
        // The Patient itself, and those it links to.
        let pt = json!({"resourceType": "Patient", "id": "p", "link": [{"other": {"reference": "Patient/r"}}]});
        assert_eq!(c.patients_of("Patient", "p", &pt), ["p", "r"]);
        assert_eq!(c.patients_of("Patient", "p", &json!({})), ["p"]);
        // Nested arrays, and Group members in both forms.
        let cp = json!({"activity": [{"detail": {"performer": [{"reference": "Patient/f"}]}}]});
        assert_eq!(c.patients_of("CarePlan", "cp", &cp), ["f"]);
        let g = json!({"member": [{"entity": {"reference": "Patient/m"}},
                                  {"entity": {"resourceType": "Patient", "id": "n"}},
                                  {"entity": {"reference": "Group/g2"}},
                                  {"entity": {"reference": "urn:uuid:1"}}]});
        assert_eq!(c.patients_of("Group", "g", &g), ["m", "n"]);
        assert!(c.covers("Claim") && c.covers("Patient") && !c.covers("Organization") && !c.covers("Location"));
    }

    #[test]
    fn every_expression_form_of_the_tables() {
        assert_eq!(route_of("Observation", "Observation.subject"), Some(vec!["subject".to_string()]));
        assert_eq!(
            route_of("Condition", " Condition.subject.where(resolve() is Patient) "),
            Some(vec!["subject".into()])
        );
        assert_eq!(
            route_of("NutritionIntake", "(NutritionIntake.reported as Reference)"),
            Some(vec!["reportedReference".into()])
        );
        assert_eq!(
            route_of("RequestOrchestration", "RequestOrchestration.action.participant.actor.ofType(Reference)"),
            Some(vec!["action".into(), "participant".into(), "actorReference".into()])
        );
        assert_eq!(
            route_of("RequestOrchestration", "RequestOrchestration.action.participant.actor.ofType(canonical)"),
            None
        );
        assert_eq!(route_of("Patient", "{def}"), None);
        assert_eq!(route_of("Claim", "Observation.subject"), None);
        // Every type of every version's table is read, each with a route but Patient.
        for table in [
            R4_TABLE,
            include_str!("../../data/patient-compartment-r4b.tsv"),
            include_str!("../../data/patient-compartment-r5.tsv"),
        ] {
            let c = Compartment::from_table(table);
            assert!(c.routes.len() >= 60);
            assert!(c.routes.iter().all(|(t, routes)| t == "Patient" || !routes.is_empty()));
        }
        assert_eq!(
            Compartment::r4().routes["Claim"],
            [vec!["patient".to_string()], vec!["payee".into(), "party".into()]]
        );
    }

    #[test]
    fn references() {
        assert_eq!(parse_reference("Patient/p1"), Some(("Patient", "p1")));
        assert_eq!(parse_reference("Patient/p1/_history/3"), Some(("Patient", "p1")));
        assert_eq!(parse_reference("https://x.org/fhir/Patient/p1/"), Some(("Patient", "p1")));
        assert_eq!(parse_reference("Patient/p1?x=1"), Some(("Patient", "p1")));
        for nothing in
            ["#referral", "urn:uuid:1234", "patient/p1", "Patient/", "p1", "", "Patient/p 1", "Patient/\u{e9}"]
        {
            assert_eq!(parse_reference(nothing), None, "{nothing}");
        }
        let eob = json!({"resourceType": "ExplanationOfBenefit", "id": "e", "patient": {"reference": "Patient/p"},
                         "provider": {"reference": "Organization/o"}, "referral": {"reference": "#referral"},
                         "contained": [{"resourceType": "ServiceRequest", "id": "referral",
                                        "requester": {"reference": "Practitioner/x"}}],
                         "item": [{"encounter": [{"reference": "Encounter/n"}]},
                                  {"encounter": [{"reference": "Encounter/n"}]}]});
        let expected =
            [("Encounter", "n"), ("Organization", "o"), ("Patient", "p")].map(|(t, i)| (t.to_string(), i.to_string()));
        assert_eq!(all_references(&eob), expected);
    }
}
