//! `--reconstruct DIR`: per export, `<export_id>/<Type>.ndjson` with the exact bodies it sent,
//! one line per resource.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Write};
use std::path::Path;

use super::output_tables::export_order;
use super::AuditResult;
use crate::bodies::Bodies;
use crate::error::{Error, Result};
use crate::output;

/// The folder of each resolved export, in output order: its id made safe for a file name
/// (letters, digits, `.`, `-`, `_`), at most 200 bytes (a longer one cut, with a hash of the
/// whole id), and distinct (a later export whose name is taken gets `~2`, `~3` …). The manifest
/// maps each folder to its export id.
pub(super) fn folder_names(r: &AuditResult) -> Vec<(usize, String)> {
    // `SHA256SUMS` is the checksum file's: an export of that name takes another.
    let mut used_names = BTreeSet::from([output::SUMS.to_string()]);
    let mut out = Vec::new();
    for i in export_order(r) {
        if !r.resolutions[i].resolved {
            continue;
        }
        let base = output::short_name(&output::safe_name(&r.events[i].id));
        let mut name = base.clone();
        let mut n = 1;
        while !used_names.insert(name.clone()) {
            n += 1;
            name = output::short_name(&format!("{base}~{n}"));
        }
        out.push((i, name));
    }
    out
}

/// `<dir>/<folder>/<Type>.ndjson`: each exported version's body, one line per resource.
pub(super) fn write(r: &AuditResult, dir: &Path, bodies: &Bodies) -> Result<()> {
    let h = &r.history;
    for (i, name) in folder_names(r) {
        let x = &r.resolutions[i];
        let edir = dir.join(&name);
        output::create_private_dir(&edir)?;
        let mut by_type: BTreeMap<&str, Vec<(u32, u32)>> = BTreeMap::new();
        for row in &x.rows {
            by_type
                .entry(h.type_name(h.resources[row.resource as usize].resource_type))
                .or_default()
                .push((row.resource, row.version));
        }
        let mut buf = String::new();
        for (ty, mut keys) in by_type {
            keys.dedup();
            // Written as the bodies are read back: one body in memory at a time.
            let path = edir.join(format!("{}.ndjson", output::safe_name(ty)));
            let mut w = BufWriter::with_capacity(1 << 20, output::create_private(&path)?);
            for k in keys {
                // Every exported version's body was re-read (or the run stopped there).
                let body = bodies
                    .get(k, &mut buf)?
                    .ok_or_else(|| Error::Internal(format!("no body re-read for {ty} version {k:?}")))?;
                w.write_all(body.as_bytes()).and_then(|()| w.write_all(b"\n")).map_err(|e| Error::output(&path, e))?;
            }
            output::finish_file(w, &path)?;
        }
    }
    Ok(())
}
