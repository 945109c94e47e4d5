//! The version index: every resource's versions sorted by (lastUpdated, versionId), looked up by
//! (type, id), by type, and by the patients its versions ever referenced; and the as-of rule
//! that picks the version in force at an instant.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use rayon::prelude::*;

use crate::history::{Detail, ParsedVersion, Source, VersionBatch, VersionId, VersionView};
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
    /// Interned ids of the patients whose compartment this version is in
    /// ([`History::patients_of`]).
    pub patients: Span,
    /// What few versions have: Group members, Client scopes or export status
    /// ([`History::detail_of`]), and the resources referenced (kept only for
    /// `--non-compartment referenced`; [`History::references_of`]) — a position in the index's
    /// list of extras, `NO_EXTRA` for none.
    extra: u32,
}

const NO_EXTRA: u32 = u32::MAX;

// Every indexed version has one of these: its size is most of the index's memory.
const _: () = assert!(std::mem::size_of::<Version>() <= 64);

/// Where a version's list of patients or references is: `len` entries from `start` in the
/// index's shared list. A single patient is kept in `start` itself (most versions have one), so
/// neither an allocation per version nor a second memory access is needed for it.
/// (No equality: equal lists have different spans; compare what [`History::patients_of`] gives.)
#[derive(Debug, Clone, Copy, Default)]
pub struct Span {
    start: u32,
    len: u32,
}

/// The detail and references of a version that has either.
#[derive(Debug)]
struct Extra {
    detail: Option<Box<Detail>>,
    references: Span,
}

/// Lists of patients and references of every version, end to end, and the versions' extras.
#[derive(Debug, Default)]
struct Lists {
    patients: Vec<u32>,
    references: Vec<(u32, u32)>,
    extras: Vec<Extra>,
}

impl Lists {
    fn add_patients(&mut self, ids: impl Iterator<Item = u32>) -> Span {
        let start = self.patients.len();
        self.patients.extend(ids);
        list_index(self.patients.len());
        let len = (self.patients.len() - start) as u32;
        if len == 1 {
            Span { start: self.patients.pop().expect("one patient"), len }
        } else {
            Span { start: list_index(start), len }
        }
    }

    /// The extra of a version with a detail or references; `NO_EXTRA` for one with neither.
    fn add_extra(&mut self, detail: Option<Box<Detail>>, refs: impl Iterator<Item = (u32, u32)>) -> u32 {
        let start = self.references.len();
        self.references.extend(refs);
        list_index(self.references.len());
        let references = Span { start: list_index(start), len: (self.references.len() - start) as u32 };
        if detail.is_none() && references.len == 0 {
            return NO_EXTRA;
        }
        self.extras.push(Extra { detail, references });
        // u32::MAX itself stays free for NO_EXTRA.
        u32::try_from(self.extras.len() - 1).ok().filter(|&i| i != NO_EXTRA).expect("fewer than 2^32 - 1 versions with details or references")
    }

    fn extra(&self, v: &Version) -> Option<&Extra> {
        (v.extra != NO_EXTRA).then(|| &self.extras[v.extra as usize])
    }

    fn patients<'a>(&'a self, v: &'a Version) -> &'a [u32] {
        let Span { start, len } = v.patients;
        match len {
            0 => &[],
            1 => std::slice::from_ref(&v.patients.start),
            _ => &self.patients[start as usize..start as usize + len as usize],
        }
    }

    fn detail(&self, v: &Version) -> Option<&Detail> {
        self.extra(v).and_then(|x| x.detail.as_deref())
    }

    fn references(&self, v: &Version) -> &[(u32, u32)] {
        let Some(Extra { references: Span { start, len }, .. }) = self.extra(v) else { return &[] };
        &self.references[*start as usize..*start as usize + *len as usize]
    }
}

/// A position in a list as stored in a span; the lists' ends are checked too, so every span's
/// end fits as well.
fn list_index(i: usize) -> u32 {
    u32::try_from(i).expect("more than 2^32 patient or reference links: beyond what this index can hold")
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub resource_type: u32,
    pub id: Box<str>,
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

/// Interns strings as dense u32 ids.
#[derive(Debug, Default)]
pub struct Interner {
    pub names: Vec<Box<str>>,
    index: HashMap<Box<str>, u32>,
}

impl Interner {
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.into());
        self.index.insert(s.into(), i);
        i
    }

    pub fn get(&self, s: &str) -> Option<u32> {
        self.index.get(s).copied()
    }
}

