//! Evidence the server kept: matching each accepted kickoff to the `BulkExportStatus` resource
//! Aidbox stored for it, comparing its per-type counts with the reconstruction, and flagging
//! exports that ended badly, kickoffs without a status and statuses without a kickoff.

use std::collections::BTreeMap;

use crate::index::History;
use crate::rules::findings::{Finding, FindingKind};
use crate::rules::kickoff::{ExportEvent, Level};
use crate::rules::resolve::Resolution;
use crate::timestamp::Instant;
use crate::version::{Detail, StatusDetail};

/// How long after the end of the kickoff request a status's transactionTime may fall.
pub(crate) const MATCH_WINDOW_NANOS: i64 = 60 * 1_000_000_000;

/// The status resource matched to one export.
#[derive(Debug, Clone, Default)]
pub(crate) struct StatusMatch {
    pub(crate) id: String,
    pub(crate) status: Option<String>,
    pub(crate) transaction_time: Option<Instant>,
    /// Its per-type `output[].count`, one per type (a type listed twice: the last count), sorted.
    pub(crate) counts: Vec<(String, u64)>,
}

/// A BulkExportStatus `status` saying the export did not finish: the client may have received
/// part of the rows.
pub(crate) fn not_completed(status: &str) -> bool {
    matches!(status, "error" | "cancelled" | "canceled" | "failed")
}

struct Candidate<'a> {
    id: &'a str,
    detail: &'a StatusDetail,
    used: bool,
}

/// Matches statuses to the resolved exports, in export-time order; each status is used once,
/// for the kickoff with the closest T. Adds findings to the resolutions and returns the match
/// for each export plus the findings about statuses that match no kickoff. `compare`: compare
/// the status's counts with the rows (`count-mismatch`); a plan, which has no rows, leaves that
/// to the SQL.
pub(crate) fn match_statuses(
    events: &[ExportEvent],
    resolutions: &mut [Resolution],
    h: &History,
    compare: bool,
) -> (Vec<Option<StatusMatch>>, Vec<Finding>) {
    let mut candidates: Vec<Candidate> = Vec::new();
    if let Some(tid) = h.type_id("BulkExportStatus") {
        for ri in h.of_type(tid) {
            let res = &h.resources[ri as usize];
            // The latest version that is not a deletion tells how the export ended.
            if let Some(Detail::Status(d)) = res.versions.iter().rev().find(|v| !v.deleted).and_then(|v| h.detail_of(v))
            {
                candidates.push(Candidate { id: &res.id, detail: d, used: false });
            }
        }
    }
    let any_status = !candidates.is_empty();
    let mut matches = vec![None; events.len()];
    let mut order: Vec<usize> = (0..events.len()).filter(|&i| resolutions[i].resolved).collect();
    order.sort_by_key(|&i| (events[i].time, i));
    for i in order {
        let e = &events[i];
        let (Some(t), Some(end)) = (e.time, e.request_end()) else { continue };
        let lo = Instant(t.0 - t.0.rem_euclid(1_000_000));
        let hi = Instant(end.0 + MATCH_WINDOW_NANOS);
        let best = candidates
            .iter_mut()
            .filter(|c| !c.used)
            .filter(|c| c.detail.transaction_time.is_some_and(|tt| tt >= lo && tt <= hi))
            .filter(|c| match (&c.detail.requester, &e.client_id) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            })
            .filter(|c| match e.level {
                Level::Group => c.detail.group_id.is_none() || c.detail.group_id == e.group_id,
                _ => c.detail.group_id.is_none(),
            })
            .min_by_key(|c| (c.detail.transaction_time.map(|tt| (tt.0 - t.0).abs()), c.id.to_string()));
        let r = &mut resolutions[i];
        match best {
            None => {
                if any_status {
                    r.findings.push(Finding::new(&e.id, FindingKind::StatusNotFound, "no BulkExportStatus in the history matches this kickoff (same requester and group, transactionTime at or just after T)"));
                }
            }
            Some(c) => {
                c.used = true;
                let d = c.detail;
                matches[i] = Some(StatusMatch {
                    id: c.id.to_string(),
                    status: d.status.clone(),
                    transaction_time: d.transaction_time,
                    counts: reported(d).into_iter().map(|(t, c)| (t.to_string(), c)).collect(),
                });
                if d.status.as_deref().is_some_and(not_completed) {
                    r.findings.push(
                        Finding::new(&e.id, FindingKind::ExportNotCompleted, format!("BulkExportStatus/{} ended in {}: the client may have received part of the listed resources", c.id, d.status.as_deref().unwrap_or("")))
                            .about("BulkExportStatus", c.id, ""),
                    );
                }
                if compare {
                    compare_counts(&e.id, c.id, d, r);
                }
                none_sent(&e.id, c.id, d, r);
            }
        }
    }
    let orphans = candidates
        .iter()
        .filter(|c| !c.used)
        .map(|c| {
            let when = c.detail.transaction_time.map(|t| t.to_rfc3339()).unwrap_or_else(|| "an unknown time".into());
            let who = c.detail.requester.as_deref().unwrap_or("an unknown requester");
            Finding::new("", FindingKind::StatusWithoutKickoff, format!("BulkExportStatus/{} (requester {who}, transactionTime {when}) matches no kickoff in the logs: a hole in the logs?", c.id))
                .about("BulkExportStatus", c.id, "")
        })
        .collect();
    (matches, orphans)
}

