//! Writing safely: files readable by the owner only, a staging folder beside its destination
//! renamed into place once complete (with bulk-audit's marker listing its files), its removal on
//! failure or by the signal handler, and the removal of staging folders a killed run left.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Creates a file readable and writable by the owner only.
pub(crate) fn create_private(path: &Path) -> Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create(true).truncate(true);
    open_private(path, o)
}

/// Creates a new file readable and writable by the owner only, to be read back while it is
/// written (a spill file); one that exists already is an error.
pub(crate) fn create_private_scratch(path: &Path) -> Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create_new(true);
    open_private(path, o)
}

fn open_private(path: &Path, mut o: OpenOptions) -> Result<File> {
    let _creating = IN_PROGRESS.lock().unwrap_or_else(|p| p.into_inner());
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    o.open(path).map_err(|e| Error::output(path, e))
}

/// Creates a folder accessible by the owner only.
pub(crate) fn create_private_dir(path: &Path) -> Result<()> {
    let _creating = IN_PROGRESS.lock().unwrap_or_else(|p| p.into_inner());
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path).map_err(|e| Error::output(path, e))
}

/// A folder being written: created under a temporary name beside its destination and renamed
/// into place by [`Staging::commit`]. Dropped without commit, it is removed.
pub(crate) struct Staging {
    pub(crate) dir: PathBuf,
    dest: PathBuf,
    kind: &'static str,
    committed: bool,
}

/// Staging folders being written, removed by the signal handler.
static IN_PROGRESS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Every staging folder this process made, with its destination: messages name the destination,
/// never the hidden staging name.
static STAGED: std::sync::Mutex<Vec<(PathBuf, PathBuf)>> = std::sync::Mutex::new(Vec::new());

/// The file that marks a staging folder as one (so a later run may remove it when its run died).
use super::STAGING_MARK;

/// Removes every staging folder being written, and keeps any new file from being created until
/// the process exits (for the signal handler). Returns how many it removed.
pub(crate) fn remove_all_in_progress() -> usize {
    // The lock is never released: no file can be created in a staging folder after this (creation
    // takes the same lock), so removal cannot race with writing.
    let dirs = IN_PROGRESS.lock().unwrap_or_else(|p| p.into_inner());
    let mut removed = 0;
    for d in dirs.iter() {
        // A staging folder, or a file written under a temporary name (`disclosures --out`).
        let gone =
            if fs::symlink_metadata(d).is_ok_and(|m| m.is_dir()) { fs::remove_dir_all(d) } else { fs::remove_file(d) };
        if gone.is_ok() {
            removed += 1;
        }
    }
    std::mem::forget(dirs);
    removed
}

/// `text` with every staging folder's path replaced by its destination's.
pub(crate) fn public_paths(text: &str) -> String {
    let staged = STAGED.lock().unwrap_or_else(|p| p.into_inner());
    let mut text = text.to_string();
    for (dir, dest) in staged.iter() {
        text = text.replace(&dir.display().to_string(), &dest.display().to_string());
    }
    text
}

/// A file being written under a temporary name: removed by the signal handler until
/// [`forget_temporary`].
pub(crate) fn register_temporary(path: &Path) {
    IN_PROGRESS.lock().unwrap_or_else(|p| p.into_inner()).push(path.to_path_buf());
}

/// The temporary file was renamed into place or removed.
pub(crate) fn forget_temporary(path: &Path) {
    forget(path);
}

fn forget(dir: &Path) {
    if let Ok(mut dirs) = IN_PROGRESS.lock() {
        dirs.retain(|d| d != dir);
    }
}

/// A file name of at most 200 bytes: a longer one is cut and given a hash of the whole (so two
/// long names stay distinct), leaving room for the prefixes and suffixes of staging names.
pub(crate) fn short_name(name: &str) -> String {
    const MAX: usize = 200;
    if name.len() <= MAX {
        return name.to_string();
    }
    use sha2::Digest;
    let hash = crate::source::hex(&sha2::Sha256::digest(name.as_bytes())[..8]);
    let mut cut = MAX - hash.len() - 1;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{hash}", &name[..cut])
}

