//! Request logs: reading Aidbox log lines from every form they are archived in (Aidbox NDJSON,
//! Elasticsearch search responses and hit NDJSON, Kibana Discover CSV), merging the lines of one
//! request by `ctx`, and measuring what time span the logs cover and where they have holes.

use std::collections::BTreeMap;
use std::path::Path;

use chrono_tz::Tz;
use ndjson_stream::config::{EmptyLineHandling, NdjsonConfig};
use serde_json::{Map, Value};

use crate::error::{describe_json_error, Error, Result, Skipped};
use crate::inputs::{self, InputFile, InputRecord, Tally};
use crate::timestamp::{self, Instant};

/// One log line, reduced to the fields the audit reads.
#[derive(Debug, Clone, Default)]
pub struct LogLine {
    pub ev: Option<String>,
    pub ts: Option<Instant>,
    pub ctx: Option<String>,
    pub method: Option<String>,
    pub url: Option<String>,
    pub query: Option<String>,
    pub status: Option<u16>,
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub tenant: Option<String>,
    /// Where the line came from: file and 1-based line.
    pub file: usize,
    pub line: u64,
}

/// One request: the merged lines sharing a `ctx` (or a single line without one).
#[derive(Debug, Clone)]
pub struct Request {
    /// The `ctx`, or `<file>:<line>` for a line without one.
    pub id: String,
    pub has_ctx: bool,
    /// T: the `ts` of its `w/req` line, else the earliest `ts` among its lines.
    pub time: Option<Instant>,
    /// The `ts` of its `w/resp` line, when there is one.
    pub response_time: Option<Instant>,
    pub method: Option<String>,
    pub url: Option<String>,
    pub query: Option<String>,
    pub status: Option<u16>,
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub tenant: Option<String>,
    /// The first line of the request, as `file:line`.
    pub source: String,
}

/// The span of time the logs cover and the holes in it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Coverage {
    pub lines_with_time: u64,
    pub first: Option<String>,
    pub last: Option<String>,
    pub gaps: Vec<Gap>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Gap {
    pub from: String,
    pub to: String,
    pub seconds: f64,
}

/// Everything read from `--logs`.
#[derive(Debug, Default)]
pub struct Logs {
    pub requests: Vec<Request>,
    pub coverage: Coverage,
    pub inputs: Vec<InputRecord>,
    pub gap_bounds: Vec<(Instant, Instant)>,
    /// Lines left out under `--skip-invalid`.
    pub skipped: Vec<Skipped>,
}

/// Reads every log input and merges its lines into requests.
pub fn read(files: &[InputFile], zone: &Tz, max_gap_nanos: i64, skip_invalid: bool) -> Result<Logs> {
    let mut lines = Vec::new();
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let mut tally = Tally::new(skip_invalid);
        // A truncated or corrupt compressed file: its whole lines are read, the rest noted.
        let (bytes, sha, cut) = inputs::read_whole(file)?;
        if let Some(e) = cut {
            tally.fail_spanning(e, None, 0, None)?;
        }
        let line_count = read_one(&file.path, i, &bytes, zone, &mut lines, &mut tally)?;
        records.push(tally.record("logs", file, sha, line_count));
        skipped.extend(tally.skipped);
    }
    let names: Vec<String> = files.iter().map(|f| inputs::display(&f.path)).collect();
    let (coverage, gap_bounds) = coverage(&lines, max_gap_nanos);
    let requests = merge(lines, &names);
    Ok(Logs { requests, coverage, inputs: records, gap_bounds, skipped })
}

/// Reads one decompressed log file of any supported form; returns its number of lines. Lines
/// read, blank and skipped are counted in `tally`.
pub fn read_one(path: &Path, file: usize, bytes: &[u8], zone: &Tz, out: &mut Vec<LogLine>, tally: &mut Tally) -> Result<u64> {
    let body = inputs::strip_bom(bytes);
    let bom = (bytes.len() - body.len()) as u64;
    let total_lines = inputs::count_lines(bytes);
    let blank = blank_lines(body);
    tally.blank += blank;
    let first = body.iter().position(|b| !b.is_ascii_whitespace());
    if let Some(first) = first {
        match body[first] {
            b'{' | b'[' => {
                if first_line_is_whole_json(&body[first..]) {
                    read_ndjson(path, file, body, bom, zone, out, tally)?;
                } else {
                    read_json_documents(path, file, body, bom, zone, out, tally)?;
                }
            }
            _ => read_kibana_csv(path, file, body, zone, out, tally)?,
        }
    }
    tally.read = total_lines - blank - tally.skipped_lines();
    Ok(total_lines)
}

