//! Opening one authenticated SSH session: TCP connect, or a ProxyCommand (proxy.rs), or
//! ProxyJump hops (a tunnel through each), the SSH banner (banner.rs), the handshake
//! (ECDH P-256 then curve25519; ed25519 host keys), the host key check (docs/ssh.md), and
//! authentication in the documented order (docs/ssh.md) (explicit identities, ssh-agent,
//! default keys); up to 3 attempts with backoff. Each attempt is bounded as a whole by
//! the connect timeout, and connecting by the caller's deadline (budget.rs); blocking
//! libssh2 calls are ended by the watchdog (watchdog.rs) when time runs out or the run is
//! cancelled. Errors are `ConnectError`s: what happened and what to try.
//! Must not: prompt when there is no terminal or CI is set, or block without a deadline.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use ssh2::{HostKeyType, MethodType, Session};

use super::algorithms::{effective, Kind, HOST_KEYS};
use super::banner::{self, Banner};
use super::base64;
use super::budget::{expired, Budget, Phase};
use super::known_hosts::{known_name, KnownHosts, Verdict};
use super::proxy::{self, Proxy};
use super::target::SshTarget;
use super::userkey;
use super::watchdog::{self, Fired};
use crate::config::HostKeyChecking;

/// An authenticated session and the socket under it.
pub struct Conn {
    pub session: Session,
    /// A duplicate of the session's socket: to poll it, and to watch it (watchdog.rs).
    pub socket: OwnedFd,
    /// The host as written in nexus.toml (for the debug log).
    pub label: String,
    /// How authentication succeeded: "key: PATH", "ssh-agent", "password".
    pub auth: String,
    /// The ProxyCommand the session runs over, killed when the session is dropped
    /// (after it: fields drop in order).
    pub proxy: Option<Proxy>,
    /// ServerAliveInterval (seconds; 0: none) and ServerAliveCountMax.
    pub keepalive: (u32, u32),
}

impl Conn {
    /// The session's socket, for poll.
    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// How long the server may stay silent, keepalives unanswered, before the connection
    /// counts as dead: as OpenSSH, one interval more than ServerAliveCountMax of them.
    /// None without keepalives.
    pub fn dead_after(&self) -> Option<std::time::Duration> {
        let (interval, count) = self.keepalive;
        (interval > 0)
            .then(|| std::time::Duration::from_secs(u64::from(interval) * (u64::from(count) + 1)))
    }
}

/// Why connecting stopped before it failed on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The caller's deadline (a task's timeout, a pre-flight check's) came first.
    Deadline,
    Cancelled,
}

/// Why a connection failed: the reason, and what to try.
#[derive(Debug, Clone)]
pub struct ConnectError {
    pub reason: String,
    pub suggestions: Vec<String>,
    /// A transient failure (the handshake timed out): worth another attempt.
    pub retryable: bool,
    /// The SSH handshake itself failed (not the host key check or authentication): the
    /// transport may be to blame (a ProxyCommand that exited, say).
    pub in_handshake: bool,
    /// Connecting was stopped (deadline, Ctrl-C) rather than failing on its own.
    pub stopped: Option<Stopped>,
    /// The server closed the connection before saying anything: what a busy sshd does
    /// past its MaxStartups. Retried apart from the attempts, with fewer handshakes at
    /// once to that endpoint.
    pub dropped: bool,
}

impl ConnectError {
    pub(super) fn new(reason: impl Into<String>, suggestions: Vec<String>) -> ConnectError {
        ConnectError {
            reason: reason.into(),
            suggestions,
            retryable: false,
            in_handshake: false,
            stopped: None,
            dropped: false,
        }
    }

    /// The run was cancelled while connecting.
    pub fn cancelled() -> ConnectError {
        let mut e = ConnectError::new("cancelled", vec![]);
        e.stopped = Some(Stopped::Cancelled);
        e
    }

    /// The failure as a cause: the reason, and the suggestions as what to try.
    pub fn cause(&self) -> crate::exec::Cause {
        crate::exec::Cause {
            what: self.reason.clone(),
            help: self.suggestions.clone(),
        }
    }
}

const ATTEMPTS: u32 = 3;
/// libssh2's code for a failed algorithm negotiation.
const LIBSSH2_ERROR_KEX_FAILURE: i32 = -5;

