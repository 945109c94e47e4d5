//! Which folders an output may take, checked before anything is read: bulk-audit replaces only a
//! folder it wrote itself (its marker file lists every file in it), never a symbolic link, never
//! an input or a folder holding one, never the folder the user stands in. The marker is written
//! here too, as the last file of every output folder.

use std::fs;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The marker file of a folder bulk-audit wrote: what kind of output it is and every file in
/// it. Only a folder whose files are all listed here is ever replaced.
pub(crate) const OWN_MARKER: &str = ".bulk-audit";

/// What a marker holds.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    written_by: String,
    /// `audit`, `index` or `reconstruct`.
    kind: String,
    /// Every file, as a path relative to the folder, with its size when written.
    files: Vec<MarkedFile>,
}

#[derive(Debug, Serialize, Deserialize)]
struct MarkedFile {
    path: String,
    size: u64,
}

/// Writes `dir`'s marker: every file under it (none may be a link), sorted.
pub(crate) fn write_marker(dir: &Path, kind: &str) -> Result<()> {
    let mut files = Vec::new();
    walk(dir, Path::new(""), &mut |rel, meta| {
        if rel != Path::new(super::STAGING_MARK) {
            files.push(MarkedFile { path: rel.to_string_lossy().into_owned(), size: meta.len() });
        }
        Ok(())
    })
    .map_err(|e| Error::output(dir, e))?;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let marker = Marker { written_by: "bulk-audit".into(), kind: kind.into(), files };
    let text = serde_json::to_string_pretty(&marker).map_err(|e| Error::Internal(e.to_string()))?;
    super::write_text(&dir.join(OWN_MARKER), &(text + "\n"))
}

/// Calls `f` with every file under `root/rel` (relative path, metadata); a link, a socket or
/// anything but a file or folder is an error naming it.
pub(super) fn walk(
    root: &Path,
    rel: &Path,
    f: &mut dyn FnMut(&Path, &fs::Metadata) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let here = root.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&here)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let rel = rel.join(entry.file_name());
        let meta = fs::symlink_metadata(root.join(&rel))?;
        if meta.is_dir() {
            walk(root, &rel, f)?;
        } else if meta.is_file() {
            f(&rel, &meta)?;
        } else {
            return Err(std::io::Error::other(format!("{} is not a plain file", rel.display())));
        }
    }
    Ok(())
}

/// What was found where an output is to go.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// Nothing: the folder is new.
    Nothing,
    /// An empty folder.
    Empty,
    /// A previous bulk-audit output of this kind, as it was written.
    OwnOutput,
}

/// Checks that `dest` may be written by an output of `kind`, before anything is read: absent,
/// empty, or a previous bulk-audit output (one whose files were changed since, only with
/// `force`); never a link, a file, a folder holding files bulk-audit did not write, the current
/// folder or one holding it, nor an input, inside one, or holding one (`inputs`: paths as given;
/// `-` is standard input and is skipped). `option` names the option in messages.
pub(crate) fn check(dest: &Path, kind: &str, force: bool, option: &str, inputs: &[PathBuf]) -> Result<Found> {
    let shown = dest.display();
    let refuse = |why: String| Err(Error::Usage(format!("{option} {shown}: {why}")));
    let real = resolved(dest);
    if let Ok(cwd) = std::env::current_dir().and_then(fs::canonicalize) {
        if cwd.starts_with(&real) {
            return refuse(
                "the current folder, or a folder holding it: an output folder is replaced whole; name a new folder \
                 (e.g. audit-out)"
                    .into(),
            );
        }
    }
    for input in inputs.iter().filter(|p| p.as_os_str() != crate::source::STDIN) {
        let input_real = resolved(input);
        if input_real.starts_with(&real) || real.starts_with(&input_real) {
            return refuse(format!(
                "overlaps the input {} (the same folder, or one inside the other): an output never replaces or \
                 writes into an input",
                input.display()
            ));
        }
    }
    let meta = match fs::symlink_metadata(dest) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(Error::output(dest, e)),
    };
    if meta.file_type().is_symlink() {
        return refuse(
            "is a symbolic link: bulk-audit does not write through links nor replace them; give the folder itself"
                .into(),
        );
    }
    if !meta.is_dir() {
        return refuse("exists and is not a folder".into());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Even where this process could write it (root): someone made it read-only on purpose.
        if meta.permissions().mode() & 0o200 == 0 {
            return Err(Error::output(
                dest,
                format!(
                    "the folder is read-only (mode {:o}): bulk-audit does not replace a folder made read-only",
                    meta.permissions().mode() & 0o7777
                ),
            ));
        }
    }
    if !writable(dest) {
        return Err(Error::output(dest, "the folder is not writable (bulk-audit replaces it only where it may write)"));
    }
    let mut present: Vec<(PathBuf, u64)> = Vec::new();
    let walked = walk(dest, Path::new(""), &mut |rel, meta| {
        present.push((rel.to_path_buf(), meta.len()));
        Ok(())
    });
    if let Err(e) = walked {
        return refuse(format!(
            "holds something bulk-audit did not write ({e}); move it away or choose another folder"
        ));
    }
    if present.is_empty() && fs::read_dir(dest).map(|mut d| d.next().is_none()).unwrap_or(false) {
        return Ok(Found::Empty);
    }
    let marker = fs::read_to_string(dest.join(OWN_MARKER))
        .ok()
        .and_then(|t| serde_json::from_str::<Marker>(&t).ok())
        .filter(|m| m.written_by == "bulk-audit");
    let Some(marker) = marker else {
        return refuse(format!(
            "not empty, and not an output of bulk-audit (it has no {OWN_MARKER} marker listing its files): bulk-audit \
             replaces only folders it wrote, --force or not; choose another folder, or empty this one"
        ));
    };
    let listed: std::collections::HashMap<&Path, u64> =
        marker.files.iter().map(|f| (Path::new(f.path.as_str()), f.size)).collect();
    let found: std::collections::HashMap<&Path, u64> = present.iter().map(|(p, size)| (p.as_path(), *size)).collect();
    for (rel, _) in &present {
        if rel != Path::new(OWN_MARKER) && !listed.contains_key(rel.as_path()) {
            return refuse(format!(
                "holds {}, which bulk-audit did not write: move it out first (bulk-audit replaces only what it wrote, \
                 --force or not)",
                rel.display()
            ));
        }
    }
    let changed = marker.files.iter().find(|f| found.get(Path::new(f.path.as_str())) != Some(&f.size));
    if !force {
        if marker.kind != kind {
            return refuse(format!(
                "holds a bulk-audit {} output, not the {kind} output asked for: pass --force to replace it",
                marker.kind
            ));
        }
        if let Some(f) = changed {
            return refuse(format!(
                "a previous bulk-audit output whose {} was changed or removed since it was written: pass --force to \
                 replace it",
                f.path
            ));
        }
    }
    Ok(Found::OwnOutput)
}

