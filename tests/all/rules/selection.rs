//! SPEC rules of selection: Group members, levels, `_since`/`_until`, the patient compartment and
//! what lies outside it, the options that select exports, the server's evidence, the input forms.

use super::*;

#[test]
fn groups_nest_without_looping_and_members_come_in_both_formats() {
    let mut w = World::new();
    w.kickoff("/fhir/Group/outer/$export", "c").client("c", json!("system/Patient.read"));
    w.version(
        json!({"resourceType": "Group", "id": "outer", "member": [
        {"entity": {"reference": "Group/inner"}}, {"entity": {"resourceType": "Patient", "id": "p1"}},
        {"entity": {"reference": "Practitioner/dr"}}, {"entity": {"reference": "urn:uuid:123"}}]}),
        "2",
        "2023-01-02T00:00:00Z",
    );
    w.version(json!({"resourceType": "Group", "id": "inner", "member": [{"entity": {"reference": "Group/outer"}}, {"entity": {"reference": "Patient/p2/_history/1"}}]}), "3", "2023-01-02T00:00:00Z");
    w.patient("p1").patient("p2").patient("p3");
    let a = w.audit(&[]);
    assert_eq!(a.ids(), vec!["Patient/p1", "Patient/p2"]);
    assert!(a.has("member-not-patient", "dr"));
    assert!(a.has("member-unresolvable", "outer"));
    assert_eq!(a.exports[0]["group_version"], "2");
    assert_eq!(a.exports[0]["patient_count"], "2");
}

#[test]
fn inactive_members_stay_in_unless_asked_and_missing_patients_are_still_searched() {
    let mut w = World::new();
    w.kickoff("/fhir/Group/g/$export", "c").client("c", json!(["system/Patient.read", "system/Observation.read"]));
    w.group("g", json!([{"entity": pref("p1"), "inactive": true}, {"entity": pref("p2"), "period": {"end": "2023-02-01T00:00:00Z"}}, {"entity": pref("gone")}]));
    w.patient("p1").patient("p2");
    w.obs("o1", pref("p1"), "4", "2023-01-04T00:00:00Z").obs("o2", pref("p2"), "5", "2023-01-04T00:00:00Z").obs(
        "o3",
        pref("gone"),
        "6",
        "2023-01-04T00:00:00Z",
    );
    let a = w.audit(&[]);
    assert_eq!(a.ids(), vec!["Observation/o1", "Observation/o2", "Observation/o3", "Patient/p1", "Patient/p2"]);
    assert!(a.has("member-inactive", "p1") && a.has("member-inactive", "p2"));
    assert!(a.has("patient-missing", "gone"));
    let skip = w.audit(&["--skip-inactive-members"]);
    assert_eq!(skip.ids(), vec!["Observation/o3"]);
}

#[test]
fn a_group_that_does_not_exist_at_t_exports_nothing() {
    let mut w = World::new();
    w.kickoff("/fhir/Group/g/$export", "c")
        .client("c", json!("system/Patient.read"))
        .group("g", json!([{"entity": pref("p1")}]))
        .patient("p1");
    w.delete("Group", "g", "9", "2023-02-01T00:00:00Z");
    let a = w.audit(&[]);
    assert!(a.rows.is_empty());
    assert!(a.has("group-not-found", "g"));
}

