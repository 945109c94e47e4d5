//! Synthetic worlds for fixtures, tests and benchmarks: the Synthea population cloned K times
//! with new ids, a generated history (updates, deletions, recreations, resources moving between
//! patients), Groups and Clients that change, BulkExportStatus resources, request logs with a few
//! dozen export kickoffs among other requests, and the truth: the rows each export must give,
//! computed from the generator's own model of the world (not by the audit code).
//!
//! Written in the simple form the DuckDB peer reads (`fhir`) or in a mix of every input form
//! (`mixed`: Aidbox rows, history Bundles, resources with meta, `.zst`/`.gz`, Elasticsearch hits,
//! Kibana CSV).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::compartment::{Compartment, FhirVersion};
use crate::scopes::SMARTBOX_TYPES;
use crate::timestamp::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorldFormat {
    /// `logs/*.ndjson` (Aidbox lines) and `history/*.ndjson` (resources with meta, DELETE
    /// entries): what `duckdb_peer.py` reads.
    Fhir,
    /// Every input form at once.
    Mixed,
}

#[derive(Debug, Clone)]
pub struct WorldSpec {
    /// Folder of `<Type>.ndjson.zst` Synthea files.
    pub synthea: PathBuf,
    pub clones: usize,
    /// Patients taken from the population (None: all).
    pub patients: Option<usize>,
    /// At most this many resources of one type per patient (None: all).
    pub max_per_type: Option<usize>,
    /// Requests that are not kickoffs.
    pub noise_requests: usize,
    pub seed: u64,
    pub format: WorldFormat,
}

/// Deterministic pseudo-random numbers (SplitMix64).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

const DAY: i64 = 86_400 * 1_000_000_000;
const MS: i64 = 1_000_000;
/// 2023-01-01T00:00:00Z.
const EPOCH: i64 = 1_672_531_200 * 1_000_000_000;

fn day(d: f64) -> i64 {
    EPOCH + (d * DAY as f64) as i64
}

/// A base resource of the population: its body as a template whose ids get the clone suffix.
struct Base {
    rtype: String,
    id: String,
    /// Serialized body split where a clone suffix goes.
    pieces: Vec<String>,
    /// Patients (base ids) on its compartment paths.
    patients: Vec<String>,
    /// The patient reference a move rewrites (`subject`/`patient`), base id.
    owner: Option<String>,
}

const SUFFIX_MARK: char = '\u{E000}';

