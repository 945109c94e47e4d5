//! SPEC rules of versions and access: as-of T and its boundary, the log lines of a kickoff, the
//! kickoff forms, what scopes grant, tenants.

use super::*;

#[test]
fn as_of_takes_the_latest_version_before_t_and_respects_deletions() {
    let mut w = basic();
    w.obs("o1", pref("p1"), "10", "2023-02-01T00:00:00Z")
        .obs("o1", pref("p1"), "20", "2023-02-15T00:00:00Z")
        .obs("o1", pref("p1"), "30", "2023-03-02T00:00:00Z")
        .obs("o2", pref("p1"), "11", "2023-02-01T00:00:00Z")
        .delete("Observation", "o2", "21", "2023-02-20T00:00:00Z")
        .obs("o3", pref("p1"), "12", "2023-02-01T00:00:00Z")
        .delete("Observation", "o3", "22", "2023-02-10T00:00:00Z")
        .obs("o3", pref("p1"), "23", "2023-02-11T00:00:00Z")
        .obs("o4", pref("p1"), "40", "2023-03-05T00:00:00Z");
    let a = w.audit(&[]);
    assert_eq!(
        a.rows,
        vec![
            row("p1", "Observation", "o1", "20"),
            row("p1", "Observation", "o3", "23"),
            row("p1", "Patient", "p1", "3")
        ]
    );
}

#[test]
fn version_ids_break_ties_numerically_and_the_boundary_is_strict_by_default() {
    let mut w = basic();
    w.obs("o1", pref("p1"), "9", "2023-02-01T00:00:00Z").obs("o1", pref("p1"), "10", "2023-02-01T00:00:00Z");
    // Exactly at T: not before T.
    w.obs("o2", pref("p1"), "5", "2023-02-01T00:00:00Z").obs("o2", pref("p1"), "6", T);
    let strict = w.audit(&[]);
    assert!(strict.rows.contains(&row("p1", "Observation", "o1", "10")));
    assert!(strict.rows.contains(&row("p1", "Observation", "o2", "5")));
    assert!(strict.has("boundary-ambiguous", "o2"), "{:?}", strict.kinds());
    let inclusive = w.audit(&["--boundary", "inclusive"]);
    assert!(inclusive.rows.contains(&row("p1", "Observation", "o2", "6")));
    assert!(!inclusive.has("boundary-ambiguous", "o2"));
}

#[test]
fn boundary_window_runs_to_the_response_or_the_end_of_the_millisecond() {
    let mut w = basic();
    w.obs("o1", pref("p1"), "5", "2023-02-01T00:00:00Z").obs("o1", pref("p1"), "6", "2023-03-01T12:00:00.040Z");
    w.obs("o2", pref("p1"), "7", "2023-03-01T12:00:00.060Z");
    let a = w.audit(&[]);
    assert!(a.has("boundary-ambiguous", "o1"));
    assert!(!a.has("boundary-ambiguous", "o2"), "after the response: plainly later");
    // Without a w/resp line the window is T's millisecond.
    let mut w2 = World::new();
    w2.logs.push(
        json!({"ev": "w/req", "ts": T, "ctx": "k1", "w_m": "get", "w_url": "/fhir/Group/g/$export", "w_cid": "c"})
            .to_string(),
    );
    w2.client("c", json!("system/Observation.read")).group("g", json!([{"entity": pref("p1")}]));
    w2.obs("o1", pref("p1"), "6", "2023-03-01T12:00:00.000700Z").obs("o2", pref("p1"), "7", "2023-03-01T12:00:00.001Z");
    let b = w2.audit(&[]);
    assert!(b.has("boundary-ambiguous", "o1"));
    assert!(!b.has("boundary-ambiguous", "o2"));
}

