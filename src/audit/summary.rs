//! What a run prints on stdout: one line per export.

use super::tables::export_order;
use super::AuditResult;

/// One line per export for stdout.
pub(crate) fn summary_lines(r: &AuditResult) -> Vec<String> {
    export_order(r)
        .into_iter()
        .map(|i| {
            let e = &r.events[i];
            let x = &r.resolutions[i];
            let when = e.time.map(|t| t.to_rfc3339()).unwrap_or_else(|| "time unknown".into());
            let who = e.client_id.as_deref().unwrap_or("(no client)");
            let target = match (&e.group_id, e.level) {
                (Some(g), _) => format!("group {g}"),
                (None, l) => l.as_str().to_string(),
            };
            let state = if !e.accepted {
                format!("rejected ({})", e.status.map(|s| s.to_string()).unwrap_or_default())
            } else if x.resolved {
                format!("{} patients, {} resources, {} rows", x.patient_count(e), x.resource_count(), x.rows.len())
            } else {
                "not resolved".into()
            };
            format!("{}  {}  {}  {}  {}  {} findings", e.id, when, who, target, state, x.findings.len())
        })
        .collect()
}
