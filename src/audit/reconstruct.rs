//! `--reconstruct DIR`: per export, `<export_id>/<Type>.ndjson` with the exact bodies it sent,
//! one line per resource.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Write};
use std::path::Path;

use super::tables::export_order;
use super::AuditResult;
use crate::bodies::Bodies;
use crate::error::{Error, Result};
use crate::output;

/// `<dir>/<export_id>/<Type>.ndjson`: each exported version's body, one line per resource.
pub(super) fn write(r: &AuditResult, dir: &Path, bodies: &Bodies) -> Result<()> {
    let h = &r.history;
    // `SHA256SUMS` is the checksum file's: an export of that name takes another.
    let mut used_names = BTreeSet::from([output::SUMS.to_string()]);
    for i in export_order(r) {
        let x = &r.resolutions[i];
        if !x.resolved {
            continue;
        }
        let mut name = output::safe_name(&r.events[i].id);
        while !used_names.insert(name.clone()) {
            name.push('_');
        }
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