#[test]
fn patient_level_takes_the_patient_parameter_or_every_existing_patient() {
    let mut w = World::new();
    w.client("c", json!("system/Patient.read system/Observation.read")).patient("p1").patient("p2").patient("p3");
    w.delete("Patient", "p3", "9", "2023-02-01T00:00:00Z");
    w.obs("o1", pref("p1"), "4", "2023-01-04T00:00:00Z").obs("o2", pref("p2"), "5", "2023-01-04T00:00:00Z").obs(
        "o3",
        pref("p3"),
        "6",
        "2023-01-04T00:00:00Z",
    );
    w.request("one", T, "get", "/fhir/Patient/$export?patient=Patient%2Fp2", Some(202), "c");
    w.request("all", "2023-03-01T13:00:00Z", "get", "/fhir/Patient/$export", Some(202), "c");
    let a = w.audit(&[]);
    let of = |e: &str| -> Vec<String> {
        csv_rows(&a.out.join("resources.csv"))
            .into_iter()
            .filter(|r| r["export_id"] == e)
            .map(|r| format!("{}/{}", r["resource_type"], r["resource_id"]))
            .collect()
    };
    assert_eq!(of("one"), vec!["Observation/o2", "Patient/p2"]);
    assert_eq!(of("all"), vec!["Observation/o1", "Observation/o2", "Patient/p1", "Patient/p2"]);
}

#[test]
fn system_level_lists_everything_with_patients_from_the_compartment() {
    let mut w = World::new();
    w.kickoff("/fhir/$export", "c").client("c", json!("system/*.read")).patient("p1").patient("p2");
    w.version(
        json!({"resourceType": "Observation", "id": "o1", "subject": pref("p1"), "performer": [pref("p2")]}),
        "4",
        "2023-01-04T00:00:00Z",
    );
    w.version(
        json!({"resourceType": "Observation", "id": "o2", "subject": {"reference": "Group/g"}}),
        "5",
        "2023-01-04T00:00:00Z",
    );
    w.version(json!({"resourceType": "Location", "id": "l1"}), "6", "2023-01-04T00:00:00Z");
    let a = w.audit(&["--non-compartment", "none"]);
    assert_eq!(
        a.rows,
        vec![
            row("", "Location", "l1", "6"),
            row("p1", "Observation", "o1", "4"),
            row("p2", "Observation", "o1", "4"),
            row("", "Observation", "o2", "5"),
            row("p1", "Patient", "p1", "3"),
            row("p2", "Patient", "p2", "3")
        ]
    );
}

#[test]
fn since_and_until_filter_on_last_updated() {
    let mut w = basic();
    w.logs.clear();
    w.kickoff("/fhir/Group/g/$export?_since=2023-02-01T00:00:00Z&_until=2023-02-20T00%3A00%3A00Z&_elements=id&_typeFilter=Observation%3Fcode%3D1", "c");
    w.obs("o1", pref("p1"), "4", "2023-02-01T00:00:00Z").obs("o2", pref("p1"), "5", "2023-02-10T00:00:00Z").obs(
        "o3",
        pref("p1"),
        "6",
        "2023-02-20T00:00:00Z",
    );
    let a = w.audit(&[]);
    assert_eq!(a.ids(), vec!["Observation/o2"]);
    assert_eq!(a.kinds().iter().filter(|k| *k == "param-not-applied").count(), 2);
    assert_eq!(a.exports[0]["since"], "2023-02-01T00:00:00Z");
}

#[test]
fn non_compartment_types_follow_the_policy() {
    let mut w = World::new();
    w.kickoff("/fhir/Group/g/$export", "c")
        .client("c", json!("system/*.read"))
        .group("g", json!([{"entity": pref("p1")}]))
        .patient("p1")
        .patient("p2");
    w.version(json!({"resourceType": "Encounter", "id": "e1", "subject": pref("p1"), "location": [{"location": {"reference": "Location/l1"}}],
                     "serviceProvider": {"resourceType": "Organization", "id": "org1"}}), "4", "2023-01-04T00:00:00Z");
    w.version(json!({"resourceType": "Encounter", "id": "e2", "subject": pref("p2"), "location": [{"location": {"reference": "Location/l2"}}]}), "5", "2023-01-04T00:00:00Z");
    for (t, id) in [("Location", "l1"), ("Location", "l2"), ("Organization", "org1")] {
        w.version(json!({"resourceType": t, "id": id}), "6", "2023-01-04T00:00:00Z");
    }
    assert_eq!(
        w.audit(&[]).ids(),
        vec!["Encounter/e1", "Location/l1", "Location/l2", "Organization/org1", "Patient/p1"]
    );
    assert_eq!(
        w.audit(&["--non-compartment", "referenced"]).ids(),
        vec!["Encounter/e1", "Location/l1", "Organization/org1", "Patient/p1"]
    );
    assert_eq!(w.audit(&["--non-compartment", "none"]).ids(), vec!["Encounter/e1", "Patient/p1"]);
}

