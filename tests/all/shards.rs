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
    let said = Bulk::audit_index(t("b")).args(["--format", "csv"]).out(t("out")).ok();
    assert!(said.contains("(2 shards)"), "{said}");
}

/// Indexes `file` in parts (`index --history FILE --lines …`), cut after each line of `cuts`,
/// the last part running to the end: `idx/h-00`, `idx/h-01`, … in order.
fn index_in_line_ranges(idx: &Path, file: &Path, cuts: &[u64], rules: &[&str]) {
    let firsts = [1].into_iter().chain(cuts.iter().map(|c| c + 1));
    let lasts = cuts.iter().map(|c| c.to_string()).chain([String::new()]);
    let ranges: Vec<String> = firsts.zip(lasts).map(|(first, last)| format!("{first}..{last}")).collect();
    for (i, range) in ranges.iter().enumerate() {
        Bulk::new("index")
            .arg("--history")
            .arg(file)
            .args(["--lines", range])
            .args(rules)
            .out(idx.join(format!("h-{i:02}")))
            .ok();
    }
}

/// A file too big for one task, indexed in parts (`index --lines`): the field pg_dump cut into
/// three runs of lines (its COPY blocks split between them), and a zstd NDJSON file of more than
/// one read block (4 MiB), so that whole blocks fall before and after a part, cut at arbitrary
/// lines. The union writes the same bytes as one audit of the file, manifest included (the parts
/// are one input read whole). A part left out or a line in two parts is refused, naming the
/// lines; so are --lines over documents that span lines, and over more than one file.
#[test]
fn a_file_indexed_in_line_ranges_audits_as_one() {
    let tmp = tempfile::tempdir().unwrap();
    let lines: Vec<String> = history_lines(&root().join("fixtures/synthea/history"));
    let mut text = String::new();
    while text.len() < 5 << 20 {
        for l in &lines {
            text.push_str(l);
            text.push('\n');
        }
    }
    let total = text.lines().count() as u64;
    let big = tmp.path().join("big.ndjson.zst");
    std::fs::write(&big, zstd::encode_all(text.as_bytes(), 3).unwrap()).unwrap();
    let pg = root().join("fixtures/field/kibana-es-pg/history/pg_dump.sql");
    for (name, logs, file, cuts, rules) in [
        ("pg", "fixtures/field/kibana-es-pg/logs", pg.as_path(), vec![40, 95], vec!["--tz", "Europe/Berlin"]),
        ("big", "fixtures/synthea/logs", big.as_path(), vec![7, total / 3, total - 2], vec!["--tz", "UTC"]),
    ] {
        let dir = tmp.path().join(name);
        let idx = dir.join("idx");
        Bulk::new("index").args(["--logs", logs]).args(&rules).out(idx.join("logs")).ok();
        index_in_line_ranges(&idx, file, &cuts, &rules);
        let outputs = ["--format", "csv", "--with-resource"];
        let whole = dir.join("whole");
        Bulk::new("audit")
            .args(["--logs", logs])
            .arg("--history")
            .arg(file)
            .args(&rules)
            .args(outputs)
            .out(&whole)
            .ok();
        let sharded = dir.join("sharded");
        Bulk::audit_index(&idx).args(outputs).out(&sharded).ok();
        assert_same_folders(&whole, &sharded);
        assert!(read(&sharded.join("resources.csv")).lines().count() > 1, "{name}: no row");
    }
    // The big file's second part left out, then replaced by one overlapping the third.
    let idx = tmp.path().join("big/idx");
    std::fs::remove_dir_all(idx.join("h-01")).unwrap();
    let said = Bulk::audit_index(&idx).out(tmp.path().join("gap")).fails(1);
    assert!(
        said.contains(&format!("lines 8..{} of history file", total / 3)) && said.contains("are in no shard"),
        "{said}"
    );
    Bulk::new("index")
        .arg("--history")
        .arg(&big)
        .args(["--lines", &format!("8..{}", total / 3 + 5), "--tz", "UTC"])
        .out(idx.join("h-01"))
        .ok();
    let said = Bulk::audit_index(&idx).out(tmp.path().join("overlap")).fails(1);
    assert!(said.contains(&format!("lines {}..{} of history file", total / 3 + 1, total / 3 + 5)), "{said}");
    assert!(said.contains("are in two shards"), "{said}");
    let said = Bulk::new("index")
        .args(["--history", "fixtures/field/aidbox/history/history-bundle-fhir.json", "--lines", "1..", "--tz", "UTC"])
        .out(tmp.path().join("documents"))
        .fails(1);
    assert!(said.contains("holds documents that span lines") && said.contains("without --lines"), "{said}");
    let said = Bulk::new("index")
        .args(["--history", "fixtures/guide/history", "--lines", "1..10", "--tz", "UTC"])
        .out(tmp.path().join("many"))
        .fails(1);
    assert!(said.contains("--history names 7 files"), "{said}");
    let said = Bulk::new("index")
        .args(["--history", "fixtures/guide/history", "--lines", "0..3"])
        .out(tmp.path().join("zero"))
        .fails(1);
    assert!(said.contains("numbered from 1"), "{said}");
}