/// HOST_KEYS with the algorithms of the key types known_hosts holds for the host first (as
/// ssh does): a host known by its ECDSA key is asked for that key, not for an ed25519 key
/// that would then be unknown.
fn host_key_prefs(t: &SshTarget) -> String {
    if let Some(list) = &t.host_key_algorithms {
        return list.clone(); // HostKeyAlgorithms in ssh_config: as written (ssh does the same)
    }
    let default = effective(Kind::HostKey, None).unwrap_or_else(|_| HOST_KEYS.to_string());
    if t.host_key_checking == HostKeyChecking::Off {
        return default;
    }
    let known = KnownHosts::load(&t.known_hosts).key_types(&t.hostname, t.port);
    let algorithms = |key_type: &str| -> &'static [&'static str] {
        match key_type {
            "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
            "ssh-ed25519" => &["ssh-ed25519"],
            "ecdsa-sha2-nistp256" => &["ecdsa-sha2-nistp256"],
            "ecdsa-sha2-nistp384" => &["ecdsa-sha2-nistp384"],
            "ecdsa-sha2-nistp521" => &["ecdsa-sha2-nistp521"],
            _ => &[],
        }
    };
    let first: Vec<&str> = default
        .split(',')
        .filter(|a| known.iter().any(|k| algorithms(k).contains(a)))
        .collect();
    let rest = default.split(',').filter(|a| !first.contains(a));
    first
        .iter()
        .copied()
        .chain(rest)
        .collect::<Vec<_>>()
        .join(",")
}

/// One TCP connection to `t` (each address it resolves to in turn) within the budget.
fn tcp(t: &SshTarget, budget: &Budget) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<SocketAddr> = match (t.hostname.as_str(), t.port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            return Err(ConnectError::new(
                format!(
                    "cannot resolve host name {}: {}",
                    t.hostname,
                    crate::error::io_reason(&e)
                ),
                vec![
                    format!(
                        "check the spelling of `{}` in nexus.toml or ssh_config",
                        t.label
                    ),
                    format!("check DNS: getent hosts {}", t.hostname),
                ],
            ))
        }
    };
    let mut last = None;
    for a in &addrs {
        let wake = Some(crate::signals::wake_fd()).filter(|&fd| fd >= 0);
        match crate::sys::tcp_connect(a, budget.left(), wake) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                return Err(ConnectError::cancelled())
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| std::io::Error::other("no address"));
    if e.kind() == std::io::ErrorKind::TimedOut {
        return Err(expired(t, budget, Phase::Tcp));
    }
    let (host, port) = (&t.hostname, t.port);
    let reason = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => format!("Connection refused (port {port})"),
        _ => format!("{} (port {port})", crate::error::io_reason(&e)),
    };
    let mut err = ConnectError::new(
        reason,
        vec![
            format!("Verify the host is reachable: ping {host}"),
            format!("Check if SSH is running: nc -zv {host} {port}"),
            format!("Verify firewall rules allow port {port}"),
        ],
    );
    err.retryable = true;
    Err(err)
}

/// Connect (through the ProxyJump hops or the ProxyCommand, if any), check the host
/// key, authenticate; every attempt within the connect timeout, and all of it (attempts,
/// the waits between them, the hops) by `deadline`.
pub fn connect(t: &SshTarget, deadline: Instant) -> Result<Conn, ConnectError> {
    let Some((first, rest)) = t.jumps.split_first() else {
        return with_retries(t, deadline);
    };
    // Each next hop (and finally the target) is reached through a direct-tcpip channel
    // of the previous session, bridged to a socket pair the next session runs over.
    let mut prev = with_retries(first, deadline).map_err(|e| via(e, first))?;
    let hops: Vec<&SshTarget> = rest.iter().collect();
    for (i, next) in hops.iter().copied().chain(std::iter::once(t)).enumerate() {
        let is_target = i == hops.len();
        let budget = Budget::new(next, deadline);
        let stream = tunnel(prev, next, &budget)?;
        prev =
            establish(stream, next, &budget)
                .map_err(|e| if is_target { e } else { via(e, next) })?;
    }
    Ok(prev)
}