/// Resource numbers by (type, id): the table stores each number with 32 bits of its hash, the
/// ids stay in the resources. Growing the table rehashes from the stored bits, without
/// reading any id again (each read was a cache miss), and a lookup compares ids only when
/// those bits match.
#[derive(Default)]
struct IdIndex {
    /// (resource number, hash bits).
    table: hashbrown::HashTable<(u32, u32)>,
}

impl std::fmt::Debug for IdIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdIndex({} resources)", self.table.len())
    }
}

/// 32 bits of the hash of (type, id).
fn id_hash(resource_type: u32, id: &str) -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    h.write_u32(resource_type);
    h.write(id.as_bytes());
    let full = h.finish();
    (full ^ (full >> 32)) as u32
}

/// The table's 64-bit hash, spread from the stored bits (the table takes its bucket from the
/// low bits and a tag from the top ones).
fn spread(bits: u32) -> u64 {
    (bits as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl IdIndex {
    fn find(&self, resources: &[Resource], resource_type: u32, id: &str) -> Option<u32> {
        let bits = id_hash(resource_type, id);
        self.table
            .find(spread(bits), |&(i, b)| {
                b == bits && {
                    let r = &resources[i as usize];
                    r.resource_type == resource_type && &*r.id == id
                }
            })
            .map(|&(i, _)| i)
    }

    fn insert(&mut self, resources: &[Resource], i: u32) {
        let r = &resources[i as usize];
        let bits = id_hash(r.resource_type, &r.id);
        self.table.insert_unique(spread(bits), (i, bits), |&(_, b)| spread(b));
    }
}

/// Collects versions as they are read; [`HistoryBuilder::finish`] sorts and indexes them.
#[derive(Debug, Default)]
pub struct HistoryBuilder {
    types: Interner,
    ids: IdIndex,
    resources: Vec<Resource>,
    patients: Interner,
    refs: Interner,
    lists: Lists,
}

impl HistoryBuilder {
    pub fn add(&mut self, p: ParsedVersion) {
        let mut batch = VersionBatch::with_capacity(1);
        batch.push(p);
        self.add_batch(batch);
    }

    /// Adds every version of a batch, in order.
    pub fn add_batch(&mut self, batch: VersionBatch) {
        batch.drain(|v| self.add_view(v));
    }

    fn add_view(&mut self, v: VersionView) {
        let t = self.types.intern(v.resource_type);
        let idx = match self.ids.find(&self.resources, t, v.id) {
            Some(i) => i,
            None => {
                let i = self.resources.len() as u32;
                self.resources.push(Resource { resource_type: t, id: v.id.into(), versions: Vec::with_capacity(1) });
                self.ids.insert(&self.resources, i);
                i
            }
        };
        let patients = self.lists.add_patients(v.patients().map(|id| self.patients.intern(id)));
        let references = v.references();
        let f = v.facts;
        let extra = self.lists.add_extra(f.detail, references.map(|(rt, rid)| (self.types.intern(rt), self.refs.intern(rid))));
        let versions = &mut self.resources[idx as usize].versions;
        if versions.len() == versions.capacity() && versions.len() < 8 {
            // Most resources have a handful of versions: grow by one (a Vec would jump from
            // one version to four, ~100 MB of empty room at the reference size), doubling only
            // past eight — at most seven small reallocations per resource.
            versions.reserve_exact(1);
        }
        versions.push(Version {
            version_id: f.version_id,
            last_updated: f.last_updated,
            deleted: f.deleted,
            source: f.source,
            patients,
            extra,
        });
    }

    /// Sorts every resource's versions by (lastUpdated, versionId), drops repeated copies of a
    /// version (recording conflicts), and numbers resources in (type name, id) order.
    pub fn finish(self) -> History {
        let HistoryBuilder { types, ids: mut by_key, mut resources, patients, refs, mut lists } = self;
        // The lists grew by doubling; the finished index keeps them without spare room.
        lists.patients.shrink_to_fit();
        lists.references.shrink_to_fit();
        let duplicates = std::sync::atomic::AtomicU64::new(0);
        let conflicts: std::sync::Mutex<Vec<Conflict>> = std::sync::Mutex::new(Vec::new());
        resources.par_iter_mut().for_each(|r| {
            if r.versions.len() < 2 {
                return;
            }
            // Stable sort by versionId: copies of one version keep input order; the first is kept.
            r.versions.sort_by(|a, b| a.version_id.cmp(&b.version_id));
            if r.versions.windows(2).any(|w| w[0].version_id == w[1].version_id) {
                let mut kept: Vec<Version> = Vec::with_capacity(r.versions.len());
                for v in r.versions.drain(..) {
                    match kept.last() {
                        Some(k) if k.version_id == v.version_id => {
                            duplicates.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if k.last_updated != v.last_updated || k.deleted != v.deleted || lists.patients(k) != lists.patients(&v) {
                                conflicts.lock().expect("conflicts lock").push(Conflict {
                                    resource_type: types.names[r.resource_type as usize].to_string(),
                                    id: r.id.to_string(),
                                    version_id: v.version_id.to_string(),
                                    kept: k.source,
                                    dropped: v.source,
                                });
                            }
                        }
                        _ => kept.push(v),
                    }
                }
                r.versions = kept;
            }
            r.versions.sort_by(|a, b| a.last_updated.cmp(&b.last_updated).then_with(|| a.version_id.cmp(&b.version_id)));
        });
        // Resources in (type name, id) order: rows then sort by resource number.
        let type_rank = {
            let mut order: Vec<u32> = (0..types.names.len() as u32).collect();
            order.sort_by(|&a, &b| types.names[a as usize].cmp(&types.names[b as usize]));
            let mut rank = vec![0u32; order.len()];
            for (r, &t) in order.iter().enumerate() {
                rank[t as usize] = r as u32;
            }
            rank
        };
        // Sorted on (type rank, the id's first 8 bytes) held beside the number, so the sort
        // touches neither the resources nor their ids; runs of equal keys are then ordered by id.
        let mut keyed: Vec<(u32, u64, u32)> = resources
            .par_iter()
            .enumerate()
            .map(|(i, r)| {
                (type_rank[r.resource_type as usize], head8(r.id.as_bytes()), i as u32)
            })
            .collect();
        keyed.par_sort_unstable_by_key(|k| (k.0, k.1));
        // Ids that share their first 8 bytes (a common prefix, clones with a suffix): each run
        // is put in id order on its own, its ids read once rather than at every comparison.
        keyed.par_chunk_by_mut(|a, b| (a.0, a.1) == (b.0, b.1)).filter(|run| run.len() > 1).for_each(|run| {
            let ids: Vec<&[u8]> = run.iter().map(|k| resources[k.2 as usize].id.as_bytes()).collect();
            // The run's ids share more than 8 bytes as a rule (clones of one id with a
            // suffix): ordered by the 8 bytes after their common prefix, then by id.
            let shared = ids[1..].iter().map(|id| common_prefix(ids[0], id)).min().unwrap_or(0);
            let mut by_id: Vec<(u64, &[u8], u32)> = ids.iter().zip(run.iter()).map(|(id, k)| (head8(&id[shared..]), *id, k.2)).collect();
            by_id.sort_unstable();
            for (k, (_, _, i)) in run.iter_mut().zip(by_id) {
                k.2 = i;
            }
        });
        let order: Vec<u32> = keyed.into_iter().map(|k| k.2).collect();
        let mut new_index = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old as usize] = new as u32;
        }
        // Renumber the id table in place: the hashes depend on (type, id) only.
        by_key.table.iter_mut().for_each(|(v, _)| *v = new_index[*v as usize]);
        // Put the resources in that order in place, one permutation cycle at a time (a second
        // vector of them would add ~60 MB to the peak at the reference size).
        let mut placed = vec![false; order.len()];
        for start in 0..order.len() {
            let mut at = start;
            while !placed[at] {
                placed[at] = true;
                let from = order[at] as usize;
                if from == start {
                    break;
                }
                resources.swap(at, from);
                at = from;
            }
        }
        drop(placed);
        let mut by_type: Vec<(u32, u32)> = vec![(0, 0); types.names.len()];
        let mut by_patient: Vec<Vec<u32>> = vec![Vec::new(); patients.names.len()];
        let mut version_count = 0u64;
        let mut seen: Vec<u32> = Vec::new();
        for (i, r) in resources.iter().enumerate() {
            // Each resource's versions are their own allocation: fetch a later one's meanwhile.
            if let Some(ahead) = resources.get(i + 8) {
                prefetch(ahead.versions.as_ptr());
            }
            let i = i as u32;
            let span = &mut by_type[r.resource_type as usize];
            if span.0 == span.1 {
                *span = (i, i + 1);
            } else {
                span.1 = i + 1;
            }
            version_count += r.versions.len() as u64;
            let distinct: &[u32] = match r.versions.as_slice() {
                // A version's patients are distinct already.
                [v] => lists.patients(v),
                versions => {
                    seen.clear();
                    seen.extend(versions.iter().flat_map(|v| lists.patients(v).iter().copied()));
                    seen.sort_unstable();
                    seen.dedup();
                    &seen
                }
            };
            for &p in distinct {
                by_patient[p as usize].push(i);
            }
        }
        let mut conflicts = conflicts.into_inner().expect("conflicts lock");
        conflicts.sort_by(|a, b| (&a.resource_type, &a.id, &a.version_id, a.dropped).cmp(&(&b.resource_type, &b.id, &b.version_id, b.dropped)));
        History {
            types,
            resources,
            by_key,
            by_type,
            patients,
            refs,
            lists,
            by_patient,
            conflicts,
            duplicates: duplicates.into_inner(),
            version_count,
        }
    }
}

