//! What reaches a terminal: text from the inputs with its control characters, line breaks and
//! bidirectional controls escaped (so no input can forge a line or reorder one), notes on stderr
//! (silenced by `--quiet`), and output on stdout, escaped only when stdout is a terminal (files
//! and pipes get it as it is).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// Text from the inputs (a client id, a request id) made safe for one line of a terminal: control
/// characters (an escape sequence could rewrite the auditor's screen), line breaks (a forged
/// line) and bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C:
/// reordered text) are written as `\u{…}` escapes.
pub(crate) fn printable(text: &str) -> String {
    escaped(text, false)
}

/// A count with its noun for people: `1 patient`, `2 patients`, `0 findings` (`noun` is the
/// singular; its plural takes an `s`).
pub(crate) fn counted(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// As [`printable`], keeping line breaks: for text of many lines (a table on a terminal).
pub(crate) fn printable_lines(text: &str) -> String {
    escaped(text, true)
}

fn escaped(text: &str, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi =
            matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}');
        if (c.is_control() && !(keep_newlines && c == '\n')) || bidi {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

static QUIET: AtomicBool = AtomicBool::new(false);

/// `--quiet`: no notes.
pub(crate) fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// A note on stderr (`bulk-audit: note: …`), made printable, unless `--quiet`.
pub(crate) fn note(text: &str) {
    if !QUIET.load(Ordering::Relaxed) {
        crate::progress::finish();
        eprintln!("bulk-audit: note: {}", printable(text));
    }
}

/// Writes output to stdout: as it is into a file or pipe, with control characters escaped when
/// stdout is a terminal (an input's escape sequence could rewrite the auditor's screen).
pub(crate) fn to_stdout(bytes: &[u8]) -> Result<()> {
    use std::io::IsTerminal;
    let stdout = std::io::stdout().lock();
    let escaped;
    let bytes = if stdout.is_terminal() {
        escaped = printable_lines(&String::from_utf8_lossy(bytes));
        escaped.as_bytes()
    } else {
        bytes
    };
    write_all(stdout, bytes)
}

/// Writes our own text (completions, the man page: nothing from the inputs) to stdout as it is.
pub(crate) fn to_stdout_raw(bytes: &[u8]) -> Result<()> {
    write_all(std::io::stdout().lock(), bytes)
}

fn write_all(mut stdout: std::io::StdoutLock, bytes: &[u8]) -> Result<()> {
    stdout.write_all(bytes).and_then(|_| stdout.flush()).map_err(|e| Error::output("standard output", e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_take_their_noun_in_the_right_number() {
        assert_eq!(super::counted(1u64, "patient"), "1 patient");
        assert_eq!(super::counted(0u64, "finding"), "0 findings");
        assert_eq!(super::counted(2u64, "resource row"), "2 resource rows");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(super::printable_lines("a\u{1b}[2Jb\nc"), "a\\u001b[2Jb\nc");
        assert_eq!(super::printable("id\nexport x: 0 rows"), "id\\u000aexport x: 0 rows");
        assert_eq!(super::printable("a\u{202e}b"), "a\\u202eb");
    }
}