/// [`open`], again after a transient failure (refused, silent, too slow), while there
/// are attempts left and the next one can start before `deadline`. A connection the
/// server dropped before its banner (a busy sshd past MaxStartups) does not use up an
/// attempt, up to [`DROPS`] times: it slows the handshakes to that endpoint instead.
fn with_retries(t: &SshTarget, deadline: Instant) -> Result<Conn, ConnectError> {
    let endpoint = endpoint(t);
    // `made`: connections tried; `attempt`: the one under way, counting only failures
    // that are not drops; `drops`: connections dropped before the banner so far.
    let (mut made, mut attempt, mut drops) = (0, 1, 0);
    loop {
        // A turn at the endpoint first (held until the session is authenticated or the
        // attempt fails); connect_timeout counts from then.
        let turn = take_turn(&endpoint, deadline)?;
        made += 1;
        let opened = open(t, &Budget::new(t, deadline));
        drop(turn);
        let mut e = match opened {
            Ok(conn) => {
                super::pace::logged_in(&endpoint);
                return Ok(conn);
            }
            Err(e) => e,
        };
        let attempts = |e: &mut ConnectError| {
            if made > 1 {
                e.reason = format!("{}, {made} attempts", e.reason);
            }
        };
        let dropped = e.dropped && e.stopped.is_none() && drops < DROPS;
        if !dropped && (!e.retryable || e.stopped.is_some() || attempt == ATTEMPTS) {
            if e.stopped != Some(Stopped::Cancelled) {
                attempts(&mut e);
            }
            return Err(e);
        }
        let pause = if dropped {
            drops += 1;
            super::pace::dropped(&endpoint);
            log::debug!(
                "ssh: {}: {endpoint} dropped the connection before its banner ({drops} of at most {DROPS} times): trying again",
                t.label
            );
            drop_pause(drops)
        } else {
            attempt += 1;
            Duration::from_millis(250 << (attempt - 1))
        };
        if Instant::now() + pause >= deadline {
            // No time for another attempt: the caller's deadline ends connecting.
            attempts(&mut e);
            e.stopped = Some(Stopped::Deadline);
            return Err(e);
        }
        if !crate::signals::sleep(pause) {
            return Err(ConnectError::cancelled());
        }
    }
}

/// How many times a connection dropped before its banner is tried again (apart from the
/// attempts): with the pauses, about 3 to 4.5 s of a busy server's time.
const DROPS: u32 = 4;

/// The wait before trying again after the `n`th drop: 200 ms doubling up to 1.6 s, with
/// up to half of it again at random so hosts dropped together do not return together.
fn drop_pause(n: u32) -> Duration {
    let base = 100u64 << n.min(4);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    Duration::from_millis(base + nanos % (base / 2 + 1))
}

/// What handshakes are paced by: `t`'s address and port, or its ProxyCommand.
fn endpoint(t: &SshTarget) -> String {
    match &t.proxy_command {
        Some(c) => format!("ProxyCommand {c}"),
        None => format!("{}:{}", t.hostname, t.port),
    }
}

/// A turn to handshake with `endpoint`.
fn take_turn(endpoint: &str, deadline: Instant) -> Result<super::pace::Turn, ConnectError> {
    super::pace::take(endpoint, deadline).map_err(|why| match why {
        super::pace::NoTurn::Cancelled => ConnectError::cancelled(),
        super::pace::NoTurn::Deadline => {
            let mut e = ConnectError::new(
                format!("no turn to connect to {endpoint} came in time: other hosts behind it were connecting"),
                vec!["raise handshakes_per_endpoint in [config] (and MaxStartups on that server), or the task's timeout".into()],
            );
            e.stopped = Some(Stopped::Deadline);
            e
        }
    })
}

/// One attempt at a session to `t`: over its ProxyCommand, or a TCP connection.
fn open(t: &SshTarget, budget: &Budget) -> Result<Conn, ConnectError> {
    log::debug!(
        "ssh: {}: connecting to {}:{} as {}{}",
        t.label,
        t.hostname,
        t.port,
        t.user,
        t.proxy_command
            .as_ref()
            .map(|c| format!(" through ProxyCommand {c}"))
            .unwrap_or_default()
    );
    let Some(command) = &t.proxy_command else {
        let stream = tcp(t, budget)?;
        return establish(stream, t, budget);
    };
    if command == "-" {
        return Err(ConnectError::new(
            format!("ProxyCommand - (a connection on nexus's own stdin and stdout) cannot be used for {}", t.label),
            vec!["give ProxyCommand a command, or set ProxyCommand none".into()],
        ));
    }
    let (stream, proxy) = proxy::spawn(command)?;
    match establish(stream, t, budget) {
        Ok(mut conn) => {
            conn.proxy = Some(proxy);
            Ok(conn)
        }
        // The command ended because the session failed; it is to blame only when the
        // handshake did not get through.
        Err(e) if e.in_handshake => Err(proxy.explain(e, &t.hostname, t.port)),
        Err(e) => Err(e),
    }
}

