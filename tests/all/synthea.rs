//! Generated worlds from the Synthea population: the checked-in fixture (every input form at once)
//! and fresh worlds in the peer's simple form, each audited by the real binary and compared row
//! for row with the truth the generator computed from its own model.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::*;
use bulk_audit_world::{self as world, WorldFormat, WorldSpec};

type Key = [String; 6];

fn keys_of(path: &Path) -> BTreeSet<Key> {
    csv_rows(path)
        .into_iter()
        .map(|r| {
            ["export_id", "client_id", "patient_id", "resource_type", "resource_id", "version_id"].map(|c| r[c].clone())
        })
        .collect()
}

fn audit(logs: &Path, history: &Path, out: &Path, extra: &[&str]) -> String {
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
        // The Kibana CSV's dates were written in UTC.
        "--tz",
        "UTC",
    ];
    args.extend_from_slice(extra);
    run_ok(&args)
}

fn assert_rows_equal(actual: &Path, truth: &Path) {
    let (a, t) = (keys_of(actual), keys_of(truth));
    let missing: Vec<_> = t.difference(&a).take(5).collect();
    let extra: Vec<_> = a.difference(&t).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} rows vs {} in the truth; missing {missing:?}; extra {extra:?}",
        a.len(),
        t.len()
    );
    assert_eq!(csv_rows(actual).len(), t.len(), "no duplicate rows");
}

#[test]
fn fixture_in_every_input_form_matches_the_truth_and_the_expected_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let stdout = audit(Path::new("fixtures/synthea/logs"), Path::new("fixtures/synthea/history"), &out, &[]);
    assert!(stdout.contains("12 exports, 538 resource rows, 20 findings"), "{stdout}");
    assert_rows_equal(&out.join("resources.csv"), &root().join("fixtures/synthea/truth/expected_resources.csv"));
    for t in ["resources", "exports", "findings"] {
        assert_same_file(&out.join(format!("{t}.csv")), &root().join(format!("fixtures/synthea/expected/{t}.csv")));
    }
}

#[test]
fn fixture_findings_tell_the_story() {
    let findings = csv_rows(&root().join("fixtures/synthea/expected/findings.csv"));
    let kinds: Vec<(String, String)> = findings.iter().map(|f| (f["export_id"].clone(), f["kind"].clone())).collect();
    for (export, kind) in [
        ("kick-01", "boundary-ambiguous"),
        ("kick-01", "patient-missing"),
        ("kick-02", "member-inactive"),
        ("kick-02", "member-unresolvable"),
        ("kick-02", "type-not-permitted"),
        ("kick-03", "scope-query-not-applied"),
        ("kick-03", "count-mismatch"),
        ("kick-05", "export-not-completed"),
        ("kick-07", "group-not-found"),
        ("kick-08", "client-not-found"),
        ("kick-10", "param-not-applied"),
        ("kick-10", "status-not-found"),
        ("", "log-gap"),
        ("", "status-without-kickoff"),
    ] {
        assert!(kinds.contains(&(export.to_string(), kind.to_string())), "missing {kind} for {export:?}");
    }
    let exports = csv_rows(&root().join("fixtures/synthea/expected/exports.csv"));
    let k9 = exports.iter().find(|e| e["export_id"] == "kick-09").unwrap();
    assert_eq!(
        (k9["status"].as_str(), k9["accepted"].as_str(), k9["resolved"].as_str(), k9["row_count"].as_str()),
        ("429", "false", "false", "")
    );
    let k3 = exports.iter().find(|e| e["export_id"] == "kick-03").unwrap();
    assert_eq!((k3["method"].as_str(), k3["tenant"].as_str(), k3["level"].as_str()), ("POST", "t1", "group"));
    assert_eq!(k3["status_resource_id"], "bes-03");
}

#[test]
fn fixture_is_reproducible_from_its_generator_command() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = WorldSpec {
        synthea: root().join("data/synthea-r4"),
        clones: 2,
        patients: Some(4),
        max_per_type: Some(3),
        noise_requests: 400,
        seed: 42,
        format: WorldFormat::Mixed,
    };
    let w = world::generate(&spec).unwrap();
    world::write(&w, tmp.path(), WorldFormat::Mixed).unwrap();
    for rel in ["truth/expected_resources.csv", "logs/kibana/discover.csv", "history/fhir/Practitioner.ndjson"] {
        assert_eq!(read(&tmp.path().join(rel)), read(&root().join("fixtures/synthea").join(rel)), "{rel}");
    }
    for rel in [
        "history/aidbox/observation_history.ndjson.zst",
        "history/bundles/CarePlan.ndjson.gz",
        "logs/aidbox/requests.ndjson.zst",
    ] {
        assert_eq!(
            std::fs::read(tmp.path().join(rel)).unwrap(),
            std::fs::read(root().join("fixtures/synthea").join(rel)).unwrap(),
            "{rel}"
        );
    }
}

#[test]
fn fresh_worlds_in_both_forms_match_their_truth() {
    for (seed, format, clones) in [(7, WorldFormat::Fhir, 1), (11, WorldFormat::Mixed, 3)] {
        let tmp = tempfile::tempdir().unwrap();
        let spec = WorldSpec {
            synthea: root().join("data/synthea-r4"),
            clones,
            patients: Some(6),
            max_per_type: Some(4),
            noise_requests: 300,
            seed,
            format,
        };
        let w = world::generate(&spec).unwrap();
        world::write(&w, tmp.path(), format).unwrap();
        let out = tmp.path().join("out");
        audit(&tmp.path().join("logs"), &tmp.path().join("history"), &out, &[]);
        assert_rows_equal(&out.join("resources.csv"), &tmp.path().join("truth/expected_resources.csv"));
    }
}
