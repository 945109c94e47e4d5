//! Request logs: reading Aidbox log lines from every form they are archived in (Aidbox NDJSON,
//! Elasticsearch search responses and hit NDJSON, Kibana Discover CSV), merging the lines of one
//! request by `ctx`, and measuring what time span the logs cover and where they have holes.

mod aidbox;
mod elasticsearch;
mod json;
mod kibana_csv;

use std::collections::BTreeMap;
use std::path::Path;

use crate::timestamp::Zone;

use crate::error::{Result, Skipped};
use crate::source::{self, InputFile, InputRecord, Tally};
use crate::timestamp::{Instant, Stamp};

/// One log line, reduced to the fields the audit reads.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogLine {
    pub(crate) ev: Option<String>,
    /// Its time, with the unit it was written in.
    pub(crate) ts: Option<Stamp>,
    pub(crate) ctx: Option<String>,
    pub(crate) method: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) query: Option<String>,
    pub(crate) status: Option<u16>,
    pub(crate) client_id: Option<String>,
    pub(crate) user_id: Option<String>,
    /// The client's address as the server saw it (`w_addr`, may list proxies).
    pub(crate) address: Option<String>,
    /// Aidbox's box id (`tn`).
    pub(crate) box_id: Option<String>,
    /// The request body, when Aidbox logged it (`w_b`, with `X-Audit-Req-Body: true`): as written,
    /// or an object's JSON text.
    pub(crate) body: Option<String>,
    /// Where the line came from: file and 1-based line.
    pub(crate) file: usize,
    pub(crate) line: u64,
}

/// One request: the merged lines sharing a `ctx` (or a single line without one).
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// The `ctx`, or `<file>:<line>` for a line without one.
    pub(crate) id: String,
    /// T: the `ts` of its `w/req` line, else the earliest `ts` among its lines.
    pub(crate) time: Option<Stamp>,
    /// The `ts` of its `w/resp` line, when there is one.
    pub(crate) response: Option<Stamp>,
    pub(crate) method: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) query: Option<String>,
    pub(crate) status: Option<u16>,
    pub(crate) client_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) address: Option<String>,
    pub(crate) box_id: Option<String>,
    /// The logged request body (`w_b`).
    pub(crate) body: Option<String>,
    /// Its `w/req` line (else its first line), as `file:line`: where the request is in the logs,
    /// whatever order their rows come in.
    pub(crate) source: String,
    /// Its lines carry neither `ctx` nor `ev`: a response was paired with the nearest earlier
    /// request line of its URL and client (or a line stands alone), which the logs do not tell.
    pub(crate) lines_unpaired: bool,
}

/// The span of time the logs cover and the holes in it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Coverage {
    pub(crate) lines_with_time: u64,
    pub(crate) first: Option<String>,
    pub(crate) last: Option<String>,
    pub(crate) gaps: Vec<Gap>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Gap {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) seconds: f64,
}

/// Everything read from `--logs`.
#[derive(Debug, Default)]
pub(crate) struct Logs {
    pub(crate) requests: Vec<Request>,
    pub(crate) coverage: Coverage,
    pub(crate) inputs: Vec<InputRecord>,
    /// Lines left out under `--skip-invalid`.
    pub(crate) skipped: Vec<Skipped>,
}

/// Reads every log input and merges its lines into requests.
pub(crate) fn read(files: &[InputFile], zone: &Zone, max_gap_nanos: i64, skip_invalid: bool) -> Result<Logs> {
    let mut lines = Vec::new();
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let mut tally = Tally::new(skip_invalid);
        // A truncated or corrupt compressed file: its whole lines are read, the rest noted.
        let (bytes, read, cut) = source::read_whole(file)?;
        if let Some(e) = cut {
            tally.fail_rest(e)?;
        }
        let line_count = read_one(&file.path, i, &bytes, zone, &mut lines, &mut tally)?;
        records.push(tally.record(crate::source::Role::Logs, file, read, line_count));
        skipped.extend(tally.skipped);
    }
    let names: Vec<String> = files.iter().map(|f| source::display(&f.path)).collect();
    let coverage = coverage(&lines, max_gap_nanos);
    let requests = merge(lines, &names);
    Ok(Logs { requests, coverage, inputs: records, skipped })
}