fn via(mut e: ConnectError, hop: &SshTarget) -> ConnectError {
    e.reason = format!("ProxyJump hop {}: {}", hop.label, e.reason);
    e
}

/// A socket whose other end is pumped to and from a direct-tcpip channel of `prev`
/// towards `next`. The pump thread owns `prev` and ends when either side closes.
fn tunnel(
    prev: Conn,
    next: &SshTarget,
    budget: &Budget,
) -> Result<std::os::unix::net::UnixStream, ConnectError> {
    use std::os::unix::net::UnixStream;
    prev.session.set_blocking(true);
    let watch = watchdog::watch(prev.socket.as_fd(), budget.deadline);
    let opened = prev
        .session
        .channel_direct_tcpip(&next.hostname, next.port, None);
    match watch.finish() {
        Some(Fired::Cancelled) => return Err(ConnectError::cancelled()),
        Some(Fired::Deadline) => return Err(expired(next, budget, Phase::Forward)),
        None => {}
    }
    let channel = opened.map_err(|e| {
        ConnectError::new(
            format!(
                "the jump host refused to forward to {}:{}: {}",
                next.hostname,
                next.port,
                e.message()
            ),
            vec!["check AllowTcpForwarding on the jump host and the target's address".into()],
        )
    })?;
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| ConnectError::new(format!("socketpair: {e}"), vec![]))?;
    std::thread::Builder::new()
        .name("nexus-jump".into())
        .stack_size(128 * 1024)
        .spawn(move || pump(prev, channel, ours))
        .map_err(|e| ConnectError::new(format!("cannot start a tunnel thread: {e}"), vec![]))?;
    Ok(theirs)
}

