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
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
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
    /// Endpoints with handshakes under way or hosts waiting for one.
    endpoints: HashMap<String, Endpoint>,
    /// Endpoints slowed below the limit by drops: (handshakes at once, logins since the
    /// last change).
    slowed: HashMap<String, (usize, usize)>,
}

/// One endpoint's handshakes under way, the hosts waiting for a turn, and what wakes
/// them. A turn given back wakes one waiter of its own endpoint, not every waiting
/// thread of the run: with one shared condvar, each of 1000 handshakes woke the ~200
/// threads waiting for other endpoints too, a third of nexus's CPU at 300 hosts.
#[derive(Default)]
struct Endpoint {
    busy: usize,
    waiting: usize,
    freed: Arc<Condvar>,
}

fn state() -> MutexGuard<'static, State> {
    static S: OnceLock<Mutex<State>> = OnceLock::new();
    S.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Set the limit for this process (from `[config]`).
pub fn set_limit(n: usize) {
    LIMIT.store(n.max(1), Ordering::Relaxed);
}

/// `endpoint` dropped a connection before its banner: fewer handshakes at once to it.
pub fn dropped(endpoint: &str) {
    let limit = LIMIT.load(Ordering::Relaxed);
    let mut state = state();
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
    let mut state = state();
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
    if let Some(e) = state.endpoints.get(endpoint) {
        e.freed.notify_all();
    }
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
    let mut state = state();
    let mut waited = false;
    loop {
        let now = Instant::now();
        // A turn that comes in the deadline's last moments is no use: connecting would
        // fail at once, blaming the server for the wait.
        let why = if crate::signals::cancelled() {
            Some(NoTurn::Cancelled)
        } else if waited && now + LAST_MOMENT >= deadline {
            Some(NoTurn::Deadline)
        } else {
            None
        };
        let limit = match state.slowed.get(endpoint) {
            Some(&(n, _)) => n,
            None => LIMIT.load(Ordering::Relaxed),
        };
        let e = state.endpoints.entry(endpoint.to_string()).or_default();
        if waited {
            e.waiting -= 1;
        }
        if let Some(why) = why {
            // A wake-up this thread took may have been meant for a turn given back:
            // pass it on to the next waiter.
            e.freed.notify_one();
            if e.busy == 0 && e.waiting == 0 {
                state.endpoints.remove(endpoint);
            }
            return Err(why);
        }
        if e.busy < limit {
            e.busy += 1;
            if waited {
                log::debug!("ssh: {endpoint}: handshake turn taken after waiting ({limit} at once per endpoint)");
            }
            return Ok(Turn {
                endpoint: endpoint.to_string(),
            });
        }
        if now >= deadline {
            if e.busy == 0 && e.waiting == 0 {
                state.endpoints.remove(endpoint);
            }
            return Err(NoTurn::Deadline);
        }
        waited = true;
        e.waiting += 1;
        let freed = Arc::clone(&e.freed);
        // Woken by a turn given back, or every 100 ms to notice a cancellation.
        let wait = (deadline - now).min(Duration::from_millis(100));
        state = freed
            .wait_timeout(state, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut state = state();
        if let Some(e) = state.endpoints.get_mut(&self.endpoint) {
            e.busy -= 1;
            if e.waiting > 0 {
                e.freed.notify_one();
            } else if e.busy == 0 {
                state.endpoints.remove(&self.endpoint);
            }
        }
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

    /// Many hosts behind two endpoints: each gets its turn, never more than the limit
    /// at once per endpoint, and a turn given back is taken by a waiter of its own
    /// endpoint without any waiting past the deadline.
    #[test]
    fn every_waiter_gets_a_turn_and_the_limit_holds() {
        use std::sync::atomic::AtomicUsize;
        let deadline = Instant::now() + Duration::from_secs(60);
        let counts: [(AtomicUsize, AtomicUsize); 2] = Default::default();
        std::thread::scope(|s| {
            for i in 0..60 {
                let counts = &counts;
                s.spawn(move || {
                    let (endpoint, (now, most)) = if i % 2 == 0 {
                        ("pace-many-a:22", &counts[0])
                    } else {
                        ("pace-many-b:22", &counts[1])
                    };
                    let turn = take(endpoint, deadline).ok().expect("a turn");
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    now.fetch_sub(1, Ordering::SeqCst);
                    drop(turn);
                });
            }
        });
        for (now, most) in &counts {
            assert_eq!(now.load(Ordering::SeqCst), 0);
            let most = most.load(Ordering::SeqCst);
            assert!((1..=DEFAULT_LIMIT).contains(&most), "{most} at once");
        }
        assert!(
            !state().endpoints.contains_key("pace-many-a:22"),
            "left behind"
        );
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
