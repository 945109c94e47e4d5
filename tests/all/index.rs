//! `bulk-audit index` and `audit --index` through the real binary: the audit from the index
//! writes the same bytes as the audit of the dumps (tables, manifest, report, AuditEvents,
//! bodies, reconstruction) on the fixtures; selection options apply to it; and an index of
//! other options, of another version, or whose files changed under it is refused, naming why.

use std::path::{Path, PathBuf};

use crate::common::*;

/// Indexes the inputs, audits from the dumps and from the index with the same output options,
/// and compares every file written (with `--reconstruct`, that folder too).
fn same_audit(tmp: &Path, inputs: &[&str], index_options: &[&str], audit_options: &[&str]) {
    let idx = tmp.join("idx");
    let mut args = vec!["index"];
    args.extend_from_slice(inputs);
    args.extend_from_slice(index_options);
    args.extend_from_slice(&["--out", idx.to_str().unwrap()]);
    let said = run_ok(&args);
    assert!(said.contains("versions of") && said.contains("-> "), "{said}");
    for m in [idx.join("versions.parquet"), idx.join("index.json")] {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&m).unwrap().permissions().mode() & 0o077,
            0,
            "{} is readable by others",
            m.display()
        );
    }
    let (dumps, indexed) = (tmp.join("from-dumps"), tmp.join("from-index"));
    // One --reconstruct path for both (the manifest names it); the first is moved aside.
    let (recon, recon_d) = (tmp.join("recon"), tmp.join("recon-dumps"));
    let reconstruct = audit_options.contains(&"--reconstruct");
    let opts: Vec<&str> = audit_options.iter().copied().filter(|o| *o != "--reconstruct").collect();
    let mut a = vec!["audit", "--out", dumps.to_str().unwrap()];
    a.extend_from_slice(inputs);
    a.extend_from_slice(index_options);
    a.extend_from_slice(&opts);
    if reconstruct {
        a.extend_from_slice(&["--reconstruct", recon.to_str().unwrap()]);
    }
    run_ok(&a);
    if reconstruct {
        std::fs::rename(&recon, &recon_d).unwrap();
    }
    let mut b = vec!["audit", "--index", idx.to_str().unwrap(), "--out", indexed.to_str().unwrap()];
    b.extend_from_slice(&opts);
    if reconstruct {
        b.extend_from_slice(&["--reconstruct", recon.to_str().unwrap()]);
    }
    run_ok(&b);
    assert_same_folders(&dumps, &indexed);
    // The bodies' spill files are gone before the folder is checksummed and moved into place.
    assert!(files(&dumps).iter().all(|f| !f.to_string_lossy().contains(".bodies")), "{:?}", files(&dumps));
    if reconstruct {
        assert_same_folders(&recon_d, &recon);
    }
}

#[test]
fn guide_from_the_index_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = ["--logs", "fixtures/guide/logs", "--history", "fixtures/guide/history"];
    same_audit(tmp.path(), &inputs, &["--tz", "UTC"], &["--format", "csv", "--audit-events", "--with-resource"]);
}

#[test]
fn synthea_from_the_index_is_byte_identical_with_every_rule_option() {
    let inputs = ["--logs", "fixtures/synthea/logs", "--history", "fixtures/synthea/history"];
    for (rules, outputs) in [
        (vec!["--tz", "UTC"], vec!["--format", "parquet", "--reconstruct"]),
        (
            vec!["--tz", "UTC", "--boundary", "inclusive", "--non-compartment", "referenced", "--wildcard", "all"],
            vec!["--format", "csv", "--client", "bulk-smartbox"],
        ),
        (
            vec!["--tz", "UTC", "--non-compartment", "none", "--skip-inactive-members", "--fhir-version", "r5"],
            vec!["--format", "csv", "--from", "2023-01-20", "--to", "2023-02-20"],
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        same_audit(tmp.path(), &inputs, &rules, &outputs);
    }
}

/// An export wanting a type the history lacks is incomplete with the same finding from the index.
#[test]
fn a_type_not_in_the_history_from_the_index_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let history = guide_history_without(tmp.path(), "location");
    // A type dumped empty (named, no rows) is dumped, from the index too.
    std::fs::write(history.join("Goal.ndjson"), "").unwrap();
    let inputs = ["--logs", "fixtures/guide/logs", "--history", history.to_str().unwrap()];
    same_audit(tmp.path(), &inputs, &["--tz", "UTC", "--wildcard", "all"], &["--format", "csv"]);
    let findings = read(&tmp.path().join("from-index/findings.csv"));
    assert!(findings.contains("type-not-in-history"), "{findings}");
}

