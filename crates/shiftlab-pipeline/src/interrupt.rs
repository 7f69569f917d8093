//! Ctrl-C and SIGTERM (what `scancel` and a job's time limit send) ask the run to stop: the first
//! signal sets a flag that every stage sees within one poll (see `stage::Cancel`), finished parts
//! stay, unfinished ones leave no file, and the run exits non-zero saying it was interrupted. A
//! second signal ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// True once SIGINT or SIGTERM arrived (after [`install`]).
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Installs the handlers (once per process).
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let handler = on_signal as extern "C" fn(libc::c_int);
        // SAFETY: the handler only touches an atomic and calls the async-signal-safe _exit.
        unsafe {
            libc::signal(libc::SIGINT, handler as libc::sighandler_t);
            libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
        }
    });
}

extern "C" fn on_signal(sig: libc::c_int) {
    if REQUESTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(128 + sig) };
    }
}
