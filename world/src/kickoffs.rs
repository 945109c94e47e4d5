//! The export kickoffs of a world: the twelve requests of its story, each written as a URL and
//! query and known to the generator by what it asks for (level, group, `_type`, `patient`,
//! `_since`, `_until`), so that the truth never reads the URLs back.

use crate::time::rfc3339;
use crate::{day, GenKickoff, WorldFormat, MS};

/// One kickoff as planned: the request as logged and, beside it, what it means.
#[derive(Default)]
struct Planned {
    n: usize,
    client: &'static str,
    day: f64,
    method: &'static str,
    path: String,
    query: Option<String>,
    /// The query is logged in `w_qs` rather than in the URL.
    in_qs: bool,
    status: u16,
    level: &'static str,
    group: Option<String>,
    types: Option<&'static [&'static str]>,
    patients: Vec<String>,
    since: Option<i64>,
    until: Option<i64>,
    story: &'static str,
}

impl Planned {
    fn kickoff(self) -> GenKickoff {
        let n = self.n as i64;
        let time = day(self.day) + (n * 7919 % 1000) * MS;
        let (url, qs) = match (self.query, self.in_qs) {
            (Some(q), false) => (format!("{}?{q}", self.path), None),
            (Some(q), true) => (self.path, Some(q)),
            (None, _) => (self.path, None),
        };
        GenKickoff {
            ctx: format!("kick-{:02}", self.n),
            client: self.client.into(),
            time,
            response: time + (40 + (n * 37) % 80) * MS,
            method: self.method,
            url,
            qs,
            status: self.status,
            level: self.level,
            group: self.group,
            types: self.types.map(|t| t.iter().map(|s| s.to_string()).collect()),
            patients: self.patients,
            since: self.since,
            until: self.until,
            story: self.story.into(),
        }
    }
}

/// The kickoffs, in time order. `p0`: the patients of the first clone; `s0`, `sl`: the id
/// suffixes of the first and the last clone.
pub(crate) fn plan(format: WorldFormat, p0: &[String], s0: &str, sl: &str) -> Vec<GenKickoff> {
    let group = |id: String| Planned {
        path: format!("/fhir/Group/{id}/$export"),
        level: "group",
        group: Some(id),
        ..Default::default()
    };
    let patient = || Planned { path: "/fhir/Patient/$export".into(), level: "patient", ..Default::default() };
    let system = || Planned { path: "/fhir/$export".into(), level: "system", ..Default::default() };
    let (first, second) = (p0[0].clone(), p0.get(1).unwrap_or(&p0[0]).clone());
    // The DuckDB peer reads plain ids only; the mixed world also writes the `Patient/` form.
    let prefix = if format == WorldFormat::Mixed { "Patient/" } else { "" };
    let planned = [
        Planned {
            n: 1,
            client: "bulk-smartbox",
            day: 12.5,
            method: "GET",
            status: 202,
            story: "group export under system/*.read: the 18 Smartbox types for cohort-a's first members",
            ..group(format!("cohort-a{s0}"))
        },
        Planned {
            n: 2,
            client: "bulk-smartbox",
            day: 13.0,
            method: "GET",
            query: Some("_type=Patient,Observation,Condition,Claim".into()),
            in_qs: true,
            types: Some(&["Patient", "Observation", "Condition", "Claim"]),
            status: 202,
            story: "nested group (cohort-a inside cohort-all, a self-loop, an inactive member, a member whose period \
                    ended); Claim is not granted",
            ..group(format!("cohort-all{sl}"))
        },
        Planned {
            n: 3,
            client: "bulk-limited",
            day: 20.0,
            method: "POST",
            path: format!("/tenant/t1/fhir/Group/cohort-a{s0}/%24export"),
            query: Some(format!("_since={}", rfc3339(day(15.0)).replace(':', "%3A"))),
            since: Some(day(15.0)),
            status: 202,
            story: "tenant path, %24export, POST, _since day 15; a scope with a query",
            ..group(format!("cohort-a{s0}"))
        },
        Planned {
            n: 4,
            client: "bulk-v2",
            day: 22.0,
            method: "GET",
            query: Some(format!("patient={first},{prefix}{second}")),
            patients: vec![first, second],
            status: 202,
            story: "patient-level export of two patients under SMART v2 system/*.rs",
            ..patient()
        },
        Planned {
            n: 5,
            client: "bulk-v2",
            day: 26.0,
            method: "GET",
            status: 202,
            story: "patient-level export of every Patient that exists at T",
            ..patient()
        },
        Planned {
            n: 6,
            client: "bulk-smartbox",
            day: 28.0,
            method: "GET",
            query: Some("_type=Patient,Organization,Encounter".into()),
            types: Some(&["Patient", "Organization", "Encounter"]),
            status: 202,
            story: "system-level export: every resource of the types, patient_id from its compartment",
            ..system()
        },
        Planned {
            n: 7,
            client: "bulk-smartbox",
            day: 35.0,
            method: "GET",
            status: 202,
            story: "the group was deleted on day 25: nothing exported",
            ..group(format!("cohort-gone{s0}"))
        },
        Planned {
            n: 8,
            client: "bulk-late",
            day: 36.0,
            method: "GET",
            query: Some("_type=Patient,Encounter".into()),
            types: Some(&["Patient", "Encounter"]),
            status: 202,
            story: "the client was created on day 45: at T it did not exist, every requested type is treated as \
                    allowed",
            ..group(format!("cohort-a{sl}"))
        },
        Planned {
            n: 9,
            client: "bulk-smartbox",
            day: 38.0,
            method: "GET",
            status: 429,
            story: "rejected by the server (429): listed, never resolved",
            ..group(format!("cohort-a{s0}"))
        },
        Planned {
            n: 10,
            client: "bulk-smartbox",
            day: 41.0,
            method: "GET",
            // `_typeFilter` is not applied by the audit: it does not narrow the truth.
            query: Some(format!("_typeFilter=Observation%3Fcode%3D8302-2&_until={}", rfc3339(day(39.0)))),
            until: Some(day(39.0)),
            status: 202,
            story: "after the scopes changed on day 40 (Patient, Observation, Condition); _until day 39; _typeFilter \
                    is not applied",
            ..group(format!("cohort-a{s0}"))
        },
        Planned {
            n: 11,
            client: "bulk-late",
            day: 48.0,
            method: "GET",
            status: 202,
            story: "the late client now exists: Patient and Encounter of the nested group",
            ..group(format!("cohort-all{s0}"))
        },
        Planned {
            n: 12,
            client: "bulk-smartbox",
            day: 55.0,
            method: "GET",
            status: 202,
            story: "system-level export of everything the client may read at T (scopes of day 40)",
            ..system()
        },
    ];
    let mut kickoffs: Vec<GenKickoff> = planned.into_iter().map(Planned::kickoff).collect();
    kickoffs.sort_by_key(|k| k.time);
    kickoffs
}
