//! Building the index: versions added in input order, then sorted by (lastUpdated, versionId),
//! repeated copies dropped (differing ones recorded as conflicts), and resources numbered in
//! (type name, id) order.

use std::sync::mpsc::{sync_channel, SyncSender};

use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;

use super::ids::{IdIndex, Interner};
use super::lists::Lists;
use super::{prefetch, Conflict, History, Resource, Version, NO_TENANT};
use crate::error::Result;
#[cfg(test)]
use crate::version::ParsedVersion;
use crate::version::{VersionBatch, VersionView};

/// Builds the index on a thread of its own while `feed` reads the inputs and sends it batches of
/// versions in input order, so parsing never waits for the index (nor the index for a file to
/// start). Returns the finished index and what `feed` returned.
pub(crate) fn build<T>(feed: impl FnOnce(&SyncSender<Vec<VersionBatch>>) -> Result<T>) -> Result<(History, T)> {
    let (fed, builder) = std::thread::scope(|scope| {
        let (to_index, batches) = sync_channel::<Vec<VersionBatch>>(4);
        let indexer = scope.spawn(move || {
            let mut builder = HistoryBuilder::default();
            for batch in batches.into_iter().flatten() {
                builder.add_batch(batch);
            }
            builder
        });
        let fed = feed(&to_index);
        drop(to_index);
        // A panic there is a bug: it goes on as a panic (a send in `feed` may have failed for it).
        let builder = indexer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (fed, builder)
    });
    let fed = fed?;
    let mut sw = crate::stopwatch::Stopwatch::new();
    let history = builder.finish();
    sw.lap("history: index");
    Ok((history, fed))
}

/// Collects versions as they are read; [`HistoryBuilder::finish`] sorts and indexes them.
#[derive(Debug, Default)]
pub(crate) struct HistoryBuilder {
    types: Interner,
    ids: IdIndex,
    resources: Vec<Resource>,
    patients: Interner,
    refs: Interner,
    tenants: Interner,
    lists: Lists,
    /// Copies of a version dropped as they were read, and those that differed.
    duplicates: u64,
    conflicts: Vec<Conflict>,
}

/// How many of a resource's latest versions a new one is compared with as it is read: a copy of
/// one of them (a repeated line, one version in two tables) is dropped at once, so repeated
/// input never accumulates; farther copies are dropped when the index is finished.
const COPIES_SEEN: usize = 64;

impl HistoryBuilder {
    #[cfg(test)]
    pub(crate) fn add(&mut self, p: ParsedVersion) {
        let mut batch = VersionBatch::with_capacity(1);
        batch.push(p);
        self.add_batch(batch);
    }

    /// Adds every version of a batch, in order.
    pub(crate) fn add_batch(&mut self, batch: VersionBatch) {
        batch.drain(|v| self.add_view(v));
    }