fn load_population(spec: &WorldSpec, compartment: &Compartment) -> std::io::Result<Vec<Base>> {
    let mut by_type: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut names: Vec<PathBuf> = fs::read_dir(&spec.synthea)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.to_string_lossy().ends_with(".ndjson.zst")).collect();
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
    let all_patients: Vec<String> = by_type.get("Patient").map(|v| v.iter().map(|p| p["id"].as_str().unwrap_or_default().to_string()).collect()).unwrap_or_default();
    let chosen: HashSet<String> = all_patients.iter().take(spec.patients.unwrap_or(usize::MAX)).cloned().collect();
    let mut kept: Vec<Value> = Vec::new();
    let mut per_patient_type: HashMap<(String, String), usize> = HashMap::new();
    let mut outside: Vec<Value> = Vec::new();
    for (t, list) in by_type {
        for v in list {
            let id = v["id"].as_str().unwrap_or_default().to_string();
            if !compartment.contains(&t) {
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
    let referenced: HashSet<(String, String)> = kept.iter().flat_map(crate::compartment::all_references).collect();
    for v in outside {
        let key = (v["resourceType"].as_str().unwrap_or_default().to_string(), v["id"].as_str().unwrap_or_default().to_string());
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
            let owner = ["subject", "patient"].iter().find_map(|k| v.get(*k).and_then(|r| r["reference"].as_str()).and_then(|r| r.strip_prefix("Patient/")).map(String::from));
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

/// One version in the generated history.
#[derive(Clone, Debug)]
pub struct GenVersion {
    pub time: i64,
    pub txid: u64,
    pub deleted: bool,
    /// The body (None for a deletion).
    pub body: Option<String>,
    pub patients: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct GenResource {
    pub rtype: String,
    pub id: String,
    pub versions: Vec<GenVersion>,
}

/// A kickoff in the generated logs.
#[derive(Clone, Debug)]
pub struct GenKickoff {
    pub ctx: String,
    pub client: String,
    pub time: i64,
    pub response: i64,
    pub method: &'static str,
    pub url: String,
    /// Query string logged in `w_qs` (else it is part of the URL).
    pub qs: Option<String>,
    pub status: u16,
    pub level: &'static str,
    pub group: Option<String>,
    pub types: Option<Vec<String>>,
    pub patients: Vec<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Why this kickoff is in the story.
    pub story: String,
}

/// The whole world in memory.
pub struct World {
    pub resources: Vec<GenResource>,
    pub kickoffs: Vec<GenKickoff>,
    /// Other requests: (time, method, url, client, status).
    pub noise: Vec<(i64, &'static str, String, String, u16)>,
    /// Expected rows: (export_id, client_id, patient_id, type, id, version).
    pub truth: Vec<[String; 6]>,
    pub story: Vec<String>,
}

fn version_text(base: &Base, suffix: &str, revision: u32) -> String {
    let s = base.pieces.join(suffix);
    if revision > 1 {
        // Mark the revision with an element Synthea never sets, as an edit changes the resource.
        return format!("{{\"implicitRules\":\"http://example.org/revision/{revision}\",{}", &s[1..]);
    }
    s
}

/// Generates the world in memory.
pub fn generate(spec: &WorldSpec) -> std::io::Result<World> {
    let compartment = Compartment::load(FhirVersion::R4);
    let bases = load_population(spec, &compartment)?;
    let k_count = spec.clones.max(1);
    let sfx = |k: usize| if k_count == 1 { String::new() } else { format!("-c{k}") };
    let base_patients: Vec<String> = bases.iter().filter(|b| b.rtype == "Patient").map(|b| b.id.clone()).collect();
    let mut resources: Vec<GenResource> = Vec::new();
    for k in 0..k_count {
        let s = sfx(k);
        for (bi, b) in bases.iter().enumerate() {
            let mut rng = Rng::new(spec.seed ^ ((k as u64) << 32) ^ (bi as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let created = match b.rtype.as_str() {
                "Organization" | "Practitioner" => day(rng.unit()),
                "Patient" => day(0.5 + 1.5 * rng.unit()),
                _ => day(2.0 + 18.0 * rng.unit()),
            };
            let created = created - created % 1000;
            let pats = |list: &[String], s: &str| list.iter().map(|p| format!("{p}{s}")).collect::<Vec<_>>();
            let mut versions = vec![GenVersion { time: created, txid: 0, deleted: false, body: Some(version_text(b, &s, 1)), patients: pats(&b.patients, &s) }];
            let r = rng.unit();
            let updates = if r < 0.40 { 1 } else if r < 0.55 { 2 } else { 0 };
            let mut t = created;
            let mut current_owner = b.owner.clone();
            let mut current_patients = b.patients.clone();
            let mut current_text = version_text(b, &s, 1);
            for u in 0..updates {
                t += (0.5 * DAY as f64 + rng.unit() * 20.0 * DAY as f64) as i64;
                t -= t % 1000;
                let mut text = version_text(b, &s, u + 2);
                // Now and then a resource moves to another patient of its clone.
                let moves = b.rtype != "Patient" && current_owner.is_some() && base_patients.len() > 1 && rng.unit() < 0.08;
                if moves {
                    let old = current_owner.clone().unwrap_or_default();
                    let candidates: Vec<&String> = base_patients.iter().filter(|p| **p != old).collect();
                    let new = candidates[rng.below(candidates.len() as u64) as usize].clone();
                    current_patients = current_patients.iter().map(|p| if *p == old { new.clone() } else { p.clone() }).collect();
                    current_patients.sort();
                    current_patients.dedup();
                    current_owner = Some(new);
                }
                if let Some(o) = &current_owner {
                    if Some(o) != b.owner.as_ref() {
                        let from = format!("\"Patient/{}{s}\"", b.owner.as_deref().unwrap_or(""));
                        text = text.replace(&from, &format!("\"Patient/{o}{s}\""));
                    }
                }
                current_text = text.clone();
                versions.push(GenVersion { time: t, txid: 0, deleted: false, body: Some(text), patients: pats(&current_patients, &s) });
            }
            if rng.unit() < 0.06 {
                t += (DAY as f64 + rng.unit() * 15.0 * DAY as f64) as i64;
                t -= t % 1000;
                versions.push(GenVersion { time: t, txid: 0, deleted: true, body: None, patients: vec![] });
                if rng.unit() < 0.5 {
                    t += (DAY as f64 + rng.unit() * 10.0 * DAY as f64) as i64;
                    t -= t % 1000;
                    versions.push(GenVersion { time: t, txid: 0, deleted: false, body: Some(current_text.clone()), patients: pats(&current_patients, &s) });
                }
            }
            resources.push(GenResource { rtype: b.rtype.clone(), id: format!("{}{s}", b.id), versions });
        }
    }
    let patients_of_clone = |k: usize| -> Vec<String> { base_patients.iter().map(|p| format!("{p}{}", sfx(k))).collect() };
    let last = k_count - 1;
    let p0 = patients_of_clone(0);
    let plast = patients_of_clone(last);
    let half = p0.len().div_ceil(2).max(1);

    // Groups (per clone 0 and the last clone), Clients.
    let group_ref = |id: &str, aidbox: bool| if aidbox { json!({"resourceType": "Patient", "id": id}) } else { json!({"reference": format!("Patient/{id}")}) };
    let add = |rtype: &str, id: &str, versions: Vec<(i64, Option<Value>)>, resources: &mut Vec<GenResource>| {
        let vs = versions
            .into_iter()
            .map(|(t, body)| GenVersion { time: t, txid: 0, deleted: body.is_none(), patients: vec![], body: body.map(|mut b| {
                b["resourceType"] = json!(rtype);
                b["id"] = json!(id);
                let mut o = Map::new();
                o.insert("resourceType".into(), json!(rtype));
                o.insert("id".into(), json!(id));
                if let Value::Object(m) = b { for (k, v) in m { o.insert(k, v); } }
                serde_json::to_string(&Value::Object(o)).unwrap_or_default()
            }) })
            .collect();
        resources.push(GenResource { rtype: rtype.into(), id: id.into(), versions: vs });
    };
    for (k, pl) in [(0usize, &p0), (last, &plast)].into_iter().collect::<BTreeMap<_, _>>() {
        let s = sfx(k);
        let a1: Vec<Value> = pl.iter().take(half).map(|p| json!({"entity": group_ref(p, false)})).collect();
        let mut a2: Vec<Value> = pl.iter().take(half).skip(1).map(|p| json!({"entity": group_ref(p, true)})).collect();
        if let Some(lp) = pl.last() {
            if pl.len() > half {
                a2.push(json!({"entity": group_ref(lp, true)}));
            }
        }
        add("Group", &format!("cohort-a{s}"), vec![(day(1.0) + 123_456_000, Some(json!({"type": "person", "actual": true, "member": a1}))), (day(30.0) + 7_000_000, Some(json!({"type": "person", "actual": true, "member": a2})))], &mut resources);
        let mut all_members: Vec<Value> = vec![json!({"entity": {"reference": format!("Group/cohort-a{s}")}})];
        for (i, p) in pl.iter().enumerate().skip(half) {
            let mut m = json!({"entity": group_ref(p, i % 2 == 0)});
            if i == half {
                m["inactive"] = json!(true);
            }
            if i == half + 1 {
                m["period"] = json!({"start": "2022-06-01T00:00:00Z", "end": "2023-01-05T00:00:00Z"});
            }
            all_members.push(m);
        }
        // A loop back to itself, and a member that is no Patient.
        all_members.push(json!({"entity": {"reference": format!("Group/cohort-all{s}")}}));
        all_members.push(json!({"entity": {"reference": "urn:uuid:5d0c7f3e-0000-0000-0000-000000000001"}}));
        add("Group", &format!("cohort-all{s}"), vec![(day(2.0) + 98_765_000, Some(json!({"type": "person", "actual": true, "member": all_members})))], &mut resources);
        add("Group", &format!("cohort-gone{s}"), vec![(day(3.0), Some(json!({"type": "person", "actual": true, "member": [{"entity": group_ref(&pl[0], false)}]}))), (day(25.0), None)], &mut resources);
    }
    add("Client", "bulk-smartbox", vec![(day(0.0) + 1_000_000, Some(json!({"type": "bulk-api-client", "grant_types": ["client_credentials"], "scope": "system/*.read"}))),
        (day(40.0), Some(json!({"type": "bulk-api-client", "grant_types": ["client_credentials"], "scope": ["system/Patient.read", "system/Observation.rs", "system/Condition.cruds"]})))], &mut resources);
    add("Client", "bulk-limited", vec![(day(0.0) + 2_000_000, Some(json!({"type": "bulk-api-client", "scope": ["system/Patient.read", "system/Encounter.read", "system/Observation.read?category=laboratory", "openid"]})))], &mut resources);
    add("Client", "bulk-v2", vec![(day(0.0) + 3_000_000, Some(json!({"type": "bulk-api-client", "scope": "system/*.rs launch"})))], &mut resources);
    add("Client", "bulk-late", vec![(day(45.0), Some(json!({"type": "bulk-api-client", "scope": "system/Patient.read system/Encounter.read"})))], &mut resources);

    // Kickoffs.
    let iso = |t: i64| Instant(t).to_rfc3339();
    let mut kickoffs: Vec<GenKickoff> = Vec::new();
    let mut kick = |n: usize, client: &str, d: f64, method: &'static str, path: String, query: Option<String>, in_qs: bool, status: u16, story: &str| {
        let t = day(d) + (n as i64 * 7919 % 1000) * MS;
        let (level, group) = match crate::kickoff::classify_path(&path) {
            Some((l, g)) => (l.as_str(), g),
            None => ("?", None),
        };
        let params = crate::kickoff::parse_params(query.as_deref().unwrap_or(""), &chrono_tz::Tz::UTC);
        let (url, qs) = match (&query, in_qs) {
            (Some(q), false) => (format!("{path}?{q}"), None),
            (Some(q), true) => (path.clone(), Some(q.clone())),
            (None, _) => (path.clone(), None),
        };
        kickoffs.push(GenKickoff {
            ctx: format!("kick-{n:02}"),
            client: client.into(),
            time: t,
            response: t + (40 + (n as i64 * 37) % 80) * MS,
            method,
            url,
            qs,
            status,
            level,
            group,
            types: params.types,
            patients: params.patients,
            since: params.since.map(|i| i.0),
            until: params.until.map(|i| i.0),
            story: story.into(),
        });
    };
    let s0 = sfx(0);
    let sl = sfx(last);
    kick(1, "bulk-smartbox", 12.5, "GET", format!("/fhir/Group/cohort-a{s0}/$export"), None, false, 202, "group export under system/*.read: the 18 Smartbox types for cohort-a's first members");
    kick(2, "bulk-smartbox", 13.0, "GET", format!("/fhir/Group/cohort-all{sl}/$export"), Some("_type=Patient,Observation,Condition,Claim".into()), true, 202, "nested group (cohort-a inside cohort-all, a self-loop, an inactive member, a member whose period ended); Claim is not granted");
    kick(3, "bulk-limited", 20.0, "POST", format!("/tenant/t1/fhir/Group/cohort-a{s0}/%24export"), Some(format!("_since={}", iso(day(15.0)).replace(':', "%3A"))), false, 202, "tenant path, %24export, POST, _since day 15; a scope with a query");
    // The DuckDB peer reads plain ids only; the mixed world also writes the `Patient/` form.
    let prefix = if spec.format == WorldFormat::Mixed { "Patient/" } else { "" };
    kick(4, "bulk-v2", 22.0, "GET", "/fhir/Patient/$export".to_string(), Some(format!("patient={},{prefix}{}", p0[0], p0.get(1).unwrap_or(&p0[0]))), false, 202, "patient-level export of two patients under SMART v2 system/*.rs");
    kick(5, "bulk-v2", 26.0, "GET", "/fhir/Patient/$export".to_string(), None, false, 202, "patient-level export of every Patient that exists at T");
    kick(6, "bulk-smartbox", 28.0, "GET", "/fhir/$export".to_string(), Some("_type=Patient,Organization,Encounter".into()), false, 202, "system-level export: every resource of the types, patient_id from its compartment");
    kick(7, "bulk-smartbox", 35.0, "GET", format!("/fhir/Group/cohort-gone{s0}/$export"), None, false, 202, "the group was deleted on day 25: nothing exported");
    kick(8, "bulk-late", 36.0, "GET", format!("/fhir/Group/cohort-a{sl}/$export"), Some("_type=Patient,Encounter".into()), false, 202, "the client was created on day 45: at T it did not exist, every requested type is treated as allowed");
    kick(9, "bulk-smartbox", 38.0, "GET", format!("/fhir/Group/cohort-a{s0}/$export"), None, false, 429, "rejected by the server (429): listed, never resolved");
    kick(10, "bulk-smartbox", 41.0, "GET", format!("/fhir/Group/cohort-a{s0}/$export"), Some(format!("_typeFilter=Observation%3Fcode%3D8302-2&_until={}", iso(day(39.0)))), false, 202, "after the scopes changed on day 40 (Patient, Observation, Condition); _until day 39; _typeFilter is not applied");
    kick(11, "bulk-late", 48.0, "GET", format!("/fhir/Group/cohort-all{s0}/$export"), None, false, 202, "the late client now exists: Patient and Encounter of the nested group");
    kick(12, "bulk-smartbox", 55.0, "GET", "/fhir/$export".to_string(), None, false, 202, "system-level export of everything the client may read at T (scopes of day 40)");
    kickoffs.sort_by_key(|k| k.time);

    // A version that lands inside kickoff 1's request: boundary-ambiguous.
    if let Some(k1) = kickoffs.iter().find(|k| k.ctx == "kick-01").cloned() {
        let members: HashSet<String> = p0.iter().take(half).cloned().collect();
        if let Some(r) = resources.iter_mut().find(|r| r.rtype == "Observation" && r.versions[0].patients.iter().any(|p| members.contains(p)) && r.versions[0].time < k1.time) {
            let mut v = r.versions.iter().rev().find(|v| v.time < k1.time).cloned().expect("a version");
            if v.deleted {
                v = r.versions[0].clone();
            }
            v.time = k1.time + 300_000;
            v.deleted = false;
            r.versions.push(v);
        }
    }

    // A member of cohort-a is deleted half a day before kickoff 1 and recreated after it:
    // at T the Patient does not exist (patient-missing), its other resources are still found.
    if let (Some(k1), Some(p)) = (kickoffs.iter().find(|k| k.ctx == "kick-01").map(|k| k.time), p0.get(1).filter(|_| half >= 2)) {
        if let Some(r) = resources.iter_mut().find(|r| r.rtype == "Patient" && &r.id == p) {
            let keep = r.versions.iter().rev().find(|v| !v.deleted && v.time < k1 - DAY / 2).cloned();
            if let Some(mut back) = keep {
                r.versions.retain(|v| v.time < k1 - DAY / 2 || v.time > k1 + DAY / 4);
                r.versions.push(GenVersion { time: k1 - DAY / 2, txid: 0, deleted: true, body: None, patients: vec![] });
                back.time = k1 + DAY / 4;
                r.versions.push(back);
                r.versions.sort_by_key(|v| v.time);
            }
        }
    }

    // Version ids: Aidbox txids, increasing with time over the whole database.
    assign_txids(&mut resources, spec.seed);
    let mut truth = compute_truth(&resources, &kickoffs, &compartment);

    // BulkExportStatus: what the server kept of each accepted kickoff, with a few defects.
    let mut story = Vec::new();
    let mut status_res = Vec::new();
    for (i, k) in kickoffs.iter().enumerate() {
        if k.status >= 400 || k.ctx == "kick-10" {
            continue;
        }
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut seen = HashSet::new();
        for row in truth.iter().filter(|r| r[0] == k.ctx) {
            if seen.insert((row[3].clone(), row[4].clone())) {
                *counts.entry(row[3].clone()).or_insert(0) += 1;
            }
        }
        if k.ctx == "kick-03" {
            *counts.entry("Encounter".into()).or_insert(0) += 1;
        }
        let state = if k.ctx == "kick-05" { "error" } else { "completed" };
        let id = format!("bes-{:02}", i + 1);
        let params = json!({"group-id": k.group, "types": k.types, "since": k.since.map(iso)});
        let first = json!({"requester": {"resourceType": "Client", "id": k.client}, "transactionTime": iso(k.time + 2 * MS), "status": "in-progress", "params": params});
        let mut done = first.clone();
        done["status"] = json!(state);
        done["output"] = json!(counts.iter().map(|(t, c)| json!({"type": t, "count": c, "url": format!("https://bucket.example/{id}/{t}.ndjson")})).collect::<Vec<_>>());
        status_res.push((id, vec![(k.time + 3 * MS, Some(first)), (k.time + 30_000 * MS, Some(done))]));
    }
    // A status whose kickoff is lost in the log outage (days 30–33).
    status_res.push(("bes-99".into(), vec![(day(31.5), Some(json!({"requester": {"resourceType": "Client", "id": "bulk-v2"}, "transactionTime": iso(day(31.5) - MS), "status": "completed", "params": {}, "output": []})))]));
    for (id, versions) in status_res {
        add("BulkExportStatus", &id, versions, &mut resources);
    }
    // The statuses get txids after everything else (they are written last by the server too).
    let mut next = resources.iter().flat_map(|r| r.versions.iter().map(|v| v.txid)).max().unwrap_or(0) + 10;
    for r in resources.iter_mut().filter(|r| r.rtype == "BulkExportStatus") {
        for v in &mut r.versions {
            v.txid = next;
            next += 3;
        }
    }
    truth.sort();

    // Noise: ordinary requests, with a hole in the logs from day 30 to day 33.
    let mut rng = Rng::new(spec.seed ^ 0xA5A5);
    let mut noise = Vec::new();
    let all_ids: Vec<&GenResource> = resources.iter().filter(|r| r.rtype != "BulkExportStatus").collect();
    for _ in 0..spec.noise_requests {
        let mut d = rng.unit() * 60.0;
        if (30.0..33.0).contains(&d) {
            d -= 3.5;
        }
        let r = all_ids[rng.below(all_ids.len() as u64) as usize];
        let client = ["ehr-ui", "bulk-smartbox", "lab-feed"][rng.below(3) as usize];
        let (method, url, status) = match rng.below(10) {
            0 => ("PUT", format!("/fhir/{}/{}", r.rtype, r.id), 200),
            1 => ("GET", "/fhir/$export-status/42".to_string(), 200),
            2 => ("DELETE", "/fhir/bulkstatus/42".to_string(), 202),
            3 => ("GET", format!("/fhir/{}/{}", r.rtype, r.id), 404),
            _ => ("GET", format!("/fhir/{}/{}", r.rtype, r.id), 200),
        };
        noise.push((day(d) - day(d) % MS, method, url, client.to_string(), status));
    }
    noise.sort();

    for k in &kickoffs {
        let rows = truth.iter().filter(|r| r[0] == k.ctx).count();
        story.push(format!("- `{}` {} {} by `{}` at {} → HTTP {}: {} rows. {}", k.ctx, k.method, k.url, k.client, iso(k.time), k.status, rows, k.story));
    }
    Ok(World { resources, kickoffs, noise, truth, story })
}

fn assign_txids(resources: &mut [GenResource], seed: u64) {
    let mut order: Vec<(i64, usize, usize)> = resources.iter().enumerate().flat_map(|(ri, r)| r.versions.iter().enumerate().map(move |(vi, v)| (v.time, ri, vi))).collect();
    order.sort_unstable();
    let mut rng = Rng::new(seed ^ 0x7717);
    let mut tx = 1000u64;
    for (_, ri, vi) in order {
        tx += 1 + rng.below(3);
        resources[ri].versions[vi].txid = tx;
    }
    for r in resources.iter_mut() {
        r.versions.sort_by_key(|v| (v.time, v.txid));
    }
}

/// The rows each accepted kickoff gives, by the rules of SPEC.md with the default options
/// (strict boundary, smartbox wildcard, non-compartment `all`, R4), from the generator's model.
fn compute_truth(resources: &[GenResource], kickoffs: &[GenKickoff], compartment: &Compartment) -> Vec<[String; 6]> {
    let by_key: HashMap<(&str, &str), &GenResource> = resources.iter().map(|r| ((r.rtype.as_str(), r.id.as_str()), r)).collect();
    let as_of = |r: &GenResource, t: i64| -> Option<usize> { r.versions.iter().rposition(|v| v.time < t) };
    let live = |r: &GenResource, t: i64| as_of(r, t).filter(|&i| !r.versions[i].deleted);
    let body = |r: &GenResource, i: usize| -> Value { serde_json::from_str(r.versions[i].body.as_deref().unwrap_or("{}")).unwrap_or(Value::Null) };
    let present: BTreeSet<&str> = resources.iter().map(|r| r.rtype.as_str()).collect();
    let mut rows = Vec::new();
    for k in kickoffs.iter().filter(|k| k.status < 400) {
        let t = k.time;
        // Scopes.
        let allowed: Option<BTreeSet<String>> = by_key.get(&("Client", k.client.as_str())).and_then(|c| live(c, t).map(|i| body(c, i))).map(|c| {
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
            "patient" => Some(resources.iter().filter(|r| r.rtype == "Patient" && live(r, t).is_some()).map(|r| r.id.clone()).collect()),
            _ => None,
        };
        for r in resources.iter().filter(|r| types.contains(&r.rtype)) {
            let Some(i) = live(r, t) else { continue };
            let v = &r.versions[i];
            if k.since.is_some_and(|s| v.time <= s) || k.until.is_some_and(|u| v.time >= u) {
                continue;
            }
            let mut row = |p: &str| rows.push([k.ctx.clone(), k.client.clone(), p.to_string(), r.rtype.clone(), r.id.clone(), v.txid.to_string()]);
            if !compartment.contains(&r.rtype) {
                row("");
                continue;
            }
            // Compartment membership of generated Groups/statuses comes from their bodies.
            let pats: Vec<String> = if r.rtype == "Group" { compartment.patients_of("Group", &r.id, &body(r, i)) } else { v.patients.clone() };
            match &selected {
                None if pats.is_empty() => row(""),
                None => pats.iter().for_each(|p| row(p)),
                Some(sel) => pats.iter().filter(|p| sel.contains(*p)).for_each(|p| row(p)),
            }
        }
    }
    rows
}

fn private_writer(path: &Path) -> std::io::Result<BufWriter<File>> {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p)?;
    }
    Ok(BufWriter::with_capacity(1 << 20, File::create(path)?))
}

/// A writer that compresses by the file name: `.zst`, `.gz`, or plain.
fn sink(path: &Path) -> std::io::Result<Box<dyn Write>> {
    let w = private_writer(path)?;
    let name = path.to_string_lossy();
    Ok(if name.ends_with(".zst") {
        Box::new(zstd::stream::write::Encoder::new(w, 3)?.auto_finish())
    } else if name.ends_with(".gz") {
        Box::new(flate2::write::GzEncoder::new(w, flate2::Compression::fast()))
    } else {
        Box::new(w)
    })
}

fn with_meta(body: &str, txid: u64, time: i64) -> String {
    // `{"resourceType":…` → `{"meta":{…},"resourceType":…`
    format!("{{\"meta\":{{\"versionId\":\"{txid}\",\"lastUpdated\":\"{}\"}},{}", Instant(time).to_rfc3339(), &body[1..])
}

fn delete_entry(r: &GenResource, v: &GenVersion) -> String {
    json!({"request": {"method": "DELETE", "url": format!("{}/{}/_history/{}", r.rtype, r.id, v.txid)}, "response": {"status": "204", "lastModified": Instant(v.time).to_rfc3339()}}).to_string()
}

/// Writes versions as resources with meta and deletions as DELETE entries, one per line;
/// returns the bytes written.
fn write_fhir_lines(path: &Path, resources: &[&GenResource]) -> std::io::Result<u64> {
    let mut w = sink(path)?;
    let mut bytes = 0;
    for r in resources {
        for v in &r.versions {
            let line = match &v.body {
                Some(b) => with_meta(b, v.txid, v.time),
                None => delete_entry(r, v),
            };
            bytes += line.len() as u64 + 1;
            writeln!(w, "{line}")?;
        }
    }
    Ok(bytes)
}

/// FHIR references → Aidbox's `{"resourceType", "id"}` form.
fn to_aidbox(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("reference") {
                if let Some((t, id)) = crate::compartment::parse_reference(r) {
                    let (t, id) = (t.to_string(), id.to_string());
                    o.remove("reference");
                    o.insert("resourceType".into(), json!(t));
                    o.insert("id".into(), json!(id));
                    return;
                }
            }
            o.values_mut().for_each(to_aidbox);
        }
        Value::Array(a) => a.iter_mut().for_each(to_aidbox),
        _ => {}
    }
}

fn log_lines(world: &World) -> Vec<(i64, Value)> {
    let mut lines: Vec<(i64, Value)> = Vec::new();
    for (i, (t, method, url, client, status)) in world.noise.iter().enumerate() {
        let ctx = format!("n{i:06}");
        lines.push((*t, json!({"ev": "w/req", "ts": Instant(*t).to_rfc3339(), "ctx": ctx, "w_m": method.to_lowercase(), "w_url": url})));
        lines.push((*t + 15 * MS, json!({"ev": "w/resp", "ts": Instant(*t + 15 * MS).to_rfc3339(), "ctx": ctx, "w_m": method.to_lowercase(), "w_url": url, "w_st": status, "w_cid": client})));
    }
    for k in &world.kickoffs {
        let mut req = json!({"ev": "w/req", "ts": Instant(k.time).to_rfc3339(), "ctx": k.ctx, "w_m": k.method.to_lowercase(), "w_url": k.url});
        if let Some(q) = &k.qs {
            req["w_qs"] = json!(q);
        }
        let mut resp = json!({"ev": "w/resp", "ts": Instant(k.response).to_rfc3339(), "ctx": k.ctx, "w_m": k.method.to_lowercase(), "w_url": k.url, "w_st": k.status, "w_cid": k.client});
        if let Some(q) = &k.qs {
            resp["w_qs"] = json!(q);
        }
        lines.push((k.time, req));
        lines.push((k.response, resp));
    }
    lines.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1["ctx"].as_str().cmp(&b.1["ctx"].as_str())));
    lines
}

/// Writes the world under `dir` and returns the number of history bytes written (uncompressed).
pub fn write(world: &World, dir: &Path, format: WorldFormat) -> std::io::Result<u64> {
    let mut history_bytes = 0u64;
    let lines = log_lines(world);
    match format {
        WorldFormat::Fhir => {
            let mut w = sink(&dir.join("logs/requests.ndjson"))?;
            for (_, l) in &lines {
                writeln!(w, "{l}")?;
            }
            let mut by_type: BTreeMap<&str, Vec<&GenResource>> = BTreeMap::new();
            for r in &world.resources {
                by_type.entry(&r.rtype).or_default().push(r);
            }
            for (t, list) in by_type {
                history_bytes += write_fhir_lines(&dir.join(format!("history/{t}.ndjson")), &list)?;
            }
        }
        WorldFormat::Mixed => {
            // Logs: Aidbox NDJSON (.zst), Elasticsearch hits (.gz), Kibana CSV.
            let mut aidbox = sink(&dir.join("logs/aidbox/requests.ndjson.zst"))?;
            let mut es = sink(&dir.join("logs/elasticsearch/hits.ndjson.gz"))?;
            let mut kibana = sink(&dir.join("logs/kibana/discover.csv"))?;
            writeln!(kibana, "\"@timestamp\",ev,ctx,\"w_m\",\"w_url\",\"w_qs\",\"w_st\",\"w_cid\"")?;
            let mut ctx_slot: HashMap<String, usize> = HashMap::new();
            for (i, (t, l)) in lines.iter().enumerate() {
                let ctx = l["ctx"].as_str().unwrap_or_default().to_string();
                let n = ctx_slot.len();
                let slot = *ctx_slot.entry(ctx).or_insert(n % 4);
                match slot {
                    0 | 1 => writeln!(aidbox, "{l}")?,
                    2 => writeln!(es, "{}", json!({"_index": "aidbox-logs", "_id": format!("h{i}"), "_source": l}))?,
                    _ => {
                        let dt = chrono::DateTime::from_timestamp_nanos(*t);
                        let cell = |k: &str| match &l[k] {
                            Value::String(s) => format!("\"{}\"", s.replace('"', "\"\"")),
                            Value::Number(n) => n.to_string(),
                            _ => "-".into(),
                        };
                        writeln!(kibana, "\"{}\",{},{},{},{},{},{},{}", dt.format("%b %-d, %Y @ %H:%M:%S%.3f"), cell("ev"), cell("ctx"), cell("w_m"), cell("w_url"), cell("w_qs"), cell("w_st"), cell("w_cid"))?;
                    }
                }
            }
            drop((aidbox, es, kibana));
            // History: Aidbox rows, history Bundles, resources with meta.
            const ROWS: [&str; 8] = ["Patient", "Observation", "Encounter", "Claim", "Condition", "Organization", "Group", "Client"];
            const BUNDLES: [&str; 7] = ["DiagnosticReport", "MedicationRequest", "Procedure", "Immunization", "CarePlan", "CareTeam", "BulkExportStatus"];
            let mut by_type: BTreeMap<&str, Vec<&GenResource>> = BTreeMap::new();
            for r in &world.resources {
                by_type.entry(&r.rtype).or_default().push(r);
            }
            for (t, list) in by_type {
                let lower = t.to_lowercase();
                if ROWS.contains(&t) {
                    let mut w = sink(&dir.join(format!("history/aidbox/{lower}_history.ndjson.zst")))?;
                    let mut current: Vec<String> = Vec::new();
                    for r in &list {
                        for (i, v) in r.versions.iter().enumerate() {
                            let status = if v.deleted { "deleted" } else if i == 0 { "created" } else if r.versions[i - 1].deleted { "recreated" } else { "updated" };
                            let mut body: Value = v.body.as_deref().map(|b| serde_json::from_str(b).unwrap_or(Value::Null)).unwrap_or_else(|| json!({}));
                            if let Value::Object(o) = &mut body {
                                o.remove("resourceType");
                                o.remove("id");
                            }
                            to_aidbox(&mut body);
                            let ts = chrono::DateTime::from_timestamp_nanos(v.time).format("%Y-%m-%dT%H:%M:%S%.6f+00").to_string();
                            let row = json!({"id": r.id, "resource_type": t, "txid": v.txid, "ts": ts, "cts": ts, "status": status, "resource": body}).to_string();
                            history_bytes += row.len() as u64 + 1;
                            writeln!(w, "{row}")?;
                            if i + 1 == r.versions.len() && !v.deleted && (t == "Patient" || t == "Observation") {
                                current.push(row);
                            }
                        }
                    }
                    if !current.is_empty() {
                        let mut w = sink(&dir.join(format!("history/aidbox/{lower}.ndjson.zst")))?;
                        for row in current {
                            writeln!(w, "{row}")?;
                        }
                    }
                } else if BUNDLES.contains(&t) {
                    let mut w = sink(&dir.join(format!("history/bundles/{t}.ndjson.gz")))?;
                    for r in &list {
                        let entries: Vec<Value> = r
                            .versions
                            .iter()
                            .rev()
                            .map(|v| match &v.body {
                                Some(b) => json!({"resource": serde_json::from_str::<Value>(&with_meta(b, v.txid, v.time)).unwrap_or(Value::Null),
                                                  "request": {"method": "PUT", "url": format!("{}/{}", r.rtype, r.id)},
                                                  "response": {"status": "200", "lastModified": Instant(v.time).to_rfc3339()}}),
                                None => serde_json::from_str(&delete_entry(r, v)).unwrap_or(Value::Null),
                            })
                            .collect();
                        let line = json!({"resourceType": "Bundle", "type": "history", "total": entries.len(), "entry": entries}).to_string();
                        history_bytes += line.len() as u64 + 1;
                        writeln!(w, "{line}")?;
                    }
                } else {
                    history_bytes += write_fhir_lines(&dir.join(format!("history/fhir/{t}.ndjson")), &list)?;
                }
            }
        }
    }
    let mut w = private_writer(&dir.join("truth/expected_resources.csv"))?;
    writeln!(w, "export_id,client_id,patient_id,resource_type,resource_id,version_id")?;
    for r in &world.truth {
        writeln!(w, "{}", r.join(","))?;
    }
    w.flush()?;
    Ok(history_bytes)
}

/// The story of the world, one line per kickoff, for a fixture's README.
pub fn story(world: &World) -> String {
    world.story.join("\n") + "\n"
}