/// A whole-second log (as in Aidbox's own log examples) means some instant of that second: a
/// version written later in the same second is never hidden. as-of uses the start of the second,
/// so it is not listed, and it is named in a boundary-ambiguous finding. Aidbox's `db/q` lines of
/// the same request and `null` fields are read as what they are.
#[test]
fn whole_second_logs_cover_their_second() {
    let mut w = World::new();
    let url = "/fhir/Group/g/$export";
    w.logs.push(json!({"ev": "w/req", "ts": "2023-03-01T12:00:00Z", "ctx": "k1", "w_m": "get", "w_url": url, "w_qs": null, "w_addr": "10.0.0.1"}).to_string());
    w.logs.push(
        json!({"ev": "db/q", "ts": "2023-03-01T12:00:00Z", "ctx": "k1", "sql": "SELECT 1", "d": 2, "w_url": null})
            .to_string(),
    );
    w.logs.push(json!({"ev": "w/resp", "ts": "2023-03-01T12:00:00Z", "ctx": "k1", "w_m": "get", "w_url": url, "w_st": 202, "w_cid": "c", "w_qs": null, "ts_extra": null}).to_string());
    w.client("c", json!("system/Patient.read system/Observation.read"))
        .group("g", json!([{"entity": pref("p1")}]))
        .patient("p1");
    w.obs("o1", pref("p1"), "5", "2023-03-01T11:59:59.900Z");
    w.obs("o2", pref("p1"), "6", "2023-03-01T12:00:00.400Z");
    w.obs("o3", pref("p1"), "7", "2023-03-01T12:00:01Z");
    let a = w.audit(&[]);
    assert_eq!(a.ids(), vec!["Observation/o1", "Patient/p1"]);
    assert!(a.has("boundary-ambiguous", "o2"), "{:?}", a.findings);
    assert!(!a.has("boundary-ambiguous", "o3"));
    assert_eq!(a.exports[0]["export_time"], "2023-03-01T12:00:00Z");
    assert_eq!(a.exports[0]["request_end"], "2023-03-01T12:00:00.999999999Z");
    assert_eq!(a.exports[0]["source"].rsplit(':').next(), Some("1"), "the kickoff's own line");
}

/// Kibana lists rows newest first: the response comes before its request. An export's `source`
/// is still its kickoff's (`w/req`) line.
#[test]
fn the_source_of_an_export_is_its_kickoff_line_whatever_the_order() {
    let mut w = basic();
    w.logs.reverse();
    let a = w.audit(&[]);
    assert_eq!(a.exports.len(), 1);
    assert!(a.exports[0]["source"].ends_with("logs.ndjson:2"), "{}", a.exports[0]["source"]);
}

/// A POST kickoff's parameters may be in its logged body (`w_b`): a FHIR Parameters resource, or
/// a form Aidbox logged as a flat JSON object. Without a logged body it is resolved from its
/// query alone, with a finding (the client may have asked for less).
#[test]
fn post_kickoffs_read_their_logged_body_or_say_it_is_missing() {
    let mut w = World::new();
    w.client("c", json!("system/*.read")).group("g", json!([{"entity": pref("p1")}])).patient("p1");
    w.obs("o1", pref("p1"), "4", "2023-01-04T00:00:00Z");
    w.version(json!({"resourceType": "Condition", "id": "c1", "subject": pref("p1")}), "5", "2023-01-04T00:00:00Z");
    let post = |ctx: &str, ts: &str, body: Option<Value>| {
        let mut req = json!({"ev": "w/req", "ts": ts, "ctx": ctx, "w_m": "post", "w_url": "/fhir/Group/g/$export"});
        if let Some(b) = body {
            req["w_b"] = b;
        }
        let resp = json!({"ev": "w/resp", "ts": later(ts, 20), "ctx": ctx, "w_m": "post", "w_url": "/fhir/Group/g/$export", "w_st": 202, "w_cid": "c"});
        [req.to_string(), resp.to_string()]
    };
    let parameters = json!({"resourceType": "Parameters", "parameter": [
        {"name": "_type", "valueString": "Observation,Patient"},
        {"name": "_since", "valueInstant": "2023-01-01T00:00:00Z"}]});
    w.logs.extend(post("k-params", "2023-03-01T12:00:00.000Z", Some(json!(parameters.to_string()))));
    w.logs.extend(post("k-form", "2023-03-01T13:00:00.000Z", Some(json!({"_type": "Condition"}))));
    w.logs.extend(post("k-none", "2023-03-01T14:00:00.000Z", None));
    let a = w.audit(&[]);
    let types = |id: &str| a.exports.iter().find(|e| e["export_id"] == id).unwrap()["exported_types"].clone();
    assert_eq!(types("k-params"), "Observation Patient");
    assert_eq!(types("k-form"), "Condition");
    assert_eq!(a.exports.iter().find(|e| e["export_id"] == "k-params").unwrap()["since"], "2023-01-01T00:00:00Z");
    let missing: Vec<_> =
        a.findings.iter().filter(|f| f["kind"] == "request-body-not-logged").map(|f| f["export_id"].clone()).collect();
    assert_eq!(missing, vec!["k-none"]);
    assert!(
        types("k-none").contains("Condition") && types("k-none").contains("Observation"),
        "the query alone: every granted type"
    );
}

