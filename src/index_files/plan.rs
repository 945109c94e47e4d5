//! `bulk-audit plan`: what the SQL over an index in shards needs from the rules — every kickoff
//! resolved through step 3 (the Client's scopes, the exported types, the selected patients, its
//! completeness) against the union's small resources only (Clients, Groups, AccessPolicies,
//! BulkExportStatus, Patients) and the types every shard holds, so its memory follows those, not
//! the history. Writes `kickoffs`, `export_types`, `export_patients` and `plan.json`, which names
//! each shard by the SHA-256 of its `index.json` (the SQL scripts refuse a plan of other shards).

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::{load_union, read_info, shards, tables, verify, Info, PlanSummary, INFO, LAYOUT};
use crate::audit::{self, AuditConfig};
use crate::error::{Error, Result};
use crate::output::{self, Staging};

/// The file that describes a plan.
pub(crate) const PLAN_INFO: &str = "plan.json";

/// The types whose versions the plan reads: what steps 1–3 look up.
const SMALL_TYPES: [&str; 5] = ["AccessPolicy", "BulkExportStatus", "Client", "Group", "Patient"];

/// Writes the plan of the shards `cfg.index` into `cfg.outputs.out`.
pub(crate) fn plan(cfg: &AuditConfig) -> Result<PlanSummary> {
    let dirs: &[PathBuf] = &cfg.index;
    let infos = dirs.iter().map(|d| read_info(d)).collect::<Result<Vec<Info>>>()?;
    shards::options(dirs, &infos)?;
    crate::progress::stage("reading the shards' small resources");
    let only: BTreeSet<&str> = SMALL_TYPES.into_iter().collect();
    let mut h = load_union(dirs, &infos, Some(&only))?;
    let small_versions = h.version_count;
    let total: u64 = infos.iter().map(|i| i.versions).sum();
    if total == 0 && !cfg.read.allow_empty_history {
        return Err(Error::Usage(format!(
            "--index {}: the shards hold no resource version at all: a plan of nothing would read as \"nothing was \
             disclosed\"; give the shards of the history (README: \"What an audit needs\")",
            shards::named(dirs)
        )));
    }
    // The whole history's count: what completeness and the messages say of it.
    h.version_count = total;
    let present: BTreeSet<String> = infos.iter().flat_map(|i| i.present_types.iter().cloned()).collect();
    let identities: Vec<serde_json::Value> = dirs
        .iter()
        .map(|d| {
            let sha256 = output::written_sha256(&d.join(INFO))?;
            Ok(serde_json::json!({"path": d.display().to_string(), "index_json_sha256": sha256}))
        })
        .collect::<Result<_>>()?;
    let reading = shards::reading(infos);
    crate::progress::stage("planning the exports");
    let result = audit::resolve_planned(cfg, reading, h, Some(&present));
    let incomplete = audit::completeness::incomplete_count(&result);
    crate::progress::stage("writing the plan");
    let staging = Staging::begin(&cfg.outputs.out, "plan")?;
    let mut info = serde_json::json!({
        "tool": "bulk-audit",
        "version": env!("CARGO_PKG_VERSION"),
        "layout": LAYOUT,
        "options": super::IndexOptions::of(&cfg.read, &cfg.rules),
        "shards": identities,
        "kickoffs": result.events.len(),
        "incomplete": incomplete,
        "present_types": present,
    });
    tables::write_plan(cfg, &result, &staging.dir, &verify::identity(&info))?;
    let mut names = serde_json::Map::new();
    for table in tables::PLAN_TABLES {
        let name = format!("{table}.parquet");
        names.insert(name.clone(), output::written_sha256(&staging.dir.join(&name))?.into());
    }
    info["tables"] = serde_json::Value::Object(names);
    output::write_json(&staging.dir.join(PLAN_INFO), &info)?;
    staging.commit()?;
    let summary = PlanSummary { kickoffs: result.events.len(), incomplete, versions: small_versions };
    std::mem::forget(result);
    Ok(summary)
}
