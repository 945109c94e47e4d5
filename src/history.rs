//! History dumps: reading every version of every resource from any mix of Aidbox history-table
//! rows, resources with `meta`, FHIR history Bundles and single Bundle entries, and keeping of each
//! version only what the audit needs: type, id, version id, lastUpdated, deletion, the patients on
//! its compartment paths, its source position, and for Group, Client and BulkExportStatus the
//! few fields the resolver reads. Bodies are not kept; they are re-read by position on demand.
//!
//! Reading is a pipeline: per file a reader thread decompresses, hashes and cuts blocks of whole
//! lines; rayon parses each block into `VersionBatch`es (strings in one buffer per batch); one
//! indexing thread adds the batches of all files, in input order, to the index.

use std::cmp::Ordering;
use std::path::Path;

use chrono_tz::Tz;
use rayon::prelude::*;
use serde_json::{Map, Value};

use crate::compartment::{self, Compartment};
use crate::error::{describe_json_error, Error, Result, Skipped};
use crate::index::{History, HistoryBuilder};
use crate::inputs::{self, InputFile, InputRecord, LineBlock, LineBlocks, Tally};
use crate::timestamp::{self, Instant};

mod scan;
mod skim;
pub use scan::Interesting;

/// An Aidbox `txid` or a FHIR `versionId`: compared numerically when both are numbers.
/// (A text id is rare and held behind one thin pointer, keeping this 16 bytes in every indexed
/// version.)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VersionId {
    Number(u64),
    Text(Box<String>),
}

impl VersionId {
    pub fn parse(s: &str) -> VersionId {
        match s.parse::<u64>() {
            Ok(n) if !s.starts_with('+') => VersionId::Number(n),
            _ => VersionId::Text(Box::new(s.to_string())),
        }
    }
}

impl std::fmt::Display for VersionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionId::Number(n) => write!(f, "{n}"),
            VersionId::Text(s) => f.write_str(s),
        }
    }
}

impl Ord for VersionId {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (VersionId::Number(a), VersionId::Number(b)) => a.cmp(b),
            (VersionId::Number(a), VersionId::Text(b)) => a.to_string().as_str().cmp(b.as_str()),
            (VersionId::Text(a), VersionId::Number(b)) => a.as_str().cmp(b.to_string().as_str()),
            (VersionId::Text(a), VersionId::Text(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for VersionId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Where a version was read: file index, 1-based line, byte offset of that line in the
/// decompressed stream, and the entry index inside a Bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source {
    pub file: u32,
    pub line: u64,
    pub offset: u64,
    pub entry: Option<Entry>,
}

/// The 0-based index of an entry in a Bundle, stored plus one so that `Option<Entry>` takes four
/// bytes (a `Source` is in every indexed version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry(std::num::NonZeroU32);

impl Entry {
    /// The entry at 0-based `index`; an error from index 2^32 − 1 on (no Bundle comes near).
    pub fn at(index: usize) -> std::result::Result<Entry, &'static str> {
        u32::try_from(index + 1).ok().and_then(std::num::NonZeroU32::new).map(Entry).ok_or("a history Bundle with more than 2^32 entries")
    }

    pub fn index(self) -> u32 {
        self.0.get() - 1
    }
}

/// One member of a Group version.
#[derive(Debug, Clone)]
pub struct Member {
    /// The referenced (type, id); `None` when the entity is not a resolvable reference.
    pub entity: Option<(String, String)>,
    pub inactive: bool,
    pub period_start: Option<Instant>,
    pub period_end: Option<Instant>,
}

/// What a BulkExportStatus version says about one export.
#[derive(Debug, Clone, Default)]
pub struct StatusDetail {
    pub requester: Option<String>,
    pub transaction_time: Option<Instant>,
    pub status: Option<String>,
    pub group_id: Option<String>,
    pub types: Vec<String>,
    pub since: Option<String>,
    /// Per-type counts from `output[]`.
    pub counts: Vec<(String, u64)>,
}

/// The fields of Group, Client and BulkExportStatus versions the resolver reads.
#[derive(Debug, Clone)]
pub enum Detail {
    Group { members: Vec<Member> },
    /// `Ok(scopes)`, or `Err(what was found instead)` when `scope` is neither a string nor an
    /// array of strings.
    Client { scopes: std::result::Result<Vec<String>, String> },
    Status(StatusDetail),
}

/// One version as read from a dump.
#[derive(Debug, Clone)]
pub struct ParsedVersion {
    pub resource_type: String,
    pub id: String,
    pub version_id: VersionId,
    pub last_updated: Instant,
    pub deleted: bool,
    pub source: Source,
    /// The patients whose compartment holds this version: sorted, each once.
    pub patients: Vec<String>,
    pub references: Vec<(String, String)>,
    /// Boxed: most versions have none, and the version is moved a few times on its way in.
    pub detail: Option<Box<Detail>>,
}

/// A range of a batch's text: start and end.
type TextRange = (usize, usize);

/// Versions read from a run of lines, their type, id, patient and reference strings kept in one buffer:
/// one allocation per batch instead of several per version, and nothing for the index thread
/// to free one by one.
#[derive(Default)]
pub struct VersionBatch {
    text: String,
    /// Each patient id, as a range of `text`.
    patients: Vec<TextRange>,
    /// Each reference's type and id (`--non-compartment referenced`), as ranges of `text`.
    references: Vec<(TextRange, TextRange)>,
    versions: Vec<BatchVersion>,
}

/// What a version is besides its type, id, patients and references (the strings a batch keeps
/// together).
pub struct VersionFacts {
    pub version_id: VersionId,
    pub last_updated: Instant,
    pub deleted: bool,
    pub source: Source,
    pub detail: Option<Box<Detail>>,
}

/// One version of a batch: its strings are ranges of the batch's text.
struct BatchVersion {
    resource_type: TextRange,
    id: TextRange,
    /// A range of the batch's `patients`.
    patients: (usize, usize),
    /// A range of the batch's `references`.
    references: (usize, usize),
    facts: VersionFacts,
}

/// One version lent by a batch to the index.
pub struct VersionView<'b> {
    pub resource_type: &'b str,
    pub id: &'b str,
    text: &'b str,
    patient_spans: &'b [TextRange],
    reference_spans: &'b [(TextRange, TextRange)],
    pub facts: VersionFacts,
}