/// An `/Organization/{org}/fhir/…` kickoff (organization-based access control) is resolved
/// without an organization filter, and says so.
#[test]
fn organization_kickoffs_say_the_organization_is_not_applied() {
    let mut w = basic();
    w.logs.clear();
    w.kickoff("/Organization/org-1/fhir/Group/g/$export", "c");
    let a = w.audit(&[]);
    assert_eq!(a.exports[0]["level"], "group");
    assert!(a.has("organization-scope-not-applied", ""), "{:?}", a.findings);
    assert!(a.findings.iter().any(|f| f["detail"].contains("Organization/org-1")));
    assert!(!basic().audit(&[]).has("organization-scope-not-applied", ""));
}

#[test]
fn lines_of_one_request_merge_by_ctx_and_t_is_the_request_line() {
    let mut w = basic();
    w.obs("o1", pref("p1"), "5", "2023-03-01T11:59:59.990Z");
    // The response line first in the file, the request line 20 ms later in time order but T.
    w.logs.clear();
    w.logs.push(
        json!({"ev": "w/resp", "ts": "2023-03-01T12:00:00.020Z", "ctx": "k9", "w_st": 202, "w_cid": "c"}).to_string(),
    );
    w.logs.push(json!({"ev": "w/req", "ts": "2023-03-01T11:59:59.980Z", "ctx": "k9", "w_m": "get", "w_url": "/fhir/Group/g/$export"}).to_string());
    let a = w.audit(&[]);
    assert_eq!(a.exports.len(), 1);
    assert_eq!(a.exports[0]["export_id"], "k9");
    assert_eq!(a.exports[0]["client_id"], "c");
    assert_eq!(a.exports[0]["export_time"], "2023-03-01T11:59:59.980Z");
    assert_eq!(a.exports[0]["status"], "202");
    assert!(!a.ids().contains(&"Observation/o1".to_string()), "o1 came after T");
}

#[test]
fn kickoffs_are_recognised_in_every_url_form_and_others_are_not() {
    let mut w = World::new();
    w.client("c", json!("system/Patient.read")).patient("p1");
    w.request("a", T, "get", "/tenant/t7/bulk-api/Group/g/$export", Some(202), "c")
        .request("b", "2023-03-01T12:01:00Z", "post", "/Organization/o/fhir/Patient/%24export", None, "c")
        .request("c", "2023-03-01T12:02:00Z", "GET", "/fhir/$export?_type=Patient", Some(200), "c")
        .request("d", "2023-03-01T12:03:00Z", "get", "/fhir/$export-status/1", Some(200), "c")
        .request("e", "2023-03-01T12:04:00Z", "delete", "/fhir/Group/g/$export", Some(202), "c")
        .request("f", "2023-03-01T12:05:00Z", "get", "/bulkstatus/xyz", Some(200), "c")
        .request("g", "2023-03-01T12:06:00Z", "get", "/fhir/Group/g/$export", Some(403), "c")
        .request("h", "2023-03-01T12:07:00Z", "get", "/fhir/Patient/p1", Some(200), "c");
    let a = w.audit(&[]);
    let got: Vec<(String, String, String, String, String)> = a
        .exports
        .iter()
        .map(|e| {
            (
                e["export_id"].clone(),
                e["level"].clone(),
                e["tenant"].clone(),
                e["accepted"].clone(),
                e["resolved"].clone(),
            )
        })
        .collect();
    let e = |id: &str, l: &str, t: &str, acc: &str, res: &str| {
        (id.to_string(), l.to_string(), t.to_string(), acc.to_string(), res.to_string())
    };
    assert_eq!(
        got,
        vec![
            e("a", "group", "t7", "true", "true"),
            e("b", "patient", "", "true", "true"),
            e("c", "system", "", "true", "true"),
            e("g", "group", "", "false", "false")
        ]
    );
    // Rejected kickoffs are never resolved: no rows, no findings.
    assert!(a.findings.iter().all(|f| f["export_id"] != "g"));
}

