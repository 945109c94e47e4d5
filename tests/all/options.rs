//! The command line's edge, through the real binary: every bad option fails at once, naming the
//! option, before any input is opened; and output that cannot be written is an error (exit 3),
//! never a silent success.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// Runs bulk-audit with a FIFO as `--history`: opening it for reading would block until a writer
/// comes, so a run that reads any input before checking its options hangs (and is killed).
fn run_with_fifo_history(extra: &[&str]) -> (i32, String, Duration) {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("history.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let mut args = vec!["audit", "--logs", "fixtures/guide/logs", "--history", fifo.to_str().unwrap()];
    args.extend_from_slice(extra);
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bulk-audit"))
        .args(&args)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bulk-audit");
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            return (status.code().unwrap_or(-1), stderr, start.elapsed());
        }
        if start.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("bulk-audit {extra:?} read its inputs before checking its options (it waited on the FIFO)");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn every_bad_option_fails_before_any_input_is_read_and_names_the_option() {
    let tmp = tempfile::tempdir().unwrap();
    let foreign = tmp.path().join("someone-elses");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "not ours").unwrap();
    let a_file = tmp.path().join("a-file");
    std::fs::write(&a_file, "x").unwrap();
    let out = tmp.path().join("out");
    let (foreign, a_file, out) = (foreign.to_str().unwrap(), a_file.to_str().unwrap(), out.to_str().unwrap());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--tz", "Mars/Olympus", "--out", out], "--tz: unknown time zone"),
        (vec!["--from", "last week", "--out", out], "--from:"),
        (vec!["--to", "2022-13-45", "--out", out], "--to:"),
        (vec!["--max-log-gap", "soon", "--out", out], "--max-log-gap: unreadable duration"),
        (vec!["--wildcard", "/nonexistent/types.txt", "--out", out], "--wildcard /nonexistent/types.txt: not smartbox"),
        (vec!["--out", foreign], "--out"),
        (vec!["--out", a_file], "exists and is not a folder"),
        (vec!["--out", out, "--reconstruct", foreign], "--reconstruct"),
        (vec!["--out", out, "--reconstruct", out], "the same folder, or one inside the other"),
    ];
    for (extra, message) in cases {
        let (status, stderr, took) = run_with_fifo_history(&extra);
        assert_eq!(status, 1, "{extra:?}: {stderr}");
        assert!(stderr.contains(message), "{extra:?}: {stderr:?} should contain {message:?}");
        assert!(took < Duration::from_secs(5), "{extra:?} took {took:?}");
    }
    assert!(
        std::fs::read_dir(tmp.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with("out")),
        "nothing written"
    );
}

