//! `sql/audit.sql` on DuckDB and on Spark (pyspark from PyPI, Java 17 from Debian, both installed
//! by the project's scripts) against the binary: the index of the guide, Synthea and field
//! fixtures, a generated world, and a world of edge cases (versions tied on lastUpdated, a
//! version written exactly at T, deletions, a tenant, every level, `_since`/`_until`, both
//! boundaries and every non-compartment policy). Each engine's rows must equal the resources
//! table of the audit of the dumps: typed, both ways, in order.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use bulk_audit_world::{self as world, WorldFormat, WorldSpec};
use serde_json::{json, Value};

/// The kickoffs' T: versions are written before, at and after it.
const T: &str = "2023-02-10T00:00:00.000Z";

fn version(rtype: &str, id: &str, vid: &str, lu: &str, mut body: Value) -> String {
    body["resourceType"] = json!(rtype);
    body["id"] = json!(id);
    body["meta"] = json!({"versionId": vid, "lastUpdated": lu});
    body.to_string()
}

fn deletion(rtype: &str, id: &str, vid: &str, lu: &str) -> String {
    json!({"request": {"method": "DELETE", "url": format!("{rtype}/{id}/_history/{vid}")}, "response": {"lastModified": lu}})
        .to_string()
}

/// Logs and history (FHIR resources with meta, Aidbox log lines) of the edge cases.
fn edge_world(dir: &Path) -> (PathBuf, PathBuf) {
    let subject = |p: &str| json!({"subject": {"reference": format!("Patient/{p}")}, "status": "final"});
    let history = [
        version("Client", "c1", "1", "2023-01-01T00:00:00Z", json!({"scope": "system/*.read"})),
        version(
            "Group",
            "g1",
            "2",
            "2023-01-02T00:00:00Z",
            json!({"type": "person", "actual": true, "member": [
                {"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p2"}},
                {"entity": {"reference": "Group/g2"}}]}),
        ),
        version(
            "Group",
            "g2",
            "3",
            "2023-01-02T00:00:00Z",
            json!({"type": "person", "actual": true, "member": [
            {"entity": {"reference": "Patient/p3"}}]}),
        ),
        version("Patient", "p1", "4", "2023-01-03T00:00:00Z", json!({})),
        version("Patient", "p2", "5", "2023-01-03T00:00:00Z", json!({})),
        version("Patient", "p3", "6", "2023-01-03T00:00:00Z", json!({})),
        // Two versions tied on lastUpdated: the greater versionId (numerically: 10 > 9) wins.
        version("Observation", "o1", "9", "2023-02-01T00:00:00Z", subject("p1")),
        version("Observation", "o1", "10", "2023-02-01T00:00:00Z", subject("p2")),
        // A version written exactly at T: strict leaves it out, inclusive takes it.
        version("Observation", "o2", "20", "2023-01-20T00:00:00Z", subject("p1")),
        version("Observation", "o2", "21", T, subject("p3")),
        // Deleted before T, and deleted exactly at T.
        version("Observation", "o3", "30", "2023-01-20T00:00:00Z", subject("p2")),
        deletion("Observation", "o3", "31", "2023-02-05T00:00:00Z"),
        version("Observation", "o4", "40", "2023-01-20T00:00:00Z", subject("p1")),
        deletion("Observation", "o4", "41", T),
        // Ties on T itself, and a version after T.
        version("Condition", "k1", "50", T, subject("p2")),
        version("Condition", "k1", "51", T, subject("p1")),
        version("Condition", "k1", "52", "2023-03-01T00:00:00Z", subject("p1")),
        // In no patient's compartment though of a compartment type.
        version("Observation", "o5", "60", "2023-01-20T00:00:00Z", json!({"status": "final"})),
        // Outside the compartment: one referenced by an exported Encounter, one not.
        version(
            "Encounter",
            "e1",
            "70",
            "2023-01-25T00:00:00Z",
            json!({"subject": {"reference": "Patient/p1"}, "location": [{"location": {"reference": "Location/l1"}}]}),
        ),
        version("Location", "l1", "80", "2023-01-05T00:00:00Z", json!({})),
        version("Location", "l2", "81", "2023-01-05T00:00:00Z", json!({})),
        // A tenant's resources, and another tenant's.
        version("Observation", "o6", "90", "2023-01-20T00:00:00Z", subject("p1")),
        version("Observation", "o7", "91", "2023-01-20T00:00:00Z", subject("p1")),
    ];
    // Tenant markers live in meta, which `version` replaces: put them back.
    let history: Vec<String> = history
        .into_iter()
        .map(|line| {
            let mut v: Value = serde_json::from_str(&line).unwrap();
            if v["id"] == "o6" {
                v["meta"]["tenant"] = json!("t1");
            }
            if v["id"] == "o7" {
                v["meta"]["tenant"] = json!("t2");
            }
            v.to_string()
        })
        .collect();
    let mut logs = Vec::new();
    for (ctx, url, query) in [
        ("k-group", "/fhir/Group/g1/$export", None),
        ("k-system", "/fhir/$export", None),
        ("k-patients", "/fhir/Patient/$export", Some("patient=p1,p3")),
        ("k-every-patient", "/fhir/Patient/$export", None),
        ("k-since", "/fhir/Group/g1/$export", Some("_since=2023-01-21T00:00:00Z&_until=2023-02-08T00:00:00Z")),
        ("k-types", "/fhir/$export", Some("_type=Observation,Location")),
        ("k-tenant", "/tenant/t1/fhir/Patient/$export", None),
        ("k-missing-group", "/fhir/Group/nope/$export", None),
    ] {
        let mut req = json!({"ev": "w/req", "ts": T, "ctx": ctx, "w_m": "get", "w_url": url});
        if let Some(q) = query {
            req["w_qs"] = json!(q);
        }
        logs.push(req.to_string());
        logs.push(
            json!({"ev": "w/resp", "ts": "2023-02-10T00:00:00.040Z", "ctx": ctx, "w_m": "get", "w_url": url,
                   "w_cid": "c1", "w_st": 202})
            .to_string(),
        );
    }
    let (l, h) = (dir.join("logs"), dir.join("history.ndjson"));
    std::fs::create_dir(&l).unwrap();
    std::fs::write(l.join("aidbox.ndjson"), logs.join("\n") + "\n").unwrap();
    // An Elasticsearch search response on one line: its two kickoffs, logged without `ctx`, are
    // both named `es.json:1` — export ids repeat, and each must keep its own types and patients.
    let hit = |url: &str, qs: &str| {
        json!({"_source": {"ev": "w/req", "ts": "2023-02-12T00:00:00Z", "w_m": "get", "w_url": url, "w_qs": qs,
                           "w_cid": "c1"}})
    };
    let response =
        json!({"hits": {"hits": [hit("/fhir/Patient/$export", "_type=Patient"), hit("/fhir/Group/g2/$export", "")]}});
    std::fs::write(l.join("es.json"), format!("{response}\n")).unwrap();
    std::fs::write(&h, history.join("\n") + "\n").unwrap();
    (l, h)
}

