//! What reaches a terminal: text from the inputs with its control characters escaped, and
//! output on stdout, escaped only when stdout is a terminal (files and pipes get it as it is).

use std::io::Write;

use crate::error::{Error, Result};

/// Text from the inputs (a client id, a request id) made safe for a terminal: control characters
/// (an escape sequence could rewrite the auditor's screen) are written as `\u{…}` escapes.
pub(crate) fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes output to stdout: as it is into a file or pipe, with control characters escaped when
/// stdout is a terminal (an input's escape sequence could rewrite the auditor's screen).
pub(crate) fn to_stdout(bytes: &[u8]) -> Result<()> {
    use std::io::IsTerminal;
    let stdout = std::io::stdout().lock();
    let escaped;
    let bytes = if stdout.is_terminal() {
        escaped = printable(&String::from_utf8_lossy(bytes));
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
    fn control_characters_are_escaped() {
        assert_eq!(super::printable("a\u{1b}[2Jb\nc"), "a\\u001b[2Jb\nc");
    }
}
