//! The files it touches (SPEC "The files it touches"), tried as an attacker and an unlucky
//! operator would, through the real binary on real files: outputs never replace what bulk-audit
//! did not write, an input, or a link; one writer per output (two real runs); signals through a
//! real child process clean up and exit 128+signal; what a killed run left is removed by the
//! next one.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const GUIDE_LOGS: &str = "fixtures/guide/logs";
const GUIDE_HISTORY: &str = "fixtures/guide/history";

fn guide_audit(out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["audit", "--logs", GUIDE_LOGS, "--history", GUIDE_HISTORY, "--tz", "UTC", "--format", "csv"];
    args.extend(extra);
    args.extend(["--out", out.to_str().unwrap()]);
    run(&args)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every name in `dir` starting with a dot (staging folders, lock files, spills), sorted.
fn hidden(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    names.sort();
    names
}

#[test]
fn a_folder_with_any_manifest_json_is_not_replaced_even_with_force() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("p");
    std::fs::create_dir_all(p.join("src")).unwrap();
    std::fs::write(p.join("manifest.json"), "{}").unwrap();
    std::fs::write(p.join("src/a.js"), "keep").unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let r = guide_audit(&p, extra);
        assert_eq!(r.status.code(), Some(1), "{extra:?}: {}", stderr(&r));
        assert!(stderr(&r).contains("not an output of bulk-audit"), "{}", stderr(&r));
        assert_eq!(read(&p.join("src/a.js")), "keep");
    }
    assert!(hidden(tmp.path()).is_empty(), "{:?}", hidden(tmp.path()));
}

#[test]
fn a_previous_output_is_replaced_but_not_a_file_someone_added_to_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    assert!(guide_audit(&out, &[]).status.success());
    let marker = read(&out.join(".bulk-audit"));
    assert!(marker.contains("\"resources.csv\"") && marker.contains("\"SHA256SUMS\""), "{marker}");
    // Re-run: replaced, as it was written by bulk-audit.
    let r = guide_audit(&out, &[]);
    assert!(r.status.success(), "{}", stderr(&r));
    // A person's notes in it: refused, --force or not; the notes stay.
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let r = guide_audit(&out, extra);
        assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
        assert!(stderr(&r).contains("holds notes.txt, which bulk-audit did not write"), "{}", stderr(&r));
        assert_eq!(read(&out.join("notes.txt")), "mine");
    }
    std::fs::remove_file(out.join("notes.txt")).unwrap();
    // A table edited since: only with --force.
    std::fs::write(out.join("findings.csv"), "edited").unwrap();
    let r = guide_audit(&out, &[]);
    assert_eq!(r.status.code(), Some(1));
    assert!(stderr(&r).contains("findings.csv was changed or removed"), "{}", stderr(&r));
    assert!(guide_audit(&out, &["--force"]).status.success());
    assert_ne!(read(&out.join("findings.csv")), "edited");
}

#[test]
fn an_output_never_is_contains_or_lies_inside_an_input() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = |to: &Path| {
        for (from, sub) in [(GUIDE_LOGS, "logs"), (GUIDE_HISTORY, "history")] {
            std::fs::create_dir_all(to.join(sub)).unwrap();
            for f in std::fs::read_dir(root().join(from)).unwrap() {
                let f = f.unwrap().path();
                std::fs::copy(&f, to.join(sub).join(f.file_name().unwrap())).unwrap();
            }
        }
    };
    let o = tmp.path().join("o");
    copy(&o);
    let files_before = std::fs::read_dir(o.join("history")).unwrap().count();
    let (logs, history) = (o.join("logs"), o.join("history"));
    let cases: Vec<(PathBuf, &str)> = vec![
        (o.clone(), "o/logs"),            // --out holds both inputs
        (history.clone(), "history"),     // --out is an input
        (history.join("sub"), "history"), // --out inside an input
    ];
    for (out, named) in cases {
        let r = Bulk::audit(&logs, &history).args(["--tz", "UTC", "--force"]).out(&out).run();
        assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
        assert!(stderr(&r).contains("overlaps the input") && stderr(&r).contains(named), "{}", stderr(&r));
        assert_eq!(std::fs::read_dir(&history).unwrap().count(), files_before);
    }
    // Through a link to an input, too (real paths are compared).
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&o, &link).unwrap();
    let r = Bulk::audit(&logs, &history).args(["--tz", "UTC"]).out(link.join("history")).run();
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(history.join("observation.ndjson").is_file());
    // `..` after a link is the link target's parent, as the system reads it: here the input
    // logs folder, not a new folder beside the link.
    let into_history = tmp.path().join("h");
    std::os::unix::fs::symlink(&history, &into_history).unwrap();
    let sneaky = tmp.path().join("h/../logs");
    let r = Bulk::audit(&logs, &history).args(["--tz", "UTC", "--force"]).out(&sneaky).run();
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains("overlaps the input"), "{}", stderr(&r));
    assert!(logs.join("kibana-discover.csv").is_file());
}