/// Indexes the inputs and audits the dumps with the same options (Parquet); the pair for
/// tests/sql/parity.py.
fn case(tmp: &Path, name: &str, logs: &str, history: &str, rules: &[&str]) -> String {
    let (idx, out) = (tmp.join(format!("{name}-index")), tmp.join(format!("{name}-audit")));
    let inputs = ["--logs", logs, "--history", history];
    run_ok(&[&["index"], &inputs[..], rules, &["--out", idx.to_str().unwrap()]].concat());
    run_ok(
        &[&["audit"], &inputs[..], rules, &["--no-report", "--format", "parquet", "--out", out.to_str().unwrap()]]
            .concat(),
    );
    format!("{}={}", idx.display(), out.display())
}

/// The history cut into shards at arbitrary lines (with a copied and a differing version),
/// indexed one shard per part beside the logs' shard, planned, and audited from the dumps of every
/// part; the pair (`IDX::PLAN=AUDIT`) for tests/sql/parity.py.
fn sharded_case(tmp: &Path, name: &str, logs: &str, history: &Path, rules: &[&str]) -> String {
    let parts = cut_history(history, &tmp.join(format!("{name}-parts")), 22);
    let (idx, plan, out) =
        (tmp.join(format!("{name}-shards")), tmp.join(format!("{name}-plan")), tmp.join(format!("{name}-audit")));
    let parts: Vec<&str> = parts.iter().map(|p| p.to_str().unwrap()).collect();
    index_in_shards(&idx, logs, &parts.iter().map(|p| vec![*p]).collect::<Vec<_>>(), rules);
    run_ok(&["plan", "--index", idx.to_str().unwrap(), "--out", plan.to_str().unwrap()]);
    let mut audit = vec!["audit", "--logs", logs, "--history"];
    audit.extend(&parts);
    audit.extend_from_slice(rules);
    audit.extend_from_slice(&["--no-report", "--format", "parquet", "--out", out.to_str().unwrap()]);
    run_ok(&audit);
    format!("{}::{}={}", idx.display(), plan.display(), out.display())
}

