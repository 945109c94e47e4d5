//! The fast path of history parsing: one pass over a line that keeps only what the index needs —
//! by the quick reader in `skim` when it accepts the line, else by a serde visitor that skips
//! unneeded fields as `IgnoredAny`. Top-level fields are borrowed from the line (`Raw`,
//! `Cow<str>`); only the few captured fields are read further (meta, compartment paths down to
//! their reference nodes: quickly where `skim` can, by serde_json where it doubts). It gives the
//! same versions as the `serde_json::Value` path in `history`, which stays the reference (and is
//! used for pretty-printed documents).

mod fields;
mod paths;
mod skim;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::detail::{detail_of, DETAIL_FIELDS, DETAIL_TYPES};
use super::document::{bundle_entry, parse_time};
use super::messages::{self as msg, Unreadable};
use super::ParseOptions;
use crate::error::describe_json_error;
use crate::fhir::compartment;
use crate::timestamp::Instant;
use crate::version::{Entry, Source, VersionBatch, VersionFacts, VersionId};
pub(crate) use fields::Interesting;
use fields::{serde_fields, Fields, Raw, Str};
use paths::patients_in_raw;
#[cfg(feature = "hooks")]
pub(super) use {fields::serde_fields as serde_fields_for_hooks, skim::fields as skim_fields};

/// Why a line could not be read: a JSON error (with its position), a description, or a
/// timestamp without an offset read without `--tz`.
pub(crate) enum ScanError {
    Json(serde_json::Error),
    Shape(String),
    NoZone,
}

impl From<Unreadable> for ScanError {
    fn from(u: Unreadable) -> Self {
        match u {
            Unreadable::Shape(s) => ScanError::Shape(s),
            Unreadable::NoZone => ScanError::NoZone,
        }
    }
}

impl From<String> for ScanError {
    fn from(s: String) -> Self {
        ScanError::Shape(s)
    }
}

impl From<&str> for ScanError {
    fn from(s: &str) -> Self {
        ScanError::Shape(s.to_string())
    }
}

/// The fields of one JSON object: by the quick reader when it accepts the bytes, else by
/// serde_json, which decides and words the error.
fn fields<'a>(bytes: &'a [u8], interesting: &Interesting) -> Result<Fields<'a>, serde_json::Error> {
    match skim::fields(bytes, interesting) {
        Some(f) => Ok(f),
        None => serde_fields(bytes, interesting),
    }
}

fn raw_fields<'a>(raw: Raw<'a>, interesting: &Interesting) -> Result<Fields<'a>, String> {
    fields(raw.get().as_bytes(), interesting).map_err(|e| describe_json_error(&e))
}

fn string<'a>(raw: Option<Raw<'a>>) -> Option<Cow<'a, str>> {
    let r = raw?;
    // A string without escapes is its text between the quotes; anything else is decoded by
    // serde_json (which refuses what is no string).
    if let Some(Some(text)) = skim::plain_string(r.get()) {
        return Some(Cow::Borrowed(text));
    }
    serde_json::from_str::<Str<'a>>(r.get()).ok().map(|s| s.0)
}

