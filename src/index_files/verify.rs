//! An index is verified before it is believed: every file is the one `bulk-audit index` wrote
//! (its SHA-256 in the index's `SHA256SUMS`, no file missing, none added), `index.json` names
//! each table with the same SHA-256, and every table carries, in its Parquet metadata, the
//! identity of this `index.json` (a digest of its options and what reading found), so tables
//! of another index, or an `index.json` edited and re-summed, are refused too.

use std::collections::BTreeMap;
use std::path::Path;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::tables::TABLES;
use super::INFO;
use crate::error::{Error, Result};
use crate::output::SUMS;

/// The identity of an index: the SHA-256 of its `index.json` without the `tables` member,
/// written with object keys sorted (so it does not depend on how the JSON was laid out).
pub(super) fn identity(info: &serde_json::Value) -> String {
    let mut info = info.clone();
    if let Some(map) = info.as_object_mut() {
        map.remove("tables");
    }
    let mut text = String::new();
    canonical(&info, &mut text);
    crate::source::hex(&Sha256::digest(text.as_bytes()))
}

fn canonical(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<&String, &serde_json::Value> = map.iter().collect();
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                canonical(v, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The error for a file of the index that cannot be believed.
fn refused(dir: &Path, file: &str, why: impl std::fmt::Display) -> Error {
    Error::Usage(format!(
        "--index {}: {file} {why}: the index was changed or damaged since bulk-audit index wrote it; build it again",
        dir.display()
    ))
}

/// Checks every file of the index in `dir` against `SHA256SUMS`, the tables against
/// `index.json`, and each table's identity; returns `index.json`'s text, as verified.
pub(super) fn verify(dir: &Path) -> Result<String> {
    let sums_text =
        std::fs::read_to_string(dir.join(SUMS)).map_err(|e| refused(dir, SUMS, format!("is unreadable ({e})")))?;
    let mut sums: BTreeMap<String, String> = BTreeMap::new();
    for (i, line) in sums_text.lines().enumerate() {
        let (sum, name) = line
            .split_once("  ")
            .filter(|(sum, _)| sum.len() == 64 && sum.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| refused(dir, SUMS, format!("line {} is not a SHA-256 line", i + 1)))?;
        if sums.insert(name.to_string(), sum.to_ascii_lowercase()).is_some() {
            return Err(refused(dir, SUMS, format!("names {name} twice")));
        }
    }
    // Exactly the files an index has: each table, index.json, SHA256SUMS and the marker.
    let mut expected: Vec<String> = TABLES.iter().map(|t| format!("{t}.parquet")).collect();
    expected.push(INFO.to_string());
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Usage(format!("--index {}: {e}", dir.display())))?;
    let mut present = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::Usage(format!("--index {}: {e}", dir.display())))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != SUMS && name != crate::output::OWN_MARKER {
            present.push(name);
        }
    }
    for name in &expected {
        if !present.contains(name) {
            return Err(refused(dir, name, "is missing"));
        }
        if !sums.contains_key(name) {
            return Err(refused(dir, SUMS, format!("does not list {name}")));
        }
    }
    if let Some(extra) = present.iter().chain(sums.keys()).find(|n| !expected.contains(n)) {
        return Err(refused(dir, extra, "is not part of an index"));
    }
    // The tables on every core; index.json from the very text that will be read.
    let info_text =
        std::fs::read_to_string(dir.join(INFO)).map_err(|e| refused(dir, INFO, format!("is unreadable ({e})")))?;
    let hashes: Vec<(usize, std::io::Result<String>)> = expected
        .par_iter()
        .enumerate()
        .map(|(i, name)| {
            let hash = if name == INFO {
                Ok(crate::source::hex(&Sha256::digest(info_text.as_bytes())))
            } else {
                crate::source::sha256_file(&dir.join(name))
            };
            (i, hash)
        })
        .collect();
    for (i, hash) in hashes {
        let name = &expected[i];
        let hash = hash.map_err(|e| refused(dir, name, format!("is unreadable ({e})")))?;
        if hash != sums[name] {
            return Err(refused(dir, name, format!("does not match its SHA-256 in {SUMS}")));
        }
    }
    let info: serde_json::Value =
        serde_json::from_str(&info_text).map_err(|e| refused(dir, INFO, format!("is unreadable ({e})")))?;
    for table in TABLES {
        let name = format!("{table}.parquet");
        if info["tables"][&name].as_str() != Some(sums[&name].as_str()) {
            return Err(refused(dir, &name, format!("is not the table {INFO} names")));
        }
    }
    if info["tables"].as_object().map(|m| m.len()) != Some(TABLES.len()) {
        return Err(refused(dir, INFO, "names other tables than an index has"));
    }
    let identity = identity(&info);
    for table in TABLES {
        let name = format!("{table}.parquet");
        if table_identity(&dir.join(&name)).as_deref() != Some(identity.as_str()) {
            return Err(refused(dir, &name, format!("belongs to another index than this {INFO}")));
        }
    }
    Ok(info_text)
}

/// The identity a table's Parquet metadata carries.
#[cfg(feature = "parquet")]
fn table_identity(path: &Path) -> Option<String> {
    use polars::prelude::*;
    let f = std::fs::File::open(path).ok()?;
    let mut reader = ParquetReader::new(f);
    let meta = reader.get_metadata().ok()?;
    meta.key_value_metadata
        .as_ref()?
        .iter()
        .find(|kv| kv.key == super::tables::IDENTITY_KEY)
        .and_then(|kv| kv.value.clone())
}

#[cfg(not(feature = "parquet"))]
fn table_identity(_path: &Path) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_identity_does_not_depend_on_key_order_or_the_tables() {
        let a = serde_json::json!({"b": 1, "a": {"y": [1, 2], "x": "s"}, "tables": {"t": "1"}});
        let b: serde_json::Value = serde_json::from_str(r#"{"a": {"x": "s", "y": [1, 2]}, "b": 1}"#).unwrap();
        assert_eq!(super::identity(&a), super::identity(&b));
        let c = serde_json::json!({"b": 2, "a": {"y": [1, 2], "x": "s"}});
        assert_ne!(super::identity(&a), super::identity(&c));
    }
}
