//! Handshakes paced per endpoint: many hosts can sit behind one sshd (a bastion, a load
//! balancer, a test fleet), and OpenSSH drops unauthenticated connections past its
//! `MaxStartups` (10 by default). At most `handshakes_per_endpoint` connections to one
//! endpoint (address and port, or ProxyCommand) are between TCP connect and the end of
//! authentication at once; the others wait for a turn, within their deadline. An
//! endpoint that drops a connection before its banner anyway (its listener counts logins
//! longer than the client does, more so on a loaded machine) gets half as many at once,
//! down to [`FLOOR`], and one more again after each [`CALM`] logins in a row without a
//! drop, up to the limit.
//! Must not: hold a turn after the handshake, or wait past a deadline or a cancellation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Default of `[config] handshakes_per_endpoint`: well below OpenSSH's MaxStartups start
/// (10), which counts a connection until sshd's listener hears of its login — later than
/// the client knows it is in (at 8, sshd still dropped 3 of 200 logins in the suite).
pub const DEFAULT_LIMIT: usize = 6;

/// Less time than this left after waiting for a turn: give up rather than start a
/// handshake that cannot finish.
const LAST_MOMENT: Duration = Duration::from_millis(100);

static LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_LIMIT);

/// The fewest handshakes at once an endpoint is slowed to by drops.
const FLOOR: usize = 2;

/// Logins in a row without a drop after which a slowed endpoint gets one more at once.
const CALM: usize = 16;

#[derive(Default)]
struct State {
    /// Handshakes under way per endpoint.
    busy: HashMap<String, usize>,
    /// Endpoints slowed below the limit by drops: (handshakes at once, logins since the
    /// last change).
    slowed: HashMap<String, (usize, usize)>,
}

struct Turns {
    state: Mutex<State>,
    freed: Condvar,
}

fn turns() -> &'static Turns {
    static T: OnceLock<Turns> = OnceLock::new();
    T.get_or_init(|| Turns {
        state: Mutex::new(State::default()),
        freed: Condvar::new(),
    })
}

/// Set the limit for this process (from `[config]`).
pub fn set_limit(n: usize) {
    LIMIT.store(n.max(1), Ordering::Relaxed);
}

/// `endpoint` dropped a connection before its banner: fewer handshakes at once to it.
pub fn dropped(endpoint: &str) {
    let limit = LIMIT.load(Ordering::Relaxed);
    let mut state = turns().state.lock().unwrap_or_else(|e| e.into_inner());
    let now = state.slowed.get(endpoint).map_or(limit, |s| s.0);
    let next = (now / 2).max(FLOOR).min(now);
    if next < now {
        log::debug!("ssh: {endpoint}: {next} handshakes at once from now on (it dropped a connection at {now})");
    }
    state.slowed.insert(endpoint.to_string(), (next, 0));
}

/// A login to `endpoint` went through: a slowed endpoint gets one more handshake at once
/// after [`CALM`] of them in a row.
pub fn logged_in(endpoint: &str) {
    let limit = LIMIT.load(Ordering::Relaxed);
    let mut state = turns().state.lock().unwrap_or_else(|e| e.into_inner());
    let Some(s) = state.slowed.get_mut(endpoint) else {
        return;
    };
    s.1 += 1;
    if s.1 < CALM {
        return;
    }
    *s = (s.0 + 1, 0);
    let now = s.0;
    if now >= limit {
        state.slowed.remove(endpoint);
    }
    log::debug!(
        "ssh: {endpoint}: {} handshakes at once from now on ({CALM} logins without a drop)",
        now.min(limit)
    );
    drop(state);
    turns().freed.notify_all();
}

/// A turn to handshake with `endpoint`, given back on drop.
pub struct Turn {
    endpoint: String,
}

/// Why no turn came.
pub enum NoTurn {
    Deadline,
    Cancelled,
}

