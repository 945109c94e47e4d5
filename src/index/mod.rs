//! The version index: every resource's versions sorted by (lastUpdated, versionId), looked up by
//! (type, id), by type, and by the patients its versions ever referenced; and the as-of rule
//! that picks the version in force at an instant.

#[cfg(test)]
mod as_of_properties;
mod builder;
mod ids;
mod lists;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::timestamp::Instant;
#[cfg(test)]
use crate::version::ParsedVersion;
use crate::version::{Detail, Source, VersionId};

#[cfg(test)]
use builder::HistoryBuilder;
pub(crate) use builder::{build, sort_conflicts};
use ids::{IdIndex, Interner};
use lists::{Lists, Span};

/// `strict`: as-of(T) takes versions with lastUpdated < T (the guide's rule); `inclusive`: <= T.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Boundary {
    Strict,
    Inclusive,
}

/// One version as indexed (no body).
#[derive(Debug, Clone)]
pub(crate) struct Version {
    pub(crate) version_id: VersionId,
    pub(crate) last_updated: Instant,
    pub(crate) deleted: bool,
    pub(crate) source: Source,
    /// Interned ids of the patients whose compartment this version is in
    /// ([`History::patients_of`]).
    pub(crate) patients: Span,
    /// What few versions have: Group members, Client scopes or export status
    /// ([`History::detail_of`]), and the resources referenced (kept only for
    /// `--non-compartment referenced`; [`History::references_of`]) — a position in the index's
    /// list of extras, `NO_EXTRA` for none.
    extra: u32,
}

// Every indexed version has one of these: its size is most of the index's memory.
const _: () = assert!(std::mem::size_of::<Version>() <= 64);

#[derive(Debug, Clone)]
pub(crate) struct Resource {
    pub(crate) resource_type: u32,
    pub(crate) id: Box<str>,
    /// The tenant its versions are marked with (Smartbox), or [`NO_TENANT`].
    pub(crate) tenant: u32,
    pub(crate) versions: Vec<Version>,
}

/// The tenant of a resource whose versions carry no tenant marker.
pub(crate) const NO_TENANT: u32 = u32::MAX;

/// Two versions with the same (type, id, versionId) but different contents.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Conflict {
    pub(crate) resource_type: String,
    pub(crate) id: String,
    pub(crate) version_id: String,
    pub(crate) kept: Source,
    pub(crate) dropped: Source,
}

/// The index of every version read.
#[derive(Debug, Default)]
pub(crate) struct History {
    types: Interner,
    /// Sorted by (type name, id).
    pub(crate) resources: Vec<Resource>,
    by_key: IdIndex,
    /// For each type, the range of its resources.
    by_type: Vec<(u32, u32)>,
    patients: Interner,
    refs: Interner,
    /// The tenant markers (Smartbox) of the resources.
    tenants: Interner,
    lists: Lists,
    /// For each interned patient: the resources any of whose versions is in its compartment.
    by_patient: Vec<Vec<u32>>,
    pub(crate) conflicts: Vec<Conflict>,
    pub(crate) duplicates: u64,
    pub(crate) version_count: u64,
}

impl History {
    /// Builds the index from versions in input order.
    #[cfg(test)]
    pub(crate) fn build(parsed: Vec<ParsedVersion>) -> History {
        let mut b = HistoryBuilder::default();
        parsed.into_iter().for_each(|p| b.add(p));
        b.finish()
    }

    /// The number of resource types seen (type ids are below it).
    pub(crate) fn type_count(&self) -> usize {
        self.types.names.len()
    }

    pub(crate) fn type_id(&self, t: &str) -> Option<u32> {
        self.types.get(t)
    }

    pub(crate) fn type_name(&self, t: u32) -> &str {
        &self.types.names[t as usize]
    }

    /// The interned ids of the patients whose compartment a version of this history is in.
    pub(crate) fn patients_of<'a>(&'a self, v: &'a Version) -> &'a [u32] {
        self.lists.patients(v)
    }

    /// The Group members, Client scopes or export status a version of this history carries.
    pub(crate) fn detail_of(&self, v: &Version) -> Option<&Detail> {
        self.lists.detail(v)
    }

    /// The interned (type, id) of every resource a version of this history references.
    pub(crate) fn references_of(&self, v: &Version) -> &[(u32, u32)] {
        self.lists.references(v)
    }

    /// The number of patients interned (patient ids are below it).
    pub(crate) fn patient_count(&self) -> usize {
        self.patients.names.len()
    }

    pub(crate) fn patient_id(&self, p: &str) -> Option<u32> {
        self.patients.get(p)
    }

