//! An index in shards through the real binary (SPEC "Past one machine"): the logs indexed once,
//! the history in parts indexed one by one, and `audit --index` of them all writes the same bytes
//! as one audit of every dump — with a resource's versions in different shards, one version in
//! two shards (counted once) and a differing copy (a `version-conflict`). Shards built with
//! different options, none or two holding the logs, or a folder that is no shard are refused.

use std::path::{Path, PathBuf};

use crate::common::*;

/// Indexes `logs` into `idx/logs` and each history part into `idx/h-NN`, audits the folder of
/// shards, audits every dump at once with the same options, and compares every file written.
fn same_as_one_audit(tmp: &Path, logs: &str, parts: &[Vec<String>], rules: &[&str], outputs: &[&str]) -> PathBuf {
    let idx = tmp.join("idx");
    index_in_shards(&idx, logs, parts, rules);
    let (whole, sharded) = (tmp.join("whole"), tmp.join("sharded"));
    let mut a = vec!["audit", "--logs", logs, "--history"];
    a.extend(parts.iter().flatten().map(String::as_str));
    a.extend_from_slice(rules);
    a.extend_from_slice(outputs);
    a.extend_from_slice(&["--out", whole.to_str().unwrap()]);
    run_ok(&a);
    let mut b = vec!["audit", "--index", idx.to_str().unwrap()];
    b.extend_from_slice(outputs);
    b.extend_from_slice(&["--out", sharded.to_str().unwrap()]);
    let said = run_ok(&b);
    assert!(said.contains(&format!("({} shards)", parts.len() + 1)), "{said}");
    assert_same_folders(&whole, &sharded);
    sharded
}

/// The Synthea world's history, every line shuffled and cut at arbitrary line boundaries into
/// five parts (one compressed), plus a copy of one version in another part and a differing copy
/// of another: the union of the shards is the audit of all the parts.
#[test]
fn a_history_cut_anywhere_into_shards_audits_as_one() {
    let tmp = tempfile::tempdir().unwrap();
    let parts: Vec<Vec<String>> = cut_history(&root().join("fixtures/synthea/history"), &tmp.path().join("parts"), 21)
        .into_iter()
        .map(|p| vec![p.to_str().unwrap().to_string()])
        .collect();
    assert!(parts.len() >= 4, "{} parts", parts.len());
    let out = same_as_one_audit(
        tmp.path(),
        "fixtures/synthea/logs",
        &parts,
        &["--tz", "UTC"],
        &["--format", "csv", "--audit-events"],
    );
    let findings = read(&out.join("findings.csv"));
    assert!(findings.contains("version-conflict"), "the differing copy is a conflict: {findings}");
    let manifest: serde_json::Value = serde_json::from_str(&read(&out.join("manifest.json"))).unwrap();
    assert_eq!(manifest["history"]["conflicting_copies"], 2, "{manifest}");
    assert!(manifest["history"]["duplicate_copies_ignored"].as_u64().unwrap() >= 1, "{manifest}");
    assert!(read(&out.join("resources.csv")).lines().count() > 100);
}

/// The guide and both field scenarios, each history file its own shard, bodies re-read from
/// the files each shard names.
#[test]
fn fixtures_in_shards_audit_as_one() {
    for (logs, history, rules) in [
        ("fixtures/guide/logs", "fixtures/guide/history", vec!["--tz", "UTC"]),
        ("fixtures/field/aidbox/logs", "fixtures/field/aidbox/history", vec![]),
        ("fixtures/field/kibana-es-pg/logs", "fixtures/field/kibana-es-pg/history", vec!["--tz", "Europe/Berlin"]),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let parts: Vec<Vec<String>> =
            files(&root().join(history)).into_iter().map(|f| vec![format!("{history}/{}", f.display())]).collect();
        same_as_one_audit(tmp.path(), logs, &parts, &rules, &["--format", "csv", "--with-resource"]);
    }
}

fn refused(args: &[&str]) -> String {
    let r = run(args);
    assert_eq!(r.status.code(), Some(1), "{args:?}: {r:?}");
    String::from_utf8_lossy(&r.stderr).to_string()
}

/// A union that would not be one audit is refused, naming why: shards of different options, no
/// shard or two shards holding the logs, a folder inside that is no index.
#[test]
fn a_union_that_is_not_one_audit_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let t = |p: &str| tmp.path().join(p).to_str().unwrap().to_string();
    run_ok(&["index", "--logs", "fixtures/guide/logs", "--tz", "UTC", "--out", &t("a/logs")]);
    run_ok(&["index", "--history", "fixtures/guide/history", "--tz", "Europe/Berlin", "--out", &t("a/h")]);
    let said = refused(&["audit", "--index", &t("a"), "--out", &t("out")]);
    assert!(said.contains("built with different options") && said.contains("--tz Europe/Berlin in"), "{said}");
    assert!(said.contains("UTC in"), "{said}");
    run_ok(&["index", "--history", "fixtures/guide/history", "--tz", "UTC", "--out", &t("b/h")]);
    let said = refused(&["audit", "--index", &t("b"), "--out", &t("out")]);
    assert!(said.contains("no shard holds the logs"), "{said}");
    let said =
        refused(&["audit", "--index", &t("a/logs"), "--index", &t("b/h"), "--index", &t("a/logs"), "--out", &t("out")]);
    assert!(said.contains("given twice"), "{said}");
    run_ok(&["index", "--logs", "fixtures/guide/logs", "--tz", "UTC", "--out", &t("b/logs2")]);
    run_ok(&["index", "--logs", "fixtures/guide/logs", "--tz", "UTC", "--out", &t("b/logs")]);
    let said = refused(&["audit", "--index", &t("b"), "--out", &t("out")]);
    assert!(said.contains("the logs are in more than one shard"), "{said}");
    std::fs::remove_dir_all(tmp.path().join("b/logs2")).unwrap();
    std::fs::create_dir(tmp.path().join("b/half-built")).unwrap();
    let said = refused(&["audit", "--index", &t("b"), "--out", &t("out")]);
    assert!(said.contains("half-built is none (a shard whose build did not finish?)"), "{said}");
    std::fs::remove_dir(tmp.path().join("b/half-built")).unwrap();
    let said = run_ok(&["audit", "--index", &t("b"), "--format", "csv", "--out", &t("out")]);
    assert!(said.contains("(2 shards)"), "{said}");
}
