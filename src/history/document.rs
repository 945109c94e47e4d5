//! The reference reading of history documents: one `serde_json::Value` per document (a history
//! row, a resource with `meta`, a history Bundle or a single Bundle entry) into versions. The fast
//! path in `fast` gives the same versions; this reading decides where it doubts, and reads
//! pretty-printed documents.

use crate::timestamp::Zone;
use serde_json::{Map, Value};

use super::detail::detail_of;
use super::messages::{self as msg, Unreadable};
use super::ParseOptions;
use crate::fhir::compartment;
use crate::timestamp::{self, Instant, TimeError};
use crate::version::{Entry, ParsedVersion, Source, VersionId};

/// The versions in one JSON document: a history-table row, a resource, a history Bundle or a
/// single Bundle entry.
pub(crate) fn versions_of_document(
    value: Value,
    src: Source,
    opts: &ParseOptions,
) -> Result<Vec<ParsedVersion>, Unreadable> {
    let Value::Object(obj) = value else {
        return Err("expected a JSON object (history row, resource, Bundle or Bundle entry)".into());
    };
    if obj.contains_key("resource_type") {
        return aidbox_row(obj, src, opts).map(|v| vec![v]);
    }
    match obj.get("resourceType").and_then(Value::as_str) {
        Some("Bundle") if obj.get("type").and_then(Value::as_str) == Some("history") => {
            let entries = match obj.get("entry") {
                None => return Ok(Vec::new()),
                Some(Value::Array(e)) => e,
                Some(_) => return Err(msg::ENTRY_NOT_ARRAY.into()),
            };
            let mut out = Vec::with_capacity(entries.len());
            for (i, e) in entries.iter().enumerate() {
                let Value::Object(e) = e else {
                    return Err(format!("history Bundle entry {i} is not an object").into());
                };
                let src = Source { entry: Some(Entry::at(i)?), ..src };
                out.push(bundle_entry(e, src, opts).map_err(|m| m.in_entry(i))?);
            }
            Ok(out)
        }
        Some(_) => resource_with_meta(&obj, src, opts).map(|v| vec![v]),
        None if obj.contains_key("request") || obj.contains_key("response") || obj.contains_key("resource") => {
            bundle_entry(&obj, src, opts).map(|v| vec![v])
        }
        None => Err(msg::NOT_A_DOCUMENT.into()),
    }
}

fn str_of<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

fn version_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// Parses a timestamp; `what` names it in the error (built only on failure).
pub(crate) fn parse_time(text: &str, what: impl FnOnce() -> String, zone: &Zone) -> Result<Instant, Unreadable> {
    timestamp::parse(text, zone).map_err(|e| match e {
        TimeError::NoZone => Unreadable::NoZone,
        TimeError::Unreadable(m) => Unreadable::Shape(format!("{}: {m}", what())),
    })
}

/// `{"id", "resource_type", "txid", "ts", "cts", "status", "resource"}`.
fn aidbox_row(obj: Map<String, Value>, src: Source, opts: &ParseOptions) -> Result<ParsedVersion, Unreadable> {
    let rtype = str_of(&obj, "resource_type").ok_or(msg::ROW_TYPE_NOT_STRING)?.to_string();
    let id = match obj.get("id") {
        Some(v) => version_text(v).ok_or(msg::ROW_ID_NOT_STRING)?,
        None => return Err(msg::row_without_id(&rtype)),
    };
    let txid = obj.get("txid").ok_or_else(|| msg::row_without_txid(&rtype, &id))?;
    let version_id = match txid {
        Value::Number(n) if n.is_u64() => VersionId::Number(n.as_u64().unwrap_or_default()),
        Value::String(s) if !s.is_empty() => VersionId::parse(s),
        _ => return Err(msg::txid_not_number(&rtype, &id)),
    };
    let ts = str_of(&obj, "ts").ok_or_else(|| msg::row_without_ts(&rtype, &id))?;
    let last_updated = parse_time(ts, || msg::time_field(&rtype, &id, "ts"), &opts.zone)?;
    let deleted = str_of(&obj, "status") == Some("deleted");
    let body = obj.get("resource").filter(|b| b.is_object());
    if body.is_none() && !deleted {
        return Err(msg::row_without_resource(&rtype, &id));
    }
    finish(rtype, id, version_id, last_updated, deleted, src, body, opts)
}

