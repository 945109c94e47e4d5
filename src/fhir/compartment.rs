//! The FHIR patient compartment: the embedded HL7 tables (R4, R4B, R5) of resource type →
//! element paths, the references to patients found on those paths in a resource body (FHIR and
//! Aidbox formats), and the parsing of a reference into a type and an id.

use serde_json::Value;

const R4: &str = include_str!("../../data/patient-compartment-r4.tsv");
const R4B: &str = include_str!("../../data/patient-compartment-r4b.tsv");
const R5: &str = include_str!("../../data/patient-compartment-r5.tsv");

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FhirVersion {
    R4,
    R4b,
    R5,
}

impl FhirVersion {
    /// As FHIR writes it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            FhirVersion::R4 => "R4",
            FhirVersion::R4b => "R4B",
            FhirVersion::R5 => "R5",
        }
    }
}

/// One step of an element path: the element name, and for a choice element read `as Reference`
/// the type suffix (`reportedReference` in FHIR JSON, `reported.Reference` in Aidbox JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) name: String,
    pub(crate) choice: Option<String>,
}

impl Step {
    /// How an object's field named `key` continues this step: `Some(None)` when its value is the
    /// step's node (`name`, or a choice spelled `nameReference`), `Some(Some(suffix))` for the
    /// Aidbox spelling of a choice (`name: {"Reference": …}`, stepped into first), `None` for any
    /// other field.
    pub(crate) fn follows(&self, key: &str) -> Option<Option<&str>> {
        match &self.choice {
            None if self.name == key => Some(None),
            Some(suffix)
                if key.len() == self.name.len() + suffix.len()
                    && key.starts_with(self.name.as_str())
                    && key.ends_with(suffix.as_str()) =>
            {
                Some(None)
            }
            Some(suffix) if self.name == key => Some(Some(suffix)),
            _ => None,
        }
    }
}

/// The compartment definition: for each resource type in it, its element paths.
#[derive(Debug, Clone)]
pub(crate) struct Compartment {
    /// Each type's paths, looked up once per version read (hashed: a tree of ~150 names cost
    /// several string comparisons per version).
    pub(crate) paths: rustc_hash::FxHashMap<String, Vec<Vec<Step>>>,
}

impl Compartment {
    pub(crate) fn load(version: FhirVersion) -> Compartment {
        let text = match version {
            FhirVersion::R4 => R4,
            FhirVersion::R4b => R4B,
            FhirVersion::R5 => R5,
        };
        Compartment::parse(text)
    }

