//! Whether each export's answer is complete (SPEC "What the inputs cannot tell"): an export
//! whose rows depend on something the inputs do not hold — its Group or Client not in the
//! history at T, its kickoff path none of the three forms, a type it may send not in the
//! history, its time unknown, a history that could answer nothing (let through with
//! `--allow-empty-history`) — is `incomplete`, with its reasons, wherever its rows are shown.

use super::AuditResult;
use crate::rules::findings::FindingKind;

/// The reason a type-not-in-history finding gives: the types, or their count when there are many.
fn types_wanting(types: &[String]) -> String {
    match types {
        [one] => format!("type {one} not in the history"),
        few if few.len() <= 8 => format!("types {} not in the history", few.join(", ")),
        many => format!("{} types not in the history (the report lists them)", many.len()),
    }
}

/// Why export `i` is incomplete, in words a person reads; empty when it is complete. A rejected
/// export sent nothing, which the logs tell: complete.
pub(crate) fn incomplete_because(r: &AuditResult, i: usize) -> Vec<String> {
    let e = &r.events[i];
    let x = &r.resolutions[i];
    if !e.accepted {
        return Vec::new();
    }
    let mut reasons: Vec<String> = Vec::new();
    if !x.resolved {
        reasons.push("the kickoff's time is not in the logs".into());
    }
    for f in x.findings.iter().filter(|f| f.kind.makes_incomplete()) {
        let what = match f.kind {
            FindingKind::KickoffPathUnrecognized => {
                "the kickoff path is none of the three forms (resolved as a system export)".to_string()
            }
            FindingKind::TypeNotInHistory => types_wanting(&x.types_not_in_history),
            _ if f.resource_id.is_empty() => {
                format!("the kickoff names no {} ({})", f.resource_type.to_lowercase(), f.kind.as_str())
            }
            _ => format!("{} {} not in the history at T", f.resource_type.to_lowercase(), f.resource_id),
        };
        if !reasons.contains(&what) {
            reasons.push(what);
        }
    }
    if r.history.version_count == 0 {
        reasons.push("the history holds no version (--allow-empty-history)".into());
    }
    reasons
}

/// The `completeness` and `incomplete_because` cells of export `i`, as the exports table and the
/// index's kickoffs table write them: `complete` or `incomplete`, and the reasons as one text,
/// `; ` between them (reasons are prose: a list column's CSV form splits on spaces).
pub(crate) fn cells(r: &AuditResult, i: usize) -> (&'static str, Option<String>) {
    let reasons = incomplete_because(r, i);
    if reasons.is_empty() {
        ("complete", None)
    } else {
        ("incomplete", Some(reasons.join("; ")))
    }
}

/// How many of the exports are incomplete.
pub(crate) fn incomplete_count(r: &AuditResult) -> usize {
    (0..r.events.len()).filter(|&i| !incomplete_because(r, i).is_empty()).count()
}
