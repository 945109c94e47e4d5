//! A body re-read where `serde_json::Value` cannot hold the document, although the audit read
//! it: a number beyond f64 (`1e999999`), a lone surrogate escape (`"\ud800"`), nesting deeper
//! than serde_json's 128 levels. The document is walked member by member over its raw text, the
//! body's own members kept exactly as written (white space outside strings taken out), and
//! `resourceType`, `id` and `meta.versionId`/`lastUpdated` set as for any body.

use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::timestamp::Instant;
use crate::version::{Entry, VersionId};

/// The members of a JSON object in their order, each value as its raw text.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'a> Members<'a> {
    fn of(raw: &'a str) -> Option<Members<'a>> {
        serde_json::from_str(raw).ok()
    }

    fn get(&self, key: &str) -> Option<&'a RawValue> {
        // The last of a repeated key counts, as in serde_json and PostgreSQL's jsonb.
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// A short member (an id, a type, a version) as a value.
    fn value(&self, key: &str) -> Option<Value> {
        serde_json::from_str(self.get(key)?.get()).ok()
    }
}

fn text_of(v: Option<Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s),
        Value::Number(n) if n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// The wanted version's body in the raw document `doc`, completed, as compact JSON; `None`
/// where the document does not hold it.
pub(super) fn body_text(
    doc: &str,
    entry: Option<Entry>,
    resource_type: &str,
    id: &str,
    version_id: &VersionId,
    last_updated: Instant,
) -> Option<String> {
    let top = Members::of(doc)?;
    let entry_members;
    let entry_or_doc = match entry {
        Some(i) => {
            let entries: Vec<&RawValue> = serde_json::from_str(top.get("entry")?.get()).ok()?;
            entry_members = Members::of(entries.get(i.index() as usize)?.get())?;
            &entry_members
        }
        None => &top,
    };
    let is_version = |v: Option<Value>| text_of(v).is_some_and(|t| VersionId::parse(&t) == *version_id);
    let body = if entry_or_doc.get("resource_type").is_some() {
        let row = entry_or_doc;
        let same = row.value("resource_type").as_ref().and_then(Value::as_str) == Some(resource_type)
            && text_of(row.value("id")).as_deref() == Some(id)
            && is_version(row.value("txid"));
        same.then_some(())?;
        Members::of(row.get("resource")?.get())?
    } else {
        let res = if entry_or_doc.get("resourceType").is_some() {
            Members(entry_or_doc.0.clone())
        } else {
            Members::of(entry_or_doc.get("resource")?.get())?
        };
        let meta = res.get("meta").and_then(|m| Members::of(m.get()));
        let same = res.value("resourceType").as_ref().and_then(Value::as_str) == Some(resource_type)
            && res.value("id").as_ref().and_then(Value::as_str) == Some(id)
            && is_version(meta.as_ref().and_then(|m| m.value("versionId")));
        same.then_some(())?;
        res
    };
    let string = |s: &str| Value::String(s.into()).to_string();
    let mut members: Vec<(String, String)> = Vec::with_capacity(body.0.len() + 3);
    let set =
        |members: &mut Vec<(String, String)>, key: &str, text: String| match members.iter_mut().find(|(k, _)| k == key)
        {
            Some(m) => m.1 = text,
            None => members.push((key.to_string(), text)),
        };
    for (k, v) in &body.0 {
        set(&mut members, k, compact(v.get()));
    }
    set(&mut members, "resourceType", string(resource_type));
    set(&mut members, "id", string(id));
    let mut meta: Vec<(String, String)> = match body.get("meta").and_then(|m| Members::of(m.get())) {
        Some(m) => m.0.iter().map(|(k, v)| (k.clone(), compact(v.get()))).collect(),
        None => Vec::new(),
    };
    set(&mut meta, "versionId", string(&version_id.to_string()));
    set(&mut meta, "lastUpdated", string(&last_updated.to_rfc3339()));
    set(&mut members, "meta", object(&meta));
    Some(object(&members))
}

fn object(members: &[(String, String)]) -> String {
    let mut out = String::from("{");
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(k.clone()).to_string());
        out.push(':');
        out.push_str(v);
    }
    out.push('}');
    out
}

/// Raw JSON without the white space outside its strings.
fn compact(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in raw.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_value_cannot_hold_is_kept_as_written() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let doc = format!(
            "{{\"resourceType\": \"Observation\", \"id\": \"o\", \"valueQuantity\": {{\"value\": 1e999999}}, \
             \"note\": [{{\"text\": \"\\ud800 x\"}}], \"extension\": {deep}, \"meta\": {{\"versionId\": \"7\"}}}}"
        );
        assert!(serde_json::from_str::<Value>(&doc).is_err());
        let body = body_text(&doc, None, "Observation", "o", &VersionId::parse("7"), Instant(0)).unwrap();
        assert_eq!(
            body,
            format!(
                "{{\"resourceType\":\"Observation\",\"id\":\"o\",\"valueQuantity\":{{\"value\":1e999999}},\
                 \"note\":[{{\"text\":\"\\ud800 x\"}}],\"extension\":{deep},\
                 \"meta\":{{\"versionId\":\"7\",\"lastUpdated\":\"1970-01-01T00:00:00Z\"}}}}"
            )
        );
        // Another version at that place: not this body.
        assert!(body_text(&doc, None, "Observation", "o", &VersionId::parse("8"), Instant(0)).is_none());
    }
}