#[test]
fn sql_on_duckdb_and_spark_gives_the_binarys_rows() {
    let python = readers_python();
    let java_home = java_home();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (logs, history) = edge_world(t);
    let (logs, history) = (logs.to_str().unwrap(), history.to_str().unwrap());
    let generated = t.join("world");
    let spec = WorldSpec {
        synthea: root().join("data/synthea-r4"),
        clones: 1,
        patients: Some(40),
        max_per_type: Some(20),
        noise_requests: 300,
        seed: 7,
        format: WorldFormat::Mixed,
    };
    world::write(&world::generate(&spec).unwrap(), &generated, WorldFormat::Mixed).unwrap();
    let (wl, wh) = (generated.join("logs"), generated.join("history"));
    let (wl, wh) = (wl.to_str().unwrap(), wh.to_str().unwrap());
    let pairs = [
        case(t, "edges-strict", logs, history, &[]),
        case(t, "edges-inclusive", logs, history, &["--boundary", "inclusive", "--non-compartment", "referenced"]),
        case(t, "edges-none", logs, history, &["--non-compartment", "none", "--wildcard", "all"]),
        case(t, "guide", "fixtures/guide/logs", "fixtures/guide/history", &["--tz", "UTC"]),
        case(t, "synthea", "fixtures/synthea/logs", "fixtures/synthea/history", &["--tz", "UTC"]),
        case(t, "aidbox", "fixtures/field/aidbox/logs", "fixtures/field/aidbox/history", &[]),
        case(
            t,
            "kibana-es-pg",
            "fixtures/field/kibana-es-pg/logs",
            "fixtures/field/kibana-es-pg/history",
            &["--tz", "Europe/Berlin"],
        ),
        case(t, "world", wl, wh, &["--tz", "UTC"]),
        case(
            t,
            "world-referenced",
            wl,
            wh,
            &["--tz", "UTC", "--non-compartment", "referenced", "--skip-inactive-members"],
        ),
        sharded_case(
            t,
            "synthea-shards",
            "fixtures/synthea/logs",
            &root().join("fixtures/synthea/history"),
            &["--tz", "UTC"],
        ),
        sharded_case(
            t,
            "world-shards",
            wl,
            &generated.join("history"),
            &["--tz", "UTC", "--non-compartment", "referenced"],
        ),
    ];
    let check = Command::new(&python)
        .env("JAVA_HOME", &java_home)
        .env("TZ", "UTC")
        .arg(root().join("tests/sql/parity.py"))
        .args(&pairs)
        .output()
        .expect("run tests/sql/parity.py");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{said}{}", String::from_utf8_lossy(&check.stderr));
    for engine in ["duckdb", "spark"] {
        let same = said.lines().filter(|l| l.starts_with(engine) && l.contains("the same as the binary's")).count();
        assert_eq!(same, pairs.len() * 3, "{said}");
    }
    // The edge cases are really there: rows at T on one boundary only, from both tied versions'
    // resources, and none from deletions.
    let rows = |name: &str| {
        let out = t.join(format!("{name}-csv"));
        let idx = t.join(format!("{name}-index"));
        Bulk::audit_index(&idx).args(["--format", "csv"]).out(&out).ok();
        read(&out.join("resources.csv"))
    };
    let (all_strict, all_inclusive) = (rows("edges-strict"), rows("edges-inclusive"));
    // The kickoffs at T (the two in es.json come two days later).
    let at_t = |text: &str| text.lines().filter(|l| !l.contains("es.json:1,")).collect::<Vec<_>>().join("\n");
    let (strict, inclusive) = (at_t(&all_strict), at_t(&all_inclusive));
    assert!(!strict.contains(",Observation,o2,21,") && strict.contains(",Observation,o2,20,"), "{strict}");
    assert!(inclusive.contains(",Observation,o2,21,"), "{inclusive}");
    assert!(strict.contains(",Observation,o1,10,") && !strict.contains(",Observation,o1,9,"), "{strict}");
    assert!(!strict.contains(",Condition,k1,"), "{strict}");
    assert!(inclusive.contains(",Condition,k1,51,") && !inclusive.contains(",Condition,k1,50,"), "{inclusive}");
    assert!(strict.contains(",Observation,o4,40,") && !inclusive.contains(",Observation,o4,"), "{inclusive}");
    assert!(!strict.contains(",Observation,o3,") && strict.contains("k-tenant"), "{strict}");
    assert!(!strict.lines().any(|l| l.starts_with("k-tenant") && l.contains(",o7,")), "{strict}");
    // --non-compartment referenced: at group level only the Location an exported Encounter names.
    let group = |l: &&str| l.starts_with("k-group,");
    assert!(inclusive.lines().filter(group).any(|l| l.contains(",Location,l1,")), "{inclusive}");
    // The two kickoffs named es.json:1: the patient-level one sends Patients only, the group one
    // the whole compartment of g2's member p3.
    let es: Vec<&str> = all_strict.lines().filter(|l| l.contains("es.json:1,")).collect();
    assert!(es.iter().any(|l| l.contains(",patient,") && l.contains(",Patient,p1,")), "{all_strict}");
    assert!(es.iter().filter(|l| l.contains(",patient,")).all(|l| l.contains(",Patient,")), "{all_strict}");
    assert!(es.iter().any(|l| l.contains(",group,g2,p3,Patient,p3,")), "{all_strict}");
    assert!(!es.iter().any(|l| l.contains(",group,g2,p1,")), "{all_strict}");
    assert!(!inclusive.lines().filter(group).any(|l| l.contains(",Location,l2,")), "{inclusive}");
    assert!(strict.lines().filter(group).any(|l| l.contains(",Location,l2,")), "{strict}");
}