#[test]
fn compartment_references_in_every_form_and_only_to_patients() {
    let mut w = World::new();
    w.kickoff("/fhir/Group/g/$export", "c")
        .client("c", json!("system/*.read"))
        .group("g", json!([{"entity": pref("p1")}]))
        .patient("p1");
    let forms = [
        ("o1", json!({"reference": "Patient/p1/_history/3"})),
        ("o2", json!({"reference": "https://fhir.example.org/fhir/Patient/p1"})),
        ("o3", json!({"resourceType": "Patient", "id": "p1"})),
        ("o4", json!({"uri": "https://fhir.example.org/Patient/p1"})),
        ("o5", json!({"reference": "urn:uuid:p1"})),
        ("o6", json!({"reference": "#p1"})),
        ("o7", json!({"reference": "Group/p1"})),
    ];
    for (i, (id, r)) in forms.into_iter().enumerate() {
        w.obs(id, r, &(10 + i).to_string(), "2023-01-04T00:00:00Z");
    }
    // A reference outside the compartment paths does not count; one on a deep path does.
    w.version(
        json!({"resourceType": "Encounter", "id": "e1", "serviceProvider": pref("p1")}),
        "20",
        "2023-01-04T00:00:00Z",
    );
    w.version(json!({"resourceType": "CarePlan", "id": "cp1", "activity": [{"detail": {"performer": [{"reference": "Practitioner/x"}, pref("p1")]}}]}), "21", "2023-01-04T00:00:00Z");
    let a = w.audit(&["--non-compartment", "none"]);
    assert_eq!(
        a.ids(),
        vec!["CarePlan/cp1", "Observation/o1", "Observation/o2", "Observation/o3", "Observation/o4", "Patient/p1"]
    );
}

#[test]
fn fhir_version_chooses_the_compartment_table() {
    let mut w = World::new();
    w.kickoff("/fhir/Group/g/$export", "c")
        .client("c", json!("system/*.read"))
        .group("g", json!([{"entity": pref("p1")}]))
        .patient("p1");
    // NutritionIntake exists only in R5; there `reported as Reference` is a compartment path.
    w.version(
        json!({"resourceType": "NutritionIntake", "id": "n1", "reportedReference": pref("p1")}),
        "7",
        "2023-01-04T00:00:00Z",
    );
    let r4 = w.audit(&["--wildcard", "all"]);
    assert!(!r4.ids().contains(&"NutritionIntake/n1".to_string()), "not an R4 resource type: never sent");
    let r5 = w.audit(&["--wildcard", "all", "--fhir-version", "r5"]);
    assert!(r5.rows.contains(&row("p1", "NutritionIntake", "n1", "7")));
}

