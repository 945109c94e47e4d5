//! The scenario of the Aidbox guide "Find out what resources were exported during the $export
//! operation", run through the real binary: its example table, with the right version ids.

use crate::common::*;

fn audit_guide(extra: &[&str]) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let out_s = out.to_str().unwrap().to_string();
    let mut args = vec![
        "audit",
        "--logs",
        "fixtures/guide/logs",
        "--tz",
        "UTC",
        "--history",
        "fixtures/guide/history",
        "--out",
        &out_s,
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
    (tmp, out)
}

#[test]
fn guide_reproduces_the_example_table_exactly() {
    let (_tmp, out) = audit_guide(&["--format", "csv"]);
    for t in ["resources", "exports", "findings"] {
        assert_same_file(&out.join(format!("{t}.csv")), &root().join(format!("fixtures/guide/expected/{t}.csv")));
    }
    // The guide's table: (patient, type, id) with the version in force at Dec 5, 2022 @ 16:34:30.417.
    let rows: Vec<(String, String, String, String)> = csv_rows(&out.join("resources.csv"))
        .into_iter()
        .map(|r| {
            (r["patient_id"].clone(), r["resource_type"].clone(), r["resource_id"].clone(), r["version_id"].clone())
        })
        .collect();
    let expect = |p: &str, t: &str, i: &str, v: &str| (p.to_string(), t.to_string(), i.to_string(), v.to_string());
    assert_eq!(
        rows,
        vec![
            expect("", "Location", "loc-1", "1400"),
            expect("test-pt-1", "Observation", "test-obs-1", "1990"),
            expect("test-pt-1", "Observation", "test-obs-2", "1700"),
            expect("test-pt-1", "Patient", "test-pt-1", "1820"),
        ]
    );
}

#[cfg(feature = "parquet")]
#[test]
fn guide_parquet_has_typed_columns_and_the_same_rows() {
    use polars::prelude::*;
    let (_tmp, out) = audit_guide(&[]);
    let f = std::fs::File::open(out.join("resources.parquet")).unwrap();
    let df = ParquetReader::new(f).finish().unwrap();
    assert_eq!(df.height(), 4);
    let dt = df.column("export_time").unwrap().dtype().clone();
    assert!(matches!(dt, DataType::Datetime(TimeUnit::Microseconds, Some(ref tz)) if *tz == TimeZone::UTC), "{dt:?}");
    assert!(matches!(df.column("last_updated").unwrap().dtype(), DataType::Datetime(_, Some(_))));
    let ids: Vec<String> =
        df.column("resource_id").unwrap().str().unwrap().iter().map(|s| s.unwrap().to_string()).collect();
    assert_eq!(ids, ["loc-1", "test-obs-1", "test-obs-2", "test-pt-1"]);
    let lu =
        df.column("last_updated").unwrap().as_materialized_series().to_physical_repr().i64().unwrap().get(3).unwrap();
    // 2022-12-04T14:22:10.123456Z: microseconds of the history survive.
    assert_eq!(lu, 1_670_163_730_123_456);
    // List columns are lists, not delimited text.
    let f = std::fs::File::open(out.join("exports.parquet")).unwrap();
    let df = ParquetReader::new(f).finish().unwrap();
    let exported = df.column("exported_types").unwrap();
    assert_eq!(exported.dtype(), &DataType::List(Box::new(DataType::String)));
    let first = exported.list().unwrap().get_as_series(0).unwrap();
    let types: Vec<&str> = first.str().unwrap().iter().map(|s| s.unwrap()).collect();
    assert_eq!(types, ["Location", "Observation", "Patient"]);
    assert_eq!(df.column("scopes").unwrap().dtype(), &DataType::List(Box::new(DataType::String)));
}

#[test]
fn guide_csv_is_byte_identical_across_runs() {
    let (_a, out_a) = audit_guide(&["--format", "csv"]);
    let (_b, out_b) = audit_guide(&["--format", "csv"]);
    for t in ["resources.csv", "exports.csv", "findings.csv", "manifest.json"] {
        assert_eq!(
            read(&out_a.join(t)).replace(out_a.to_str().unwrap(), "OUT"),
            read(&out_b.join(t)).replace(out_b.to_str().unwrap(), "OUT"),
            "{t}"
        );
    }
}

