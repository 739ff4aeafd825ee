//! The time one connection attempt has, and what to say when it runs out. An attempt
//! (TCP connect, SSH banner, handshake, host key check, authentication) has the connect
//! timeout from its start, or less when the caller's deadline (a task's timeout, a
//! pre-flight check's) comes first; then it is cut short, and connecting stops.
//! Must not: wait, or do I/O.

use std::time::{Duration, Instant};

use super::connect::{ConnectError, Stopped};
use super::target::SshTarget;
use crate::config::duration::display;

/// The caller's deadline counts as the connect timeout's when they are this close.
const SAME_DEADLINE: Duration = Duration::from_millis(100);

/// The time of one attempt.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub deadline: Instant,
    /// The caller's deadline, not the connect timeout, ends this attempt.
    pub cut: bool,
    /// The connect timeout.
    pub limit: Duration,
}

impl Budget {
    /// An attempt on `t` that starts now and must end by `overall`.
    pub fn new(t: &SshTarget, overall: Instant) -> Budget {
        let own = Instant::now() + t.connect_timeout;
        Budget {
            deadline: own.min(overall),
            // Deadlines this close are one (a pre-flight check sets both to its timeout):
            // the connect timeout is named.
            cut: overall + SAME_DEADLINE < own,
            limit: t.connect_timeout,
        }
    }

    pub fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub fn passed(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// The step of an attempt that was under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Tcp,
    /// Waiting for the server's SSH banner; the bytes of other data it sent meanwhile.
    Banner(u64),
    Handshake,
    Auth,
    /// A jump host opening the connection onward (ProxyJump).
    Forward,
}

/// What to try when an attempt timed out and the server may only be slow.
pub fn slow_hint(limit: Duration) -> String {
    format!(
        "if the server is only slow to answer, raise connect_timeout in [config] or ConnectTimeout in ssh_config (now {})",
        display(limit)
    )
}

/// What the server sent instead of a banner.
fn sent(other: u64) -> String {
    match other {
        0 => "nothing".to_string(),
        n => format!("{} of other data", crate::preflight::bytes(n)),
    }
}

/// The attempt on `t` ran out of time during `phase`.
pub fn expired(t: &SshTarget, budget: &Budget, phase: Phase) -> ConnectError {
    let at = format!("{}:{}", t.hostname, t.port);
    let (host, port, user) = (&t.hostname, t.port, &t.user);
    let limit = display(budget.limit);
    let slow = slow_hint(budget.limit);
    let not_ssh = format!("check that port {port} on {host} is an SSH server: its first line starts with SSH- (nc {host} {port})");
    let (reason, help) = match (phase, budget.cut) {
        (Phase::Tcp, true) => (format!("the TCP connection to {at} was not made yet"), vec![]),
        (Phase::Tcp, false) => (
            format!("Connection timed out after {limit} (port {port})"),
            vec![
                format!("Verify the host is reachable: ping {host}"),
                format!("Check if SSH is running: nc -zv {host} {port}"),
                format!("Verify firewall rules allow port {port}"),
            ],
        ),
        (Phase::Banner(n), true) => (
            format!("no SSH banner had come from {at} yet (it sent {})", sent(n)),
            vec![not_ssh],
        ),
        (Phase::Banner(n), false) => (
            format!("the server at {at} sent no SSH banner within {limit} (it sent {})", sent(n)),
            if n == 0 { vec![not_ssh, slow] } else { vec![not_ssh] },
        ),
        (Phase::Handshake, true) => (format!("the SSH handshake with {at} had not finished"), vec![]),
        (Phase::Handshake, false) => (
            format!("timed out after {limit} during the SSH handshake with {at}"),
            vec![not_ssh, slow],
        ),
        (Phase::Auth, true) => (format!("authentication as {user} at {at} had not finished"), vec![]),
        (Phase::Auth, false) => (
            format!("timed out after {limit} during authentication as {user} at {at}"),
            vec![
                format!("sshd on {host} took too long to accept the login: its log says why (slow AuthorizedKeysCommand, DNS, PAM)"),
                slow,
            ],
        ),
        (Phase::Forward, _) => (
            format!("the jump host did not open a connection to {at} within {limit}"),
            vec!["check that the jump host can reach the target: AllowTcpForwarding, firewalls".into()],
        ),
    };
    let mut e = ConnectError::new(reason, help);
    if budget.cut {
        e.stopped = Some(Stopped::Deadline);
    } else {
        // Silence and a stalled exchange may be a busy server (worth another attempt); a
        // server that talks but never says SSH is not an SSH server.
        e.retryable = !matches!(phase, Phase::Banner(n) if n > 0) && phase != Phase::Forward;
    }
    e.in_handshake = matches!(phase, Phase::Banner(_) | Phase::Handshake);
    e
}
