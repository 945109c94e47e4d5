//! Resolving one accepted export, step by step as the SPEC numbers them: the Client's scopes as
//! of T (1), the exported types (2), the selected patients (3), and every resource version the
//! client received within the time parameters (4–6) — one row per (resource, patient) — with
//! the findings the data leaves in doubt.

mod patients;
mod resources;
mod types;

use std::collections::{BTreeMap, BTreeSet};

use rayon::slice::ParallelSliceMut;

use crate::fhir::compartment::Compartment;
use crate::index::{Boundary, History, Resource, Version, NO_TENANT};
use crate::rules::findings::{Finding, FindingKind};
use crate::rules::kickoff::ExportEvent;
use crate::timestamp::Instant;

/// Which resources of types outside the patient compartment a group- or patient-level export
/// lists (`--non-compartment`). System-level exports always list every resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum NonCompartment {
    All,
    Referenced,
    None,
}

/// The options that decide rows.
pub(crate) struct ResolveOptions<'a> {
    pub(crate) boundary: Boundary,
    pub(crate) wildcard_types: Vec<String>,
    /// The FHIR resource types of `--fhir-version`: "every type", and all an export can send.
    pub(crate) fhir_types: BTreeSet<String>,
    /// `R4`, `R4B` or `R5`, for messages.
    pub(crate) fhir_version_name: &'static str,
    pub(crate) non_compartment: NonCompartment,
    pub(crate) skip_inactive_members: bool,
    pub(crate) compartment: &'a Compartment,
    /// FHIR types a history file or table is named for: dumped, even when empty.
    pub(crate) named_types: &'a BTreeSet<String>,
    /// The types the history holds versions of, when the index given holds only some of them
    /// (a plan over shards): `None`, those of the index.
    pub(crate) present_types: Option<&'a BTreeSet<String>>,
    /// Stop after step 3 (the plan over shards: the rows are the SQL's).
    pub(crate) selection_only: bool,
}

/// One exported (resource version, patient) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) resource: u32,
    /// Index into the resource's versions.
    pub(crate) version: u32,
    pub(crate) patient: Option<u32>,
}

/// What resolving one export found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resolution {
    pub(crate) resolved: bool,
    pub(crate) client_version: Option<String>,
    /// The Client's name, description and SMART name at T, for people (see `Detail::Client`).
    pub(crate) client_label: Option<String>,
    pub(crate) scopes: Vec<String>,
    /// For a Client without `scope`: the AccessPolicies that link it as of T.
    pub(crate) access_policies: Vec<String>,
    /// `None` when every type is allowed (no Client at T, no or unreadable scopes).
    pub(crate) allowed_types: Option<BTreeSet<String>>,
    pub(crate) group_version: Option<String>,
    pub(crate) exported_types: BTreeSet<String>,
    /// Types the export may send of which the history holds no version and names no table or
    /// file (`type-not-in-history`): nothing of them can be listed.
    pub(crate) types_not_in_history: Vec<String>,
    /// Types not in the history of which the matched BulkExportStatus lists no file: not sent.
    pub(crate) types_none_sent: Vec<String>,
    pub(crate) patients: BTreeSet<String>,
    pub(crate) rows: Vec<Row>,
    pub(crate) findings: Vec<Finding>,
    /// Distinct resources per type among the rows.
    pub(crate) counts: BTreeMap<String, u64>,
    /// (`selection_only`) Step 3 selected nothing: a Group missing at T.
    pub(crate) selection_nothing: bool,
}

impl Resolution {
    /// Selected patients; for a system export, the distinct patients in its rows.
    pub(crate) fn patient_count(&self, e: &ExportEvent) -> usize {
        if e.level == crate::rules::kickoff::Level::System {
            self.rows.iter().filter_map(|row| row.patient).collect::<BTreeSet<u32>>().len()
        } else {
            self.patients.len()
        }
    }

    /// Distinct resources among the rows.
    pub(crate) fn resource_count(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// The export being resolved: the kickoff, its T and the end of its request, and where to look.
struct Ask<'a> {
    e: &'a ExportEvent,
    id: &'a str,
    t: Instant,
    end: Instant,
    h: &'a History,
    o: &'a ResolveOptions<'a>,
    /// The tenant of a `/tenant/{t}/…` kickoff, as the index numbers it (`UNSEEN_TENANT` when
    /// no resource is marked with it); `None`: a kickoff without a tenant, markers ignored.
    tenant: Option<u32>,
}

/// The number of a kickoff's tenant that no resource is marked with.
const UNSEEN_TENANT: u32 = NO_TENANT - 1;

impl<'a> Ask<'a> {
    /// A `boundary-ambiguous` finding for every version of the resource whose lastUpdated lies
    /// between T and the end of the kickoff request.
    fn ambiguous(&self, res: &Resource, out: &mut Vec<Finding>) {
        for v in res.in_window(self.t, self.end, self.o.boundary) {
            let what = if v.deleted { "deletion" } else { "version" };
            out.push(
                Finding::new(self.id, FindingKind::BoundaryAmbiguous, format!("{what} at {} lies between T ({}) and the end of the kickoff ({}): the server may or may not have included it", v.last_updated, self.t, self.end))
                    .about(self.h.type_name(res.resource_type), &res.id, &v.version_id.to_string()),
            );
        }
    }

