//! The version index: every resource's versions sorted by (lastUpdated, versionId), looked up by
//! (type, id), by type, and by the patients its versions ever referenced; and the as-of rule
//! that picks the version in force at an instant.

use std::collections::{BTreeMap, HashMap};

use crate::history::{Detail, ParsedVersion, Source, VersionId};
use crate::timestamp::Instant;

/// `strict`: as-of(T) takes versions with lastUpdated < T (the guide's rule); `inclusive`: <= T.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Boundary {
    Strict,
    Inclusive,
}

/// One version as indexed (no body).
#[derive(Debug, Clone)]
pub struct Version {
    pub version_id: VersionId,
    pub last_updated: Instant,
    pub deleted: bool,
    pub source: Source,
    /// Interned ids of the patients whose compartment this version is in.
    pub patients: Vec<u32>,
    /// Interned (type, id) of every resource this version references (only kept for
    /// `--non-compartment referenced`).
    pub references: Vec<(u32, u32)>,
    pub detail: Option<Box<Detail>>,
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub resource_type: u32,
    pub id: String,
    pub versions: Vec<Version>,
}

/// Two versions with the same (type, id, versionId) but different contents.
#[derive(Debug, Clone)]
pub struct Conflict {
    pub resource_type: String,
    pub id: String,
    pub version_id: String,
    pub kept: Source,
    pub dropped: Source,
}

#[derive(Debug, Default)]
pub struct History {
    pub types: Vec<String>,
    type_index: HashMap<String, u32>,
    pub resources: Vec<Resource>,
    by_key: HashMap<(u32, String), u32>,
    /// Resource indices of each type, sorted by id.
    by_type: Vec<Vec<u32>>,
    /// Interned patient ids.
    pub patient_ids: Vec<String>,
    patient_index: HashMap<String, u32>,
    /// Interned ids of referenced resources (references only).
    ref_ids: Vec<String>,
    ref_index: HashMap<String, u32>,
    /// For each interned patient: the resources any of whose versions is in its compartment.
    by_patient: Vec<Vec<u32>>,
    pub conflicts: Vec<Conflict>,
    pub duplicates: u64,
    pub version_count: u64,
}

impl History {
    /// Builds the index. Versions arrive in input order; a version seen twice keeps its first
    /// reading (a later copy with other contents is recorded as a conflict).
    pub fn build(parsed: Vec<ParsedVersion>) -> History {
        let mut h = History::default();
        for p in parsed {
            let t = h.intern_type(&p.resource_type);
            let key = (t, p.id);
            let idx = match h.by_key.get(&key) {
                Some(&i) => i,
                None => {
                    let i = h.resources.len() as u32;
                    h.resources.push(Resource { resource_type: t, id: key.1.clone(), versions: Vec::new() });
                    h.by_key.insert(key.clone(), i);
                    i
                }
            };
            let patients: Vec<u32> = p.patients.iter().map(|id| h.intern_patient(id)).collect();
            let references: Vec<(u32, u32)> = p
                .references
                .iter()
                .map(|(rt, rid)| {
                    let rt = h.intern_type(rt);
                    (rt, h.intern_ref(rid))
                })
                .collect();
            let v = Version {
                version_id: p.version_id,
                last_updated: p.last_updated,
                deleted: p.deleted,
                source: p.source,
                patients,
                references,
                detail: p.detail.map(Box::new),
            };
            h.resources[idx as usize].versions.push(v);
        }
        h.by_patient = vec![Vec::new(); h.patient_ids.len()];
        h.by_type = vec![Vec::new(); h.types.len()];
        for (i, r) in h.resources.iter_mut().enumerate() {
            // Stable sort by versionId: copies of one version keep input order; the first is kept.
            r.versions.sort_by(|a, b| a.version_id.cmp(&b.version_id));
            let mut kept: Vec<Version> = Vec::with_capacity(r.versions.len());
            for v in r.versions.drain(..) {
                match kept.last() {
                    Some(k) if k.version_id == v.version_id => {
                        h.duplicates += 1;
                        if k.last_updated != v.last_updated || k.deleted != v.deleted || k.patients != v.patients {
                            h.conflicts.push(Conflict {
                                resource_type: h.types[r.resource_type as usize].clone(),
                                id: r.id.clone(),
                                version_id: v.version_id.to_string(),
                                kept: k.source,
                                dropped: v.source,
                            });
                        }
                    }
                    _ => kept.push(v),
                }
            }
            kept.sort_by(|a, b| a.last_updated.cmp(&b.last_updated).then_with(|| a.version_id.cmp(&b.version_id)));
            r.versions = kept;
            h.version_count += r.versions.len() as u64;
            let mut seen: Vec<u32> = r.versions.iter().flat_map(|v| v.patients.iter().copied()).collect();
            seen.sort_unstable();
            seen.dedup();
            for p in seen {
                h.by_patient[p as usize].push(i as u32);
            }
            h.by_type[r.resource_type as usize].push(i as u32);
        }
        let resources = &h.resources;
        for list in &mut h.by_type {
            list.sort_by(|&a, &b| resources[a as usize].id.cmp(&resources[b as usize].id));
        }
        h
    }