/// Of the types not in the history (`type-not-in-history`), those of which the matched status's
/// `output` lists no file were not sent: the server's own record closes that gap. It counts only
/// when the status recorded its output: a `completed` status (even with an empty `output`), or
/// one that ended otherwise but lists files. Types it lists files of stay wanting.
fn none_sent(export_id: &str, status_id: &str, d: &StatusDetail, r: &mut Resolution) {
    let recorded = d.output_recorded && (d.status.as_deref() == Some("completed") || !d.counts.is_empty());
    if !recorded || r.types_not_in_history.is_empty() {
        return;
    }
    let (wanting, none_sent): (Vec<String>, Vec<String>) =
        r.types_not_in_history.drain(..).partition(|t| d.counts.iter().any(|(listed, _)| listed == t));
    r.types_none_sent = none_sent;
    r.types_not_in_history = wanting;
    r.findings.retain(|f| f.kind != FindingKind::TypeNotInHistory);
    if !r.types_not_in_history.is_empty() {
        let (them, it) = if r.types_not_in_history.len() == 1 { ("it", "a file") } else { ("them", "files") };
        r.findings.push(Finding::new(
            export_id,
            FindingKind::TypeNotInHistory,
            format!(
                "the history holds no version of {} and no file or table named for {them}, and BulkExportStatus/{status_id} \
                 lists {it} of {them}: what the server sent of {them} cannot be listed",
                r.types_not_in_history.join(", ")
            ),
        ));
    }
}

/// The status's per-type counts, one per type.
fn reported(d: &StatusDetail) -> BTreeMap<&str, u64> {
    d.counts.iter().map(|(t, c)| (t.as_str(), *c)).collect()
}

fn compare_counts(export_id: &str, status_id: &str, d: &StatusDetail, r: &mut Resolution) {
    if d.counts.is_empty() {
        return;
    }
    let reported = reported(d);
    let mut types: Vec<&str> = reported.keys().copied().chain(r.counts.keys().map(String::as_str)).collect();
    types.sort();
    types.dedup();
    let mut found = Vec::new();
    for t in types {
        let server = reported.get(t).copied().unwrap_or(0);
        let ours = r.counts.get(t).copied().unwrap_or(0);
        if server != ours {
            found.push(
                Finding::new(
                    export_id,
                    FindingKind::CountMismatch,
                    format!(
                        "BulkExportStatus/{status_id} reports {server} {t} resources; the reconstruction lists {ours}"
                    ),
                )
                .about(t, "", ""),
            );
        }
    }
    r.findings.extend(found);
}
