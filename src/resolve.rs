//! Resolving one accepted export: the Client's scopes as of T, the exported types, the selected
//! patients (Group members with nesting, `patient` ids, or every Patient), and every resource
//! version the client received — one row per (resource, patient) — with the findings the data
//! leaves in doubt.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use rayon::slice::ParallelSliceMut;

use crate::compartment::Compartment;
use crate::history::{Detail, Member};
use crate::index::{Boundary, History, Resource, Version};
use crate::kickoff::{ExportEvent, Level};
use crate::scopes;
use crate::timestamp::Instant;

/// Which resources of types outside the patient compartment a group- or patient-level export
/// lists (`--non-compartment`). System-level exports always list every resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NonCompartment {
    All,
    Referenced,
    None,
}

/// The options that decide rows.
pub struct ResolveOptions<'a> {
    pub boundary: Boundary,
    pub wildcard_types: Vec<String>,
    pub non_compartment: NonCompartment,
    pub skip_inactive_members: bool,
    pub compartment: &'a Compartment,
}

/// One exported (resource version, patient) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub resource: u32,
    /// Index into the resource's versions.
    pub version: u32,
    pub patient: Option<u32>,
}

/// One doubt or anomaly.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    pub export_id: String,
    pub kind: &'static str,
    pub resource_type: String,
    pub resource_id: String,
    pub version_id: String,
    pub detail: String,
}

impl Finding {
    pub fn new(export_id: &str, kind: &'static str, detail: impl Into<String>) -> Finding {
        Finding { export_id: export_id.to_string(), kind, resource_type: String::new(), resource_id: String::new(), version_id: String::new(), detail: detail.into() }
    }

    pub fn about(mut self, resource_type: &str, id: &str, version: &str) -> Finding {
        self.resource_type = resource_type.to_string();
        self.resource_id = id.to_string();
        self.version_id = version.to_string();
        self
    }
}

/// What resolving one export found.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    pub resolved: bool,
    pub client_version: Option<String>,
    pub scopes: Vec<String>,
    pub allowed_types: Option<BTreeSet<String>>,
    pub group_version: Option<String>,
    pub exported_types: BTreeSet<String>,
    pub patients: BTreeSet<String>,
    pub rows: Vec<Row>,
    pub findings: Vec<Finding>,
    /// Distinct resources per type among the rows.
    pub counts: BTreeMap<String, u64>,
}