/// Spark 4 reads every table of an index (as the audit's own tables, in tests/all/readers.rs).
#[test]
fn spark_reads_every_index_table() {
    let python = readers_python();
    let java_home = java_home();
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    let args = ["index", "--logs", "fixtures/field/aidbox/logs", "--history", "fixtures/field/aidbox/history"];
    run_ok(&[&args[..], &["--out", idx.to_str().unwrap()]].concat());
    let script = "import sys, pathlib\n\
        sys.path.insert(0, sys.argv[2])\n\
        import importlib.util as u\n\
        spec = u.spec_from_file_location('spark_audit', sys.argv[2] + '/spark-audit.py')\n\
        m = u.module_from_spec(spec); spec.loader.exec_module(m)\n\
        spark = m.session('local[1]')\n\
        for t in m.INDEX_TABLES:\n\
        \x20   n = spark.read.parquet(str(pathlib.Path(sys.argv[1]) / (t + '.parquet'))).count()\n\
        \x20   print(f'{t} {n} rows read by Spark 4')\n";
    let check = Command::new(&python)
        .env("JAVA_HOME", &java_home)
        .env("TZ", "UTC")
        .args(["-c", script])
        .arg(&idx)
        .arg(root().join("scripts"))
        .output()
        .expect("run pyspark");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{said}{}", String::from_utf8_lossy(&check.stderr));
    let tables = std::fs::read_dir(&idx)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "parquet"))
        .count();
    assert_eq!(said.lines().filter(|l| l.ends_with("rows read by Spark 4")).count(), tables, "{said}");
    assert!(said.contains("versions ") && !said.contains("versions 0 rows"), "{said}");
}

