//! Stopping cleanly: SIGINT, SIGTERM and SIGHUP are taken by one thread (blocked everywhere
//! else), which removes every staging folder — and with it every spill of resource bodies —
//! and every lock file, then exits with 128 + the signal's number. SIGXFSZ (a file-size limit)
//! is ignored, so a write past the limit fails with an error the run handles like any other
//! failed write, removing what it staged.

/// Installs the handler. Must run before any other thread is started: threads inherit the
/// blocked signals, so only the handler's thread ever receives them.
#[cfg(unix)]
pub(crate) fn install() {
    // SAFETY: plain libc calls on a sigset_t owned by this function; `signal(SIGXFSZ, SIG_IGN)`
    // installs no Rust code as a handler.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // A signal the parent set to be ignored (`nohup`, a background job) stays ignored:
            // blocked, it would reach sigwait.
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(s, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN {
                continue;
            }
            libc::sigaddset(&mut set, s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let waited = SigSet(set);
        let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || {
            let waited = waited;
            loop {
                let mut sig: libc::c_int = 0;
                // SAFETY: `waited` is a valid, initialised sigset_t; `sig` is written by sigwait.
                if libc::sigwait(&waited.0, &mut sig) == 0 {
                    stop(sig);
                }
            }
        });
        if spawned.is_err() {
            // Without the thread the signals would never be received: take the defaults back.
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

#[cfg(not(unix))]
pub(crate) fn install() {}

/// A signal set moved into the handler's thread.
#[cfg(unix)]
struct SigSet(libc::sigset_t);

/// Removes the staging folders and lock files, says so, and exits with 128 + `sig`.
#[cfg(unix)]
fn stop(sig: libc::c_int) -> ! {
    let removed = super::staging::remove_all_in_progress();
    super::lock::release_all();
    crate::progress::finish();
    let name = match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    };
    let what = if removed == 0 {
        "nothing had been written".to_string()
    } else {
        format!(
            "the partly written output was removed ({})",
            super::terminal::counted(removed as u64, "staging folder")
        )
    };
    eprintln!("bulk-audit: stopped by {name}; {what}, and any earlier output is left as it was");
    std::process::exit(128 + sig);
}
