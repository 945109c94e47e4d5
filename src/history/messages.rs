//! The words of history reading errors, shared by the fast path and the reference reading so
//! that both name a problem alike (the fuzz target compares what they say).

use std::fmt::Display;

pub(super) const NOT_A_DOCUMENT: &str =
    "a JSON object that is no history row (resource_type), resource (resourceType) or Bundle entry (request/response)";
pub(super) const ROW_TYPE_NOT_STRING: &str = "history row whose resource_type is not a string";
pub(super) const ROW_ID_NOT_STRING: &str = "history row whose id is not a string";
pub(super) const RESOURCE_TYPE_NOT_STRING: &str = "resourceType is not a string";
pub(super) const ENTRY_NOT_ARRAY: &str = "history Bundle whose entry is not an array";

pub(super) fn row_without_id(rtype: impl Display) -> Unreadable {
    Unreadable::Shape(format!("{rtype} history row without id"))
}

pub(super) fn row_without_txid(rtype: impl Display, id: impl Display) -> Unreadable {
    Unreadable::Shape(format!("{rtype}/{id}: history row without txid"))
}

pub(super) fn txid_not_number(rtype: impl Display, id: impl Display) -> Unreadable {
    Unreadable::Shape(format!("{rtype}/{id}: txid is not a number"))
}

pub(super) fn row_without_ts(rtype: impl Display, id: impl Display) -> Unreadable {
    Unreadable::Shape(format!("{rtype}/{id}: history row without ts"))
}

pub(super) fn row_without_resource(rtype: impl Display, id: impl Display) -> Unreadable {
    Unreadable::Shape(format!("{rtype}/{id}: history row without a resource object"))
}

pub(super) fn resource_without_id(rtype: impl Display) -> Unreadable {
    Unreadable::Shape(format!("{rtype} resource without id"))
}

pub(super) fn resource_without_meta(rtype: impl Display, id: impl Display) -> Unreadable {
    Unreadable::Shape(format!("{rtype}/{id}: resource without meta (no versionId/lastUpdated)"))
}

pub(super) fn meta_without_version_id(rtype: impl Display, id: impl Display) -> Unreadable {
    Unreadable::Shape(format!("{rtype}/{id}: meta without versionId"))
}

pub(super) fn meta_without_last_updated(rtype: impl Display, id: impl Display) -> Unreadable {
    Unreadable::Shape(format!("{rtype}/{id}: meta without lastUpdated"))
}

/// A field holding a time, as an unreadable time's message names it.
pub(super) fn time_field(rtype: impl Display, id: impl Display, field: &str) -> String {
    format!("{rtype}/{id} {field}")
}

pub(super) fn entry_without_resource(method: &str) -> Unreadable {
    Unreadable::Shape(format!("{} entry without a resource", if method.is_empty() { "a" } else { method }))
}

pub(super) fn in_entry(i: usize, what: impl Display) -> String {
    format!("history Bundle entry {i}: {what}")
}

/// Why one history document or line cannot be read: what is wrong with it (in the words above),
/// or a timestamp without an offset read without `--tz`, which stops the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unreadable {
    Shape(String),
    NoZone,
}

impl Unreadable {
    /// The same problem, said of a history Bundle's entry `i`.
    pub(super) fn in_entry(self, i: usize) -> Unreadable {
        match self {
            Unreadable::Shape(m) => Unreadable::Shape(in_entry(i, m)),
            no_zone => no_zone,
        }
    }
}

impl From<String> for Unreadable {
    fn from(m: String) -> Self {
        Unreadable::Shape(m)
    }
}

impl From<&str> for Unreadable {
    fn from(m: &str) -> Self {
        Unreadable::Shape(m.to_string())
    }
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unreadable::Shape(m) => f.write_str(m),
            Unreadable::NoZone => f.write_str("a timestamp without a UTC offset, and no --tz"),
        }
    }
}

#[cfg(test)]
impl PartialEq<&str> for Unreadable {
    fn eq(&self, other: &&str) -> bool {
        matches!(self, Unreadable::Shape(m) if m == other)
    }
}
