//! The fast path of history parsing: one pass over a line that keeps only what the index needs —
//! by the quick reader in `skim` when it accepts the line, else by a serde visitor that skips
//! unneeded fields as `IgnoredAny`. Top-level fields are borrowed from the line (`Raw`,
//! `Cow<str>`); only the few captured fields are read further (meta, compartment paths down to
//! their reference nodes: quickly where `skim` can, by serde_json where it doubts). It gives the
//! same versions as the `serde_json::Value` path in `history`, which stays the reference (and is
//! used for pretty-printed documents).

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{ParseOptions, Source, VersionBatch, VersionFacts, VersionId};
use crate::timestamp::Instant;

/// A string borrowed from the line when it has no escapes.
struct Str<'a>(Cow<'a, str>);

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
pub struct Interesting {
    by_len: Vec<Vec<String>>,
}

impl Interesting {
    pub fn new(first_steps: Vec<String>) -> Interesting {
        let mut keys = first_steps;
        keys.extend(["member", "scope", "requester", "transactionTime", "params", "output"].map(String::from));
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
        self.by_len.get(key.len()).is_some_and(|ks| ks.iter().any(|k| k.as_bytes().first().copied() == first && k.as_bytes() == key))
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

/// Why a line could not be read: a JSON error (with its position) or a description.
pub enum ScanError {
    Json(serde_json::Error),
    Shape(String),
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
    match super::skim::fields(bytes, interesting) {
        Some(f) => Ok(f),
        None => serde_fields(bytes, interesting),
    }
}

/// The fields of one JSON object, read by serde_json.
pub(super) fn serde_fields<'a>(bytes: &'a [u8], interesting: &Interesting) -> Result<Fields<'a>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let f = FieldsSeed { interesting }.deserialize(&mut de)?;
    de.end()?;
    Ok(f)
}

fn raw_fields<'a>(raw: Raw<'a>, interesting: &Interesting) -> Result<Fields<'a>, String> {
    fields(raw.get().as_bytes(), interesting).map_err(|e| crate::error::describe_json_error(&e))
}

fn string<'a>(raw: Option<Raw<'a>>) -> Option<Cow<'a, str>> {
    let r = raw?;
    // A string without escapes is its text between the quotes; anything else is decoded by
    // serde_json (which refuses what is no string).
    if let Some(Some(text)) = super::skim::plain_string(r.get()) {
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
pub fn scan_line(line: &[u8], src: Source, opts: &ParseOptions, interesting: &Interesting, out: &mut VersionBatch) -> Result<(), ScanError> {
    let mut f = Fields::default();
    if super::skim::fields_into(line, interesting, &mut f).is_none() {
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
            let list: Vec<&RawValue> = serde_json::from_str(entries.get()).map_err(|_| ScanError::Shape("history Bundle whose entry is not an array".into()))?;
            for (i, e) in list.iter().enumerate() {
                let ef = raw_fields(Raw(e.get()), interesting).map_err(|m| format!("history Bundle entry {i}: {m}"))?;
                let src = Source { entry: Some(super::Entry::at(i)?), ..src };
                entry(&ef, Raw(e.get()), src, opts, interesting, out).map_err(|m| format!("history Bundle entry {i}: {m}"))?;
            }
            Ok(())
        }
        Some(t) => {
            resource(&f, t, line, src, opts, out)?;
            Ok(())
        }
        None if rtype.is_none() && f.resource_type.is_some() => Err("resourceType is not a string".into()),
        None if f.request.is_some() || f.response.is_some() || f.resource.is_some() => {
            let raw: &RawValue = serde_json::from_slice(line).map_err(ScanError::Json)?;
            entry(&f, Raw(raw.get()), src, opts, interesting, out)?;
            Ok(())
        }
        None => Err("a JSON object that is no history row (resource_type), resource (resourceType) or Bundle entry (request/response)".into()),
    }
}