#[test]
fn guide_manifest_lists_inputs_with_hashes_and_counts() {
    let (_tmp, out) = audit_guide(&["--format", "csv"]);
    let m: serde_json::Value = serde_json::from_str(&read(&out.join("manifest.json"))).unwrap();
    assert_eq!(m["tool"], "bulk-audit");
    assert_eq!(m["rows"]["resources"], 4);
    assert_eq!(m["rows"]["exports"], 2);
    assert_eq!(m["rows"]["findings"], 2, "boundary-ambiguous, and tenant-unmarked: the guide marks no tenant");
    let inputs = m["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 8);
    let csv = inputs.iter().find(|i| i["path"] == "fixtures/guide/logs/kibana-discover.csv").unwrap();
    assert_eq!(csv["lines"], 9);
    assert_eq!(csv["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(m["history"]["duplicate_copies_ignored"], 2);
    assert_eq!(m["log_coverage"]["first"], "2022-12-05T16:30:02.118Z");
}

#[cfg(unix)]
#[test]
fn outputs_are_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (_tmp, out) = audit_guide(&["--format", "csv"]);
    for t in ["resources.csv", "exports.csv", "findings.csv", "manifest.json", "SHA256SUMS"] {
        let mode = std::fs::metadata(out.join(t)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{t}");
    }
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o700);
}

#[test]
fn reconstruct_and_with_resource_give_the_bodies_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let rec = tmp.path().join("rec");
    Bulk::audit_csv("fixtures/guide/logs", "fixtures/guide/history")
        .arg("--with-resource")
        .out(&out)
        .arg("--reconstruct")
        .arg(&rec)
        .ok();
    let obs = read(&rec.join("e2b9d4/Observation.ndjson"));
    let lines: Vec<serde_json::Value> = obs.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "test-obs-1");
    assert_eq!(lines[0]["meta"]["versionId"], "1990");
    // Version 1990 of test-obs-1 carried 70.4 kg (70.1 before it, 70.9 after it).
    assert_eq!(lines[0]["value"]["Quantity"]["value"], 70.4);
    assert!(!rec.join("9a03ee").exists(), "a rejected kickoff is not reconstructed");
    let rows = csv_rows(&out.join("resources.csv"));
    let pt = rows.iter().find(|r| r["resource_id"] == "test-pt-1").unwrap();
    let body: serde_json::Value = serde_json::from_str(&pt["resource"]).unwrap();
    assert_eq!(body["name"][0]["family"], "Test-Smith");
}

/// The chain of custody: `SHA256SUMS` in each output folder covers every file written there, in
/// the form `sha256sum -c` checks; a changed file fails the check.
#[test]
fn sha256sums_cover_every_file_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, rec) = (tmp.path().join("out"), tmp.path().join("rec"));
    let args = ["audit", "--logs", "fixtures/guide/logs", "--tz", "UTC", "--history", "fixtures/guide/history"];
    let more =
        ["--format", "csv", "--with-resource", "--out", out.to_str().unwrap(), "--reconstruct", rec.to_str().unwrap()];
    run_ok(&[&args[..], &more[..]].concat());
    let check = |dir: &std::path::Path| {
        std::process::Command::new("sha256sum").args(["--check", "--strict", "SHA256SUMS"]).current_dir(dir).output()
    };
    for (dir, expected) in [
        (&out, vec!["exports.csv", "findings.csv", "manifest.json", "report.html", "resources.csv"]),
        (&rec, vec!["e2b9d4/Location.ndjson", "e2b9d4/Observation.ndjson", "e2b9d4/Patient.ndjson"]),
    ] {
        let sums = read(&dir.join("SHA256SUMS"));
        let names: Vec<&str> = sums.lines().map(|l| l.split_once("  ").unwrap().1).collect();
        assert_eq!(names, expected, "{sums}");
        for line in sums.lines() {
            let (sum, name) = line.split_once("  ").unwrap();
            use sha2::Digest as _;
            let bytes = std::fs::read(dir.join(name)).unwrap();
            let actual: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(sum, actual, "{name}");
        }
        // GNU coreutils, where installed, agrees; and notices a change.
        if let Ok(ok) = check(dir) {
            assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
            std::fs::write(dir.join(expected[1]), "changed\n").unwrap();
            assert!(!check(dir).unwrap().status.success());
        }
    }
}

#[test]
fn rerun_replaces_previous_output_but_not_a_foreign_folder() {
    let (_tmp, out) = audit_guide(&["--format", "csv"]);
    // The same folder again: a previous bulk-audit output is replaced.
    Bulk::audit_csv("fixtures/guide/logs", "fixtures/guide/history").out(&out).ok();
    let foreign = out.parent().unwrap().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "keep me").unwrap();
    let r = Bulk::audit("fixtures/guide/logs", "fixtures/guide/history").args(["--tz", "UTC"]).out(&foreign).run();
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--force"));
    assert_eq!(read(&foreign.join("notes.txt")), "keep me");
}

