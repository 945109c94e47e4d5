//! The portable build (`scripts/build-portable`): a release binary linked against glibc 2.17's
//! symbols through zig, to copy onto an older or air-gapped machine. Checked as such a machine
//! would see it: no symbol of a later glibc; under 40 MB, its line tables still naming
//! bulk-audit's functions, files and lines for a backtrace; and the guide audited with it gives
//! the same tables as the usual build.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// `GLIBC_2.17` or `(GLIBC_2.2.5)`, as objdump writes them → (2, 17), (2, 2).
fn glibc_version(word: &str) -> Option<(u32, u32)> {
    let v = word.trim_matches(|c| c == '(' || c == ')').strip_prefix("GLIBC_")?;
    let (major, minor) = v.split_once('.')?;
    let minor = minor.split('.').next()?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// What binutils' `addr2line` says of the first address the line tables give to a line of
/// `src/rules/` (the compressed debug sections read as a backtrace reads them): the chain of
/// functions inlined there, each with its file and line.
fn frames_at_a_rules_line(bin: &Path) -> String {
    let lines = Command::new("readelf").arg("--debug-dump=decodedline").arg(bin).output().expect("readelf (binutils)");
    let lines = String::from_utf8_lossy(&lines.stdout);
    // A file's rows follow a line naming it: `src/rules/findings.rs:`, then `findings.rs  45  0x…  x`.
    let mut in_rules = false;
    let address = lines
        .lines()
        .find_map(|row| {
            if row.ends_with(".rs:") {
                let own = row.strip_prefix(root().to_str().unwrap()).map_or(row, |r| r.trim_start_matches('/'));
                in_rules = own.starts_with("src/rules/");
                return None;
            }
            let cells: Vec<&str> = row.split_whitespace().collect();
            let line: u32 = cells.get(1)?.parse().ok()?;
            (in_rules && line > 0 && cells.get(2)?.starts_with("0x")).then(|| cells[2].to_string())
        })
        .unwrap_or_else(|| panic!("no line of src/rules/ in the line tables of {}", bin.display()));
    let frames = Command::new("addr2line").args(["-f", "-C", "-i", "-e"]).arg(bin).arg(&address).output().unwrap();
    String::from_utf8_lossy(&frames.stdout).into_owned()
}

#[test]
fn the_portable_binary_needs_glibc_2_17_and_audits_the_guide_alike() {
    let built = Command::new(root().join("scripts/build-portable")).output().expect("run scripts/build-portable");
    assert!(built.status.success(), "scripts/build-portable failed:\n{}", String::from_utf8_lossy(&built.stderr));
    let bin = PathBuf::from(String::from_utf8(built.stdout).unwrap().trim());
    assert!(bin.is_file(), "{}", bin.display());
    let symbols = Command::new("objdump").arg("-T").arg(&bin).output().expect("objdump (binutils)");
    let symbols = String::from_utf8_lossy(&symbols.stdout);
    let versions: Vec<(u32, u32)> = symbols.split_whitespace().filter_map(glibc_version).collect();
    assert!(!versions.is_empty(), "no GLIBC symbol version read from {}", bin.display());
    let highest = versions.iter().max().unwrap();
    assert!(*highest <= (2, 17), "the portable binary needs GLIBC_{}.{}", highest.0, highest.1);
    let size = std::fs::metadata(&bin).unwrap().len();
    assert!(size < 40_000_000, "the portable binary is {size} bytes, not under 40 MB");
    let frames = frames_at_a_rules_line(&bin);
    let rows: Vec<&str> = frames.lines().collect();
    assert!(
        rows.chunks(2).any(|f| f.len() == 2 && f[0] != "??" && f[1].contains("src/rules/") && !f[1].ends_with(":0")),
        "no function named at a file and line of src/rules/:\n{frames}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let (portable, usual) = (tmp.path().join("portable"), tmp.path().join("usual"));
    let args = ["audit", "--logs", "fixtures/guide/logs", "--history", "fixtures/guide/history", "--tz", "UTC"];
    let ran = Command::new(&bin)
        .args(args)
        .args(["--format", "csv", "--out"])
        .arg(&portable)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    audit_csv_ok("fixtures/guide/logs", "fixtures/guide/history", &usual, &[]);
    for table in ["resources.csv", "exports.csv", "findings.csv"] {
        assert!(read(&portable.join(table)) == read(&usual.join(table)), "{table} differs from the usual build's");
    }
}
