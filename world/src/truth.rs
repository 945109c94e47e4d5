//! The truth: the rows each accepted kickoff must give, by the rules of SPEC.md with the audit's
//! default options (strict boundary, Smartbox wildcard, non-compartment `all`, R4), worked out
//! from the generator's model of the world: its versions, the patients it gave each version,
//! the Clients' scopes and the Groups' members as they were at the kickoff.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;

use crate::compartment::Compartment;
use crate::{GenKickoff, GenResource};

/// The types `*` in a scope grants on Smartbox.
/// Every FHIR R4 resource type (the table the audit also embeds, read here on its own).
const FHIR_R4_TYPES: &str = include_str!("../../data/resource-types-r4.txt");

const SMARTBOX_TYPES: [&str; 18] = [
    "Patient",
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "Condition",
    "Device",
    "DiagnosticReport",
    "DocumentReference",
    "Goal",
    "Encounter",
    "Immunization",
    "MedicationRequest",
    "Observation",
    "Procedure",
    "Provenance",
    "Practitioner",
    "Organization",
    "Location",
];

pub(crate) fn compute_truth(
    resources: &[GenResource],
    kickoffs: &[GenKickoff],
    compartment: &Compartment,
) -> Vec<[String; 6]> {
    let by_key: HashMap<(&str, &str), &GenResource> =
        resources.iter().map(|r| ((r.rtype.as_str(), r.id.as_str()), r)).collect();
    let as_of = |r: &GenResource, t: i64| -> Option<usize> { r.versions.iter().rposition(|v| v.time < t) };
    let live = |r: &GenResource, t: i64| as_of(r, t).filter(|&i| !r.versions[i].deleted);
    let body = |r: &GenResource, i: usize| -> Value {
        serde_json::from_str(r.versions[i].body.as_deref().unwrap_or("{}")).unwrap_or(Value::Null)
    };
    // "Every type" is every FHIR R4 resource type, never Aidbox's own (Client, BulkExportStatus…).
    let fhir: BTreeSet<&str> = FHIR_R4_TYPES.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let present: BTreeSet<&str> = resources.iter().map(|r| r.rtype.as_str()).filter(|t| fhir.contains(t)).collect();
    let mut rows = Vec::new();
    for k in kickoffs.iter().filter(|k| k.status < 400) {
        let t = k.time;
        // Scopes.
        // A Client without `scope` allows every type, as a missing one does.
        let allowed: Option<BTreeSet<String>> = by_key
            .get(&("Client", k.client.as_str()))
            .and_then(|c| live(c, t).map(|i| body(c, i)))
            .filter(|c| c.get("scope").is_some())
            .map(|c| {
                let scopes: Vec<String> = match &c["scope"] {
                    Value::String(s) => s.split_whitespace().map(String::from).collect(),
                    Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
                    _ => vec![],
                };
                let mut set = BTreeSet::new();
                for s in scopes {
                    let Some(rest) = s.strip_prefix("system/") else { continue };
                    let (ty, perm) = rest.split_once('.').unwrap_or(("", ""));
                    let perm = perm.split('?').next().unwrap_or("");
                    if !["read", "rs", "cruds", "*"].contains(&perm) {
                        continue;
                    }
                    if ty == "*" {
                        set.extend(SMARTBOX_TYPES.iter().map(|s| s.to_string()));
                    } else {
                        set.insert(ty.to_string());
                    }
                }
                set
            });
        let types: BTreeSet<String> = match (&k.types, &allowed) {
            (Some(req), Some(a)) => req.iter().filter(|t| a.contains(*t)).cloned().collect(),
            (Some(req), None) => req.iter().cloned().collect(),
            (None, Some(a)) => a.clone(),
            (None, None) => present.iter().map(|s| s.to_string()).collect(),
        };
        let types: BTreeSet<String> = types.into_iter().filter(|t| fhir.contains(t.as_str())).collect();
        // Patients.
        let selected: Option<BTreeSet<String>> = match k.level {
            "group" => {
                let gid = k.group.clone().unwrap_or_default();
                let Some(g) = by_key.get(&("Group", gid.as_str())) else { continue };
                if live(g, t).is_none() {
                    continue;
                }
                let mut pats = BTreeSet::new();
                let mut seen = HashSet::from([gid.clone()]);
                let mut stack = vec![gid];
                while let Some(gid) = stack.pop() {
                    let Some(g) = by_key.get(&("Group", gid.as_str())) else { continue };
                    let Some(i) = live(g, t) else { continue };
                    for m in body(g, i)["member"].as_array().cloned().unwrap_or_default() {
                        let e = &m["entity"];
                        let (ty, id) = match (e["reference"].as_str(), e["resourceType"].as_str(), e["id"].as_str()) {
                            (Some(r), _, _) => match r.split_once('/') {
                                Some((a, b)) if !r.starts_with("urn:") => (a.to_string(), b.to_string()),
                                _ => continue,
                            },
                            (None, Some(a), Some(b)) => (a.to_string(), b.to_string()),
                            _ => continue,
                        };
                        if ty == "Patient" {
                            pats.insert(id);
                        } else if ty == "Group" && seen.insert(id.clone()) {
                            stack.push(id);
                        }
                    }
                }
                Some(pats)
            }
            "patient" if !k.patients.is_empty() => Some(k.patients.iter().cloned().collect()),
            "patient" => Some(
                resources
                    .iter()
                    .filter(|r| r.rtype == "Patient" && live(r, t).is_some())
                    .map(|r| r.id.clone())
                    .collect(),
            ),
            _ => None,
        };
        for r in resources.iter().filter(|r| types.contains(&r.rtype)) {
            let Some(i) = live(r, t) else { continue };
            let v = &r.versions[i];
            if k.since.is_some_and(|s| v.time <= s) || k.until.is_some_and(|u| v.time >= u) {
                continue;
            }
            let mut row = |p: &str| {
                rows.push([
                    k.ctx.clone(),
                    k.client.clone(),
                    p.to_string(),
                    r.rtype.clone(),
                    r.id.clone(),
                    v.txid.to_string(),
                ])
            };
            if !compartment.covers(&r.rtype) {
                row("");
                continue;
            }
            // Compartment membership of generated Groups/statuses comes from their bodies.
            let pats: Vec<String> = if r.rtype == "Group" {
                compartment.patients_of("Group", &r.id, &body(r, i))
            } else {
                v.patients.clone()
            };
            match &selected {
                None if pats.is_empty() => row(""),
                None => pats.iter().for_each(|p| row(p)),
                Some(sel) => pats.iter().filter(|p| sel.contains(*p)).for_each(|p| row(p)),
            }
        }
    }
    rows
}
