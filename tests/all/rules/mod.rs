//! One test per rule of SPEC.md: each writes a small world of real files (logs and history),
//! runs the real binary, and asserts the rows and findings the rule decides. The world builder
//! is here; the rules are in `access` (versions as of T, the logs, kickoffs, scopes, tenants)
//! and `selection` (patients, groups, levels, compartments, options, evidence, input forms).

mod access;
mod selection;

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
