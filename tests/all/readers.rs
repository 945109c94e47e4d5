//! The outputs through independent readers, installed from PyPI by `scripts/install-readers`:
//! the Parquet tables in pyarrow 14 (the oldest line the issue names), pandas and DuckDB, each
//! with the same cells as the CSV of the same audit; and the AuditEvents in an independent FHIR
//! R4 model (fhir.resources 6.4.0) and against IHE BALP's profile rules.

use std::process::Command;

use crate::common::*;

#[cfg(feature = "parquet")]
#[test]
fn parquet_tables_read_alike_in_pyarrow_pandas_and_duckdb() {
    let python = readers_python();
    let tmp = tempfile::tempdir().unwrap();
    for (name, logs, history) in [
        ("guide", "fixtures/guide/logs", "fixtures/guide/history"),
        ("aidbox", "fixtures/field/aidbox/logs", "fixtures/field/aidbox/history"),
    ] {
        let dirs = [tmp.path().join(format!("{name}-parquet")), tmp.path().join(format!("{name}-csv"))];
        for (dir, format) in dirs.iter().zip(["parquet", "csv"]) {
            let args = ["audit", "--logs", logs, "--history", history, "--tz", "UTC", "--with-resource", "--format"];
            run_ok(&[&args[..], &[format, "--out", dir.to_str().unwrap()]].concat());
        }
        let check = Command::new(&python)
            .arg(root().join("tests/readers/read_tables.py"))
            .args([&dirs[0], &dirs[1]])
            .output()
            .expect("run tests/readers/read_tables.py");
        let said = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success(), "{name}: {said}{}", String::from_utf8_lossy(&check.stderr));
        assert_eq!(said.lines().count(), 3, "{said}");
    }
}

/// One AuditEvent per (export, patient) with rows, valid R4 and BALP, naming exactly the rows'
/// versions; the guide's are checked in byte for byte, and a second run gives the same ids.
#[test]
fn audit_events_are_valid_r4_balp_and_match_the_rows() {
    let python = readers_python();
    let tmp = tempfile::tempdir().unwrap();
    for (name, logs, history, tz) in [
        ("guide", "fixtures/guide/logs", "fixtures/guide/history", "UTC"),
        ("aidbox", "fixtures/field/aidbox/logs", "fixtures/field/aidbox/history", "UTC"),
        (
            "kibana-es-pg",
            "fixtures/field/kibana-es-pg/logs/kibana-semicolon.csv",
            "fixtures/field/kibana-es-pg/history",
            "Europe/Berlin",
        ),
    ] {
        let out = tmp.path().join(name);
        let args = ["audit", "--logs", logs, "--history", history, "--tz", tz, "--format", "csv", "--audit-events"];
        run_ok(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
        let check = Command::new(&python)
            .arg(root().join("tests/readers/validate_audit_events.py"))
            .arg(&out)
            .output()
            .expect("run tests/readers/validate_audit_events.py");
        let said = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success(), "{name}: {said}{}", String::from_utf8_lossy(&check.stderr));
        assert!(said.contains("AuditEvents valid"), "{said}");
        if name == "guide" {
            for f in ["auditevents.ndjson", "auditevents-bundle.json"] {
                assert_same_file(&out.join(f), &root().join("fixtures/guide/expected").join(f));
            }
        }
    }
}

/// Spark 4 reads every table (it refuses nanosecond timestamps, which the build before wrote),
/// with timestamps as TimestampType and the list columns as arrays, row for row as in the CSV.
/// Java 17 comes from `scripts/install-java`.
#[cfg(feature = "parquet")]
#[test]
fn spark_reads_every_table() {
    let python = readers_python();
    let java_home = java_home();
    let tmp = tempfile::tempdir().unwrap();
    let dirs = [tmp.path().join("parquet"), tmp.path().join("csv")];
    for (dir, format) in dirs.iter().zip(["parquet", "csv"]) {
        let args = ["audit", "--logs", "fixtures/field/aidbox/logs", "--history", "fixtures/field/aidbox/history"];
        run_ok(&[&args[..], &["--no-report", "--format", format, "--out", dir.to_str().unwrap()]].concat());
    }
    // UTC, as PySpark hands timestamps back in the process's local zone.
    let check = Command::new(&python)
        .env("JAVA_HOME", &java_home)
        .env("TZ", "UTC")
        .arg(root().join("tests/readers/spark_read.py"))
        .args([&dirs[0], &dirs[1]])
        .output()
        .expect("run tests/readers/spark_read.py");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{said}{}", String::from_utf8_lossy(&check.stderr));
    assert_eq!(said.lines().filter(|l| l.contains("read by Spark 4")).count(), 3, "{said}");
}

/// A kickoff logged without `ctx` gets AuditEvent ids from what it is (time, method, URL,
/// client), not from the log's path as given: the same log named two ways gives the same ids.
#[test]
fn audit_event_ids_do_not_depend_on_how_the_log_path_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let line = serde_json::json!({"ev": "w/req", "ts": "2023-03-01T12:00:00Z", "w_m": "get",
        "w_url": "/fhir/Patient/$export", "w_cid": "c1", "w_st": 202});
    std::fs::write(logs.join("a.ndjson"), format!("{line}\n")).unwrap();
    let history = tmp.path().join("history.ndjson");
    let patient = serde_json::json!({"resourceType": "Patient", "id": "p1",
        "meta": {"versionId": "1", "lastUpdated": "2023-01-01T00:00:00Z"}});
    std::fs::write(&history, format!("{patient}\n")).unwrap();
    let ids = |logs_arg: String, name: &str| {
        let out = tmp.path().join(name);
        let args = ["audit", "--logs", &logs_arg, "--history", history.to_str().unwrap(), "--audit-events"];
        run_ok(&[&args[..], &["--format", "csv", "--out", out.to_str().unwrap()]].concat());
        read(&out.join("auditevents.ndjson"))
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let a = ids(logs.display().to_string(), "a");
    let b = ids(format!("{}/./", logs.display()), "b");
    assert_eq!(a.len(), 1);
    assert_eq!(a, b);
}
