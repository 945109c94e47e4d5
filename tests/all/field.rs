//! The field samples (`fixtures/field/`, each built from the published description of its form,
//! see its README) through the real binary: each scenario's whole output byte for byte, every log
//! form of the same requests giving the same rows, YAML as JSON, and the broken forms failing
//! with their file and line.

use std::path::Path;

use crate::common::*;

fn audit(logs: &str, history: &str, out: &Path, extra: &[&str]) -> String {
    let mut args =
        vec!["audit", "--logs", logs, "--history", history, "--format", "csv", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_ok(&args)
}

fn same_outputs(out: &Path, expected: &str) {
    for t in ["resources", "exports", "findings"] {
        assert_same_file(&out.join(format!("{t}.csv")), &root().join(expected).join(format!("{t}.csv")));
    }
}

#[test]
fn aidbox_forms_give_the_expected_audit() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let stdout = audit("fixtures/field/aidbox/logs", "fixtures/field/aidbox/history", &out, &[]);
    assert!(stdout.contains("5 exports, 18 resource rows"), "{stdout}");
    same_outputs(&out, "fixtures/field/aidbox/expected");
    // Every line of every form was read: nothing skipped, nothing left over.
    let manifest: serde_json::Value = serde_json::from_str(&read(&out.join("manifest.json"))).unwrap();
    for input in manifest["inputs"].as_array().unwrap() {
        let (lines, read, blank) = (
            input["lines"].as_u64().unwrap(),
            input["lines_read"].as_u64().unwrap(),
            input["lines_blank"].as_u64().unwrap(),
        );
        assert_eq!(read + blank, lines, "{}", input["path"]);
    }
    let resources = read(&out.join("resources.csv"));
    // The my-clinic export never lists other-clinic's patient; the tenant-less one may.
    assert!(resources.lines().filter(|l| l.contains("other-pt-1")).all(|l| l.starts_with("e7a13c92")), "{resources}");
    for t in ["Client", "AccessPolicy", "BulkExportStatus", "Tenant"] {
        assert!(!resources.contains(&format!(",{t},")), "{t} is not a FHIR type: never sent");
    }
}

/// The history Bundle as YAML (Aidbox's REST console) and as JSON reads the same.
#[test]
fn yaml_history_reads_as_its_json() {
    let tmp = tempfile::tempdir().unwrap();
    let (yaml, json) = (tmp.path().join("yaml"), tmp.path().join("json"));
    for dir in [&yaml, &json] {
        std::fs::create_dir_all(dir).unwrap();
        for e in std::fs::read_dir(root().join("fixtures/field/aidbox/history")).unwrap() {
            let e = e.unwrap();
            if e.file_name() != "history-bundle.yaml" {
                std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
            }
        }
    }
    // The same name in both, so that the rows' sources compare.
    std::fs::copy(root().join("fixtures/field/aidbox/history/history-bundle.yaml"), yaml.join("history-bundle"))
        .unwrap();
    std::fs::copy(root().join("fixtures/field/aidbox/history-json/history-bundle.json"), json.join("history-bundle"))
        .unwrap();
    let run = |history: &Path, out: &str| {
        let out = tmp.path().join(out);
        audit("fixtures/field/aidbox/logs", history.to_str().unwrap(), &out, &["--with-resource"]);
        let manifest: serde_json::Value = serde_json::from_str(&read(&out.join("manifest.json"))).unwrap();
        (read(&out.join("resources.csv")).replace(history.to_str().unwrap(), "H"), manifest["history"].clone())
    };
    let (a, b) = (run(&yaml, "oy"), run(&json, "oj"));
    assert_eq!(a, b);
    // The bundle repeats versions the dumps hold (duplicates, equal: no conflict).
    assert_eq!(
        (a.1["duplicate_copies_ignored"].as_u64(), a.1["conflicting_copies"].as_u64()),
        (Some(8), Some(0)),
        "{}",
        a.1
    );
    // Alone, both forms give the bundle's two versions of test-obs-2, the DELETE entry (which
    // carries the body) a deletion.
    for (name, file) in [("y", "history/history-bundle.yaml"), ("j", "history-json/history-bundle.json")] {
        let alone = tmp.path().join(format!("alone-{name}"));
        std::fs::create_dir_all(&alone).unwrap();
        std::fs::copy(root().join("fixtures/field/aidbox").join(file), alone.join("history-bundle")).unwrap();
        let (_, history) = run(&alone, &format!("o-alone-{name}"));
        assert_eq!(
            (history["versions"].as_u64(), history["resources"].as_u64()),
            (Some(2), Some(1)),
            "{name}: {history}"
        );
    }
}

