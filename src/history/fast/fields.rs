//! The top-level fields of one JSON object that any history form needs, borrowed from the line
//! (`Raw`), the keys worth capturing besides the fixed ones (`Interesting`), and their reading by
//! serde_json (what decides when the quick reader in `skim` doubts).

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::history::DETAIL_FIELDS;

/// A string borrowed from the line when it has no escapes.
pub(super) struct Str<'a>(pub(super) Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Str<'de>, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// A JSON value as it stands in the line, known to be well-formed JSON and UTF-8.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Raw<'a>(pub(super) &'a str);

impl<'a> Raw<'a> {
    pub(super) fn get(&self) -> &'a str {
        self.0
    }
}

impl<'a> From<&'a RawValue> for Raw<'a> {
    fn from(r: &'a RawValue) -> Raw<'a> {
        Raw(r.get())
    }
}

/// The top-level fields of one JSON object that any form of history document needs.
#[derive(Default, Debug)]
pub(crate) struct Fields<'a> {
    pub(super) resource_type: Option<Raw<'a>>,
    pub(super) id: Option<Raw<'a>>,
    pub(super) meta: Option<Raw<'a>>,
    pub(super) row_type: Option<Raw<'a>>,
    pub(super) txid: Option<Raw<'a>>,
    pub(super) ts: Option<Raw<'a>>,
    pub(super) status: Option<Raw<'a>>,
    pub(super) resource: Option<Raw<'a>>,
    pub(super) request: Option<Raw<'a>>,
    pub(super) response: Option<Raw<'a>>,
    pub(super) full_url: Option<Raw<'a>>,
    pub(super) kind: Option<Raw<'a>>,
    pub(super) entry: Option<Raw<'a>>,
    /// Fields a compartment path or a detail starts with.
    pub(super) others: smallvec::SmallVec<[(Cow<'a, str>, Raw<'a>); 6]>,
}

impl<'a> Fields<'a> {
    /// The slot of a fixed top-level field, by its key; `None` for any other key. The quick
    /// reader and the serde reading both fill the fields through it.
    #[inline]
    pub(super) fn slot(&mut self, key: &[u8]) -> Option<&mut Option<Raw<'a>>> {
        Some(match key {
            b"resourceType" => &mut self.resource_type,
            b"id" => &mut self.id,
            b"meta" => &mut self.meta,
            b"resource_type" => &mut self.row_type,
            b"txid" => &mut self.txid,
            b"ts" => &mut self.ts,
            b"status" => &mut self.status,
            b"resource" => &mut self.resource,
            b"request" => &mut self.request,
            b"response" => &mut self.response,
            b"fullUrl" => &mut self.full_url,
            b"type" => &mut self.kind,
            b"entry" => &mut self.entry,
            _ => return None,
        })
    }
}

/// Top-level keys to capture besides the fixed ones: compartment first steps and the fields of
/// Group, Client and BulkExportStatus details.
/// Keys are grouped by length, so most keys of a line are rejected without a comparison.
pub(crate) struct Interesting {
    by_len: Vec<Vec<String>>,
}

impl Interesting {
    pub(crate) fn new(first_steps: Vec<String>) -> Interesting {
        let mut keys = first_steps;
        keys.extend(DETAIL_FIELDS.map(String::from));
        keys.sort();
        keys.dedup();
        let mut by_len: Vec<Vec<String>> = Vec::new();
        for k in keys {
            if by_len.len() <= k.len() {
                by_len.resize(k.len() + 1, Vec::new());
            }
            by_len[k.len()].push(k);
        }
        Interesting { by_len }
    }

    pub(super) fn contains(&self, key: &str) -> bool {
        self.contains_bytes(key.as_bytes())
    }

    pub(super) fn contains_bytes(&self, key: &[u8]) -> bool {
        let first = key.first().copied();
        self.by_len
            .get(key.len())
            .is_some_and(|ks| ks.iter().any(|k| k.as_bytes().first().copied() == first && k.as_bytes() == key))
    }
}

struct FieldsSeed<'o> {
    interesting: &'o Interesting,
}

impl<'de> DeserializeSeed<'de> for FieldsSeed<'_> {
    type Value = Fields<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Fields<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldsSeed<'_> {
    type Value = Fields<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut f = Fields::default();
        while let Some(key) = map.next_key::<Str<'de>>()? {
            if let Some(slot) = f.slot(key.0.as_bytes()) {
                *slot = Some(map.next_value::<&'de RawValue>()?.into());
            } else if self.interesting.contains(&key.0) {
                let v = map.next_value::<&'de RawValue>()?;
                f.others.push((key.0, v.into()));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(f)
    }
}

/// The fields of one JSON object, read by serde_json.
pub(crate) fn serde_fields<'a>(bytes: &'a [u8], interesting: &Interesting) -> Result<Fields<'a>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let f = FieldsSeed { interesting }.deserialize(&mut de)?;
    de.end()?;
    Ok(f)
}
