//! One test per rule of SPEC.md: each writes a small world of real files (logs and history),
//! runs the real binary, and asserts the rows and findings the rule decides.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::common::*;
use serde_json::{json, Value};

const T: &str = "2023-03-01T12:00:00.000Z";

/// A small world under construction.
struct World {
    dir: tempfile::TempDir,
    logs: Vec<String>,
    history: Vec<String>,
}

type Row = (String, String, String, String);

struct Audit {
    rows: Vec<Row>,
    findings: Vec<BTreeMap<String, String>>,
    exports: Vec<BTreeMap<String, String>>,
    out: PathBuf,
}

impl Audit {
    fn kinds(&self) -> Vec<String> {
        self.findings.iter().map(|f| f["kind"].clone()).collect()
    }
    fn has(&self, kind: &str, id: &str) -> bool {
        self.findings.iter().any(|f| f["kind"] == kind && (id.is_empty() || f["resource_id"] == id))
    }
    fn ids(&self) -> Vec<String> {
        self.rows.iter().map(|r| format!("{}/{}", r.1, r.2)).collect()
    }
}

fn row(p: &str, t: &str, id: &str, v: &str) -> Row {
    (p.into(), t.into(), id.into(), v.into())
}

impl World {
    fn new() -> World {
        World { dir: tempfile::tempdir().unwrap(), logs: vec![], history: vec![] }
    }

    /// A request: `w/req` then `w/resp` 50 ms later (client and status on the response).
    fn request(
        &mut self,
        ctx: &str,
        ts: &str,
        method: &str,
        url: &str,
        status: Option<u16>,
        client: &str,
    ) -> &mut Self {
        self.logs.push(json!({"ev": "w/req", "ts": ts, "ctx": ctx, "w_m": method, "w_url": url}).to_string());
        let mut resp =
            json!({"ev": "w/resp", "ts": later(ts, 50), "ctx": ctx, "w_m": method, "w_url": url, "w_cid": client});
        if let Some(s) = status {
            resp["w_st"] = json!(s);
        }
        self.logs.push(resp.to_string());
        self
    }

    fn kickoff(&mut self, url: &str, client: &str) -> &mut Self {
        self.request("k1", T, "get", url, Some(202), client)
    }

    fn version(&mut self, body: Value, vid: &str, lu: &str) -> &mut Self {
        let mut b = body;
        b["meta"] = json!({"versionId": vid, "lastUpdated": lu});
        self.history.push(b.to_string());
        self
    }

    fn delete(&mut self, rtype: &str, id: &str, vid: &str, lu: &str) -> &mut Self {
        self.history.push(json!({"request": {"method": "DELETE", "url": format!("{rtype}/{id}/_history/{vid}")}, "response": {"lastModified": lu}}).to_string());
        self
    }

    fn client(&mut self, id: &str, scope: Value) -> &mut Self {
        self.version(json!({"resourceType": "Client", "id": id, "scope": scope}), "1", "2023-01-01T00:00:00Z")
    }

    fn group(&mut self, id: &str, members: Value) -> &mut Self {
        self.version(
            json!({"resourceType": "Group", "id": id, "type": "person", "actual": true, "member": members}),
            "2",
            "2023-01-02T00:00:00Z",
        )
    }

    fn patient(&mut self, id: &str) -> &mut Self {
        self.version(json!({"resourceType": "Patient", "id": id}), "3", "2023-01-03T00:00:00Z")
    }

    fn obs(&mut self, id: &str, subject: Value, vid: &str, lu: &str) -> &mut Self {
        self.version(json!({"resourceType": "Observation", "id": id, "status": "final", "subject": subject}), vid, lu)
    }

    fn write(&self) -> (PathBuf, PathBuf) {
        let logs = self.dir.path().join("logs.ndjson");
        let history = self.dir.path().join("history.ndjson");
        std::fs::write(&logs, self.logs.join("\n") + "\n").unwrap();
        std::fs::write(&history, self.history.join("\n") + "\n").unwrap();
        (logs, history)
    }

    fn audit(&self, extra: &[&str]) -> Audit {
        let (logs, history) = self.write();
        let out = self.dir.path().join("out");
        let mut args = vec![
            "audit",
            "--logs",
            logs.to_str().unwrap(),
            "--history",
            history.to_str().unwrap(),
            "--format",
            "csv",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run_ok(&args);
        let rows = csv_rows(&out.join("resources.csv"))
            .into_iter()
            .map(|r| {
                (r["patient_id"].clone(), r["resource_type"].clone(), r["resource_id"].clone(), r["version_id"].clone())
            })
            .collect();
        Audit { rows, findings: csv_rows(&out.join("findings.csv")), exports: csv_rows(&out.join("exports.csv")), out }
    }
}

fn later(ts: &str, ms: i64) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(ts).unwrap() + chrono::Duration::milliseconds(ms);
    t.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn pref(id: &str) -> Value {
    json!({"reference": format!("Patient/{id}")})
}

/// A group export of `g` (member p1) by client `c` reading Patient and Observation.
fn basic() -> World {
    let mut w = World::new();
    w.kickoff("/fhir/Group/g/$export", "c")
        .client("c", json!(["system/Patient.read", "system/Observation.read"]))
        .group("g", json!([{"entity": pref("p1")}]))
        .patient("p1")
        .patient("p2");
    w
}

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
    let r =
        run(&["audit", "--logs", logs.to_str().unwrap(), "--history", history.to_str().unwrap(), "--to", "2023-03-02"]);
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
        run_ok(&[
            "audit",
            "--logs",
            logs.to_str().unwrap(),
            "--history",
            history.to_str().unwrap(),
            "--format",
            "csv",
            "--out",
            out.to_str().unwrap(),
            "--tz",
            tz,
        ]);
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
