//! The Parquet tables through the readers people use: pyarrow 14 (the oldest line the issue
//! names), pandas and DuckDB, installed from PyPI by `scripts/install-readers`. Each table must
//! read with the same cells as the CSV of the same audit, timestamps as microseconds UTC.

#![cfg(feature = "parquet")]

mod common;

use std::process::Command;

use common::*;

#[test]
fn parquet_tables_read_alike_in_pyarrow_pandas_and_duckdb() {
    let install = Command::new(root().join("scripts/install-readers")).output().expect("run scripts/install-readers");
    assert!(
        install.status.success(),
        "scripts/install-readers failed (it needs PyPI):\n{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let python = String::from_utf8(install.stdout).unwrap().trim().to_string();
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