    fn intern_type(&mut self, t: &str) -> u32 {
        if let Some(&i) = self.type_index.get(t) {
            return i;
        }
        let i = self.types.len() as u32;
        self.types.push(t.to_string());
        self.type_index.insert(t.to_string(), i);
        i
    }

    fn intern_patient(&mut self, p: &str) -> u32 {
        if let Some(&i) = self.patient_index.get(p) {
            return i;
        }
        let i = self.patient_ids.len() as u32;
        self.patient_ids.push(p.to_string());
        self.patient_index.insert(p.to_string(), i);
        i
    }

    fn intern_ref(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.ref_index.get(id) {
            return i;
        }
        let i = self.ref_ids.len() as u32;
        self.ref_ids.push(id.to_string());
        self.ref_index.insert(id.to_string(), i);
        i
    }

    pub fn type_id(&self, t: &str) -> Option<u32> {
        self.type_index.get(t).copied()
    }

    pub fn type_name(&self, t: u32) -> &str {
        &self.types[t as usize]
    }

    pub fn patient_id(&self, p: &str) -> Option<u32> {
        self.patient_index.get(p).copied()
    }

    pub fn ref_id(&self, r: u32) -> &str {
        &self.ref_ids[r as usize]
    }

    /// The interned id of a referenced resource id, if any version referenced it.
    pub fn ref_id_of(&self, id: &str) -> Option<u32> {
        self.ref_index.get(id).copied()
    }

    pub fn resource(&self, resource_type: &str, id: &str) -> Option<&Resource> {
        let t = self.type_id(resource_type)?;
        self.by_key.get(&(t, id.to_string())).map(|&i| &self.resources[i as usize])
    }

    pub fn resource_index(&self, resource_type: u32, id: &str) -> Option<u32> {
        self.by_key.get(&(resource_type, id.to_string())).copied()
    }

    /// Resources of a type, sorted by id.
    pub fn of_type(&self, resource_type: u32) -> &[u32] {
        self.by_type.get(resource_type as usize).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Resources any of whose versions was ever in the patient's compartment.
    pub fn touching_patient(&self, patient: u32) -> &[u32] {
        &self.by_patient[patient as usize]
    }

    /// Every type present in the history, sorted.
    pub fn present_types(&self) -> Vec<String> {
        let mut v: Vec<String> = self.types.iter().enumerate().filter(|(i, _)| !self.by_type[*i].is_empty()).map(|(_, t)| t.clone()).collect();
        v.sort();
        v
    }

    /// Counts of versions per type (for the manifest).
    pub fn versions_per_type(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for r in &self.resources {
            *m.entry(self.types[r.resource_type as usize].clone()).or_insert(0) += r.versions.len() as u64;
        }
        m
    }
}

impl Resource {
    /// as-of(T): the version with the greatest (lastUpdated, versionId) such that lastUpdated < T
    /// (or <= T with the inclusive boundary). It may be a deletion.
    pub fn as_of(&self, t: Instant, boundary: Boundary) -> Option<&Version> {
        self.as_of_index(t, boundary).map(|i| &self.versions[i])
    }