/// The index of every version read.
#[derive(Debug, Default)]
pub struct History {
    types: Interner,
    /// Sorted by (type name, id).
    pub resources: Vec<Resource>,
    by_key: IdIndex,
    /// For each type, the range of its resources.
    by_type: Vec<(u32, u32)>,
    patients: Interner,
    refs: Interner,
    lists: Lists,
    /// For each interned patient: the resources any of whose versions is in its compartment.
    by_patient: Vec<Vec<u32>>,
    pub conflicts: Vec<Conflict>,
    pub duplicates: u64,
    pub version_count: u64,
}

impl History {
    /// Builds the index from versions in input order.
    pub fn build(parsed: Vec<ParsedVersion>) -> History {
        let mut b = HistoryBuilder::default();
        parsed.into_iter().for_each(|p| b.add(p));
        b.finish()
    }

    /// The number of resource types seen (type ids are below it).
    pub fn type_count(&self) -> usize {
        self.types.names.len()
    }

    pub fn type_id(&self, t: &str) -> Option<u32> {
        self.types.get(t)
    }

    pub fn type_name(&self, t: u32) -> &str {
        &self.types.names[t as usize]
    }

    /// The interned ids of the patients whose compartment a version of this history is in.
    pub fn patients_of<'a>(&'a self, v: &'a Version) -> &'a [u32] {
        self.lists.patients(v)
    }