/// A resource with `meta`: identity from the captured fields, patients from the captured
/// compartment fields.
fn resource(f: &Fields, rtype: &str, whole: &[u8], src: Source, opts: &ParseOptions, out: &mut VersionBatch) -> Result<(), String> {
    let id = match f.id {
        Some(r) if r.get().starts_with('"') => string(Some(r)).ok_or("id is not a string")?,
        Some(_) => return Err(format!("{rtype} resource whose id is not a string")),
        None => return Err(format!("{rtype} resource without id")),
    };
    let no_meta = || format!("{rtype}/{id}: resource without meta (no versionId/lastUpdated)");
    let (version_id, last_updated) = match f.meta {
        Some(m) => match quick_meta(m) {
            Some(found) => found,
            None => {
                let meta: std::collections::BTreeMap<String, &RawValue> = serde_json::from_str(m.get()).map_err(|_| no_meta())?;
                (meta.get("versionId").map(|r| Raw::from(*r)), meta.get("lastUpdated").map(|r| Raw::from(*r)))
            }
        },
        None => return Err(no_meta()),
    };
    let vid = id_text(version_id).ok_or_else(|| format!("{rtype}/{id}: meta without versionId"))?;
    let lu = string(last_updated).ok_or_else(|| format!("{rtype}/{id}: meta without lastUpdated"))?;
    let last_updated = super::parse_time(&lu, || format!("{rtype}/{id} meta.lastUpdated"), &opts.zone)?;
    finish(rtype, &id, VersionId::parse(&vid), last_updated, false, src, f, Body::Whole(whole), opts, out)
}