/// A string or a non-negative integer, as text (ids, versionIds, txids).
fn id_text(raw: Option<Raw<'_>>) -> Option<Cow<'_, str>> {
    let r = raw?;
    let s = r.get();
    if s.starts_with('"') {
        string(Some(r)).filter(|s| !s.is_empty())
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        Some(Cow::Borrowed(s))
    } else {
        None
    }
}

/// Parses one history line on the fast path, adding its versions to `out`.
pub(crate) fn scan_line(
    line: &[u8],
    src: Source,
    opts: &ParseOptions,
    interesting: &Interesting,
    out: &mut VersionBatch,
) -> Result<(), ScanError> {
    let mut f = Fields::default();
    if skim::fields_into(line, interesting, &mut f).is_none() {
        f = serde_fields(line, interesting).map_err(ScanError::Json)?;
    }
    if f.row_type.is_some() {
        row(&f, src, opts, interesting, out)?;
        return Ok(());
    }
    let rtype = string(f.resource_type);
    match rtype.as_deref() {
        Some("Bundle") if string(f.kind).as_deref() == Some("history") => {
            let Some(entries) = f.entry else { return Ok(()) };
            let list: Vec<&RawValue> =
                serde_json::from_str(entries.get()).map_err(|_| ScanError::Shape(msg::ENTRY_NOT_ARRAY.into()))?;
            for (i, e) in list.iter().enumerate() {
                let ef = raw_fields(Raw(e.get()), interesting).map_err(|m| Unreadable::from(m).in_entry(i))?;
                let src = Source { entry: Some(Entry::at(i)?), ..src };
                entry(&ef, Raw(e.get()), src, opts, interesting, out).map_err(|m| m.in_entry(i))?;
            }
            Ok(())
        }
        Some(t) => {
            resource(&f, t, line, src, opts, out)?;
            Ok(())
        }
        None if rtype.is_none() && f.resource_type.is_some() => Err(msg::RESOURCE_TYPE_NOT_STRING.into()),
        None if f.request.is_some() || f.response.is_some() || f.resource.is_some() => {
            let raw: &RawValue = serde_json::from_slice(line).map_err(ScanError::Json)?;
            entry(&f, Raw(raw.get()), src, opts, interesting, out)?;
            Ok(())
        }
        None => Err(msg::NOT_A_DOCUMENT.into()),
    }
}

/// A resource with `meta`: identity from the captured fields, patients from the captured
/// compartment fields.
fn resource(
    f: &Fields,
    rtype: &str,
    whole: &[u8],
    src: Source,
    opts: &ParseOptions,
    out: &mut VersionBatch,
) -> Result<(), Unreadable> {
    let id = match f.id {
        Some(r) if r.get().starts_with('"') => string(Some(r)).ok_or("id is not a string")?,
        Some(_) => return Err(format!("{rtype} resource whose id is not a string").into()),
        None => return Err(msg::resource_without_id(rtype)),
    };
    let no_meta = || msg::resource_without_meta(rtype, &id);
    let (version_id, last_updated) = match f.meta {
        Some(m) => match quick_meta(m) {
            Some(found) => found,
            None => {
                let meta: std::collections::BTreeMap<String, &RawValue> =
                    serde_json::from_str(m.get()).map_err(|_| no_meta())?;
                (meta.get("versionId").map(|r| Raw::from(*r)), meta.get("lastUpdated").map(|r| Raw::from(*r)))
            }
        },
        None => return Err(no_meta()),
    };
    let vid = id_text(version_id).ok_or_else(|| msg::meta_without_version_id(rtype, &id))?;
    let lu = string(last_updated).ok_or_else(|| msg::meta_without_last_updated(rtype, &id))?;
    let last_updated = parse_time(&lu, || msg::time_field(rtype, &id, "meta.lastUpdated"), &opts.zone)?;
    finish(rtype, &id, VersionId::parse(&vid), last_updated, false, src, f, Body::Whole(whole), opts, out)
}

/// `meta.versionId` and `meta.lastUpdated` by the quick reader (the last of a repeated field, as
/// `serde_json::Value` keeps); `None` when serde_json must decide (not an object, a doubtful key).
fn quick_meta(meta: Raw) -> Option<(Option<Raw>, Option<Raw>)> {
    let (mut version_id, mut last_updated) = (None, None);
    skim::for_each_member(meta.get(), |k, v| {
        let slot = match k {
            "versionId" => &mut version_id,
            "lastUpdated" => &mut last_updated,
            _ => return Some(()),
        };
        *slot = Some(Raw(v));
        Some(())
    })?;
    Some((version_id, last_updated))
}

/// The tenant a captured `meta` marks its version with, by the reference reading's rule (read
/// only when the text names a tenant at all).
fn tenant_of(meta: Option<Raw>) -> Result<Option<String>, Unreadable> {
    match meta {
        Some(m) if m.get().contains("tenant") => {
            let value: Value = serde_json::from_str(m.get()).map_err(|e| describe_json_error(&e))?;
            Ok(super::document::tenant_in_meta(&value))
        }
        _ => Ok(None),
    }
}

/// Where the full body is, for the `referenced` policy's walk over every reference.
enum Body<'a> {
    Whole(&'a [u8]),
    Raw(Raw<'a>),
    None,
}

/// An Aidbox history-table row.
fn row(
    f: &Fields,
    src: Source,
    opts: &ParseOptions,
    interesting: &Interesting,
    out: &mut VersionBatch,
) -> Result<(), Unreadable> {
    let rtype = string(f.row_type).ok_or(msg::ROW_TYPE_NOT_STRING)?.into_owned();
    let id = match f.id {
        None => return Err(msg::row_without_id(&rtype)),
        Some(r) => id_text(Some(r)).ok_or(msg::ROW_ID_NOT_STRING)?.into_owned(),
    };
    let txid = f.txid.ok_or_else(|| msg::row_without_txid(&rtype, &id))?;
    let version_id = match id_text(Some(txid)) {
        Some(t) => VersionId::parse(&t),
        None => return Err(msg::txid_not_number(&rtype, &id)),
    };
    let ts = string(f.ts).ok_or_else(|| msg::row_without_ts(&rtype, &id))?;
    let last_updated = parse_time(&ts, || msg::time_field(&rtype, &id, "ts"), &opts.zone)?;
    let deleted = string(f.status).as_deref() == Some("deleted");
    let body = f.resource.filter(|r| r.get().starts_with('{'));
    if body.is_none() && !deleted {
        return Err(msg::row_without_resource(&rtype, &id));
    }
    let inner = match body {
        Some(b) => raw_fields(b, interesting).map_err(|m| format!("{rtype}/{id}: resource: {m}"))?,
        None => Fields::default(),
    };
    match body {
        Some(b) if !deleted => {
            finish(&rtype, &id, version_id, last_updated, false, src, &inner, Body::Raw(b), opts, out)
        }
        // A deletion row carries the last body: only its tenant marker is read.
        _ => finish(&rtype, &id, version_id, last_updated, true, src, &inner, Body::None, opts, out),
    }
}

/// A Bundle entry: with a resource on the fast path; a deletion through the reference path.
fn entry(
    f: &Fields,
    raw: Raw,
    src: Source,
    opts: &ParseOptions,
    interesting: &Interesting,
    out: &mut VersionBatch,
) -> Result<(), Unreadable> {
    #[derive(Deserialize)]
    struct Request<'a> {
        #[serde(borrow)]
        method: Option<Cow<'a, str>>,
    }
    let method = f
        .request
        .and_then(|r| serde_json::from_str::<Request>(r.get()).ok())
        .and_then(|r| r.method)
        .map(|m| m.to_ascii_uppercase())
        .unwrap_or_default();
    if method == "DELETE" {
        let value: Value = serde_json::from_str(raw.get()).map_err(|e| describe_json_error(&e))?;
        let Value::Object(obj) = value else { return Err("a Bundle entry is not an object".into()) };
        out.push(bundle_entry(&obj, src, opts)?);
        return Ok(());
    }
    let Some(res) = f.resource.filter(|r| r.get().starts_with('{')) else {
        return Err(msg::entry_without_resource(&method));
    };
    let rf = raw_fields(res, interesting)?;
    let rtype = string(rf.resource_type).ok_or(msg::RESOURCE_TYPE_NOT_STRING)?;
    resource(&rf, &rtype, res.get().as_bytes(), src, opts, out)
}

#[allow(clippy::too_many_arguments)]
fn finish(
    rtype: &str,
    id: &str,
    version_id: VersionId,
    last_updated: Instant,
    deleted: bool,
    src: Source,
    f: &Fields,
    body: Body,
    opts: &ParseOptions,
    out: &mut VersionBatch,
) -> Result<(), Unreadable> {
    // Borrowed from the line where the quick walk reads them.
    let mut patients: Vec<Cow<str>> = Vec::new();
    let mut references: Vec<(Cow<str>, Cow<str>)> = Vec::new();
    let mut detail = None;
    if !deleted {
        if rtype == "Patient" {
            patients.push(Cow::Borrowed(id));
        }
        let detail_type = DETAIL_TYPES.contains(&rtype);
        let mut detail_fields = Map::new();
        // The type's compartment paths, looked up once per version.
        let paths = opts.compartment.paths.get(rtype).map(Vec::as_slice);
        if paths.is_some() || detail_type {
            for (i, (key, raw)) in f.others.iter().enumerate() {
                let needed_for_detail = detail_type && DETAIL_FIELDS.contains(&key.as_ref());
                if !needed_for_detail && !paths.is_some_and(|p| p.iter().any(|path| path[0].follows(key).is_some())) {
                    continue;
                }
                // A key repeated in the object: serde_json's Value, the reference reading,
                // keeps the last value, so only the last one's patients count. Every value is
                // still read, as strictly as the last.
                let superseded = f.others[i + 1..].iter().any(|(later, _)| later == key);
                let before = patients.len();
                if needed_for_detail {
                    let value: Value = serde_json::from_str(raw.get()).map_err(|e| describe_json_error(&e))?;
                    let mut found = Vec::new();
                    opts.compartment.patients_in_field(rtype, key, &value, &mut found);
                    patients.extend(found.into_iter().map(Cow::Owned));
                    detail_fields.insert(key.to_string(), value);
                } else if let Some(paths) = paths {
                    patients_in_raw(paths, key, *raw, &mut patients)?;
                }
                if superseded {
                    patients.truncate(before);
                }
            }
        }
        patients.sort();
        patients.dedup();
        if detail_type {
            if rtype == "BulkExportStatus" {
                if let Some(s) = f.status {
                    detail_fields.insert("status".into(), serde_json::from_str(s.get()).unwrap_or(Value::Null));
                }
            }
            detail = detail_of(rtype, &Value::Object(detail_fields), &opts.zone)?.map(Box::new);
        }
        if opts.keep_references && paths.is_some() {
            let text = match body {
                Body::Whole(b) => std::str::from_utf8(b).ok(),
                Body::Raw(r) => Some(r.get()),
                Body::None => None,
            };
            let mut found = Vec::new();
            if let Some(()) = text.and_then(|t| skim::references(t, &mut found)) {
                found.sort_unstable();
                found.dedup();
                references = found.into_iter().map(|(t, i)| (Cow::Borrowed(t), Cow::Borrowed(i))).collect();
            } else if let Some(w) = text.and_then(|t| serde_json::from_str::<Value>(t).ok()) {
                // What the quick walk leaves to serde_json (escapes, repeated keys): the body
                // read whole, as the general reading does. A body that is no UTF-8 is no JSON
                // serde_json reads into a Value either.
                references =
                    compartment::all_references(&w).into_iter().map(|(t, i)| (Cow::Owned(t), Cow::Owned(i))).collect();
            }
        }
    }
    let tenant = tenant_of(f.meta)?;
    out.push_parts(
        rtype,
        id,
        tenant.as_deref(),
        &patients,
        &references,
        VersionFacts { version_id, last_updated, deleted, source: src, detail },
    );
    Ok(())
}
