//! History dumps: reading every version of every resource from any mix of Aidbox history-table
//! rows, resources with `meta`, FHIR history Bundles and single Bundle entries, and keeping of each
//! version only what the audit needs: type, id, version id, lastUpdated, deletion, the patients on
//! its compartment paths, its source position, and for Group, Client and BulkExportStatus the
//! few fields the resolver reads. Bodies are not kept; they are re-read by position on demand.
//!
//! Reading is a pipeline: per file a reader thread decompresses, hashes and cuts blocks of whole
//! lines; rayon parses each block into `VersionBatch`es (strings in one buffer per batch); one
//! indexing thread adds the batches of all files, in input order, to the index.

mod detail;
mod document;
mod fast;
pub(crate) mod forms;
#[cfg(feature = "hooks")]
pub(crate) mod fuzzing;
mod messages;
mod names;
pub(crate) mod pg_text;
#[cfg(test)]
mod tests;
pub(crate) mod yaml;

use std::path::Path;

use crate::timestamp::Zone;
use rayon::prelude::*;
use serde_json::Value;

use crate::error::{describe_json_error, Error, Result, Skipped};
use crate::fhir::compartment::Compartment;
use crate::source::{self, count_lines, BufferPool, Digest, InputFile, InputRecord, LineBlock, LineBlocks, Tally};
use crate::version::{Source, VersionBatch};

pub(crate) use detail::DETAIL_FIELDS;
pub(crate) use document::{read_body, versions_of_document};
use fast::Interesting;
use forms::{Form, Layout, LineKind, LineReader};
use messages::Unreadable;
pub(crate) use names::named_types;
use pg_text::Columns;

/// What to extract from each version besides its identity.
pub(crate) struct ParseOptions<'a> {
    pub(crate) compartment: &'a Compartment,
    pub(crate) zone: Zone,
    /// Keep every reference of compartment versions (`--non-compartment referenced`).
    pub(crate) keep_references: bool,
    /// The top-level fields the fast path captures.
    pub(crate) interesting: Interesting,
    /// Note unreadable lines and go on (`--skip-invalid`) instead of stopping.
    pub(crate) skip_invalid: bool,
    /// The columns of a `$dump-sql` TSV without a header (`--tsv-columns`).
    pub(crate) tsv_columns: Option<Columns>,
    /// Only these lines are read (`index --lines`); the others are passed over, counted.
    pub(crate) lines: Option<source::LineRange>,
}