    /// The position of as-of(T) in `versions`.
    pub fn as_of_index(&self, t: Instant, boundary: Boundary) -> Option<usize> {
        let n = match boundary {
            Boundary::Strict => self.versions.partition_point(|v| v.last_updated < t),
            Boundary::Inclusive => self.versions.partition_point(|v| v.last_updated <= t),
        };
        n.checked_sub(1)
    }

    /// as-of(T) when it exists and is not a deletion.
    pub fn live_at(&self, t: Instant, boundary: Boundary) -> Option<&Version> {
        self.as_of(t, boundary).filter(|v| !v.deleted)
    }

    /// Versions whose lastUpdated lies in the window the as-of rule cannot decide: between T and
    /// the end of the kickoff request (strict: [T, end]; inclusive: (T, end]).
    pub fn in_window(&self, t: Instant, end: Instant, boundary: Boundary) -> &[Version] {
        let lo = match boundary {
            Boundary::Strict => self.versions.partition_point(|v| v.last_updated < t),
            Boundary::Inclusive => self.versions.partition_point(|v| v.last_updated <= t),
        };
        let hi = self.versions.partition_point(|v| v.last_updated <= end);
        if lo < hi {
            &self.versions[lo..hi]
        } else {
            &[]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(id: &str, vid: u64, ms: i64, deleted: bool) -> ParsedVersion {
        ParsedVersion {
            resource_type: "Observation".into(),
            id: id.into(),
            version_id: VersionId::Number(vid),
            last_updated: Instant::from_millis(ms),
            deleted,
            source: Source { file: 0, line: vid, offset: 0, entry: None },
            patients: vec![],
            references: vec![],
            detail: None,
        }
    }

    #[test]
    fn as_of_with_deletions_recreations_and_boundaries() {
        let h = History::build(vec![pv("o", 30, 3000, false), pv("o", 10, 1000, false), pv("o", 20, 2000, true), pv("o", 10, 1000, false)]);
        let r = h.resource("Observation", "o").unwrap();
        assert_eq!(h.duplicates, 1);
        assert!(h.conflicts.is_empty());
        let at = |ms, b| r.as_of(Instant::from_millis(ms), b).map(|v| (v.version_id.to_string(), v.deleted));
        assert_eq!(at(1000, Boundary::Strict), None);
        assert_eq!(at(1000, Boundary::Inclusive), Some(("10".into(), false)));
        assert_eq!(at(2500, Boundary::Strict), Some(("20".into(), true)));
        assert!(r.live_at(Instant::from_millis(2500), Boundary::Strict).is_none());
        assert_eq!(at(3001, Boundary::Strict), Some(("30".into(), false)));
        assert_eq!(r.in_window(Instant::from_millis(2000), Instant::from_millis(2000), Boundary::Strict).len(), 1);
        assert_eq!(r.in_window(Instant::from_millis(2000), Instant::from_millis(2000), Boundary::Inclusive).len(), 0);
    }

    #[test]
    fn equal_times_order_by_version_and_conflicts_are_recorded() {
        let mut b = pv("o", 5, 1000, false);
        b.last_updated = Instant::from_millis(1500);
        let h = History::build(vec![pv("o", 7, 1000, false), pv("o", 5, 1000, false), b]);
        let r = h.resource("Observation", "o").unwrap();
        assert_eq!(r.as_of(Instant::from_millis(1001), Boundary::Strict).unwrap().version_id.to_string(), "7");
        assert_eq!(h.conflicts.len(), 1);
    }
}