    fn add_view(&mut self, v: VersionView) {
        // Versions of one resource often come one after another (a stored index holds nothing
        // else): the last resource is tried before any hashing.
        let last = self.resources.last().filter(|r| {
            &*r.id == v.id
                && &*self.types.names[r.resource_type as usize] == v.resource_type
                && match v.tenant {
                    None => r.tenant == NO_TENANT,
                    Some(name) => r.tenant != NO_TENANT && &*self.tenants.names[r.tenant as usize] == name,
                }
        });
        let (t, found) = match last {
            Some(r) => (r.resource_type, Some(self.resources.len() as u32 - 1)),
            None => (self.types.intern(v.resource_type), None),
        };
        let tenant = v.tenant.map_or(NO_TENANT, |name| self.tenants.intern(name));
        let idx = match found.or_else(|| self.ids.find(&self.resources, t, v.id, tenant)) {
            Some(i) => i,
            None => {
                let i = self.resources.len() as u32;
                self.resources.push(Resource {
                    resource_type: t,
                    id: v.id.into(),
                    tenant,
                    versions: Vec::with_capacity(1),
                });
                self.ids.insert(&self.resources, i);
                i
            }
        };
        if self.drop_copy(idx, &v) {
            return;
        }
        let patients = self.lists.add_patients(v.patients().map(|id| self.patients.intern(id)));
        let references = v.references();
        let f = v.facts;
        let extra =
            self.lists.add_extra(f.detail, references.map(|(rt, rid)| (self.types.intern(rt), self.refs.intern(rid))));
        let versions = &mut self.resources[idx as usize].versions;
        if versions.len() == versions.capacity() && versions.len() < 8 {
            // Most resources have a handful of versions: grow by one (a Vec would jump from
            // one version to four: much empty room, see BENCHMARKS.md), doubling only
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

    /// Whether `v` is a copy of one of resource `idx`'s latest versions: then it is counted (and
    /// recorded as a conflict where it differs, as [`HistoryBuilder::finish`] does), and the
    /// first copy read is kept.
    fn drop_copy(&mut self, idx: u32, v: &VersionView) -> bool {
        let r = &self.resources[idx as usize];
        let f = &v.facts;
        if !r.versions.iter().rev().take(COPIES_SEEN).any(|k| k.version_id == f.version_id) {
            return false;
        }
        // Compared with the first copy read, as `finish` compares every later copy (a copy
        // farther back than the window may have let a differing one in).
        let Some(k) = r.versions.iter().find(|k| k.version_id == f.version_id) else { return false };
        self.duplicates += 1;
        let kept = self.lists.patients(k);
        let same_patients =
            kept.len() == v.patients().len() && v.patients().zip(kept).all(|(p, &id)| self.patients.get(p) == Some(id));
        if k.last_updated != f.last_updated
            || k.deleted != f.deleted
            || !same_patients
            || self.lists.detail(k) != f.detail.as_deref()
        {
            self.conflicts.push(Conflict {
                resource_type: self.types.names[r.resource_type as usize].to_string(),
                id: r.id.to_string(),
                version_id: f.version_id.to_string(),
                kept: k.source,
                dropped: f.source,
            });
        }
        true
    }

    /// Sorts every resource's versions by (lastUpdated, versionId), drops repeated copies of a
    /// version (recording conflicts), and numbers resources in (type name, id) order.
    pub(crate) fn finish(self) -> History {
        let HistoryBuilder {
            types,
            ids: mut by_key,
            mut resources,
            patients,
            refs,
            tenants,
            mut lists,
            duplicates: dropped_early,
            conflicts: early_conflicts,
        } = self;
        // An unmarked version (a deletion entry without a body, a version from before the marker)
        // of an id that exactly one tenant has belongs to that tenant's resource.
        if !tenants.names.is_empty() {
            // (type, id) → the one marked resource with it (`None`: several tenants have it).
            let mut marked: HashMap<(u32, Box<str>), Option<usize>> = HashMap::default();
            for (j, r) in resources.iter().enumerate().filter(|(_, r)| r.tenant != NO_TENANT) {
                marked.entry((r.resource_type, r.id.clone())).and_modify(|m| *m = None).or_insert(Some(j));
            }
            for i in 0..resources.len() {
                if resources[i].tenant != NO_TENANT {
                    continue;
                }
                if let Some(Some(j)) = marked.get(&(resources[i].resource_type, resources[i].id.clone())) {
                    let moved = std::mem::take(&mut resources[i].versions);
                    resources[*j].versions.extend(moved);
                }
            }
            // The unmarked resources emptied so are gone: a resource has versions.
            if resources.iter().any(|r| r.versions.is_empty()) {
                let mut renumbered = vec![u32::MAX; resources.len()];
                let mut next = 0u32;
                for (old, r) in resources.iter().enumerate() {
                    if !r.versions.is_empty() {
                        renumbered[old] = next;
                        next += 1;
                    }
                }
                by_key.table.retain(|(i, _)| renumbered[*i as usize] != u32::MAX);
                by_key.table.iter_mut().for_each(|(i, _)| *i = renumbered[*i as usize]);
                resources.retain(|r| !r.versions.is_empty());
            }
        }
        // The lists grew by doubling; the finished index keeps them without spare room.
        lists.patients.shrink_to_fit();
        lists.references.shrink_to_fit();
        let duplicates = std::sync::atomic::AtomicU64::new(dropped_early);
        let conflicts: std::sync::Mutex<Vec<Conflict>> = std::sync::Mutex::new(early_conflicts);
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
                            if k.last_updated != v.last_updated
                                || k.deleted != v.deleted
                                || lists.patients(k) != lists.patients(&v)
                                || lists.detail(k) != lists.detail(&v)
                            {
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
            r.versions
                .sort_by(|a, b| a.last_updated.cmp(&b.last_updated).then_with(|| a.version_id.cmp(&b.version_id)));
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
            .map(|(i, r)| (type_rank[r.resource_type as usize], head8(r.id.as_bytes()), i as u32))
            .collect();
        keyed.par_sort_unstable_by_key(|k| (k.0, k.1));
        // Ids that share their first 8 bytes (a common prefix, clones with a suffix): each run
        // is put in id order on its own, its ids read once rather than at every comparison.
        keyed.par_chunk_by_mut(|a, b| (a.0, a.1) == (b.0, b.1)).filter(|run| run.len() > 1).for_each(|run| {
            let ids: Vec<&[u8]> = run.iter().map(|k| resources[k.2 as usize].id.as_bytes()).collect();
            // The run's ids share more than 8 bytes as a rule (clones of one id with a
            // suffix): ordered by the 8 bytes after their common prefix, then by id.
            let shared = ids[1..].iter().map(|id| common_prefix(ids[0], id)).min().unwrap_or(0);
            let mut by_id: Vec<(u64, &[u8], u32)> =
                ids.iter().zip(run.iter()).map(|(id, k)| (head8(&id[shared..]), *id, k.2)).collect();
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
        // vector of them would add to the peak, see BENCHMARKS.md).
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
        sort_conflicts(&mut conflicts);
        History {
            types,
            resources,
            by_key,
            by_type,
            patients,
            refs,
            tenants,
            lists,
            by_patient,
            conflicts,
            duplicates: duplicates.into_inner(),
            version_count,
        }
    }
}

/// The first 8 bytes of an id as a number that orders as they do (zero-padded: a shorter id
/// comes first, and ties are broken by comparing the ids themselves).
/// Conflicts in the order an index lists them: by resource, version, and the dropped copy's place.
pub(crate) fn sort_conflicts(conflicts: &mut [Conflict]) {
    conflicts.sort_by(|a, b| {
        (&a.resource_type, &a.id, &a.version_id, a.dropped).cmp(&(&b.resource_type, &b.id, &b.version_id, b.dropped))
    });
}

fn head8(id: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    let n = id.len().min(8);
    head[..n].copy_from_slice(&id[..n]);
    u64::from_be_bytes(head)
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}
