//! Per-file line accounting (read, blank, skipped) and what the manifest records of each input.

use super::{display, Compression, Digest, InputFile};
use crate::error::{Error, Result, Skipped};

/// What the manifest records of each input once it has been read.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct InputRecord {
    pub(crate) role: Role,
    pub(crate) path: String,
    pub(crate) size: u64,
    pub(crate) compression: Compression,
    pub(crate) sha256: String,
    /// Lines in the file (after decompression).
    pub(crate) lines: u64,
    /// Lines read, blank lines ignored, lines skipped (`--skip-invalid`):
    /// `lines_read + lines_blank + lines_skipped == lines`.
    pub(crate) lines_read: u64,
    pub(crate) lines_blank: u64,
    pub(crate) lines_skipped: u64,
    /// Whether the file could not be read to its end (`--skip-invalid`: a truncated or corrupt
    /// compressed file, a line past `--max-line`): its lines past the cut are unknown, and not
    /// among `lines`. Written only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) rest_unread: bool,
    /// The lines a shard read of the file (`index --lines`): only they are among `lines_read`,
    /// `lines_blank` and `lines_skipped`; `lines` counts the whole file. Written only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) line_range: Option<LineRange>,
}

/// A run of a file's lines read alone (`bulk-audit index --history FILE --lines FIRST..LAST`): a
/// shard of a file too big for one task. 1-based and inclusive; `last: None` runs to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct LineRange {
    pub(crate) first: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last: Option<u64>,
}

impl LineRange {
    /// `FIRST..LAST` or `FIRST..` (to the end), lines numbered from 1.
    pub(crate) fn parse(text: &str) -> std::result::Result<LineRange, String> {
        let (first, last) = text.split_once("..").ok_or("expected FIRST..LAST or FIRST.. (e.g. 1..1000000)")?;
        let number = |s: &str| s.trim().parse::<u64>().map_err(|_| format!("{s:?} is not a line number"));
        let first = number(first)?;
        let last = if last.trim().is_empty() { None } else { Some(number(last)?) };
        if first == 0 {
            return Err("lines are numbered from 1".into());
        }
        if last.is_some_and(|l| l < first) {
            return Err("the last line comes before the first".into());
        }
        Ok(LineRange { first, last })
    }

    pub(crate) fn contains(&self, line: u64) -> bool {
        line >= self.first && self.last.is_none_or(|l| line <= l)
    }

    /// Whether it holds every line of a file of `lines` lines: the file read whole.
    pub(crate) fn covers(&self, lines: u64) -> bool {
        self.first == 1 && self.last.is_none_or(|l| l >= lines)
    }

    /// Whether every line past `line` is outside the range.
    pub(crate) fn ends_by(&self, line: u64) -> bool {
        self.last.is_some_and(|l| line >= l)
    }
}

impl std::fmt::Display for LineRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.last {
            Some(last) => write!(f, "{}..{last}", self.first),
            None => write!(f, "{}..", self.first),
        }
    }
}

/// What reading one file found, line by line: how many lines were read, blank or skipped, and
/// the skips. With `skip_invalid` off, the first unreadable line is an error.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) skip_invalid: bool,
    pub(crate) read: u64,
    pub(crate) blank: u64,
    pub(crate) skipped: Vec<Skipped>,
    /// The rest of the file was left unread (a skip of unknown length).
    pub(crate) rest_unread: bool,
}

impl Tally {
    pub(crate) fn new(skip_invalid: bool) -> Tally {
        Tally { skip_invalid, ..Tally::default() }
    }

    /// An unreadable place: an error, or (with `--skip-invalid`) a noted skip.
    pub(crate) fn fail(&mut self, e: Error) -> Result<()> {
        if self.skip_invalid {
            if let Some(s) = Skipped::of(&e) {
                self.skipped.push(s);
                return Ok(());
            }
        }
        Err(e)
    }

    /// An unreadable place that takes more than its line with it: `lines` lines from `line`
    /// (0 for a rest of a file that was never read), with a note added to the reason.
    pub(crate) fn fail_spanning(&mut self, e: Error, line: Option<u64>, lines: u64, note: Option<&str>) -> Result<()> {
        self.fail(e)?;
        if let Some(last) = self.skipped.last_mut() {
            if let Some(l) = line {
                last.line = l;
            }
            last.lines = lines;
            if let Some(n) = note {
                last.reason = format!("{} ({n})", last.reason);
            }
        }
        Ok(())
    }

    /// An unreadable place past which the file could not be read at all (a truncated or corrupt
    /// compressed file, a line or document past `--max-line`): its lines from there are unknown.
    pub(crate) fn fail_rest(&mut self, e: Error) -> Result<()> {
        self.fail_spanning(e, None, 0, None)?;
        self.rest_unread = true;
        Ok(())
    }

    pub(crate) fn skipped_lines(&self) -> u64 {
        self.skipped.iter().map(|s| s.lines).sum()
    }

    /// Adds another tally (of a later part of the same file).
    pub(crate) fn absorb(&mut self, other: Tally) {
        self.read += other.read;
        self.blank += other.blank;
        self.skipped.extend(other.skipped);
        self.rest_unread |= other.rest_unread;
    }

    /// The manifest record of a file read with this tally. A stream's size is the bytes read.
    pub(crate) fn record(&self, role: Role, file: &InputFile, read: Digest, lines: u64) -> InputRecord {
        // A history file's lines are counted block by block as they are read (its reader does).
        if role == Role::Logs {
            crate::progress::add_lines(lines);
        }
        InputRecord {
            role,
            path: display(&file.path),
            size: file.size.unwrap_or(read.bytes),
            compression: read.compression,
            sha256: read.sha256,
            lines,
            lines_read: self.read,
            lines_blank: self.blank,
            lines_skipped: self.skipped_lines(),
            rest_unread: self.rest_unread,
            line_range: None,
        }
    }
}

/// What an input is to the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    Logs,
    History,
}

impl Role {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Logs => "logs",
            Role::History => "history",
        }
    }
}
