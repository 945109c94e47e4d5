//! Writing safely: files readable by the owner only, a staging folder renamed into place once
//! complete, and its removal on failure or interrupt.

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
        o.mode(0o600);
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
    committed: bool,
}

/// Staging folders being written, removed by the interrupt handler.
static IN_PROGRESS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// On SIGINT/SIGTERM: remove every staging folder, so an interrupted run leaves the previous
/// output or none, and exit with status 130.
pub(crate) fn remove_staging_on_interrupt() {
    let _ = ctrlc::set_handler(|| {
        // The lock is held until exit: no file can be created in a staging folder meanwhile
        // (creation takes the same lock), so removal cannot race with writing.
        let dirs = IN_PROGRESS.lock().unwrap_or_else(|p| p.into_inner());
        for d in dirs.iter() {
            let _ = fs::remove_dir_all(d);
        }
        crate::progress::finish();
        eprintln!("bulk-audit: interrupted; no output was written");
        std::process::exit(130);
    });
}

fn forget(dir: &Path) {
    if let Ok(mut dirs) = IN_PROGRESS.lock() {
        dirs.retain(|d| d != dir);
    }
}

/// The file that marks a folder as bulk-audit's own output, safe to replace.
pub(crate) const MARKER: &str = "manifest.json";

impl Staging {
    /// Checks, before anything is read, that `dest` may be written: absent, empty, a previous
    /// bulk-audit output, or anything with `force`; and that the folder it goes in is writable.
    /// `option` names the option in the message.
    pub(crate) fn check(dest: &Path, force: bool, option: &str) -> Result<()> {
        if dest.exists() {
            if !dest.is_dir() {
                return Err(Error::Usage(format!("{option} {}: exists and is not a folder", dest.display())));
            }
            let empty = fs::read_dir(dest)
                .map_err(|e| Error::Usage(format!("{option} {}: {e}", dest.display())))?
                .next()
                .is_none();
            let ours = dest.join(MARKER).is_file() || dest.join(".bulk-audit").is_file();
            if !empty && !ours && !force {
                return Err(Error::Usage(format!(
                    "{option} {}: not empty and holds no previous bulk-audit output: choose another folder or pass --force to replace it",
                    dest.display()
                )));
            }
        }
        // The staging folder is made beside `dest`: the nearest folder that exists must take it.
        let mut parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        while !parent.exists() {
            parent = parent.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        }
        if !parent.is_dir() {
            return Err(Error::Usage(format!("{option} {}: {} is not a folder", dest.display(), parent.display())));
        }
        if !writable(parent) {
            return Err(Error::Usage(format!("{option} {}: {} is not writable", dest.display(), parent.display())));
        }
        Ok(())
    }

    /// Checks `dest` as [`Staging::check`] does, then creates the staging folder.
    pub(crate) fn begin(dest: &Path, force: bool) -> Result<Staging> {
        Staging::check(dest, force, "output folder").map_err(|e| match e {
            Error::Usage(m) => Error::output(dest, m),
            other => other,
        })?;
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        let parent = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        create_private_dir(parent)?;
        let dir = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| Error::output(&dir, e))?;
        }
        if let Ok(mut dirs) = IN_PROGRESS.lock() {
            dirs.push(dir.clone());
        }
        create_private_dir(&dir)?;
        Ok(Staging { dir, dest: dest.to_path_buf(), committed: false })
    }

    /// Writes `SHA256SUMS` over the finished folder, then moves it into place, replacing what
    /// was there.
    pub(crate) fn commit(mut self) -> Result<()> {
        super::checksums::write_sums(&self.dir)?;
        let old = self.dir.with_file_name(format!(
            ".{}.old-{}",
            self.dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            std::process::id()
        ));
        let had_old = self.dest.exists();
        {
            // An interrupt waits for both renames: it sees the old output or the new one.
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

/// Whether this process may create files in a folder.
fn writable(dir: &Path) -> bool {
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

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.dir);
            forget(&self.dir);
        }
    }
}
