//! Ctrl-C and SIGTERM: the handler sets a flag and makes a pipe readable, so that every
//! worker blocked in poll() wakes up at once and kills its process group. Must not: do
//! anything in the handler beyond what is async-signal-safe (a store and a write).

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Once;

static CANCELLED: AtomicBool = AtomicBool::new(false);
static SIGNAL: AtomicI32 = AtomicI32::new(0);
static READ_FD: AtomicI32 = AtomicI32::new(-1);
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);
static INIT: Once = Once::new();

extern "C" fn on_signal(sig: libc::c_int) {
    SIGNAL.store(sig, Ordering::SeqCst);
    CANCELLED.store(true, Ordering::SeqCst);
    let fd = WRITE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // The pipe is non-blocking and never closed.
        crate::sys::write_byte(fd);
    }
}

/// Create the wake-up pipe and install the SIGINT/SIGTERM handlers (once per process).
pub fn install() {
    INIT.call_once(|| {
        if let Ok((r, w)) = crate::sys::pipe_nonblocking() {
            READ_FD.store(r, Ordering::SeqCst);
            WRITE_FD.store(w, Ordering::SeqCst);
        }
        crate::sys::on_interrupt(on_signal);
    });
}

/// True once Ctrl-C or SIGTERM arrived.
pub fn cancelled() -> bool {
    CANCELLED.load(Ordering::SeqCst)
}

/// Cancel from inside the program (as if a signal had come).
pub fn cancel() {
    on_signal(0);
}

/// The signal that cancelled the run, if any (0 for an internal cancel).
pub fn signal() -> i32 {
    SIGNAL.load(Ordering::SeqCst)
}

/// A descriptor that becomes readable when the run is cancelled (-1 before `install`).
pub fn wake_fd() -> RawFd {
    READ_FD.load(Ordering::SeqCst)
}

/// Sleep for `d`, returning early (false) if the run is cancelled.
pub fn sleep(d: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + d;
    loop {
        if cancelled() {
            return false;
        }
        let now = std::time::Instant::now();
        if now >= deadline {
            return true;
        }
        let left = (deadline - now).max(std::time::Duration::from_millis(1));
        crate::sys::poll(&[crate::sys::Wait::read(Some(wake_fd()))], left);
    }
}
