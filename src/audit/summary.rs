//! What a run prints: one line per export on stdout, and on stderr what the logs held when no
//! export was resolved.

use super::output_tables::export_order;
use super::AuditResult;
use crate::output::terminal::counted;

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
            } else if let reasons @ [_, ..] = super::completeness::incomplete_because(r, i).as_slice() {
                // Never a bare count where the inputs cannot tell: "0 rows" reads as "nothing sent".
                format!("incomplete: {}; {} listed", reasons.join("; "), counted(x.rows.len() as u64, "row"))
            } else {
                let (p, r, n) = (x.patient_count(e) as u64, x.resource_count(), x.rows.len() as u64);
                format!("{}, {}, {}", counted(p, "patient"), counted(r, "resource"), counted(n, "row"))
            };
            let findings = counted(x.findings.len() as u64, "finding");
            format!("{}  {}  {}  {}  {}  {findings}", e.id, when, who, target, state)
        })
        .collect()
}

/// When no export was resolved: what the logs did hold (kickoffs, clients, the time they cover),
/// so that the user can mend the selection or the inputs. `None` when some export was resolved.
pub(crate) fn nothing_resolved(r: &AuditResult) -> Option<String> {
    if r.resolutions.iter().any(|x| x.resolved) {
        return None;
    }
    let seen = &r.seen;
    let span = match (&r.coverage.first, &r.coverage.last) {
        (Some(first), Some(last)) => format!("from {first} to {last}"),
        _ => "no time at all".to_string(),
    };
    let clients = if seen.clients.is_empty() {
        "none named".to_string()
    } else {
        let mut names: Vec<&str> = seen.clients.iter().map(String::as_str).take(10).collect();
        if seen.clients.len() > 10 {
            names.push("…");
        }
        names.join(", ")
    };
    let listed = r.events.len();
    let why = if seen.kickoffs == 0 {
        "the logs hold no $export kickoff".to_string()
    } else if listed == 0 {
        format!("none of the {} kickoffs in the logs is selected by --client/--from/--to", seen.kickoffs)
    } else {
        format!("the {listed} selected kickoffs were rejected by the server or carry no time")
    };
    Some(format!(
        "no export was resolved: {why}. The logs hold {} requests covering {span}; clients {} {clients}",
        seen.requests,
        if seen.kickoffs == 0 { "of any request:" } else { "of kickoffs:" },
    ))
}

/// `--fail-on`: what makes the run fail, or `None`. `kinds` are finding kinds or `incomplete`;
/// the findings of every selected export count, and those about the inputs (skipped lines, log
/// gaps, conflicting copies: they concern every export).
pub(crate) fn failed_on(r: &AuditResult, kinds: &[String]) -> Option<String> {
    if kinds.is_empty() {
        return None;
    }
    let mut hits: Vec<String> = Vec::new();
    for kind in kinds {
        if kind == "incomplete" {
            let n = super::completeness::incomplete_count(r);
            if n > 0 {
                hits.push(format!("{} incomplete", counted(n as u64, "export")));
            }
            continue;
        }
        let n = r
            .resolutions
            .iter()
            .flat_map(|x| &x.findings)
            .chain(&r.general_findings)
            .filter(|f| f.kind.as_str() == kind)
            .count();
        if n > 0 {
            hits.push(counted(n as u64, &format!("{kind} finding")));
        }
    }
    (!hits.is_empty()).then(|| format!("{} (every output was written)", hits.join(", ")))
}
