//! Kibana Discover CSV, as Kibana writes it: the separator (`,`, `;` or a tab) read off the header
//! line; header cells that are field names or labels written `Label (field.name)`, maybe quoted;
//! Kibana's formula escape (a `'` before `= + - @`, header cells included); `-` for an empty
//! value; numbers with thousands separators (`"1,204"`); rows in any order (newest first by
//! default); and the two-column form (the time and `_source`) whose `_source` cells hold each
//! log line as JSON.

use std::path::Path;

use serde_json::{Map, Value};

use super::aidbox::line_from_object;
use super::LogLine;
use crate::error::{Error, Result};
use crate::source::{self, Tally};
use crate::timestamp::Zone;

pub(super) fn read(
    path: &Path,
    file: usize,
    body: &[u8],
    zone: &Zone,
    out: &mut Vec<LogLine>,
    tally: &mut Tally,
) -> Result<()> {
    // Records end at a newline only (a `\r` before it is trimmed below): one record is never
    // split over two of the file's lines, whose count the manifest keeps.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .delimiter(separator(body))
        .terminator(csv::Terminator::Any(b'\n'))
        .from_reader(body);
    // A header the audit cannot use makes the whole file unreadable (skipped whole).
    let skip_file = |tally: &mut Tally, e: Error| {
        tally.fail_spanning(
            e,
            None,
            source::count_lines(body) - source::blank_lines(body),
            Some("the whole file is left out"),
        )
    };
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(field_of_header).collect(),
        Err(e) => return skip_file(tally, csv_error(path, e)),
    };
    let col = |name: &str| headers.iter().position(|h| h == name);
    let time_col = col("ts").or_else(|| col("@timestamp"));
    let source_col = col("_source");
    if time_col.is_none() && col("timeUnix").is_none() && source_col.is_none() {
        let found = headers.join(", ");
        let what = format!(
            "Kibana CSV header has no time column (ts or @timestamp); found: {found} (the fields an audit needs: README, \"What an audit needs\")"
        );
        return skip_file(tally, Error::input(path, 1, 0, what));
    }
    if col("w_url").is_none() && source_col.is_none() {
        let found = headers.join(", ");
        let what = format!(
            "Kibana CSV header has no w_url column (nor _source); found: {found} (the fields an audit needs: README, \"What an audit needs\")"
        );
        return skip_file(tally, Error::input(path, 1, 0, what));
    }
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            // A line of whitespace is blank (and counted so), even where the csv reader takes it
            // for a record of one field.
            Err(e) if e.position().is_some_and(|p| is_blank_at(body, p.byte() as usize)) => continue,
            Err(e) => {
                tally.fail(csv_error(path, e))?;
                continue;
            }
        };
        let pos = record.position().expect("csv records have positions");
        let (line, offset) = (pos.line(), pos.byte());
        let cells: Vec<&str> = record.iter().map(|c| c.strip_suffix('\r').unwrap_or(c)).collect();
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let parsed = (|| {
            let mut obj = Map::new();
            if let Some(s) = source_col {
                // The `_source` form: the log line itself, as JSON.
                match serde_json::from_str::<Value>(unescape_cell(cells[s])) {
                    // A log line has its event, request or context; Kibana 7.12 and before
                    // wrote only the time there.
                    Ok(Value::Object(line)) if ["ev", "w_url", "ctx"].iter().any(|k| line.contains_key(*k)) => {
                        obj = line
                    }
                    _ => {
                        return Err(Error::input(
                            path,
                            line,
                            offset,
                            "the _source cell holds no log line (Kibana before 7.13 put only the time there, later \
                             ones `-`): export the log fields as columns instead",
                        ))
                    }
                }
            }
            for (i, cell) in cells.iter().enumerate() {
                let name = &headers[i];
                let value = unescape_cell(cell);
                if Some(i) == source_col || value.is_empty() || value == "-" {
                    continue;
                }
                let key = if name == "@timestamp" && time_col == Some(i) { "ts" } else { name.as_str() };
                if obj.contains_key(key) && source_col.is_some() {
                    // The `_source` line says it already.
                    continue;
                }
                let v = if key == "timeUnix" {
                    match value.trim().replace(',', "").parse::<f64>() {
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

/// Whether the line starting at byte `at` holds nothing but whitespace.
fn is_blank_at(body: &[u8], at: usize) -> bool {
    let rest = body.get(at..).unwrap_or(&[]);
    let line = rest.split(|&b| b == b'\n').next().unwrap_or(&[]);
    line.iter().all(|b| b.is_ascii_whitespace())
}

/// The separator of a Kibana CSV: the one of `,`, `;` and tab that the header line holds most
/// often outside quotes (a comma when it holds none).
fn separator(body: &[u8]) -> u8 {
    let header = body.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for &b in header {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(c) = counts.iter_mut().find(|(sep, _)| *sep == b) {
                c.1 += 1;
            }
        }
    }
    // The first of the most frequent, so a tie (or none) keeps the comma.
    counts.iter().fold((b',', 0), |best, &c| if c.1 > best.1 { c } else { best }).0
}

/// The field a header cell names: its formula escape undone, a `_source.` prefix dropped, and a
/// label written `Label (field.name)` read as the field in the parentheses.
fn field_of_header(cell: &str) -> String {
    let cell = unescape_cell(cell.strip_suffix('\r').unwrap_or(cell).trim());
    let field = match cell.strip_suffix(')').and_then(|c| c.rsplit_once(" (")) {
        Some((_, field)) if !field.is_empty() && !field.contains(' ') => field,
        _ => cell,
    };
    field.trim_start_matches("_source.").to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read_csv(text: &str) -> Result<Vec<LogLine>> {
        let mut out = Vec::new();
        read(Path::new("k.csv"), 0, text.as_bytes(), &Zone::UTC, &mut out, &mut Tally::new(false))?;
        Ok(out)
    }

    #[test]
    fn separators_labels_escapes_and_thousands() {
        let semicolon = "\"'@timestamp\";\"Method (w_m)\";\"URL (w_url)\";\"w_st\";\"w_cid\";\"ctx\"\n\
                         \"Dec 5, 2022 @ 16:34:30.502\";get;\"/fhir/$export\";\"202\";\"'-\";\"c1\"\n\
                         \"Dec 5, 2022 @ 16:34:30.417\";get;\"/fhir/$export\";\"'-\";\"'@bot\";\"c1\"\n";
        let lines = read_csv(semicolon).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].url.as_deref(), Some("/fhir/$export"));
        assert_eq!(lines[0].client_id, None, "'- is empty");
        assert_eq!(lines[1].client_id.as_deref(), Some("@bot"));
        assert_eq!(lines[1].status, None);
        assert_eq!(lines[1].ts.unwrap().at.to_rfc3339(), "2022-12-05T16:34:30.417Z");
        let tab = "@timestamp\tw_m\tw_url\tw_st\r\nDec 5, 2022 @ 16:34:30.417\tget\t/x\t202\r\n";
        let lines = read_csv(tab).unwrap();
        assert_eq!((lines[0].url.as_deref(), lines[0].status), (Some("/x"), Some(202)), "CRLF and tabs");
        // A lone CR inside a row is no record end: one line, one record (found by the fuzz target).
        let cr = "@timestamp,w_url\n\"Dec 5, 2022 @ 16:34:30.417\",/a\rb\n";
        assert_eq!(read_csv(cr).unwrap()[0].url.as_deref(), Some("/a\rb"));
        // Kibana's default number format writes thousands separators.
        let unix = "timeUnix,w_url\n\"1,670,258,070,417\",/x\n";
        assert_eq!(read_csv(unix).unwrap()[0].ts.unwrap().at.to_rfc3339(), "2022-12-05T16:34:30.417Z");
    }

    #[test]
    fn the_source_column_form() {
        let text = "\"@timestamp\",\"_source\"\n\
                    \"Dec 5, 2022 @ 16:34:30.417\",\"{\"\"ev\"\":\"\"w/req\"\",\"\"ts\"\":\"\"2022-12-05T16:34:30.417Z\"\",\"\"ctx\"\":\"\"k\"\",\"\"w_m\"\":\"\"get\"\",\"\"w_url\"\":\"\"/fhir/$export\"\"}\"\n";
        let lines = read_csv(text).unwrap();
        assert_eq!(lines[0].ctx.as_deref(), Some("k"));
        assert_eq!(lines[0].url.as_deref(), Some("/fhir/$export"));
        let dash = "\"@timestamp\",\"_source\"\n\"Dec 5, 2022 @ 16:34:30.417\",\"-\"\n";
        let e = read_csv(dash).unwrap_err().to_string();
        assert!(e.contains("k.csv:2") && e.contains("the _source cell holds no log line"), "{e}");
        let only_time = "\"@timestamp\",\"_source\"\n\"Dec 5, 2022 @ 16:34:30.417\",\"{\"\"@timestamp\"\":\"\"2022-12-05T16:34:30.417Z\"\"}\"\n";
        let e = read_csv(only_time).unwrap_err().to_string();
        assert!(e.contains("the _source cell holds no log line"), "{e}");
    }
}