    pub(crate) fn patient_name(&self, p: u32) -> &str {
        &self.patients.names[p as usize]
    }

    /// The interned id of a referenced resource id, if any version referenced it.
    pub(crate) fn ref_id_of(&self, id: &str) -> Option<u32> {
        self.refs.get(id)
    }

    /// The resource (type, id), its tenant markers ignored: the unmarked one, else the first
    /// tenant's.
    pub(crate) fn resource(&self, resource_type: &str, id: &str) -> Option<&Resource> {
        let t = self.type_id(resource_type)?;
        std::iter::once(NO_TENANT)
            .chain(0..self.tenants.names.len() as u32)
            .find_map(|tenant| self.by_key.find(&self.resources, t, id, tenant))
            .map(|i| &self.resources[i as usize])
    }

    /// The resource (type, id) as a kickoff under `tenant` reads it: that tenant's, else an
    /// unmarked one, never another tenant's. Without a tenant, markers are ignored.
    pub(crate) fn resource_in(&self, resource_type: &str, id: &str, tenant: Option<u32>) -> Option<&Resource> {
        let Some(tenant) = tenant else { return self.resource(resource_type, id) };
        let t = self.type_id(resource_type)?;
        [tenant, NO_TENANT]
            .into_iter()
            .find_map(|x| self.by_key.find(&self.resources, t, id, x))
            .map(|i| &self.resources[i as usize])
    }

    /// The tenant marker numbered `tenant` ([`Resource::tenant`]).
    pub(crate) fn tenant_name(&self, tenant: u32) -> &str {
        &self.tenants.names[tenant as usize]
    }

    /// The referenced id numbered `r` ([`History::references_of`]).
    pub(crate) fn ref_name(&self, r: u32) -> &str {
        &self.refs.names[r as usize]
    }

    /// The interned number of a tenant marker, if any version carries it.
    pub(crate) fn tenant_id(&self, name: &str) -> Option<u32> {
        self.tenants.get(name)
    }

    /// Resources of a type, in id order.
    pub(crate) fn of_type(&self, resource_type: u32) -> std::ops::Range<u32> {
        let (a, b) = self.by_type.get(resource_type as usize).copied().unwrap_or((0, 0));
        a..b
    }

    /// Resources any of whose versions was ever in the patient's compartment.
    pub(crate) fn touching_patient(&self, patient: u32) -> &[u32] {
        &self.by_patient[patient as usize]
    }

    /// Every type present in the history, sorted.
    pub(crate) fn present_types(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..self.types.names.len() as u32)
            .filter(|&t| !self.of_type(t).is_empty())
            .map(|t| self.type_name(t).to_string())
            .collect();
        v.sort();
        v
    }

    /// Counts of versions per type (for the manifest).
    pub(crate) fn versions_per_type(&self) -> BTreeMap<String, u64> {
        let mut per_type = vec![0u64; self.types.names.len()];
        for r in &self.resources {
            per_type[r.resource_type as usize] += r.versions.len() as u64;
        }
        per_type
            .into_iter()
            .enumerate()
            .filter(|&(_, n)| n > 0)
            .map(|(t, n)| (self.type_name(t as u32).to_string(), n))
            .collect()
    }
}

impl Resource {
    /// as-of(T): the version with the greatest (lastUpdated, versionId) such that lastUpdated < T
    /// (or <= T with the inclusive boundary). It may be a deletion.
    pub(crate) fn as_of(&self, t: Instant, boundary: Boundary) -> Option<&Version> {
        self.as_of_index(t, boundary).map(|i| &self.versions[i])
    }

    /// The position of as-of(T) in `versions`.
    pub(crate) fn as_of_index(&self, t: Instant, boundary: Boundary) -> Option<usize> {
        let n = match boundary {
            Boundary::Strict => self.versions.partition_point(|v| v.last_updated < t),
            Boundary::Inclusive => self.versions.partition_point(|v| v.last_updated <= t),
        };
        n.checked_sub(1)
    }

    /// as-of(T) when it exists and is not a deletion.
    pub(crate) fn live_at(&self, t: Instant, boundary: Boundary) -> Option<&Version> {
        self.as_of(t, boundary).filter(|v| !v.deleted)
    }

    /// Versions whose lastUpdated lies in the window the as-of rule cannot decide: between T and
    /// the end of the kickoff request (strict: [T, end]; inclusive: (T, end]).
    pub(crate) fn in_window(&self, t: Instant, end: Instant, boundary: Boundary) -> &[Version] {
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
