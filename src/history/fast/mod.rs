//! The fast path of history parsing: one pass over a line that keeps only what the index needs —
//! by the quick reader in `skim` when it accepts the line, else by a serde visitor that skips
//! unneeded fields as `IgnoredAny`. Top-level fields are borrowed from the line (`Raw`,
//! `Cow<str>`); only the few captured fields are read further (meta, compartment paths down to
//! their reference nodes: quickly where `skim` can, by serde_json where it doubts). It gives the
//! same versions as the `serde_json::Value` path in `history`, which stays the reference (and is
//! used for pretty-printed documents).

mod fields;
mod skim;

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::detail::{detail_of, DETAIL_FIELDS, DETAIL_TYPES};
use super::document::{bundle_entry, parse_time};
use super::messages::{self as msg, Unreadable};
use super::ParseOptions;
use crate::error::describe_json_error;
use crate::rules::compartment::{self, Step};
use crate::timestamp::Instant;
use crate::version::{Entry, Source, VersionBatch, VersionFacts, VersionId};
pub(crate) use fields::Interesting;
use fields::{serde_fields, Fields, Raw, Str};
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
    match body {
        Some(b) if !deleted => {
            let inner = raw_fields(b, interesting).map_err(|m| format!("{rtype}/{id}: resource: {m}"))?;
            finish(&rtype, &id, version_id, last_updated, false, src, &inner, Body::Raw(b), opts, out)
        }
        _ => finish(&rtype, &id, version_id, last_updated, true, src, &Fields::default(), Body::None, opts, out),
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
    out.push_parts(
        rtype,
        id,
        &patients,
        &references,
        VersionFacts { version_id, last_updated, deleted, source: src, detail },
    );
    Ok(())
}

/// The patients on this type's compartment paths inside one captured top-level field, walked
/// straight off the raw JSON: only the reference nodes at the ends of the paths are read.
fn patients_in_raw<'a>(
    paths: &[Vec<Step>],
    key: &str,
    raw: Raw<'a>,
    out: &mut Vec<Cow<'a, str>>,
) -> Result<(), Unreadable> {
    for path in paths {
        let (first, rest) = path.split_first().expect("paths have a step");
        let Some(choice) = first.follows(key) else { continue };
        let before = out.len();
        if walk_quick(raw.get(), rest, choice, out).is_none() {
            // Something the quick walk leaves to serde_json (an escaped string or key).
            out.truncate(before);
            let mut de = serde_json::Deserializer::from_str(raw.get());
            let mut found = Vec::new();
            PathSeed { rest, choice, out: &mut found }.deserialize(&mut de).map_err(|e| describe_json_error(&e))?;
            out.extend(found.into_iter().map(Cow::Owned));
        }
    }
    Ok(())
}

/// [`PathSeed`]'s walk by the quick reader, over text already known to be valid JSON; `None`
/// when in doubt (then `PathSeed` walks it again).
fn walk_quick<'a>(raw: &'a str, rest: &[Step], choice: Option<&str>, out: &mut Vec<Cow<'a, str>>) -> Option<()> {
    use skim::{for_each_element, for_each_member, plain_string};
    match raw.as_bytes().first() {
        Some(b'[') => for_each_element(raw, |e| walk_quick(e, rest, choice, out)),
        Some(b'{') => {
            // A key on the path repeated in one object: serde_json's Value keeps the last value,
            // and so does `PathSeed`, which reads what this walk doubts.
            if let Some(choice) = choice {
                let mut seen = false;
                return for_each_member(raw, |k, v| match k == choice {
                    true if std::mem::replace(&mut seen, true) => None,
                    true => walk_quick(v, rest, None, out),
                    false => Some(()),
                });
            }
            let Some((step, rest)) = rest.split_first() else {
                let (mut reference, mut rtype, mut id, mut uri) = (None, None, None, None);
                for_each_member(raw, |k, v| {
                    let slot = match k {
                        "reference" => &mut reference,
                        "resourceType" => &mut rtype,
                        "id" => &mut id,
                        "uri" => &mut uri,
                        _ => return Some(()),
                    };
                    *slot = plain_string(v)?;
                    Some(())
                })?;
                out.extend(patient_of_node(reference, rtype, id, uri).map(Cow::Borrowed));
                return Some(());
            };
            let mut seen: smallvec::SmallVec<[&str; 2]> = smallvec::SmallVec::new();
            for_each_member(raw, |k, v| match step.follows(k) {
                Some(_) if seen.contains(&k) => None,
                Some(choice) => {
                    seen.push(k);
                    walk_quick(v, rest, choice, out)
                }
                None => Some(()),
            })
        }
        // A scalar where the path goes on: `PathSeed` reads it, so a string with escapes (a lone
        // surrogate is an error) and a number (one too large for f64 is an error) are left to it.
        Some(b'"') => (!raw.contains('\\')).then_some(()),
        Some(b'-' | b'0'..=b'9') => None,
        _ => Some(()),
    }
}

