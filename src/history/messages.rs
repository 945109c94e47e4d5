//! The words of history reading errors, shared by the fast path and the reference reading so
//! that both name a problem alike (the fuzz target compares what they say).

use std::fmt::Display;

pub(super) const NOT_A_DOCUMENT: &str =
    "a JSON object that is no history row (resource_type), resource (resourceType) or Bundle entry (request/response)";
pub(super) const ROW_TYPE_NOT_STRING: &str = "history row whose resource_type is not a string";
pub(super) const ROW_ID_NOT_STRING: &str = "history row whose id is not a string";
pub(super) const RESOURCE_TYPE_NOT_STRING: &str = "resourceType is not a string";
pub(super) const ENTRY_NOT_ARRAY: &str = "history Bundle whose entry is not an array";

pub(super) fn row_without_id(rtype: impl Display) -> String {
    format!("{rtype} history row without id")
}

pub(super) fn row_without_txid(rtype: impl Display, id: impl Display) -> String {
    format!("{rtype}/{id}: history row without txid")
}

pub(super) fn txid_not_number(rtype: impl Display, id: impl Display) -> String {
    format!("{rtype}/{id}: txid is not a number")
}

pub(super) fn row_without_ts(rtype: impl Display, id: impl Display) -> String {
    format!("{rtype}/{id}: history row without ts")
}

pub(super) fn row_without_resource(rtype: impl Display, id: impl Display) -> String {
    format!("{rtype}/{id}: history row without a resource object")
}

pub(super) fn resource_without_id(rtype: impl Display) -> String {
    format!("{rtype} resource without id")
}

pub(super) fn resource_without_meta(rtype: impl Display, id: impl Display) -> String {
    format!("{rtype}/{id}: resource without meta (no versionId/lastUpdated)")
}

pub(super) fn meta_without_version_id(rtype: impl Display, id: impl Display) -> String {
    format!("{rtype}/{id}: meta without versionId")
}

pub(super) fn meta_without_last_updated(rtype: impl Display, id: impl Display) -> String {
    format!("{rtype}/{id}: meta without lastUpdated")
}

/// A field holding a time, as an unreadable time's message names it.
pub(super) fn time_field(rtype: impl Display, id: impl Display, field: &str) -> String {
    format!("{rtype}/{id} {field}")
}

pub(super) fn entry_without_resource(method: &str) -> String {
    format!("{} entry without a resource", if method.is_empty() { "a" } else { method })
}

pub(super) fn in_entry(i: usize, what: impl Display) -> String {
    format!("history Bundle entry {i}: {what}")
}