impl<'a> ParseOptions<'a> {
    pub(crate) fn new(compartment: &'a Compartment, zone: Zone, keep_references: bool) -> ParseOptions<'a> {
        ParseOptions {
            compartment,
            zone,
            keep_references,
            interesting: Interesting::new(compartment.first_steps()),
            skip_invalid: false,
            tsv_columns: None,
            lines: None,
        }
    }
}

/// Where the versions of a run of lines go: the indexing thread, in input order.
pub(crate) type ToIndex = std::sync::mpsc::SyncSender<Vec<VersionBatch>>;

/// What reading the history gave besides its versions.
pub(crate) struct FilesRead {
    /// What the manifest records of each file.
    pub(crate) records: Vec<InputRecord>,
    /// Lines left out under `--skip-invalid`.
    pub(crate) skipped: Vec<Skipped>,
    /// Where each file's table rows are (for re-reading their bodies).
    pub(crate) layouts: Vec<Layout>,
}

/// Reads every history input, sending its versions to the index in input order (file, line,
/// entry), so the first copy of a repeated version is the one kept.
pub(crate) fn read(files: &[InputFile], opts: &ParseOptions, to_index: &ToIndex) -> Result<FilesRead> {
    let mut reading = FilesRead { records: Vec::new(), skipped: Vec::new(), layouts: Vec::new() };
    let spares = BufferPool::default();
    for (i, file) in files.iter().enumerate() {
        let mut tally = Tally::new(opts.skip_invalid);
        let (lines, read, layout) = read_file(file, i as u32, opts, to_index, &spares, &mut tally)?;
        let mut record = tally.record(crate::source::Role::History, file, read, lines);
        record.line_range = opts.lines;
        reading.records.push(record);
        reading.skipped.extend(tally.skipped);
        reading.layouts.push(layout);
    }
    Ok(reading)
}

const BLOCK_SIZE: usize = 4 << 20;

/// Reads one file as a pipeline: a reader thread decompresses, hashes and cuts blocks of whole
/// lines; rayon parses each block (after telling, in order, what each line is); its versions go
/// to the indexing thread. Documents that span lines are read whole.
fn read_file(
    file: &InputFile,
    index: u32,
    opts: &ParseOptions,
    to_index: &ToIndex,
    spares: &BufferPool,
    tally: &mut Tally,
) -> Result<(u64, Digest, Layout)> {
    let input = source::open(file)?;
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
            input.digest()
        });
        let mut lines = 0;
        let mut counted = 0;
        let index_failed = || Error::Internal("the indexing thread stopped".into());
        let mut blocks = rx.iter();
        let mut line_reader: Option<LineReader> = None;
        let mut yaml_file = false;
        while let Some(block) = blocks.next() {
            let block = match block {
                Ok(b) => b,
                // A truncated or corrupt compressed file: the rest of it cannot be read (and
                // is not counted among its lines).
                Err(e) => {
                    tally.fail_rest(e)?;
                    break;
                }
            };
            let line_reader = match &mut line_reader {
                Some(r) => r,
                None => match forms::detect(&block.bytes) {
                    Form::Documents if opts.lines.is_some() => {
                        return Err(Error::Usage(format!(
                            "--lines: {} holds documents that span lines (pretty-printed JSON or YAML), read whole; \
                             index it without --lines",
                            path.display()
                        )))
                    }
                    Form::Documents => {
                        // A pretty-printed document (a Bundle per file): read it whole.
                        let mut all = block.bytes;
                        let mut too_long = false;
                        for b in blocks.by_ref() {
                            match b {
                                Ok(b) if (all.len() + b.bytes.len()) as u64 > source::max_line() => {
                                    let len = (all.len() + b.bytes.len()) as u64;
                                    all.clear();
                                    tally.fail_rest(source::too_long(path, 1, 0, "document", len))?;
                                    too_long = true;
                                    break;
                                }
                                Ok(b) => all.extend_from_slice(&b.bytes),
                                Err(e) => {
                                    tally.fail_rest(e)?;
                                    break;
                                }
                            }
                        }
                        if too_long {
                            // (--skip-invalid) The rest is read, unkept, so the reader ends and the
                            // file's SHA-256 covers all of it.
                            for _ in blocks.by_ref() {}
                        }
                        lines = count_lines(&all);
                        let mut batch = VersionBatch::default();
                        yaml_file = parse_documents(path, index, &all, opts, &mut batch, tally)?;
                        to_index.send(vec![batch]).map_err(|_| index_failed())?;
                        break;
                    }
                    form => line_reader.insert(LineReader::new(form)),
                },
            };
            lines = block.first_line - 1 + block.lines;
            // The progress line counts lines as they are read, not when a file ends.
            crate::progress::add_lines(block.lines);
            counted += block.lines;
            if let Some(range) = opts.lines {
                // A shard of part of the file: the lines before its range are told apart (a
                // dump's tables and columns are known in order) but not parsed; those after it
                // are only counted, so the record holds the file's lines and SHA-256 whole.
                let last = block.first_line + block.lines.saturating_sub(1);
                let past = range.ends_by(block.first_line - 1);
                if last < range.first || past {
                    if !past {
                        let numbered: Vec<(u64, &[u8])> = source::lines_of(&block).map(|(n, _, t)| (n, t)).collect();
                        line_reader
                            .kinds(&numbered, opts.tsv_columns.as_ref(), &opts.zone)
                            .map_err(|(line, what)| Error::input(path, line, 0, what))?;
                    }
                    spares.give(block.bytes);
                    continue;
                }
            }
            let (versions, block_tally) = parse_block(path, index, &block, line_reader, opts)?;
            to_index.send(versions).map_err(|_| index_failed())?;
            tally.absorb(block_tally);
            spares.give(block.bytes);
        }
        let digest =
            reader.join().map_err(|_| Error::Internal(format!("the reader thread of {} failed", path.display())))?;
        crate::progress::add_lines(lines.saturating_sub(counted));
        let layout = line_reader.map(|r| r.layout).unwrap_or(Layout { yaml: yaml_file, ..Layout::default() });
        Ok((lines, digest, layout))
    })
}