#[test]
fn field_samples_from_the_index_are_byte_identical() {
    for (inputs, rules) in [
        (["--logs", "fixtures/field/aidbox/logs", "--history", "fixtures/field/aidbox/history"], vec![]),
        (
            ["--logs", "fixtures/field/kibana-es-pg/logs", "--history", "fixtures/field/kibana-es-pg/history"],
            vec!["--tz", "Europe/Berlin"],
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        same_audit(tmp.path(), &inputs, &rules, &["--format", "csv", "--audit-events", "--with-resource"]);
    }
}

/// Builds the guide's index in `tmp/idx` from a copy of its history in `tmp/history`.
fn guide_index(tmp: &Path) -> (PathBuf, PathBuf) {
    let history = guide_history_without(tmp, "");
    let idx = tmp.join("idx");
    let h = history.to_str().unwrap();
    run_ok(&["index", "--logs", "fixtures/guide/logs", "--history", h, "--tz", "UTC", "--out", idx.to_str().unwrap()]);
    (idx, history)
}

fn refused(command: Bulk) -> String {
    let out = command.run();
    // 1: refused by bulk-audit; 2: by the command-line parser (options that exclude each other).
    assert!(matches!(out.status.code(), Some(1 | 2)), "{command:?} should be refused: {out:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn an_index_of_other_options_or_another_version_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (idx, _) = guide_index(tmp.path());
    let (i, out) = (idx.to_str().unwrap(), tmp.path().join("out"));
    let o = out.to_str().unwrap();
    let err = refused(Bulk::audit_index(i).args(["--boundary", "inclusive", "--non-compartment", "none"]).out(o));
    assert!(err.contains("--boundary inclusive (the index has strict)"), "{err}");
    assert!(err.contains("--non-compartment none (the index has all)"), "{err}");
    let err = refused(Bulk::audit_index(i).args(["--tz", "Europe/Berlin"]).out(o));
    assert!(err.contains("--tz Europe/Berlin (the index has UTC)"), "{err}");
    // Given as the index has them, they are accepted (a duration however it is written).
    Bulk::audit_index(i).args(["--tz", "UTC", "--boundary", "strict", "--max-log-gap", "1d"]).out(o).ok();
    let err = refused(Bulk::audit_index(i).args(["--max-log-gap", "2d"]).out(o));
    assert!(err.contains("--max-log-gap 2d (the index has 24h)"), "{err}");
    let err = refused(Bulk::audit_index(i).args(["--logs", "fixtures/guide/logs"]).out(o));
    assert!(err.contains("--logs") && err.contains("--index"), "{err}");

    let info = idx.join("index.json");
    let text = read(&info);
    std::fs::write(
        &info,
        text.replace(&format!("\"version\": \"{}\"", env!("CARGO_PKG_VERSION")), "\"version\": \"0.0.1\""),
    )
    .unwrap();
    let err = refused(Bulk::audit_index(i).out(o));
    assert!(err.contains("built by bulk-audit 0.0.1") && err.contains("build the index again"), "{err}");
    let err = refused(Bulk::audit_index(tmp.path().to_str().unwrap()).out(o));
    assert!(err.contains("not a bulk-audit index"), "{err}");
}

#[test]
fn bodies_are_reread_only_from_the_files_as_indexed() {
    let tmp = tempfile::tempdir().unwrap();
    let (idx, history) = guide_index(tmp.path());
    let (i, out) = (idx.to_str().unwrap(), tmp.path().join("out"));
    let o = out.to_str().unwrap();
    let changed = history.join("patient_history.ndjson");
    let mut text = read(&changed);
    text.push('\n');
    std::fs::write(&changed, &text).unwrap();
    let err = refused(Bulk::audit_index(i).args(["--with-resource"]).out(o));
    assert!(err.contains("patient_history.ndjson changed") && err.contains("when indexed"), "{err}");
    std::fs::remove_file(&changed).unwrap();
    let err = refused(Bulk::audit_index(i).args(["--reconstruct", tmp.path().join("r").to_str().unwrap()]).out(o));
    assert!(err.contains("patient_history.ndjson is gone"), "{err}");
    // Without bodies the index alone answers: the dumps are not read again.
    std::fs::remove_dir_all(&history).unwrap();
    let said = Bulk::audit_index(i).args(["--format", "csv"]).out(o).ok();
    assert!(said.contains("2 exports, 4 resource rows"), "{said}");
    assert!(said.contains("resolved from the index") && said.contains("the dumps were not read"), "{said}");
    let rows = read(&out.join("resources.csv")).replace(history.to_str().unwrap(), "fixtures/guide/history");
    assert_eq!(rows, read(&root().join("fixtures/guide/expected/resources.csv")));
}

/// An index built from standard input audits like any other, but cannot give bodies: the
/// stream cannot be read again, and the refusal says so.
#[test]
fn an_index_of_a_stream_audits_but_refuses_bodies() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    let mut history = String::new();
    for f in ["observation_history.ndjson", "patient_history.ndjson", "location_history.ndjson"] {
        history.push_str(&read(&root().join("fixtures/guide/history").join(f)));
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bulk-audit"))
        .args(["index", "--logs", "fixtures/guide/logs", "--history", "-", "--tz", "UTC", "--out"])
        .arg(&idx)
        .current_dir(root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(history.as_bytes()).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let (i, out) = (idx.to_str().unwrap(), tmp.path().join("out"));
    let said = Bulk::audit_index(i).args(["--format", "csv"]).out(out.to_str().unwrap()).ok();
    assert!(said.contains("resource rows"), "{said}");
    let err = refused(Bulk::audit_index(i).args(["--with-resource"]).out(out.to_str().unwrap()));
    assert!(err.contains("history input - was a stream") && err.contains("build the index from files"), "{err}");
}

/// A damaged or tampered index is refused before it is believed, naming the file, with exit 1 and
/// nothing written: a flipped bit, a table deleted, added or copied in from another index, an
/// edited index.json (even with SHA256SUMS recomputed to match), and a table that passes every
/// checksum yet cannot be decoded (never a panic).
#[test]
fn a_damaged_or_tampered_index_is_refused_naming_the_file() {
    use sha2::Digest as _;
    let tmp = tempfile::tempdir().unwrap();
    let (idx, _) = guide_index(tmp.path());
    let other = tmp.path().join("other");
    let args = ["index", "--logs", "fixtures/synthea/logs", "--history", "fixtures/synthea/history", "--tz", "UTC"];
    run_ok(&[&args[..], &["--out", other.to_str().unwrap()]].concat());
    let pristine = tmp.path().join("pristine");
    std::fs::create_dir(&pristine).unwrap();
    for f in std::fs::read_dir(&idx).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), pristine.join(f.file_name())).unwrap();
    }
    let restore = || {
        for f in std::fs::read_dir(&idx).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
        for f in std::fs::read_dir(&pristine).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), idx.join(f.file_name())).unwrap();
        }
    };
    let sha = |p: &Path| -> String {
        sha2::Sha256::digest(std::fs::read(p).unwrap()).iter().map(|b| format!("{b:02x}")).collect()
    };
    // Rewrites SHA256SUMS (and index.json's table list) to match the files as they now are: what a
    // forger would do, so the deeper checks are tried.
    let resum = |tables_too: bool| {
        if tables_too {
            let mut info: serde_json::Value = serde_json::from_str(&read(&idx.join("index.json"))).unwrap();
            for (name, hash) in info["tables"].as_object_mut().unwrap() {
                *hash = sha(&idx.join(name)).into();
            }
            std::fs::write(idx.join("index.json"), serde_json::to_string_pretty(&info).unwrap()).unwrap();
        }
        let text: String = read(&idx.join("SHA256SUMS"))
            .lines()
            .map(|l| {
                let name = l.split_once("  ").unwrap().1;
                format!("{}  {name}\n", sha(&idx.join(name)))
            })
            .collect();
        std::fs::write(idx.join("SHA256SUMS"), text).unwrap();
    };
    let (i, out) = (idx.to_str().unwrap(), tmp.path().join("out"));
    let o = out.to_str().unwrap();
    let expect_refused = |what: &str, expected: &[&str]| {
        let r = Bulk::audit_index(i).args(["--format", "csv"]).out(o).run();
        let err = String::from_utf8_lossy(&r.stderr).into_owned();
        assert_eq!(r.status.code(), Some(1), "{what}: {err}");
        for e in expected {
            assert!(err.contains(e), "{what}: {err:?} should say {e:?}");
        }
        assert!(!out.exists(), "{what}: nothing is written from an index that is not believed");
    };
    // The pristine index audits.
    Bulk::audit_index(i).args(["--format", "csv"]).out(o).ok();
    std::fs::remove_dir_all(&out).unwrap();

    let versions = idx.join("versions.parquet");
    let mut bytes = std::fs::read(&versions).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&versions, &bytes).unwrap();
    expect_refused("one flipped bit", &["versions.parquet does not match its SHA-256 in SHA256SUMS", "build it again"]);
    restore();

    std::fs::remove_file(idx.join("groups.parquet")).unwrap();
    expect_refused("a deleted table", &["groups.parquet is missing"]);
    restore();

    std::fs::write(idx.join("extra.parquet"), "x").unwrap();
    expect_refused("an added file", &["extra.parquet is not part of an index"]);
    restore();

    std::fs::copy(other.join("versions.parquet"), &versions).unwrap();
    expect_refused("a table of another index", &["versions.parquet does not match its SHA-256"]);
    resum(false);
    expect_refused("... with SHA256SUMS recomputed", &["versions.parquet is not the table index.json names"]);
    resum(true);
    expect_refused("... and index.json's list too", &["versions.parquet belongs to another index"]);
    restore();

    let info = read(&idx.join("index.json")).replace("\"boundary\": \"strict\"", "\"boundary\": \"inclusive\"");
    assert!(info.contains("inclusive"));
    std::fs::write(idx.join("index.json"), info).unwrap();
    expect_refused("edited options", &["index.json does not match its SHA-256"]);
    resum(false);
    expect_refused("... with SHA256SUMS recomputed", &["belongs to another index than this index.json"]);
    restore();

    // Damaged inside, every checksum recomputed: decoded, found wanting, refused (no panic).
    let links = idx.join("version_patients.parquet");
    let mut bytes = std::fs::read(&links).unwrap();
    let half = bytes.len() / 2;
    for b in bytes[8..half].iter_mut() {
        *b ^= 0x5a;
    }
    std::fs::write(&links, &bytes).unwrap();
    resum(true);
    expect_refused("a damaged table with its checksums", &["version_patients.parquet"]);
    restore();
    Bulk::audit_index(i).args(["--format", "csv"]).out(o).ok();
}

