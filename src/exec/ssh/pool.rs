//! Connection pool: per host up to `pool_size` sessions, reused across the commands and
//! tasks of a run; all hosts together up to `max_connections`. A session is used by one
//! worker at a time (checked out, then returned). When every connection allowed is open
//! and a host needs one, the idle connection used least recently (of another host) is
//! closed at once to make room: no host waits for an idle timer. Sessions idle for 60 s
//! are closed when the pool is next touched; the rest when the pool is dropped.
//! Must not: hand one session to two threads, or connect while holding the lock.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::connect::{connect, Conn, ConnectError, Stopped};
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
    /// the pool have room; otherwise wait for one to come back. Waiting and connecting
    /// end at `deadline`.
    pub fn checkout(&self, t: &SshTarget, deadline: Instant) -> Result<Conn, ConnectError> {
        let k = key(t);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if crate::signals::cancelled() {
                return Err(ConnectError::cancelled());
            }
            if Instant::now() >= deadline {
                let mut e = ConnectError::new(
                    format!(
                        "no connection to {k} was free (pool_size = {}, max_connections = {})",
                        self.pool_size, self.max_connections
                    ),
                    vec!["raise pool_size or max_connections in [config]".into()],
                );
                e.stopped = Some(Stopped::Deadline);
                return Err(e);
            }
            close_idle(&mut st);
            let total = st.total;
            let slot = st.hosts.entry(k.clone()).or_default();
            if let Some((conn, since)) = slot.idle.pop() {
                drop(st);
                if healthy(&conn) {
                    log::debug!(
                        "ssh: {k}: reusing a pooled connection (idle {} ms)",
                        since.elapsed().as_millis()
                    );
                    return Ok(conn);
                }
                log::debug!("ssh: {k}: dropping a pooled connection the server closed");
                st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let slot = st.hosts.entry(k.clone()).or_default();
                slot.open -= 1;
                st.total -= 1;
                continue;
            }
            if slot.open < self.pool_size && total >= self.max_connections {
                if let Some(conn) = evict_lru(&mut st, &k, self.max_connections) {
                    drop(st);
                    close_now(conn);
                    st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    continue;
                }
            }
            let total = st.total;
            let slot = st.hosts.entry(k.clone()).or_default();
            if slot.open < self.pool_size && total < self.max_connections {
                slot.open += 1;
                st.total += 1;
                st.opened += 1;
                log::debug!(
                    "ssh: {k}: opening a new connection ({} of {} for this host, {} of {} in all)",
                    slot_open(&st, &k),
                    self.pool_size,
                    st.total,
                    self.max_connections
                );
                drop(st);
                let result = connect(t, deadline);
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
        log::debug!(
            "ssh: {}: closing a connection that can no longer be used",
            t.label
        );
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

/// Take the idle connection of another host that was used least recently, to make room
/// for `for_host` (counted as closed).
fn evict_lru(st: &mut State, for_host: &str, max: usize) -> Option<Conn> {
    let (host, i) = st
        .hosts
        .iter()
        .filter(|(h, _)| h.as_str() != for_host)
        .flat_map(|(h, slot)| {
            slot.idle
                .iter()
                .enumerate()
                .map(move |(i, (_, since))| (h, i, *since))
        })
        .min_by_key(|(_, _, since)| *since)
        .map(|(h, i, _)| (h.clone(), i))?;
    let slot = st.hosts.get_mut(&host)?;
    let (conn, since) = slot.idle.remove(i);
    slot.open -= 1;
    st.total -= 1;
    log::debug!(
        "ssh: {host}: closing a connection idle for {} ms to make room for {for_host} (max_connections = {max} reached)",
        since.elapsed().as_millis()
    );
    Some(conn)
}

/// Close a session without waiting on the server.
fn close_now(conn: Conn) {
    conn.session.set_blocking(false);
    let _ = conn
        .session
        .disconnect(None, "nexus needs the connection slot", None);
}

fn slot_open(st: &State, k: &str) -> usize {
    st.hosts.get(k).map_or(0, |s| s.open)
}

fn close_idle(st: &mut State) {
    let now = Instant::now();
    let mut closed = 0;
    for (host, slot) in st.hosts.iter_mut() {
        let before = slot.idle.len();
        slot.idle
            .retain(|(_, since)| now.duration_since(*since) < IDLE_TIMEOUT);
        let n = before - slot.idle.len();
        if n > 0 {
            log::debug!("ssh: {host}: closed {n} connection(s) idle for {IDLE_TIMEOUT:?}");
        }
        slot.open -= n;
        closed += n;
    }
    st.total -= closed;
    // Hosts with nothing open keep no entry: the map stays within max_connections entries
    // however many hosts a run has (this walk and evict_lru's run at every checkout).
    st.hosts.retain(|_, slot| slot.open > 0);
}

/// A reused session must still be usable: authenticated and its socket not closed (a
/// hang-up or error on the socket means the peer left).
fn healthy(conn: &Conn) -> bool {
    conn.session.authenticated() && !crate::sys::hung_up(conn.fd())
}

impl Drop for Pool {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for (host, slot) in st.hosts.iter_mut() {
            if !slot.idle.is_empty() {
                log::debug!(
                    "ssh: {host}: closing {} connection(s) at the end of the run",
                    slot.idle.len()
                );
            }
            for (conn, _) in slot.idle.drain(..) {
                // Without waiting: a server that stopped reading must not hold up the exit.
                close_now(conn);
            }
        }
    }
}