/// Lines holding nothing but whitespace.
fn blank_lines(bytes: &[u8]) -> u64 {
    if bytes.is_empty() {
        return 0;
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.split(|&b| b == b'\n').filter(|l| l.iter().all(|b| b.is_ascii_whitespace())).count() as u64
}

fn first_line_is_whole_json(body: &[u8]) -> bool {
    let end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
    serde_json::from_slice::<serde::de::IgnoredAny>(&body[..end]).is_ok()
}

/// NDJSON: one document per line (Aidbox lines, Elasticsearch hits, or whole search responses).
fn read_ndjson(path: &Path, file: usize, body: &[u8], bom: u64, zone: &Tz, out: &mut Vec<LogLine>, tally: &mut Tally) -> Result<()> {
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
fn read_json_documents(path: &Path, file: usize, body: &[u8], bom: u64, zone: &Tz, out: &mut Vec<LogLine>, tally: &mut Tally) -> Result<()> {
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    loop {
        let start = stream.byte_offset();
        let start = start + body[start..].iter().take_while(|b| b.is_ascii_whitespace()).count();
        let line = inputs::line_of_offset(body, start);
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
        return tally.fail_spanning(failure, Some(line), inputs::count_lines(rest) - blank_lines(rest), Some(&note));
    }
}

/// Turns one JSON document into log lines: an Elasticsearch search response, a hit, or a line.
fn documents_to_lines(path: &Path, file: usize, line: u64, offset: u64, doc: Value, zone: &Tz, out: &mut Vec<LogLine>) -> Result<()> {
    let Value::Object(mut obj) = doc else {
        return Err(Error::input(path, line, offset, format!("expected a JSON object (log line, hit or search response), found {}", kind_of(&doc))));
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
        return Err(Error::input(path, line, offset, format!("an Elasticsearch error response (status {status}), not log lines: the export failed")));
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

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string_field(path: &Path, line: u64, offset: u64, obj: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if key != "w_url" && key != "w_m" => Ok(Some(n.to_string())),
        Some(other) => Err(Error::input(path, line, offset, format!("field {key} should be a string, found {}", kind_of(other)))),
    }
}

fn line_from_object(path: &Path, file: usize, line: u64, offset: u64, obj: &Map<String, Value>, zone: &Tz) -> Result<LogLine> {
    let s = |k: &str| string_field(path, line, offset, obj, k);
    let ts = match (obj.get("ts"), obj.get("@timestamp"), obj.get("timeUnix")) {
        (Some(Value::String(t)), _, _) | (None, Some(Value::String(t)), _) => Some(
            timestamp::parse(t, zone).map_err(|e| Error::input(path, line, offset, format!("field ts: {e}")))?,
        ),
        (Some(Value::Number(n)), _, _) | (None, Some(Value::Number(n)), _) | (None, None, Some(Value::Number(n))) => Some(
            n.as_f64()
                .and_then(timestamp::from_epoch_millis_f64)
                .ok_or_else(|| Error::input(path, line, offset, "field ts: epoch milliseconds out of range"))?,
        ),
        (None, None, _) => None,
        (Some(other), _, _) | (None, Some(other), _) => {
            return Err(Error::input(path, line, offset, format!("field ts should be a timestamp, found {}", kind_of(other))))
        }
    };
    let status = match obj.get("w_st") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_status(v).ok_or_else(|| Error::input(path, line, offset, format!("field w_st is not an HTTP status: {v}")))?),
    };
    Ok(LogLine {
        ev: s("ev")?,
        ts,
        ctx: s("ctx")?,
        method: s("w_m")?,
        url: s("w_url")?,
        query: s("w_qs")?,
        status,
        client_id: s("w_cid")?,
        user_id: s("w_uid")?,
        tenant: s("tn")?,
        file,
        line,
    })
}

fn parse_status(v: &Value) -> Option<u16> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as u64)),
        Value::String(s) => parse_status_text(s),
        _ => None,
    }
    .and_then(|n| u16::try_from(n).ok())
    .filter(|n| (100..=599).contains(n))
}

