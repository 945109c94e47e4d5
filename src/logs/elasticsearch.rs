//! Elasticsearch's forms of log lines: a search response (`hits.hits[]`, also wrapped as Kibana's
//! Inspect view shows it, `{"rawResponse": …}`), a hit (`{"_index", "_source"}`), a hit that
//! carries `fields` instead of `_source` (every value an array; `.keyword` copies stand for their
//! field only where it is missing), and an error response instead of data. An object that is
//! none of these is an Aidbox log line.

use std::path::Path;

use serde_json::{Map, Value};

use super::aidbox::{kind_of, line_from_object};
use super::LogLine;
use crate::error::{Error, Result};
use crate::timestamp::Zone;

/// Where one document sits, for messages and the lines it gives.
struct At<'a> {
    path: &'a Path,
    file: usize,
    line: u64,
    offset: u64,
    zone: &'a Zone,
}

impl At<'_> {
    fn error(&self, what: impl Into<String>) -> Error {
        Error::input(self.path, self.line, self.offset, what)
    }

    fn log_line(&self, obj: &Map<String, Value>) -> Result<LogLine> {
        line_from_object(self.path, self.file, self.line, self.offset, obj, self.zone)
    }
}

/// Turns one JSON document into log lines: an Elasticsearch search response, a hit, or a line.
pub(super) fn documents_to_lines(
    path: &Path,
    file: usize,
    line: u64,
    offset: u64,
    doc: Value,
    zone: &Zone,
    out: &mut Vec<LogLine>,
) -> Result<()> {
    let at = At { path, file, line, offset, zone };
    let Value::Object(mut obj) = doc else {
        return Err(
            at.error(format!("expected a JSON object (log line, hit or search response), found {}", kind_of(&doc)))
        );
    };
    // Kibana's Inspect view wraps the response.
    if let Some(Value::Object(raw)) = obj.get("rawResponse") {
        if raw.contains_key("hits") {
            obj = raw.clone();
        }
    }
    if let Some(hits) = obj.get_mut("hits") {
        let Some(list) = hits.get_mut("hits").and_then(Value::as_array_mut) else {
            return Err(at.error("Elasticsearch response without hits.hits[]"));
        };
        for hit in std::mem::take(list) {
            let Value::Object(hit) = hit else { return Err(at.error("Elasticsearch hit that is not an object")) };
            out.push(at.log_line(&line_of_hit(&at, hit)?)?);
        }
        return Ok(());
    }
    if obj.contains_key("error") && obj.contains_key("status") && !obj.contains_key("ev") {
        let status = obj.get("status").map(|s| s.to_string()).unwrap_or_default();
        return Err(
            at.error(format!("an Elasticsearch error response (status {status}), not log lines: the export failed"))
        );
    }
    if obj.contains_key("_source") || (obj.contains_key("fields") && obj.contains_key("_index")) {
        out.push(at.log_line(&line_of_hit(&at, obj)?)?);
        return Ok(());
    }
    out.push(at.log_line(&obj)?);
    Ok(())
}

/// The log line a hit holds: its `_source`, else its `fields`.
fn line_of_hit(at: &At, mut hit: Map<String, Value>) -> Result<Map<String, Value>> {
    match (hit.remove("_source"), hit.remove("fields")) {
        (Some(Value::Object(source)), _) => Ok(source),
        (Some(_), _) => Err(at.error("Elasticsearch hit whose _source is not an object")),
        (None, Some(Value::Object(fields))) => line_of_fields(at, fields),
        (None, _) => Err(at.error("Elasticsearch hit without an object _source or fields")),
    }
}

/// A hit's `fields` as a log line: each value is an array of one element for a scalar field;
/// `f.keyword` stands for `f` only where `f` itself is missing.
fn line_of_fields(at: &At, fields: Map<String, Value>) -> Result<Map<String, Value>> {
    let mut line = Map::new();
    let mut keyword_copies = Vec::new();
    for (key, values) in fields {
        let value = match values {
            Value::Array(mut items) if items.len() == 1 => items.pop().expect("one element"),
            Value::Array(items) if items.is_empty() => continue,
            Value::Array(_) => return Err(at.error(format!("Elasticsearch field {key} holds several values"))),
            other => other,
        };
        match key.strip_suffix(".keyword") {
            Some(base) => keyword_copies.push((base.to_string(), value)),
            None => {
                line.insert(key, value);
            }
        }
    }
    for (base, value) in keyword_copies {
        line.entry(base).or_insert(value);
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lines(doc: Value) -> Result<Vec<LogLine>> {
        let mut out = Vec::new();
        documents_to_lines(Path::new("es.json"), 0, 1, 0, doc, &Zone::UTC, &mut out)?;
        Ok(out)
    }

    #[test]
    fn hits_with_fields_instead_of_source() {
        let hit = |fields: Value| json!({"_index": "aidbox-logs", "_id": "1", "_score": null, "fields": fields});
        let response = json!({"took": 4, "hits": {"total": {"value": 2}, "hits": [
            hit(json!({"ts": ["2022-12-05T16:34:30.417Z"], "ev": ["w/req"], "ev.keyword": ["w/req"], "ctx": ["k"], "w_m": ["get"], "w_url": ["/fhir/$export"], "w_url.keyword": ["/other"]})),
            hit(json!({"ts": ["2022-12-05T16:34:30.502Z"], "ev.keyword": ["w/resp"], "ctx.keyword": ["k"], "w_st": [202], "w_cid.keyword": ["c"]})),
        ]}});
        let got = lines(response.clone()).unwrap();
        assert_eq!(got[0].url.as_deref(), Some("/fhir/$export"), "the field itself wins over its .keyword copy");
        assert_eq!((got[1].ev.as_deref(), got[1].ctx.as_deref()), (Some("w/resp"), Some("k")), ".keyword stands in");
        assert_eq!((got[1].status, got[1].client_id.as_deref()), (Some(202), Some("c")));
        // Kibana's Inspect view wraps the same response.
        assert_eq!(lines(json!({"rawResponse": response})).unwrap().len(), 2);
        // One hit per line (NDJSON of hits).
        let one = hit(json!({"ts": ["2022-12-05T16:34:30.417Z"], "w_url": ["/x"]}));
        assert_eq!(lines(one).unwrap()[0].url.as_deref(), Some("/x"));
        let several = hit(json!({"w_url": ["/a", "/b"]}));
        assert!(lines(several).unwrap_err().to_string().contains("field w_url holds several values"));
    }
}
