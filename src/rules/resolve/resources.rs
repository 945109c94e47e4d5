//! Steps 4–6: every resource of an exported type whose version in force at T exists, lies within
//! `_since`/`_until` and is in a selected patient's compartment (or, outside the compartment,
//! what `--non-compartment` lists), one row per (resource, patient).

use super::{Ask, NonCompartment, Resolution, Row};
use crate::index::{History, Resource, Version, NO_TENANT};
use crate::rules::findings::{Finding, FindingKind};
use crate::rules::kickoff::Level;

/// 5 (recorded). The parameters this tool does not apply.
pub(super) fn params_not_applied(ask: &Ask, out: &mut Vec<Finding>) {
    let (p, id) = (&ask.e.params, ask.id);
    for tf in &p.type_filter {
        out.push(Finding::new(
            id,
            FindingKind::ParamNotApplied,
            format!("_typeFilter={tf} is not applied: more may be listed than was sent"),
        ));
    }
    if !p.elements.is_empty() {
        out.push(Finding::new(
            id,
            FindingKind::ParamNotApplied,
            format!("_elements={} is not applied: whole resources are listed", p.elements.join(",")),
        ));
    }
    for name in &p.other {
        out.push(Finding::new(id, FindingKind::ParamNotApplied, format!("parameter {name} is not interpreted")));
    }
    for (name, why) in &p.invalid {
        out.push(Finding::new(
            id,
            FindingKind::ParamNotApplied,
            format!("{name} is unreadable ({why}): not applied, so more may be listed"),
        ));
    }
    if ask.e.level != Level::Patient && !p.patients.is_empty() {
        // Aidbox documents `patient` on group-level POST; the SPEC applies it at patient level.
        out.push(Finding::new(
            id,
            FindingKind::ParamNotApplied,
            format!(
                "patient={} is not applied at {} level: every patient the export selects is listed",
                p.patients.join(","),
                ask.e.level.as_str()
            ),
        ));
    }
    if p.body_not_logged {
        out.push(Finding::new(
            id,
            FindingKind::RequestBodyNotLogged,
            "a POST kickoff whose body was not logged (w_b): its parameters are the query's alone, so the client may \
             have asked for less than is listed",
        ));
    }
    if let Some(org) = &ask.e.organization {
        out.push(Finding::new(
            id,
            FindingKind::OrganizationScopeNotApplied,
            format!("kickoff under Organization/{org}: resolved without an organization filter, so more may be listed than was sent"),
        ));
    }
}

