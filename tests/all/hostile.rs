//! Broken and hostile inputs, table-driven: each case writes real files, runs the real binary,
//! and expects an exact exit status and message — or, with `--skip-invalid`, a finding per
//! skipped line and line counts that add up. Messages never carry resource bodies.

use std::io::Write;
use std::path::Path;

use crate::common::*;
use serde_json::{json, Value};

const T: &str = "2023-03-01T12:00:00.000Z";

fn good_logs() -> String {
    [
        json!({"ev": "w/req", "ts": T, "ctx": "k1", "w_m": "get", "w_url": "/fhir/Group/g/$export"}),
        json!({"ev": "w/resp", "ts": "2023-03-01T12:00:00.050Z", "ctx": "k1", "w_st": 202, "w_cid": "c"}),
    ]
    .iter()
    .map(|v| v.to_string() + "\n")
    .collect()
}

fn version(body: Value, vid: &str, lu: &str) -> String {
    let mut b = body;
    b["meta"] = json!({"versionId": vid, "lastUpdated": lu});
    b.to_string() + "\n"
}

/// A Client, a Group with one member, the Patient (with a secret name) and an Observation.
fn good_history() -> String {
    let scope = "system/Patient.read system/Observation.read";
    version(json!({"resourceType": "Client", "id": "c", "scope": scope}), "1", "2023-01-01T00:00:00Z")
        + &version(
            json!({"resourceType": "Group", "id": "g", "member": [{"entity": {"reference": "Patient/p1"}}]}),
            "2",
            "2023-01-02T00:00:00Z",
        )
        + &version(
            json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "SECRET-NAME"}]}),
            "3",
            "2023-01-03T00:00:00Z",
        )
        + &version(
            json!({"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}}),
            "4",
            "2023-01-04T00:00:00Z",
        )
}

struct Case {
    name: &'static str,
    logs: Vec<u8>,
    history: Vec<u8>,
    /// File names inside the logs/ and history/ folders.
    log_name: &'static str,
    history_name: &'static str,
    args: Vec<&'static str>,
    status: i32,
    /// Expected on stderr (status != 0) or in stdout (status 0).
    message: &'static str,
}

fn case(
    name: &'static str,
    logs: impl Into<Vec<u8>>,
    history: impl Into<Vec<u8>>,
    status: i32,
    message: &'static str,
) -> Case {
    Case {
        name,
        logs: logs.into(),
        history: history.into(),
        log_name: "logs.ndjson",
        history_name: "history.ndjson",
        args: vec![],
        status,
        message,
    }
}

fn zst(b: &[u8]) -> Vec<u8> {
    zstd::encode_all(b, 3).unwrap()
}

fn gz(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn run_case(c: &Case, dir: &Path) -> (i32, String, String) {
    let (logs, history) = (dir.join("logs"), dir.join("history"));
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&history).unwrap();
    std::fs::write(logs.join(c.log_name), &c.logs).unwrap();
    std::fs::write(history.join(c.history_name), &c.history).unwrap();
    let out = dir.join("out");
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
    // The Kibana cases' dates have no offset; a case may name its own zone.
    if !c.args.contains(&"--tz") {
        args.extend(["--tz", "UTC"]);
    }
    args.extend(c.args.iter().copied());
    let r = run(&args);
    (
        r.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&r.stdout).into_owned(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
    )
}

#[test]
fn each_broken_input_gets_its_exact_status_and_message() {
    let h = good_history();
    let l = good_logs();
    let long_nest = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let truncated_zst = {
        let full = zst(h.repeat(200).as_bytes());
        full[..full.len() / 2].to_vec()
    };
    let truncated_gz = {
        let full = gz(h.repeat(200).as_bytes());
        full[..full.len() / 2].to_vec()
    };
    let cases = vec![
        case("valid input", l.clone(), h.clone(), 0, "1 export, 2 resource rows"),
        case("invalid JSON line", l.clone(), h.clone() + "{\"resourceType\": \"Observation\", oops}\n", 2, "history/history.ndjson:5 (byte 569): invalid JSON at column 33"),
        case("truncated last line", l.clone(), h.clone() + "{\"resourceType\": \"Observ", 2, "history/history.ndjson:5 (byte 569): JSON cut off (unexpected end of input) at column 24"),
        case("empty history file", l.clone(), "", 1, "holds no resource version at all"),
        Case { args: vec!["--allow-empty-history"], ..case("empty history file, allowed", l.clone(), "", 0, "1 export, 0 resource rows") },
        case("every version after the last kickoff", l.clone(), version(json!({"resourceType": "Patient", "id": "late"}), "1", "2024-01-01T00:00:00Z"), 1, "every version in it was written at or after the last accepted kickoff (2023-03-01T12:00:00Z)"),
        case("empty lines are ignored", l.clone(), h.replace('\n', "\n\n"), 0, "1 export, 2 resource rows"),
        case("UTF-8 byte-order mark", l.clone(), format!("\u{feff}{h}"), 0, "1 export, 2 resource rows"),
        case("CRLF line ends", l.replace('\n', "\r\n"), h.replace('\n', "\r\n"), 0, "1 export, 2 resource rows"),
        case("non-UTF-8 bytes", l.clone(), [h.as_bytes(), b"{\"resourceType\": \"Patient\", \"id\": \"p\xe9\"}\n"].concat(), 2, "history/history.ndjson:5 (byte 569): bytes that are not valid UTF-8"),
        case("JSON nested 10,000 deep where it is read", l.clone(), h.clone() + &version(json!({"resourceType": "Observation", "id": "deep"}), "9", "2023-01-05T00:00:00Z").replacen('{', &format!("{{\"subject\": {long_nest}, "), 1), 2, "history/history.ndjson:5 (byte 569): JSON nested too deeply"),
        case("JSON nested 10,000 deep where it is skipped", l.clone(), h.clone() + &version(json!({"resourceType": "Basic", "id": "b"}), "9", "2023-01-05T00:00:00Z").replacen('{', &format!("{{\"x\": {long_nest}, "), 1), 0, "1 export, 2 resource rows"),
        case("history line without id", l.clone(), h.clone() + &version(json!({"resourceType": "Observation"}), "9", "2023-01-05T00:00:00Z"), 2, "history/history.ndjson:5 (byte 569): Observation resource without id"),
        case("history line without resourceType", l.clone(), h.clone() + "{\"id\": \"x\", \"meta\": {\"versionId\": \"1\"}}\n", 2, "no history row (resource_type), resource (resourceType) or Bundle entry"),
        case("history line without lastUpdated", l.clone(), h.clone() + "{\"resourceType\": \"Observation\", \"id\": \"x\", \"meta\": {\"versionId\": \"1\"}}\n", 2, "Observation/x: meta without lastUpdated"),
        case("Aidbox row without ts", l.clone(), h.clone() + "{\"id\": \"x\", \"resource_type\": \"Observation\", \"txid\": 5, \"resource\": {}}\n", 2, "Observation/x: history row without ts"),
        case("unparseable timestamp", l.clone(), h.clone() + &version(json!({"resourceType": "Observation", "id": "x"}), "9", "yesterday"), 2, "Observation/x meta.lastUpdated: unreadable Kibana date \"yesterday\""),
        case("non-numeric txid", l.clone(), h.clone() + "{\"id\": \"x\", \"resource_type\": \"Observation\", \"txid\": true, \"ts\": \"2023-01-01T00:00:00Z\", \"resource\": {}}\n", 2, "Observation/x: txid is not a number"),
        case("truncated .zst", l.clone(), truncated_zst, 2, "could not be read past byte"),
        case("truncated .gz", l.clone(), truncated_gz, 2, "could not be read past byte"),
        case("Elasticsearch error response", "{\"error\": {\"type\": \"search_phase_execution_exception\"}, \"status\": 503}\n", h.clone(), 2, "an Elasticsearch error response (status 503), not log lines"),
        case("w_url not a string", "{\"ev\": \"w/req\", \"ts\": \"2023-03-01T12:00:00Z\", \"w_url\": 5}\n", h.clone(), 2, "logs/logs.ndjson:1 (byte 0): field w_url should be a string, found a number"),
        case("log timestamp unreadable", "{\"ev\": \"w/req\", \"ts\": \"12/01/2023\", \"w_url\": \"/x\"}\n", h.clone(), 2, "logs/logs.ndjson:1 (byte 0): field ts: unreadable timestamp \"12/01/2023\""),
    ];
    let mut more = vec![
        Case { log_name: "logs.zst", ..case("a .zst name on a plain file", l.clone(), h.clone(), 0, "1 export, 2 resource rows") },
        Case { history_name: "history.ndjson", ..case("a plain name on a .zst file", l.clone(), zst(h.as_bytes()), 0, "1 export, 2 resource rows") },
        Case { log_name: "k.csv", ..case("Kibana CSV without w_url", "\"@timestamp\",w_m\n\"Mar 1, 2023 @ 12:00:00.000\",get\n", h.clone(), 2, "logs/k.csv:1 (byte 0): Kibana CSV header has no w_url column (nor _source); found: @timestamp, w_m") },
        Case { log_name: "k.csv", ..case("Kibana CSV row with an extra cell", "\"@timestamp\",w_url\n\"Mar 1, 2023 @ 12:00:00.000\",/x,extra\n", h.clone(), 2, "logs/k.csv:2 (byte 19): Kibana CSV row has 3 fields where the header has 2") },
        Case {
            log_name: "k.csv",
            ..case("Kibana CSV with quoted headers and formula escapes", "\"@timestamp\",\"w_url\",\"w_m\",\"w_cid\",\"w_st\"\n\"Mar 1, 2023 @ 12:00:00.000\",\"/fhir/Group/g/$export\",\"get\",\"'=c\",\"202\"\n", h.replace("\"id\":\"c\"", "\"id\":\"=c\""), 0, "=c  group g  1 patient")
        },
        Case { args: vec!["--tz", "Mars/Olympus"], ..case("a wrong --tz", l.clone(), h.clone(), 1, "--tz: unknown time zone \"Mars/Olympus\"") },
        Case { args: vec!["--max-log-gap", "soon"], ..case("a wrong --max-log-gap", l.clone(), h.clone(), 1, "--max-log-gap: unreadable duration") },
        Case {
            args: vec!["--skip-invalid"],
            ..case(
                "a skipped line holding a patient's name",
                l.clone(),
                h.clone() + "{\"resourceType\": \"Patient\", \"id\": \"p2\", \"name\": [{\"family\": \"SECRET-NAME\"}], oops}\n",
                0,
                "1 input lines skipped (--skip-invalid)",
            )
        },
    ];
    let mut all = cases;
    all.append(&mut more);
    let mut failures = Vec::new();
    for c in &all {
        let tmp = tempfile::tempdir().unwrap();
        let (status, stdout, stderr) = run_case(c, tmp.path());
        let text = if c.status == 0 { &stdout } else { &stderr };
        if status != c.status || !text.contains(c.message) {
            failures.push(format!(
                "{}: status {status} (expected {}), output {:?} (expected to contain {:?})",
                c.name, c.status, text, c.message
            ));
        }
        assert!(
            !stderr.contains("SECRET-NAME") && !stdout.contains("SECRET-NAME"),
            "{}: a resource body leaked into a message",
            c.name
        );
        // Nor into the findings, the manifest or any other file written.
        for e in std::fs::read_dir(tmp.path().join("out")).into_iter().flatten() {
            let path = e.unwrap().path();
            let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
            assert!(!text.contains("SECRET-NAME"), "{}: a resource body leaked into {}", c.name, path.display());
        }
        if c.status != 0 {
            assert!(!tmp.path().join("out").exists(), "{}: a failed run left output", c.name);
        }
        // A line that cannot be read says how to go on past it.
        if c.status == 2 && c.message.contains(" (byte ") {
            assert!(stderr.contains("give --skip-invalid"), "{}: no word of --skip-invalid: {stderr}", c.name);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn skip_invalid_lists_every_skipped_line_and_the_counts_add_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (logs, history) = (tmp.path().join("logs"), tmp.path().join("history"));
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&history).unwrap();
    std::fs::write(logs.join("a.ndjson"), good_logs() + "not json\n\n{\"w_url\": 5}\n").unwrap();
    std::fs::write(
        logs.join("b.csv"),
        "\"@timestamp\",w_m\n\"Mar 1, 2023 @ 12:00:00.000\",get\n\n\"Mar 1, 2023 @ 12:00:01.000\",get\n",
    )
    .unwrap();
    let h = good_history()
        + "{oops\n\n"
        + &version(json!({"resourceType": "Observation"}), "9", "2023-01-05T00:00:00Z")
        + "{\"resourceType\": \"Observ";
    std::fs::write(history.join("h.ndjson"), &h).unwrap();
    std::fs::write(history.join("z.ndjson.zst"), {
        let many: String = (0..4000).map(|i| version(json!({"resourceType": "Observation", "id": format!("z{i}"), "subject": {"reference": format!("Patient/q{}", i * 7919 % 1000)}}), &(100 + i).to_string(), "2023-01-04T00:00:00Z")).collect();
        let full = zst(many.as_bytes());
        full[..full.len() * 2 / 3].to_vec()
    })
    .unwrap();
    let out = tmp.path().join("out");
    let stdout = Bulk::audit(&logs, &history).args(["--format", "csv"]).out(&out).arg("--skip-invalid").ok();
    assert!(stdout.contains("8 input lines skipped (--skip-invalid)"), "{stdout}");
    let m: Value = serde_json::from_str(&read(&out.join("manifest.json"))).unwrap();
    let z =
        m["inputs"].as_array().unwrap().iter().find(|i| i["path"].as_str().unwrap().ends_with("z.ndjson.zst")).unwrap();
    assert!(z["lines_read"].as_u64().unwrap() > 50, "the whole lines before the cut are read: {z}");
    let skipped: Vec<String> = csv_rows(&out.join("findings.csv"))
        .into_iter()
        .filter(|f| f["kind"] == "input-skipped")
        .map(|f| f["detail"].clone())
        .collect();
    assert_eq!(skipped.len(), 7, "{skipped:#?}");
    assert!(
        skipped.iter().any(|d| d.contains("b.csv:1 (byte 0) (3 lines): Kibana CSV header has no w_url column")
            && d.contains("the whole file is left out")),
        "{skipped:#?}"
    );
    assert!(skipped.iter().any(|d| d.contains("a.ndjson:3 (byte") && d.contains("invalid JSON")), "{skipped:#?}");
    assert!(
        skipped.iter().any(|d| d.contains("a.ndjson:5 (byte") && d.contains("w_url should be a string")),
        "{skipped:#?}"
    );
    assert!(skipped.iter().any(|d| d.contains("h.ndjson:5 (byte 569): invalid JSON")), "{skipped:#?}");
    assert!(
        skipped.iter().any(|d| d.contains("h.ndjson:7 (byte") && d.contains("Observation resource without id")),
        "{skipped:#?}"
    );
    assert!(skipped.iter().any(|d| d.contains("h.ndjson:8 (byte") && d.contains("JSON cut off")), "{skipped:#?}");
    assert!(
        skipped.iter().any(|d| d.contains("z.ndjson.zst") && d.contains("could not be read past byte")),
        "{skipped:#?}"
    );
    // The rows of the readable lines are all there.
    assert_eq!(csv_rows(&out.join("resources.csv")).len(), 2);
    assert_eq!(m["lines_skipped"], 8);
    for input in m["inputs"].as_array().unwrap() {
        let n = |k: &str| input[k].as_u64().unwrap();
        assert_eq!(n("lines_read") + n("lines_blank") + n("lines_skipped"), n("lines"), "{input}");
    }
    let h_rec =
        m["inputs"].as_array().unwrap().iter().find(|i| i["path"].as_str().unwrap().ends_with("h.ndjson")).unwrap();
    assert_eq!(
        (
            h_rec["lines"].as_u64(),
            h_rec["lines_read"].as_u64(),
            h_rec["lines_blank"].as_u64(),
            h_rec["lines_skipped"].as_u64()
        ),
        (Some(8), Some(4), Some(1), Some(3))
    );
}

/// Inputs that are readable but doubtful: the run goes on and says so in a finding.
#[test]
fn doubtful_inputs_become_findings() {
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "the same version twice with different times",
            good_history()
                + &version(
                    json!({"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}}),
                    "4",
                    "2023-01-09T00:00:00Z",
                ),
            "version-conflict",
            "the same version appears twice with different contents: kept",
        ),
        (
            "a Client whose scope is a number",
            good_history().replace("\"scope\":\"system/Patient.read system/Observation.read\"", "\"scope\":5"),
            "client-scope-unreadable",
            "scope is a number: every FHIR type is treated as allowed",
        ),
        (
            "a Group member without entity",
            good_history().replace(
                "[{\"entity\":{\"reference\":\"Patient/p1\"}}]",
                "[{\"entity\":{\"reference\":\"Patient/p1\"}},{\"inactive\":false}]",
            ),
            "member-unresolvable",
            "Group/g member 1 has no resolvable entity reference",
        ),
    ];
    for (name, history, kind, detail) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let c = case("doubtful", good_logs(), history, 0, "");
        let (status, stdout, stderr) = run_case(&c, tmp.path());
        assert_eq!(status, 0, "{name}: {stderr}");
        let findings = csv_rows(&tmp.path().join("out/findings.csv"));
        assert!(findings.iter().any(|f| f["kind"] == kind && f["detail"].contains(detail)), "{name}: {findings:#?}");
        assert!(!stdout.contains("SECRET-NAME"));
    }
}

#[test]
fn a_symlink_loop_is_read_once_and_an_unreadable_path_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (logs, history) = (tmp.path().join("logs"), tmp.path().join("history"));
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(history.join("sub")).unwrap();
    std::fs::write(logs.join("l.ndjson"), good_logs()).unwrap();
    std::fs::write(history.join("sub/h.ndjson"), good_history()).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&history, history.join("sub/loop")).unwrap();
    let out = tmp.path().join("out");
    let stdout = Bulk::audit(&logs, &history).args(["--format", "csv"]).out(&out).ok();
    assert!(stdout.contains("1 export, 2 resource rows"), "{stdout}");
    // A folder holding an entry that cannot be read (a dangling link): named, status 2.
    #[cfg(unix)]
    {
        let broken = tmp.path().join("broken");
        std::fs::create_dir_all(&broken).unwrap();
        std::fs::write(broken.join("a.ndjson"), good_history()).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("gone.ndjson"), broken.join("b.ndjson")).unwrap();
        let r = Bulk::audit(&logs, &broken).out(&out).run();
        assert_eq!(r.status.code(), Some(2));
        let err = String::from_utf8_lossy(&r.stderr).into_owned();
        assert!(err.contains("broken/b.ndjson: No such file or directory"), "{err}");
    }
    let missing = tmp.path().join("nope");
    let r = Bulk::audit(&logs, &missing).out(&out).run();
    assert_eq!(r.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("nope: No such file or directory"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
}

/// Interrupted at any moment, a run leaves the previous output or none, never a half-written
/// folder: Ctrl-C is sent after varying delays and the outcome is checked each time.
#[cfg(unix)]
#[test]
fn an_interrupted_run_leaves_no_half_written_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let rec = tmp.path().join("rec");
    let mut outcomes = std::collections::BTreeMap::new();
    for i in 0..16u64 {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bulk-audit"))
            .args([
                "audit",
                "--logs",
                "fixtures/synthea/logs",
                "--history",
                "fixtures/synthea/history",
                "--tz",
                "UTC",
                "--with-resource",
                "--out",
            ])
            .arg(&out)
            .arg("--reconstruct")
            .arg(&rec)
            .current_dir(root())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(i * 25));
        let _ = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let status = child.wait().unwrap().code();
        *outcomes.entry(status).or_insert(0) += 1;
        // None: killed before the signals were taken over, when nothing had been written yet.
        assert!(matches!(status, Some(0) | Some(130) | None), "run {i}: status {status:?}");
        if out.exists() {
            for f in ["resources.parquet", "exports.parquet", "findings.parquet", "manifest.json"] {
                assert!(out.join(f).is_file(), "run {i}: {f} missing from a committed output");
            }
        }
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "run {i}: staging left behind: {leftovers:?}");
    }
    assert!(outcomes.keys().any(|k| *k != Some(0)), "no run was interrupted: {outcomes:?}");
}