/// The index's `body_sha256` is the SHA-256 of the body `audit --with-resource` writes, for every
/// exported version (checked in DuckDB); deletions have none.
#[test]
fn body_hashes_match_the_bodies_written() {
    let python = readers_python();
    let tmp = tempfile::tempdir().unwrap();
    let (idx, out) = (tmp.path().join("idx"), tmp.path().join("out"));
    let inputs = ["--logs", "fixtures/synthea/logs", "--history", "fixtures/synthea/history", "--tz", "UTC"];
    run_ok(&[&["index"], &inputs[..], &["--out", idx.to_str().unwrap()]].concat());
    let (i, o) = (idx.to_str().unwrap(), out.to_str().unwrap());
    Bulk::audit_index(i).args(["--with-resource", "--format", "csv", "--no-report"]).out(o).ok();
    let script = "import duckdb, sys\n\
        i, o = sys.argv[1], sys.argv[2]\n\
        print(*duckdb.sql(f\"\"\"SELECT count(*), count(v.body_sha256),\n\
          count(*) FILTER (WHERE v.body_sha256 = sha256(r.resource)),\n\
          (SELECT count(*) FROM read_parquet('{i}/versions.parquet') WHERE deleted AND body_sha256 IS NOT NULL),\n\
          (SELECT count(*) FROM read_parquet('{i}/versions.parquet') WHERE NOT deleted AND body_sha256 IS NULL)\n\
          FROM read_csv('{o}/resources.csv', all_varchar=true) r\n\
          JOIN read_parquet('{i}/versions.parquet') v\n\
            ON v.resource_type = r.resource_type AND v.resource_id = r.resource_id AND v.version_id = r.version_id\n\
          \"\"\").fetchall()[0])\n";
    let check = Command::new(&python).args(["-c", script, i, o]).output().expect("run duckdb");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{said}{}", String::from_utf8_lossy(&check.stderr));
    let n: Vec<u64> = said.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert!(n[0] > 300, "{said}");
    assert_eq!(
        (n[1], n[2], n[3], n[4]),
        (n[0], n[0], 0, 0),
        "rows, hashed, matching, deletions hashed, bodies unhashed: {said}"
    );
}

/// The SQL path never shows a gap as an all-clear: `scripts/duckdb-audit.py` says, beside the
/// rows, which exports the index marks incomplete and why.
#[test]
fn duckdb_audit_says_which_exports_are_incomplete() {
    let python = readers_python();
    let tmp = tempfile::tempdir().unwrap();
    let history = guide_history_without(tmp.path(), "location");
    let idx = tmp.path().join("idx");
    let args = ["index", "--logs", "fixtures/guide/logs", "--history", history.to_str().unwrap(), "--tz", "UTC"];
    run_ok(&[&args[..], &["--out", idx.to_str().unwrap()]].concat());
    let out = tmp.path().join("sql-out");
    let said = Command::new(&python).arg(root().join("scripts/duckdb-audit.py")).arg(&idx).arg(&out).output().unwrap();
    let stdout = String::from_utf8_lossy(&said.stdout);
    assert!(said.status.success(), "{stdout}{}", String::from_utf8_lossy(&said.stderr));
    assert!(stdout.contains("1 of 2 exports incomplete"), "{stdout}");
    assert!(stdout.contains("incomplete: export e2b9d4: type Location not in the history"), "{stdout}");
    let complete = tmp.path().join("complete");
    let idx2 = tmp.path().join("idx2");
    let args = ["index", "--logs", "fixtures/guide/logs", "--history", "fixtures/guide/history", "--tz", "UTC"];
    run_ok(&[&args[..], &["--out", idx2.to_str().unwrap()]].concat());
    let said =
        Command::new(&python).arg(root().join("scripts/duckdb-audit.py")).arg(&idx2).arg(&complete).output().unwrap();
    assert!(String::from_utf8_lossy(&said.stdout).contains("all 2 exports complete"));
}

