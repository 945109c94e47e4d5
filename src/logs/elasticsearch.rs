//! Elasticsearch's forms of log lines: a search response (`hits.hits[]._source`), a hit
//! (`{"_index", "_source"}`), and an error response instead of data. An
//! object that is none of these is an Aidbox log line.

use std::path::Path;

use crate::timestamp::Zone;
use serde_json::Value;

use super::aidbox::{kind_of, line_from_object};
use super::LogLine;
use crate::error::{Error, Result};

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
    let Value::Object(mut obj) = doc else {
        return Err(Error::input(
            path,
            line,
            offset,
            format!("expected a JSON object (log line, hit or search response), found {}", kind_of(&doc)),
        ));
    };
    if let Some(hits) = obj.get_mut("hits") {
        let Some(list) = hits.get_mut("hits").and_then(Value::as_array_mut) else {
            return Err(Error::input(path, line, offset, "Elasticsearch response without hits.hits[]"));
        };
        for hit in std::mem::take(list) {
            let source = match hit {
                Value::Object(mut h) => h.remove("_source"),
                _ => None,
            };
            let Some(Value::Object(src)) = source else {
                return Err(Error::input(path, line, offset, "Elasticsearch hit without an object _source"));
            };
            out.push(line_from_object(path, file, line, offset, &src, zone)?);
        }
        return Ok(());
    }
    if obj.contains_key("error") && obj.contains_key("status") && !obj.contains_key("ev") {
        let status = obj.get("status").map(|s| s.to_string()).unwrap_or_default();
        return Err(Error::input(
            path,
            line,
            offset,
            format!("an Elasticsearch error response (status {status}), not log lines: the export failed"),
        ));
    }
    if let Some(src) = obj.remove("_source") {
        let Value::Object(src) = src else {
            return Err(Error::input(path, line, offset, "Elasticsearch hit whose _source is not an object"));
        };
        out.push(line_from_object(path, file, line, offset, &src, zone)?);
        return Ok(());
    }
    out.push(line_from_object(path, file, line, offset, &obj, zone)?);
    Ok(())
}
