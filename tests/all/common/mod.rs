//! Helpers for the integration tests: run the real `bulk-audit` binary from the repository root
//! and read what it wrote.

#![allow(dead_code)]

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `bulk-audit ARGS` in the repository root.
pub fn run(args: &[&str]) -> Output {
    Bulk(args.iter().map(Into::into).collect()).run()
}

/// Runs and asserts success; returns stdout.
pub fn run_ok(args: &[&str]) -> String {
    Bulk(args.iter().map(Into::into).collect()).ok()
}

/// A `bulk-audit` command line being built, run in the repository root (as ripgrep's
/// `TestCommand` and xsv's `Workdir`): the arguments the tests repeat are said once.
#[derive(Debug, Clone)]
pub struct Bulk(Vec<std::ffi::OsString>);

impl Bulk {
    /// `bulk-audit COMMAND`.
    pub fn new(command: &str) -> Bulk {
        Bulk(vec![command.into()])
    }

    /// `bulk-audit audit --logs LOGS --history HISTORY`.
    pub fn audit(logs: impl AsRef<Path>, history: impl AsRef<Path>) -> Bulk {
        Bulk::new("audit").arg("--logs").arg(logs.as_ref()).arg("--history").arg(history.as_ref())
    }

    /// `bulk-audit audit --logs LOGS --history HISTORY --tz UTC --format csv`: the audit most
    /// tests run.
    pub fn audit_csv(logs: impl AsRef<Path>, history: impl AsRef<Path>) -> Bulk {
        Bulk::audit(logs, history).args(["--tz", "UTC", "--format", "csv"])
    }

    /// `bulk-audit audit --index IDX`.
    pub fn audit_index(index: impl AsRef<Path>) -> Bulk {
        Bulk::new("audit").arg("--index").arg(index.as_ref())
    }

    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Bulk {
        self.0.push(a.as_ref().to_os_string());
        self
    }

