//! Typed errors of every stage, and the exit status each maps to at the command-line edge.
//!
//! Messages name the file, the line (and the byte offset inside a decompressed stream) and what
//! was wrong. They never carry a resource body: ids at most, since the inputs hold patient data.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    /// The command line asked for something impossible (bad option value, unreadable --wildcard
    /// file, an existing --out folder without --force …). Exit status 1.
    Usage(String),
    /// An input could not be opened or read at all. Exit status 2.
    Io { path: PathBuf, source: std::io::Error },
    /// One place in an input is unreadable: the file, the 1-based line, the byte offset of that
    /// line in the (decompressed) stream, and what was expected and found. Exit status 2.
    Input { path: PathBuf, line: u64, offset: u64, what: String },
    /// An output could not be written. Exit status 3.
    Output { path: PathBuf, what: String },
}

impl Error {
    pub fn input(path: impl Into<PathBuf>, line: u64, offset: u64, what: impl Into<String>) -> Self {
        Error::Input { path: path.into(), line, offset, what: what.into() }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub fn output(path: impl Into<PathBuf>, what: impl fmt::Display) -> Self {
        Error::Output { path: path.into(), what: what.to_string() }
    }

    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 1,
            Error::Io { .. } | Error::Input { .. } => 2,
            Error::Output { .. } => 3,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) => write!(f, "{m}"),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Input { path, line, offset, what } => {
                write!(f, "{}:{line} (byte {offset}): {what}", path.display())
            }
            Error::Output { path, what } => write!(f, "cannot write {}: {what}", path.display()),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// A short, PHI-free description of a serde_json error: its category and column, never the text.
pub fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let kind = match e.classify() {
        Category::Io => "I/O error",
        Category::Syntax => "invalid JSON",
        Category::Data => "unexpected JSON shape",
        Category::Eof => "JSON cut off (unexpected end of input)",
    };
    format!("{kind} at column {}", e.column())
}
