//! Log files of JSON documents: one per line (NDJSON, read with ndjson-stream) or spanning lines
//! (pretty-printed search responses, scroll pages one after another).

use std::path::Path;

use crate::timestamp::Zone;
use ndjson_stream::config::{EmptyLineHandling, NdjsonConfig};
use serde_json::Value;

use super::elasticsearch::documents_to_lines;
use super::LogLine;
use crate::error::{describe_json_error, Error, Result};
use crate::source::{self, Tally};

/// NDJSON: one document per line (Aidbox lines, Elasticsearch hits, or whole search responses).
pub(super) fn read_ndjson(
    path: &Path,
    file: usize,
    body: &[u8],
    bom: u64,
    zone: &Zone,
    out: &mut Vec<LogLine>,
    tally: &mut Tally,
) -> Result<()> {
    // ndjson-stream yields one result per line (blank lines included, as errors), so the k-th
    // result is line k; blank lines are recognised from our own line table and skipped.
    let starts: Vec<usize> = std::iter::once(0)
        .chain(body.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i + 1))
        .filter(|&s| s < body.len())
        .collect();
    let config = NdjsonConfig::default().with_empty_line_handling(EmptyLineHandling::ParseAlways).with_parse_rest(true);
    let parsed = ndjson_stream::from_iter_with_config::<Value, _>(std::iter::once(body), config);
    for (k, result) in parsed.enumerate() {
        let start = starts.get(k).copied().unwrap_or(body.len());
        let end = starts.get(k + 1).copied().unwrap_or(body.len());
        let line_no = k as u64 + 1;
        let offset = start as u64 + bom;
        match result {
            Ok(v) => {
                let before = out.len();
                if let Err(e) = documents_to_lines(path, file, line_no, offset, v, zone, out) {
                    out.truncate(before);
                    tally.fail(e)?;
                }
            }
            Err(e) => {
                if body[start..end].iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                tally.fail(Error::input(path, line_no, offset, describe_json_error(&e)))?;
            }
        }
    }
    Ok(())
}

/// JSON documents spanning several lines (a pretty-printed search response, scroll pages one
/// after another).
pub(super) fn read_json_documents(
    path: &Path,
    file: usize,
    body: &[u8],
    bom: u64,
    zone: &Zone,
    out: &mut Vec<LogLine>,
    tally: &mut Tally,
) -> Result<()> {
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    loop {
        let start = stream.byte_offset();
        let start = start + body[start..].iter().take_while(|b| b.is_ascii_whitespace()).count();
        let line = source::line_of_offset(body, start);
        let failure = match stream.next() {
            None => return Ok(()),
            Some(Ok(v)) => {
                let before = out.len();
                match documents_to_lines(path, file, line, start as u64 + bom, v, zone, out) {
                    Ok(()) => continue,
                    Err(e) => {
                        out.truncate(before);
                        e
                    }
                }
            }
            Some(Err(e)) => Error::input(path, e.line() as u64, start as u64 + bom, describe_json_error(&e)),
        };
        // After an unreadable document the rest of the file cannot be resynchronised.
        let rest = &body[start..];
        let note = format!("the rest of the file, from line {line}, is left out");
        return tally.fail_spanning(
            failure,
            Some(line),
            source::count_lines(rest) - source::blank_lines(rest),
            Some(&note),
        );
    }
}
