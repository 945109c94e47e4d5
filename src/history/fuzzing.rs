//! The history reader's entry points for `crate::hooks` (the `hooks` feature): the fast path of
//! one line beside the reference reading, and the quick reader alone.

use super::fast::{self, scan_line, serde_fields_for_hooks, skim_fields};
use super::forms::{self, Form, LineKind, LineReader};
use super::{pg_text, versions_of_document, yaml, ParseOptions};
use crate::source;
use crate::version::{Source, VersionBatch};

/// One line through the fast path and through the `serde_json::Value` reading: they must agree
/// (same versions, or both an error); whatever the quick reader accepts, serde_json must accept
/// with the same fields. `Err` says how they differ.
pub(crate) fn check_line(line: &[u8], opts: &ParseOptions) -> Result<(), String> {
    if let Some(quick) = skim_fields(line, &opts.interesting) {
        match serde_fields_for_hooks(line, &opts.interesting) {
            Ok(slow) if format!("{quick:?}") == format!("{slow:?}") => {}
            Ok(slow) => return Err(format!("fields differ: quick {quick:?}, serde {slow:?}")),
            Err(e) => return Err(format!("the quick reader accepts what serde_json refuses: {e}")),
        }
    }
    let src = Source { file: 0, line: 1, offset: 0, entry: None };
    let mut out = VersionBatch::default();
    let fast =
        scan_line(line, src, opts, &opts.interesting, &mut out).ok().map(|()| format!("{:?}", out.into_parsed()));
    let slow = match serde_json::from_slice::<serde_json::Value>(line) {
        Ok(v) => versions_of_document(v, src, opts).map(|v| format!("{v:?}")).ok(),
        Err(_) => None,
    };
    match (&fast, &slow) {
        (Some(f), Some(s)) if f != s => Err(format!("the two readings disagree: fast {f}, reference {s}")),
        // Deeply nested fields the fast path skips are fine for it and too deep for Value.
        (Some(_), _) | (None, None) => Ok(()),
        (None, Some(_)) => Err("the fast path rejects what the reference path reads".into()),
    }
}

/// Whether the quick reader accepts a line.
pub(crate) fn skims(line: &[u8], opts: &ParseOptions) -> bool {
    skim_fields(line, &opts.interesting).is_some()
}

/// The number of versions the fast path reads from `lines` (lines with an error add none), in
/// batches of 256 lines as the reader makes them.
pub(crate) fn versions_read(lines: &[&[u8]], opts: &ParseOptions) -> usize {
    lines
        .chunks(256)
        .map(|chunk| {
            let mut out = VersionBatch::with_capacity(chunk.len());
            for (n, text) in chunk.iter().enumerate() {
                let src = Source { file: 0, line: n as u64 + 1, offset: 0, entry: None };
                let before = out.mark();
                if fast::scan_line(text, src, opts, &opts.interesting, &mut out).is_err() {
                    out.rollback(before);
                }
            }
            out.len()
        })
        .sum()
}

/// Any bytes as a whole history file: its form told, its lines classified in order, each table
/// row turned into a JSON row and checked as a line is (fast path against the reference
/// reading), YAML documents read as JSON. `Err` says where the two readings disagree.
pub(crate) fn check_file(bytes: &[u8], opts: &ParseOptions) -> Result<(), String> {
    match forms::detect(bytes) {
        Form::Documents => {
            if let Ok(text) = std::str::from_utf8(source::strip_bom(bytes)) {
                for doc in yaml::documents(text) {
                    if let Ok(value) = yaml::to_json(doc.text) {
                        let _ = versions_of_document(
                            value,
                            Source { file: 0, line: doc.line, offset: 0, entry: None },
                            opts,
                        );
                    }
                }
            }
            Ok(())
        }
        form => {
            let lines: Vec<(u64, &[u8])> =
                bytes.split(|&b| b == b'\n').enumerate().map(|(i, l)| (i as u64 + 1, l)).collect();
            let mut reader = LineReader::new(form);
            let Ok(kinds) = reader.kinds(&lines, None, &opts.zone) else { return Ok(()) };
            for (&(_, text), kind) in lines.iter().zip(&kinds) {
                match kind {
                    LineKind::Json => check_line(text, opts)?,
                    LineKind::Pass => {}
                    LineKind::Row(i) => {
                        let columns = &reader.layout.columns[*i as usize];
                        if let Ok(json) = pg_text::fields(text).and_then(|f| pg_text::row_json(columns, &f)) {
                            check_line(json.as_bytes(), opts)?;
                        }
                    }
                }
            }
            Ok(())
        }
    }
}