/// Reads one decompressed log file of any supported form; returns its number of lines. Lines
/// read, blank and skipped are counted in `tally`.
pub(crate) fn read_one(
    path: &Path,
    file: usize,
    bytes: &[u8],
    zone: &Zone,
    out: &mut Vec<LogLine>,
    tally: &mut Tally,
) -> Result<u64> {
    let body = source::strip_bom(bytes);
    let bom = (bytes.len() - body.len()) as u64;
    let total_lines = source::count_lines(bytes);
    let blank = source::blank_lines(body);
    tally.blank += blank;
    let first = body.iter().position(|b| !b.is_ascii_whitespace());
    if let Some(first) = first {
        match body[first] {
            b'{' | b'[' => {
                if first_line_is_whole_json(&body[first..]) {
                    json::read_ndjson(path, file, body, bom, zone, out, tally)?;
                } else if body.len() as u64 > source::max_line() {
                    // A document (a search response) is held whole: no longer than the limit.
                    tally.fail_rest(source::too_long(path, 1, 0, "document", body.len() as u64))?;
                } else {
                    json::read_json_documents(path, file, body, bom, zone, out, tally)?;
                }
            }
            _ => kibana_csv::read(path, file, body, zone, out, tally)?,
        }
    }
    tally.read = total_lines - blank - tally.skipped_lines();
    Ok(total_lines)
}

fn first_line_is_whole_json(body: &[u8]) -> bool {
    let end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
    serde_json::from_slice::<serde::de::IgnoredAny>(&body[..end]).is_ok()
}

/// Merges lines into requests by `ctx`. Request fields are taken from the `w/req` line first,
/// then from the other lines in time order; the status and client id often come from `w/resp`.
pub(crate) fn merge(lines: Vec<LogLine>, file_names: &[String]) -> Vec<Request> {
    let mut by_ctx: BTreeMap<String, Vec<LogLine>> = BTreeMap::new();
    let mut requests = Vec::new();
    // Lines with neither `ctx` nor `ev`: which belong to one request the logs do not tell.
    let mut loose = Vec::new();
    for l in lines {
        match &l.ctx {
            Some(c) => by_ctx.entry(c.clone()).or_default().push(l),
            None if l.ev.is_none() => loose.push(l),
            None => {
                let id = format!("{}:{}", file_names[l.file], l.line);
                requests.push(request_of(id, vec![l], file_names));
            }
        }
    }
    for group in pair_loose_lines(loose) {
        let first = &group[0];
        let id = format!("{}:{}", file_names[first.file], first.line);
        let mut r = request_of(id, group, file_names);
        r.lines_unpaired = true;
        requests.push(r);
    }
    for (ctx, group) in by_ctx {
        requests.push(request_of(ctx, group, file_names));
    }
    requests
}

/// Lines that carry neither `ctx` nor `ev`, grouped into requests: each response (a line with a
/// status) joins the nearest earlier request line (one without) of the same URL and client (a
/// side that names no client matches any), so one request never makes two exports; a line that
/// finds no partner stands alone. Each group's request line comes first.
fn pair_loose_lines(mut loose: Vec<LogLine>) -> Vec<Vec<LogLine>> {
    loose.sort_by_key(|l| (l.ts.map(|s| s.at), l.file, l.line));
    let mut groups: Vec<Vec<LogLine>> = Vec::new();
    // Groups whose request line still waits for its response.
    let mut waiting: Vec<usize> = Vec::new();
    for l in loose {
        if l.status.is_none() {
            waiting.push(groups.len());
            groups.push(vec![l]);
            continue;
        }
        let partner = waiting.iter().rposition(|&g| {
            let r = &groups[g][0];
            r.url == l.url && (r.client_id.is_none() || l.client_id.is_none() || r.client_id == l.client_id)
        });
        match partner {
            Some(i) => {
                let g = waiting.remove(i);
                groups[g].push(l);
            }
            None => groups.push(vec![l]),
        }
    }
    groups
}

fn request_of(id: String, mut lines: Vec<LogLine>, file_names: &[String]) -> Request {
    // w/req first, then by time (lines without a time last), then by position.
    lines.sort_by_key(|l| (l.ev.as_deref() != Some("w/req"), l.ts.is_none(), l.ts.map(|s| s.at), l.file, l.line));
    let time = lines
        .iter()
        .find(|l| l.ev.as_deref() == Some("w/req") && l.ts.is_some())
        .and_then(|l| l.ts)
        .or_else(|| lines.iter().filter_map(|l| l.ts).min_by_key(|s| s.at));
    let response = lines.iter().filter(|l| l.ev.as_deref() == Some("w/resp")).filter_map(|l| l.ts).max_by_key(|s| s.at);
    fn first<T: Clone>(lines: &[LogLine], f: impl Fn(&LogLine) -> &Option<T>) -> Option<T> {
        lines.iter().find_map(|l| f(l).clone())
    }
    let source = {
        let kickoff = lines.iter().filter(|l| l.ev.as_deref() == Some("w/req")).min_by_key(|l| (l.file, l.line));
        let l = kickoff.or_else(|| lines.iter().min_by_key(|l| (l.file, l.line))).expect("a request has a line");
        format!("{}:{}", file_names[l.file], l.line)
    };
    Request {
        lines_unpaired: false,
        id,
        time,
        response,
        method: first(&lines, |l| &l.method),
        url: first(&lines, |l| &l.url),
        query: first(&lines, |l| &l.query),
        status: first(&lines, |l| &l.status),
        client_id: first(&lines, |l| &l.client_id),
        user_id: first(&lines, |l| &l.user_id),
        address: first(&lines, |l| &l.address),
        box_id: first(&lines, |l| &l.box_id),
        body: first(&lines, |l| &l.body),
        source,
    }
}