    /// The Group members, Client scopes or export status a version of this history carries.
    pub fn detail_of(&self, v: &Version) -> Option<&Detail> {
        self.lists.detail(v)
    }

    /// The interned (type, id) of every resource a version of this history references.
    pub fn references_of(&self, v: &Version) -> &[(u32, u32)] {
        self.lists.references(v)
    }

    /// The number of patients interned (patient ids are below it).
    pub fn patient_count(&self) -> usize {
        self.patients.names.len()
    }

    pub fn patient_id(&self, p: &str) -> Option<u32> {
        self.patients.get(p)
    }

    pub fn patient_name(&self, p: u32) -> &str {
        &self.patients.names[p as usize]
    }

    /// The interned id of a referenced resource id, if any version referenced it.
    pub fn ref_id_of(&self, id: &str) -> Option<u32> {
        self.refs.get(id)
    }

    pub fn resource(&self, resource_type: &str, id: &str) -> Option<&Resource> {
        let t = self.type_id(resource_type)?;
        self.resource_index(t, id).map(|i| &self.resources[i as usize])
    }

    pub fn resource_index(&self, resource_type: u32, id: &str) -> Option<u32> {
        self.by_key.find(&self.resources, resource_type, id)
    }

    /// Resources of a type, in id order.
    pub fn of_type(&self, resource_type: u32) -> std::ops::Range<u32> {
        let (a, b) = self.by_type.get(resource_type as usize).copied().unwrap_or((0, 0));
        a..b
    }

    /// Resources any of whose versions was ever in the patient's compartment.
    pub fn touching_patient(&self, patient: u32) -> &[u32] {
        &self.by_patient[patient as usize]
    }