/// Parses the lines of one block in parallel, once `line_reader` has told in order what each
/// is; the first error in line order wins (or, with `--skip-invalid`, every unreadable line is
/// noted and left out).
fn parse_block(
    path: &Path,
    file: u32,
    block: &LineBlock,
    line_reader: &mut LineReader,
    opts: &ParseOptions,
) -> Result<(Vec<VersionBatch>, Tally)> {
    let lines: Vec<(u64, u64, &[u8])> = source::lines_of(block).collect();
    let numbered: Vec<(u64, &[u8])> = lines.iter().map(|&(n, _, t)| (n, t)).collect();
    let kinds = line_reader
        .kinds(&numbered, opts.tsv_columns.as_ref(), &opts.zone)
        .map_err(|(line, what)| Error::input(path, line, 0, what))?;
    let layout = &line_reader.layout;
    let chunks: Vec<Result<(VersionBatch, Tally)>> = lines
        .par_chunks(256)
        .zip(kinds.par_chunks(256))
        .map(|(chunk, kinds)| {
            let mut out = VersionBatch::with_capacity(chunk.len());
            let mut tally = Tally::new(opts.skip_invalid);
            for (&(line, offset, text), kind) in chunk.iter().zip(kinds) {
                if opts.lines.is_some_and(|r| !r.contains(line)) {
                    continue;
                }
                let text = if line == 1 { source::strip_bom(text) } else { text };
                if text.iter().all(|b| b.is_ascii_whitespace()) {
                    tally.blank += 1;
                    continue;
                }
                let src = Source { file, line, offset, entry: None };
                let before = out.mark();
                let scanned = match kind {
                    LineKind::Json => fast::scan_line(text, src, opts, &opts.interesting, &mut out),
                    LineKind::Pass => Ok(()),
                    LineKind::Row(i) => {
                        match pg_text::fields(text).and_then(|f| pg_text::row_json(&layout.columns[*i as usize], &f)) {
                            Ok(json) => fast::scan_line(json.as_bytes(), src, opts, &opts.interesting, &mut out),
                            Err(what) => Err(fast::ScanError::Shape(what)),
                        }
                    }
                };
                match scanned {
                    Ok(()) => tally.read += 1,
                    Err(e) => {
                        out.rollback(before);
                        tally.fail(match e {
                            fast::ScanError::Json(e) => Error::input(path, line, offset, describe_json_error(&e)),
                            fast::ScanError::Shape(what) => Error::input(path, line, offset, what),
                            // Never skipped: the user has to name the zone.
                            fast::ScanError::NoZone => return Err(Error::needs_zone(path, line)),
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

/// Parses a file of documents that span lines: JSON, or YAML when it does not open as JSON does.
/// Returns whether it was YAML.
fn parse_documents(
    path: &Path,
    file: u32,
    all: &[u8],
    opts: &ParseOptions,
    out: &mut VersionBatch,
    tally: &mut Tally,
) -> Result<bool> {
    let body = source::strip_bom(all);
    let bom = (all.len() - body.len()) as u64;
    let total = count_lines(all);
    let opening = body.trim_ascii_start().first();
    if opening.is_some_and(|&b| b != b'{' && b != b'[') {
        parse_yaml(path, file, body, bom, opts, out, tally)?;
        return Ok(true);
    }
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Value>();
    let mut lines_done = 0u64;
    loop {
        let start = stream.byte_offset();
        let start = start + body[start..].iter().take_while(|b| b.is_ascii_whitespace()).count();
        let line = source::line_of_offset(body, start);
        let result = stream.next();
        let end_line =
            if stream.byte_offset() >= body.len() { total } else { source::line_of_offset(body, stream.byte_offset()) };
        let failure = match result {
            None => {
                tally.blank += total - lines_done;
                return Ok(false);
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
                    Err(Unreadable::Shape(what)) => Error::input(path, line, start as u64 + bom, what),
                    Err(Unreadable::NoZone) => return Err(Error::needs_zone(path, line)),
                }
            }
            Some(Err(e)) => Error::input(path, e.line() as u64, start as u64 + bom, describe_json_error(&e)),
        };
        // After an unreadable document the rest of the file cannot be resynchronised.
        tally.blank += line.saturating_sub(lines_done + 1);
        let note = format!("the rest of the file, from line {line}, is left out");
        return tally.fail_spanning(failure, Some(line), total + 1 - line, Some(&note)).map(|()| false);
    }
}

/// Parses the YAML documents of a file, each as the same JSON would be. An unreadable document
/// is an input error at its line (with `--skip-invalid`, its lines are skipped and the next
/// document read).
fn parse_yaml(
    path: &Path,
    file: u32,
    body: &[u8],
    bom: u64,
    opts: &ParseOptions,
    out: &mut VersionBatch,
    tally: &mut Tally,
) -> Result<()> {
    let total = count_lines(body);
    let blank = source::blank_lines(body);
    let text = std::str::from_utf8(body).map_err(|e| {
        let line = source::line_of_offset(body, e.valid_up_to());
        Error::input(path, line, bom, "bytes that are not valid UTF-8 in a YAML document")
    })?;
    for doc in yaml::documents(text) {
        let src = Source { file, line: doc.line, offset: doc.offset as u64 + bom, entry: None };
        let failure = match yaml::to_json(doc.text) {
            Ok(value) => match versions_of_document(value, src, opts) {
                Ok(vs) => {
                    vs.into_iter().for_each(|v| out.push(v));
                    continue;
                }
                Err(Unreadable::Shape(what)) => Error::input(path, doc.line, src.offset, what),
                Err(Unreadable::NoZone) => return Err(Error::needs_zone(path, doc.line)),
            },
            Err((line, what)) => Error::input(path, doc.line + line.saturating_sub(1), src.offset, what),
        };
        let lines = doc.text.lines().filter(|l| !l.trim().is_empty()).count() as u64;
        tally.fail_spanning(failure, Some(doc.line), lines, Some("the document is left out"))?;
    }
    tally.blank += blank;
    tally.read += total - blank - tally.skipped_lines();
    Ok(())
}