#[test]
fn scopes_grant_types_by_smart_v1_and_v2_and_the_wildcard_table() {
    let mut w = World::new();
    w.kickoff("/fhir/$export", "c").patient("p1");
    w.version(json!({"resourceType": "Claim", "id": "cl1", "patient": pref("p1")}), "4", "2023-01-04T00:00:00Z");
    w.version(
        json!({"resourceType": "Group", "id": "g9", "member": [{"entity": pref("p1")}]}),
        "5",
        "2023-01-04T00:00:00Z",
    );
    w.version(json!({"resourceType": "Observation", "id": "o1", "subject": pref("p1")}), "6", "2023-01-04T00:00:00Z");
    w.version(json!({"resourceType": "Condition", "id": "c1", "subject": pref("p1")}), "7", "2023-01-04T00:00:00Z");
    w.client("c", json!("system/*.read openid"));
    let smartbox = w.audit(&[]);
    assert_eq!(
        smartbox.ids(),
        vec!["Condition/c1", "Observation/o1", "Patient/p1"],
        "Claim and Group are not Smartbox types"
    );
    let aidbox = w.audit(&["--wildcard", "aidbox"]);
    assert_eq!(aidbox.ids(), vec!["Condition/c1", "Group/g9", "Observation/o1", "Patient/p1"]);
    // Every FHIR type, and never Aidbox's own (the Client itself is in the history).
    let all = w.audit(&["--wildcard", "all"]);
    assert_eq!(all.ids(), vec!["Claim/cl1", "Condition/c1", "Group/g9", "Observation/o1", "Patient/p1"]);
    let file = w.dir.path().join("types.txt");
    std::fs::write(&file, "# our table\nClaim, Patient\n").unwrap();
    let listed = w.audit(&["--wildcard", file.to_str().unwrap()]);
    assert_eq!(listed.ids(), vec!["Claim/cl1", "Patient/p1"]);

    // SMART v2 permissions as an array; write-only and malformed scopes grant nothing.
    let mut v2 = World::new();
    v2.kickoff("/fhir/$export", "c").patient("p1");
    v2.obs("o1", pref("p1"), "6", "2023-01-04T00:00:00Z");
    v2.version(json!({"resourceType": "Condition", "id": "c1", "subject": pref("p1")}), "7", "2023-01-04T00:00:00Z");
    v2.version(json!({"resourceType": "Encounter", "id": "e1", "subject": pref("p1")}), "8", "2023-01-04T00:00:00Z");
    v2.client(
        "c",
        json!(["system/Observation.rs", "system/Condition.cud", "user/Encounter.write", "patient/Patient.s"]),
    );
    assert_eq!(v2.audit(&[]).ids(), vec!["Observation/o1", "Patient/p1"]);
}