    /// Every type present in the history, sorted.
    pub fn present_types(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..self.types.names.len() as u32).filter(|&t| !self.of_type(t).is_empty()).map(|t| self.type_name(t).to_string()).collect();
        v.sort();
        v
    }

    /// Counts of versions per type (for the manifest).
    pub fn versions_per_type(&self) -> BTreeMap<String, u64> {
        let mut per_type = vec![0u64; self.types.names.len()];
        for r in &self.resources {
            per_type[r.resource_type as usize] += r.versions.len() as u64;
        }
        per_type.into_iter().enumerate().filter(|&(_, n)| n > 0).map(|(t, n)| (self.type_name(t as u32).to_string(), n)).collect()
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
        // Most resources were last written long before the export.
        if self.versions.last().is_none_or(|v| v.last_updated < t) {
            return &[];
        }
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

/// The first 8 bytes of an id as a number that orders as they do (zero-padded: a shorter id
/// comes first, and ties are broken by comparing the ids themselves).
fn head8(id: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    let n = id.len().min(8);
    head[..n].copy_from_slice(&id[..n]);
    u64::from_be_bytes(head)
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Asks the CPU to bring the memory at `p` into its cache; never reads it.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it does not fault or read, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
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

    /// Resources are numbered in (type name, id) order, also among ids that share their first
    /// 8 bytes (sorted on those first, then run by run); lookups still find each one.
    #[test]
    fn resources_in_type_and_id_order() {
        let ids = ["prefix-0001-c10", "prefix-0001-c2", "a", "prefix-0001-c1", "ab", "prefix-0", "prefix-0001", "prefix-1", "abcdefgh", "abcdefg", "abcdefghi"];
        let mut parsed: Vec<ParsedVersion> = ids.iter().enumerate().map(|(n, id)| pv(id, n as u64 + 1, 1000, false)).collect();
        for (n, id) in ["p2", "p1", "prefix-0001-c3"].iter().enumerate() {
            let mut p = pv(id, 100 + n as u64, 1000, false);
            p.resource_type = "Condition".into();
            parsed.push(p);
        }
        let h = History::build(parsed);
        let got: Vec<(&str, &str)> = h.resources.iter().map(|r| (h.type_name(r.resource_type), &*r.id)).collect();
        let mut expected = got.clone();
        expected.sort();
        assert_eq!(got, expected);
        assert_eq!(got.len(), 14);
        for (t, id) in expected {
            assert_eq!(&*h.resource(t, id).unwrap().id, id);
        }
    }

    #[test]
    fn ids_sharing_long_prefixes_in_id_order() {
        // Runs of ids equal in their first 8 bytes and often far beyond (clones with suffixes,
        // ids that are prefixes of others), from a small alphabet so that ties are common.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut ids: Vec<String> = Vec::new();
        for _ in 0..600 {
            let stem = ["aaaaaaaa", "aaaaaaaa-b", "zzzzzzzz", "aaaaaaab"][(next() % 4) as usize];
            let tail: String = (0..next() % 20).map(|_| ['-', '0', '1', 'a', 'A'][(next() % 5) as usize]).collect();
            ids.push(format!("{stem}{tail}"));
        }
        ids.sort();
        ids.dedup();
        let parsed: Vec<ParsedVersion> = ids.iter().rev().enumerate().map(|(n, id)| pv(id, n as u64 + 1, 1000, false)).collect();
        let h = History::build(parsed);
        let got: Vec<&str> = h.resources.iter().map(|r| &*r.id).collect();
        assert_eq!(got, ids);
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

    #[test]
    fn patients_and_references_of_each_version() {
        let with = |id: &str, vid: u64, patients: &[&str], refs: &[(&str, &str)]| {
            let mut p = pv(id, vid, vid as i64 * 1000, false);
            p.patients = patients.iter().map(|s| s.to_string()).collect();
            p.references = refs.iter().map(|(t, i)| (t.to_string(), i.to_string())).collect();
            p
        };
        let h = History::build(vec![
            with("a", 1, &["p1"], &[("Patient", "p1")]),
            with("a", 2, &["p2", "p3", "p1"], &[]),
            with("a", 3, &[], &[("Encounter", "e1"), ("Patient", "p2")]),
            with("b", 1, &["p3"], &[]),
            // Copies of one version: the same patients are a repeat, others a conflict.
            with("b", 1, &["p3"], &[]),
            with("c", 1, &["p1", "p2"], &[]),
            with("c", 1, &["p2", "p1"], &[]),
        ]);
        let patients = |id: &str| -> Vec<Vec<&str>> {
            let r = h.resource("Observation", id).unwrap();
            r.versions.iter().map(|v| h.patients_of(v).iter().map(|&p| h.patient_name(p)).collect()).collect()
        };
        assert_eq!(patients("a"), vec![vec!["p1"], vec!["p2", "p3", "p1"], vec![]]);
        assert_eq!(patients("b"), vec![vec!["p3"]]);
        assert_eq!(patients("c"), vec![vec!["p1", "p2"]]);
        let a = h.resource("Observation", "a").unwrap();
        let refs: Vec<Vec<(&str, u32)>> = a.versions.iter().map(|v| h.references_of(v).iter().map(|&(t, i)| (h.type_name(t), i)).collect()).collect();
        assert_eq!(refs[0], vec![("Patient", h.ref_id_of("p1").unwrap())]);
        assert!(refs[1].is_empty());
        assert_eq!(refs[2], vec![("Encounter", h.ref_id_of("e1").unwrap()), ("Patient", h.ref_id_of("p2").unwrap())]);
        assert_eq!(h.duplicates, 2);
        assert_eq!(h.conflicts.len(), 1);
        assert_eq!(h.conflicts[0].id, "c");
    }
}