    /// The resource's version in force at T, unless it is a deletion.
    fn live<'r>(&self, res: &'r Resource) -> Option<&'r Version> {
        res.live_at(self.t, self.o.boundary)
    }

    /// The resource (type, id) as this kickoff reads it: its tenant's, else an unmarked one.
    fn find(&self, resource_type: &str, id: &str) -> Option<&'a Resource> {
        self.h.resource_in(resource_type, id, self.tenant)
    }

    /// The types the history holds versions of, sorted.
    fn present_types(&self) -> Vec<String> {
        match self.o.present_types {
            Some(types) => types.iter().cloned().collect(),
            None => self.h.present_types(),
        }
    }

    /// Whether the history holds a version of the type.
    fn holds(&self, resource_type: &str) -> bool {
        match self.o.present_types {
            Some(types) => types.contains(resource_type),
            None => self.h.type_id(resource_type).is_some_and(|t| !self.h.of_type(t).is_empty()),
        }
    }

    /// Whether a resource is another tenant's than this kickoff's (never listed).
    fn foreign(&self, res: &Resource) -> bool {
        self.tenant.is_some_and(|t| res.tenant != NO_TENANT && res.tenant != t)
    }
}

pub(crate) fn resolve(e: &ExportEvent, h: &History, o: &ResolveOptions) -> Resolution {
    let mut r = Resolution::default();
    if e.method_not_logged {
        r.findings.push(Finding::new(
            &e.id,
            FindingKind::MethodNotLogged,
            "the logs hold no method for this request: taken as a kickoff because its path names $export",
        ));
    }
    if e.lines_unpaired {
        r.findings.push(Finding::new(
            &e.id,
            FindingKind::RequestLinesUnpaired,
            "the logs carry neither ctx nor ev for this kickoff: its response was paired with the nearest earlier \
             request line of the same URL and client",
        ));
    }
    if e.path_unrecognized {
        r.findings.push(Finding::new(
            &e.id,
            FindingKind::KickoffPathUnrecognized,
            format!("{} is none of the three kickoff forms: resolved as a system-level export (every resource of the exported types)", e.url.split('?').next().unwrap_or_default()),
        ));
    }
    if let (true, Some(s)) = (e.time_ambiguous(), e.stamp) {
        r.findings.push(Finding::new(
            &e.id,
            FindingKind::LocalTimeAmbiguous,
            format!(
                "the kickoff's local time occurs twice in the zone (the clocks went back): T is {}, the earlier; the \
                 boundary window runs to {}, the end of the later",
                s.at.to_rfc3339(),
                s.end().to_rfc3339()
            ),
        ));
    }
    let Some(t) = e.time else {
        r.findings.push(Finding::new(
            &e.id,
            FindingKind::KickoffTimeUnknown,
            "the kickoff has no timestamp in the logs: it cannot be resolved",
        ));
        return r;
    };
    if !e.accepted {
        return r;
    }
    r.resolved = true;
    let tenant = e.tenant.as_deref().map(|name| h.tenant_id(name).unwrap_or(UNSEEN_TENANT));
    let ask = Ask { e, id: &e.id, t, end: e.request_end().unwrap_or(t), h, o, tenant };
    // 1. Scopes.
    types::allowed_types(&ask, &mut r);
    // 2. Types.
    types::exported_types(&ask, &mut r);
    types::types_not_in_history(&ask, &mut r);
    // 3. Patients (`None`: every patient, a system export; a Group missing at T exports nothing).
    let selection = patients::selected(&ask, &mut r);
    // 5 (recorded). The parameters not applied, as findings.
    resources::params_not_applied(&ask, &mut r.findings);
    if o.selection_only {
        if let patients::Selection::Nothing = selection {
            r.selection_nothing = true;
        }
        return finish(r, h);
    }
    // 4–6. Resources, within step 5's time parameters.
    match selection {
        patients::Selection::Nothing => {}
        patients::Selection::Every => resources::rows(&ask, None, &mut r),
        patients::Selection::These(p) => resources::rows(&ask, Some(&p), &mut r),
    }
    resources::unmarked(&ask, &mut r);
    finish(r, h)
}

fn finish(mut r: Resolution, h: &History) -> Resolution {
    // Resources are numbered in (type, id) order, so this is the output order. A resource has
    // one version in an export, so rows equal in (resource, patient) are equal: an unstable
    // sort (no buffer the size of the rows) gives the same order.
    r.rows.par_sort_unstable_by(|a, b| {
        a.resource
            .cmp(&b.resource)
            .then_with(|| a.patient.map(|p| h.patient_name(p)).cmp(&b.patient.map(|p| h.patient_name(p))))
    });
    r.rows.dedup();
    // The rows grew by doubling; what is kept until the output is written holds no spare room.
    r.rows.shrink_to_fit();
    let mut per_type = vec![0u64; h.type_count()];
    let mut last = None;
    for row in &r.rows {
        if last != Some(row.resource) {
            per_type[h.resources[row.resource as usize].resource_type as usize] += 1;
            last = Some(row.resource);
        }
    }
    for (t, n) in per_type.into_iter().enumerate().filter(|&(_, n)| n > 0) {
        r.counts.insert(h.type_name(t as u32).to_string(), n);
    }
    r.findings.sort();
    r.findings.dedup();
    r
}
