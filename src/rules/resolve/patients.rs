//! Step 3: the patients an export selects — a Group's members as of T (nested Groups expanded
//! without looping), the `patient` parameter's ids, or every Patient that exists at T.

use std::collections::{BTreeSet, HashSet};

use super::{Ask, Resolution};
use crate::index::Version;
use crate::rules::findings::{Finding, FindingKind};
use crate::rules::kickoff::Level;
use crate::version::{Detail, Member};

/// Whose compartments an export searches.
pub(super) enum Selection {
    /// A system export: no patient restriction.
    Every,
    /// The Group does not exist at T: nothing is exported.
    Nothing,
    These(Vec<String>),
}

pub(super) fn selected(ask: &Ask, r: &mut Resolution) -> Selection {
    let (e, h) = (ask.e, ask.h);
    let selected = match e.level {
        Level::Group => match group_members(ask, e.group_id.as_deref().unwrap_or(""), r) {
            Some(p) => p,
            None => return Selection::Nothing,
        },
        Level::Patient if !e.params.patients.is_empty() => e.params.patients.clone(),
        Level::Patient => match h.type_id("Patient") {
            Some(pt) => h
                .of_type(pt)
                .map(|ri| &h.resources[ri as usize])
                .filter(|res| !ask.foreign(res) && ask.live(res).is_some())
                .map(|res| res.id.to_string())
                .collect(),
            None => Vec::new(),
        },
        Level::System => return Selection::Every,
    };
    for p in &selected {
        if ask.find("Patient", p).and_then(|res| ask.live(res)).is_none() {
            r.findings.push(
                Finding::new(
                    ask.id,
                    FindingKind::PatientMissing,
                    format!("Patient/{p} does not exist at T; its compartment is still searched"),
                )
                .about("Patient", p, ""),
            );
        }
    }
    r.patients = selected.iter().cloned().collect();
    Selection::These(selected)
}

/// Expands a Group's members as of T (nested Groups too, without looping). `None` when the
/// Group does not exist at T.
fn group_members(ask: &Ask, gid: &str, r: &mut Resolution) -> Option<Vec<String>> {
    let (id, h, t, o) = (ask.id, ask.h, ask.t, ask.o);
    let root = ask.find("Group", gid);
    if let Some(g) = root {
        ask.ambiguous(g, &mut r.findings);
    }
    let Some(v) = root.and_then(|g| ask.live(g)) else {
        r.findings.push(
            Finding::new(
                id,
                FindingKind::GroupNotFound,
                format!("Group/{gid} has no version at T: nothing was exported"),
            )
            .about("Group", gid, ""),
        );
        return None;
    };
    r.group_version = Some(v.version_id.to_string());
    let mut patients = BTreeSet::new();
    // Members left out under --skip-inactive-members: said once the whole Group is expanded, so
    // that a patient kept through another membership is not said to be left out.
    let mut left_out: Vec<(String, String, String, &str)> = Vec::new();
    let mut visited: HashSet<String> = HashSet::from([gid.to_string()]);
    let mut queue: Vec<(String, &Version)> = vec![(gid.to_string(), v)];
    while let Some((g, v)) = queue.pop() {
        let members: &[Member] = match h.detail_of(v) {
            Some(Detail::Group { members }) => members,
            _ => &[],
        };
        for (i, m) in members.iter().enumerate() {
            let Some((mt, mid)) = &m.entity else {
                r.findings.push(
                    Finding::new(
                        id,
                        FindingKind::MemberUnresolvable,
                        format!("Group/{g} member {i} has no resolvable entity reference"),
                    )
                    .about("Group", &g, &v.version_id.to_string()),
                );
                continue;
            };
            // Inactive, or a period that excludes T: kept with a finding, or left out under
            // --skip-inactive-members — a nested Group member like any other.
            let out_of_period = m.period_start.is_some_and(|s| s > t) || m.period_end.is_some_and(|e| e < t);
            if m.inactive || out_of_period {
                let why = if m.inactive { "is marked inactive" } else { "has a period that excludes T" };
                if o.skip_inactive_members {
                    left_out.push((mt.clone(), mid.clone(), g.clone(), why));
                    continue;
                }
                r.findings.push(
                    Finding::new(
                        id,
                        FindingKind::MemberInactive,
                        format!("{mt}/{mid} in Group/{g} {why}; kept: Aidbox documents no such filtering"),
                    )
                    .about(mt, mid, ""),
                );
            }
            match mt.as_str() {
                "Patient" => {
                    patients.insert(mid.clone());
                }
                "Group" => {
                    if !visited.insert(mid.clone()) {
                        continue;
                    }
                    let nested = ask.find("Group", mid);
                    if let Some(n) = nested {
                        ask.ambiguous(n, &mut r.findings);
                    }
                    match nested.and_then(|n| ask.live(n)) {
                        Some(nv) => queue.push((mid.clone(), nv)),
                        None => r.findings.push(
                            Finding::new(
                                id,
                                FindingKind::GroupNotFound,
                                format!("nested Group/{mid} (member of Group/{g}) has no version at T"),
                            )
                            .about("Group", mid, ""),
                        ),
                    }
                }
                other => r.findings.push(
                    Finding::new(
                        id,
                        FindingKind::MemberNotPatient,
                        format!("Group/{g} member {other}/{mid} is not a Patient: no compartment is exported for it"),
                    )
                    .about(other, mid, ""),
                ),
            }
        }
    }
    for (mt, mid, g, why) in left_out {
        let action = if mt == "Patient" && patients.contains(&mid) {
            "kept all the same: it is a member through another entry too"
        } else {
            "left out (--skip-inactive-members)"
        };
        r.findings.push(
            Finding::new(id, FindingKind::MemberInactive, format!("{mt}/{mid} in Group/{g} {why}; {action}"))
                .about(&mt, &mid, ""),
        );
    }
    Some(patients.into_iter().collect())
}