/// A resource with `resourceType`, `id`, `meta.versionId`, `meta.lastUpdated`.
fn resource_with_meta(obj: &Map<String, Value>, src: Source, opts: &ParseOptions) -> Result<ParsedVersion, Unreadable> {
    let rtype = str_of(obj, "resourceType").ok_or(msg::RESOURCE_TYPE_NOT_STRING)?.to_string();
    let id = str_of(obj, "id").ok_or_else(|| msg::resource_without_id(&rtype))?.to_string();
    let meta = obj.get("meta").and_then(Value::as_object).ok_or_else(|| msg::resource_without_meta(&rtype, &id))?;
    let vid = meta.get("versionId").and_then(version_text).ok_or_else(|| msg::meta_without_version_id(&rtype, &id))?;
    let lu = str_of(meta, "lastUpdated").ok_or_else(|| msg::meta_without_last_updated(&rtype, &id))?;
    let last_updated = parse_time(lu, || msg::time_field(&rtype, &id, "meta.lastUpdated"), &opts.zone)?;
    let body = Value::Object(obj.clone());
    finish(rtype, id, VersionId::parse(&vid), last_updated, false, src, Some(&body), opts)
}

/// A history Bundle entry: `resource`, `request.method`/`url`, `response.lastModified`/`etag`.
pub(crate) fn bundle_entry(
    e: &Map<String, Value>,
    src: Source,
    opts: &ParseOptions,
) -> Result<ParsedVersion, Unreadable> {
    let request = e.get("request").and_then(Value::as_object);
    let response = e.get("response").and_then(Value::as_object);
    let method = request.and_then(|r| str_of(r, "method")).unwrap_or("").to_ascii_uppercase();
    let resource = e.get("resource").and_then(Value::as_object);
    if method != "DELETE" {
        let Some(res) = resource else {
            return Err(msg::entry_without_resource(&method));
        };
        return resource_with_meta(res, src, opts);
    }
    // A deletion: identity from request.url / fullUrl, else the resource; version from
    // `_history/V`, else the ETag, else the resource's meta; time from response.lastModified.
    let url_parts = [request.and_then(|r| str_of(r, "url")), str_of(e, "fullUrl")]
        .into_iter()
        .flatten()
        .find_map(split_history_url);
    let meta = resource.and_then(|r| r.get("meta")).and_then(Value::as_object);
    let (rtype, id) = match (&url_parts, resource) {
        (Some((t, i, _)), _) => (t.clone(), i.clone()),
        (None, Some(r)) => (
            str_of(r, "resourceType").ok_or("DELETE entry whose resource has no resourceType")?.to_string(),
            str_of(r, "id").ok_or("DELETE entry whose resource has no id")?.to_string(),
        ),
        (None, None) => return Err("DELETE entry whose request.url names no Type/id".into()),
    };
    let vid = url_parts
        .and_then(|(_, _, v)| v)
        .or_else(|| {
            response
                .and_then(|r| str_of(r, "etag"))
                .map(|t| t.trim_start_matches("W/").trim_matches('"').to_string())
                .filter(|s| !s.is_empty())
        })
        .or_else(|| meta.and_then(|m| m.get("versionId")).and_then(version_text))
        .ok_or_else(|| format!("{rtype}/{id}: DELETE entry without a version (no _history/V in the URL, no ETag)"))?;
    let lu = response
        .and_then(|r| str_of(r, "lastModified"))
        .or_else(|| meta.and_then(|m| str_of(m, "lastUpdated")))
        .ok_or_else(|| format!("{rtype}/{id}: DELETE entry without response.lastModified"))?;
    let last_updated = parse_time(lu, || msg::time_field(&rtype, &id, "response.lastModified"), &opts.zone)?;
    finish(
        rtype,
        id,
        VersionId::parse(&vid),
        last_updated,
        true,
        src,
        e.get("resource").filter(|r| r.is_object()),
        opts,
    )
}

/// `[base/]Type/id[/_history/V]` → (type, id, version).
fn split_history_url(url: &str) -> Option<(String, String, Option<String>)> {
    let url = url.split('?').next().unwrap_or(url).trim_end_matches('/');
    let segs: Vec<&str> = url.split('/').collect();
    let n = segs.len();
    if n >= 4 && segs[n - 2] == "_history" {
        let (t, i) = (segs[n - 4], segs[n - 3]);
        return compartment::parse_reference(&format!("{t}/{i}"))
            .map(|(t, i)| (t.to_string(), i.to_string(), Some(segs[n - 1].to_string())));
    }
    compartment::parse_reference(url).map(|(t, i)| (t.to_string(), i.to_string(), None))
}

