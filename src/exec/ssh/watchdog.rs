//! One thread that bounds the blocking libssh2 calls of every connection. While a
//! blocking step runs (the handshake and authentication of a connection attempt, opening
//! a channel), its socket is watched with a deadline; when the deadline passes or the run
//! is cancelled, the watchdog shuts the socket down (shutdown(2)), and the call blocked on
//! it returns at once with an error. libssh2's own timeout cannot do this: it bounds one
//! call (a login is many: one per key tried, the agent's), counted from the call's start,
//! and is looked at only when libssh2 has to wait for the socket, so a server that keeps
//! sending (a flood) is never timed out.
//! Must not: close a descriptor it was lent (it shuts down a duplicate it owns), start
//! more than one thread whatever the number of connections, or decide what a fired
//! watch means (callers do).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Why a watch fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    Deadline,
    Cancelled,
}

/// How often the thread looks at the cancellation flag while anything is watched.
const TICK: Duration = Duration::from_millis(50);

const NOT_FIRED: u8 = 0;
const DEADLINE: u8 = 1;
const CANCELLED: u8 = 2;

struct Entry {
    id: u64,
    /// A duplicate of the watched descriptor: shutting it down shuts the socket down;
    /// closing it (when the entry goes) leaves the caller's descriptor alone.
    fd: OwnedFd,
    deadline: Instant,
    /// Whether a cancellation shuts it down too (not for the cleanup after one).
    cancellable: bool,
    fired: Arc<AtomicU8>,
}

struct Watched {
    entries: Vec<Entry>,
    next_id: u64,
    started: bool,
}

static WATCHED: Mutex<Watched> = Mutex::new(Watched {
    entries: Vec::new(),
    next_id: 0,
    started: false,
});
static CHANGED: Condvar = Condvar::new();

fn lock() -> MutexGuard<'static, Watched> {
    WATCHED.lock().unwrap_or_else(|e| e.into_inner())
}

/// A socket being watched; dropping it (or `finish`) stops the watch.
pub struct Watch {
    id: Option<u64>,
    fired: Arc<AtomicU8>,
}

/// Shut `fd` down when `deadline` passes or the run is cancelled, until the returned
/// watch ends. Without a duplicate descriptor or the thread (out of resources), nothing
/// is watched and libssh2's own timeout is the only bound.
pub fn watch(fd: BorrowedFd<'_>, deadline: Instant) -> Watch {
    watch_with(fd, deadline, true)
}

/// `watch` that only the deadline fires: for what runs because of a cancellation (the
/// kill of a remote command after Ctrl-C), which must still end in bounded time.
pub fn watch_until(fd: BorrowedFd<'_>, deadline: Instant) -> Watch {
    watch_with(fd, deadline, false)
}

fn watch_with(fd: BorrowedFd<'_>, deadline: Instant, cancellable: bool) -> Watch {
    let fired = Arc::new(AtomicU8::new(NOT_FIRED));
    let unwatched = Watch {
        id: None,
        fired: Arc::clone(&fired),
    };
    let Ok(fd) = fd.try_clone_to_owned() else {
        return unwatched;
    };
    let mut st = lock();
    if !st.started {
        let spawned = std::thread::Builder::new()
            .name("nexus-watchdog".into())
            .stack_size(64 * 1024)
            .spawn(run);
        if spawned.is_err() {
            return unwatched;
        }
        st.started = true;
    }
    st.next_id += 1;
    let id = st.next_id;
    st.entries.push(Entry {
        id,
        fd,
        deadline,
        cancellable,
        fired: Arc::clone(&fired),
    });
    drop(st);
    CHANGED.notify_one();
    Watch {
        id: Some(id),
        fired,
    }
}

impl Watch {
    /// Stop watching; whether the watch fired, and why. After this the socket is never
    /// shut down by the watchdog.
    pub fn finish(mut self) -> Option<Fired> {
        self.stop();
        match self.fired.load(Ordering::SeqCst) {
            DEADLINE => Some(Fired::Deadline),
            CANCELLED => Some(Fired::Cancelled),
            _ => None,
        }
    }

    fn stop(&mut self) {
        if let Some(id) = self.id.take() {
            lock().entries.retain(|e| e.id != id);
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The thread: shut down what is due, sleep until the next deadline (at most a tick while
/// anything is watched, to see a cancellation), forever.
fn run() {
    let mut st = lock();
    loop {
        let now = Instant::now();
        let cancelled = crate::signals::cancelled();
        st.entries.retain(|e| {
            let why = if cancelled && e.cancellable {
                CANCELLED
            } else if e.deadline <= now {
                DEADLINE
            } else {
                return true;
            };
            e.fired.store(why, Ordering::SeqCst);
            crate::sys::shutdown(e.fd.as_fd());
            false
        });
        let next = st.entries.iter().map(|e| e.deadline).min();
        st = match next {
            Some(d) => {
                let wait = d.saturating_duration_since(now).min(TICK);
                CHANGED
                    .wait_timeout(st, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => CHANGED.wait(st).unwrap_or_else(|e| e.into_inner()),
        };
    }
}