impl<'b> VersionView<'b> {
    /// The patients whose compartment holds this version: sorted, each once.
    pub fn patients(&self) -> impl ExactSizeIterator<Item = &'b str> + '_ {
        self.patient_spans.iter().map(|&(start, end)| &self.text[start..end])
    }

    /// The (type, id) of every resource this version references, when references are kept.
    pub fn references(&self) -> impl ExactSizeIterator<Item = (&'b str, &'b str)> + 'b {
        let text = self.text;
        self.reference_spans.iter().map(move |&((ts, te), (is, ie))| (&text[ts..te], &text[is..ie]))
    }
}

/// How far a batch was filled, to go back to it when a line turns out unreadable.
#[derive(Clone, Copy)]
pub struct BatchMark {
    text: usize,
    patients: usize,
    references: usize,
    versions: usize,
}

impl VersionBatch {
    pub fn with_capacity(versions: usize) -> VersionBatch {
        VersionBatch { text: String::with_capacity(versions * 64), patients: Vec::with_capacity(versions), references: Vec::new(), versions: Vec::with_capacity(versions) }
    }

    pub fn len(&self) -> usize {
        self.versions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    fn keep(&mut self, s: &str) -> TextRange {
        let start = self.text.len();
        self.text.push_str(s);
        (start, self.text.len())
    }

    /// Adds a version; `patients` sorted, each once; `references` as (type, id).
    pub(crate) fn push_parts<S: AsRef<str>, T: AsRef<str>, I: AsRef<str>>(&mut self, resource_type: &str, id: &str, patients: &[S], references: &[(T, I)], facts: VersionFacts) {
        let resource_type = self.keep(resource_type);
        let id = self.keep(id);
        let first = self.patients.len();
        for p in patients {
            let span = self.keep(p.as_ref());
            self.patients.push(span);
        }
        let patients = (first, self.patients.len());
        let first = self.references.len();
        for (t, i) in references {
            let span = (self.keep(t.as_ref()), self.keep(i.as_ref()));
            self.references.push(span);
        }
        let references = (first, self.references.len());
        self.versions.push(BatchVersion { resource_type, id, patients, references, facts });
    }

    pub fn push(&mut self, p: ParsedVersion) {
        let ParsedVersion { resource_type, id, version_id, last_updated, deleted, source, patients, references, detail } = p;
        self.push_parts(&resource_type, &id, &patients, &references, VersionFacts { version_id, last_updated, deleted, source, detail });
    }

    pub fn mark(&self) -> BatchMark {
        BatchMark { text: self.text.len(), patients: self.patients.len(), references: self.references.len(), versions: self.versions.len() }
    }

    /// Drops what was added after `mark`.
    pub fn rollback(&mut self, mark: BatchMark) {
        self.text.truncate(mark.text);
        self.patients.truncate(mark.patients);
        self.references.truncate(mark.references);
        self.versions.truncate(mark.versions);
    }

    /// Lends each version in turn, in the order they were added.
    pub fn drain(self, mut f: impl FnMut(VersionView)) {
        let VersionBatch { text, patients, references, versions } = self;
        let at = |(start, end): TextRange| &text[start..end];
        for v in versions {
            f(VersionView {
                resource_type: at(v.resource_type),
                id: at(v.id),
                text: &text,
                patient_spans: &patients[v.patients.0..v.patients.1],
                reference_spans: &references[v.references.0..v.references.1],
                facts: v.facts,
            });
        }
    }

    /// The versions in their owned form (tests, the fuzz target, benchmarks).
    pub fn into_parsed(self) -> Vec<ParsedVersion> {
        let mut out = Vec::with_capacity(self.len());
        self.drain(|v| {
            let patients = v.patients().map(str::to_string).collect();
            let references = v.references().map(|(t, i)| (t.to_string(), i.to_string())).collect();
            let VersionFacts { version_id, last_updated, deleted, source, detail } = v.facts;
            out.push(ParsedVersion { resource_type: v.resource_type.to_string(), id: v.id.to_string(), version_id, last_updated, deleted, source, patients, references, detail })
        });
        out
    }
}

/// What to extract from each version besides its identity.
pub struct ParseOptions<'a> {
    pub compartment: &'a Compartment,
    pub zone: Tz,
    /// Keep every reference of compartment versions (`--non-compartment referenced`).
    pub keep_references: bool,
    /// The top-level fields the fast path captures.
    pub interesting: Interesting,
    /// Note unreadable lines and go on (`--skip-invalid`) instead of stopping.
    pub skip_invalid: bool,
}