#[allow(clippy::too_many_arguments)]
fn finish(
    resource_type: String,
    id: String,
    version_id: VersionId,
    last_updated: Instant,
    deleted: bool,
    source: Source,
    body: Option<&Value>,
    opts: &ParseOptions,
) -> Result<ParsedVersion, Unreadable> {
    let (patients, references, detail) = match body {
        Some(b) if !deleted => {
            let patients = opts.compartment.patients_of(&resource_type, &id, b);
            let references = if opts.keep_references && opts.compartment.contains(&resource_type) {
                compartment::all_references(b)
            } else {
                Vec::new()
            };
            (patients, references, detail_of(&resource_type, b, &opts.zone)?.map(Box::new))
        }
        _ => (Vec::new(), Vec::new(), None),
    };
    // A deletion that carries the body (Aidbox's DELETE entries and deletion rows do) is marked too.
    let tenant = body.and_then(|b| b.get("meta")).and_then(tenant_in_meta);
    Ok(ParsedVersion {
        resource_type,
        id,
        tenant,
        version_id,
        last_updated,
        deleted,
        source,
        patients,
        references,
        detail,
    })
}

/// The tenant a body's `meta` marks it with (Smartbox): `meta.tenant` (`{"id": t, "resourceType":
/// "Tenant"}`, or the plain string a client may send), else `meta._tenant`.
pub(crate) fn tenant_in_meta(meta: &Value) -> Option<String> {
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
    match meta.get("tenant") {
        Some(Value::Object(t)) => t.get("id").and_then(text),
        Some(other) => text(other),
        None => None,
    }
    .or_else(|| meta.get("_tenant").and_then(text))
}