/// Wait for a turn at `endpoint` until `deadline`.
pub fn take(endpoint: &str, deadline: Instant) -> Result<Turn, NoTurn> {
    let t = turns();
    let mut state = t.state.lock().unwrap_or_else(|e| e.into_inner());
    let mut waited = false;
    loop {
        if crate::signals::cancelled() {
            return Err(NoTurn::Cancelled);
        }
        let now = Instant::now();
        // A turn that comes in the deadline's last moments is no use: connecting would
        // fail at once, blaming the server for the wait.
        if waited && now + LAST_MOMENT >= deadline {
            return Err(NoTurn::Deadline);
        }
        let limit = match state.slowed.get(endpoint) {
            Some(&(n, _)) => n,
            None => LIMIT.load(Ordering::Relaxed),
        };
        let n = state.busy.entry(endpoint.to_string()).or_insert(0);
        if *n < limit {
            *n += 1;
            if waited {
                log::debug!("ssh: {endpoint}: handshake turn taken after waiting ({limit} at once per endpoint)");
            }
            return Ok(Turn {
                endpoint: endpoint.to_string(),
            });
        }
        if now >= deadline {
            return Err(NoTurn::Deadline);
        }
        waited = true;
        let wait = (deadline - now).min(Duration::from_millis(100));
        state = t
            .freed
            .wait_timeout(state, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let t = turns();
        let mut state = t.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = state.busy.get_mut(&self.endpoint) {
            *n -= 1;
            if *n == 0 {
                state.busy.remove(&self.endpoint);
            }
        }
        t.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_are_limited_per_endpoint_and_given_back() {
        let far = Instant::now() + Duration::from_secs(5);
        let soon = Instant::now() + Duration::from_millis(50);
        let held: Vec<Turn> = (0..DEFAULT_LIMIT)
            .map(|_| take("pace-test:22", far).ok().unwrap())
            .collect();
        assert!(matches!(take("pace-test:22", soon), Err(NoTurn::Deadline)));
        // Another endpoint is not affected.
        assert!(take("pace-test-other:22", soon).is_ok());
        drop(held);
        assert!(take("pace-test:22", soon).is_ok());
    }

    #[test]
    fn a_dropping_endpoint_gets_fewer_turns_down_to_the_floor() {
        let far = Instant::now() + Duration::from_secs(5);
        let soon = || Instant::now() + Duration::from_millis(50);
        let at_once = |e: &str| {
            let held: Vec<Turn> = std::iter::from_fn(|| take(e, soon()).ok())
                .take(50)
                .collect();
            held.len()
        };
        assert_eq!(at_once("pace-drop:22"), DEFAULT_LIMIT);
        dropped("pace-drop:22");
        assert_eq!(at_once("pace-drop:22"), DEFAULT_LIMIT / 2);
        for _ in 0..5 {
            dropped("pace-drop:22");
        }
        assert_eq!(at_once("pace-drop:22"), FLOOR);
        // Other endpoints keep the limit.
        assert!(take("pace-drop-other:22", far).is_ok());
        assert_eq!(at_once("pace-drop-other:22"), DEFAULT_LIMIT);
        // Calm logins give turns back, one per CALM, up to the limit.
        for _ in 0..CALM - 1 {
            logged_in("pace-drop:22");
        }
        assert_eq!(at_once("pace-drop:22"), FLOOR);
        logged_in("pace-drop:22");
        assert_eq!(at_once("pace-drop:22"), FLOOR + 1);
        for _ in 0..CALM * DEFAULT_LIMIT {
            logged_in("pace-drop:22");
        }
        assert_eq!(at_once("pace-drop:22"), DEFAULT_LIMIT);
        // A drop in between starts the count again.
        dropped("pace-drop:22");
        for _ in 0..CALM - 1 {
            logged_in("pace-drop:22");
        }
        dropped("pace-drop:22");
        assert_eq!(at_once("pace-drop:22"), FLOOR);
    }
}
