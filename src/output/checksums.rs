//! `SHA256SUMS`: the SHA-256 of every file written into an output folder, in the form
//! `sha256sum -c` checks, so the outputs can be tied to the run that wrote them.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::write_text;
use crate::error::{Error, Result};

/// The checksum file's name; no other output may take it.
pub(crate) const SUMS: &str = "SHA256SUMS";

/// Writes `dir/SHA256SUMS` over every file under `dir` (subfolders included), sorted by path.
/// The SHA-256 of files hashed while they were written, by path: [`write_sums`] takes them
/// instead of reading the files again.
static WRITTEN: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());

/// Notes the SHA-256 of a file just written and closed.
pub(crate) fn record(path: &Path, sha256: &[u8]) {
    let hex = crate::source::hex(sha256);
    WRITTEN.lock().unwrap_or_else(|p| p.into_inner()).push((path.to_path_buf(), hex));
}

/// The recorded SHA-256 of a file, forgotten once taken.
fn recorded(path: &Path) -> Option<String> {
    let mut written = WRITTEN.lock().unwrap_or_else(|p| p.into_inner());
    let i = written.iter().position(|(p, _)| p == path)?;
    Some(written.swap_remove(i).1)
}

/// The SHA-256 of a file this run wrote: the one taken while writing it, else read back.
pub(crate) fn written_sha256(path: &Path) -> Result<String> {
    let written =
        WRITTEN.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|(p, _)| p == path).map(|(_, h)| h.clone());
    written.map_or_else(|| hash_file(path), Ok)
}

pub(crate) fn write_sums(dir: &Path) -> Result<()> {
    // The walk of the marker, which follows right after over the same folder (and refuses the
    // same entries: anything but files and folders).
    let mut files: Vec<PathBuf> = Vec::new();
    super::claim::walk(dir, Path::new(""), &mut |rel, _| {
        files.push(rel.to_path_buf());
        Ok(())
    })
    .map_err(|e| Error::output(dir, e))?;
    files.retain(|p| p != Path::new(SUMS) && p != Path::new(super::STAGING_MARK));
    files.sort();
    let sums: Vec<String> = files
        .par_iter()
        .map(|rel| recorded(&dir.join(rel)).map_or_else(|| hash_file(&dir.join(rel)), Ok))
        .collect::<Result<_>>()?;
    let mut text = String::new();
    for (rel, sum) in files.iter().zip(sums) {
        text.push_str(&sum_line(&sum, &rel.to_string_lossy()));
    }
    write_text(&dir.join(SUMS), &text)
}

/// One line as GNU `sha256sum` writes it: a name holding `\` or a line break is escaped and the
/// line starts with `\`.
fn sum_line(sum: &str, name: &str) -> String {
    if name.contains(['\\', '\n', '\r']) {
        let escaped = name.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', "\\r");
        format!("\\{sum}  {escaped}\n")
    } else {
        format!("{sum}  {name}\n")
    }
}

fn hash_file(path: &Path) -> Result<String> {
    crate::source::sha256_file(path).map_err(|e| Error::output(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn lines_as_sha256sum_writes_them() {
        assert_eq!(sum_line("ab", "exports.csv"), "ab  exports.csv\n");
        assert_eq!(sum_line("ab", "a\\b\nc"), "\\ab  a\\\\b\\nc\n");
    }

    #[test]
    fn every_file_but_itself_sorted() {
        let d = std::env::temp_dir().join(format!("bulk-audit-sums-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("x")).unwrap();
        fs::write(d.join("b.csv"), "abc").unwrap();
        fs::write(d.join("x").join("a.ndjson"), "").unwrap();
        write_sums(&d).unwrap();
        write_sums(&d).unwrap(); // a second run does not hash the first one's file
        let text = fs::read_to_string(d.join(SUMS)).unwrap();
        fs::remove_dir_all(&d).unwrap();
        assert_eq!(
            text,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  b.csv\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  x/a.ndjson\n"
        );
    }
}