/// Whatever the audit read, --with-resource and --reconstruct read again: a byte-order mark
/// before the first line, a number beyond f64, a lone surrogate escape, nesting deeper than 128
/// levels. Before, each was a false "the file changed since it was indexed".
#[test]
fn bodies_are_re_read_from_whatever_the_audit_read() {
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    let odd = [
        r#"{"resourceType": "Observation", "id": "big", "subject": {"reference": "Patient/p1"}, "valueQuantity": {"value": 1e999999}}"#.to_string(),
        r#"{"resourceType": "Observation", "id": "surrogate", "subject": {"reference": "Patient/p1"}, "note": [{"text": "\ud800"}]}"#.to_string(),
        format!(r#"{{"resourceType": "Observation", "id": "deep", "subject": {{"reference": "Patient/p1"}}, "extension": {deep}}}"#),
    ];
    let mut history = format!("\u{feff}{}", good_history());
    for (i, line) in odd.iter().enumerate() {
        let meta = format!(r#", "meta": {{"versionId": "{}", "lastUpdated": "2023-01-05T00:00:00Z"}}}}"#, 10 + i);
        history += &(line[..line.len() - 1].to_string() + &meta + "\n");
    }
    let tmp = tempfile::tempdir().unwrap();
    let (logs, hist) = (tmp.path().join("logs"), tmp.path().join("history"));
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&hist).unwrap();
    std::fs::write(logs.join("logs.ndjson"), good_logs()).unwrap();
    std::fs::write(hist.join("history.ndjson"), &history).unwrap();
    let (out, rec) = (tmp.path().join("out"), tmp.path().join("rec"));
    let said = Bulk::audit(&logs, &hist)
        .args(["--tz", "UTC", "--format", "csv", "--with-resource"])
        .out(&out)
        .arg("--reconstruct")
        .arg(&rec)
        .ok();
    assert!(said.contains("5 resource rows"), "{said}");
    let sent = read(&rec.join("k1/Observation.ndjson"));
    assert!(sent.contains(r#""valueQuantity":{"value":1e999999}"#), "{sent}");
    assert!(sent.contains(r#""text":"\ud800""#), "{sent}");
    assert!(sent.contains(&format!(r#""extension":{deep}"#)), "{sent}");
    assert_eq!(sent.lines().count(), 4, "{sent}");
    let patients = read(&rec.join("k1/Patient.ndjson"));
    assert!(
        patients.starts_with('{') && !patients.contains('\u{feff}'),
        "the mark is not part of the body: {patients}"
    );
    let patient: serde_json::Value = serde_json::from_str(patients.trim()).unwrap();
    assert_eq!(patient["id"], "p1");
}

/// A truncated .gz under --skip-invalid: the lines past the cut are unknown, so the summary and
/// the manifest say the file was cut short instead of "0 input lines skipped" alone.
#[test]
fn a_truncated_file_under_skip_invalid_is_said_to_be_cut_short() {
    let full = gz(good_history().repeat(200).as_bytes());
    let c = Case {
        args: vec!["--skip-invalid"],
        ..case("truncated .gz", good_logs(), full[..full.len() / 2].to_vec(), 0, "")
    };
    let tmp = tempfile::tempdir().unwrap();
    let (status, stdout, stderr) = run_case(&c, tmp.path());
    assert_eq!(status, 0, "{stderr}");
    assert!(stdout.contains("0 input lines skipped (--skip-invalid)"), "{stdout}");
    assert!(
        stdout.contains("and 1 input file could not be read to the end") && stdout.contains("history.ndjson"),
        "{stdout}"
    );
    let manifest: Value = serde_json::from_str(&read(&tmp.path().join("out/manifest.json"))).unwrap();
    assert!(manifest["inputs_read_short"][0].as_str().unwrap().ends_with("history/history.ndjson"), "{manifest}");
    let history = manifest["inputs"].as_array().unwrap().iter().find(|i| i["role"] == "history").unwrap();
    assert_eq!(history["rest_unread"], true);
}
