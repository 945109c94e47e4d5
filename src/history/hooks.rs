//! The history reader's entry points for `crate::hooks` (the `hooks` feature): the fast path of
//! one line beside the reference reading, and the quick reader alone.

use super::fast::{self, scan_line, serde_fields_for_hooks, skim_fields};
use super::{versions_of_document, ParseOptions};
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