/// The same requests exported from Kibana (three CSV forms and the `_source` column) and from
/// Elasticsearch (`fields`, docvalue `.keyword` copies, Inspect) give the same audit against a
/// plain pg_dump.
#[test]
fn every_log_form_of_the_same_requests_gives_the_same_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let history = "fixtures/field/kibana-es-pg/history";
    let out = tmp.path().join("semicolon");
    audit("fixtures/field/kibana-es-pg/logs/kibana-semicolon.csv", history, &out, &["--tz", "Europe/Berlin"]);
    same_outputs(&out, "fixtures/field/kibana-es-pg/expected");
    let want = read(&out.join("resources.csv"));
    for form in [
        "kibana-tab.csv",
        "kibana-all-fields.csv",
        "kibana-source-column.csv",
        "es-fields-hits.json",
        "es-docvalue-hits.json",
        "es-inspect-response.json",
    ] {
        let out = tmp.path().join(form);
        audit(&format!("fixtures/field/kibana-es-pg/logs/{form}"), history, &out, &["--tz", "Europe/Berlin"]);
        assert_eq!(read(&out.join("resources.csv")), want, "{form}");
        let exports = csv_rows(&out.join("exports.csv"));
        assert_eq!((exports[0]["status"].as_str(), exports[0]["client_id"].as_str()), ("202", "bulk-client"), "{form}");
        assert!(
            exports[0]["source"].ends_with(&format!(
                "{form}:{}",
                if form.starts_with("kibana") {
                    5
                } else {
                    exports[0]["source"].rsplit(':').next().unwrap().parse::<u64>().unwrap()
                }
            )),
            "{form}: {}",
            exports[0]["source"]
        );
    }
    // The Kibana dates need their zone; read as UTC they would be an hour off.
    let r = Bulk::audit("fixtures/field/kibana-es-pg/logs/kibana-tab.csv", history)
        .out(tmp.path().join("no-tz").to_str().unwrap())
        .run();
    assert_eq!(r.status.code(), Some(1));
}

#[test]
fn broken_forms_fail_naming_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |name: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(root().join("fixtures/field/broken").join(name), d.join(name)).unwrap();
        d
    };
    let cases = [
        ("dump-sql-error.tsv", "--history", "dump-sql-error.tsv:"),
        ("kibana-source-column-dash.csv", "--logs", "kibana-source-column-dash.csv:2"),
        ("kibana-source-column-as-documented.csv", "--logs", "kibana-source-column-as-documented.csv:2"),
    ];
    for (name, role, place) in cases {
        let input = dir(name);
        let other = if role == "--history" {
            ("--logs", "fixtures/field/aidbox/logs")
        } else {
            ("--history", "fixtures/field/kibana-es-pg/history")
        };
        let out = tmp.path().join(format!("out-{name}"));
        let r = Bulk::new("audit")
            .arg(role)
            .arg(&input)
            .arg(other.0)
            .arg(other.1)
            .args(["--tz", "Europe/Berlin"])
            .out(&out)
            .run();
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(place), "{name}: {stderr}");
        assert!(!out.exists(), "{name}: no output from a failed run");
    }
}
