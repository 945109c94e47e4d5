//! Typed errors of every stage, and the exit status each maps to at the command-line edge.
//!
//! Messages name the file, the line (and the byte offset inside a decompressed stream) and what
//! was wrong. They never carry a resource body: ids at most, since the inputs hold patient data.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub(crate) enum Error {
    /// The command line asked for something impossible (bad option value, unreadable --wildcard
    /// file, an existing --out folder without --force …). Exit status 1.
    Usage(String),
    /// An input holds a timestamp without a UTC offset and `--tz` was not given: the zone is the
    /// user's to name, never guessed. `place` is `file:line`. Exit status 1.
    NeedsZone { place: String },
    /// An input could not be opened or read at all. Exit status 2.
    Io { path: PathBuf, source: std::io::Error },
    /// One place in an input is unreadable: the file, the 1-based line, the byte offset of that
    /// line in the (decompressed) stream, and what was expected and found. Exit status 2.
    Input { path: PathBuf, line: u64, offset: u64, what: String },
    /// An output could not be written. Exit status 3.
    Output { path: PathBuf, what: String },
    /// `--fail-on`: every output was written, and a selected export has a finding of a kind the
    /// user named (or is incomplete). Exit status 5.
    FailOn(String),
    /// Something that cannot happen did (a thread of the reading pipeline stopped, a value that
    /// cannot be serialised): a bug in bulk-audit. Exit status 4.
    Internal(String),
}

impl Error {
    pub(crate) fn input(path: impl Into<PathBuf>, line: u64, offset: u64, what: impl Into<String>) -> Self {
        Error::Input { path: path.into(), line, offset, what: what.into() }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// The error for a timestamp without an offset read without `--tz`, at `path:line`.
    pub(crate) fn needs_zone(path: &std::path::Path, line: u64) -> Self {
        Error::NeedsZone { place: format!("{}:{line}", path.display()) }
    }

    pub(crate) fn output(path: impl Into<PathBuf>, what: impl fmt::Display) -> Self {
        Error::Output { path: path.into(), what: what.to_string() }
    }

    /// The process exit status for this error.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::NeedsZone { .. } => 1,
            Error::Io { .. } | Error::Input { .. } => 2,
            Error::Output { .. } => 3,
            Error::Internal(_) => 4,
            Error::FailOn(_) => 5,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "{m}"),
            Error::NeedsZone { place } => write!(
                f,
                "{place}: a timestamp without a UTC offset, and no --tz: give --tz with the IANA zone these \
                 timestamps were written in (e.g. --tz Europe/Berlin, or --tz UTC); bulk-audit does not guess it"
            ),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Input { path, line, offset, what } => {
                write!(f, "{}:{line} (byte {offset}): {what}", path.display())
            }
            Error::Output { path, what } => write!(f, "cannot write {}: {what}", path.display()),
            Error::FailOn(m) => write!(f, "--fail-on: {m}"),
            Error::Internal(m) => {
                write!(f, "internal error (a bug in bulk-audit: please report it with this message): {m}")
            }
        }
    }
}

impl std::error::Error for Error {}

pub(crate) type Result<T> = std::result::Result<T, Error>;

/// A line left out under `--skip-invalid`: where it was and why (never its content).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub(crate) struct Skipped {
    pub(crate) path: PathBuf,
    pub(crate) line: u64,
    pub(crate) offset: u64,
    pub(crate) reason: String,
    /// How many lines this skip covers (more than one when the rest of a file is unreadable).
    pub(crate) lines: u64,
}

impl Skipped {
    /// The skip an input error stands for; `None` for errors that are not about one place in
    /// an input (an unopenable file is never skipped silently).
    pub(crate) fn of(e: &Error) -> Option<Skipped> {
        match e {
            Error::Input { path, line, offset, what } => {
                Some(Skipped { path: path.clone(), line: *line, offset: *offset, reason: what.clone(), lines: 1 })
            }
            _ => None,
        }
    }
}

/// A short, PHI-free description of a serde_json error: its category and column, never the text.
pub(crate) fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    // serde_json's own messages may quote input; only these fixed phrases are looked for.
    let text = e.to_string();
    if text.starts_with("recursion limit exceeded") {
        return format!("JSON nested too deeply (more than 128 levels) at column {}", e.column());
    }
    if text.starts_with("invalid unicode code point") || text.contains("UTF-8") || text.contains("utf-8") {
        return format!(
            "bytes that are not valid UTF-8 at column {} (a file re-encoded, e.g. as Latin-1?)",
            e.column()
        );
    }
    if text.starts_with("control character") {
        return format!("a raw control character inside a JSON string at column {}", e.column());
    }
    let kind = match e.classify() {
        Category::Io => "I/O error",
        Category::Syntax => "invalid JSON",
        Category::Data => "unexpected JSON shape",
        Category::Eof => "JSON cut off (unexpected end of input)",
    };
    format!("{kind} at column {}", e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind of failure has its own exit status, as the README's table of exit statuses gives them.
    #[test]
    fn exit_statuses() {
        assert_eq!(Error::Usage("x".into()).exit_code(), 1);
        assert_eq!(Error::needs_zone(std::path::Path::new("k.csv"), 2).exit_code(), 1);
        assert_eq!(Error::input("f", 1, 0, "x").exit_code(), 2);
        assert_eq!(Error::io("f", std::io::Error::other("x")).exit_code(), 2);
        assert_eq!(Error::output("f", "x").exit_code(), 3);
        let bug = Error::Internal("the indexing thread stopped".into());
        assert_eq!(bug.exit_code(), 4);
        assert_eq!(Error::FailOn("x".into()).exit_code(), 5);
        assert!(bug.to_string().starts_with("internal error (a bug in bulk-audit"), "{bug}");
    }
}