#[test]
fn client_and_time_options_select_the_exports() {
    let mut w = World::new();
    w.client("a", json!("system/Patient.read")).client("b", json!("system/Patient.read")).patient("p1");
    w.request("x1", "2023-03-01T10:00:00Z", "get", "/fhir/$export", Some(202), "a")
        .request("x2", "2023-03-02T10:00:00Z", "get", "/fhir/$export", Some(202), "b")
        .request("x3", "2023-03-03T10:00:00Z", "get", "/fhir/$export", Some(202), "a");
    let ids = |a: Audit| a.exports.iter().map(|e| e["export_id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(w.audit(&["--client", "a"])), vec!["x1", "x3"]);
    assert_eq!(ids(w.audit(&["--client", "a", "--client", "b", "--from", "2023-03-02T00:00:00Z"])), vec!["x2", "x3"]);
    // A bare date covers the whole day (in --tz, which a date without an offset needs).
    assert_eq!(ids(w.audit(&["--to", "2023-03-02", "--tz", "UTC"])), vec!["x1", "x2"]);
    assert_eq!(ids(w.audit(&["--from", "2023-03-02", "--to", "2023-03-02", "--tz", "UTC"])), vec!["x2"]);
    // 2023-03-02 in Tokyo ends at 15:00 UTC that day; in Honolulu it starts at 10:00 UTC, so x2 is in.
    assert_eq!(ids(w.audit(&["--to", "2023-03-02", "--tz", "Asia/Tokyo"])), vec!["x1", "x2"]);
    assert_eq!(ids(w.audit(&["--to", "2023-03-01", "--tz", "Asia/Tokyo"])), vec!["x1"]);
    assert_eq!(ids(w.audit(&["--from", "2023-03-02", "--tz", "Pacific/Honolulu"])), vec!["x2", "x3"]);
    assert_eq!(ids(w.audit(&["--to", "2023-03-02T10:00:00Z"])), vec!["x1", "x2"]);
}

/// A run that resolves no export says so on stderr, with what the logs did hold, so that the
/// user can mend the selection; and input text never reaches the terminal raw.
#[test]
fn a_run_that_resolves_nothing_says_what_it_saw() {
    let mut w = World::new();
    w.client("a", json!("system/Patient.read")).patient("p1");
    w.request("x1", "2023-03-01T10:00:00Z", "get", "/fhir/$export", Some(202), "a").request(
        "x\u{1b}[2J",
        "2023-03-02T10:00:00Z",
        "get",
        "/fhir/$export",
        Some(202),
        "b\u{1b}[31m",
    );
    let (logs, history) = w.write();
    let out = w.dir.path().join("out");
    let args = [
        "audit",
        "--logs",
        logs.to_str().unwrap(),
        "--history",
        history.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let r = run(&[&args[..], &["--client", "nobody"]].concat());
    assert_eq!(r.status.code(), Some(0));
    let stderr = String::from_utf8(r.stderr).unwrap();
    assert!(
        stderr
            .contains("no export was resolved: none of the 2 kickoffs in the logs is selected by --client/--from/--to"),
        "{stderr}"
    );
    assert!(stderr.contains("covering from 2023-03-01T10:00:00Z to 2023-03-02T10:00:00.050Z"), "{stderr}");
    assert!(stderr.contains("clients of kickoffs: a, b\\u001b[31m"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no raw escape reaches the terminal");
    let r = run(&args);
    let stdout = String::from_utf8(r.stdout).unwrap();
    assert!(stdout.contains("x\\u001b[2J") && !stdout.contains('\u{1b}'), "{stdout}");
    assert!(String::from_utf8(r.stderr).unwrap().is_empty(), "exports were resolved: nothing to say");
}

/// `--from`/`--to` without an offset and without --tz: the run stops at once (exit 1), never
/// guessing UTC.
#[test]
fn a_time_option_without_offset_needs_tz() {
    let mut w = World::new();
    w.client("a", json!("system/Patient.read")).patient("p1");
    w.request("x1", "2023-03-01T10:00:00Z", "get", "/fhir/$export", Some(202), "a");
    let (logs, history) = w.write();
    let r = Bulk::audit(&logs, &history).args(["--to", "2023-03-02"]).run();
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--to 2023-03-02: no UTC offset, and no --tz"));
}

#[test]
fn bulk_export_status_is_matched_and_compared() {
    let mut w = basic();
    w.obs("o1", pref("p1"), "4", "2023-01-04T00:00:00Z").obs("o2", pref("p1"), "5", "2023-01-04T00:00:00Z");
    let status = |id: &str, tt: &str, state: &str, obs: u64| {
        json!({"resourceType": "BulkExportStatus", "id": id, "requester": {"resourceType": "Client", "id": "c"}, "transactionTime": tt, "status": state,
               "params": {"group-id": "g"}, "output": [{"type": "Patient", "count": 1}, {"type": "Observation", "count": obs}]})
    };
    w.version(status("s1", "2023-03-01T12:00:00.010Z", "error", 3), "50", "2023-03-01T12:00:31Z");
    w.version(status("s2", "2023-02-01T00:00:00Z", "completed", 2), "51", "2023-02-01T00:00:31Z");
    let a = w.audit(&[]);
    assert_eq!(a.exports[0]["status_resource_id"], "s1");
    assert_eq!(a.exports[0]["status_resource_status"], "error");
    assert!(a.has("export-not-completed", "s1"));
    let mismatch: Vec<_> = a.findings.iter().filter(|f| f["kind"] == "count-mismatch").collect();
    assert_eq!(mismatch.len(), 1);
    assert_eq!(mismatch[0]["resource_type"], "Observation");
    assert!(a.has("status-without-kickoff", "s2"));
}

#[test]
fn holes_in_the_logs_are_reported() {
    let mut w = basic();
    w.request("n1", "2023-02-01T00:00:00Z", "get", "/fhir/Patient/p1", Some(200), "ui");
    let a = w.audit(&["--max-log-gap", "7d"]);
    assert_eq!(a.kinds().iter().filter(|k| *k == "log-gap").count(), 1);
    let m: Value = serde_json::from_str(&read(&a.out.join("manifest.json"))).unwrap();
    assert_eq!(m["log_coverage"]["gaps"].as_array().unwrap().len(), 1);
    assert_eq!(m["log_coverage"]["first"], "2023-02-01T00:00:00Z");
    assert!(w.audit(&["--max-log-gap", "30d"]).kinds().iter().all(|k| k != "log-gap"));
}

#[test]
fn scope_queries_are_granted_and_flagged() {
    let mut w = basic();
    w.history.retain(|l| !l.contains("\"Client\""));
    w.client("c", json!(["system/Patient.read", "system/Observation.read?category=laboratory"]));
    w.obs("o1", pref("p1"), "4", "2023-01-04T00:00:00Z");
    let a = w.audit(&[]);
    assert!(a.ids().contains(&"Observation/o1".to_string()));
    assert!(a.has("scope-query-not-applied", ""));
}

#[test]
fn log_forms_kibana_csv_with_tz_elasticsearch_and_compression_by_magic() {
    let mut w = basic();
    w.obs("o1", pref("p1"), "4", "2023-03-01T11:30:00Z");
    let (_, history) = w.write();
    let dir = w.dir.path();
    // Kibana CSV, 13:00 in Berlin = 12:00 UTC, after o1 (11:30 UTC).
    let kibana = dir.join("kibana.csv");
    std::fs::write(&kibana, "\"@timestamp\",\"w_url\",\"w_m\",\"w_cid\",\"w_st\",ctx\n\"Mar 1, 2023 @ 12:15:00.000\",\"/fhir/Group/g/$export\",get,c,202,k\n").unwrap();
    let out = dir.join("o-k");
    let run_with = |logs: &std::path::Path, tz: &str, out: &std::path::Path| {
        Bulk::audit(logs, &history).args(["--format", "csv"]).out(out).arg("--tz").arg(tz).ok();
        csv_rows(&out.join("resources.csv")).into_iter().map(|r| r["resource_id"].clone()).collect::<Vec<_>>()
    };
    assert_eq!(run_with(&kibana, "UTC", &out), vec!["o1", "p1"]);
    // Read in Berlin, 12:15 is 11:15 UTC: before o1.
    assert_eq!(run_with(&kibana, "Europe/Berlin", &dir.join("o-k2")), vec!["p1"]);
    // A pretty-printed Elasticsearch response, gzip-compressed under a plain name.
    let es = json!({"took": 3, "hits": {"total": {"value": 1}, "hits": [{"_index": "logs", "_source": {"ts": T, "ctx": "k", "w_m": "get", "w_url": "/fhir/Group/g/$export", "w_cid": "c", "w_st": 202}}]}});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, serde_json::to_string_pretty(&es).unwrap().as_bytes()).unwrap();
    let es_path = dir.join("search-response.json");
    std::fs::write(&es_path, gz.finish().unwrap()).unwrap();
    assert_eq!(run_with(&es_path, "UTC", &dir.join("o-e")), vec!["o1", "p1"]);
    // Hits as NDJSON, zstd-compressed under a .json name.
    let hit = json!({"_index": "logs", "_source": {"ts": T, "ctx": "k", "w_m": "get", "w_url": "/fhir/Group/g/$export", "w_cid": "c", "w_st": 202}});
    let zst_path = dir.join("hits.json");
    std::fs::write(&zst_path, zstd::encode_all(format!("{hit}\n").as_bytes(), 3).unwrap()).unwrap();
    assert_eq!(run_with(&zst_path, "UTC", &dir.join("o-z")), vec!["o1", "p1"]);
}

#[test]
fn history_forms_aidbox_rows_bundles_and_entries_in_one_run() {
    let mut w = World::new();
    w.kickoff("/fhir/Group/g/$export", "c")
        .client("c", json!("system/Patient.read system/Observation.read"))
        .group("g", json!([{"entity": pref("p1")}]));
    w.history.push(json!({"id": "p1", "resource_type": "Patient", "txid": 30, "ts": "2023-01-03 00:00:00.123456+00", "status": "created", "resource": {"gender": "female"}}).to_string());
    w.history.push(json!({"resourceType": "Bundle", "type": "history", "entry": [
        {"request": {"method": "DELETE", "url": "Observation/o1/_history/42"}, "response": {"lastModified": "2023-02-10T00:00:00Z"}},
        {"resource": {"resourceType": "Observation", "id": "o1", "subject": pref("p1"), "meta": {"versionId": "41", "lastUpdated": "2023-02-01T00:00:00Z"}}, "request": {"method": "PUT", "url": "Observation/o1"}}]}).to_string());
    w.history.push(json!({"resource": {"resourceType": "Observation", "id": "o2", "subject": {"resourceType": "Patient", "id": "p1"}, "meta": {"versionId": "43", "lastUpdated": "2023-02-01T00:00:00Z"}}, "request": {"method": "POST", "url": "Observation"}}).to_string());
    let a = w.audit(&[]);
    assert_eq!(a.rows, vec![row("p1", "Observation", "o2", "43"), row("p1", "Patient", "p1", "30")]);
}

/// The report names the Client as people know it: its `name`, `description` and `smart.name`
/// as of T (the later version's, not the first), escaped.
#[test]
fn the_report_names_the_client_as_of_t() {
    let mut w = World::new();
    w.kickoff("/fhir/Patient/$export", "c1");
    w.version(
        json!({"resourceType": "Client", "id": "c1", "scope": ["system/*.read"], "name": "Old name"}),
        "1",
        "2023-01-01T00:00:00Z",
    );
    w.version(
        json!({"resourceType": "Client", "id": "c1", "scope": ["system/*.read"], "name": "Research <export>",
               "description": "Nightly research extract", "smart": {"name": "Acme SMART app"}}),
        "2",
        "2023-02-01T00:00:00Z",
    );
    w.patient("p1");
    let a = w.audit(&[]);
    let html = read(&a.out.join("report.html"));
    assert!(
        html.contains("c1</span> (Research &lt;export&gt; — Nightly research extract — Acme SMART app)"),
        "{}",
        &html[html.find("client</th>").unwrap_or(0)..][..300]
    );
    assert!(!html.contains("Old name"));
}