impl<'a> ParseOptions<'a> {
    pub fn new(compartment: &'a Compartment, zone: Tz, keep_references: bool) -> ParseOptions<'a> {
        ParseOptions { compartment, zone, keep_references, interesting: Interesting::new(compartment.first_steps()), skip_invalid: false }
    }
}

/// Reads every history input into the version index. Versions are added in input order (file,
/// line, entry), so the first copy of a repeated version is the one kept.
pub fn read(files: &[InputFile], opts: &ParseOptions) -> Result<(History, Vec<InputRecord>, Vec<Skipped>)> {
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    let mut sw = crate::audit::Stopwatch::new();
    let builder = std::thread::scope(|scope| {
        // The index is built on its own thread, fed in input order, so parsing never waits
        // for it (and it never waits for a file to start).
        let (to_index, batches) = std::sync::mpsc::sync_channel::<Vec<VersionBatch>>(4);
        let indexer = scope.spawn(move || {
            let mut builder = HistoryBuilder::default();
            for batch in batches.into_iter().flatten() {
                builder.add_batch(batch);
            }
            builder
        });
        let spares = inputs::BufferPool::default();
        let reading = files.iter().enumerate().try_for_each(|(i, file)| {
            let mut tally = Tally::new(opts.skip_invalid);
            let (lines, sha) = read_file(file, i as u32, opts, &to_index, &spares, &mut tally)?;
            records.push(tally.record("history", file, sha, lines));
            skipped.extend(tally.skipped);
            Ok(())
        });
        drop(to_index);
        // A panic there is a bug: it goes on as a panic (a send above may have failed for it).
        let builder = indexer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        reading.map(|()| builder)
    })?;
    sw.lap("history: read");
    let h = builder.finish();
    sw.lap("history: index");
    Ok((h, records, skipped))
}

const BLOCK_SIZE: usize = 4 << 20;

/// Reads one file as a pipeline: a reader thread decompresses, hashes and cuts blocks of whole
/// lines; rayon parses each block; its versions go to the indexing thread.
fn read_file(file: &InputFile, index: u32, opts: &ParseOptions, to_index: &std::sync::mpsc::SyncSender<Vec<VersionBatch>>, spares: &inputs::BufferPool, tally: &mut Tally) -> Result<(u64, String)> {
    let input = inputs::open(file)?;
    let path = file.path.as_path();
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<LineBlock>>(2);
        let reader = scope.spawn(move || {
            let mut input = input;
            for block in LineBlocks::new(&mut input.reader, path, BLOCK_SIZE).with_spares(spares) {
                if tx.send(block).is_err() {
                    break;
                }
            }
            input.sha256()
        });
        let mut lines = 0;
        let index_failed = || Error::Usage("internal error: the indexing thread stopped".into());
        let mut blocks = rx.iter();
        let mut first = true;
        while let Some(block) = blocks.next() {
            let block = match block {
                Ok(b) => b,
                // A truncated or corrupt compressed file: the rest of it cannot be read (and
                // is not counted among its lines).
                Err(e) => {
                    tally.fail_spanning(e, None, 0, None)?;
                    break;
                }
            };
            if first {
                first = false;
                if !starts_with_whole_json_line(&block.bytes) {
                    // A pretty-printed document (a Bundle per file): read it whole.
                    let mut all = block.bytes;
                    for b in blocks.by_ref() {
                        match b {
                            Ok(b) => all.extend_from_slice(&b.bytes),
                            Err(e) => {
                                tally.fail_spanning(e, None, 0, None)?;
                                break;
                            }
                        }
                    }
                    lines = count_lines(&all);
                    let mut batch = VersionBatch::default();
                    parse_documents(path, index, &all, opts, &mut batch, tally)?;
                    to_index.send(vec![batch]).map_err(|_| index_failed())?;
                    break;
                }
            }
            lines = block.first_line - 1 + block.lines;
            let (versions, block_tally) = parse_block(path, index, &block, opts)?;
            to_index.send(versions).map_err(|_| index_failed())?;
            tally.absorb(block_tally);
            spares.give(block.bytes);
        }
        let sha = reader.join().map_err(|_| Error::input(path, 0, 0, "the reader thread failed"))?;
        Ok((lines, sha))
    })
}

use inputs::count_lines;

fn starts_with_whole_json_line(bytes: &[u8]) -> bool {
    let body = inputs::strip_bom(bytes);
    let Some(start) = body.iter().position(|b| !b.is_ascii_whitespace()) else { return true };
    let rest = &body[start..];
    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    serde_json::from_slice::<serde::de::IgnoredAny>(&rest[..end]).is_ok()
}

/// One line through the fast path, for the fuzz target that compares it with the `Value` path:
/// the versions' debug text, or `None` for an error.
pub fn scan_for_fuzzing(line: &[u8], src: Source, opts: &ParseOptions) -> Option<String> {
    let mut out = VersionBatch::default();
    scan::scan_line(line, src, opts, &opts.interesting, &mut out).ok().map(|()| format!("{:?}", out.into_parsed()))
}

/// For the fuzz target: when the quick reader accepts a line, serde_json must read the same
/// fields from it. `Err` says how they differ.
pub fn check_skim_for_fuzzing(line: &[u8], opts: &ParseOptions) -> std::result::Result<(), String> {
    let Some(quick) = skim::fields(line, &opts.interesting) else { return Ok(()) };
    match scan::serde_fields(line, &opts.interesting) {
        Ok(slow) if format!("{quick:?}") == format!("{slow:?}") => Ok(()),
        Ok(slow) => Err(format!("fields differ: quick {quick:?}, serde {slow:?}")),
        Err(e) => Err(format!("the quick reader accepts what serde_json refuses: {e}")),
    }
}

/// For benchmarks: whether the quick reader accepts a line.
#[doc(hidden)]
pub fn skim_for_bench(line: &[u8], opts: &ParseOptions) -> bool {
    skim::fields(line, &opts.interesting).is_some()
}

/// For benchmarks: the number of versions the fast path reads from `lines` (lines with an error
/// add none), in batches of 256 lines as the reader makes them.
#[doc(hidden)]
pub fn scan_for_bench(lines: &[&[u8]], opts: &ParseOptions) -> usize {
    lines
        .chunks(256)
        .map(|chunk| {
            let mut out = VersionBatch::with_capacity(chunk.len());
            for (n, text) in chunk.iter().enumerate() {
                let src = Source { file: 0, line: n as u64 + 1, offset: 0, entry: None };
                let before = out.mark();
                if scan::scan_line(text, src, opts, &opts.interesting, &mut out).is_err() {
                    out.rollback(before);
                }
            }
            out.len()
        })
        .sum()
}