/// `bulk-audit exports` lists the kickoffs in the exports table's own columns (those the logs
/// alone tell), each cell as the audit's exports.csv writes it.
#[test]
fn exports_command_lists_the_kickoffs() {
    let out = run_ok(&["exports", "--logs", "fixtures/guide/logs", "--tz", "UTC"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("listed.csv"), &out).unwrap();
    let listed = csv_rows(&tmp.path().join("listed.csv"));
    let table = csv_rows(&root().join("fixtures/guide/expected/exports.csv"));
    assert_eq!(listed.len(), table.len());
    assert_eq!(listed[0].len(), 20, "{:?}", listed[0].keys());
    for (kickoff, row) in listed.iter().zip(&table) {
        for (column, value) in kickoff {
            assert_eq!(Some(value), row.get(column), "{column}");
        }
    }
    assert!(lines[1].starts_with("e2b9d4,inferno-my-clinic-bulk-client,,2022-12-05T16:34:30.417Z,"), "{}", lines[1]);
    assert!(lines[2].contains(",403,false,group,"), "{}", lines[2]);
    // --from/--to select as the audit's do (a date takes its whole day); types are separated by
    // spaces, as the tables' list columns are.
    let at = |from: &str, to: &str| {
        run_ok(&["exports", "--logs", "fixtures/guide/logs", "--tz", "UTC", "--from", from, "--to", to])
    };
    let late = at("2022-12-05T16:40:00Z", "2022-12-05");
    assert_eq!(late.lines().count(), 2, "{late}");
    assert!(late.lines().nth(1).unwrap().starts_with("9a03ee,"), "{late}");
    assert_eq!(at("2022-12-06", "2022-12-31").lines().count(), 1);
    let more = tempfile::tempdir().unwrap();
    std::fs::write(
        more.path().join("l.ndjson"),
        "{\"ev\":\"w/req\",\"ts\":\"2023-03-01T12:00:00Z\",\"ctx\":\"t\",\"w_m\":\"get\",\"w_url\":\"/fhir/Group/g/$export\",\"w_qs\":\"_type=Patient,Observation\",\"w_st\":202,\"w_cid\":\"c\"}\n",
    )
    .unwrap();
    let listed = run_ok(&["exports", "--logs", more.path().to_str().unwrap()]);
    assert!(listed.contains(",Patient Observation,"), "{listed}");
}

/// Kibana's dates carry no offset: without --tz the run stops (exit 1) and names the file, never
/// reading them as UTC. The zone decides the answer, which is why it is the user's to give.
#[test]
fn guide_dates_need_a_zone() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let args = ["audit", "--logs", "fixtures/guide/logs", "--history", "fixtures/guide/history", "--out"];
    let r = run(&[&args[..], &[out.to_str().unwrap()]].concat());
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("fixtures/guide/logs/kibana-discover.csv:2: a timestamp without a UTC offset, and no --tz"),
        "{stderr}"
    );
    assert!(!out.exists());
    let rows = |tz: &str| {
        let out = tmp.path().join(tz.replace('/', "-"));
        run_ok(&[&args[..], &[out.to_str().unwrap(), "--tz", tz, "--format", "csv"]].concat());
        csv_rows(&out.join("resources.csv")).len()
    };
    assert_eq!(rows("UTC"), 4);
    // 16:34 in Los Angeles is 00:34 UTC the next day: later versions are in force.
    assert_ne!(rows("America/Los_Angeles"), 4);
}

/// The report gives the answer first: who received what and what needs attention, then the
/// exports, and last how it was established (the inputs and options).
#[test]
fn the_report_opens_with_the_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    audit_csv_ok("fixtures/guide/logs", "fixtures/guide/history", &out, &[]);
    let report = read(&out.join("report.html"));
    let at = |id: &str| report.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no {id}"));
    assert!(at("answer") < at("exports") && at("exports") < at("audited"), "the answer first, the inputs last");
    // inferno: 2 exports, 1 refused, 0 incomplete, 1 patient, 4 resources, 4 rows, 2 findings.
    let row =
        "inferno-my-clinic-bulk-client</td><td>2</td><td>1</td><td>0</td><td>1</td><td>4</td><td>4</td><td>2</td>";
    assert!(report.contains(row), "{}", &report[at("answer")..at("exports")]);
    assert!(report[at("answer")..at("exports")].contains("What needs attention"));
}
