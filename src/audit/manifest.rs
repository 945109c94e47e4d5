//! `manifest.json`: the tool and its version, every option, every input (path, size, SHA-256,
//! lines read, blank and skipped), row counts, findings per kind, the logs' coverage and the
//! history's statistics. No run date: it is as reproducible as the tables.

use std::collections::BTreeMap;

use serde_json::json;

use super::{AuditConfig, AuditResult, Written};
use crate::rules::findings::Finding;

pub(super) fn manifest(
    cfg: &AuditConfig,
    r: &AuditResult,
    written: &Written,
    findings: &[Finding],
) -> serde_json::Value {
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    for f in findings {
        *by_kind.entry(f.kind.as_str()).or_insert(0) += 1;
    }
    let mut manifest = json!({
        "tool": "bulk-audit",
        "version": env!("CARGO_PKG_VERSION"),
        "options": {
            "logs": cfg.read.logs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "history": cfg.read.history.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "client": cfg.select.clients,
            "from": cfg.select.from.map(|t| t.to_rfc3339()),
            "to": cfg.select.to.map(|t| t.to_rfc3339()),
            "tz": cfg.read.zone.name(),
            "format": cfg.outputs.format,
            "boundary": cfg.rules.boundary,
            "wildcard": cfg.rules.wildcard.name(),
            "non_compartment": cfg.rules.non_compartment,
            "fhir_version": cfg.rules.fhir_version,
            "skip_inactive_members": cfg.rules.skip_inactive_members,
            "with_resource": cfg.outputs.with_resource,
            "reconstruct": cfg.outputs.reconstruct.as_ref().map(|p| p.display().to_string()),
            "audit_events": cfg.outputs.audit_events,
            "report": cfg.outputs.report,
            "max_log_gap": cfg.read.max_log_gap,
            "skip_invalid": cfg.read.skip_invalid,
        },
        "lines_skipped": r.inputs.iter().map(|i| i.lines_skipped).sum::<u64>(),
        "inputs": r.inputs,
        "rows": {"resources": written.resources, "exports": written.exports, "findings": written.findings},
        "findings_by_kind": by_kind,
        "log_coverage": r.coverage,
        "history": {
            "resources": r.history.resources.len(),
            "versions": r.history.version_count,
            "duplicate_copies_ignored": r.history.duplicates,
            "conflicting_copies": r.history.conflicts.len(),
            "versions_per_type": r.history.versions_per_type(),
        },
    });
    // Every export complete or not, and why not (written always: a count of 0 says so too).
    if let Some(m) = manifest.as_object_mut() {
        let incomplete: serde_json::Map<String, serde_json::Value> = super::output_tables::export_order(r)
            .into_iter()
            .map(|i| (i, super::completeness::incomplete_because(r, i)))
            .filter(|(_, reasons)| !reasons.is_empty())
            .map(|(i, reasons)| {
                let e = &r.events[i];
                // What `disclosures` needs to list it for every patient it may concern.
                let entry = json!({
                    "export_time": e.time.map(|t| t.to_rfc3339()),
                    "client_id": e.client_id,
                    "level": e.level.as_str(),
                    "reasons": reasons,
                });
                (e.id.clone(), entry)
            })
            .collect();
        m.insert(
            "completeness".into(),
            json!({"complete": r.events.len() - incomplete.len(), "incomplete": incomplete.len(), "incomplete_exports": incomplete}),
        );
    }
    // With --reconstruct: which folder holds which export (names are cut and made distinct).
    if let (Some(_), Some(m)) = (&cfg.outputs.reconstruct, manifest.as_object_mut()) {
        let folders: serde_json::Map<String, serde_json::Value> = super::reconstruct::folder_names(r)
            .into_iter()
            .map(|(i, name)| (name, r.events[i].id.clone().into()))
            .collect();
        m.insert("reconstruct_folders".into(), folders.into());
    }
    // Only when some file was cut short (--skip-invalid): its lines past the cut are not counted
    // in lines_skipped, and this says so.
    let short: Vec<&str> = r.inputs.iter().filter(|i| i.rest_unread).map(|i| i.path.as_str()).collect();
    if let (false, Some(m)) = (short.is_empty(), manifest.as_object_mut()) {
        m.insert("inputs_read_short".into(), json!(short));
    }
    manifest
}