#[test]
fn requested_types_are_intersected_with_the_granted_ones() {
    let mut w = basic();
    w.logs.clear();
    w.kickoff("/fhir/Group/g/$export?_type=Observation,Condition&_type=Observation", "c");
    w.obs("o1", pref("p1"), "6", "2023-01-04T00:00:00Z");
    w.version(json!({"resourceType": "Condition", "id": "c1", "subject": pref("p1")}), "7", "2023-01-04T00:00:00Z");
    let a = w.audit(&[]);
    assert_eq!(a.ids(), vec!["Observation/o1"]);
    assert!(a.has("type-not-permitted", ""));
    assert_eq!(a.exports[0]["requested_types"], "Observation Condition");
    assert_eq!(a.exports[0]["exported_types"], "Observation");
}

#[test]
fn a_missing_client_allows_every_type() {
    let mut w = World::new();
    w.kickoff("/fhir/Group/g/$export", "ghost").group("g", json!([{"entity": pref("p1")}])).patient("p1");
    w.version(json!({"resourceType": "Claim", "id": "cl1", "patient": pref("p1")}), "4", "2023-01-04T00:00:00Z");
    let a = w.audit(&[]);
    assert!(a.has("client-not-found", "ghost"));
    assert_eq!(a.ids(), vec!["Claim/cl1", "Group/g", "Patient/p1"]);
    assert_eq!(a.exports[0]["allowed_types"], "*");
}

/// A Basic-auth Client without `scope` (Aidbox's tutorials; its access comes from AccessPolicies)
/// is not a client that may read nothing: every FHIR type is allowed, with a finding, and the
/// exports table names the AccessPolicies that link it at T. Aidbox's own resources are never
/// sent, though the history holds them.
#[test]
fn a_client_without_scope_allows_every_fhir_type_and_names_its_access_policies() {
    let mut w = World::new();
    w.kickoff("/fhir/Group/g/$export", "c").group("g", json!([{"entity": pref("p1")}])).patient("p1");
    w.version(
        json!({"resourceType": "Client", "id": "c", "secret": "s", "grant_types": ["basic"]}),
        "1",
        "2023-01-01T00:00:00Z",
    );
    let policy =
        |id: &str, link: Value| json!({"resourceType": "AccessPolicy", "id": id, "engine": "allow", "link": link});
    w.version(policy("ap-a", json!([{"id": "c", "resourceType": "Client"}])), "10", "2023-01-01T00:00:00Z");
    w.version(policy("ap-b", json!([{"reference": "Client/c"}])), "11", "2023-01-01T00:00:00Z");
    w.version(policy("ap-other", json!([{"id": "d", "resourceType": "Client"}])), "12", "2023-01-01T00:00:00Z");
    w.version(
        json!({"resourceType": "AccessPolicy", "id": "ap-global", "engine": "allow"}),
        "13",
        "2023-01-01T00:00:00Z",
    );
    w.version(policy("ap-late", json!([{"id": "c", "resourceType": "Client"}])), "14", "2023-03-02T00:00:00Z");
    w.obs("o1", pref("p1"), "4", "2023-01-04T00:00:00Z");
    w.version(json!({"resourceType": "Condition", "id": "c1", "subject": pref("p1")}), "5", "2023-01-04T00:00:00Z");
    let a = w.audit(&[]);
    // Group is a FHIR type outside the compartment: listed, as --non-compartment all says.
    assert_eq!(a.ids(), vec!["Condition/c1", "Group/g", "Observation/o1", "Patient/p1"], "not an empty export");
    assert_eq!(a.exports[0]["access_policies"], "ap-a ap-b");
    assert_eq!(a.exports[0]["allowed_types"], "*");
    assert!(a.exports[0]["exported_types"].split(' ').all(|t| !["Client", "AccessPolicy"].contains(&t)));
    let f: Vec<_> = a.findings.iter().filter(|f| f["kind"] == "client-without-scope").collect();
    assert_eq!(f.len(), 1, "{:?}", a.findings);
    assert!(
        f[0]["detail"].contains("linking it at T: ap-a, ap-b; without links (they apply to every client): ap-global"),
        "{}",
        f[0]["detail"]
    );
    // An empty scope is a scope: it grants nothing, and says so by listing nothing.
    let mut empty = World::new();
    empty.kickoff("/fhir/Group/g/$export", "c").group("g", json!([{"entity": pref("p1")}])).patient("p1");
    empty.client("c", json!(""));
    assert!(empty.audit(&[]).ids().is_empty());
}