    pub fn args<S: AsRef<std::ffi::OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Bulk {
        self.0.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// `--out DIR`.
    pub fn out(self, dir: impl AsRef<Path>) -> Bulk {
        self.arg("--out").arg(dir.as_ref())
    }

    /// Runs it; its whole output.
    pub fn run(&self) -> Output {
        Command::new(env!("CARGO_BIN_EXE_bulk-audit"))
            .args(&self.0)
            .current_dir(root())
            .output()
            .expect("run bulk-audit")
    }

    /// Runs it and asserts success; returns stdout.
    pub fn ok(&self) -> String {
        let out = self.run();
        assert!(
            out.status.success(),
            "bulk-audit {:?} failed: {}\n{}",
            self.0,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs it and asserts it exits with `status`; returns stderr.
    pub fn fails(&self, status: i32) -> String {
        let out = self.run();
        assert_eq!(out.status.code(), Some(status), "bulk-audit {:?}: {out:?}", self.0);
        String::from_utf8(out.stderr).expect("utf-8 stderr")
    }
}

/// `bulk-audit audit --logs LOGS --history HISTORY --tz UTC --format csv --out OUT EXTRA…`, the
/// shape most tests run: its whole output.
pub fn audit_csv(logs: impl AsRef<Path>, history: impl AsRef<Path>, out: &Path, extra: &[&str]) -> Output {
    Bulk::audit_csv(logs, history).out(out).args(extra).run()
}

/// As [`audit_csv`], asserting success; returns stdout.
pub fn audit_csv_ok(logs: impl AsRef<Path>, history: impl AsRef<Path>, out: &Path, extra: &[&str]) -> String {
    Bulk::audit_csv(logs, history).out(out).args(extra).ok()
}

/// A copy of the guide's history in `dir/history`, without its files whose names start with
/// `prefix` (`"location"`: the dump without the Location table); `""` copies every file.
pub fn guide_history_without(dir: &Path, prefix: &str) -> PathBuf {
    let history = dir.join("history");
    std::fs::create_dir(&history).unwrap();
    for f in std::fs::read_dir(root().join("fixtures/guide/history")).unwrap() {
        let f = f.unwrap();
        if prefix.is_empty() || !f.file_name().to_string_lossy().starts_with(prefix) {
            std::fs::copy(f.path(), history.join(f.file_name())).unwrap();
        }
    }
    history
}

/// An index in shards in `idx`: the logs indexed alone into `idx/logs`, and each history part (a
/// list of files) alone into `idx/h-NN`, all with the same `rules`.
pub fn index_in_shards<P: AsRef<Path>>(idx: &Path, logs: &str, parts: &[Vec<P>], rules: &[&str]) {
    Bulk::new("index").args(["--logs", logs]).args(rules).out(idx.join("logs")).ok();
    for (i, part) in parts.iter().enumerate() {
        let files = part.iter().map(|p| p.as_ref().as_os_str());
        Bulk::new("index").arg("--history").args(files).args(rules).out(idx.join(format!("h-{i:02}"))).ok();
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Asserts two files are byte-identical, showing the first differing line.
/// With `BULK_AUDIT_BLESS=1` the expected file is rewritten from the actual one instead (to
/// review with `git diff` after a deliberate change of the outputs).
pub fn assert_same_file(actual: &Path, expected: &Path) {
    if std::env::var_os("BULK_AUDIT_BLESS").is_some() {
        std::fs::copy(actual, expected).unwrap_or_else(|e| panic!("bless {}: {e}", expected.display()));
        return;
    }
    let (a, e) = (read(actual), read(expected));
    if a != e {
        let first =
            a.lines().zip(e.lines()).position(|(x, y)| x != y).unwrap_or(a.lines().count().min(e.lines().count()));
        panic!(
            "{} differs from {} at line {}:\n  actual:   {:?}\n  expected: {:?}\n(actual has {} lines, expected {})",
            actual.display(),
            expected.display(),
            first + 1,
            a.lines().nth(first),
            e.lines().nth(first),
            a.lines().count(),
            e.lines().count()
        );
    }
}

/// The rows of a CSV file as maps from column name to value.
pub fn csv_rows(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).expect("open csv");
    let headers = r.headers().expect("headers").clone();
    r.records()
        .map(|rec| {
            headers.iter().zip(rec.expect("record").iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect()
        })
        .collect()
}

/// The readers' virtual environment's python (`scripts/install-readers`: pyarrow, pandas,
/// DuckDB, pyspark and the FHIR model from PyPI), installed once.
pub fn readers_python() -> String {
    let install = Command::new(root().join("scripts/install-readers")).output().expect("run scripts/install-readers");
    assert!(
        install.status.success(),
        "scripts/install-readers failed (it needs PyPI):\n{}",
        String::from_utf8_lossy(&install.stderr)
    );
    String::from_utf8(install.stdout).unwrap().trim().to_string()
}

/// JAVA_HOME of the Java that `scripts/install-java` chose (17 or 21, from Debian): an
/// inherited JAVA_HOME may be another version.
pub fn java_home() -> PathBuf {
    let java = Command::new(root().join("scripts/install-java")).output().expect("run scripts/install-java");
    assert!(java.status.success(), "scripts/install-java failed:\n{}", String::from_utf8_lossy(&java.stderr));
    let java = PathBuf::from(String::from_utf8(java.stdout).unwrap().trim());
    std::fs::canonicalize(&java).unwrap().parent().unwrap().parent().unwrap().to_path_buf()
}

/// Every file under `dir`, relative, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

pub fn assert_same_folders(a: &Path, b: &Path) {
    let (fa, fb) = (files(a), files(b));
    assert_eq!(fa, fb, "{} and {} hold different files", a.display(), b.display());
    assert!(fa.len() >= 4, "{} holds {} files", a.display(), fa.len());
    // The checksums last: the file that differs is named first.
    for f in fa.iter().filter(|f| !f.ends_with("SHA256SUMS")).chain(fa.iter().filter(|f| f.ends_with("SHA256SUMS"))) {
        assert!(std::fs::read(a.join(f)).unwrap() == std::fs::read(b.join(f)).unwrap(), "{} differs", f.display());
    }
}

/// Every line of every history file under `dir` (decompressed), in file-name order.
pub fn history_lines(dir: &Path) -> Vec<String> {
    let mut paths: Vec<PathBuf> = files(dir).into_iter().map(|f| dir.join(f)).collect();
    paths.sort();
    let mut lines = Vec::new();
    for p in paths {
        let raw = std::fs::read(&p).unwrap();
        let text = match p.extension().and_then(|e| e.to_str()) {
            Some("zst") => zstd::decode_all(&raw[..]).unwrap(),
            Some("gz") => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).unwrap();
                out
            }
            _ => raw,
        };
        lines.extend(text.as_slice().lines().map(Result::unwrap).filter(|l| !l.trim().is_empty()));
    }
    lines
}

/// A small deterministic generator (the cuts and the shuffle are the same on every run).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// The history under `history` cut as a history too big for one process is: every line
/// shuffled and cut at arbitrary line boundaries into about five parts under `into` (the third
/// compressed), so a resource's versions lie in several parts; plus a copy of one version in
/// another part, and in another part than their originals' two copies that differ (a later
/// lastUpdated): one of any type, one of a type `bulk-audit plan` does not read (its conflict
/// is the SQL's to find). Returns the parts.
pub fn cut_history(history: &Path, into: &Path, seed: u64) -> Vec<PathBuf> {
    let mut lines = history_lines(history);
    let mut rng = Lcg(seed);
    for i in (1..lines.len()).rev() {
        lines.swap(i, rng.below(i + 1));
    }
    let n = lines.len();
    let mut cuts: Vec<usize> = (0..4).map(|_| 1 + rng.below(n - 1)).collect();
    cuts.extend([0, n]);
    cuts.sort();
    cuts.dedup();
    let mut chunks: Vec<Vec<String>> = cuts.windows(2).map(|w| lines[w[0]..w[1]].to_vec()).collect();
    let copy = chunks[0][0].clone();
    chunks.last_mut().unwrap().push(copy);
    let key = "\"lastUpdated\":\"";
    let small = ["AccessPolicy", "BulkExportStatus", "Client", "Group", "Patient"];
    let of_small = |l: &str| small.iter().any(|t| l.contains(&format!("\"resourceType\":\"{t}\"")));
    let any = lines.iter().find(|l| l.contains(key) && !l.contains("\"Bundle\"")).expect("a version with meta");
    let big = chunks[0]
        .iter()
        .find(|l| *l != any && l.contains(key) && !l.contains("\"Bundle\"") && !of_small(l))
        .expect("a version of a type a plan does not read, with meta");
    for line in [any.clone(), big.clone()] {
        let at = line.find(key).unwrap() + key.len();
        let end = at + line[at..].find('"').unwrap();
        let changed = format!("{}2099-01-02T00:00:00Z{}", &line[..at], &line[end..]);
        chunks[1].push(changed);
    }
    std::fs::create_dir_all(into).unwrap();
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let text = chunk.join("\n") + "\n";
            if i == 2 {
                let p = into.join(format!("part-{i}.ndjson.zst"));
                std::fs::write(&p, zstd::encode_all(text.as_bytes(), 3).unwrap()).unwrap();
                p
            } else {
                let p = into.join(format!("part-{i}.ndjson"));
                std::fs::write(&p, text).unwrap();
                p
            }
        })
        .collect()
}
