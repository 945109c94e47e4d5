//! Inputs that are not regular files, through the real binary: standard input (`-`, plain or
//! compressed), a FIFO inside an input folder, and what cannot be read (a socket, a device) or
//! read twice (a stream with --with-resource). Nothing is skipped or read short in silence.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::*;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bulk-audit"));
    c.current_dir(root());
    c
}

/// The guide audited from regular files: the reference answer.
fn reference(tmp: &Path) -> String {
    let out = tmp.join("reference");
    Bulk::audit("fixtures/guide/logs", "fixtures/guide/history")
        .args(["--tz", "UTC", "--format", "csv"])
        .out(&out)
        .ok();
    read(&out.join("resources.csv"))
}

/// A copy of the guide's history folder in which one file is a FIFO, fed by `cat`.
fn history_with_fifo(tmp: &Path) -> (std::path::PathBuf, std::process::Child) {
    let dir = tmp.join("history");
    std::fs::create_dir(&dir).unwrap();
    let src = root().join("fixtures/guide/history");
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "observation_history.ndjson" {
            std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    let fifo = dir.join("observation_history.ndjson");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let feeder = Command::new("sh")
        .arg("-c")
        .arg(format!("cat '{}' > '{}'", src.join("observation_history.ndjson").display(), fifo.display()))
        .spawn()
        .unwrap();
    (dir, feeder)
}

#[test]
fn a_fifo_inside_a_history_folder_is_read_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let want = reference(tmp.path());
    let (history, mut feeder) = history_with_fifo(tmp.path());
    let out = tmp.path().join("out");
    Bulk::audit("fixtures/guide/logs", &history).args(["--tz", "UTC", "--format", "csv"]).out(&out).ok();
    feeder.wait().unwrap();
    let got = read(&out.join("resources.csv")).replace(&format!("{}/", history.display()), "");
    assert_eq!(got, want.replace("fixtures/guide/history/", ""), "the same rows as from regular files");
    let manifest: serde_json::Value = serde_json::from_str(&read(&out.join("manifest.json"))).unwrap();
    let fifo = manifest["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["path"].as_str().unwrap().ends_with("observation_history.ndjson"))
        .unwrap();
    let size = std::fs::metadata(root().join("fixtures/guide/history/observation_history.ndjson")).unwrap().len();
    assert_eq!(fifo["size"], size, "a stream's size is the bytes read");
    assert!(fifo["lines"].as_u64().unwrap() > 0);
}

/// Piped input, compressed or not, is read from its first byte (compression is told from the
/// bytes already read, never by opening the input again).
#[test]
fn standard_input_is_read_from_its_first_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let want = reference(tmp.path());
    let history: Vec<u8> = [
        "observation_history.ndjson",
        "observation.ndjson",
        "patient_history.ndjson",
        "location_history.ndjson",
        "condition_history.ndjson",
    ]
    .iter()
    .flat_map(|f| std::fs::read(root().join("fixtures/guide/history").join(f)).unwrap())
    .collect();
    let pretty = tmp.path().join("pretty");
    std::fs::create_dir(&pretty).unwrap();
    for f in ["Client-inferno-my-clinic-bulk-client-history.json", "Group-test-group-1-history.json"] {
        std::fs::copy(root().join("fixtures/guide/history").join(f), pretty.join(f)).unwrap();
    }
    for (name, bytes) in [("plain", history.clone()), ("zstd", zstd::encode_all(&history[..], 3).unwrap())] {
        let out = tmp.path().join(name);
        let mut child = bin()
            .args([
                "audit",
                "--logs",
                "fixtures/guide/logs",
                "--history",
                "-",
                pretty.to_str().unwrap(),
                "--tz",
                "UTC",
                "--format",
                "csv",
                "--out",
                out.to_str().unwrap(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let r = child.wait_with_output().unwrap();
        assert!(r.status.success(), "{name}: {}", String::from_utf8_lossy(&r.stderr));
        let got: Vec<String> = csv_rows(&out.join("resources.csv"))
            .into_iter()
            .map(|r| format!("{}/{}/{}", r["resource_type"], r["resource_id"], r["version_id"]))
            .collect();
        let expected: Vec<String> = want
            .lines()
            .skip(1)
            .map(|l| {
                let c: Vec<&str> = l.split(',').collect();
                format!("{}/{}/{}", c[6], c[7], c[8])
            })
            .collect();
        assert_eq!(got, expected, "{name}");
        let manifest: serde_json::Value = serde_json::from_str(&read(&out.join("manifest.json"))).unwrap();
        let stdin = manifest["inputs"].as_array().unwrap().iter().find(|i| i["path"] == "-").unwrap();
        assert_eq!(stdin["size"], bytes.len() as u64, "{name}");
        assert_eq!(stdin["compression"], if name == "zstd" { "zstd" } else { "plain" });
    }
}

#[test]
fn what_cannot_be_read_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let audit = |history: &Path, extra: &[&str]| {
        let mut args = vec![
            "audit",
            "--logs",
            "fixtures/guide/logs",
            "--history",
            history.to_str().unwrap(),
            "--tz",
            "UTC",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let r = run(&args);
        (r.status.code(), String::from_utf8_lossy(&r.stderr).into_owned())
    };
    // A socket inside a history folder.
    let with_socket = tmp.path().join("with-socket");
    std::fs::create_dir(&with_socket).unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(with_socket.join("agent.sock")).unwrap();
    let (status, stderr) = audit(&with_socket, &[]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("agent.sock") && stderr.contains("neither a file, a folder nor a FIFO"), "{stderr}");
    // A device inside a history folder (through a link).
    let with_device = tmp.path().join("with-device");
    std::fs::create_dir(&with_device).unwrap();
    std::os::unix::fs::symlink("/dev/null", with_device.join("null.ndjson")).unwrap();
    let (status, stderr) = audit(&with_device, &[]);
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("null.ndjson"), "{stderr}");
    // A stream cannot be read twice: --with-resource and --reconstruct refuse it up front.
    let (history, mut feeder) = history_with_fifo(tmp.path());
    for option in [vec!["--with-resource"], vec!["--reconstruct", tmp.path().join("rec").to_str().unwrap()]] {
        let (status, stderr) = audit(&history, &option);
        assert_eq!(status, Some(1), "{stderr}");
        assert!(stderr.contains("observation_history.ndjson is a stream") && stderr.contains(option[0]), "{stderr}");
    }
    feeder.kill().unwrap();
    feeder.wait().unwrap();
    // Standard input, given twice.
    let r = Bulk::audit("-", "-").args(["--tz", "UTC"]).out(&out).run();
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("standard input (-) can be read only once"));
    assert!(!out.exists());
}

/// Progress is drawn on stderr only when it is a terminal (here a pseudo-terminal from
/// util-linux `script`), and never with `--quiet` or when stderr is a file or pipe.
#[test]
fn progress_only_on_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_bulk-audit");
    let audit = |flags: &str, name: &str| {
        format!(
            "{bin} {flags} audit --logs fixtures/guide/logs --history fixtures/guide/history --tz UTC --format csv --out {}",
            tmp.path().join(name).display()
        )
    };
    let on_tty = |cmd: String| {
        let out = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .current_dir(root())
            .output()
            .expect("util-linux script");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = on_tty(audit("", "tty"));
    assert!(shown.contains("\r\u{1b}[Kbulk-audit: ") && shown.contains(" MB"), "{shown:?}");
    assert!(shown.contains("2 exports, 4 resource rows"), "the summary still follows: {shown:?}");
    let quiet = on_tty(audit("--quiet", "quiet"));
    assert!(!quiet.contains("bulk-audit: "), "{quiet:?}");
    let piped = Bulk::audit("fixtures/guide/logs", "fixtures/guide/history")
        .args(["--tz", "UTC", "--format", "csv"])
        .out(tmp.path().join("piped").to_str().unwrap())
        .run();
    assert!(piped.status.success());
    assert!(piped.stderr.is_empty(), "{}", String::from_utf8_lossy(&piped.stderr));
}

/// CSV on stdout keeps the inputs' bytes for a file or pipe, but a terminal gets their control
/// characters escaped: a client id holding an escape sequence cannot rewrite the screen.
#[test]
fn stdout_on_a_terminal_gets_control_characters_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs.ndjson");
    let line = serde_json::json!({"ev": "w/req", "ts": "2023-03-01T12:00:00Z", "ctx": "k1", "w_m": "get",
        "w_url": "/fhir/$export", "w_cid": "evil\u{1b}[2J\u{1b}]0;owned\u{7}", "w_st": 202});
    std::fs::write(&logs, format!("{line}\n")).unwrap();
    let piped = run_ok(&["exports", "--logs", logs.to_str().unwrap()]);
    assert!(piped.contains("evil\u{1b}[2J"), "a pipe gets the data as it is: {piped:?}");
    let cmd = format!("{} exports --logs {}", env!("CARGO_BIN_EXE_bulk-audit"), logs.display());
    let out =
        std::process::Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().expect("util-linux script");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("evil\\u001b[2J\\u001b]0;owned\\u0007"), "{shown:?}");
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
}