/// The Patient a reference node names, by `compartment::reference_of_fields`.
fn patient_of_node<'s>(
    reference: Option<&'s str>,
    rtype: Option<&'s str>,
    id: Option<&'s str>,
    uri: Option<&'s str>,
) -> Option<&'s str> {
    compartment::reference_of_fields(reference, rtype, id, uri).filter(|(t, _)| *t == "Patient").map(|(_, i)| i)
}

/// Walks the rest of a compartment path through objects and arrays; at its end, reads a
/// reference node (`reference`, `resourceType`+`id`, `uri`) and records a Patient it names.
/// `choice`: the Aidbox spelling of a choice element, `{"Reference": …}`, is stepped into first.
struct PathSeed<'p, 'o> {
    rest: &'p [Step],
    choice: Option<&'p str>,
    out: &'o mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for PathSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PathSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(PathSeed { rest: self.rest, choice: self.choice, out: &mut *self.out })?.is_some() {
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // A key on the path repeated in one object: every value is read, the last one counts,
        // as in serde_json's Value.
        if let Some(choice) = self.choice {
            let mut last = None;
            while let Some(key) = map.next_key::<Str<'de>>()? {
                if key.0 == choice {
                    let mut found = Vec::new();
                    map.next_value_seed(PathSeed { rest: self.rest, choice: None, out: &mut found })?;
                    last = Some(found);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            self.out.extend(last.into_iter().flatten());
            return Ok(());
        }
        let Some((step, rest)) = self.rest.split_first() else {
            // A reference node.
            let (mut reference, mut rtype, mut id, mut uri) = (None, None, None, None);
            while let Some(key) = map.next_key::<Str<'de>>()? {
                let slot = match key.0.as_ref() {
                    "reference" => &mut reference,
                    "resourceType" => &mut rtype,
                    "id" => &mut id,
                    "uri" => &mut uri,
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                };
                *slot = map.next_value::<Option<StrOrOther<'de>>>()?.and_then(|s| s.0);
            }
            self.out.extend(
                patient_of_node(reference.as_deref(), rtype.as_deref(), id.as_deref(), uri.as_deref())
                    .map(str::to_string),
            );
            return Ok(());
        };
        let mut by_key: Vec<(Cow<'de, str>, Vec<String>)> = Vec::new();
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match step.follows(&key.0) {
                Some(choice) => {
                    let mut found = Vec::new();
                    map.next_value_seed(PathSeed { rest, choice, out: &mut found })?;
                    match by_key.iter_mut().find(|(k, _)| *k == key.0) {
                        Some(earlier) => earlier.1 = found,
                        None => by_key.push((key.0, found)),
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        self.out.extend(by_key.into_iter().flat_map(|(_, found)| found));
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A string, or `None` for any other JSON value in its place.
struct StrOrOther<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for StrOrOther<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrOrOther<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(StrOrOther(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrOrOther(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(StrOrOther(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(StrOrOther(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(StrOrOther(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(StrOrOther(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(StrOrOther(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(StrOrOther(None))
            }
        }
        d.deserialize_any(V)
    }
}