#[test]
fn a_missing_input_path_is_named_before_any_other_input_is_read() {
    let (status, stderr, _) = run_with_fifo_history(&["--history", "/nonexistent/dump"]);
    assert_eq!(status, 2, "{stderr}");
    assert!(stderr.contains("--history /nonexistent/dump: No such file"), "{stderr}");
    let r = run(&["exports", "--logs", "/nonexistent/logs"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--logs /nonexistent/logs: No such file"), "{r:?}");
}

/// `/dev/full` takes no byte: a run whose stdout is there has not told its user anything.
#[test]
fn output_that_cannot_be_written_is_an_error() {
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let runs: [Vec<&str>; 2] = [
        vec!["exports", "--logs", "fixtures/guide/logs", "--tz", "UTC"],
        vec![
            "audit",
            "--logs",
            "fixtures/guide/logs",
            "--tz",
            "UTC",
            "--history",
            "fixtures/guide/history",
            "--format",
            "csv",
            "--out",
            out.to_str().unwrap(),
        ],
    ];
    for args in runs {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let r = Command::new(env!("CARGO_BIN_EXE_bulk-audit"))
            .args(&args)
            .current_dir(root())
            .stdout(full)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains("standard output"), "{args:?}: {stderr}");
    }
}

/// `-q` prints nothing but errors; `-v` adds each stage's timings on stderr. Neither changes
/// what is written.
#[test]
fn quiet_prints_errors_only_and_verbose_prints_stage_timings() {
    let tmp = tempfile::tempdir().unwrap();
    let audit = |flag: &str, name: &str| {
        let out = tmp.path().join(name);
        let mut args = vec!["audit", "--logs", "fixtures/guide/logs", "--tz", "UTC"];
        args.extend(["--history", "fixtures/guide/history", "--format", "csv", "--out", out.to_str().unwrap()]);
        if !flag.is_empty() {
            args.insert(0, flag);
        }
        let r = run(&args);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (text(&r.stdout), text(&r.stderr), read(&out.join("resources.csv")))
    };
    let (plain_out, plain_err, plain_rows) = audit("", "plain");
    assert!(plain_out.contains("2 exports, 4 resource rows"), "{plain_out}");
    assert!(!plain_err.contains("cpu"), "{plain_err}");

    let (quiet_out, quiet_err, quiet_rows) = audit("--quiet", "quiet");
    assert_eq!((quiet_out.as_str(), quiet_err.as_str()), ("", ""));
    assert_eq!(quiet_rows, plain_rows);

    let (verbose_out, verbose_err, verbose_rows) = audit("-v", "verbose");
    assert_eq!(verbose_out.replace("/verbose", "/plain"), plain_out);
    assert_eq!(verbose_rows, plain_rows);
    for stage in ["logs", "resources write"] {
        assert!(verbose_err.lines().any(|l| l.trim_start().starts_with(stage) && l.contains("cpu")), "{verbose_err}");
    }

    // Errors still reach stderr under --quiet.
    let r = run(&["-q", "audit", "--logs", "fixtures/guide/logs", "--history", "no/such/path", "--tz", "UTC"]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("no/such/path"));
}

/// Completions for the usual shells and the man page come from the same definition: they name
/// every subcommand and a recent option.
#[test]
fn completions_and_man_page_name_every_command() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = run_ok(&["completions", shell]);
        for word in ["audit", "disclosures", "audit-events"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    let man = run_ok(&["man"]);
    assert!(man.contains(".TH bulk-audit 1"), "{}", &man[..man.len().min(300)]);
    for word in ["audit", "exports", "disclosures", "completions"] {
        assert!(man.contains(word), "the man page lacks {word}");
    }
    let r = run(&["completions", "tcsh"]);
    assert_eq!(r.status.code(), Some(2), "an unknown shell is a usage error");
}

/// The bash completion, run by bash itself as it completes a word: subcommand options and their
/// values complete (`audit --fo<TAB>`, `--format <TAB>`, `--boundary <TAB>`, `plan --<TAB>`).
#[test]
fn bash_completes_subcommand_options_and_their_values() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("bulk-audit.bash");
    std::fs::write(&script, run_ok(&["completions", "bash"])).unwrap();
    // COMP_WORDS as bash fills them; the function gets the command, the word and the one before.
    let complete = |words: &[&str]| -> String {
        let current = words.len() - 1;
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let program = format!(
            "source '{}'; COMP_WORDS=({}); COMP_CWORD={current}; _bulk__audit bulk-audit '{}' '{}'; echo \"${{COMPREPLY[*]}}\"",
            script.display(),
            quoted.join(" "),
            words[current],
            words[current - 1]
        );
        let out = Command::new("bash").args(["-c", &program]).output().expect("run bash");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(complete(&["bulk-audit", "audit", "--fo"]), "--format --force");
    assert_eq!(complete(&["bulk-audit", "audit", "--format", ""]), "parquet csv");
    assert_eq!(complete(&["bulk-audit", "audit", "--boundary", ""]), "strict inclusive");
    assert!(complete(&["bulk-audit", "plan", "--"]).split(' ').any(|w| w == "--index"));
    assert!(complete(&["bulk-audit", "au"]).split(' ').any(|w| w == "audit"));
}

/// The help's example on the guide selects an export: the client and the day it names are the
/// guide's.
#[test]
fn the_help_example_selects_the_guide_export() {
    let help = Bulk::new("audit").arg("--help").ok();
    assert!(help.contains("--client inferno-my-clinic-bulk-client --from 2022-12-05 --to 2022-12-05"), "{help}");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("one-day");
    let said = Bulk::audit("fixtures/guide/logs", "fixtures/guide/history")
        .args([
            "--tz",
            "UTC",
            "--client",
            "inferno-my-clinic-bulk-client",
            "--from",
            "2022-12-05",
            "--to",
            "2022-12-05",
            "--format",
            "csv",
            "--audit-events",
        ])
        .out(&out)
        .ok();
    assert!(said.contains("e2b9d4") && said.contains("1 patient, 4 resources, 4 rows"), "{said}");
}

/// `man --out DIR` writes a page per command, each rendered by man itself (`man -l`): its
/// options, the exit statuses, and pages that name only pages that exist.
#[test]
fn every_command_has_a_man_page_that_man_renders() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1");
    run_ok(&["man", "--out", dir.to_str().unwrap()]);
    let commands = ["audit", "index", "plan", "exports", "disclosures", "completions", "man"];
    for name in std::iter::once("bulk-audit".to_string()).chain(commands.iter().map(|c| format!("bulk-audit-{c}"))) {
        let page = dir.join(format!("{name}.1"));
        let shown = Command::new("man").arg("-l").arg(&page).env("MANWIDTH", "100").env("MANPAGER", "cat").output();
        let shown = shown.expect("man (the man-db package) renders the pages");
        let text = String::from_utf8_lossy(&shown.stdout).replace(['\u{2010}', '\u{2011}'], "-");
        assert!(shown.status.success() && text.contains("EXIT STATUS"), "{name}: {text}");
        for other in text.split(|c: char| c.is_whitespace() || c == ',').filter(|w| w.starts_with("bulk-audit")) {
            if let Some(page) = other.strip_suffix("(1)") {
                assert!(dir.join(format!("{page}.1")).exists(), "{name} names {other}, which is not written");
            }
        }
    }
    let audit = String::from_utf8_lossy(
        &Command::new("man")
            .arg("-l")
            .arg(dir.join("bulk-audit-audit.1"))
            .env("MANPAGER", "cat")
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    for word in ["--fail-on", "--allow-empty-history", "--index", "128 + signal"] {
        assert!(audit.replace('\u{2010}', "-").contains(word), "the audit page lacks {word}");
    }
}

/// `-v` tells where the time went for every command that reads, `exports` and `disclosures` too.
#[test]
fn verbose_times_the_stages_of_exports_and_disclosures() {
    let r = run(&["-v", "exports", "--logs", "fixtures/guide/logs", "--tz", "UTC"]);
    assert!(r.status.success() && String::from_utf8_lossy(&r.stderr).contains("logs: read, kickoffs found"), "{r:?}");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    audit_csv_ok("fixtures/guide/logs", "fixtures/guide/history", &out, &[]);
    let r = run(&["-v", "disclosures", "--audit", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success() && stderr.contains("resources table: read") && stderr.contains("written"), "{stderr}");
}
