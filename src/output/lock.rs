//! One writer per output: an exclusive `flock` on a lock file beside each output folder
//! (`.NAME.lock`, holding the process id), taken before anything is read and held until the
//! process ends. A second run on the same output is refused at once, naming the first. The lock
//! file is removed when the run ends (normally or by a signal); one left by a killed run holds
//! no lock and is taken over.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};

/// The first line of every lock file: a file of that name without it is not ours to take.
const HEADER: &str = "bulk-audit lock";

/// Lock files held by this process, with their open files (the lock lives as long as the file).
static HELD: Mutex<Vec<(PathBuf, File)>> = Mutex::new(Vec::new());

/// The lock file of an output folder: beside it, in its real parent folder.
fn lock_path(dest: &Path) -> PathBuf {
    let real = super::claim::resolved(dest);
    let name = real.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    real.with_file_name(format!(".{}.lock", super::staging::short_name(&name)))
}

/// Takes the exclusive lock of `dest` for the rest of this process (the folder it goes in is
/// created if missing). Another live run holding it: refused (exit 3), naming its process id.
pub(crate) fn lock(dest: &Path, option: &str) -> Result<()> {
    let path = lock_path(dest);
    if HELD.lock().unwrap_or_else(|p| p.into_inner()).iter().any(|(p, _)| *p == path) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        super::create_private_dir(parent)?;
    }
    loop {
        let mut o = OpenOptions::new();
        o.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        }
        let mut file = o.open(&path).map_err(|e| Error::output(&path, e))?;
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Err(Error::output(dest, format!("{} is not a plain file: move it away", path.display())));
        }
        if !try_lock(&file).map_err(|e| Error::output(&path, e))? {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let pid = holder(&text).map(|p| format!("process {p}")).unwrap_or_else(|| "another process".into());
            return Err(Error::output(
                dest,
                format!(
                    "another bulk-audit run ({pid}) is writing this {option} now (it holds {}); wait for it to end, \
                     or choose another folder",
                    path.display()
                ),
            ));
        }
        // The file may have been removed (and another made) between our open and our lock by
        // the run that held it: the lock counts only on the file that is at the path now.
        if !same_file(&file, &path) {
            continue;
        }
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(|e| Error::output(&path, e))?;
        if !text.is_empty() && !text.starts_with(HEADER) {
            return Err(Error::output(
                dest,
                format!("{} exists and is not a bulk-audit lock file: move it away", path.display()),
            ));
        }
        file.set_len(0).map_err(|e| Error::output(&path, e))?;
        file.rewind().map_err(|e| Error::output(&path, e))?;
        writeln!(file, "{HEADER}\npid {}", std::process::id()).map_err(|e| Error::output(&path, e))?;
        HELD.lock().unwrap_or_else(|p| p.into_inner()).push((path, file));
        return Ok(());
    }
}

/// The process id a lock file names.
fn holder(text: &str) -> Option<u32> {
    text.lines().find_map(|l| l.strip_prefix("pid ")).and_then(|p| p.trim().parse().ok())
}

/// Removes every lock file this process holds (then the locks end with the files): at the end of
/// a run, and by the signal handler.
pub(crate) fn release_all() {
    let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
    for (path, file) in held.drain(..) {
        // Removed while still locked, so no other run can take the old file for the new one.
        let _ = fs::remove_file(&path);
        drop(file);
    }
}

#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor this function borrows; it touches no memory.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, _path: &Path) -> bool {
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_holder_is_read_back() {
        assert_eq!(super::holder("bulk-audit lock\npid 4242\n"), Some(4242));
        assert_eq!(super::holder("something else"), None);
    }
}
