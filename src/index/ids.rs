//! Dense numbers for strings (types, patient ids, referenced ids) and the table of resource
//! numbers by (type, id).

use rustc_hash::FxHashMap as HashMap;

use super::Resource;

/// Interns strings as dense u32 ids.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    pub(crate) names: Vec<Box<str>>,
    index: HashMap<Box<str>, u32>,
}

impl Interner {
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.into());
        self.index.insert(s.into(), i);
        i
    }

    pub(crate) fn get(&self, s: &str) -> Option<u32> {
        self.index.get(s).copied()
    }
}

/// Resource numbers by (type, id, tenant) — the hash is of (type, id), so the tenants' copies of
/// one id share a chain: the table stores each number with 32 bits of its hash, the
/// ids stay in the resources. Growing the table rehashes from the stored bits, without
/// reading any id again (each read was a cache miss), and a lookup compares ids only when
/// those bits match.
#[derive(Default)]
pub(super) struct IdIndex {
    /// (resource number, hash bits).
    pub(super) table: hashbrown::HashTable<(u32, u32)>,
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
    pub(super) fn find(&self, resources: &[Resource], resource_type: u32, id: &str, tenant: u32) -> Option<u32> {
        let bits = id_hash(resource_type, id);
        self.table
            .find(spread(bits), |&(i, b)| {
                b == bits && {
                    let r = &resources[i as usize];
                    r.resource_type == resource_type && r.tenant == tenant && &*r.id == id
                }
            })
            .map(|&(i, _)| i)
    }

    pub(super) fn insert(&mut self, resources: &[Resource], i: u32) {
        let r = &resources[i as usize];
        let bits = id_hash(r.resource_type, &r.id);
        self.table.insert_unique(spread(bits), (i, bits), |&(_, b)| spread(b));
    }
}