/// An index under a path holding a wildcard of DuckDB's and Spark's readers (`idx[1]` matches
/// `idx1`, another index) is refused by both scripts before a row is read: they would read
/// another file than the one verified.
#[test]
fn sql_scripts_refuse_an_index_path_the_readers_take_as_a_pattern() {
    let python = readers_python();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (pattern, other) = (t.join("idx[1]"), t.join("idx1"));
    let history = guide_history_without(t, "location");
    for (idx, history) in [(&pattern, Path::new("fixtures/guide/history")), (&other, history.as_path())] {
        let args = ["index", "--logs", "fixtures/guide/logs", "--history", history.to_str().unwrap(), "--tz", "UTC"];
        run_ok(&[&args[..], &["--out", idx.to_str().unwrap()]].concat());
    }
    for script in ["duckdb-audit.py", "spark-audit.py"] {
        let out = t.join(format!("{script}-out"));
        let said =
            Command::new(&python).arg(root().join("scripts").join(script)).arg(&pattern).arg(&out).output().unwrap();
        let stderr = String::from_utf8_lossy(&said.stderr);
        assert!(!said.status.success(), "{script} read {}: {stderr}", pattern.display());
        assert!(stderr.contains("its path holds [ ], which DuckDB and Spark read as a pattern"), "{script}: {stderr}");
        assert!(!out.exists(), "{script} wrote {}", out.display());
    }
}

/// `scripts/duckdb-audit.py --format csv` writes the three tables as the binary does, byte for
/// byte (times in its form, to the nanosecond where the binary's are; lists as space-separated
/// items; a `#` unquoted), owner-only, on the guide and on Synthea.
#[test]
fn duckdb_csv_is_the_binarys_csv() {
    let python = readers_python();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    for (name, logs, history) in [
        ("guide", "fixtures/guide/logs", "fixtures/guide/history"),
        ("synthea", "fixtures/synthea/logs", "fixtures/synthea/history"),
    ] {
        let (idx, out, sql) =
            (t.join(format!("{name}-idx")), t.join(format!("{name}-out")), t.join(format!("{name}-sql")));
        let inputs = ["--logs", logs, "--history", history, "--tz", "UTC"];
        run_ok(&[&["index"], &inputs[..], &["--out", idx.to_str().unwrap()]].concat());
        run_ok(
            &[&["audit"], &inputs[..], &["--format", "csv", "--no-report", "--out", out.to_str().unwrap()]].concat(),
        );
        let wrote = Command::new(&python)
            .arg(root().join("scripts/duckdb-audit.py"))
            .args([&idx, &sql])
            .args(["--format", "csv"])
            .output()
            .unwrap();
        assert!(wrote.status.success(), "{}", String::from_utf8_lossy(&wrote.stderr));
        for table in ["resources", "exports", "findings"] {
            let file = sql.join(format!("{table}.csv"));
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "{}", file.display());
            let binary = read(&out.join(format!("{table}.csv")));
            assert!(binary.lines().count() > 1, "{name}: the binary's {table} has rows");
            assert!(read(&file) == binary, "{name}: DuckDB's {table}.csv differs from the binary's");
        }
    }
}

