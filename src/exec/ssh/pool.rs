//! Connection pool: per host up to `pool_size` sessions, reused across the commands and
//! tasks of a run; all hosts together up to `max_connections`. A session is used by one
//! worker at a time (checked out, then returned). Sessions idle for 60 s are closed when
//! the pool is next touched; the rest when the pool is dropped at the end of the run.
//! Must not: hand one session to two threads, or connect while holding the lock.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::connect::{connect, Conn, ConnectError};
use super::target::SshTarget;

pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Default)]
struct HostSlot {
    idle: Vec<(Conn, Instant)>,
    /// Sessions of this host that exist (idle or checked out) or are being opened.
    open: usize,
}

#[derive(Default)]
struct State {
    hosts: HashMap<String, HostSlot>,
    total: usize,
    /// Connections opened during the run (for tests and benchmarks).
    opened: usize,
}

pub struct Pool {
    pool_size: usize,
    max_connections: usize,
    state: Mutex<State>,
    freed: Condvar,
}

fn key(t: &SshTarget) -> String {
    t.label.clone()
}

impl Pool {
    pub fn new(pool_size: usize, max_connections: usize) -> Pool {
        Pool {
            pool_size: pool_size.max(1),
            max_connections: max_connections.max(1),
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
        }
    }

    /// A session for `t`: an idle one that still answers, or a new one when the host and
    /// the pool have room; otherwise wait for one to come back.
    pub fn checkout(&self, t: &SshTarget) -> Result<Conn, ConnectError> {
        let k = key(t);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if crate::signals::cancelled() {
                return Err(ConnectError {
                    reason: "cancelled".into(),
                    suggestions: vec![],
                    retryable: false,
                });
            }
            close_idle(&mut st);
            let total = st.total;
            let slot = st.hosts.entry(k.clone()).or_default();
            if let Some((conn, _)) = slot.idle.pop() {
                drop(st);
                if healthy(&conn) {
                    return Ok(conn);
                }
                st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let slot = st.hosts.entry(k.clone()).or_default();
                slot.open -= 1;
                st.total -= 1;
                continue;
            }
            if slot.open < self.pool_size && total < self.max_connections {
                slot.open += 1;
                st.total += 1;
                st.opened += 1;
                drop(st);
                let result = connect(t);
                if result.is_err() {
                    let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(slot) = st.hosts.get_mut(&k) {
                        slot.open -= 1;
                    }
                    st.total -= 1;
                    self.freed.notify_all();
                }
                return result;
            }
            let (guard, _) = self
                .freed
                .wait_timeout(st, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner());
            st = guard;
        }
    }

    /// Give a session back for reuse.
    pub fn checkin(&self, t: &SshTarget, conn: Conn) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.hosts
            .entry(key(t))
            .or_default()
            .idle
            .push((conn, Instant::now()));
        self.freed.notify_all();
    }

    /// Drop a session that broke.
    pub fn discard(&self, t: &SshTarget, conn: Conn) {
        drop(conn);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = st.hosts.get_mut(&key(t)) {
            slot.open = slot.open.saturating_sub(1);
        }
        st.total = st.total.saturating_sub(1);
        self.freed.notify_all();
    }

    /// Connections opened so far.
    pub fn opened(&self) -> usize {
        self.state.lock().map(|s| s.opened).unwrap_or(0)
    }
}

fn close_idle(st: &mut State) {
    let now = Instant::now();
    let mut closed = 0;
    for slot in st.hosts.values_mut() {
        let before = slot.idle.len();
        slot.idle
            .retain(|(_, since)| now.duration_since(*since) < IDLE_TIMEOUT);
        let n = before - slot.idle.len();
        slot.open -= n;
        closed += n;
    }
    st.total -= closed;
}

/// A reused session must still be usable: authenticated and its socket not closed.
fn healthy(conn: &Conn) -> bool {
    if !conn.session.authenticated() {
        return false;
    }
    let mut pfd = libc::pollfd {
        fd: conn.fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    // Readable with nothing pending at the SSH level means EOF or error: the peer left.
    n == 0 || pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) == 0
}

impl Drop for Pool {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for slot in st.hosts.values_mut() {
            for (conn, _) in slot.idle.drain(..) {
                let _ = conn.session.disconnect(None, "nexus run finished", None);
            }
        }
    }
}