#[test]
fn links_read_only_folders_and_the_current_folder_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for given in [link.clone(), PathBuf::from(format!("{}/", link.display())), link.join(".")] {
        let r = guide_audit(&given, &["--force"]);
        assert_eq!(r.status.code(), Some(1), "{given:?}: {}", stderr(&r));
        assert!(stderr(&r).contains("is a symbolic link"), "{}", stderr(&r));
    }
    assert!(hidden(tmp.path()).is_empty(), "a refused output leaves no lock: {:?}", hidden(tmp.path()));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());

    use std::os::unix::fs::PermissionsExt;
    let ro = tmp.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let r = guide_audit(&ro, &[]);
    assert_eq!(r.status.code(), Some(3), "{}", stderr(&r));
    assert!(stderr(&r).contains("read-only"), "{}", stderr(&r));
    assert_eq!(std::fs::metadata(&ro).unwrap().permissions().mode() & 0o777, 0o555);

    // `--out .`, from the folder the run stands in: refused before anything is read.
    let here = tmp.path().join("here");
    std::fs::create_dir(&here).unwrap();
    let r = Command::new(env!("CARGO_BIN_EXE_bulk-audit"))
        .args(["audit", "--logs"])
        .arg(root().join(GUIDE_LOGS))
        .arg("--history")
        .arg(root().join(GUIDE_HISTORY))
        .args(["--tz", "UTC", "--out", "."])
        .current_dir(&here)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains("the current folder"), "{}", stderr(&r));
}

#[test]
fn disclosures_never_write_into_the_audit_they_read() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    assert!(guide_audit(&out, &[]).status.success());
    let before = read(&out.join("resources.csv"));
    let target = out.join("resources.csv");
    let r = run(&["disclosures", "--audit", out.to_str().unwrap(), "--out", target.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains("inside the audit it reads"), "{}", stderr(&r));
    assert_eq!(read(&target), before);
}

/// A history that arrives through a FIFO keeps a run waiting, holding its lock, until the test
/// writes it.
struct WaitingRun {
    child: Child,
    fifo: PathBuf,
}

const T: &str = "2023-03-01T12:00:00.000Z";

fn small_world(dir: &Path) -> (PathBuf, String) {
    let logs = dir.join("logs.ndjson");
    std::fs::write(
        &logs,
        format!(
            "{{\"ev\":\"w/req\",\"ts\":\"{T}\",\"ctx\":\"k1\",\"w_m\":\"get\",\"w_url\":\"/fhir/Group/g/$export\"}}\n\
             {{\"ev\":\"w/resp\",\"ts\":\"2023-03-01T12:00:00.050Z\",\"ctx\":\"k1\",\"w_st\":202,\"w_cid\":\"c\"}}\n"
        ),
    )
    .unwrap();
    let history = [
        r#"{"resourceType":"Client","id":"c","scope":"system/*.read","meta":{"versionId":"1","lastUpdated":"2023-01-01T00:00:00Z"}}"#,
        r#"{"resourceType":"Group","id":"g","member":[{"entity":{"reference":"Patient/p1"}}],"meta":{"versionId":"2","lastUpdated":"2023-01-02T00:00:00Z"}}"#,
        r#"{"resourceType":"Patient","id":"p1","meta":{"versionId":"3","lastUpdated":"2023-01-03T00:00:00Z"}}"#,
    ]
    .join("\n")
        + "\n";
    (logs, history)
}

impl WaitingRun {
    fn start(dir: &Path, out: &Path) -> (WaitingRun, String) {
        let (logs, history) = small_world(dir);
        let fifo = dir.join(format!("history-{}.fifo", out.file_name().unwrap().to_string_lossy()));
        assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let child = Command::new(env!("CARGO_BIN_EXE_bulk-audit"))
            .args(["audit", "--tz", "UTC", "--format", "csv", "--logs"])
            .arg(&logs)
            .arg("--history")
            .arg(&fifo)
            .arg("--out")
            .arg(out)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Its lock file names it once it holds the lock.
        let lock = out.with_file_name(format!(".{}.lock", out.file_name().unwrap().to_string_lossy()));
        let start = Instant::now();
        while !std::fs::read_to_string(&lock).is_ok_and(|t| t.contains(&format!("pid {}", child.id()))) {
            assert!(start.elapsed() < Duration::from_secs(60), "the run never took its lock");
            std::thread::sleep(Duration::from_millis(10));
        }
        (WaitingRun { child, fifo }, history)
    }