pub fn resolve(e: &ExportEvent, h: &History, o: &ResolveOptions) -> Resolution {
    let mut r = Resolution::default();
    let id = e.id.as_str();
    let Some(t) = e.time else {
        r.findings.push(Finding::new(id, "kickoff-time-unknown", "the kickoff has no timestamp in the logs: it cannot be resolved"));
        return r;
    };
    if !e.accepted {
        return r;
    }
    r.resolved = true;
    let end = e.request_end().unwrap_or(t);
    let b = o.boundary;

    // 1. Scopes.
    let client = e.client_id.as_deref().and_then(|c| h.resource("Client", c));
    if let Some(c) = client {
        ambiguous(id, h, c, t, end, b, &mut r.findings);
    }
    match client.and_then(|c| c.live_at(t, b)) {
        Some(v) => {
            r.client_version = Some(v.version_id.to_string());
            match h.detail_of(v) {
                Some(Detail::Client { scopes: Ok(s) }) => {
                    r.scopes = s.clone();
                    let g = scopes::grant_of(s, &o.wildcard_types);
                    for q in &g.query_scopes {
                        r.findings.push(Finding::new(id, "scope-query-not-applied", format!("scope {q} grants its type; its query is not applied, so more may be listed than was sent")));
                    }
                    r.allowed_types = Some(g.allowed_types);
                }
                Some(Detail::Client { scopes: Err(what) }) => {
                    r.findings.push(
                        Finding::new(id, "client-scope-unreadable", format!("{what}: every type is treated as allowed"))
                            .about("Client", e.client_id.as_deref().unwrap_or(""), &v.version_id.to_string()),
                    );
                }
                _ => r.allowed_types = Some(BTreeSet::new()),
            }
        }
        None => {
            let who = e.client_id.as_deref().unwrap_or("");
            let detail = if who.is_empty() { "the kickoff names no client (w_cid): every type is treated as allowed".to_string() } else { format!("Client/{who} has no version at T: every type is treated as allowed") };
            r.findings.push(Finding::new(id, "client-not-found", detail).about("Client", who, ""));
        }
    }

    // 2. Types.
    let present = h.present_types();
    match &e.params.types {
        Some(requested) => {
            for ty in requested {
                match &r.allowed_types {
                    Some(a) if !a.contains(ty) => r.findings.push(Finding::new(id, "type-not-permitted", format!("_type {ty} is not granted by the client's scopes")).about(ty, "", "")),
                    _ => {
                        r.exported_types.insert(ty.clone());
                    }
                }
            }
        }
        None => match &r.allowed_types {
            Some(a) => r.exported_types = a.clone(),
            None => r.exported_types = present.iter().cloned().collect(),
        },
    }

    // 5 (recorded). Parameters this tool does not apply.
    for tf in &e.params.type_filter {
        r.findings.push(Finding::new(id, "param-not-applied", format!("_typeFilter={tf} is not applied: more may be listed than was sent")));
    }
    if !e.params.elements.is_empty() {
        r.findings.push(Finding::new(id, "param-not-applied", format!("_elements={} is not applied: whole resources are listed", e.params.elements.join(","))));
    }
    for p in &e.params.other {
        r.findings.push(Finding::new(id, "param-not-applied", format!("parameter {p} is not interpreted")));
    }
    for (p, why) in &e.params.invalid {
        r.findings.push(Finding::new(id, "param-not-applied", format!("{p} is unreadable ({why}): not applied, so more may be listed")));
    }

    // 3. Patients.
    let selected: Option<Vec<String>> = match e.level {
        Level::Group => {
            let gid = e.group_id.as_deref().unwrap_or("");
            match group_members(id, gid, t, end, h, o, &mut r) {
                Some(p) => Some(p),
                None => return finish(r, h),
            }
        }
        Level::Patient if !e.params.patients.is_empty() => Some(e.params.patients.clone()),
        Level::Patient => {
            let mut all = Vec::new();
            if let Some(pt) = h.type_id("Patient") {
                for ri in h.of_type(pt) {
                    let res = &h.resources[ri as usize];
                    if res.live_at(t, b).is_some() {
                        all.push(res.id.to_string());
                    }
                }
            }
            Some(all)
        }
        Level::System => None,
    };
    if let Some(sel) = &selected {
        for p in sel {
            let live = h.resource("Patient", p).and_then(|res| res.live_at(t, b)).is_some();
            if !live {
                r.findings.push(Finding::new(id, "patient-missing", format!("Patient/{p} does not exist at T; its compartment is still searched")).about("Patient", p, ""));
            }
        }
        r.patients = sel.iter().cloned().collect();
    }

    // 4–6. Resources.
    let in_time = |v: &Version| e.params.since.is_none_or(|s| v.last_updated > s) && e.params.until.is_none_or(|u| v.last_updated < u);
    let selected_ids: Option<PatientSet> = selected.as_ref().map(|s| PatientSet::new(s.iter().filter_map(|p| h.patient_id(p)), h.patient_count()));
    // The resources touching a selected patient, by type, each once.
    let mut candidates: Vec<Vec<u32>> = vec![Vec::new(); h.type_count()];
    if let Some(ids) = &selected_ids {
        let mut seen = vec![0u64; h.resources.len().div_ceil(64)];
        for &p in &ids.ids {
            for &ri in h.touching_patient(p) {
                let (word, bit) = (ri as usize / 64, 1u64 << (ri % 64));
                if seen[word] & bit == 0 {
                    seen[word] |= bit;
                    candidates[h.resources[ri as usize].resource_type as usize].push(ri);
                }
            }
        }
    }
    // Only asked whether it holds a (type, id): a hash set, filled from every exported row.
    let mut referenced: rustc_hash::FxHashSet<(u32, u32)> = Default::default();
    let mut outside: Vec<u32> = Vec::new();
    for ty in &r.exported_types {
        let Some(tid) = h.type_id(ty) else { continue };
        if !o.compartment.contains(ty) {
            outside.push(tid);
            continue;
        }
        let every: Vec<u32>;
        let list: &[u32] = match &selected_ids {
            None => {
                every = h.of_type(tid).collect();
                &every
            }
            Some(_) => &candidates[tid as usize],
        };
        for (k, &ri) in list.iter().enumerate() {
            // Each resource's versions are their own allocation: fetch a later one's meanwhile.
            if let Some(&ahead) = list.get(k + 8) {
                crate::index::prefetch(h.resources[ahead as usize].versions.as_ptr());
            }
            let res = &h.resources[ri as usize];
            ambiguous(id, h, res, t, end, b, &mut r.findings);
            let Some((vi, v)) = live_index(res, t, b) else { continue };
            if !in_time(v) {
                continue;
            }
            let before = r.rows.len();
            let patients = h.patients_of(v);
            match &selected_ids {
                None if patients.is_empty() => r.rows.push(Row { resource: ri, version: vi, patient: None }),
                None => r.rows.extend(patients.iter().map(|&p| Row { resource: ri, version: vi, patient: Some(p) })),
                Some(ids) => r.rows.extend(patients.iter().filter(|p| ids.contains(p)).map(|&p| Row { resource: ri, version: vi, patient: Some(p) })),
            }
            if r.rows.len() > before && o.non_compartment == NonCompartment::Referenced {
                referenced.extend(h.references_of(v).iter().copied());
            }
        }
    }
    for tid in outside {
        let policy = if e.level == Level::System { NonCompartment::All } else { o.non_compartment };
        if policy == NonCompartment::None {
            continue;
        }
        for ri in h.of_type(tid) {
            let res = &h.resources[ri as usize];
            if policy == NonCompartment::Referenced && !is_referenced(h, &referenced, res) {
                continue;
            }
            ambiguous(id, h, res, t, end, b, &mut r.findings);
            let Some((vi, v)) = live_index(res, t, b) else { continue };
            if in_time(v) {
                r.rows.push(Row { resource: ri, version: vi, patient: None });
            }
        }
    }
    finish(r, h)
}

