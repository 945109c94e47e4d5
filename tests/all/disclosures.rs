//! `bulk-audit disclosures` through the real binary: each patient's accounting of disclosures
//! from a finished audit's folder, the same from its CSV and its Parquet tables, filtered by
//! patient, written whole, and refused on a folder that is no audit.

use std::path::{Path, PathBuf};

use crate::common::*;

fn audit(logs: &str, history: &str, format: &str, out: &Path) {
    let args = ["audit", "--logs", logs, "--history", history, "--tz", "UTC", "--format", format, "--out"];
    run_ok(&[&args[..], &[out.to_str().unwrap()]].concat());
}

fn field_audits(tmp: &Path) -> (PathBuf, PathBuf) {
    let (csv, parquet) = (tmp.join("csv"), tmp.join("parquet"));
    audit("fixtures/field/aidbox/logs", "fixtures/field/aidbox/history", "csv", &csv);
    audit("fixtures/field/aidbox/logs", "fixtures/field/aidbox/history", "parquet", &parquet);
    (csv, parquet)
}

#[test]
fn guide_disclosures_are_the_expected_accounting() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    audit("fixtures/guide/logs", "fixtures/guide/history", "csv", &out);
    let said = run_ok(&["disclosures", "--audit", out.to_str().unwrap()]);
    assert_eq!(said, read(&root().join("fixtures/guide/expected/disclosures.csv")));
}

/// One row per (patient, export): the types, distinct resources and versions of that patient's
/// rows; rows of no patient (a Location) count for none.
#[test]
fn one_row_per_patient_and_export_from_either_table_format() {
    let tmp = tempfile::tempdir().unwrap();
    let (csv, parquet) = field_audits(tmp.path());
    let from_csv = run_ok(&["disclosures", "--audit", csv.to_str().unwrap()]);
    let from_parquet = run_ok(&["disclosures", "--audit", parquet.to_str().unwrap()]);
    assert_eq!(from_csv, from_parquet);
    // Recount from the resources table itself.
    let rows = csv_rows(&csv.join("resources.csv"));
    let mut expected = std::collections::BTreeMap::new();
    for r in rows.iter().filter(|r| !r["patient_id"].is_empty()) {
        let e = expected.entry((r["patient_id"].clone(), r["export_id"].clone())).or_insert_with(|| {
            (std::collections::BTreeSet::new(), std::collections::BTreeSet::new(), std::collections::BTreeSet::new())
        });
        e.0.insert(r["resource_type"].clone());
        e.1.insert((r["resource_type"].clone(), r["resource_id"].clone()));
        e.2.insert((r["resource_type"].clone(), r["resource_id"].clone(), r["version_id"].clone()));
    }
    let path = tmp.path().join("d.csv");
    std::fs::write(&path, &from_csv).unwrap();
    let all = csv_rows(&path);
    // Beside them, each incomplete export is listed for every patient, its counts unknown.
    let (got, unknown): (Vec<_>, Vec<_>) = all.into_iter().partition(|d| !d["resource_count"].is_empty());
    assert!(unknown.iter().all(|d| d["completeness"].starts_with("incomplete: ") && d["version_count"].is_empty()));
    assert_eq!(got.len(), expected.len());
    for d in &got {
        let (types, resources, versions) = &expected[&(d["patient_id"].clone(), d["export_id"].clone())];
        assert_eq!(d["types"], types.iter().cloned().collect::<Vec<_>>().join(" "));
        assert_eq!(d["resource_count"], resources.len().to_string());
        assert_eq!(d["version_count"], versions.len().to_string());
        let ids: Vec<String> = versions.iter().map(|(t, id, v)| format!("{t}/{id}/_history/{v}")).collect();
        assert_eq!(d["versions"], ids.join(" "), "each version sent is listed");
        assert!(d["purpose"].starts_with("request ") && d["purpose"].contains("; scopes "), "{d:?}");
    }
    // The purpose is the export's request and the client's scopes, as the exports table has them.
    let exports = csv_rows(&csv.join("exports.csv"));
    for d in &got {
        let e = exports.iter().find(|e| e["export_id"] == d["export_id"]).unwrap();
        let scopes = if e["scopes"].is_empty() { "none" } else { e["scopes"].as_str() };
        assert_eq!(d["purpose"], format!("request {} {}; scopes {scopes}", e["method"], e["url"]));
    }
}

/// `--client` keeps only the disclosures to that client (and its incomplete exports).
#[test]
fn client_filter() {
    let tmp = tempfile::tempdir().unwrap();
    let (csv, _) = field_audits(tmp.path());
    let all = run_ok(&["disclosures", "--audit", csv.to_str().unwrap()]);
    let clients: std::collections::BTreeSet<&str> =
        all.lines().skip(1).filter_map(|l| l.split(',').nth(2)).filter(|c| !c.is_empty()).collect();
    assert!(clients.len() >= 2, "{all}");
    let one = *clients.iter().next().unwrap();
    let only = run_ok(&["disclosures", "--audit", csv.to_str().unwrap(), "--client", one]);
    let kept: Vec<&str> = only.lines().skip(1).collect();
    assert!(!kept.is_empty() && kept.iter().all(|l| l.split(',').nth(2) == Some(one)), "{only}");
    assert_eq!(kept.len(), all.lines().skip(1).filter(|l| l.split(',').nth(2) == Some(one)).count());
}

#[test]
fn patient_filter_and_a_file_written_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (csv, _) = field_audits(tmp.path());
    let out = tmp.path().join("pt2.csv");
    let args = ["disclosures", "--audit", csv.to_str().unwrap(), "--patient", "test-pt-2", "--format", "csv"];
    run_ok(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    let rows = csv_rows(&out);
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|r| r["patient_id"] == "test-pt-2"));
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn a_folder_that_is_no_audit_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(&["disclosures", "--audit", tmp.path().to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("not a bulk-audit output folder"));
}

/// A resources table with a row missing what the audit always writes is an input error naming
/// the file and line, never rows merged under an empty export id.
#[test]
fn a_damaged_resources_table_is_an_error_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (csv, _) = field_audits(tmp.path());
    let path = csv.join("resources.csv");
    let text = read(&path);
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[3] = format!(",{}", lines[3].split_once(',').unwrap().1);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let r = run(&["disclosures", "--audit", csv.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("resources.csv:4") && stderr.contains("export_id is empty"), "{stderr}");
}