/// `scripts/duckdb-audit.py` over a folder of shards: within a memory limit it gives the binary's
/// row count; it refuses the union without its plan, a plan of other shards, and a shard whose
/// file changed after it was written.
#[test]
fn duckdb_over_shards_checks_the_plan_and_every_file() {
    let python = readers_python();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let parts = cut_history(&root().join("fixtures/synthea/history"), &t.join("parts"), 5);
    let idx = t.join("idx");
    let one_each: Vec<Vec<&Path>> = parts.iter().map(|p| vec![p.as_path()]).collect();
    index_in_shards(&idx, "fixtures/synthea/logs", &one_each, &["--tz", "UTC"]);
    let (i, plan) = (idx.to_str().unwrap(), t.join("plan"));
    let said = run_ok(&["plan", "--index", i, "--out", plan.to_str().unwrap()]);
    assert!(said.contains(&format!("12 kickoffs of {} shards planned", parts.len() + 1)), "{said}");
    let audit = t.join("audit");
    Bulk::audit_index(i).args(["--format", "csv", "--no-report"]).out(&audit).ok();
    let binary_rows = read(&audit.join("resources.csv")).lines().count() - 1;
    let findings = read(&audit.join("findings.csv"));
    let binary_findings = findings.lines().count() - 1;
    // One of the differing copies is of a type the plan does not read: the SQL finds it.
    let small = ["AccessPolicy", "BulkExportStatus", "Client", "Group", "Patient"];
    let conflicts: Vec<&str> = findings.lines().filter(|l| l.starts_with(",version-conflict,")).collect();
    assert!(conflicts.iter().any(|l| !small.iter().any(|t| l.contains(&format!(",{t},")))), "{findings}");
    let duck = |out: &str, extra: &[&str]| {
        let mut c = Command::new(&python);
        c.arg(root().join("scripts/duckdb-audit.py")).arg(&idx).arg(t.join(out)).args(extra);
        c.output().unwrap()
    };
    let ok = duck("sql-out", &["--plan", plan.to_str().unwrap(), "--memory-limit", "300MB", "--format", "csv"]);
    let said = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{said}{}", String::from_utf8_lossy(&ok.stderr));
    let counted = format!("12 exports, {binary_rows} resource rows, {binary_findings} findings");
    assert!(said.starts_with(&counted), "{said}");
    for table in ["resources", "exports", "findings"] {
        let file = format!("{table}.csv");
        assert!(read(&t.join("sql-out").join(&file)) == read(&audit.join(&file)), "{table} differs from the binary's");
    }
    let refused = |out: &str, extra: &[&str], why: &str| {
        let r = duck(out, extra);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success() && err.contains(why), "{why}: {err}");
        assert!(!t.join(out).exists(), "nothing is written");
    };
    refused("a", &[], "give the plan of their union");
    // The plan of all but the last shard.
    let fewer = t.join("fewer");
    std::fs::create_dir(&fewer).unwrap();
    let last = format!("h-{:02}", parts.len() - 1);
    for e in std::fs::read_dir(&idx).unwrap() {
        let e = e.unwrap();
        if e.file_name() != last.as_str() {
            std::os::unix::fs::symlink(e.path(), fewer.join(e.file_name())).unwrap();
        }
    }
    let other = t.join("other-plan");
    run_ok(&["plan", "--index", fewer.to_str().unwrap(), "--out", other.to_str().unwrap()]);
    refused("b", &["--plan", other.to_str().unwrap()], "is the plan of other shards");
    let versions = idx.join("h-00/versions.parquet");
    let mut bytes = std::fs::read(&versions).unwrap();
    bytes.push(0);
    std::fs::write(&versions, bytes).unwrap();
    refused("c", &["--plan", plan.to_str().unwrap()], "does not match its SHA-256");
}

