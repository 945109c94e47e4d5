//! Bounded memory on any input (SPEC "The files it touches"): compression bombs the test makes
//! (an endless line in a small `.zst`, a gigabyte of zeros in a small `.gz` log, one line
//! repeated millions of times) end in a clear input error or in an audit whose memory does not
//! grow with the repeats, never in an abort. The peak memory of the real binary is read from
//! the kernel (`getrusage(RUSAGE_CHILDREN)`): the tests of this file are its only children.

use std::io::Write;
use std::path::Path;

use crate::common::*;

/// The largest resident set of any child this process has waited for, in MiB.
fn children_peak_mib() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) }, 0);
    usage.ru_maxrss as u64 / 1024
}

/// `copies` concatenated zstd frames, each of `chunk` decompressed: a few KB that decompress to
/// `copies × chunk.len()` bytes.
fn zst_bomb(chunk: &[u8], copies: usize) -> Vec<u8> {
    let frame = zstd::encode_all(chunk, 19).unwrap();
    frame.repeat(copies)
}

fn gz_bomb(chunk: &[u8], copies: usize) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(chunk).unwrap();
    e.finish().unwrap().repeat(copies)
}

const LOGS: &str = "{\"ev\":\"w/req\",\"ts\":\"2023-03-01T12:00:00.000Z\",\"ctx\":\"k1\",\"w_m\":\"get\",\"w_url\":\"/fhir/Group/g/$export\"}\n\
{\"ev\":\"w/resp\",\"ts\":\"2023-03-01T12:00:00.050Z\",\"ctx\":\"k1\",\"w_st\":202,\"w_cid\":\"c\"}\n";

const HISTORY: &str = "{\"resourceType\":\"Client\",\"id\":\"c\",\"scope\":\"system/*.read\",\"meta\":{\"versionId\":\"1\",\"lastUpdated\":\"2023-01-01T00:00:00Z\"}}\n\
{\"resourceType\":\"Group\",\"id\":\"g\",\"member\":[{\"entity\":{\"reference\":\"Patient/p1\"}}],\"meta\":{\"versionId\":\"2\",\"lastUpdated\":\"2023-01-02T00:00:00Z\"}}\n\
{\"resourceType\":\"Patient\",\"id\":\"p1\",\"meta\":{\"versionId\":\"3\",\"lastUpdated\":\"2023-01-03T00:00:00Z\"}}\n";

fn audit(
    dir: &Path,
    logs: &[u8],
    log_name: &str,
    history: &[u8],
    history_name: &str,
    extra: &[&str],
) -> std::process::Output {
    let (l, h) = (dir.join("logs"), dir.join("history"));
    std::fs::create_dir_all(&l).unwrap();
    std::fs::create_dir_all(&h).unwrap();
    std::fs::write(l.join(log_name), logs).unwrap();
    std::fs::write(h.join("base.ndjson"), HISTORY).unwrap();
    std::fs::write(h.join(history_name), history).unwrap();
    let out = dir.join("out");
    let mut args = vec!["audit", "--logs", l.to_str().unwrap(), "--history", h.to_str().unwrap(), "--tz", "UTC"];
    args.extend(["--format", "csv", "--out", out.to_str().unwrap()]);
    args.extend(extra);
    run(&args)
}