/// Parses the lines of one block in parallel; the first error in line order wins (or, with
/// `--skip-invalid`, every unreadable line is noted and left out).
fn parse_block(path: &Path, file: u32, block: &LineBlock, opts: &ParseOptions) -> Result<(Vec<VersionBatch>, Tally)> {
    let lines: Vec<(u64, u64, &[u8])> = inputs::lines_of(block).collect();
    let chunks: Vec<Result<(VersionBatch, Tally)>> = lines
        .par_chunks(256)
        .map(|chunk| {
            let mut out = VersionBatch::with_capacity(chunk.len());
            let mut tally = Tally::new(opts.skip_invalid);
            for &(line, offset, text) in chunk {
                let text = if line == 1 { inputs::strip_bom(text) } else { text };
                if text.iter().all(|b| b.is_ascii_whitespace()) {
                    tally.blank += 1;
                    continue;
                }
                let src = Source { file, line, offset, entry: None };
                let before = out.mark();
                match scan::scan_line(text, src, opts, &opts.interesting, &mut out) {
                    Ok(()) => tally.read += 1,
                    Err(e) => {
                        out.rollback(before);
                        tally.fail(match e {
                            scan::ScanError::Json(e) => Error::input(path, line, offset, describe_json_error(&e)),
                            scan::ScanError::Shape(what) => Error::input(path, line, offset, what),
                        })?;
                    }
                }
            }
            Ok((out, tally))
        })
        .collect();
    let mut out = Vec::with_capacity(chunks.len());
    let mut tally = Tally::new(opts.skip_invalid);
    for c in chunks {
        let (versions, t) = c?;
        out.push(versions);
        tally.absorb(t);
    }
    Ok((out, tally))
}

/// Parses a file of JSON documents that span lines.
fn parse_documents(path: &Path, file: u32, all: &[u8], opts: &ParseOptions, out: &mut VersionBatch, tally: &mut Tally) -> Result<()> {
    let body = inputs::strip_bom(all);
    let bom = (all.len() - body.len()) as u64;
    let total = count_lines(all);
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    let mut lines_done = 0u64;
    loop {
        let start = stream.byte_offset();
        let start = start + body[start..].iter().take_while(|b| b.is_ascii_whitespace()).count();
        let line = inputs::line_of_offset(body, start);
        let result = stream.next();
        let end_line = if stream.byte_offset() >= body.len() { total } else { inputs::line_of_offset(body, stream.byte_offset()) };
        let failure = match result {
            None => {
                tally.blank += total - lines_done;
                return Ok(());
            }
            Some(Ok(value)) => {
                let src = Source { file, line, offset: start as u64 + bom, entry: None };
                match versions_of_document(value, src, opts) {
                    Ok(vs) => {
                        vs.into_iter().for_each(|v| out.push(v));
                        // The document's lines count as read; blank lines before it as blank.
                        tally.blank += line.saturating_sub(lines_done + 1);
                        tally.read += end_line + 1 - line;
                        lines_done = end_line;
                        continue;
                    }
                    Err(what) => Error::input(path, line, start as u64 + bom, what),
                }
            }
            Some(Err(e)) => Error::input(path, e.line() as u64, start as u64 + bom, describe_json_error(&e)),
        };
        // After an unreadable document the rest of the file cannot be resynchronised.
        tally.blank += line.saturating_sub(lines_done + 1);
        let note = format!("the rest of the file, from line {line}, is left out");
        return tally.fail_spanning(failure, Some(line), total + 1 - line, Some(&note));
    }
}

/// The versions in one JSON document: a history-table row, a resource, a history Bundle or a
/// single Bundle entry.
pub fn versions_of_document(value: Value, src: Source, opts: &ParseOptions) -> std::result::Result<Vec<ParsedVersion>, String> {
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
                Some(_) => return Err("history Bundle whose entry is not an array".into()),
            };
            let mut out = Vec::with_capacity(entries.len());
            for (i, e) in entries.iter().enumerate() {
                let Value::Object(e) = e else {
                    return Err(format!("history Bundle entry {i} is not an object"));
                };
                let src = Source { entry: Some(Entry::at(i)?), ..src };
                out.push(bundle_entry(e, src, opts).map_err(|m| format!("history Bundle entry {i}: {m}"))?);
            }
            Ok(out)
        }
        Some(_) => resource_with_meta(&obj, src, opts).map(|v| vec![v]),
        None if obj.contains_key("request") || obj.contains_key("response") || obj.contains_key("resource") => {
            bundle_entry(&obj, src, opts).map(|v| vec![v])
        }
        None => Err("a JSON object that is no history row (resource_type), resource (resourceType) or Bundle entry (request/response)".into()),
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
pub(crate) fn parse_time(text: &str, what: impl FnOnce() -> String, zone: &Tz) -> std::result::Result<Instant, String> {
    timestamp::parse(text, zone).map_err(|e| format!("{}: {e}", what()))
}

/// `{"id", "resource_type", "txid", "ts", "cts", "status", "resource"}`.
fn aidbox_row(obj: Map<String, Value>, src: Source, opts: &ParseOptions) -> std::result::Result<ParsedVersion, String> {
    let rtype = str_of(&obj, "resource_type").ok_or("history row whose resource_type is not a string")?.to_string();
    let id = match obj.get("id") {
        Some(v) => version_text(v).ok_or("history row whose id is not a string")?,
        None => return Err(format!("{rtype} history row without id")),
    };
    let txid = obj.get("txid").ok_or_else(|| format!("{rtype}/{id}: history row without txid"))?;
    let version_id = match txid {
        Value::Number(n) if n.is_u64() => VersionId::Number(n.as_u64().unwrap_or_default()),
        Value::String(s) if !s.is_empty() => VersionId::parse(s),
        _ => return Err(format!("{rtype}/{id}: txid is not a number")),
    };
    let ts = str_of(&obj, "ts").ok_or_else(|| format!("{rtype}/{id}: history row without ts"))?;
    let last_updated = parse_time(ts, || format!("{rtype}/{id} ts"), &opts.zone)?;
    let deleted = str_of(&obj, "status") == Some("deleted");
    let body = obj.get("resource").filter(|b| b.is_object());
    if body.is_none() && !deleted {
        return Err(format!("{rtype}/{id}: history row without a resource object"));
    }
    Ok(finish(rtype, id, version_id, last_updated, deleted, src, body, opts))
}

