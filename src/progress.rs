//! Progress on stderr while an audit runs, only when stderr is a terminal and `--quiet` is not
//! given: the stage, the raw bytes read of the inputs' total, the lines of the files finished,
//! the rate and the time left. Redrawn in place five times a second by one thread; cleared
//! before anything else is printed.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ON: AtomicBool = AtomicBool::new(false);
static BYTES: AtomicU64 = AtomicU64::new(0);
static TOTAL: AtomicU64 = AtomicU64::new(0);
static LINES: AtomicU64 = AtomicU64::new(0);
static STAGE: Mutex<&'static str> = Mutex::new("starting");
static DRAWER: Mutex<Option<std::thread::JoinHandle<()>>> = Mutex::new(None);

/// Starts drawing (once), if `on`.
pub(crate) fn enable(on: bool) {
    if !on || ON.swap(true, Ordering::SeqCst) {
        return;
    }
    let start = Instant::now();
    let handle = std::thread::spawn(move || {
        // Drawn at once, then five times a second.
        while ON.load(Ordering::SeqCst) {
            let stage = *STAGE.lock().unwrap_or_else(|p| p.into_inner());
            let line = status_line(
                stage,
                BYTES.load(Ordering::Relaxed),
                TOTAL.load(Ordering::Relaxed),
                LINES.load(Ordering::Relaxed),
                start.elapsed(),
            );
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K{line}");
            let _ = err.flush();
            drop(err);
            // In short steps, so that `finish` never waits long for this thread.
            for _ in 0..10 {
                if !ON.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    *DRAWER.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
}

/// Stops drawing and clears the line, so what follows starts on a clean line.
pub(crate) fn finish() {
    if ON.swap(false, Ordering::SeqCst) {
        if let Some(h) = DRAWER.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = h.join();
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K");
        let _ = err.flush();
    }
}

/// The stage being run.
pub(crate) fn stage(name: &'static str) {
    *STAGE.lock().unwrap_or_else(|p| p.into_inner()) = name;
}

/// Raw bytes of the inputs read so far (counted as they are hashed).
pub(crate) fn add_bytes(n: u64) {
    BYTES.fetch_add(n, Ordering::Relaxed);
}

/// Bytes the inputs hold, as their files were listed (streams add nothing: their size is unknown).
pub(crate) fn add_total(n: u64) {
    TOTAL.fetch_add(n, Ordering::Relaxed);
}

/// Lines of an input read to its end.
pub(crate) fn add_lines(n: u64) {
    LINES.fetch_add(n, Ordering::Relaxed);
}

fn status_line(stage: &str, bytes: u64, total: u64, lines: u64, elapsed: Duration) -> String {
    let mb = |b: u64| b as f64 / 1e6;
    let secs = elapsed.as_secs_f64().max(1e-3);
    let rate = mb(bytes) / secs;
    let mut line = format!("bulk-audit: {stage}: {:.1} MB", mb(bytes));
    if total > 0 {
        let done = (bytes as f64 / total as f64).min(1.0);
        line.push_str(&format!(" of {:.1} MB ({:.0}%)", mb(total), done * 100.0));
        line.push_str(&format!(", {rate:.0} MB/s"));
        // A time left only while the inputs are read, and once the rate says something: after
        // them (resolving, indexing, writing) the bytes stand still and the estimate would grow
        // without end ("about 282065 s left").
        if stage.starts_with("reading") && bytes < total && done >= 0.02 && secs >= 1.0 {
            line.push_str(&format!(", about {:.0} s left", mb(total - bytes) / rate.max(1e-9)));
        }
    }
    line.push_str(&format!(", {lines} lines, {:.0} s", secs));
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_says_bytes_of_total_rate_and_time_left() {
        let l = status_line("reading history", 50_000_000, 200_000_000, 1234, Duration::from_secs(1));
        assert_eq!(
            l,
            "bulk-audit: reading history: 50.0 MB of 200.0 MB (25%), 50 MB/s, about 3 s left, 1234 lines, 1 s"
        );
        let streams = status_line("reading logs", 1_000_000, 0, 0, Duration::from_secs(2));
        assert_eq!(streams, "bulk-audit: reading logs: 1.0 MB, 0 lines, 2 s");
        // No time left once the inputs are read, nor before the rate means anything.
        let writing = status_line("writing the index", 150_000_000, 200_000_000, 9, Duration::from_secs(60));
        assert_eq!(writing, "bulk-audit: writing the index: 150.0 MB of 200.0 MB (75%), 2 MB/s, 9 lines, 60 s");
        let early = status_line("reading history", 1_000_000, 200_000_000, 0, Duration::from_millis(500));
        assert!(!early.contains("left"), "{early}");
    }
}
