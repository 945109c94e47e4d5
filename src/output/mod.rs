//! Writing outputs: tables as Parquet (typed columns, UTC timestamps, written with polars) or
//! CSV, JSON and text files. Everything is written into a staging folder, readable by the owner
//! only, and renamed into place once complete, so a failed run never leaves a mix of old and new
//! files. What the tables hold is the audit's business (`crate::audit`).

mod checksums;
mod claim;
mod csv;
pub(crate) mod html;
mod lock;
#[cfg(feature = "parquet")]
mod parquet;
pub(crate) mod signals;
mod staging;
mod table;
pub(crate) mod terminal;

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub(crate) use checksums::{written_sha256, SUMS};
pub(crate) use claim::{clean, overlapping, OWN_MARKER};
#[cfg(test)]
pub(crate) use csv::csv_rows_by_cell;
pub(crate) use csv::csv_text;
pub(crate) use csv::finish_file;
use csv::write_csv;
pub(crate) use csv::{push_csv_cell, push_csv_field, unneutralised, Decimal};
pub(crate) use lock::release_all as release_locks;
pub(crate) use staging::{
    create_private, create_private_dir, create_private_scratch, forget_temporary, public_paths, register_temporary,
    short_name, Staging,
};

/// The file that marks a staging folder as one (so a later run may remove it when its run died);
/// neither `SHA256SUMS` nor the marker lists it.
const STAGING_MARK: &str = ".bulk-audit-staging";

/// The audit's manifest: also how `disclosures` recognises an audit folder.
pub(crate) const MANIFEST: &str = "manifest.json";

/// Claims `dest` for an output of `kind` before anything is read: the folder it goes in is
/// writable, `dest` may be replaced (`claim::check`: only a previous bulk-audit output, never an
/// input, a link or a foreign folder), and this run holds its lock until it ends.
/// The checks run before the lock is taken (so a refused output leaves nothing behind, not even a
/// lock file) and again under it (another run may have written there meanwhile).
pub(crate) fn claim(dest: &Path, kind: &'static str, force: bool, option: &str, inputs: &[PathBuf]) -> Result<()> {
    claim::check_parent(dest, option)?;
    claim::check(dest, kind, force, option, inputs)?;
    lock::lock(dest, option)?;
    claim::check(dest, kind, force, option, inputs).map(|_| ())
}
pub(crate) use table::{Cell, ColumnData, Kind, Rows, Table, TableBuilder, Values, LIST_SEPARATOR};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Format {
    Parquet,
    Csv,
}

impl Format {
    pub(crate) fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }
}

pub(crate) fn write_table(table: &dyn Rows, path: &Path, format: Format) -> Result<()> {
    match format {
        Format::Csv => write_csv(table, path),
        Format::Parquet => write_parquet(table, path),
    }
}

#[cfg(feature = "parquet")]
fn write_parquet(table: &dyn Rows, path: &Path) -> Result<()> {
    parquet::write(table, path)
}

/// A Parquet table with more key-value pairs in its metadata.
#[cfg(feature = "parquet")]
pub(crate) fn write_parquet_tagged(table: &dyn Rows, path: &Path, tags: &[(&str, &str)]) -> Result<()> {
    parquet::write_tagged(table, path, tags)
}

#[cfg(not(feature = "parquet"))]
pub(crate) fn write_parquet_tagged(_table: &dyn Rows, path: &Path, _tags: &[(&str, &str)]) -> Result<()> {
    Err(Error::output(path, "this build has no Parquet support (the `parquet` feature is off): use --format csv"))
}

#[cfg(not(feature = "parquet"))]
fn write_parquet(_table: &dyn Rows, path: &Path) -> Result<()> {
    Err(Error::output(path, "this build has no Parquet support (the `parquet` feature is off): use --format csv"))
}

/// Writes `text` to a new private file.
pub(crate) fn write_text(path: &Path, text: &str) -> Result<()> {
    let f = create_private(path)?;
    let mut w = BufWriter::new(f);
    w.write_all(text.as_bytes()).map_err(|e| Error::output(path, e))?;
    finish_file(w, path)
}

/// Writes a JSON value, pretty-printed, to a new private file.
pub(crate) fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
    write_text(path, &(text + "\n"))
}

/// Standard base64 with padding (RFC 4648; FHIR `base64Binary`, CSP hashes).
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { ABC[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

/// A name safe for a folder: letters, digits, `.`, `-`, `_`; anything else becomes `_`.
pub(crate) fn safe_name(s: &str) -> String {
    let mut out: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_rfc_4648() {
        for (plain, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn safe_names() {
        assert_eq!(safe_name("a/b:c"), "a_b_c");
        assert_eq!(safe_name(".."), "_..");
    }
}