    fn feed(&self, history: &str) {
        std::fs::write(&self.fifo, history).unwrap();
    }
}

#[test]
fn a_second_run_on_the_same_output_is_refused_at_once_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let (first, history) = WaitingRun::start(tmp.path(), &out);
    let started = Instant::now();
    let logs = tmp.path().join("logs.ndjson");
    let second = Bulk::audit(&logs, GUIDE_HISTORY).args(["--tz", "UTC"]).out(&out).run();
    assert_eq!(second.status.code(), Some(3), "{}", stderr(&second));
    assert!(
        stderr(&second).contains(&format!("another bulk-audit run (process {})", first.child.id())),
        "{}",
        stderr(&second)
    );
    assert!(started.elapsed() < Duration::from_secs(30), "the second run waited");
    first.feed(&history);
    let done = first.child.wait_with_output().unwrap();
    assert!(done.status.success(), "{}", stderr(&done));
    assert!(out.join("resources.csv").is_file());
    // The lock file goes with the run; only the run's own inputs are left beside the output.
    assert!(hidden(tmp.path()).is_empty(), "{:?}", hidden(tmp.path()));
}

#[test]
fn sigint_sigterm_and_sighup_clean_up_and_exit_128_plus_the_signal() {
    for (sig, n) in [("INT", 2), ("TERM", 15), ("HUP", 1)] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let (waiting, _) = WaitingRun::start(tmp.path(), &out);
        assert!(Command::new("kill")
            .args([&format!("-{sig}"), &waiting.child.id().to_string()])
            .status()
            .unwrap()
            .success());
        let done = waiting.child.wait_with_output().unwrap();
        assert_eq!(done.status.code(), Some(128 + n), "SIG{sig}: {}", stderr(&done));
        assert!(stderr(&done).contains(&format!("stopped by SIG{sig}")), "{}", stderr(&done));
        assert!(!out.exists());
        assert!(hidden(tmp.path()).is_empty(), "SIG{sig}: {:?}", hidden(tmp.path()));
    }
}