fn parse_status_text(s: &str) -> Option<u64> {
    let s = s.trim().replace(',', "");
    s.parse::<u64>().ok().or_else(|| s.parse::<f64>().ok().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
}

/// Kibana Discover CSV: a header of field names, Kibana's quoting and formula escapes.
fn read_kibana_csv(path: &Path, file: usize, body: &[u8], zone: &Tz, out: &mut Vec<LogLine>, tally: &mut Tally) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(body);
    // A header the audit cannot use makes the whole file unreadable (skipped whole).
    let skip_file = |tally: &mut Tally, e: Error| tally.fail_spanning(e, None, inputs::count_lines(body) - blank_lines(body), Some("the whole file is left out"));
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|h| unescape_cell(h.trim()).trim_start_matches("_source.").to_string()).collect(),
        Err(e) => return skip_file(tally, csv_error(path, e)),
    };
    let col = |name: &str| headers.iter().position(|h| h == name);
    let time_col = col("ts").or_else(|| col("@timestamp"));
    if time_col.is_none() && col("timeUnix").is_none() {
        return skip_file(tally, Error::input(path, 1, 0, format!("Kibana CSV header has no time column (ts or @timestamp); found: {}", headers.join(", "))));
    }
    if col("w_url").is_none() {
        return skip_file(tally, Error::input(path, 1, 0, format!("Kibana CSV header has no w_url column; found: {}", headers.join(", "))));
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

/// Merges lines into requests by `ctx`. Request fields are taken from the `w/req` line first,
/// then from the other lines in time order; the status and client id often come from `w/resp`.
pub fn merge(lines: Vec<LogLine>, file_names: &[String]) -> Vec<Request> {
    let mut by_ctx: BTreeMap<String, Vec<LogLine>> = BTreeMap::new();
    let mut requests = Vec::new();
    for l in lines {
        match &l.ctx {
            Some(c) => by_ctx.entry(c.clone()).or_default().push(l),
            None => {
                let id = format!("{}:{}", file_names[l.file], l.line);
                requests.push(request_of(id, false, vec![l], file_names));
            }
        }
    }
    for (ctx, group) in by_ctx {
        requests.push(request_of(ctx, true, group, file_names));
    }
    requests
}

fn request_of(id: String, has_ctx: bool, mut lines: Vec<LogLine>, file_names: &[String]) -> Request {
    // w/req first, then by time (lines without a time last), then by position.
    lines.sort_by_key(|l| (l.ev.as_deref() != Some("w/req"), l.ts.is_none(), l.ts, l.file, l.line));
    let time = lines
        .iter()
        .find(|l| l.ev.as_deref() == Some("w/req") && l.ts.is_some())
        .and_then(|l| l.ts)
        .or_else(|| lines.iter().filter_map(|l| l.ts).min());
    let response_time = lines.iter().filter(|l| l.ev.as_deref() == Some("w/resp")).filter_map(|l| l.ts).max();
    fn first<T: Clone>(lines: &[LogLine], f: impl Fn(&LogLine) -> &Option<T>) -> Option<T> {
        lines.iter().find_map(|l| f(l).clone())
    }
    let source = {
        let l = lines.iter().min_by_key(|l| (l.file, l.line)).expect("a request has a line");
        format!("{}:{}", file_names[l.file], l.line)
    };
    Request {
        id,
        has_ctx,
        time,
        response_time,
        method: first(&lines, |l| &l.method),
        url: first(&lines, |l| &l.url),
        query: first(&lines, |l| &l.query),
        status: first(&lines, |l| &l.status),
        client_id: first(&lines, |l| &l.client_id),
        user_id: first(&lines, |l| &l.user_id),
        tenant: first(&lines, |l| &l.tenant),
        source,
    }
}

fn coverage(lines: &[LogLine], max_gap_nanos: i64) -> (Coverage, Vec<(Instant, Instant)>) {
    let mut times: Vec<Instant> = lines.iter().filter_map(|l| l.ts).collect();
    times.sort_unstable();
    let mut gaps = Vec::new();
    let mut bounds = Vec::new();
    for w in times.windows(2) {
        let d = w[1].0 - w[0].0;
        if d > max_gap_nanos {
            bounds.push((w[0], w[1]));
            gaps.push(Gap { from: w[0].to_rfc3339(), to: w[1].to_rfc3339(), seconds: d as f64 / 1e9 });
        }
    }
    let cov = Coverage {
        lines_with_time: times.len() as u64,
        first: times.first().map(|t| t.to_rfc3339()),
        last: times.last().map(|t| t.to_rfc3339()),
        gaps,
    };
    (cov, bounds)
}


#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(text: &str) -> Vec<LogLine> {
        let mut out = Vec::new();
        read_one(Path::new("t"), 0, text.as_bytes(), &Tz::UTC, &mut out, &mut Tally::new(false)).unwrap();
        out
    }

    #[test]
    fn aidbox_ndjson_lines_merge_by_ctx() {
        let text = "{\"ev\":\"w/req\",\"ts\":\"2022-12-05T16:34:30.417Z\",\"ctx\":\"c1\",\"w_m\":\"get\",\"w_url\":\"/fhir/$export\"}\n\n\
                    {\"ev\":\"w/resp\",\"ts\":\"2022-12-05T16:34:30.500Z\",\"ctx\":\"c1\",\"w_st\":202,\"w_cid\":\"cl\"}\n";
        let lines = lines_of(text);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].line, 3);
        let reqs = merge(lines, &["t".into()]);
        assert_eq!(reqs.len(), 1);
        let r = &reqs[0];
        assert_eq!(r.time.unwrap().to_rfc3339(), "2022-12-05T16:34:30.417Z");
        assert_eq!(r.response_time.unwrap().to_rfc3339(), "2022-12-05T16:34:30.500Z");
        assert_eq!(r.status, Some(202));
        assert_eq!(r.client_id.as_deref(), Some("cl"));
        assert_eq!(r.method.as_deref(), Some("get"));
    }

    #[test]
    fn elasticsearch_forms() {
        let resp = "{\n \"hits\": {\"hits\": [\n  {\"_index\": \"a\", \"_source\": {\"ts\": \"2022-12-05T16:34:30Z\", \"w_url\": \"/x\"}}\n ]}\n}\n\
                    {\"hits\": {\"hits\": [{\"_source\": {\"ts\": \"2022-12-05T16:35:30Z\", \"w_url\": \"/y\"}}]}}\n";
        let lines = lines_of(resp);
        assert_eq!(lines.iter().map(|l| l.url.clone().unwrap()).collect::<Vec<_>>(), vec!["/x", "/y"]);
        assert_eq!(lines[1].line, 6);
        let hits = "{\"_index\":\"a\",\"_source\":{\"ts\":\"2022-12-05T16:34:30Z\",\"w_url\":\"/x\"}}\n";
        assert_eq!(lines_of(hits)[0].url.as_deref(), Some("/x"));
    }

    #[test]
    fn kibana_csv_with_escapes_and_zone() {
        let csv = "\"@timestamp\",\"w_url\",\"w_m\",\"w_cid\",\"w_st\"\n\
                   \"Dec 5, 2022 @ 17:34:30.417\",\"/tenant/t/bulk-api/Group/g/$export\",get,'-odd-client,\"200\"\n";
        let mut out = Vec::new();
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        read_one(Path::new("k.csv"), 0, csv.as_bytes(), &berlin, &mut out, &mut Tally::new(false)).unwrap();
        assert_eq!(out[0].ts.unwrap().to_rfc3339(), "2022-12-05T16:34:30.417Z");
        assert_eq!(out[0].client_id.as_deref(), Some("-odd-client"));
        assert_eq!(out[0].status, Some(200));
        assert_eq!(out[0].line, 2);
    }

    #[test]
    fn errors_name_the_line() {
        let mut out = Vec::new();
        let e = read_one(Path::new("bad.ndjson"), 0, b"{\"ts\":\"2022-12-05T16:34:30Z\"}\n{oops\n", &Tz::UTC, &mut out, &mut Tally::new(false)).unwrap_err();
        assert!(e.to_string().starts_with("bad.ndjson:2 (byte 30): invalid JSON"), "{e}");
        let e = read_one(Path::new("u.ndjson"), 0, b"{\"w_url\": 5}\n", &Tz::UTC, &mut out, &mut Tally::new(false)).unwrap_err();
        assert!(e.to_string().contains("field w_url should be a string, found a number"), "{e}");
    }
}