#[test]
fn bombs_end_in_an_input_error_or_an_audit_in_bounded_memory() {
    // One line of 320 MiB without a break, from a .zst of a few KB: past the default limit.
    let tmp = tempfile::tempdir().unwrap();
    let bomb = zst_bomb(&vec![b'a'; 1 << 20], 320);
    assert!(bomb.len() < 64 << 10, "{}", bomb.len());
    let r = audit(tmp.path(), LOGS.as_bytes(), "logs.ndjson", &bomb, "bomb.ndjson.zst", &[]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(
        err.contains("history/bomb.ndjson.zst:1 (byte 0): a line longer than the limit of 256 MiB (--max-line)"),
        "{err}"
    );
    assert!(!tmp.path().join("out").exists());

    // A gigabyte of zeros in a .gz log of a few MB: no line break, so one endless line.
    let tmp = tempfile::tempdir().unwrap();
    let zeros = gz_bomb(&vec![0u8; 16 << 20], 64);
    let r = audit(tmp.path(), &zeros, "zeros.log.gz", b"", "empty.ndjson", &[]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{err}");
    assert!(err.contains("logs/zeros.log.gz:1 (byte 0): a line longer than the limit of 256 MiB"), "{err}");

    // The same bomb under --skip-invalid and a lower limit: the audit goes on, and says the file
    // was cut short rather than "0 lines skipped" alone.
    let tmp = tempfile::tempdir().unwrap();
    let mut history = HISTORY.as_bytes().to_vec();
    history.extend(vec![b'x'; 3 << 20]);
    let r = audit(
        tmp.path(),
        LOGS.as_bytes(),
        "logs.ndjson",
        &zstd::encode_all(&history[..], 3).unwrap(),
        "cut.ndjson.zst",
        &["--skip-invalid", "--max-line", "1MiB"],
    );
    let said = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(said.contains("could not be read to the end") && said.contains("cut.ndjson.zst"), "{said}");
    let manifest: serde_json::Value = serde_json::from_str(&read(&tmp.path().join("out/manifest.json"))).unwrap();
    assert_eq!(
        manifest["inputs_read_short"][0].as_str().unwrap(),
        tmp.path().join("history/cut.ndjson.zst").to_str().unwrap()
    );
    let findings = read(&tmp.path().join("out/findings.csv"));
    assert!(findings.contains("input-skipped") && findings.contains("--max-line"), "{findings}");

    // A pretty-printed document past the limit under --skip-invalid: skipped (the rest of its
    // file read, unkept, for its SHA-256), never a run that waits forever.
    let tmp = tempfile::tempdir().unwrap();
    let entry = "  {\"resource\": {\"resourceType\": \"Basic\", \"id\": \"b\", \"meta\": {\"versionId\": \"1\", \"lastUpdated\": \"2023-01-01T00:00:00Z\"}}},\n";
    let bundle = format!(
        "{{\n \"resourceType\": \"Bundle\",\n \"type\": \"history\",\n \"entry\": [\n{}  {{}}\n ]\n}}\n",
        entry.repeat(200_000)
    );
    let r = audit(
        tmp.path(),
        LOGS.as_bytes(),
        "logs.ndjson",
        bundle.as_bytes(),
        "bundle.json",
        &["--skip-invalid", "--max-line", "1MiB"],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let manifest: serde_json::Value = serde_json::from_str(&read(&tmp.path().join("out/manifest.json"))).unwrap();
    let input = manifest["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["path"].as_str().unwrap().ends_with("bundle.json"))
        .unwrap();
    assert_eq!(input["rest_unread"], true);
    assert_eq!(input["size"], bundle.len());

    // One version repeated 3 million times (about 400 MB, a .zst of a few KB): read, counted,
    // and not kept, so memory does not grow with the copies.
    let tmp = tempfile::tempdir().unwrap();
    let line = "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"subject\":{\"reference\":\"Patient/p1\"},\"meta\":{\"versionId\":\"9\",\"lastUpdated\":\"2023-01-04T00:00:00Z\"}}\n";
    let chunk = line.repeat(30_000);
    let bomb = zst_bomb(chunk.as_bytes(), 100);
    let r = audit(tmp.path(), LOGS.as_bytes(), "logs.ndjson", &bomb, "repeated.ndjson.zst", &[]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let manifest: serde_json::Value = serde_json::from_str(&read(&tmp.path().join("out/manifest.json"))).unwrap();
    assert_eq!(manifest["history"]["duplicate_copies_ignored"], 2_999_999);
    assert_eq!(manifest["history"]["versions"], 4);

    let peak = children_peak_mib();
    eprintln!("peak of the bombs: {peak} MiB");
    assert!(peak < 900, "a bomb took {peak} MiB");
}