/// The selected patients' interned ids: in order, and as a bitset for membership.
struct PatientSet {
    ids: Vec<u32>,
    bits: Vec<u64>,
}

impl PatientSet {
    fn new(ids: impl Iterator<Item = u32>, count: usize) -> PatientSet {
        let mut ids: Vec<u32> = ids.collect();
        ids.sort_unstable();
        ids.dedup();
        let mut bits = vec![0u64; count.div_ceil(64)];
        for &p in &ids {
            bits[p as usize / 64] |= 1 << (p % 64);
        }
        PatientSet { ids, bits }
    }

    fn contains(&self, p: &u32) -> bool {
        self.bits.get(*p as usize / 64).is_some_and(|w| w & (1 << (p % 64)) != 0)
    }
}

/// Whether an exported compartment row's version referenced this resource.
fn is_referenced(h: &History, referenced: &rustc_hash::FxHashSet<(u32, u32)>, res: &Resource) -> bool {
    h.ref_id_of(&res.id).is_some_and(|i| referenced.contains(&(res.resource_type, i)))
}

fn finish(mut r: Resolution, h: &History) -> Resolution {
    // Resources are numbered in (type, id) order, so this is the output order. A resource has
    // one version in an export, so rows equal in (resource, patient) are equal: an unstable
    // sort (no buffer the size of the rows) gives the same order.
    r.rows.par_sort_unstable_by(|a, b| a.resource.cmp(&b.resource).then_with(|| a.patient.map(|p| h.patient_name(p)).cmp(&b.patient.map(|p| h.patient_name(p)))));
    r.rows.dedup();
    // The rows grew by doubling; what is kept until the output is written holds no spare room.
    r.rows.shrink_to_fit();
    let mut per_type = vec![0u64; h.type_count()];
    let mut last = None;
    for row in &r.rows {
        if last != Some(row.resource) {
            per_type[h.resources[row.resource as usize].resource_type as usize] += 1;
            last = Some(row.resource);
        }
    }
    for (t, n) in per_type.into_iter().enumerate().filter(|&(_, n)| n > 0) {
        r.counts.insert(h.type_name(t as u32).to_string(), n);
    }
    r.findings.sort();
    r.findings.dedup();
    r
}

