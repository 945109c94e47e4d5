//! The outputs through independent readers, installed from PyPI by `scripts/install-readers`:
//! the Parquet tables in pyarrow 14 (the oldest line the issue names), pandas and DuckDB, each
//! with the same cells as the CSV of the same audit; and the AuditEvents in an independent FHIR
//! R4 model (fhir.resources 6.4.0) and against IHE BALP's profile rules.

mod common;

use std::process::Command;

use common::*;

/// The virtual environment's python, installed once.
fn python() -> String {
    let install = Command::new(root().join("scripts/install-readers")).output().expect("run scripts/install-readers");
    assert!(
        install.status.success(),
        "scripts/install-readers failed (it needs PyPI):\n{}",
        String::from_utf8_lossy(&install.stderr)
    );
    String::from_utf8(install.stdout).unwrap().trim().to_string()
}

#[cfg(feature = "parquet")]
#[test]
fn parquet_tables_read_alike_in_pyarrow_pandas_and_duckdb() {
    let python = python();
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
    let python = python();
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
    let python = python();
    let java = Command::new(root().join("scripts/install-java")).output().expect("run scripts/install-java");
    assert!(java.status.success(), "scripts/install-java failed:\n{}", String::from_utf8_lossy(&java.stderr));
    let tmp = tempfile::tempdir().unwrap();
    let dirs = [tmp.path().join("parquet"), tmp.path().join("csv")];
    for (dir, format) in dirs.iter().zip(["parquet", "csv"]) {
        let args = ["audit", "--logs", "fixtures/field/aidbox/logs", "--history", "fixtures/field/aidbox/history"];
        run_ok(&[&args[..], &["--no-report", "--format", format, "--out", dir.to_str().unwrap()]].concat());
    }
    let check = Command::new(&python)
        .arg(root().join("tests/readers/spark_read.py"))
        .args([&dirs[0], &dirs[1]])
        .output()
        .expect("run tests/readers/spark_read.py");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{said}{}", String::from_utf8_lossy(&check.stderr));
    assert_eq!(said.lines().filter(|l| l.contains("read by Spark 4")).count(), 3, "{said}");
}