/// A run started with SIGHUP ignored (`nohup`) keeps ignoring it, as it did before it took the
/// signals over.
#[test]
fn a_signal_the_parent_ignores_stays_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let (logs, history) = small_world(tmp.path());
    let fifo = tmp.path().join("history.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let script = format!(
        "trap '' HUP; exec {} audit --tz UTC --format csv --logs {} --history {} --out {}",
        env!("CARGO_BIN_EXE_bulk-audit"),
        logs.display(),
        fifo.display(),
        out.display()
    );
    let child =
        Command::new("bash").args(["-c", &script]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let lock = tmp.path().join(".out.lock");
    let start = Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.contains(&format!("pid {}", child.id()))) {
        assert!(start.elapsed() < Duration::from_secs(60), "the run never took its lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(200));
    std::fs::write(&fifo, history).unwrap();
    let done = child.wait_with_output().unwrap();
    assert!(done.status.success(), "{:?}: {}", done.status, stderr(&done));
    assert!(out.join("resources.csv").is_file());
}

/// A world big enough that re-reading and writing its bodies takes a while in a debug build.
fn bodies_world(dir: &Path) -> PathBuf {
    let spec = bulk_audit_world::WorldSpec {
        synthea: root().join("data/synthea-r4"),
        clones: 1,
        patients: None,
        max_per_type: None,
        noise_requests: 100,
        seed: 5,
        format: bulk_audit_world::WorldFormat::Fhir,
    };
    let w = bulk_audit_world::generate(&spec).unwrap();
    bulk_audit_world::write(&w, dir, spec.format).unwrap();
    dir.to_path_buf()
}

/// Starts an audit with bodies into `out` and waits until its spill of bodies is on disk.
fn run_until_bodies_spill(world: &Path, out: &Path, rec: &Path) -> Option<Child> {
    let child = Command::new(env!("CARGO_BIN_EXE_bulk-audit"))
        .args(["audit", "--tz", "UTC", "--with-resource", "--logs"])
        .arg(world.join("logs"))
        .arg("--history")
        .arg(world.join("history"))
        .arg("--out")
        .arg(out)
        .arg("--reconstruct")
        .arg(rec)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let staging = out.with_file_name(format!(".out.partial-{}", child.id()));
    let start = Instant::now();
    let mut child = child;
    loop {
        let spilled = std::fs::read_dir(&staging)
            .map(|d| d.filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy().starts_with(".bodies.spill")))
            .unwrap_or(false);
        if spilled {
            return Some(child);
        }
        if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(300) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_stopped_run_leaves_no_bodies_and_a_killed_runs_leftovers_are_removed_by_the_next() {
    let tmp = tempfile::tempdir().unwrap();
    let world = bodies_world(&tmp.path().join("world"));
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let (out, rec) = (work.join("out"), work.join("rec"));
    // A previous output, which a stopped run must leave as it was.
    assert!(guide_audit(&out, &[]).status.success());
    let previous = read(&out.join("resources.csv"));

    let child = run_until_bodies_spill(&world, &out, &rec).expect("the run ended before it spilled bodies");
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(143), "{}", stderr(&done));
    assert_eq!(read(&out.join("resources.csv")), previous);
    assert!(!rec.exists());
    assert_eq!(hidden(&work), Vec::<String>::new(), "staging, spills or locks left");

    // SIGKILL cannot be handled: the staging folder (with resource bodies) stays ...
    let child = run_until_bodies_spill(&world, &out, &rec).expect("the run ended before it spilled bodies");
    let pid = child.id();
    assert!(Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap().success());
    let _ = child.wait_with_output().unwrap();
    assert!(hidden(&work).contains(&format!(".out.partial-{pid}")), "{:?}", hidden(&work));
    // ... until the next run on that output removes it, with a note (the stale lock files are
    // taken over and removed).
    let r = guide_audit(&out, &["--reconstruct", rec.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(stderr(&r).contains("note: removed") && stderr(&r).contains(&format!("(process {pid})")), "{}", stderr(&r));
    assert_eq!(hidden(&work), Vec::<String>::new());
}

#[test]
fn a_file_size_limit_ends_in_an_output_error_and_nothing_left() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let script = format!(
        "ulimit -f 1; exec {} audit --logs {GUIDE_LOGS} --history {GUIDE_HISTORY} --tz UTC --format csv --out {}",
        env!("CARGO_BIN_EXE_bulk-audit"),
        out.display()
    );
    let r = Command::new("bash").args(["-c", &script]).current_dir(root()).output().unwrap();
    assert_eq!(r.status.code(), Some(3), "{}", stderr(&r));
    assert!(stderr(&r).contains("cannot write"), "{}", stderr(&r));
    assert!(!stderr(&r).contains(".partial-"), "a hidden staging name: {}", stderr(&r));
    assert!(!out.exists());
    assert!(hidden(tmp.path()).is_empty(), "{:?}", hidden(tmp.path()));
}

/// `--fail-on`: exit 5 once every output is written when a selected export has a finding of a
/// named kind, or is incomplete (its Group not in the history); 0 otherwise; 1 for a kind that
/// does not exist.
#[test]
fn fail_on_gates_a_ci_run_after_writing_every_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let r = guide_audit(&out, &["--fail-on", "version-conflict,boundary-ambiguous"]);
    assert_eq!(r.status.code(), Some(5), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("--fail-on: 1 boundary-ambiguous finding (every output was written)"),
        "{}",
        stderr(&r)
    );
    assert!(out.join("resources.csv").is_file() && out.join(".bulk-audit").is_file());
    let r = guide_audit(&out, &["--fail-on", "version-conflict", "--fail-on", "incomplete"]);
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let r = guide_audit(&out, &["--fail-on", "nothing-like-it"]);
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stderr(&r).contains("--fail-on nothing-like-it: not a finding kind"), "{}", stderr(&r));
    // Without the Group's history the export's patients are unknown: incomplete.
    let history = tmp.path().join("history");
    std::fs::create_dir(&history).unwrap();
    for f in std::fs::read_dir(root().join(GUIDE_HISTORY)).unwrap() {
        let f = f.unwrap();
        if !f.file_name().to_string_lossy().starts_with("Group-") {
            std::fs::copy(f.path(), history.join(f.file_name())).unwrap();
        }
    }
    let r = Bulk::audit(GUIDE_LOGS, &history)
        .args(["--tz", "UTC", "--format", "csv", "--fail-on", "incomplete"])
        .out(&out)
        .run();
    assert_eq!(r.status.code(), Some(5), "{}", stderr(&r));
    assert!(stderr(&r).contains("1 export incomplete"), "{}", stderr(&r));
}
