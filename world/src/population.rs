//! The base population: the Synthea resources a world is cloned from (the chosen patients,
//! their resources up to a number per type, the resources outside the compartment they refer
//! to), each kept as a body template with marks where a clone's id suffix goes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::Read;
use std::path::PathBuf;

use serde_json::Value;

use crate::compartment::{self, Compartment};
use crate::WorldSpec;

/// A base resource of the population: its body as a template whose ids get the clone suffix.
pub(crate) struct Base {
    pub(crate) rtype: String,
    pub(crate) id: String,
    /// Serialized body split where a clone suffix goes.
    pieces: Vec<String>,
    /// Patients (base ids) on its compartment paths.
    pub(crate) patients: Vec<String>,
    /// The patient reference a move rewrites (`subject`/`patient`), base id.
    pub(crate) owner: Option<String>,
}

impl Base {
    /// The body of one clone's version of this resource.
    pub(crate) fn version_text(&self, suffix: &str, revision: u32) -> String {
        let s = self.pieces.join(suffix);
        if revision > 1 {
            // Mark the revision with an element Synthea never sets, as an edit changes the resource.
            return format!("{{\"implicitRules\":\"http://example.org/revision/{revision}\",{}", &s[1..]);
        }
        s
    }
}

const SUFFIX_MARK: char = '\u{E000}';

pub(crate) fn load_population(spec: &WorldSpec, compartment: &Compartment) -> std::io::Result<Vec<Base>> {
    let mut by_type: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut names: Vec<PathBuf> = fs::read_dir(&spec.synthea)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".ndjson.zst"))
        .collect();
    names.sort();
    for p in names {
        let mut text = String::new();
        zstd::stream::read::Decoder::new(File::open(&p)?)?.read_to_string(&mut text)?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).map_err(std::io::Error::other)?;
            let t = v["resourceType"].as_str().unwrap_or_default().to_string();
            by_type.entry(t).or_default().push(v);
        }
    }
    let all_patients: Vec<String> = by_type
        .get("Patient")
        .map(|v| v.iter().map(|p| p["id"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default();
    let chosen: HashSet<String> = all_patients.iter().take(spec.patients.unwrap_or(usize::MAX)).cloned().collect();
    let mut kept: Vec<Value> = Vec::new();
    let mut per_patient_type: HashMap<(String, String), usize> = HashMap::new();
    let mut outside: Vec<Value> = Vec::new();
    for (t, list) in by_type {
        for v in list {
            let id = v["id"].as_str().unwrap_or_default().to_string();
            if !compartment.covers(&t) {
                outside.push(v);
                continue;
            }
            let pats = compartment.patients_of(&t, &id, &v);
            if pats.is_empty() || !pats.iter().all(|p| chosen.contains(p)) {
                continue;
            }
            let n = per_patient_type.entry((pats[0].clone(), t.clone())).or_insert(0);
            if spec.max_per_type.is_some_and(|m| *n >= m) && t != "Patient" {
                continue;
            }
            *n += 1;
            kept.push(v);
        }
    }
    // Resources outside the compartment: those the kept ones reference (all when unrestricted).
    let referenced: HashSet<(String, String)> = kept.iter().flat_map(compartment::all_references).collect();
    for v in outside {
        let key = (
            v["resourceType"].as_str().unwrap_or_default().to_string(),
            v["id"].as_str().unwrap_or_default().to_string(),
        );
        if spec.patients.is_none() || referenced.contains(&key) {
            kept.push(v);
        }
    }
    let ids: HashSet<String> = kept.iter().map(|v| v["id"].as_str().unwrap_or_default().to_string()).collect();
    Ok(kept
        .into_iter()
        .map(|mut v| {
            let rtype = v["resourceType"].as_str().unwrap_or_default().to_string();
            let id = v["id"].as_str().unwrap_or_default().to_string();
            let patients = compartment.patients_of(&rtype, &id, &v);
            let owner = ["subject", "patient"].iter().find_map(|k| {
                v.get(*k)
                    .and_then(|r| r["reference"].as_str())
                    .and_then(|r| r.strip_prefix("Patient/"))
                    .map(String::from)
            });
            mark_ids(&mut v, &ids, true);
            let text = serde_json::to_string(&v).unwrap_or_default();
            let pieces = text.split(SUFFIX_MARK).map(String::from).collect();
            Base { rtype, id, pieces, patients, owner }
        })
        .collect())
}

/// Appends the suffix mark after the resource's id and after every reference to a kept id.
fn mark_ids(v: &mut Value, ids: &HashSet<String>, root: bool) {
    match v {
        Value::Object(o) => {
            if root {
                if let Some(Value::String(id)) = o.get_mut("id") {
                    id.push(SUFFIX_MARK);
                }
            }
            if let Some(Value::String(r)) = o.get_mut("reference") {
                if let Some((_, id)) = r.rsplit_once('/') {
                    if ids.contains(id) {
                        r.push(SUFFIX_MARK);
                    }
                }
            }
            for (k, x) in o.iter_mut() {
                if k != "id" || !root {
                    mark_ids(x, ids, false);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| mark_ids(x, ids, false)),
        _ => {}
    }
}
