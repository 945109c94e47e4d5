//! `report.html` through the real binary and a real browser (headless Chromium, installed by
//! `scripts/install-chromium`): self-contained, every export shown, no console error, and
//! hostile ids from the logs and the history shown as text, never run.

use std::path::Path;
use std::process::Command;

use crate::common::*;
use serde_json::json;

fn chromium() -> String {
    let install = Command::new(root().join("scripts/install-chromium")).output().expect("run scripts/install-chromium");
    assert!(install.status.success(), "scripts/install-chromium failed:\n{}", String::from_utf8_lossy(&install.stderr));
    String::from_utf8(install.stdout).unwrap().trim().to_string()
}

/// The page's DOM after its scripts ran, and the browser's console output.
fn render(browser: &str, page: &Path) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=3000", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let console: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Content Security Policy") || l.contains("Refused"))
        .collect::<Vec<_>>()
        .join("\n");
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

#[test]
fn guide_report_loads_in_a_browser_and_shows_every_export() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let args = ["audit", "--logs", "fixtures/guide/logs", "--history", "fixtures/guide/history", "--tz", "UTC"];
    run_ok(&[&args[..], &["--format", "csv", "--out", out.to_str().unwrap()]].concat());
    let html = read(&out.join("report.html"));
    assert_same_file(&out.join("report.html"), &root().join("fixtures/guide/expected/report.html"));
    // Self-contained: nothing fetched from the network or another file.
    for needle in ["http://", "https://", "<link", "<img", "<iframe", " src=", "url("] {
        assert!(!html.contains(needle), "the report holds {needle}");
    }
    assert!(html.contains("http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'"));
    let (dom, console) = render(&chromium(), &out.join("report.html"));
    assert!(console.is_empty(), "console output:\n{console}");
    for export in csv_rows(&out.join("exports.csv")) {
        assert!(
            dom.contains(&format!("Export <span class=\"id\">{}</span>", export["export_id"])),
            "{}",
            export["export_id"]
        );
    }
    assert!(dom.contains("Patient <span class=\"id\">test-pt-1</span>"));
    assert!(dom.contains("Accounting of disclosures"));
    let r = Command::new(env!("CARGO_BIN_EXE_bulk-audit"))
        .args(args)
        .args(["--format", "csv", "--no-report", "--out", tmp.path().join("none").to_str().unwrap()])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(r.status.success());
    assert!(!tmp.path().join("none/report.html").exists());
}

/// Ids, URLs and scopes holding markup and script URLs, through the logs and the history: the
/// browser shows them as text; no element they spell exists and no script of theirs runs.
#[test]
fn hostile_ids_are_shown_as_text_and_never_run() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = "\"><img src=x onerror=\"document.title='pwned'\">";
    let client = "<script>document.title='pwned'</script>";
    // A patient-level export lists every Patient, whatever its id holds.
    let patient = "p<svg onload=document.title='pwned'>";
    let user = "javascript:document.title='pwned'";
    let url = "/fhir/Patient/$export?_type=Patient&x=<iframe src=javascript:alert(1)>";
    let logs = [
        json!({"ev": "w/req", "ts": "2023-03-01T12:00:00.000Z", "ctx": ctx, "w_m": "get", "w_url": url}),
        json!({"ev": "w/resp", "ts": "2023-03-01T12:00:00.050Z", "ctx": ctx, "w_m": "get", "w_url": url,
               "w_cid": client, "w_uid": user, "w_st": 202}),
    ];
    let history = [
        json!({"resourceType": "Client", "id": client, "scope": ["system/*.read <b>bold</b>"],
               "meta": {"versionId": "1", "lastUpdated": "2023-01-01T00:00:00Z"}}),
        json!({"resourceType": "Patient", "id": patient, "meta": {"versionId": "3", "lastUpdated": "2023-01-03T00:00:00Z"}}),
    ];
    let (log_path, history_path, out) =
        (tmp.path().join("logs.ndjson"), tmp.path().join("history.ndjson"), tmp.path().join("out"));
    let lines = |v: &[serde_json::Value]| v.iter().map(|l| l.to_string() + "\n").collect::<String>();
    std::fs::write(&log_path, lines(&logs)).unwrap();
    std::fs::write(&history_path, lines(&history)).unwrap();
    let args = ["audit", "--logs", log_path.to_str().unwrap(), "--history", history_path.to_str().unwrap()];
    run_ok(&[&args[..], &["--format", "csv", "--out", out.to_str().unwrap()]].concat());
    let rows = csv_rows(&out.join("resources.csv"));
    assert!(rows.iter().any(|r| r["patient_id"] == patient), "the hostile patient is exported: {rows:?}");
    let (dom, console) = render(&chromium(), &out.join("report.html"));
    assert!(console.is_empty(), "console output:\n{console}");
    assert!(dom.contains("<title>bulk-audit report</title>"), "a hostile script changed the title");
    for element in ["<img", "<svg", "<iframe", "<b>bold"] {
        assert!(!dom.contains(element), "{element} became an element");
    }
    assert_eq!(dom.matches("<script").count(), 1, "only the report's own script");
    // Shown as text, escaped.
    for text in [
        "&lt;script&gt;document.title='pwned'&lt;/script&gt;",
        "p&lt;svg onload=document.title='pwned'&gt;",
        "javascript:document.title='pwned'",
    ] {
        assert!(dom.contains(text), "{text} not shown");
    }
}

/// `bulk-audit disclosures --format html`: one page, every patient of the audit shown, loading in
/// the browser without a console error.
#[test]
fn disclosures_page_loads_and_shows_every_patient() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let args = ["audit", "--logs", "fixtures/field/aidbox/logs", "--history", "fixtures/field/aidbox/history"];
    run_ok(&[&args[..], &["--format", "csv", "--no-report", "--out", out.to_str().unwrap()]].concat());
    let page = tmp.path().join("disclosures.html");
    run_ok(&["disclosures", "--audit", out.to_str().unwrap(), "--format", "html", "--out", page.to_str().unwrap()]);
    let (dom, console) = render(&chromium(), &page);
    assert!(console.is_empty(), "console output:\n{console}");
    let patients: std::collections::BTreeSet<String> = csv_rows(&out.join("resources.csv"))
        .into_iter()
        .map(|r| r["patient_id"].clone())
        .filter(|p| !p.is_empty())
        .collect();
    assert!(patients.len() >= 3);
    for p in patients {
        assert!(dom.contains(&format!("Patient <span class=\"id\">{p}</span>")), "{p}");
    }
}