/// Move bytes between the channel and the socket until either side closes.
fn pump(prev: Conn, mut channel: ssh2::Channel, mut sock: std::os::unix::net::UnixStream) {
    use std::io::{ErrorKind, Read};
    let _ = sock.set_nonblocking(true);
    prev.session.set_blocking(false);
    let mut buf = vec![0u8; 32 * 1024];
    let mut pending: Vec<u8> = Vec::new(); // from the socket, not yet taken by the channel
    loop {
        let mut progressed = false;
        match channel.read(&mut buf) {
            Ok(0) if channel.eof() => return,
            Ok(0) => {}
            Ok(n) => {
                progressed = true;
                if write_all_blocking(&mut sock, &buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
        if pending.is_empty() {
            match sock.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    progressed = true;
                    pending.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if !pending.is_empty() {
            match channel.write(&pending) {
                Ok(n) => {
                    progressed = progressed || n > 0;
                    pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        if !progressed {
            let waiting = !pending.is_empty();
            let waits = [
                crate::sys::Wait {
                    fd: Some(prev.fd()),
                    read: true,
                    write: waiting,
                },
                crate::sys::Wait {
                    fd: Some(sock.as_raw_fd()),
                    read: !waiting,
                    write: false,
                },
            ];
            crate::sys::poll(&waits, Duration::from_millis(100));
        }
    }
}

fn write_all_blocking(
    sock: &mut std::os::unix::net::UnixStream,
    mut data: &[u8],
) -> std::io::Result<()> {
    while !data.is_empty() {
        match sock.write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let w = crate::sys::Wait {
                    fd: Some(sock.as_raw_fd()),
                    read: false,
                    write: true,
                };
                crate::sys::poll(&[w], Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The SSH banner, handshake, host key check and authentication over `stream`, within
/// the attempt's budget.
fn establish<S: AsFd + AsRawFd + 'static>(
    stream: S,
    t: &SshTarget,
    budget: &Budget,
) -> Result<Conn, ConnectError> {
    let socket = stream
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| ConnectError::new(format!("cannot duplicate the socket: {e}"), vec![]))?;
    match banner::wait(socket.as_fd(), budget.deadline) {
        Banner::Ready { other } => log_skipped(t, other),
        Banner::TimedOut { other } => return Err(expired(t, budget, Phase::Banner(other))),
        Banner::Cancelled => return Err(ConnectError::cancelled()),
        Banner::Closed { other } => return Err(closed_before_banner(t, other)),
        Banner::Failed(e) => {
            let mut err = closed_before_banner(t, 0);
            err.reason = format!(
                "reading from {}:{} failed before its SSH banner: {}",
                t.hostname,
                t.port,
                crate::error::io_reason(&e)
            );
            return Err(err);
        }
    }
    let mut session =
        Session::new().map_err(|e| ConnectError::new(format!("libssh2: {e}"), vec![]))?;
    let _ = session.method_pref(MethodType::Kex, &t.kex);
    let host_keys = host_key_prefs(t);
    let _ = session.method_pref(MethodType::HostKey, &host_keys);
    // libssh2's timeout bounds one call, and only while it waits; the watchdog, the whole.
    let watch = watchdog::watch(socket.as_fd(), budget.deadline);
    session.set_tcp_stream(stream);
    session.set_timeout(budget.limit.as_millis().min(u32::MAX as u128) as u32);
    let mut phase = Phase::Handshake;
    let mut outcome = handshake(&mut session, t, &host_keys).map(|()| String::new());
    if outcome.is_ok() {
        phase = Phase::Auth;
        outcome = check_host_key(&session, t).and_then(|()| authenticate(&session, t));
    }
    let auth = match (watch.finish(), outcome) {
        (Some(Fired::Cancelled), _) => return Err(ConnectError::cancelled()),
        (Some(Fired::Deadline), _) => return Err(expired(t, budget, phase)),
        (None, Err(_)) if crate::signals::cancelled() => return Err(ConnectError::cancelled()),
        (None, Err(_)) if budget.passed() => return Err(expired(t, budget, phase)),
        (None, outcome) => outcome?,
    };
    log::debug!("ssh: {}: authenticated as {} with {auth}", t.label, t.user);
    session.set_timeout(0);
    if t.keepalive > 0 {
        session.set_keepalive(true, t.keepalive);
    }
    Ok(Conn {
        session,
        socket,
        label: t.label.clone(),
        auth,
        proxy: None,
        keepalive: (t.keepalive, t.keepalive_count_max),
    })
}

fn log_skipped(t: &SshTarget, other: u64) {
    if other > 0 {
        log::debug!(
            "ssh: {}: skipped {other} bytes the server sent before its SSH banner",
            t.label
        );
    }
}

/// The server closed the connection (or it failed) before its banner: a server that
/// drops connections when busy (sshd's MaxStartups), or not an SSH server.
fn closed_before_banner(t: &SshTarget, other: u64) -> ConnectError {
    let (host, port) = (&t.hostname, t.port);
    let after = match other {
        0 => String::new(),
        n => format!(" (after {} of other data)", crate::preflight::bytes(n)),
    };
    let mut e = ConnectError::new(
        format!("the server at {host}:{port} closed the connection before its SSH banner{after}"),
        vec![
            format!("check that port {port} on {host} is an SSH server: its first line starts with SSH- (nc {host} {port})"),
            "a busy sshd drops new connections (MaxStartups): its log says so".into(),
        ],
    );
    e.retryable = other == 0;
    e.dropped = other == 0;
    e.in_handshake = true;
    e
}

/// The SSH handshake (key exchange); a failed algorithm negotiation is not retried.
fn handshake(session: &mut Session, t: &SshTarget, host_keys: &str) -> Result<(), ConnectError> {
    session.handshake().map_err(|e| {
        if e.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_KEX_FAILURE) {
            // Negotiation failed: trying again would offer the same lists.
            let mut err = ConnectError::new(
                format!(
                    "SSH handshake failed: the server accepts none of the algorithms nexus offered (key exchange: {}; host keys: {host_keys})",
                    t.kex
                ),
                vec![
                    "compare with the server's KexAlgorithms and HostKeyAlgorithms (sshd -T | grep algorithms)".into(),
                    "KexAlgorithms and HostKeyAlgorithms in ssh_config change what nexus offers; `nexus hosts resolve HOST` shows it".into(),
                ],
            );
            err.in_handshake = true;
            return err;
        }
        let mut err = ConnectError::new(
            format!("SSH handshake failed: {}", e.message()),
            vec![format!(
                "check that port {} on {} is an SSH server",
                t.port, t.hostname
            )],
        );
        // A busy server (many logins at once) answers late: try again.
        err.retryable = true;
        err.in_handshake = true;
        err
    })?;
    log::debug!(
        "ssh: {}: negotiated key exchange {}, host key {}, cipher {}",
        t.label,
        session.methods(MethodType::Kex).unwrap_or("?"),
        session.methods(MethodType::HostKey).unwrap_or("?"),
        session.methods(MethodType::CryptCs).unwrap_or("?"),
    );
    Ok(())
}

fn key_type_name(t: HostKeyType) -> &'static str {
    match t {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

static KNOWN_HOSTS_WRITE: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// Endpoints and fingerprints accepted with `host_key_checking = "off"` in this run.
static ACCEPTED_UNCHECKED: std::sync::Mutex<BTreeSet<(String, String)>> =
    std::sync::Mutex::new(BTreeSet::new());

fn check_host_key(session: &Session, t: &SshTarget) -> Result<(), ConnectError> {
    let Some((key, kind)) = session.host_key() else {
        return Err(ConnectError::new("the server sent no host key", vec![]));
    };
    let seen = SeenKey {
        name: known_name(&t.hostname, t.port),
        kind,
        key,
        fingerprint: session
            .host_key_hash(ssh2::HashType::Sha256)
            .map(|h| format!("SHA256:{}", base64::encode(h).trim_end_matches('=')))
            .unwrap_or_default(),
    };
    if t.host_key_checking == HostKeyChecking::Off {
        unchecked(&seen);
        return Ok(());
    }
    let file = &t.known_hosts;
    let type_name = key_type_name(kind);
    let (name, fingerprint) = (&seen.name, &seen.fingerprint);
    match KnownHosts::load(file).check(&t.hostname, t.port, key) {
        Verdict::Match => Ok(()),
        Verdict::Changed { line } => Err(ConnectError::new(
            format!(
                "HOST KEY CHANGED for {name}: the server's {type_name} key is {fingerprint}, which does not match {}:{line}",
                file.display()
            ),
            vec![
                "someone may be intercepting the connection (man-in-the-middle), or the host was reinstalled".into(),
                format!("if the change is expected, remove the old key: ssh-keygen -R '{name}' -f {}", file.display()),
            ],
        )),
        Verdict::Revoked { line } => Err(ConnectError::new(
            format!(
                "the {type_name} key {fingerprint} of {name} is marked @revoked in {}:{line}",
                file.display()
            ),
            vec!["the server still uses a key its administrators revoked: ask them which key is current".into()],
        )),
        Verdict::Unknown => unknown_key(t, &seen),
    }
}

/// The host key the server presented.
struct SeenKey<'a> {
    /// As known_hosts names it: `host` or `[host]:port`.
    name: String,
    kind: HostKeyType,
    key: &'a [u8],
    fingerprint: String,
}

/// `host_key_checking = "off"`: said once per run for each endpoint and key (docs/ssh.md:
/// "says so on every run"), not once per session: 100 aliases of one server would print
/// 100 equal lines.
fn unchecked(seen: &SeenKey<'_>) {
    let first = ACCEPTED_UNCHECKED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert((seen.name.clone(), seen.fingerprint.clone()));
    if first {
        crate::error::warn(
            format_args!(
                "host key checking is off: accepted {} key {} of {} without checking",
                key_type_name(seen.kind),
                seen.fingerprint,
                seen.name
            ),
            &[],
        );
    }
}

/// A key known_hosts does not know: refused (strict), or added (accept-new, tofu).
fn unknown_key(t: &SshTarget, seen: &SeenKey<'_>) -> Result<(), ConnectError> {
    let file = &t.known_hosts;
    let (name, type_name, fingerprint) = (&seen.name, key_type_name(seen.kind), &seen.fingerprint);
    if t.host_key_checking == HostKeyChecking::Strict {
        return Err(ConnectError::new(
            format!(
                "host key of {name} is not in {} (host_key_checking = \"strict\"); its {type_name} key is {fingerprint}",
                file.display(),
            ),
            vec![
                format!("add it after checking the fingerprint: ssh-keyscan -p {} {} >> {}", t.port, t.hostname, file.display()),
                "or set host_key_checking = \"accept-new\" to trust keys on first use".into(),
            ],
        ));
    }
    let added = append_known_host(file, t, seen.kind, seen.key).map_err(|e| {
        ConnectError::new(
            format!(
                "cannot add the host key of {name} to {}: {e}",
                file.display()
            ),
            vec!["check that the file's directory exists and is writable".into()],
        )
    })?;
    if added && t.host_key_checking == HostKeyChecking::Tofu {
        crate::error::warn(
            format_args!("trusting new host key of {name} on first use: {type_name} {fingerprint}"),
            &[],
        );
    }
    if added {
        log::debug!(
            "ssh: {}: added its {type_name} key to {}",
            t.label,
            file.display()
        );
    }
    Ok(())
}

/// Append `[host]:port type key` to `file` unless another session of this run added it
/// meanwhile (two sessions to one new host at once). True when it appended.
fn append_known_host(
    file: &Path,
    t: &SshTarget,
    kind: HostKeyType,
    key: &[u8],
) -> std::io::Result<bool> {
    let _guard = KNOWN_HOSTS_WRITE.lock();
    let now = KnownHosts::parse(&std::fs::read_to_string(file).unwrap_or_default());
    if now.check(&t.hostname, t.port, key) == Verdict::Match {
        return Ok(false);
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    let name = known_name(&t.hostname, t.port);
    writeln!(f, "{name} {} {}", key_type_name(kind), base64::encode(key))?;
    Ok(true)
}

fn is_encrypted(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    if text.contains("ENCRYPTED") {
        return true;
    }
    // OpenSSH format: the cipher name follows the magic; "none" means unencrypted.
    let body: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect();
    base64::decode(&body).is_some_and(|bytes| {
        bytes.starts_with(b"openssh-key-v1\0")
            && !bytes[15..].windows(4).take(8).any(|w| w == b"none")
    })
}

/// Prompts are allowed: a controlling terminal exists and CI is not set.
fn interactive() -> bool {
    let ci = std::env::var_os("CI").filter(|v| !v.is_empty()).is_some();
    !ci && (std::io::stdin().is_terminal() || std::io::stderr().is_terminal())
        && std::fs::File::open("/dev/tty").is_ok()
}

/// Secrets typed at the terminal, by key file or user@host, asked once per run.
static SECRETS: std::sync::Mutex<Option<std::collections::HashMap<String, String>>> =
    std::sync::Mutex::new(None);

/// The secret for `key`: remembered, or asked on /dev/tty with echo off (one prompt at
/// a time, whatever the number of connecting threads).
fn secret(key: &str, prompt: &str) -> Option<String> {
    let mut guard = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(Default::default);
    if let Some(s) = map.get(key) {
        return Some(s.clone());
    }
    let answer = read_tty(prompt)?;
    map.insert(key.to_string(), answer.clone());
    Some(answer)
}

fn forget(key: &str) {
    if let Some(map) = SECRETS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        map.remove(key);
    }
}

fn read_tty(prompt: &str) -> Option<String> {
    use std::io::BufRead;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    let fd = tty.as_raw_fd();
    let old = crate::sys::echo_off(fd)?;
    let mut out = &tty;
    let _ = out.write_all(prompt.as_bytes());
    let _ = out.flush();
    let mut line = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut line);
    crate::sys::restore_echo(fd, &old);
    read.ok().filter(|&n| n > 0)?;
    Some(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Public key authentication with the key at `path`; what happened goes to `tried`.
fn try_key(session: &Session, user: &str, path: &Path, tried: &mut Vec<String>) -> bool {
    let shown = path.display().to_string();
    log::debug!("ssh: trying key {shown} for {user}");
    if !path.exists() {
        tried.push(format!("{shown} (not found)"));
        return false;
    }
    // The public half from KEY.pub when it is there (as ssh does): without it,
    // libssh2 derives it by decoding the private key through OpenSSL's generic
    // PEM decoders, which was 40% of nexus's CPU per connection.
    let public = path
        .file_name()
        .map(|n| path.with_file_name(format!("{}.pub", n.to_string_lossy())))
        .filter(|p| p.is_file());
    let text = std::fs::read_to_string(path)
        .ok()
        .map(zeroize::Zeroizing::new);
    // A KEY.pub that names another key fails this key, as with ssh (through libssh2).
    let key = text
        .as_deref()
        .and_then(|t| userkey::ed25519(t))
        .filter(|k| {
            public
                .as_ref()
                .is_none_or(|p| std::fs::read_to_string(p).is_ok_and(|t| k.matches_public_file(&t)))
        });
    if let Some(key) = key {
        log::debug!("ssh: signing with {shown} in nexus (ed25519, decoded once per run)");
        return match userkey::authenticate(session, user, &key) {
            Ok(()) if session.authenticated() => true,
            _ => {
                tried.push(format!("{shown} (rejected)"));
                false
            }
        };
    }
    let passphrase = if is_encrypted(path) {
        if !interactive() {
            // Passphrase prompts need a terminal; without one this key cannot be used.
            tried.push(format!(
                "{shown} (encrypted; no passphrase can be asked without a terminal)"
            ));
            return false;
        }
        match secret(&shown, &format!("Enter passphrase for key '{shown}': ")) {
            Some(p) => Some(p),
            None => {
                tried.push(format!("{shown} (encrypted; no passphrase given)"));
                return false;
            }
        }
    } else {
        None
    };
    match session.userauth_pubkey_file(user, public.as_deref(), path, passphrase.as_deref()) {
        Ok(()) if session.authenticated() => true,
        Ok(()) => {
            tried.push(format!("{shown} (rejected)"));
            false
        }
        Err(e) => {
            let why = if e.message().contains("Unable to extract public key")
                || e.message().contains("Unable to open")
            {
                // Say why when the file cannot be opened at all (no permission, or no
                // descriptor left): "unreadable" alone reads like a broken key.
                match std::fs::File::open(path) {
                    Err(e) => format!("unreadable: {}", crate::error::io_reason(&e)),
                    Ok(_) => "unreadable".to_string(),
                }
            } else {
                "rejected".to_string()
            };
            tried.push(format!("{shown} ({why})"));
            false
        }
    }
}

fn authenticate(session: &Session, t: &SshTarget) -> Result<String, ConnectError> {
    let user = t.user.as_str();
    let mut tried: Vec<String> = Vec::new();
    let try_key = |path: &Path, tried: &mut Vec<String>| try_key(session, user, path, tried);
    for id in &t.identities {
        if try_key(id, &mut tried) {
            return Ok(format!("key: {}", id.display()));
        }
    }
    if !t.identities_only {
        match std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
            None => tried.push("ssh-agent (SSH_AUTH_SOCK is not set)".into()),
            Some(_) => match agent_auth(session, user) {
                Ok(true) => return Ok("ssh-agent".into()),
                Ok(false) => tried.push("ssh-agent (no key accepted)".into()),
                Err(e) => tried.push(format!("ssh-agent ({e})")),
            },
        }
        for id in crate::userenv::default_identities() {
            if try_key(&id, &mut tried) {
                return Ok(format!("key: {}", id.display()));
            }
        }
    }
    if interactive() {
        let key = format!("password {user}@{}:{}", t.hostname, t.port);
        let prompt = format!("{user}@{}'s password: ", t.hostname);
        if let Some(pw) = secret(&key, &prompt) {
            if session.userauth_password(user, &pw).is_ok() && session.authenticated() {
                return Ok("password".into());
            }
            forget(&key);
        }
        tried.push("password (rejected)".into());
    } else {
        tried.push("password (not asked: no terminal or CI is set)".into());
    }
    Err(ConnectError::new(
        format!(
            "Authentication failed for user {user}; tried: {}",
            tried.join(", ")
        ),
        vec![
            format!(
                "check that the public key is in ~{user}/.ssh/authorized_keys on {}",
                t.hostname
            ),
            "name the key with -i PATH, ssh_identity in nexus.toml, or IdentityFile in ssh_config"
                .into(),
            "load it into ssh-agent: ssh-add PATH".into(),
        ],
    ))
}

fn agent_auth(session: &Session, user: &str) -> Result<bool, String> {
    log::debug!("ssh: trying ssh-agent for {user}");
    let mut agent = session.agent().map_err(|e| e.message().to_string())?;
    agent
        .connect()
        .map_err(|e| format!("cannot connect: {}", e.message()))?;
    agent
        .list_identities()
        .map_err(|e| e.message().to_string())?;
    let ids = agent.identities().map_err(|e| e.message().to_string())?;
    for id in &ids {
        if agent.userauth(user, id).is_ok() && session.authenticated() {
            let _ = agent.disconnect();
            return Ok(true);
        }
    }
    let _ = agent.disconnect();
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names() {
        assert_eq!(known_name("h", 22), "h");
        assert_eq!(known_name("127.0.0.1", 2222), "[127.0.0.1]:2222");
    }
}