    /// Parses the TSV (`resource_type, param, fhirpath_expression, …`).
    pub(crate) fn parse(text: &str) -> Compartment {
        let mut paths: rustc_hash::FxHashMap<String, Vec<Vec<Step>>> = Default::default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 3 {
                continue;
            }
            let (rtype, expr) = (cols[0], cols[2]);
            let entry = paths.entry(rtype.to_string()).or_default();
            for branch in expr.split('|') {
                if let Some(steps) = parse_expression(rtype, branch) {
                    if !entry.contains(&steps) {
                        entry.push(steps);
                    }
                }
            }
        }
        Compartment { paths }
    }

    /// Whether type X is in the compartment table.
    pub(crate) fn contains(&self, resource_type: &str) -> bool {
        self.paths.contains_key(resource_type)
    }

    /// The ids of the patients whose compartment this body is in (sorted, without repeats).
    /// A Patient is always in its own compartment.
    pub(crate) fn patients_of(&self, resource_type: &str, id: &str, body: &Value) -> Vec<String> {
        let mut out = Vec::new();
        if resource_type == "Patient" {
            out.push(id.to_string());
        }
        if let Some(fields) = body.as_object() {
            for (key, value) in fields {
                self.patients_in_field(resource_type, key, value, &mut out);
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Adds the patients referenced on this type's compartment paths inside one top-level
    /// field of a body (the history scanner parses only these fields).
    pub(crate) fn patients_in_field(&self, resource_type: &str, key: &str, value: &Value, out: &mut Vec<String>) {
        let Some(paths) = self.paths.get(resource_type) else { return };
        for path in paths {
            let (first, rest) = path.split_first().expect("paths have a step");
            let node = match first.follows(key) {
                Some(None) => Some(value),
                Some(Some(suffix)) => value.get(suffix),
                None => None,
            };
            if let Some(node) = node {
                walk(node, rest, &mut |n| {
                    if let Some(p) = patient_of_node(n) {
                        out.push(p);
                    }
                });
            }
        }
    }

    /// Every top-level field name a compartment path of any type starts with (both the FHIR
    /// `nameReference` and the Aidbox `name` spelling of a choice element).
    pub(crate) fn first_steps(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for paths in self.paths.values() {
            for p in paths {
                out.push(p[0].name.clone());
                if let Some(c) = &p[0].choice {
                    out.push(format!("{}{c}", p[0].name));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// `Type.a.b`, `Type.a.where(resolve() is Patient)`, `(Type.a as Reference)`,
/// `Type.a.ofType(Reference)` → steps. `{def}` and `ofType(canonical)` give none.
fn parse_expression(rtype: &str, branch: &str) -> Option<Vec<Step>> {
    let mut e = branch.trim();
    if e.starts_with('(') && e.ends_with(')') {
        e = e[1..e.len() - 1].trim();
    }
    let mut e = e.to_string();
    if e.is_empty() || e == "{def}" || e.contains("ofType(canonical)") {
        return None;
    }
    // `.where(resolve() is Patient)` only narrows to Patient references, which are the only
    // references a compartment match looks at anyway.
    e = e.replace(".where(resolve() is Patient)", "");
    let mut choice = None;
    if let Some(stripped) = e.strip_suffix(" as Reference") {
        e = stripped.to_string();
        choice = Some("Reference".to_string());
    }
    if let Some(stripped) = e.strip_suffix(".ofType(Reference)") {
        e = stripped.to_string();
        choice = Some("Reference".to_string());
    }
    let mut parts = e.split('.');
    if parts.next()? != rtype {
        return None;
    }
    let mut steps: Vec<Step> = parts.map(|p| Step { name: p.to_string(), choice: None }).collect();
    if steps.is_empty() || steps.iter().any(|s| s.name.is_empty() || !s.name.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return None;
    }
    if let Some(last) = steps.last_mut() {
        last.choice = choice;
    }
    Some(steps)
}

/// Visits every node reached by the path, flattening arrays at each step.
fn walk<'a>(node: &'a Value, path: &[Step], visit: &mut impl FnMut(&'a Value)) {
    match node {
        Value::Array(items) => {
            for item in items {
                walk(item, path, visit);
            }
        }
        Value::Object(obj) => {
            let Some((step, rest)) = path.split_first() else {
                visit(node);
                return;
            };
            let next: Vec<&Value> = match &step.choice {
                None => obj.get(&step.name).into_iter().collect(),
                Some(suffix) => {
                    let fhir = obj.get(&format!("{}{}", step.name, suffix));
                    let aidbox = obj.get(&step.name).and_then(|v| v.get(suffix));
                    fhir.into_iter().chain(aidbox).collect()
                }
            };
            for n in next {
                walk(n, rest, visit);
            }
        }
        _ => {}
    }
}

/// The patient a reference node points to: `{"reference": "Patient/p"}` (FHIR), or
/// `{"resourceType": "Patient", "id": "p"}` / `{"uri": "…/Patient/p"}` (Aidbox).
pub(crate) fn patient_of_node(node: &Value) -> Option<String> {
    match reference_of_node(node)? {
        (t, id) if t == "Patient" => Some(id),
        _ => None,
    }
}

/// The (type, id) a reference node points to, in any of the reference forms.
pub(crate) fn reference_of_node(node: &Value) -> Option<(String, String)> {
    let obj = node.as_object()?;
    let text = |key: &str| obj.get(key).and_then(Value::as_str);
    reference_of_fields(text("reference"), text("resourceType"), text("id"), text("uri"))
        .map(|(t, i)| (t.to_string(), i.to_string()))
}

/// The (type, id) a reference node names, from its fields that are strings: `reference` if
/// there is one, else `resourceType` and `id` if both are there (taken as they are), else
/// `uri`. The one rule for the `Value` reading and the quick walks over raw JSON.
pub(crate) fn reference_of_fields<'s>(
    reference: Option<&'s str>,
    resource_type: Option<&'s str>,
    id: Option<&'s str>,
    uri: Option<&'s str>,
) -> Option<(&'s str, &'s str)> {
    if let Some(r) = reference {
        parse_reference(r)
    } else if let (Some(t), Some(i)) = (resource_type, id) {
        (is_type_name(t) && is_id(i)).then_some((t, i))
    } else {
        uri.and_then(parse_reference)
    }
}

/// `Type/id`, `Type/id/_history/n`, or an absolute URL ending so → (type, id).
/// `urn:` and `#` references are not resolvable and never match.
pub(crate) fn parse_reference(r: &str) -> Option<(&str, &str)> {
    // The common `Type/id`: what the general reading gives for it, with one search.
    if let Some((t, id)) = r.split_once('/') {
        if is_type_name(t) && is_id(id) {
            return Some((t, id));
        }
    }
    parse_reference_generally(r)
}

fn parse_reference_generally(r: &str) -> Option<(&str, &str)> {
    let r = r.trim();
    if r.is_empty() || r.starts_with('#') || r.starts_with("urn:") {
        return None;
    }
    let r = r.split(['?', '#']).next().unwrap_or(r).trim_end_matches('/');
    // The last four segments at most, from the end, without allocating.
    let mut back = r.rsplit('/');
    let (a, b) = (back.next()?, back.next()?);
    let (c, d) = (back.next(), back.next());
    let (t, id) = match (c, d) {
        (Some(id), Some(t)) if b == "_history" => (t, id),
        _ => (b, a),
    };
    (is_type_name(t) && is_id(id)).then_some((t, id))
}

pub(crate) fn is_type_name(t: &str) -> bool {
    t.as_bytes().first().is_some_and(|b| b.is_ascii_uppercase())
        && t.bytes().fold(true, |ok, b| ok & b.is_ascii_alphanumeric())
}

/// A FHIR id (`[A-Za-z0-9\-\.]{1,64}`); `_` is accepted too, as Aidbox allows it.
pub(crate) fn is_id(id: &str) -> bool {
    // A table and a fold without early exit: ids are read once per reference on a compartment path.
    const ID_BYTE: [bool; 256] = {
        let mut t = [false; 256];
        let mut b = 0;
        while b < 256 {
            t[b] = (b as u8).is_ascii_alphanumeric() || b == b'-' as usize || b == b'.' as usize || b == b'_' as usize;
            b += 1;
        }
        t
    };
    !id.is_empty() && id.len() <= 64 && id.bytes().fold(true, |ok, b| ok & ID_BYTE[b as usize])
}

/// Every (type, id) referenced anywhere in a body (contained resources excluded), for the
/// `--non-compartment referenced` policy.
pub(crate) fn all_references(body: &Value) -> Vec<(String, String)> {
    fn go(v: &Value, root: bool, out: &mut Vec<(String, String)>) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| go(x, false, out)),
            Value::Object(o) => {
                if !root {
                    if let Some(r) = reference_of_node(v) {
                        out.push(r);
                        return;
                    }
                }
                for (k, x) in o {
                    if k != "contained" {
                        go(x, false, out);
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    go(body, true, &mut out);
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn id_characters() {
        for b in 0u8..128 {
            let expected = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
            assert_eq!(is_id(&format!("a{}b", b as char)), expected, "byte {b}");
        }
        assert!(!is_id("caf\u{e9}") && !is_id("") && !is_id(&"a".repeat(65)) && is_id(&"a".repeat(64)));
        assert!(is_type_name("Patient") && !is_type_name("patient") && !is_type_name("Pat-ient"));
    }

    #[test]
    fn every_table_row_parses_to_a_path() {
        for v in [FhirVersion::R4, FhirVersion::R4b, FhirVersion::R5] {
            let c = Compartment::load(v);
            assert!(c.paths.len() >= 60, "{v:?}: {}", c.paths.len());
            for (t, paths) in &c.paths {
                if t != "Patient" {
                    assert!(!paths.is_empty(), "{v:?} {t} has no path");
                }
            }
        }
        let r4 = Compartment::load(FhirVersion::R4);
        assert!(r4.contains("Observation") && !r4.contains("Location") && !r4.contains("Organization"));
        assert_eq!(r4.paths["Claim"].len(), 2);
        let r5 = Compartment::load(FhirVersion::R5);
        let ni = &r5.paths["NutritionIntake"];
        assert!(ni.iter().any(|p| p[0].name == "reported" && p[0].choice.as_deref() == Some("Reference")), "{ni:?}");
    }

    #[test]
    fn references_in_every_form() {
        for r in [
            "Patient/p1",
            "Patient/p1/",
            " Patient/p1",
            "Patient/p 1",
            "Patient/p1?x=1",
            "Patient/p1#a",
            "patient/p1",
            "Patient/",
            "/p1",
            "Patient//p1",
            "Patient/p1/_history/2",
            "A/b/C/d",
            "Patient/\u{e9}",
        ] {
            assert_eq!(parse_reference(r), parse_reference_generally(r), "{r}");
        }
        assert_eq!(parse_reference("Patient/p1"), Some(("Patient", "p1")));
        assert_eq!(parse_reference("Patient/p1/_history/3"), Some(("Patient", "p1")));
        assert_eq!(parse_reference("https://x.org/fhir/Patient/p1"), Some(("Patient", "p1")));
        assert_eq!(parse_reference("urn:uuid:1234"), None);
        assert_eq!(parse_reference("#contained"), None);
        assert_eq!(patient_of_node(&json!({"resourceType": "Patient", "id": "p"})), Some("p".into()));
        assert_eq!(patient_of_node(&json!({"uri": "http://a/Patient/p"})), Some("p".into()));
        assert_eq!(patient_of_node(&json!({"reference": "Group/g"})), None);
    }

    #[test]
    fn compartment_paths_nested_arrays_and_formats() {
        let c = Compartment::load(FhirVersion::R4);
        let obs = json!({"subject": {"reference": "Patient/a"}, "performer": [{"reference": "Practitioner/x"}, {"reference": "Patient/b"}]});
        assert_eq!(c.patients_of("Observation", "o", &obs), vec!["a", "b"]);
        let claim =
            json!({"patient": {"resourceType": "Patient", "id": "c"}, "payee": {"party": {"reference": "Patient/d"}}});
        assert_eq!(c.patients_of("Claim", "x", &claim), vec!["c", "d"]);
        let pt = json!({"link": [{"other": {"reference": "Patient/e"}}]});
        assert_eq!(c.patients_of("Patient", "p", &pt), vec!["e", "p"]);
        let careplan = json!({"activity": [{"detail": {"performer": [{"reference": "Patient/f"}]}}]});
        assert_eq!(c.patients_of("CarePlan", "cp", &careplan), vec!["f"]);
        // Not a compartment path: a reference elsewhere does not count.
        let enc = json!({"serviceProvider": {"reference": "Patient/g"}});
        assert!(c.patients_of("Encounter", "e", &enc).is_empty());
        let r5 = Compartment::load(FhirVersion::R5);
        let ni = json!({"reportedReference": {"reference": "Patient/h"}});
        assert_eq!(r5.patients_of("NutritionIntake", "n", &ni), vec!["h"]);
        let ni_aidbox = json!({"reported": {"Reference": {"resourceType": "Patient", "id": "i"}}});
        assert_eq!(r5.patients_of("NutritionIntake", "n", &ni_aidbox), vec!["i"]);
    }

    #[test]
    fn all_references_skips_root_and_contained() {
        let body = json!({"resourceType": "Encounter", "id": "e", "location": [{"location": {"reference": "Location/l"}}],
                          "contained": [{"resourceType": "Location", "id": "c"}], "serviceProvider": {"resourceType": "Organization", "id": "o"}});
        assert_eq!(all_references(&body), vec![("Location".into(), "l".into()), ("Organization".into(), "o".into())]);
    }
}
