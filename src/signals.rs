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
        let b = 1u8;
        // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking and never closed.
        unsafe {
            libc::write(fd, (&b as *const u8).cast(), 1);
        }
    }
}

/// Create the wake-up pipe and install the SIGINT/SIGTERM handlers (once per process).
pub fn install() {
    INIT.call_once(|| {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: plain syscalls on fds we own; sigaction with a handler that only does
        // async-signal-safe work.
        unsafe {
            if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) == 0 {
                READ_FD.store(fds[0], Ordering::SeqCst);
                WRITE_FD.store(fds[1], Ordering::SeqCst);
            }
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
            libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
            // A closed pipe to a child is an error to report, not a reason to die.
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
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
        let ms = (deadline - now).as_millis().min(i32::MAX as u128) as i32;
        let mut pfd = libc::pollfd {
            fd: wake_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd (a negative fd is ignored by poll).
        unsafe {
            libc::poll(&mut pfd, 1, ms.max(1));
        }
    }
}