/// The seed of the `stored_index` fuzz target is an index this version reads (rebuild it with
/// `bulk-audit index --logs fixtures/guide/logs --history fixtures/guide/history --tz UTC --out
/// fuzz/seed/stored_index`, or all at once `fuzz/make-stored-index-seed`, when the layout changes), so the
/// fuzzer starts from a verified index, not from one refused at the first check.
#[test]
fn the_fuzz_seed_index_is_verified_and_audits_as_the_guide() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    Bulk::audit_index("fuzz/seed/stored_index").args(["--format", "csv"]).out(out.to_str().unwrap()).ok();
    assert_same_file(&out.join("resources.csv"), &root().join("fixtures/guide/expected/resources.csv"));
    for (i, name) in ["versions.parquet", "index.json", "SHA256SUMS"].iter().enumerate() {
        let seed = std::fs::read(root().join(format!("fuzz/corpus/stored_index/seed-{:02}", [0, 14, 15][i]))).unwrap();
        assert_eq!(&seed[1..], std::fs::read(root().join("fuzz/seed/stored_index").join(name)).unwrap(), "{name}");
    }
}

/// The index's kickoffs table carries each export's completeness, as the exports table has it,
/// so the SQL engines see the same answer.
#[test]
fn the_kickoffs_table_carries_completeness_as_the_exports_table_has_it() {
    use polars::prelude::*;
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    let args = ["index", "--logs", "fixtures/synthea/logs", "--history", "fixtures/synthea/history", "--tz", "UTC"];
    run_ok(&[&args[..], &["--out", idx.to_str().unwrap()]].concat());
    let out = tmp.path().join("out");
    Bulk::audit_index(idx.to_str().unwrap()).args(["--format", "csv"]).out(out.to_str().unwrap()).ok();
    let df = ParquetReader::new(std::fs::File::open(idx.join("kickoffs.parquet")).unwrap()).finish().unwrap();
    let col = |name: &str| -> Vec<String> {
        df.column(name).unwrap().str().unwrap().iter().map(|v| v.unwrap_or_default().to_string()).collect()
    };
    let from_index: std::collections::BTreeSet<(String, String, String)> = col("export_id")
        .into_iter()
        .zip(col("completeness"))
        .zip(col("incomplete_because"))
        .map(|((a, b), c)| (a, b, c))
        .collect();
    let from_audit: std::collections::BTreeSet<(String, String, String)> = csv_rows(&out.join("exports.csv"))
        .into_iter()
        .map(|e| (e["export_id"].clone(), e["completeness"].clone(), e["incomplete_because"].clone()))
        .collect();
    assert_eq!(from_index, from_audit);
    assert!(from_audit.iter().any(|(_, c, _)| c == "incomplete"), "the fixture has incomplete exports");
}