fn coverage(lines: &[LogLine], max_gap_nanos: i64) -> Coverage {
    let mut times: Vec<Instant> = lines.iter().filter_map(|l| l.ts.map(|s| s.at)).collect();
    times.sort_unstable();
    let mut gaps = Vec::new();
    for w in times.windows(2) {
        let d = w[1].0 - w[0].0;
        if d > max_gap_nanos {
            gaps.push(Gap { from: w[0].to_rfc3339(), to: w[1].to_rfc3339(), seconds: d as f64 / 1e9 });
        }
    }
    Coverage {
        lines_with_time: times.len() as u64,
        first: times.first().map(|t| t.to_rfc3339()),
        last: times.last().map(|t| t.to_rfc3339()),
        gaps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(text: &str) -> Vec<LogLine> {
        let mut out = Vec::new();
        read_one(Path::new("t"), 0, text.as_bytes(), &Zone::UTC, &mut out, &mut Tally::new(false)).unwrap();
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
        assert_eq!(r.time.unwrap().at.to_rfc3339(), "2022-12-05T16:34:30.417Z");
        assert_eq!(r.response.unwrap().at.to_rfc3339(), "2022-12-05T16:34:30.500Z");
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
        let berlin = Zone::given("Europe/Berlin".parse().unwrap());
        read_one(Path::new("k.csv"), 0, csv.as_bytes(), &berlin, &mut out, &mut Tally::new(false)).unwrap();
        assert_eq!(out[0].ts.unwrap().at.to_rfc3339(), "2022-12-05T16:34:30.417Z");
        assert_eq!(out[0].client_id.as_deref(), Some("-odd-client"));
        assert_eq!(out[0].status, Some(200));
        assert_eq!(out[0].line, 2);
    }

    #[test]
    fn errors_name_the_line() {
        let mut out = Vec::new();
        let e = read_one(
            Path::new("bad.ndjson"),
            0,
            b"{\"ts\":\"2022-12-05T16:34:30Z\"}\n{oops\n",
            &Zone::UTC,
            &mut out,
            &mut Tally::new(false),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("bad.ndjson:2 (byte 30): invalid JSON"), "{e}");
        let e = read_one(Path::new("u.ndjson"), 0, b"{\"w_url\": 5}\n", &Zone::UTC, &mut out, &mut Tally::new(false))
            .unwrap_err();
        assert!(e.to_string().contains("field w_url should be a string, found a number"), "{e}");
    }

    /// Found by the fuzz target: Kibana CSV rows split by a lone CR, and lines of whitespace the
    /// csv reader took for records, counted more lines than the file has. Read, blank and
    /// skipped lines add up to the lines.
    #[test]
    fn line_accounting_adds_up_with_lone_carriage_returns() {
        let whitespace: &[&[u8]] = &[
            b"\"@timestamp\",ev,ctx,\"w_m\",\"w_url\"\nc\n\t\n\t\x00 \n\t\n\t",
            b"\"ts\",w_url\n\"Dec 5, 2022 @ 16:30:02.118\",/x\n\x0c\x0c\x0c\n\"Dec 5, 2022 @ 16:30:02.118\",/y\n",
        ];
        for bytes in whitespace {
            let mut tally = Tally::new(true);
            let lines = read_one(Path::new("f.csv"), 0, bytes, &Zone::UTC, &mut Vec::new(), &mut tally).unwrap();
            assert_eq!(tally.read + tally.blank + tally.skipped_lines(), lines, "{bytes:?}");
        }
        let bytes = b"\x22ts\x22,,,,,\x22w_m\x22,\x22w_url\x22,\x22\x22ts\x22,,,,,,,,,,,,,,,ev\x0d\x00\x22,\x22ts\x22,,,,,\x22w_m\x22,\x22w_rl\x22,\x22\x22ts\x22,,,,,,,,,,,,,\x00\x00\x00\x00\x00\x00\x00\x0b$,ev\x0d\x00\x22,\x22w_c\x00\x22w_,,";
        let mut tally = Tally::new(true);
        let lines = read_one(Path::new("f.csv"), 0, bytes, &Zone::UTC, &mut Vec::new(), &mut tally).unwrap();
        assert_eq!(tally.read + tally.blank + tally.skipped_lines(), lines);
    }
}