/// Whether this process may create files in a folder.
pub(crate) fn writable(dir: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else { return false };
        // SAFETY: `c` is a valid NUL-terminated path; access(2) only reads it.
        unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        !fs::metadata(dir).map(|m| m.permissions().readonly()).unwrap_or(true)
    }
}

/// Checks that the folder an output goes in can take it: the nearest existing ancestor of
/// `dest` is a folder this process may write.
pub(crate) fn check_parent(dest: &Path, option: &str) -> Result<()> {
    let mut parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    while fs::symlink_metadata(parent).is_err() {
        parent = parent.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    }
    if !parent.is_dir() {
        return Err(Error::Usage(format!("{option} {}: {} is not a folder", dest.display(), parent.display())));
    }
    if !writable(parent) {
        return Err(Error::output(dest, format!("{} is not writable", parent.display())));
    }
    Ok(())
}

/// The real place of a path that may not exist yet: made absolute, then walked a component at
/// a time as the system walks it — each part that exists resolved (symbolic links followed)
/// before the next is applied, so `link/..` is the link target's parent, as it is to the system;
/// `..` and names past the last existing part are applied as written.
pub(crate) fn resolved(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::new();
    let mut exists = true;
    for c in abs.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => {
                out.push(name);
                if exists {
                    match fs::canonicalize(&out) {
                        Ok(real) => out = real,
                        Err(_) => exists = false,
                    }
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// A path as given, without a trailing `/` or `.` (through which the system would follow a link
/// that the checks must see as one).
pub(crate) fn clean(p: &Path) -> PathBuf {
    let cleaned: PathBuf = p.components().filter(|c| !matches!(c, Component::CurDir)).collect();
    if cleaned.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        cleaned
    }
}

/// Whether two paths are the same or one is inside the other, on their real places.
pub(crate) fn overlapping(a: &Path, b: &Path) -> bool {
    let (x, y) = (resolved(a), resolved(b));
    x.starts_with(&y) || y.starts_with(&x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_output_folders_overlap() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path().join("r");
        assert!(overlapping(&r, &r.join("sub")));
        assert!(overlapping(&r.join("sub"), &r));
        assert!(overlapping(&r, &tmp.path().join("x/../r")));
        assert!(!overlapping(&r, &tmp.path().join("rr")));
        assert!(!overlapping(&tmp.path().join("a"), &tmp.path().join("b")));
    }

    #[test]
    fn only_what_the_marker_lists_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("out");
        fs::create_dir_all(d.join("sub")).unwrap();
        fs::write(d.join("a.csv"), "x").unwrap();
        fs::write(d.join("sub/b.ndjson"), "yy").unwrap();
        write_marker(&d, "audit").unwrap();
        assert_eq!(check(&d, "audit", false, "--out", &[]).unwrap(), Found::OwnOutput);
        // Another kind, or a changed file, needs --force.
        assert!(check(&d, "index", false, "--out", &[]).is_err());
        assert_eq!(check(&d, "index", true, "--out", &[]).unwrap(), Found::OwnOutput);
        fs::write(d.join("a.csv"), "changed").unwrap();
        let e = check(&d, "audit", false, "--out", &[]).unwrap_err().to_string();
        assert!(e.contains("a.csv was changed"), "{e}");
        assert_eq!(check(&d, "audit", true, "--out", &[]).unwrap(), Found::OwnOutput);
        // A file it did not write: refused, --force or not.
        fs::write(d.join("sub/notes.txt"), "mine").unwrap();
        let e = check(&d, "audit", true, "--out", &[]).unwrap_err().to_string();
        assert!(e.contains("sub/notes.txt, which bulk-audit did not write"), "{e}");
    }
}
