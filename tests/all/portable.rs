//! The portable build (`scripts/build-portable`): a release binary linked against glibc 2.17's
//! symbols through zig, to copy onto an older or air-gapped machine. Checked as such a machine
//! would see it: no symbol of a later glibc; and the guide audited with it gives the same tables
//! as the usual build.

use std::path::PathBuf;
use std::process::Command;

use crate::common::*;

/// `GLIBC_2.17` or `(GLIBC_2.2.5)`, as objdump writes them → (2, 17), (2, 2).
fn glibc_version(word: &str) -> Option<(u32, u32)> {
    let v = word.trim_matches(|c| c == '(' || c == ')').strip_prefix("GLIBC_")?;
    let (major, minor) = v.split_once('.')?;
    let minor = minor.split('.').next()?;
    Some((major.parse().ok()?, minor.parse().ok()?))
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