/// `scripts/spark-index.py` builds the shards on Spark's executors (`local[2]`), one task per
/// 20 lines of each history file (`--lines-per-task`; a Bundle file whole) with the binary
/// shipped to them, then their plan: the SQL over them gives the rows of the binary's audit of
/// the same files. A file that fails names itself, and nothing is planned.
#[test]
fn spark_builds_the_shards_and_their_plan() {
    let python = readers_python();
    let java_home = java_home();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let logs = root().join("fixtures/synthea/logs");
    let history = root().join("fixtures/synthea/history");
    let spark_index = |history: &Path, out: &Path| {
        Command::new(&python)
            .env("JAVA_HOME", &java_home)
            .env("TZ", "UTC")
            .arg(root().join("scripts/spark-index.py"))
            .args(["--bin", env!("CARGO_BIN_EXE_bulk-audit"), "--master", "local[2]", "--tz", "UTC"])
            .args(["--lines-per-task", "20", "--logs"])
            .arg(&logs)
            .arg("--history")
            .arg(history)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let idx = t.join("idx");
    let built = spark_index(&history, &idx);
    let said = String::from_utf8_lossy(&built.stdout);
    assert!(built.status.success(), "{said}{}", String::from_utf8_lossy(&built.stderr));
    let shards: Vec<String> =
        std::fs::read_dir(&idx).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    // Files of more than 20 lines in parts; each file's first part and the logs.
    assert!(shards.iter().any(|s| s.ends_with("-00002")), "{shards:?}");
    assert_eq!(shards.iter().filter(|s| s.ends_with("-00000")).count(), files(&history).len(), "{shards:?}");
    assert!(said.contains(&format!("{} shards -> ", shards.len())), "{said}");
    assert!(said.contains(&format!("12 kickoffs of {} shards planned", shards.len())), "{said}");
    let audit = t.join("audit");
    let (l, h) = (logs.to_str().unwrap(), history.to_str().unwrap());
    Bulk::audit(l, h).args(["--tz", "UTC", "--no-report"]).out(&audit).ok();
    let check = Command::new(&python)
        .env("TZ", "UTC")
        .arg(root().join("tests/sql/parity.py"))
        .arg("--no-spark")
        .arg(format!("{}::{}-plan={}", idx.display(), idx.display(), audit.display()))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success() && said.contains("the same as the binary's"), "{said}");
    // Spark's CSV (its part files, in order, under one header) is the binary's CSV, byte for byte.
    let csv_audit = t.join("audit-csv");
    let args = ["--tz", "UTC", "--format", "csv", "--no-report", "--out", csv_audit.to_str().unwrap()];
    run_ok(&[&["audit", "--logs", l, "--history", h][..], &args[..]].concat());
    let spark_csv = t.join("sql-csv");
    let wrote = Command::new(&python)
        .env("JAVA_HOME", &java_home)
        .env("TZ", "UTC")
        .arg(root().join("scripts/spark-audit.py"))
        .arg(&idx)
        .arg(&spark_csv)
        .arg("--plan")
        .arg(t.join("idx-plan"))
        .args(["--master", "local[2]", "--format", "csv"])
        .output()
        .unwrap();
    assert!(wrote.status.success(), "{}", String::from_utf8_lossy(&wrote.stderr));
    for table in ["resources", "exports", "findings"] {
        let binary = read(&csv_audit.join(format!("{table}.csv")));
        let mut parts: Vec<PathBuf> = std::fs::read_dir(spark_csv.join(table))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "csv"))
            .collect();
        parts.sort();
        let mut joined = binary.lines().next().unwrap().to_string() + "\n";
        for part in parts {
            joined.extend(read(&part).lines().skip(1).map(|l| l.to_string() + "\n"));
        }
        assert!(joined == binary, "Spark's {table} CSV differs from the binary's");
    }
    // A history file that is no history: its task fails, named, and nothing is planned.
    let broken = t.join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::copy(history.join("fhir/Practitioner.ndjson"), broken.join("a.ndjson")).unwrap();
    std::fs::write(broken.join("b.ndjson"), "{\"resourceType\": \"Patient\", oops}\n").unwrap();
    let failed = spark_index(&broken, &t.join("idx2"));
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success(), "{err}");
    assert!(err.contains("b.ndjson (h-00001-00000) failed with status 2") && err.contains("nothing planned"), "{err}");
    assert!(!t.join("idx2-plan").exists());
}
