//! `--reconstruct DIR`: per export, `<export_id>/<Type>.ndjson` with the exact bodies it sent,
//! one line per resource.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use super::tables::export_order;
use super::AuditResult;
use crate::bodies::VersionKey;
use crate::error::{Error, Result};
use crate::output;

/// `<dir>/<export_id>/<Type>.ndjson`: each exported version's body, one line per resource.
pub(super) fn write(r: &AuditResult, dir: &Path, bodies: &HashMap<VersionKey, String>) -> Result<()> {
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
        for (ty, mut keys) in by_type {
            keys.dedup();
            let mut text = String::new();
            for k in keys {
                // Every exported version's body was re-read (or the run stopped there).
                let body =
                    bodies.get(&k).ok_or_else(|| Error::Internal(format!("no body re-read for {ty} version {k:?}")))?;
                text.push_str(body);
                text.push('\n');
            }
            output::write_text(&edir.join(format!("{}.ndjson", output::safe_name(ty))), &text)?;
        }
    }
    Ok(())
}