/// Smartbox keeps every tenant in one database and marks each resource with its tenant. Here two
/// tenants share ids and types (a Client `c`, a Group `g`, Patient `p1`, Observation `o1`): a
/// kickoff under `/tenant/{t}/…` reads only that tenant's (and unmarked resources, counted in a
/// finding), never the other's.
#[test]
fn tenants_sharing_ids_see_only_their_own() {
    let mut w = World::new();
    let marked = |w: &mut World, body: Value, tenant: &str, old_form: bool, vid: &str, lu: &str| {
        let mut b = body;
        b["meta"] = if old_form {
            json!({"versionId": vid, "lastUpdated": lu, "_tenant": tenant})
        } else {
            json!({"versionId": vid, "lastUpdated": lu, "tenant": {"id": tenant, "resourceType": "Tenant"}})
        };
        w.history.push(b.to_string());
    };
    for (t, old, v) in [("a", false, 10), ("b", true, 20)] {
        let vid = |n: u32| (v + n).to_string();
        marked(
            &mut w,
            json!({"resourceType": "Client", "id": "c", "scope": "system/*.read"}),
            t,
            old,
            &vid(1),
            "2023-01-01T00:00:00Z",
        );
        marked(
            &mut w,
            json!({"resourceType": "Group", "id": "g", "member": [{"entity": pref("p1")}]}),
            t,
            old,
            &vid(2),
            "2023-01-02T00:00:00Z",
        );
        marked(&mut w, json!({"resourceType": "Patient", "id": "p1"}), t, old, &vid(3), "2023-01-03T00:00:00Z");
        marked(
            &mut w,
            json!({"resourceType": "Observation", "id": "o1", "subject": pref("p1")}),
            t,
            old,
            &vid(4),
            "2023-01-04T00:00:00Z",
        );
    }
    // Tenant b's o2 is deleted by an entry without a body (no marker): it is b's deletion.
    marked(
        &mut w,
        json!({"resourceType": "Observation", "id": "o2", "subject": pref("p1")}),
        "b",
        true,
        "25",
        "2023-01-04T00:00:00Z",
    );
    w.delete("Observation", "o2", "26", "2023-01-05T00:00:00Z");
    w.version(json!({"resourceType": "Location", "id": "loc"}), "30", "2023-01-01T00:00:00Z");
    w.request("ka", T, "get", "/tenant/a/fhir/Group/g/$export", Some(202), "c");
    w.request("kb", &later(T, 1000), "get", "/tenant/b/fhir/Group/g/$export", Some(202), "c");
    let a = w.audit(&[]);
    let rows = |id: &str| -> Vec<String> {
        let csv = csv_rows(&a.out.join("resources.csv"));
        csv.iter()
            .filter(|r| r["export_id"] == id)
            .map(|r| format!("{}/{}/{}", r["resource_type"], r["resource_id"], r["version_id"]))
            .collect()
    };
    assert_eq!(rows("ka"), vec!["Location/loc/30", "Observation/o1/14", "Patient/p1/13"]);
    assert_eq!(rows("kb"), vec!["Location/loc/30", "Observation/o1/24", "Patient/p1/23"], "o2 was deleted in b");
    let export = |id: &str| a.exports.iter().find(|e| e["export_id"] == id).unwrap().clone();
    assert_eq!((export("ka")["client_version"].as_str(), export("ka")["group_version"].as_str()), ("11", "12"));
    assert_eq!((export("kb")["client_version"].as_str(), export("kb")["group_version"].as_str()), ("21", "22"));
    let unmarked: Vec<_> = a
        .findings
        .iter()
        .filter(|f| f["kind"] == "tenant-unmarked")
        .map(|f| (f["export_id"].clone(), f["detail"].clone()))
        .collect();
    assert_eq!(unmarked.len(), 2);
    assert!(unmarked[0].1.starts_with("1 rows are of resources with no tenant marker"), "{unmarked:?}");
}