impl Staging {
    /// Creates the staging folder of `dest` (already checked by `claim::check` and locked),
    /// after removing the staging folders that killed runs left for it. `kind` goes into the
    /// marker.
    pub(crate) fn begin(dest: &Path, kind: &'static str) -> Result<Staging> {
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        let name = short_name(&name);
        let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        create_private_dir(parent)?;
        remove_stale(parent, &name);
        let dir = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| Error::output(&dir, e))?;
        }
        if let Ok(mut dirs) = IN_PROGRESS.lock() {
            dirs.push(dir.clone());
        }
        STAGED.lock().unwrap_or_else(|p| p.into_inner()).push((dir.clone(), dest.to_path_buf()));
        create_private_dir(&dir)?;
        super::write_text(&dir.join(STAGING_MARK), "a staging folder of bulk-audit\n")?;
        Ok(Staging { dir, dest: dest.to_path_buf(), kind, committed: false })
    }

    /// Writes `SHA256SUMS` and the marker over the finished folder, then moves it into place,
    /// replacing what was there.
    pub(crate) fn commit(mut self) -> Result<()> {
        // The staging mark goes last, once the marker is there: a folder killed in between is
        // still recognised as a staging folder by the next run.
        super::checksums::write_sums(&self.dir)?;
        super::claim::write_marker(&self.dir, self.kind)?;
        fs::remove_file(self.dir.join(STAGING_MARK)).map_err(|e| Error::output(&self.dest, e))?;
        // What was checked before anything was read is checked again: a file someone put into
        // the old output during the run is not taken with it (kind and changes were allowed then).
        super::claim::check(&self.dest, self.kind, true, "output folder", &[]).map_err(|e| match e {
            Error::Usage(m) => Error::output(&self.dest, m),
            other => other,
        })?;
        let old = self.dir.with_file_name(format!(
            ".{}.old-{}",
            short_name(&self.dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()),
            std::process::id()
        ));
        let had_old = fs::symlink_metadata(&self.dest).is_ok();
        {
            // A signal waits for both renames: it sees the old output or the new one.
            let mut dirs = IN_PROGRESS.lock().unwrap_or_else(|p| p.into_inner());
            if had_old {
                fs::rename(&self.dest, &old).map_err(|e| Error::output(&self.dest, e))?;
            }
            fs::rename(&self.dir, &self.dest).map_err(|e| Error::output(&self.dest, e))?;
            self.committed = true;
            dirs.retain(|d| d != &self.dir);
        }
        if had_old {
            fs::remove_dir_all(&old).map_err(|e| Error::output(&old, e))?;
        }
        Ok(())
    }
}

/// Removes, from `parent`, the staging folders (`.NAME.partial-PID`) and replaced outputs
/// (`.NAME.old-PID`) that runs killed before they could clean up left there, with a note for
/// each. The caller holds the output's lock, so no live run is writing them. A folder of such a
/// name that bulk-audit did not make (no staging mark, not empty, no marker) is left alone.
fn remove_stale(parent: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(parent) else { return };
    let (partial, old) = (format!(".{name}.partial-"), format!(".{name}.old-"));
    let me = std::process::id().to_string();
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file_name.strip_prefix(&partial).or_else(|| file_name.strip_prefix(&old)) else { continue };
        if pid == me || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        let ours = meta.is_dir()
            && (path.join(STAGING_MARK).is_file()
                || path.join(super::claim::OWN_MARKER).is_file()
                || fs::read_dir(&path).map(|mut d| d.next().is_none()).unwrap_or(false));
        if !ours {
            continue;
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => crate::output::terminal::note(&format!(
                "removed {}, left by an earlier run (process {pid}) that was stopped before it could clean up",
                path.display()
            )),
            Err(e) => crate::output::terminal::note(&format!(
                "could not remove {}, left by an earlier run (process {pid}): {e}",
                path.display()
            )),
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.dir);
            forget(&self.dir);
        }
    }
}
