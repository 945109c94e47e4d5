//! A world in memory: the population cloned with its generated history, the Groups and Clients
//! that change over time, the kickoffs and the two events placed around the first one, the
//! version ids, the truth, the BulkExportStatus resources and the other requests.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Map, Value};

use crate::compartment::Compartment;
use crate::population::load_population;
use crate::time::rfc3339;
use crate::truth::compute_truth;
use crate::{day, kickoffs, GenResource, GenVersion, Rng, World, WorldSpec, DAY, MS};

/// Generates the world in memory.
pub fn generate(spec: &WorldSpec) -> std::io::Result<World> {
    let compartment = Compartment::r4();
    let bases = load_population(spec, &compartment)?;
    let k_count = spec.clones.max(1);
    let sfx = |k: usize| if k_count == 1 { String::new() } else { format!("-c{k}") };
    let base_patients: Vec<String> = bases.iter().filter(|b| b.rtype == "Patient").map(|b| b.id.clone()).collect();
    let mut resources: Vec<GenResource> = Vec::new();
    for k in 0..k_count {
        let s = sfx(k);
        for (bi, b) in bases.iter().enumerate() {
            let mut rng = Rng::new(spec.seed ^ ((k as u64) << 32) ^ (bi as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let created = match b.rtype.as_str() {
                "Organization" | "Practitioner" => day(rng.unit()),
                "Patient" => day(0.5 + 1.5 * rng.unit()),
                _ => day(2.0 + 18.0 * rng.unit()),
            };
            let created = created - created % 1000;
            let pats = |list: &[String], s: &str| list.iter().map(|p| format!("{p}{s}")).collect::<Vec<_>>();
            let mut versions = vec![GenVersion {
                time: created,
                txid: 0,
                deleted: false,
                body: Some(b.version_text(&s, 1)),
                patients: pats(&b.patients, &s),
            }];
            let r = rng.unit();
            let updates = if r < 0.40 {
                1
            } else if r < 0.55 {
                2
            } else {
                0
            };
            let mut t = created;
            let mut current_owner = b.owner.clone();
            let mut current_patients = b.patients.clone();
            let mut current_text = b.version_text(&s, 1);
            for u in 0..updates {
                t += (0.5 * DAY as f64 + rng.unit() * 20.0 * DAY as f64) as i64;
                t -= t % 1000;
                let mut text = b.version_text(&s, u + 2);
                // Now and then a resource moves to another patient of its clone.
                let moves =
                    b.rtype != "Patient" && current_owner.is_some() && base_patients.len() > 1 && rng.unit() < 0.08;
                if moves {
                    let old = current_owner.clone().unwrap_or_default();
                    let candidates: Vec<&String> = base_patients.iter().filter(|p| **p != old).collect();
                    let new = candidates[rng.below(candidates.len() as u64) as usize].clone();
                    current_patients =
                        current_patients.iter().map(|p| if *p == old { new.clone() } else { p.clone() }).collect();
                    current_patients.sort();
                    current_patients.dedup();
                    current_owner = Some(new);
                }
                if let Some(o) = &current_owner {
                    if Some(o) != b.owner.as_ref() {
                        let from = format!("\"Patient/{}{s}\"", b.owner.as_deref().unwrap_or(""));
                        text = text.replace(&from, &format!("\"Patient/{o}{s}\""));
                    }
                }
                current_text = text.clone();
                versions.push(GenVersion {
                    time: t,
                    txid: 0,
                    deleted: false,
                    body: Some(text),
                    patients: pats(&current_patients, &s),
                });
            }
            if rng.unit() < 0.06 {
                t += (DAY as f64 + rng.unit() * 15.0 * DAY as f64) as i64;
                t -= t % 1000;
                versions.push(GenVersion { time: t, txid: 0, deleted: true, body: None, patients: vec![] });
                if rng.unit() < 0.5 {
                    t += (DAY as f64 + rng.unit() * 10.0 * DAY as f64) as i64;
                    t -= t % 1000;
                    versions.push(GenVersion {
                        time: t,
                        txid: 0,
                        deleted: false,
                        body: Some(current_text.clone()),
                        patients: pats(&current_patients, &s),
                    });
                }
            }
            resources.push(GenResource { rtype: b.rtype.clone(), id: format!("{}{s}", b.id), versions });
        }
    }
    let patients_of_clone =
        |k: usize| -> Vec<String> { base_patients.iter().map(|p| format!("{p}{}", sfx(k))).collect() };
    let last = k_count - 1;
    let p0 = patients_of_clone(0);
    let plast = patients_of_clone(last);
    let half = p0.len().div_ceil(2).max(1);

    // Groups (per clone 0 and the last clone), Clients.
    let group_ref = |id: &str, aidbox: bool| {
        if aidbox {
            json!({"resourceType": "Patient", "id": id})
        } else {
            json!({"reference": format!("Patient/{id}")})
        }
    };
    for (k, pl) in [(0usize, &p0), (last, &plast)].into_iter().collect::<BTreeMap<_, _>>() {
        let s = sfx(k);
        let a1: Vec<Value> = pl.iter().take(half).map(|p| json!({"entity": group_ref(p, false)})).collect();
        let mut a2: Vec<Value> = pl.iter().take(half).skip(1).map(|p| json!({"entity": group_ref(p, true)})).collect();
        if let Some(lp) = pl.last() {
            if pl.len() > half {
                a2.push(json!({"entity": group_ref(lp, true)}));
            }
        }
        add(
            &mut resources,
            "Group",
            &format!("cohort-a{s}"),
            vec![
                (day(1.0) + 123_456_000, Some(json!({"type": "person", "actual": true, "member": a1}))),
                (day(30.0) + 7_000_000, Some(json!({"type": "person", "actual": true, "member": a2}))),
            ],
        );
        let mut all_members: Vec<Value> = vec![json!({"entity": {"reference": format!("Group/cohort-a{s}")}})];
        for (i, p) in pl.iter().enumerate().skip(half) {
            let mut m = json!({"entity": group_ref(p, i % 2 == 0)});
            if i == half {
                m["inactive"] = json!(true);
            }
            if i == half + 1 {
                m["period"] = json!({"start": "2022-06-01T00:00:00Z", "end": "2023-01-05T00:00:00Z"});
            }
            all_members.push(m);
        }
        // A loop back to itself, and a member that is no Patient.
        all_members.push(json!({"entity": {"reference": format!("Group/cohort-all{s}")}}));
        all_members.push(json!({"entity": {"reference": "urn:uuid:5d0c7f3e-0000-0000-0000-000000000001"}}));
        add(
            &mut resources,
            "Group",
            &format!("cohort-all{s}"),
            vec![(day(2.0) + 98_765_000, Some(json!({"type": "person", "actual": true, "member": all_members})))],
        );
        add(
            &mut resources,
            "Group",
            &format!("cohort-gone{s}"),
            vec![
                (
                    day(3.0),
                    Some(json!({"type": "person", "actual": true, "member": [{"entity": group_ref(&pl[0], false)}]})),
                ),
                (day(25.0), None),
            ],
        );
    }
    add(
        &mut resources,
        "Client",
        "bulk-smartbox",
        vec![
            (
                day(0.0) + 1_000_000,
                Some(
                    json!({"type": "bulk-api-client", "grant_types": ["client_credentials"], "scope": "system/*.read"}),
                ),
            ),
            (
                day(40.0),
                Some(json!({"type": "bulk-api-client", "grant_types": ["client_credentials"],
                            "scope": ["system/Patient.read", "system/Observation.rs", "system/Condition.cruds"]})),
            ),
        ],
    );
    add(
        &mut resources,
        "Client",
        "bulk-limited",
        vec![(
            day(0.0) + 2_000_000,
            Some(json!({"type": "bulk-api-client",
                        "scope": ["system/Patient.read", "system/Encounter.read",
                                  "system/Observation.read?category=laboratory", "openid"]})),
        )],
    );
    add(
        &mut resources,
        "Client",
        "bulk-v2",
        vec![(day(0.0) + 3_000_000, Some(json!({"type": "bulk-api-client", "scope": "system/*.rs launch"})))],
    );
    add(
        &mut resources,
        "Client",
        "bulk-late",
        vec![(
            day(45.0),
            Some(json!({"type": "bulk-api-client", "scope": "system/Patient.read system/Encounter.read"})),
        )],
    );

    let kickoffs = kickoffs::plan(spec.format, &p0, &sfx(0), &sfx(last));

    // A version that lands inside kickoff 1's request: boundary-ambiguous.
    if let Some(k1) = kickoffs.iter().find(|k| k.ctx == "kick-01").cloned() {
        let members: HashSet<String> = p0.iter().take(half).cloned().collect();
        if let Some(r) = resources.iter_mut().find(|r| {
            r.rtype == "Observation"
                && r.versions[0].patients.iter().any(|p| members.contains(p))
                && r.versions[0].time < k1.time
        }) {
            let mut v = r.versions.iter().rev().find(|v| v.time < k1.time).cloned().expect("a version");
            if v.deleted {
                v = r.versions[0].clone();
            }
            v.time = k1.time + 300_000;
            v.deleted = false;
            r.versions.push(v);
        }
    }

    // A member of cohort-a is deleted half a day before kickoff 1 and recreated after it:
    // at T the Patient does not exist (patient-missing), its other resources are still found.
    if let (Some(k1), Some(p)) =
        (kickoffs.iter().find(|k| k.ctx == "kick-01").map(|k| k.time), p0.get(1).filter(|_| half >= 2))
    {
        if let Some(r) = resources.iter_mut().find(|r| r.rtype == "Patient" && &r.id == p) {
            let keep = r.versions.iter().rev().find(|v| !v.deleted && v.time < k1 - DAY / 2).cloned();
            if let Some(mut back) = keep {
                r.versions.retain(|v| v.time < k1 - DAY / 2 || v.time > k1 + DAY / 4);
                r.versions.push(GenVersion {
                    time: k1 - DAY / 2,
                    txid: 0,
                    deleted: true,
                    body: None,
                    patients: vec![],
                });
                back.time = k1 + DAY / 4;
                r.versions.push(back);
                r.versions.sort_by_key(|v| v.time);
            }
        }
    }

    // Version ids: Aidbox txids, increasing with time over the whole database.
    assign_txids(&mut resources, spec.seed);
    let mut truth = compute_truth(&resources, &kickoffs, &compartment);

    // BulkExportStatus: what the server kept of each accepted kickoff, with a few defects.
    let mut story = Vec::new();
    let mut status_res = Vec::new();
    for (i, k) in kickoffs.iter().enumerate() {
        if k.status >= 400 || k.ctx == "kick-10" {
            continue;
        }
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut seen = HashSet::new();
        for row in truth.iter().filter(|r| r[0] == k.ctx) {
            if seen.insert((row[3].clone(), row[4].clone())) {
                *counts.entry(row[3].clone()).or_insert(0) += 1;
            }
        }
        if k.ctx == "kick-03" {
            *counts.entry("Encounter".into()).or_insert(0) += 1;
        }
        let state = if k.ctx == "kick-05" { "error" } else { "completed" };
        let id = format!("bes-{:02}", i + 1);
        let params = json!({"group-id": k.group, "types": k.types, "since": k.since.map(rfc3339)});
        let first = json!({"requester": {"resourceType": "Client", "id": k.client},
                           "transactionTime": rfc3339(k.time + 2 * MS), "status": "in-progress", "params": params});
        let mut done = first.clone();
        done["status"] = json!(state);
        done["output"] = json!(counts
            .iter()
            .map(|(t, c)| json!({"type": t, "count": c, "url": format!("https://bucket.example/{id}/{t}.ndjson")}))
            .collect::<Vec<_>>());
        status_res.push((id, vec![(k.time + 3 * MS, Some(first)), (k.time + 30_000 * MS, Some(done))]));
    }
    // A status whose kickoff is lost in the log outage (days 30–33).
    status_res.push((
        "bes-99".into(),
        vec![(
            day(31.5),
            Some(json!({"requester": {"resourceType": "Client", "id": "bulk-v2"},
                        "transactionTime": rfc3339(day(31.5) - MS), "status": "completed",
                        "params": {}, "output": []})),
        )],
    ));
    for (id, versions) in status_res {
        add(&mut resources, "BulkExportStatus", &id, versions);
    }
    // The statuses get txids after everything else (they are written last by the server too).
    let mut next = resources.iter().flat_map(|r| r.versions.iter().map(|v| v.txid)).max().unwrap_or(0) + 10;
    for r in resources.iter_mut().filter(|r| r.rtype == "BulkExportStatus") {
        for v in &mut r.versions {
            v.txid = next;
            next += 3;
        }
    }
    truth.sort();

    // Noise: ordinary requests, with a hole in the logs from day 30 to day 33.
    let mut rng = Rng::new(spec.seed ^ 0xA5A5);
    let mut noise = Vec::new();
    let all_ids: Vec<&GenResource> = resources.iter().filter(|r| r.rtype != "BulkExportStatus").collect();
    for _ in 0..spec.noise_requests {
        let mut d = rng.unit() * 60.0;
        if (30.0..33.0).contains(&d) {
            d -= 3.5;
        }
        let r = all_ids[rng.below(all_ids.len() as u64) as usize];
        let client = ["ehr-ui", "bulk-smartbox", "lab-feed"][rng.below(3) as usize];
        let (method, url, status) = match rng.below(10) {
            0 => ("PUT", format!("/fhir/{}/{}", r.rtype, r.id), 200),
            1 => ("GET", "/fhir/$export-status/42".to_string(), 200),
            2 => ("DELETE", "/fhir/bulkstatus/42".to_string(), 202),
            3 => ("GET", format!("/fhir/{}/{}", r.rtype, r.id), 404),
            _ => ("GET", format!("/fhir/{}/{}", r.rtype, r.id), 200),
        };
        noise.push((day(d) - day(d) % MS, method, url, client.to_string(), status));
    }
    noise.sort();

    for k in &kickoffs {
        let rows = truth.iter().filter(|r| r[0] == k.ctx).count();
        story.push(format!(
            "- `{}` {} {} by `{}` at {} → HTTP {}: {} rows. {}",
            k.ctx,
            k.method,
            k.url,
            k.client,
            rfc3339(k.time),
            k.status,
            rows,
            k.story
        ));
    }
    Ok(World { resources, kickoffs, noise, truth, story })
}

/// Adds a generated resource (Group, Client, BulkExportStatus): its versions as (time, body),
/// a deletion where the body is None. Each body gets `resourceType` and `id` first.
fn add(resources: &mut Vec<GenResource>, rtype: &str, id: &str, versions: Vec<(i64, Option<Value>)>) {
    let versions = versions
        .into_iter()
        .map(|(t, body)| GenVersion {
            time: t,
            txid: 0,
            deleted: body.is_none(),
            patients: vec![],
            body: body.map(|mut b| {
                b["resourceType"] = json!(rtype);
                b["id"] = json!(id);
                let mut o = Map::new();
                o.insert("resourceType".into(), json!(rtype));
                o.insert("id".into(), json!(id));
                if let Value::Object(m) = b {
                    for (k, v) in m {
                        o.insert(k, v);
                    }
                }
                serde_json::to_string(&Value::Object(o)).unwrap_or_default()
            }),
        })
        .collect();
    resources.push(GenResource { rtype: rtype.into(), id: id.into(), versions });
}

fn assign_txids(resources: &mut [GenResource], seed: u64) {
    let mut order: Vec<(i64, usize, usize)> = resources
        .iter()
        .enumerate()
        .flat_map(|(ri, r)| r.versions.iter().enumerate().map(move |(vi, v)| (v.time, ri, vi)))
        .collect();
    order.sort_unstable();
    let mut rng = Rng::new(seed ^ 0x7717);
    let mut tx = 1000u64;
    for (_, ri, vi) in order {
        tx += 1 + rng.below(3);
        resources[ri].versions[vi].txid = tx;
    }
    for r in resources.iter_mut() {
        r.versions.sort_by_key(|v| (v.time, v.txid));
    }
}
