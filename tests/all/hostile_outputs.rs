//! Outputs that cannot be turned against their reader (SPEC "The files it touches"): a formula
//! from a log is neutralised in every CSV and read back exactly by `disclosures`; a line break or
//! a bidirectional override in an id is escaped on the terminal and isolated in the report; a
//! long export id gives a bounded, distinct `--reconstruct` folder that the manifest maps back.

use std::path::Path;

use crate::common::*;
use serde_json::json;

const FORMULA: &str = "=HYPERLINK(\"http://evil.example\",\"click\")";

fn write_world(dir: &Path, client: &str, ctxs: &[String]) {
    let logs = dir.join("logs");
    let history = dir.join("history");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::create_dir_all(&history).unwrap();
    let mut text = String::new();
    for (i, ctx) in ctxs.iter().enumerate() {
        let t = format!("2023-03-0{}T12:00:00.000Z", i + 1);
        text += &(json!({"ev": "w/req", "ts": t, "ctx": ctx, "w_m": "get", "w_url": "/fhir/Group/g/$export"})
            .to_string()
            + "\n");
        text += &(json!({"ev": "w/resp", "ts": t, "ctx": ctx, "w_st": 202, "w_cid": client}).to_string() + "\n");
    }
    std::fs::write(logs.join("logs.ndjson"), text).unwrap();
    let v = |mut b: serde_json::Value, vid: &str, lu: &str| {
        b["meta"] = json!({"versionId": vid, "lastUpdated": lu});
        b.to_string() + "\n"
    };
    let history_text =
        v(json!({"resourceType": "Client", "id": client, "scope": "system/*.read"}), "1", "2023-01-01T00:00:00Z")
            + &v(
                json!({"resourceType": "Group", "id": "g", "member": [{"entity": {"reference": "Patient/-p1"}}]}),
                "2",
                "2023-01-02T00:00:00Z",
            )
            + &v(json!({"resourceType": "Patient", "id": "-p1"}), "3", "2023-01-03T00:00:00Z")
            + &v(
                json!({"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/-p1"}}),
                "4",
                "2023-01-04T00:00:00Z",
            );
    std::fs::write(history.join("history.ndjson"), history_text).unwrap();
}

#[test]
fn formulas_are_neutralised_in_every_csv_and_read_back_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    write_world(tmp.path(), FORMULA, &["k1".to_string()]);
    let (logs, history) = (tmp.path().join("logs"), tmp.path().join("history"));
    let (csv_out, pq_out) = (tmp.path().join("csv"), tmp.path().join("pq"));
    for (out, format) in [(&csv_out, "csv"), (&pq_out, "parquet")] {
        Bulk::audit(&logs, &history).args(["--tz", "UTC", "--format"]).arg(format).out(out).ok();
    }
    // Every text cell that starts like a formula has one ' before it; nothing else changes.
    let resources = csv_rows(&csv_out.join("resources.csv"));
    assert!(!resources.is_empty());
    for row in &resources {
        assert_eq!(row["client_id"], format!("'{FORMULA}"));
        assert_eq!(row["patient_id"], "'-p1", "an id starting with '-' is a formula to a spreadsheet");
    }
    let exports = csv_rows(&csv_out.join("exports.csv"));
    assert_eq!(exports[0]["client_id"], format!("'{FORMULA}"));
    let raw = read(&csv_out.join("exports.csv"));
    assert!(!raw.contains(",=HYPERLINK") && !raw.contains(",\"=HYPERLINK"), "{raw}");
    // `bulk-audit exports` too.
    let listed = run_ok(&["exports", "--logs", logs.to_str().unwrap(), "--tz", "UTC"]);
    assert!(listed.contains(&format!("\"'{}\"", FORMULA.replace('"', "\"\""))), "{listed}");
    // disclosures reads the CSV audit back exactly as the Parquet one (which keeps values raw),
    // and neutralises again what it writes.
    let from_csv = run_ok(&["disclosures", "--audit", csv_out.to_str().unwrap()]);
    let from_parquet = run_ok(&["disclosures", "--audit", pq_out.to_str().unwrap()]);
    assert_eq!(from_csv, from_parquet);
    assert!(from_csv.contains("'-p1") && from_csv.contains("'=HYPERLINK"), "{from_csv}");
    assert!(!from_csv.contains("''"), "a quote was added twice: {from_csv}");
}

#[test]
fn line_breaks_and_bidi_overrides_in_ids_cannot_forge_or_reorder_what_is_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let forged = "k1\nexport k9  2023-03-01T12:00:00.000Z  nobody  group g  0 rows".to_string();
    let reversed = "k2\u{202e}Z000.00:00:21T10-30-3202".to_string();
    let long = "x".repeat(400);
    write_world(tmp.path(), "c", &[forged.clone(), reversed.clone(), long.clone()]);
    let (logs, history) = (tmp.path().join("logs"), tmp.path().join("history"));
    let (out, rec) = (tmp.path().join("out"), tmp.path().join("rec"));
    let said = audit_csv_ok(&logs, &history, &out, &["--reconstruct", rec.to_str().unwrap()]);
    // One line per export on stdout, the break and the override escaped.
    assert!(said.contains("k1\\u000aexport k9"), "{said}");
    assert!(said.contains("k2\\u202eZ000"), "{said}");
    assert!(!said.contains('\u{202e}'));
    assert_eq!(said.lines().filter(|l| l.contains("export k9")).count(), 1, "{said}");
    assert!(!said.lines().any(|l| l.starts_with("export k9")), "a forged line: {said}");
    // The report isolates the override and shows it.
    let report = read(&out.join("report.html"));
    assert!(report.contains("<bdi>k2[U+202E]Z000.00:00:21T10-30-3202</bdi>"), "the id is isolated");
    assert!(!report.contains('\u{202e}'));
    // The long export id: a bounded folder, mapped back to the id in the manifest.
    let manifest: serde_json::Value = serde_json::from_str(&read(&out.join("manifest.json"))).unwrap();
    let folders = manifest["reconstruct_folders"].as_object().unwrap();
    assert_eq!(folders.len(), 3, "{folders:?}");
    let (long_folder, _) = folders.iter().find(|(_, id)| id.as_str() == Some(long.as_str())).unwrap();
    assert!(long_folder.len() <= 200, "{long_folder}");
    assert!(rec.join(long_folder).join("Observation.ndjson").is_file());
    for name in folders.keys() {
        assert!(rec.join(name).is_dir(), "{name}");
    }
}