/// A resource with `resourceType`, `id`, `meta.versionId`, `meta.lastUpdated`.
fn resource_with_meta(obj: &Map<String, Value>, src: Source, opts: &ParseOptions) -> std::result::Result<ParsedVersion, String> {
    let rtype = str_of(obj, "resourceType").ok_or("resourceType is not a string")?.to_string();
    let id = str_of(obj, "id").ok_or_else(|| format!("{rtype} resource without id"))?.to_string();
    let meta = obj.get("meta").and_then(Value::as_object).ok_or_else(|| format!("{rtype}/{id}: resource without meta (no versionId/lastUpdated)"))?;
    let vid = meta.get("versionId").and_then(version_text).ok_or_else(|| format!("{rtype}/{id}: meta without versionId"))?;
    let lu = str_of(meta, "lastUpdated").ok_or_else(|| format!("{rtype}/{id}: meta without lastUpdated"))?;
    let last_updated = parse_time(lu, || format!("{rtype}/{id} meta.lastUpdated"), &opts.zone)?;
    let body = Value::Object(obj.clone());
    Ok(finish(rtype, id, VersionId::parse(&vid), last_updated, false, src, Some(&body), opts))
}

/// A history Bundle entry: `resource`, `request.method`/`url`, `response.lastModified`/`etag`.
pub(crate) fn bundle_entry(e: &Map<String, Value>, src: Source, opts: &ParseOptions) -> std::result::Result<ParsedVersion, String> {
    let request = e.get("request").and_then(Value::as_object);
    let response = e.get("response").and_then(Value::as_object);
    let method = request.and_then(|r| str_of(r, "method")).unwrap_or("").to_ascii_uppercase();
    let resource = e.get("resource").and_then(Value::as_object);
    if method != "DELETE" {
        let Some(res) = resource else {
            return Err(format!("{} entry without a resource", if method.is_empty() { "a" } else { &method }));
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
        .or_else(|| response.and_then(|r| str_of(r, "etag")).map(|t| t.trim_start_matches("W/").trim_matches('"').to_string()).filter(|s| !s.is_empty()))
        .or_else(|| meta.and_then(|m| m.get("versionId")).and_then(version_text))
        .ok_or_else(|| format!("{rtype}/{id}: DELETE entry without a version (no _history/V in the URL, no ETag)"))?;
    let lu = response
        .and_then(|r| str_of(r, "lastModified"))
        .or_else(|| meta.and_then(|m| str_of(m, "lastUpdated")))
        .ok_or_else(|| format!("{rtype}/{id}: DELETE entry without response.lastModified"))?;
    let last_updated = parse_time(lu, || format!("{rtype}/{id} response.lastModified"), &opts.zone)?;
    Ok(finish(rtype, id, VersionId::parse(&vid), last_updated, true, src, None, opts))
}

/// `[base/]Type/id[/_history/V]` → (type, id, version).
fn split_history_url(url: &str) -> Option<(String, String, Option<String>)> {
    let url = url.split('?').next().unwrap_or(url).trim_end_matches('/');
    let segs: Vec<&str> = url.split('/').collect();
    let n = segs.len();
    if n >= 4 && segs[n - 2] == "_history" {
        let (t, i) = (segs[n - 4], segs[n - 3]);
        return compartment::parse_reference(&format!("{t}/{i}")).map(|(t, i)| (t.to_string(), i.to_string(), Some(segs[n - 1].to_string())));
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
) -> ParsedVersion {
    let (patients, references, detail) = match body {
        Some(b) if !deleted => {
            let patients = opts.compartment.patients_of(&resource_type, &id, b);
            let references = if opts.keep_references && opts.compartment.contains(&resource_type) {
                compartment::all_references(b)
            } else {
                Vec::new()
            };
            (patients, references, detail_of(&resource_type, b, &opts.zone).map(Box::new))
        }
        _ => (Vec::new(), Vec::new(), None),
    };
    ParsedVersion { resource_type, id, version_id, last_updated, deleted, source, patients, references, detail }
}

pub(crate) fn detail_of(resource_type: &str, body: &Value, zone: &Tz) -> Option<Detail> {
    match resource_type {
        "Group" => Some(Detail::Group { members: members_of(body, zone) }),
        "Client" => Some(Detail::Client { scopes: scopes_of(body) }),
        "BulkExportStatus" => Some(Detail::Status(status_of(body, zone))),
        _ => None,
    }
}

fn members_of(body: &Value, zone: &Tz) -> Vec<Member> {
    let Some(Value::Array(list)) = body.get("member") else { return Vec::new() };
    list.iter()
        .map(|m| {
            let time = |k: &str| m.get("period").and_then(|p| p.get(k)).and_then(Value::as_str).and_then(|s| timestamp::parse(s, zone).ok());
            Member {
                entity: m.get("entity").and_then(compartment::reference_of_node),
                inactive: m.get("inactive").and_then(Value::as_bool).unwrap_or(false),
                period_start: time("start"),
                period_end: time("end"),
            }
        })
        .collect()
}

fn scopes_of(body: &Value) -> std::result::Result<Vec<String>, String> {
    match body.get("scope") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split_whitespace().map(String::from).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(String::from).ok_or_else(|| "scope array holds a non-string".to_string()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(|v| v.iter().flat_map(|s| s.split_whitespace().map(String::from)).collect()),
        Some(other) => Err(format!("scope is {}", if other.is_number() { "a number" } else if other.is_object() { "an object" } else { "a boolean" })),
    }
}

fn status_of(body: &Value, zone: &Tz) -> StatusDetail {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(String::from);
    let requester = body.get("requester").and_then(|r| match r {
        Value::String(s) => Some(compartment::parse_reference(s).map(|(_, i)| i.to_string()).unwrap_or_else(|| s.clone())),
        _ => compartment::reference_of_node(r).map(|(_, i)| i).or_else(|| s(r.get("id"))),
    });
    let params = body.get("params");
    let group_id = params.and_then(|p| p.get("group-id").or_else(|| p.get("groupId")).or_else(|| p.get("group"))).and_then(|g| match g {
        Value::String(s) => Some(compartment::parse_reference(s).map(|(_, i)| i.to_string()).unwrap_or_else(|| s.clone())),
        other => compartment::reference_of_node(other).map(|(_, i)| i),
    });
    let types = match params.and_then(|p| p.get("types").or_else(|| p.get("_type"))) {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(String::from).collect(),
        Some(Value::String(s)) => s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect(),
        _ => Vec::new(),
    };
    let mut counts: Vec<(String, u64)> = Vec::new();
    if let Some(Value::Array(out)) = body.get("output") {
        for o in out {
            if let Some(t) = o.get("type").and_then(Value::as_str) {
                let c = o.get("count").and_then(|c| c.as_u64().or_else(|| c.as_str().and_then(|s| s.parse().ok()))).unwrap_or(0);
                match counts.iter_mut().find(|(k, _)| k == t) {
                    Some((_, n)) => *n += c,
                    None => counts.push((t.to_string(), c)),
                }
            }
        }
    }
    counts.sort();
    StatusDetail {
        requester,
        transaction_time: s(body.get("transactionTime")).and_then(|t| timestamp::parse(&t, zone).ok()),
        status: s(body.get("status")),
        group_id,
        types,
        since: s(params.and_then(|p| p.get("since").or_else(|| p.get("_since")))),
        counts,
    }
}

/// Re-reads the body of a version from its source position (for `--with-resource` and
/// `--reconstruct`). The body is completed with `resourceType`, `id` and `meta` where the dump
/// form (an Aidbox row) lacks them.
pub fn read_body(doc: &Value, source: &Source, resource_type: &str, id: &str, version_id: &VersionId, last_updated: Instant) -> Option<Value> {
    let entry_or_doc = match source.entry {
        Some(i) => doc.get("entry")?.get(i.index() as usize)?,
        None => doc,
    };
    let body = if entry_or_doc.get("resource_type").is_some() {
        entry_or_doc.get("resource")?
    } else if entry_or_doc.get("resourceType").is_some() {
        entry_or_doc
    } else {
        entry_or_doc.get("resource")?
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
    use crate::compartment::FhirVersion;
    use serde_json::json;

    fn parse(v: Value) -> std::result::Result<Vec<ParsedVersion>, String> {
        let c = Compartment::load(FhirVersion::R4);
        let opts = ParseOptions::new(&c, Tz::UTC, true);
        versions_of_document(v, Source { file: 0, line: 1, offset: 0, entry: None }, &opts)
    }

    #[test]
    fn version_ids_compare_numerically() {
        assert!(VersionId::parse("9") < VersionId::parse("10"));
        assert!(VersionId::parse("abc") > VersionId::parse("10"));
    }

    /// A batch keeps each version's patients and references as its own, and going back to a
    /// mark drops the later versions' strings, patients and references together.
    #[test]
    fn batch_keeps_references_per_version_and_rolls_back() {
        let facts = |n: u64| VersionFacts { version_id: VersionId::Number(n), last_updated: Instant(n as i64), deleted: false, source: Source { file: 0, line: n, offset: 0, entry: None }, detail: None };
        let mut batch = VersionBatch::default();
        batch.push_parts("Observation", "o1", &["p1"], &[("Patient", "p1"), ("Encounter", "e1")], facts(1));
        batch.push_parts("Observation", "o2", &["p2"], &[("Practitioner", "d1")], facts(2));
        let mark = batch.mark();
        batch.push_parts("Claim", "c1", &["p3", "p4"], &[("Organization", "x"), ("Patient", "p3")], facts(3));
        batch.rollback(mark);
        assert_eq!((batch.mark().patients, batch.mark().references), (2, 3), "the rolled-back version's lists are gone");
        batch.push_parts("Patient", "p9", &["p9"], &[("Organization", "o9")], facts(4));
        let v = batch.into_parsed();
        type Got<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>);
        let got: Vec<Got> = v.iter().map(|p| (p.id.as_str(), p.patients.iter().map(String::as_str).collect(), p.references.iter().map(|(t, i)| (t.as_str(), i.as_str())).collect())).collect();
        assert_eq!(
            got,
            vec![
                ("o1", vec!["p1"], vec![("Patient", "p1"), ("Encounter", "e1")]),
                ("o2", vec!["p2"], vec![("Practitioner", "d1")]),
                ("p9", vec!["p9"], vec![("Organization", "o9")]),
            ]
        );
    }

    #[test]
    fn aidbox_rows() {
        let v = parse(json!({"id": "o1", "resource_type": "Observation", "txid": 120, "ts": "2022-12-05T10:00:00.123456+00:00",
                             "status": "updated", "resource": {"subject": {"resourceType": "Patient", "id": "p1"}}})).unwrap();
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
        let Some(Detail::Client { scopes }) = c[0].detail.as_deref() else { panic!() };
        assert_eq!(scopes.as_ref().unwrap(), &vec!["system/Patient.read".to_string(), "system/Observation.rs".to_string()]);
        let bad = parse(json!({"resourceType": "Client", "id": "c", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"}, "scope": 5})).unwrap();
        let Some(Detail::Client { scopes }) = bad[0].detail.as_deref() else { panic!() };
        assert_eq!(scopes.as_ref().unwrap_err(), "scope is a number");
    }

    /// The fast path (`scan`) and the `Value` path agree on every line of the fixtures and on
    /// hand-made edge cases.
    #[test]
    fn fast_path_matches_the_value_path() {
        let c = Compartment::load(FhirVersion::R4);
        let mut lines: Vec<String> = Vec::new();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let files = crate::inputs::collect(&[root.join("synthea/history"), root.join("guide/history")]).unwrap();
        for f in &files {
            let (bytes, _, cut) = crate::inputs::read_whole(f).unwrap();
            assert!(cut.is_none());
            let text = String::from_utf8(bytes).unwrap();
            if text.starts_with('{') && text.lines().next().is_some_and(|l| serde_json::from_str::<Value>(l).is_ok()) {
                lines.extend(text.lines().map(String::from));
            } else {
                lines.push(serde_json::from_str::<Value>(&text).unwrap().to_string());
            }
        }
        lines.extend(
            [
                json!({"resourceType": "Observation", "id": "o", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"},
                       "subject": {"resourceType": "Encounter", "uri": "http://x/Patient/u"}, "performer": [{"resourceType": "Patient"}, {"uri": "Patient/v", "id": 5}, {"reference": 7, "resourceType": "Patient", "id": "w"}]}),
                json!({"resourceType": "Observation", "id": "o", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"}, "subject": [[{"reference": "Patient/nested"}]], "performer": "Patient/p"}),
                json!({"resourceType": "CarePlan", "id": "c", "meta": {"versionId": 7, "lastUpdated": "2022-01-01T00:00:00Z"}, "activity": [{"detail": {"performer": [{"reference": "Patient/a"}, {"reference": "Practitioner/b"}]}}, {"detail": null}]}),
                json!({"id": "n", "resource_type": "Observation", "txid": "12", "ts": "2022-01-01T00:00:00Z", "status": "created", "resource": {"subject": {"id": "z", "resourceType": "Patient"}, "performer": [{"uri": "https://a/b/Patient/y/_history/2"}]}}),
                json!({"resourceType": "Group", "id": "g", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"}, "member": [{"entity": {"reference": "Patient/m"}, "inactive": true}]}),
                json!({"resourceType": "Patient", "id": "p", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"}, "link": [{"other": {"reference": "Patient/q"}}]}),
                // Found by the history fuzz target: an Aidbox-form id that is no FHIR id.
                json!({"resourceType": "Observation", "id": "o", "meta": {"versionId": "1", "lastUpdated": "2022-01-01T00:00:00Z"}, "subject": {"id": "6c5d9ca9-54d?-42f5", "resourceType": "Patient"}}),
            ]
            .iter()
            .map(|v| v.to_string()),
        );
        // Written out, for what `json!` cannot say: escapes, repeated keys, odd spacing. They take
        // the quick reader's fall-backs to serde_json.
        let meta = r#""meta":{"versionId":"1","lastUpdated":"2022-01-01T00:00:00Z"}"#;
        lines.extend([
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"subject":{{"reference":"Patient\/esc"}},"performer":[{{"reference":"Patient/a","reference":"Patient/b"}}]}}"#),
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"subj\u0065ct":{{"reference":"Patient/k"}}}}"#),
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"subject":{{"refer\u0065nce":"Patient/k2"}}}}"#),
            r#"{"resourceType":"Observation","id":"o","meta":{"versionId":"1","versionId":"2","lastUpdated":"2022-01-01T00:00:00Z"}}"#.to_string(),
            r#"{"resourceType":"Observation","id":"o","meta":{"version\u0049d":"3","lastUpdated":"2022-01-01T00:00:00Z"}}"#.to_string(),
            format!(r#" {{ "resourceType" : "Observation" , "id" : "o" , {meta} , "note" : [ {{ "text" : "café \"x\"" }} ] , "subject" : [ {{ "reference" : "Patient/sp" }} ] }} "#),
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"subject":{{"reference":"Patient/été"}},"performer":{{"resourceType":"Patient","id":"x\u0079"}}}}"#),
            // Every reference in the body (--non-compartment referenced), walked off the raw
            // text or, in doubt, read whole: nested, contained, unresolvable, in other forms.
            format!(
                r##"{{"resourceType":"Observation","id":"o",{meta},"identifier":[{{"assigner":{{"reference":"Organization/o1"}}}}],"contained":[{{"resourceType":"Practitioner","id":"pr","x":{{"reference":"Location/l1"}}}}],"extension":[{{"contained":{{"reference":"Location/l2"}}}}],"focus":[{{"reference":"urn:uuid:1","identifier":{{"assigner":{{"reference":"Organization/o2"}}}}}}],"x":{{"resourceType":"patient","id":"p","y":{{"reference":"Device/d1"}}}},"z":{{"reference":5,"uri":"Location/l3"}},"w":[[{{"reference":"Device/d5"}}]],"subject":{{"reference":"Patient/p1/_history/2"}},"device":{{"reference":"http://x/fhir/Device/d6"}},"v":{{"resourceType":"Device","id":"d7"}},"u":{{"reference":"#c1","uri":"Location/l4"}}}}"##
            ),
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"x":{{"reference":"Device\/d2"}},"y":{{"reference":"Device/d8"}}}}"#),
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"x":{{"a":{{"reference":"Device/d3"}},"a":{{"reference":"Device/d4"}}}}}}"#),
            // A compartment field repeated at the top level (found by the fuzz target): the last
            // value counts, as in serde_json's Value, in a resource and in a Bundle entry.
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"subject":{{"reference":"Patient/first"}},"subject":{{"reference":"Patient/last"}}}}"#),
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"subject":{{"reference":"Patient/first"}},"note":[],"subject":{{"reference":"Pat ient/x"}}}}"#),
            format!(r#"{{"resourceType":"Observation","id":"o",{meta},"performer":[{{"reference":"Patient/a"}}],"subject":{{"reference":"Patient/s"}},"performer":[]}}"#),
            format!(r#"{{"resourceType":"Bundle","type":"history","entry":[{{"request":{{"method":"PUT"}},"resource":{{"resourceType":"CarePlan","id":"c",{meta},"subject":{{"reference":"Patient/first"}},"subject":{{"reference":"Patient/last"}}}}}}]}}"#),
            format!(r#"{{"resourceType":"Group","id":"g",{meta},"member":[{{"entity":{{"reference":"Patient/first"}}}}],"member":[{{"entity":{{"reference":"Patient/last"}}}}]}}"#),
            // Repeated deeper on the path (found in review): walked quickly, and by serde_json
            // where an escaped key makes the quick walk doubt.
            format!(r#"{{"resourceType":"Appointment","id":"a",{meta},"participant":[{{"actor":{{"reference":"Patient/first"}},"actor":{{"reference":"Patient/last"}}}}]}}"#),
            format!(r#"{{"resourceType":"Appointment","id":"a",{meta},"participant":[{{"actor":{{"reference":"Patient/first"}},"actor":{{"reference":"Patient/last"}}}}]}}"#),
            format!(r#"{{"resourceType":"Appointment","id":"a",{meta},"participant":[{{"actor":{{"reference":"Patient/x"}},"actor":{{"reference":"Patient/y"}},"actor":{{"reference":"Patient/z"}}}},{{"actor":{{"reference":"Patient/w"}}}}]}}"#),
            format!(r#"{{"resourceType":"Appointment","id":"a",{meta},"participant":[{{"actor":{{"reference":"Patient/p","reference":"Patient/q"}}}}]}}"#),
        ]);
        for keep_references in [false, true] {
            let opts = ParseOptions::new(&c, Tz::UTC, keep_references);
            for (i, line) in lines.iter().enumerate() {
                let src = Source { file: 0, line: i as u64 + 1, offset: 0, entry: None };
                let slow = versions_of_document(serde_json::from_str(line).unwrap(), src, &opts);
                let mut fast = VersionBatch::default();
                let fast = scan::scan_line(line.as_bytes(), src, &opts, &opts.interesting, &mut fast).map(|()| fast.into_parsed()).map_err(|e| match e {
                    scan::ScanError::Json(e) => e.to_string(),
                    scan::ScanError::Shape(s) => s,
                });
                assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "line {i}: {line}");
            }
        }
        assert!(lines.len() > 500, "{} lines", lines.len());
    }

    /// A choice element on a path (R5: `NutritionIntake.reported as Reference`), spelled the FHIR
    /// way (`reportedReference`) and the Aidbox way (`reported: {"Reference": …}`), with keys
    /// repeated: the fast path reads what serde_json's Value keeps, the last value of each key.
    #[test]
    fn repeated_choice_keys_count_once() {
        let c = Compartment::load(FhirVersion::R5);
        let opts = ParseOptions::new(&c, Tz::UTC, false);
        let meta = r#""meta":{"versionId":"1","lastUpdated":"2020-01-01T00:00:00Z"}"#;
        let lines = [
            format!(r#"{{"resourceType":"NutritionIntake","id":"n",{meta},"reported":{{"Reference":{{"reference":"Patient/a"}},"Reference":{{"reference":"Patient/b"}}}}}}"#),
            format!(r#"{{"resourceType":"NutritionIntake","id":"n",{meta},"reported":{{"Reference":{{"reference":"Patient/a"}}}},"reported":{{"Reference":{{"reference":"Patient/b"}}}}}}"#),
            format!(r#"{{"resourceType":"NutritionIntake","id":"n",{meta},"reportedReference":{{"reference":"Patient/a"}},"reportedReference":{{"reference":"Patient/b"}},"reported":{{"Reference":{{"reference":"Patient/c"}}}}}}"#),
            format!(r#"{{"resourceType":"NutritionIntake","id":"n",{meta},"reported":{{"Reference":{{"reference":"Patient/a"}},"Reference":{{"reference":"Patient/b"}}}}}}"#),
        ];
        let mut patients = Vec::new();
        for line in &lines {
            let src = Source { file: 0, line: 1, offset: 0, entry: None };
            let slow = versions_of_document(serde_json::from_str(line).unwrap(), src, &opts).unwrap();
            let mut fast = VersionBatch::default();
            scan::scan_line(line.as_bytes(), src, &opts, &opts.interesting, &mut fast).map_err(|_| line.clone()).unwrap();
            let fast = fast.into_parsed();
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{line}");
            patients.push(fast[0].patients.clone());
        }
        assert_eq!(patients, [vec!["b"], vec!["b"], vec!["b", "c"], vec!["b"]]);
    }

    /// Found in review: values on a compartment path that serde_json refuses to read (a number
    /// too large for f64, a lone surrogate) while skipping them elsewhere is fine. The fast path
    /// must refuse such a line as the reference path does, not read it without the patient.
    #[test]
    fn values_on_compartment_paths_are_read_strictly() {
        let c = Compartment::load(FhirVersion::R4);
        let opts = ParseOptions::new(&c, Tz::UTC, false);
        let head = r#"{"resourceType":"Observation","id":"o","meta":{"versionId":"1","lastUpdated":"2020-01-01T00:00:00Z"},"subject":"#;
        for x in ["1e400", "-1e400", "[1e400]", r#""\ud800""#, r#"[{"reference":1e400}]"#, r#"{"reference":{"\udc00":0}}"#, r#"{"reference":"\udc00"}"#] {
            let line = format!("{head}{x}}}");
            let src = Source { file: 0, line: 1, offset: 0, entry: None };
            let mut out = VersionBatch::default();
            assert!(scan::scan_line(line.as_bytes(), src, &opts, &opts.interesting, &mut out).is_err(), "fast path read {line}");
            assert!(serde_json::from_str::<Value>(&line).is_err(), "reference path read {line}");
        }
        // Skipped elsewhere, the same values are no error for the fast path.
        let line = r#"{"resourceType":"Observation","id":"o","meta":{"versionId":"1","lastUpdated":"2020-01-01T00:00:00Z"},"note":[1e400,"\ud800"],"subject":{"reference":"Patient/p"}}"#;
        let mut out = VersionBatch::default();
        assert!(scan::scan_line(line.as_bytes(), Source { file: 0, line: 1, offset: 0, entry: None }, &opts, &opts.interesting, &mut out).is_ok());
        assert_eq!(out.into_parsed()[0].patients, vec!["p".to_string()]);
    }

    #[test]
    fn missing_fields_are_named() {
        assert_eq!(parse(json!({"resourceType": "Observation", "meta": {}})).unwrap_err(), "Observation resource without id");
        assert_eq!(parse(json!({"resourceType": "Observation", "id": "o", "meta": {"versionId": "1"}})).unwrap_err(), "Observation/o: meta without lastUpdated");
        assert_eq!(parse(json!({"id": "o", "resource_type": "Observation", "txid": 1, "resource": {}})).unwrap_err(), "Observation/o: history row without ts");
        assert!(parse(json!({"foo": 1})).is_err());
    }
}
