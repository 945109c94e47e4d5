//! Stage timings on stderr (wall and CPU seconds, resident memory) with `-v` (or
//! `BULK_AUDIT_TIMINGS` set): how the measurements in BENCHMARKS.md are taken.

use std::sync::atomic::{AtomicBool, Ordering};

/// Whether `-v` was given.
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Turns stage timings on for the rest of the run (`-v`).
pub(crate) fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

/// Prints how long each stage took to stderr with `-v` or when `BULK_AUDIT_TIMINGS` is set.
pub(crate) struct Stopwatch {
    start: std::time::Instant,
    last: std::time::Instant,
    /// Process CPU seconds (user + system) at the last lap.
    cpu: f64,
    on: bool,
}

/// User plus system CPU seconds of this process so far, from /proc (0 where there is none).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces): utime is the
    // 12th and stime the 13th, in clock ticks of 1/100 s.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

impl Stopwatch {
    pub(crate) fn new() -> Stopwatch {
        let now = std::time::Instant::now();
        let on = VERBOSE.load(Ordering::Relaxed) || std::env::var_os("BULK_AUDIT_TIMINGS").is_some();
        Stopwatch { start: now, last: now, cpu: if on { cpu_seconds() } else { 0.0 }, on }
    }

    pub(crate) fn lap(&mut self, stage: &str) {
        let now = std::time::Instant::now();
        if self.on {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let field = |k: &str| {
                status.lines().find(|l| l.starts_with(k)).map(|l| l[k.len()..].trim().to_string()).unwrap_or_default()
            };
            let cpu = cpu_seconds();
            eprintln!(
                "  {stage:<28} {:>8.3}s  cpu {:>7.3}s  (total {:.3}s)  rss {}  peak {}",
                (now - self.last).as_secs_f64(),
                cpu - self.cpu,
                (now - self.start).as_secs_f64(),
                field("VmRSS:"),
                field("VmHWM:")
            );
            self.cpu = cpu;
        }
        self.last = now;
    }
}

impl Default for Stopwatch {
    fn default() -> Self {
        Stopwatch::new()
    }
}