/// 4–6. The rows of the exported types; `selected` is `None` for a system export.
pub(super) fn rows(ask: &Ask, selected: Option<&[String]>, r: &mut Resolution) {
    let (e, h, o) = (ask.e, ask.h, ask.o);
    // 5. Time parameters.
    let in_time = |v: &Version| {
        e.params.since.is_none_or(|s| v.last_updated > s) && e.params.until.is_none_or(|u| v.last_updated < u)
    };
    let selected_ids: Option<PatientSet> =
        selected.map(|s| PatientSet::new(s.iter().filter_map(|p| h.patient_id(p)), h.patient_count()));
    // The resources touching a selected patient, by type, each once.
    let mut candidates: Vec<Vec<u32>> = vec![Vec::new(); h.type_count()];
    if let Some(ids) = &selected_ids {
        let mut seen = vec![0u64; h.resources.len().div_ceil(64)];
        for &p in &ids.ids {
            for &ri in h.touching_patient(p) {
                let (word, bit) = (ri as usize / 64, 1u64 << (ri % 64));
                if seen[word] & bit == 0 {
                    seen[word] |= bit;
                    candidates[h.resources[ri as usize].resource_type as usize].push(ri);
                }
            }
        }
    }
    // Only asked whether it holds a (type, id): a hash set, filled from every exported row.
    let mut referenced: rustc_hash::FxHashSet<(u32, u32)> = Default::default();
    let mut outside: Vec<u32> = Vec::new();
    // 4. Types in the compartment.
    for ty in &r.exported_types {
        let Some(tid) = h.type_id(ty) else { continue };
        if !o.compartment.contains(ty) {
            outside.push(tid);
            continue;
        }
        let every: Vec<u32>;
        let list: &[u32] = match &selected_ids {
            None => {
                every = h.of_type(tid).collect();
                &every
            }
            Some(_) => &candidates[tid as usize],
        };
        for (k, &ri) in list.iter().enumerate() {
            // Each resource's versions are their own allocation: fetch a later one's meanwhile.
            if let Some(&ahead) = list.get(k + 8) {
                crate::index::prefetch(h.resources[ahead as usize].versions.as_ptr());
            }
            let res = &h.resources[ri as usize];
            if ask.foreign(res) {
                continue;
            }
            ask.ambiguous(res, &mut r.findings);
            let Some((vi, v)) = live_index(ask, res) else { continue };
            if !in_time(v) {
                continue;
            }
            let before = r.rows.len();
            let patients = h.patients_of(v);
            match &selected_ids {
                None if patients.is_empty() => r.rows.push(Row { resource: ri, version: vi, patient: None }),
                None => r.rows.extend(patients.iter().map(|&p| Row { resource: ri, version: vi, patient: Some(p) })),
                Some(ids) => r.rows.extend(patients.iter().filter(|p| ids.contains(p)).map(|&p| Row {
                    resource: ri,
                    version: vi,
                    patient: Some(p),
                })),
            }
            if r.rows.len() > before && o.non_compartment == NonCompartment::Referenced {
                referenced.extend(h.references_of(v).iter().copied());
            }
        }
    }
    // 6. Types outside the compartment.
    for tid in outside {
        let policy = if e.level == Level::System { NonCompartment::All } else { o.non_compartment };
        if policy == NonCompartment::None {
            continue;
        }
        for ri in h.of_type(tid) {
            let res = &h.resources[ri as usize];
            if ask.foreign(res) || (policy == NonCompartment::Referenced && !is_referenced(h, &referenced, res)) {
                continue;
            }
            ask.ambiguous(res, &mut r.findings);
            let Some((vi, v)) = live_index(ask, res) else { continue };
            if in_time(v) {
                r.rows.push(Row { resource: ri, version: vi, patient: None });
            }
        }
    }
}

/// A tenant's export lists resources with no tenant marker (an audit errs towards more): one
/// finding with how many of its rows are such.
pub(super) fn unmarked(ask: &Ask, r: &mut Resolution) {
    if ask.tenant.is_none() {
        return;
    }
    let h = ask.h;
    let n = r.rows.iter().filter(|row| h.resources[row.resource as usize].tenant == NO_TENANT).count();
    if n > 0 {
        let tenant = ask.e.tenant.as_deref().unwrap_or("");
        r.findings.push(Finding::new(
            ask.id,
            FindingKind::TenantUnmarked,
            format!("{n} rows are of resources with no tenant marker: listed for tenant {tenant}, though they may be another tenant's"),
        ));
    }
}

/// The selected patients' interned ids: in order, and as a bitset for membership.
struct PatientSet {
    ids: Vec<u32>,
    bits: Vec<u64>,
}

impl PatientSet {
    fn new(ids: impl Iterator<Item = u32>, count: usize) -> PatientSet {
        let mut ids: Vec<u32> = ids.collect();
        ids.sort_unstable();
        ids.dedup();
        let mut bits = vec![0u64; count.div_ceil(64)];
        for &p in &ids {
            bits[p as usize / 64] |= 1 << (p % 64);
        }
        PatientSet { ids, bits }
    }

    fn contains(&self, p: &u32) -> bool {
        self.bits.get(*p as usize / 64).is_some_and(|w| w & (1 << (p % 64)) != 0)
    }
}

/// Whether an exported compartment row's version referenced this resource.
fn is_referenced(h: &History, referenced: &rustc_hash::FxHashSet<(u32, u32)>, res: &Resource) -> bool {
    h.ref_id_of(&res.id).is_some_and(|i| referenced.contains(&(res.resource_type, i)))
}

/// The position and version in force at T, unless it is a deletion.
fn live_index<'r>(ask: &Ask, res: &'r Resource) -> Option<(u32, &'r Version)> {
    let i = res.as_of_index(ask.t, ask.o.boundary)?;
    let v = &res.versions[i];
    (!v.deleted).then_some((i as u32, v))
}
