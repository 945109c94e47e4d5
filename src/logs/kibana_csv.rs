//! Kibana Discover CSV: a header of field names, Kibana's quoting and formula escapes.

use std::path::Path;

use crate::timestamp::Zone;
use serde_json::{Map, Value};

use super::aidbox::line_from_object;
use super::{blank_lines, LogLine};
use crate::error::{Error, Result};
use crate::source::{self, Tally};

/// Kibana Discover CSV: a header of field names, Kibana's quoting and formula escapes.
pub(super) fn read(
    path: &Path,
    file: usize,
    body: &[u8],
    zone: &Zone,
    out: &mut Vec<LogLine>,
    tally: &mut Tally,
) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(body);
    // A header the audit cannot use makes the whole file unreadable (skipped whole).
    let skip_file = |tally: &mut Tally, e: Error| {
        tally.fail_spanning(e, None, source::count_lines(body) - blank_lines(body), Some("the whole file is left out"))
    };
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|h| unescape_cell(h.trim()).trim_start_matches("_source.").to_string()).collect(),
        Err(e) => return skip_file(tally, csv_error(path, e)),
    };
    let col = |name: &str| headers.iter().position(|h| h == name);
    let time_col = col("ts").or_else(|| col("@timestamp"));
    if time_col.is_none() && col("timeUnix").is_none() {
        return skip_file(
            tally,
            Error::input(
                path,
                1,
                0,
                format!("Kibana CSV header has no time column (ts or @timestamp); found: {}", headers.join(", ")),
            ),
        );
    }
    if col("w_url").is_none() {
        return skip_file(
            tally,
            Error::input(path, 1, 0, format!("Kibana CSV header has no w_url column; found: {}", headers.join(", "))),
        );
    }
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                tally.fail(csv_error(path, e))?;
                continue;
            }
        };
        let pos = record.position().expect("csv records have positions");
        let (line, offset) = (pos.line(), pos.byte());
        let parsed = (|| {
            let mut obj = Map::new();
            for (i, cell) in record.iter().enumerate() {
                let name = &headers[i];
                let value = unescape_cell(cell);
                if value.is_empty() || value == "-" {
                    continue;
                }
                let key = if name == "@timestamp" && time_col == Some(i) { "ts" } else { name.as_str() };
                let v = if key == "timeUnix" {
                    match value.trim().parse::<f64>() {
                        Ok(n) => serde_json::Number::from_f64(n).map(Value::Number).unwrap_or(Value::Null),
                        Err(_) => return Err(Error::input(path, line, offset, "the timeUnix cell is not a number")),
                    }
                } else {
                    Value::String(value.to_string())
                };
                obj.insert(key.to_string(), v);
            }
            line_from_object(path, file, line, offset, &obj, zone)
        })();
        match parsed {
            Ok(l) => out.push(l),
            Err(e) => tally.fail(e)?,
        }
    }
    Ok(())
}

/// Undoes Kibana's formula escape: a leading `'` before `= + - @`.
fn unescape_cell(cell: &str) -> &str {
    let b = cell.as_bytes();
    if b.len() >= 2 && b[0] == b'\'' && matches!(b[1], b'=' | b'+' | b'-' | b'@') {
        &cell[1..]
    } else {
        cell
    }
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let (line, offset) = e.position().map(|p| (p.line(), p.byte())).unwrap_or((0, 0));
    let what = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("Kibana CSV row has {len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "Kibana CSV cell is not valid UTF-8".to_string(),
        _ => format!("unreadable Kibana CSV: {}", e.to_string().split(':').next().unwrap_or("error")),
    };
    Error::input(path, line, offset, what)
}