fn live_index(res: &Resource, t: Instant, b: Boundary) -> Option<(u32, &Version)> {
    let i = res.as_of_index(t, b)?;
    let v = &res.versions[i];
    (!v.deleted).then_some((i as u32, v))
}

/// A `boundary-ambiguous` finding for every version of the resource whose lastUpdated lies
/// between T and the end of the kickoff request.
fn ambiguous(export_id: &str, h: &History, res: &Resource, t: Instant, end: Instant, b: Boundary, out: &mut Vec<Finding>) {
    for v in res.in_window(t, end, b) {
        let what = if v.deleted { "deletion" } else { "version" };
        out.push(
            Finding::new(export_id, "boundary-ambiguous", format!("{what} at {} lies between T ({}) and the end of the kickoff ({}): the server may or may not have included it", v.last_updated, t, end))
                .about(h.type_name(res.resource_type), &res.id, &v.version_id.to_string()),
        );
    }
}

/// Expands a Group's members as of T (nested Groups too, without looping). `None` when the
/// Group does not exist at T.
fn group_members(id: &str, gid: &str, t: Instant, end: Instant, h: &History, o: &ResolveOptions, r: &mut Resolution) -> Option<Vec<String>> {
    let b = o.boundary;
    let root = h.resource("Group", gid);
    if let Some(g) = root {
        ambiguous(id, h, g, t, end, b, &mut r.findings);
    }
    let Some(v) = root.and_then(|g| g.live_at(t, b)) else {
        r.findings.push(Finding::new(id, "group-not-found", format!("Group/{gid} has no version at T: nothing was exported")).about("Group", gid, ""));
        return None;
    };
    r.group_version = Some(v.version_id.to_string());
    let mut patients = BTreeSet::new();
    let mut visited: HashSet<String> = HashSet::from([gid.to_string()]);
    let mut queue: Vec<(String, &Version)> = vec![(gid.to_string(), v)];
    while let Some((g, v)) = queue.pop() {
        let members: &[Member] = match h.detail_of(v) {
            Some(Detail::Group { members }) => members,
            _ => &[],
        };
        for (i, m) in members.iter().enumerate() {
            let Some((mt, mid)) = &m.entity else {
                r.findings.push(Finding::new(id, "member-unresolvable", format!("Group/{g} member {i} has no resolvable entity reference")).about("Group", &g, &v.version_id.to_string()));
                continue;
            };
            match mt.as_str() {
                "Patient" => {
                    let out_of_period = m.period_start.is_some_and(|s| s > t) || m.period_end.is_some_and(|e| e < t);
                    if m.inactive || out_of_period {
                        let why = if m.inactive { "is marked inactive" } else { "has a period that excludes T" };
                        let action = if o.skip_inactive_members { "left out (--skip-inactive-members)" } else { "kept: Aidbox documents no such filtering" };
                        r.findings.push(Finding::new(id, "member-inactive", format!("Patient/{mid} in Group/{g} {why}; {action}")).about("Patient", mid, ""));
                        if o.skip_inactive_members {
                            continue;
                        }
                    }
                    patients.insert(mid.clone());
                }
                "Group" => {
                    if !visited.insert(mid.clone()) {
                        continue;
                    }
                    let nested = h.resource("Group", mid);
                    if let Some(n) = nested {
                        ambiguous(id, h, n, t, end, b, &mut r.findings);
                    }
                    match nested.and_then(|n| n.live_at(t, b)) {
                        Some(nv) => queue.push((mid.clone(), nv)),
                        None => r.findings.push(Finding::new(id, "group-not-found", format!("nested Group/{mid} (member of Group/{g}) has no version at T")).about("Group", mid, "")),
                    }
                }
                other => r.findings.push(Finding::new(id, "member-not-patient", format!("Group/{g} member {other}/{mid} is not a Patient: no compartment is exported for it")).about(other, mid, "")),
            }
        }
    }
    Some(patients.into_iter().collect())
}