/// `meta.versionId` and `meta.lastUpdated` by the quick reader (the last of a repeated field, as
/// `serde_json::Value` keeps); `None` when serde_json must decide (not an object, a doubtful key).
fn quick_meta(meta: Raw) -> Option<(Option<Raw>, Option<Raw>)> {
    let (mut version_id, mut last_updated) = (None, None);
    super::skim::for_each_member(meta.get(), |k, v| {
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
fn row(f: &Fields, src: Source, opts: &ParseOptions, interesting: &Interesting, out: &mut VersionBatch) -> Result<(), String> {
    let rtype = string(f.row_type).ok_or("history row whose resource_type is not a string")?.into_owned();
    let id = match f.id {
        None => return Err(format!("{rtype} history row without id")),
        Some(r) => id_text(Some(r)).ok_or("history row whose id is not a string")?.into_owned(),
    };
    let txid = f.txid.ok_or_else(|| format!("{rtype}/{id}: history row without txid"))?;
    let version_id = match id_text(Some(txid)) {
        Some(t) => VersionId::parse(&t),
        None => return Err(format!("{rtype}/{id}: txid is not a number")),
    };
    let ts = string(f.ts).ok_or_else(|| format!("{rtype}/{id}: history row without ts"))?;
    let last_updated = super::parse_time(&ts, || format!("{rtype}/{id} ts"), &opts.zone)?;
    let deleted = string(f.status).as_deref() == Some("deleted");
    let body = f.resource.filter(|r| r.get().starts_with('{'));
    if body.is_none() && !deleted {
        return Err(format!("{rtype}/{id}: history row without a resource object"));
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
fn entry(f: &Fields, raw: Raw, src: Source, opts: &ParseOptions, interesting: &Interesting, out: &mut VersionBatch) -> Result<(), String> {
    #[derive(Deserialize)]
    struct Request<'a> {
        #[serde(borrow)]
        method: Option<Cow<'a, str>>,
    }
    let method = f.request.and_then(|r| serde_json::from_str::<Request>(r.get()).ok()).and_then(|r| r.method).map(|m| m.to_ascii_uppercase()).unwrap_or_default();
    if method == "DELETE" {
        let value: Value = serde_json::from_str(raw.get()).map_err(|e| crate::error::describe_json_error(&e))?;
        let Value::Object(obj) = value else { return Err("a Bundle entry is not an object".into()) };
        out.push(super::bundle_entry(&obj, src, opts)?);
        return Ok(());
    }
    let Some(res) = f.resource.filter(|r| r.get().starts_with('{')) else {
        return Err(format!("{} entry without a resource", if method.is_empty() { "a" } else { &method }));
    };
    let rf = raw_fields(res, interesting)?;
    let rtype = string(rf.resource_type).ok_or("resourceType is not a string")?;
    resource(&rf, &rtype, res.get().as_bytes(), src, opts, out)
}

#[allow(clippy::too_many_arguments)]
fn finish(rtype: &str, id: &str, version_id: VersionId, last_updated: Instant, deleted: bool, src: Source, f: &Fields, body: Body, opts: &ParseOptions, out: &mut VersionBatch) -> Result<(), String> {
    // Borrowed from the line where the quick walk reads them.
    let mut patients: Vec<Cow<str>> = Vec::new();
    let mut references: Vec<(Cow<str>, Cow<str>)> = Vec::new();
    let mut detail = None;
    if !deleted {
        if rtype == "Patient" {
            patients.push(Cow::Borrowed(id));
        }
        let detail_type = matches!(rtype, "Group" | "Client" | "BulkExportStatus");
        let mut detail_fields = Map::new();
        // The type's compartment paths, looked up once per version.
        let paths = opts.compartment.paths.get(rtype).map(Vec::as_slice);
        if paths.is_some() || detail_type {
            for (i, (key, raw)) in f.others.iter().enumerate() {
                let needed_for_detail = detail_type && matches!(key.as_ref(), "member" | "scope" | "requester" | "transactionTime" | "params" | "output" | "status");
                if !needed_for_detail && !paths.is_some_and(|p| p.iter().any(|path| path[0].follows(key).is_some())) {
                    continue;
                }
                // A key repeated in the object: serde_json's Value, the reference reading,
                // keeps the last value, so only the last one's patients count. Every value is
                // still read, as strictly as the last.
                let superseded = f.others[i + 1..].iter().any(|(later, _)| later == key);
                let before = patients.len();
                if needed_for_detail {
                    let value: Value = serde_json::from_str(raw.get()).map_err(|e| crate::error::describe_json_error(&e))?;
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
            detail = super::detail_of(rtype, &Value::Object(detail_fields), &opts.zone).map(Box::new);
        }
        if opts.keep_references && paths.is_some() {
            let text = match body {
                Body::Whole(b) => std::str::from_utf8(b).ok(),
                Body::Raw(r) => Some(r.get()),
                Body::None => None,
            };
            let mut found = Vec::new();
            if let Some(()) = text.and_then(|t| super::skim::references(t, &mut found)) {
                found.sort_unstable();
                found.dedup();
                references = found.into_iter().map(|(t, i)| (Cow::Borrowed(t), Cow::Borrowed(i))).collect();
            } else if let Some(w) = text.and_then(|t| serde_json::from_str::<Value>(t).ok()) {
                // What the quick walk leaves to serde_json (escapes, repeated keys): the body
                // read whole, as the general reading does. A body that is no UTF-8 is no JSON
                // serde_json reads into a Value either.
                references = crate::compartment::all_references(&w).into_iter().map(|(t, i)| (Cow::Owned(t), Cow::Owned(i))).collect();
            }
        }
    }
    out.push_parts(rtype, id, &patients, &references, VersionFacts { version_id, last_updated, deleted, source: src, detail });
    Ok(())
}

/// The patients on this type's compartment paths inside one captured top-level field, walked
/// straight off the raw JSON: only the reference nodes at the ends of the paths are read.
fn patients_in_raw<'a>(paths: &[Vec<crate::compartment::Step>], key: &str, raw: Raw<'a>, out: &mut Vec<Cow<'a, str>>) -> Result<(), String> {
    for path in paths {
        let (first, rest) = path.split_first().expect("paths have a step");
        let Some(choice) = first.follows(key) else { continue };
        let before = out.len();
        if walk_quick(raw.get(), rest, choice, out).is_none() {
            // Something the quick walk leaves to serde_json (an escaped string or key).
            out.truncate(before);
            let mut de = serde_json::Deserializer::from_str(raw.get());
            let mut found = Vec::new();
            PathSeed { rest, choice, out: &mut found }.deserialize(&mut de).map_err(|e| crate::error::describe_json_error(&e))?;
            out.extend(found.into_iter().map(Cow::Owned));
        }
    }
    Ok(())
}

/// [`PathSeed`]'s walk by the quick reader, over text already known to be valid JSON; `None`
/// when in doubt (then `PathSeed` walks it again).
fn walk_quick<'a>(raw: &'a str, rest: &[crate::compartment::Step], choice: Option<&str>, out: &mut Vec<Cow<'a, str>>) -> Option<()> {
    use super::skim::{for_each_element, for_each_member, plain_string};
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
fn patient_of_node<'s>(reference: Option<&'s str>, rtype: Option<&'s str>, id: Option<&'s str>, uri: Option<&'s str>) -> Option<&'s str> {
    crate::compartment::reference_of_fields(reference, rtype, id, uri).filter(|(t, _)| *t == "Patient").map(|(_, i)| i)
}

/// Walks the rest of a compartment path through objects and arrays; at its end, reads a
/// reference node (`reference`, `resourceType`+`id`, `uri`) and records a Patient it names.
/// `choice`: the Aidbox spelling of a choice element, `{"Reference": …}`, is stepped into first.
struct PathSeed<'p, 'o> {
    rest: &'p [crate::compartment::Step],
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
        while seq.next_element_seed(PathSeed { rest: self.rest, choice: self.choice, out: &mut *self.out })?.is_some() {}
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
            self.out.extend(patient_of_node(reference.as_deref(), rtype.as_deref(), id.as_deref(), uri.as_deref()).map(str::to_string));
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