/// Re-reads the body of a version from its source position (for `--with-resource` and
/// `--reconstruct`). The body is completed with `resourceType`, `id` and `meta` where the dump
/// form (an Aidbox row) lacks them.
pub(crate) fn read_body(
    doc: &Value,
    source: &Source,
    resource_type: &str,
    id: &str,
    version_id: &VersionId,
    last_updated: Instant,
) -> Option<Value> {
    let entry_or_doc = match source.entry {
        Some(i) => doc.get("entry")?.get(i.index() as usize)?,
        None => doc,
    };
    // The document must still say it is this version: a file rewritten since it was indexed
    // could hold another resource at the same place.
    let text = |v: Option<&Value>| v.and_then(version_text);
    let is_version = |v: Option<&Value>| text(v).is_some_and(|t| VersionId::parse(&t) == *version_id);
    let body = if entry_or_doc.get("resource_type").is_some() {
        let row = entry_or_doc;
        let same = str_of(row.as_object()?, "resource_type") == Some(resource_type)
            && text(row.get("id")).as_deref() == Some(id)
            && is_version(row.get("txid"));
        same.then_some(())?;
        row.get("resource")?
    } else {
        let res =
            if entry_or_doc.get("resourceType").is_some() { entry_or_doc } else { entry_or_doc.get("resource")? };
        let same = res.get("resourceType").and_then(Value::as_str) == Some(resource_type)
            && res.get("id").and_then(Value::as_str) == Some(id)
            && is_version(res.get("meta").and_then(|m| m.get("versionId")));
        same.then_some(())?;
        res
    };
    let mut body = body.clone();
    let obj = body.as_object_mut()?;
    obj.insert("resourceType".into(), Value::String(resource_type.into()));
    obj.insert("id".into(), Value::String(id.into()));
    let meta = obj.entry("meta").or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(m) = meta {
        m.insert("versionId".into(), Value::String(version_id.to_string()));
        m.insert("lastUpdated".into(), Value::String(last_updated.to_rfc3339()));
    }
    Some(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::compartment::{Compartment, FhirVersion};
    use crate::version::{ClientScopes, Detail};
    use serde_json::json;

    fn parse(v: Value) -> Result<Vec<ParsedVersion>, Unreadable> {
        let c = Compartment::load(FhirVersion::R4);
        let opts = ParseOptions::new(&c, Zone::UTC, true);
        versions_of_document(v, Source { file: 0, line: 1, offset: 0, entry: None }, &opts)
    }

    #[test]
    fn aidbox_rows() {
        let v = parse(
            json!({"id": "o1", "resource_type": "Observation", "txid": 120, "ts": "2022-12-05T10:00:00.123456+00:00",
                             "status": "updated", "resource": {"subject": {"resourceType": "Patient", "id": "p1"}}}),
        )
        .unwrap();
        assert_eq!(v[0].version_id, VersionId::Number(120));
        assert_eq!(v[0].patients, vec!["p1"]);
        assert_eq!(v[0].last_updated.to_rfc3339(), "2022-12-05T10:00:00.123456Z");
        let d = parse(json!({"id": "o1", "resource_type": "Observation", "txid": "130", "ts": "2022-12-06T10:00:00Z", "status": "deleted", "resource": {}})).unwrap();
        assert!(d[0].deleted);
        assert!(parse(json!({"id": "o1", "resource_type": "Observation", "txid": "x1", "ts": "2022-12-06T10:00:00Z", "resource": {}})).is_ok());
        let e = parse(json!({"id": "o1", "resource_type": "Observation", "txid": true, "ts": "2022-12-06T10:00:00Z", "resource": {}})).unwrap_err();
        assert_eq!(e, "Observation/o1: txid is not a number");
    }

    #[test]
    fn bundles_and_entries() {
        let b = json!({"resourceType": "Bundle", "type": "history", "entry": [
            {"resource": {"resourceType": "Patient", "id": "p", "meta": {"versionId": "2", "lastUpdated": "2022-01-02T00:00:00Z"}}, "request": {"method": "PUT", "url": "Patient/p"}},
            {"request": {"method": "DELETE", "url": "Patient/p/_history/3"}, "response": {"lastModified": "2022-01-03T00:00:00Z"}},
            {"fullUrl": "http://x/fhir/Patient/q", "request": {"method": "DELETE", "url": "Patient/q"}, "response": {"etag": "W/\"7\"", "lastModified": "2022-01-03T00:00:00Z"}}
        ]});
        let v = parse(b).unwrap();
        assert_eq!(v.len(), 3);
        assert!(!v[0].deleted && v[1].deleted && v[2].deleted);
        assert_eq!(v[1].version_id.to_string(), "3");
        assert_eq!(v[2].version_id.to_string(), "7");
        assert_eq!(v[2].source.entry.map(Entry::index), Some(2));
        let single = json!({"request": {"method": "DELETE", "url": "Observation/o/_history/5"}, "response": {"lastModified": "2022-01-03T00:00:00Z"}});
        assert_eq!(parse(single).unwrap()[0].id, "o");
    }

    #[test]
    fn details_of_groups_clients_and_statuses() {
        let g = parse(json!({"resourceType": "Group", "id": "g", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"},
            "member": [{"entity": {"reference": "Patient/a"}}, {"entity": {"resourceType": "Patient", "id": "b"}, "inactive": true},
                       {"entity": {"reference": "Group/g2"}, "period": {"end": "2021-01-01T00:00:00Z"}}, {"entity": {"reference": "urn:uuid:1"}}]})).unwrap();
        let Some(Detail::Group { members }) = g[0].detail.as_deref() else { panic!() };
        assert_eq!(members.len(), 4);
        assert_eq!(members[1].entity, Some(("Patient".into(), "b".into())));
        assert!(members[1].inactive);
        assert!(members[2].period_end.is_some());
        assert!(members[3].entity.is_none());
        let c = parse(json!({"resourceType": "Client", "id": "c", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"}, "scope": "system/Patient.read  system/Observation.rs"})).unwrap();
        let Some(Detail::Client { scopes, .. }) = c[0].detail.as_deref() else { panic!() };
        assert_eq!(
            scopes,
            &ClientScopes::Granted(vec!["system/Patient.read".to_string(), "system/Observation.rs".to_string()])
        );
        let bad = parse(json!({"resourceType": "Client", "id": "c", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"}, "scope": 5})).unwrap();
        let Some(Detail::Client { scopes, .. }) = bad[0].detail.as_deref() else { panic!() };
        assert_eq!(scopes, &ClientScopes::Unreadable("scope is a number".into()));
        // No scope at all (a Basic-auth Client): missing, never "nothing granted".
        let none = parse(json!({"resourceType": "Client", "id": "c", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"}, "secret": "s", "grant_types": ["basic"]})).unwrap();
        let Some(Detail::Client { scopes, .. }) = none[0].detail.as_deref() else { panic!() };
        assert_eq!(scopes, &ClientScopes::Missing);
        let ap = parse(json!({"resourceType": "AccessPolicy", "id": "ap", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"}, "engine": "allow", "link": [{"id": "c", "resourceType": "Client"}, {"reference": "Client/d"}]})).unwrap();
        let Some(Detail::AccessPolicy { links }) = ap[0].detail.as_deref() else { panic!() };
        assert_eq!(links, &vec![("Client".to_string(), "c".to_string()), ("Client".to_string(), "d".to_string())]);
    }

    #[test]
    fn missing_fields_are_named() {
        assert_eq!(
            parse(json!({"resourceType": "Observation", "meta": {}})).unwrap_err(),
            "Observation resource without id"
        );
        assert_eq!(
            parse(json!({"resourceType": "Observation", "id": "o", "meta": {"versionId": "1"}})).unwrap_err(),
            "Observation/o: meta without lastUpdated"
        );
        assert_eq!(
            parse(json!({"id": "o", "resource_type": "Observation", "txid": 1, "resource": {}})).unwrap_err(),
            "Observation/o: history row without ts"
        );
        assert!(parse(json!({"foo": 1})).is_err());
    }
}
