//! One command on a remote host: its own exec channel, stdout and stderr streamed apart,
//! exit status and signal captured. The command runs under a small POSIX-shell wrapper
//! that first reports its process group (sshd makes each session's shell a group
//! leader) in a marker line, so that a timeout or Ctrl-C can kill the remote process
//! tree through a second channel, not merely close the first. The marker is found
//! wherever it arrives (a login banner may come first) and never shown. A command that
//! ends without an exit status or signal lost its connection: that is an SSH error, not
//! a success. Must not: block past the deadline or a cancellation for longer than the
//! kill takes.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::connect::Conn;
use super::watchdog::Fired;
use crate::exec::{Cause, ExecResult, Progress, Stream};
use crate::signals;

/// What to run remotely, fully expanded.
#[derive(Debug, Clone)]
pub struct RemoteCommand {
    pub line: String,
    pub dir: Option<String>,
    /// Variables that may be seen (nexus's own: the run id, the task, the host).
    pub env: Vec<(String, String)>,
    /// Variables that must not appear in any argument list (the task's `env`): they go
    /// to the remote shell through the channel's stdin, as shell code it evaluates.
    pub private_env: Vec<(String, String)>,
    /// None: no sudo. Some(None): `sudo -n`. Some(Some(u)): `sudo -n -u u`.
    pub sudo: Option<Option<String>>,
    pub pty: bool,
    /// The line goes on stdin with the private variables, never in an argument list: it
    /// holds a secret, or is a `#!` script (as `script::runner` code, however large).
    pub secret: bool,
}

/// How much of a stream is read at a time: large writes keep a channel busy across
/// round trips.
const STREAM_CHUNK: usize = 1024 * 1024;

/// The marker line every remote command prints first: `\x1e` + this + a nonce of this
/// process + the group id.
const MARKER: &str = "\u{1e}nexus-pgid-";
/// How long a remote group gets between SIGTERM and SIGKILL.
const KILL_GRACE_TENTHS: u32 = 10;

/// `'...'` with embedded single quotes escaped for a POSIX shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn sudo_prefix(sudo: &Option<Option<String>>) -> String {
    match sudo {
        None => String::new(),
        Some(None) => "sudo -n -- ".to_string(),
        Some(Some(u)) => format!("sudo -n -u {} -- ", quote(u)),
    }
}

/// A word that tells this process's markers from anything a command prints.
fn nonce() -> &'static str {
    static NONCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NONCE.get_or_init(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        format!("{:016x}", t ^ (u64::from(std::process::id()) << 40))
    })
}

/// The command line sent to the server's shell.
pub fn wrap(cmd: &RemoteCommand) -> String {
    wrap_with(cmd, nonce())
}

/// What the wrapped line reads from stdin before it runs the command (private variables
/// and the command), or None when it reads nothing.
pub fn payload(cmd: &RemoteCommand) -> Option<String> {
    if cmd.private_env.is_empty() && !cmd.secret {
        return None;
    }
    // sudo starts from a clean environment: everything goes in.
    let public = if cmd.sudo.is_some() {
        &cmd.env[..]
    } else {
        &[]
    };
    Some(crate::exec::export_script(
        public.iter().chain(&cmd.private_env),
        &cmd.line,
    ))
}

/// The shell code that reads the payload (all of stdin) and runs it. On a PTY, input is
/// echoed: echo is off from before the marker (nexus sends the payload once it has seen
/// the marker) until the payload has been read.
fn read_and_eval(pty: bool) -> &'static str {
    if pty {
        "__nexus_s=$(cat); stty echo 2>/dev/null; eval \"$__nexus_s\""
    } else {
        "eval \"$(cat)\""
    }
}

fn wrap_with(cmd: &RemoteCommand, nonce: &str) -> String {
    let private = !cmd.private_env.is_empty() || cmd.secret;
    let mut s = String::new();
    if private && cmd.pty {
        s += "stty -echo 2>/dev/null; ";
    }
    s += &format!("printf '\\036nexus-pgid-{nonce} %s\\n' \"$$\"; ");
    if let Some(d) = &cmd.dir {
        s += &format!("cd {} || exit 1; ", quote(d));
    }
    if private {
        if cmd.sudo.is_none() {
            for (k, v) in &cmd.env {
                s += &format!("{k}={}; export {k}; ", quote(v));
            }
            s += read_and_eval(cmd.pty);
        } else {
            s += "exec ";
            s += &sudo_prefix(&cmd.sudo);
            s += "sh -c ";
            s += &quote(read_and_eval(cmd.pty));
        }
        return s;
    }
    let shell_names = cmd.env.iter().all(|(k, _)| is_shell_name(k));
    if cmd.sudo.is_none() && shell_names {
        // The command runs in the login shell itself (docs/ssh.md), in the process group
        // reported above.
        for (k, v) in &cmd.env {
            s += &format!("{k}={}; export {k}; ", quote(v));
        }
        s += &cmd.line;
        return s;
    }
    s += "exec ";
    s += &sudo_prefix(&cmd.sudo);
    if !cmd.env.is_empty() {
        s += "env ";
        for (k, v) in &cmd.env {
            s += &quote(&format!("{k}={v}"));
            s.push(' ');
        }
    }
    s += "sh -c ";
    s += &quote(&cmd.line);
    s
}

fn is_shell_name(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Run `cmd` on `conn`. The bool says whether the session is still fit for reuse.
pub fn exec(
    conn: &Conn,
    cmd: &RemoteCommand,
    deadline: Instant,
    progress: &mut dyn Progress,
) -> (ExecResult, bool) {
    exec_with(conn, cmd, None, deadline, progress)
}

/// Run `cmd` with `input` streamed to its stdin (file transfers: src/transfer). The
/// command must take no payload (no private variables, not secret).
pub fn exec_streaming(
    conn: &Conn,
    cmd: &RemoteCommand,
    input: &mut dyn Read,
    deadline: Instant,
    progress: &mut dyn Progress,
) -> (ExecResult, bool) {
    debug_assert!(payload(cmd).is_none() && !cmd.pty);
    exec_with(conn, cmd, Some(input), deadline, progress)
}

fn exec_with<'a>(
    conn: &'a Conn,
    cmd: &RemoteCommand,
    stream: Option<&'a mut dyn Read>,
    deadline: Instant,
    progress: &'a mut dyn Progress,
) -> (ExecResult, bool) {
    let channel = match start(conn, cmd, stream.is_some(), deadline) {
        Ok(c) => c,
        Err(failed) => return failed,
    };
    let mut run = Running {
        stream,
        chunk: Vec::new(),
        chunk_at: 0,
        eof_pending: false,
        conn,
        channel,
        progress,
        // On a PTY the payload waits for the marker (echo is off by then).
        input: payload(cmd).filter(|_| cmd.pty),
        buf: vec![0u8; 32 * 1024],
        marker: Marker::new(nonce()),
        out_open: true,
        err_open: true,
        lost: None,
        heard: Instant::now(),
        dead: false,
    };
    let stopped = run.pump(deadline);
    run.finish(stopped, &cmd.sudo)
}

/// Open a channel and start the wrapped command on it, by `deadline` (a server that
/// stops answering then is cut off by the watchdog).
fn start(
    conn: &Conn,
    cmd: &RemoteCommand,
    streaming: bool,
    deadline: Instant,
) -> Result<ssh2::Channel, (ExecResult, bool)> {
    use std::os::fd::AsFd;
    // Without a timeout, a server that stopped answering is cut off once it has been
    // silent as long as the keepalives allow.
    let silence = conn.dead_after().map(|d| Instant::now() + d);
    let watch_until = silence.map_or(deadline, |s| s.min(deadline));
    let watch = super::watchdog::watch(conn.socket.as_fd(), watch_until);
    let started = open_and_exec(conn, cmd, streaming);
    match watch.finish() {
        Some(Fired::Deadline) if Instant::now() < deadline => {
            Err((ExecResult::ConnectError(unanswered(conn)), false))
        }
        Some(Fired::Deadline) => Err((ExecResult::TimedOut, false)),
        Some(Fired::Cancelled) => Err((ExecResult::Cancelled, false)),
        None => started,
    }
}

/// The server stopped answering: its keepalives went unanswered.
fn unanswered(conn: &Conn) -> Cause {
    let (interval, count) = conn.keepalive;
    let silent = conn.dead_after().unwrap_or_default();
    Cause::new(format!(
        "the connection was lost: the server sent nothing for {} (ServerAliveInterval {interval}, ServerAliveCountMax {count})",
        crate::config::duration::display(silent)
    ))
    .help("check the host and the network; `nexus resume` runs the command again")
    .help("ServerAliveInterval and ServerAliveCountMax in ssh_config set how long nexus waits")
}

fn open_and_exec(
    conn: &Conn,
    cmd: &RemoteCommand,
    streaming: bool,
) -> Result<ssh2::Channel, (ExecResult, bool)> {
    let session = &conn.session;
    session.set_blocking(true);
    let mut channel = session.channel_session().map_err(|e| {
        let why = format!("cannot open a channel: {}", e.message());
        (ExecResult::ConnectError(Cause::new(why)), false)
    })?;
    if cmd.pty {
        channel.request_pty("xterm", None, None).map_err(|e| {
            let why = format!("the server refused a PTY: {}", e.message());
            (ExecResult::SpawnError(Cause::new(why)), true)
        })?;
    }
    channel.exec(&wrap(cmd)).map_err(|e| {
        let why = format!("the server refused to run the command: {}", e.message());
        (ExecResult::SpawnError(Cause::new(why)), true)
    })?;
    if !cmd.pty && !streaming {
        // Without a PTY the payload can go at once; then stdin ends, as /dev/null would.
        let sent = match payload(cmd) {
            Some(p) => channel.write_all(p.as_bytes()),
            None => Ok(()),
        };
        sent.and_then(|()| channel.send_eof().map_err(std::io::Error::other))
            .map_err(|e| {
                let why = format!("cannot send the command its input: {e}");
                (ExecResult::ConnectError(Cause::new(why)), false)
            })?;
    }
    session.set_blocking(false);
    Ok(channel)
}

/// A command running on a channel.
struct Running<'a> {
    /// What goes to the command's stdin while it runs (file transfers), and the part of
    /// it read but not yet sent.
    stream: Option<&'a mut dyn Read>,
    chunk: Vec<u8>,
    chunk_at: usize,
    /// The stream ended; the channel's EOF is still to be sent.
    eof_pending: bool,
    conn: &'a Conn,
    channel: ssh2::Channel,
    progress: &'a mut dyn Progress,
    /// What to send once the marker has come (PTY commands with private variables).
    input: Option<String>,
    buf: Vec<u8>,
    marker: Marker,
    out_open: bool,
    err_open: bool,
    /// Why the connection broke, when it did.
    lost: Option<String>,
    /// When the server last sent something (output, or a keepalive's answer).
    heard: Instant,
    /// The server stopped answering keepalives: nothing more is asked of it.
    dead: bool,
}

impl Running<'_> {
    /// Pass output on until the command ends (None), or the deadline or a cancellation
    /// stops it.
    fn pump(&mut self, deadline: Instant) -> Option<ExecResult> {
        loop {
            let progressed = self.read_stdout() | self.read_stderr() | self.write_stream();
            if self.lost.is_some() || (!self.out_open && !self.err_open) {
                return None;
            }
            if self.channel.eof() && !progressed {
                return None;
            }
            if progressed {
                self.heard = Instant::now();
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Some(ExecResult::TimedOut);
            }
            if signals::cancelled() {
                return Some(ExecResult::Cancelled);
            }
            if self.server_silent_too_long(now) {
                return None;
            }
            // Sends a keepalive only when ServerAliveInterval has passed (no-op when 0).
            if let Err(e) = self.conn.session.keepalive_send() {
                self.lost = Some(format!("keepalive failed: {}", e.message()));
                return None;
            }
            if wait_socket(self.conn, deadline - now) {
                self.heard = Instant::now();
            }
        }
    }

    /// Whether the server has said nothing (not even an answer to a keepalive) for as
    /// long as ServerAliveInterval × (ServerAliveCountMax + 1); then it counts as lost.
    fn server_silent_too_long(&mut self, now: Instant) -> bool {
        let Some(limit) = self.conn.dead_after() else {
            return false;
        };
        // Bytes waiting on the socket are an answer, whether or not libssh2 read them.
        let mut byte = [0u8; 1];
        if crate::sys::recv_now(self.conn.socket.as_fd(), &mut byte, true).is_ok_and(|n| n > 0) {
            self.heard = now;
        }
        if now.duration_since(self.heard) < limit {
            return false;
        }
        self.dead = true;
        true
    }

    fn read_stdout(&mut self) -> bool {
        if !self.out_open {
            return false;
        }
        match self.channel.read(&mut self.buf) {
            Ok(0) => {
                self.out_open = !self.channel.eof();
                false
            }
            Ok(n) => {
                let progress = &mut *self.progress;
                let found = self.marker.feed(&self.buf[..n], &mut |d| {
                    progress.output(Stream::Stdout, d);
                });
                if let Some(pgid) = found {
                    self.progress.spawned(pgid, true);
                    self.send_input();
                }
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(e) => {
                self.out_open = false;
                self.lost = Some(e.to_string());
                false
            }
        }
    }

    /// Send what the stream has next, as far as the channel takes it without blocking;
    /// end the command's input when the stream ends. Whether anything was sent.
    fn write_stream(&mut self) -> bool {
        if self.eof_pending {
            return self.send_eof();
        }
        let Some(stream) = self.stream.as_mut() else {
            return false;
        };
        if self.chunk_at == self.chunk.len() {
            self.chunk.resize(STREAM_CHUNK, 0);
            match stream.read(&mut self.chunk) {
                Ok(0) => {
                    self.chunk = Vec::new();
                    self.chunk_at = 0;
                    self.stream = None;
                    self.eof_pending = true;
                    return self.send_eof();
                }
                Ok(n) => {
                    self.chunk.truncate(n);
                    self.chunk_at = 0;
                }
                Err(e) => {
                    self.stream = None;
                    self.lost = Some(format!("cannot read what to send: {e}"));
                    return false;
                }
            }
        }
        match self.channel.write(&self.chunk[self.chunk_at..]) {
            Ok(n) => {
                self.chunk_at += n;
                n > 0
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(e) => {
                self.stream = None;
                self.lost = Some(format!("cannot send the command its input: {e}"));
                false
            }
        }
    }

    fn send_eof(&mut self) -> bool {
        match self.channel.send_eof() {
            Ok(()) => {
                self.eof_pending = false;
                true
            }
            Err(e) if e.code() == ssh2::ErrorCode::Session(-37) => false,
            Err(e) => {
                self.eof_pending = false;
                self.lost = Some(format!("cannot end the command's input: {}", e.message()));
                false
            }
        }
    }

    /// Send the payload to a PTY command, then end its input (Ctrl-D at a line start).
    fn send_input(&mut self) {
        let Some(mut text) = self.input.take() else {
            return;
        };
        text.push('\u{4}');
        self.conn.session.set_blocking(true);
        if let Err(e) = self.channel.write_all(text.as_bytes()) {
            self.lost = Some(format!("cannot send the command its input: {e}"));
        }
        self.conn.session.set_blocking(false);
    }

    fn read_stderr(&mut self) -> bool {
        if !self.err_open {
            return false;
        }
        match self.channel.stderr().read(&mut self.buf) {
            Ok(0) => {
                self.err_open = !self.channel.eof();
                false
            }
            Ok(n) => {
                self.progress.output(Stream::Stderr, &self.buf[..n]);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(e) => {
                self.err_open = false;
                self.lost = Some(e.to_string());
                false
            }
        }
    }

    /// Kill what was stopped, or collect how the command ended.
    fn finish(
        mut self,
        stopped: Option<ExecResult>,
        sudo: &Option<Option<String>>,
    ) -> (ExecResult, bool) {
        let progress = &mut *self.progress;
        self.marker
            .flush(&mut |d| progress.output(Stream::Stdout, d));
        let session = &self.conn.session;
        if let Some(stop) = stopped {
            let reusable = kill_remote(self.conn, self.marker.pgid, sudo);
            session.set_blocking(true);
            session.set_timeout(if signals::cancelled() { 500 } else { 2000 });
            let _ = self.channel.close();
            session.set_timeout(0);
            return (stop, reusable);
        }
        if self.dead {
            // Nothing more can be asked of a server that stopped answering.
            return (ExecResult::ConnectError(unanswered(self.conn)), false);
        }
        session.set_blocking(true);
        session.set_timeout(5000);
        let closed = self.channel.wait_close();
        session.set_timeout(0);
        if let Ok(sig) = self.channel.exit_signal() {
            if let Some(name) = sig.exit_signal {
                return (ExecResult::Signaled(signal_number(&name)), true);
            }
        }
        // libssh2 reports exit status 0 when none arrived: a channel that did not close
        // cleanly, or a socket that failed, means the connection was lost.
        let lost = self
            .lost
            .take()
            .or_else(|| closed.err().map(|e| e.message().to_string()));
        if let Some(why) = lost {
            let cause = Cause::new(format!(
                "the connection was lost while the command ran ({why})"
            ))
            .help("check the host and the network; `nexus resume` runs the command again");
            return (ExecResult::ConnectError(cause), false);
        }
        match self.channel.exit_status() {
            Ok(code) => (ExecResult::Exited(code), true),
            Err(e) => (
                ExecResult::ConnectError(Cause::new(format!(
                    "lost the exit status: {}",
                    e.message()
                ))),
                false,
            ),
        }
    }
}

/// Finds the marker line in stdout wherever it comes (after a login banner, in the
/// middle of a line without a newline before it), takes the group id from it, and
/// passes everything else on. Holds back at most one marker's length of bytes.
struct Marker {
    token: Vec<u8>,
    held: Vec<u8>,
    pgid: Option<u32>,
    done: bool,
}

impl Marker {
    fn new(nonce: &str) -> Marker {
        Marker {
            token: format!("{MARKER}{nonce} ").into_bytes(),
            held: Vec::new(),
            pgid: None,
            done: false,
        }
    }

    /// Take stdout bytes; what is not the marker goes to `out`. The group id when the
    /// marker line is complete.
    fn feed(&mut self, data: &[u8], out: &mut dyn FnMut(&[u8])) -> Option<u32> {
        if self.done {
            out(data);
            return None;
        }
        self.held.extend_from_slice(data);
        let Some(at) = find(&self.held, &self.token) else {
            // Pass on all but a tail that could be the start of the marker.
            let pass = self.held.len() - partial_suffix(&self.held, &self.token);
            if pass > 0 {
                out(&self.held[..pass]);
                self.held.drain(..pass);
            }
            return None;
        };
        if at > 0 {
            out(&self.held[..at]);
            self.held.drain(..at);
        }
        let after = self.token.len();
        let nl = self.held[after..].iter().position(|&b| b == b'\n')?;
        let id = String::from_utf8_lossy(&self.held[after..after + nl]);
        self.pgid = id.trim().parse().ok();
        self.done = true;
        let rest = self.held.split_off(after + nl + 1);
        self.held.clear();
        if !rest.is_empty() {
            out(&rest);
        }
        self.pgid
    }

    /// The command ended: whatever is held was not the marker.
    fn flush(&mut self, out: &mut dyn FnMut(&[u8])) {
        if !self.held.is_empty() {
            out(&self.held);
            self.held.clear();
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Length of the longest suffix of `hay` that is a prefix of `needle`.
fn partial_suffix(hay: &[u8], needle: &[u8]) -> usize {
    (1..needle.len().min(hay.len() + 1))
        .rev()
        .find(|&k| hay.ends_with(&needle[..k]))
        .unwrap_or(0)
}

/// Block until the socket is ready in the direction libssh2 waits for, the deadline,
/// a cancellation, or at most 100 ms. Whether the server sent something.
fn wait_socket(conn: &Conn, left: Duration) -> bool {
    let outbound = matches!(
        conn.session.block_directions(),
        ssh2::BlockDirections::Outbound | ssh2::BlockDirections::Both
    );
    let socket = crate::sys::Wait {
        fd: Some(conn.fd()),
        read: true,
        write: outbound,
    };
    let wake = crate::sys::Wait::read(Some(signals::wake_fd()));
    let ready = crate::sys::poll(
        &[socket, wake],
        left.clamp(Duration::from_millis(1), Duration::from_millis(100)),
    );
    // Readable: data came (a socket only writable says nothing about the server).
    ready[0] && crate::sys::poll(&[crate::sys::Wait::read(Some(conn.fd()))], Duration::ZERO)[0]
}

/// Ends a remote process group: SIGTERM, then up to KILL_GRACE_TENTHS checks 0.1 s apart
/// while a member is still alive, then SIGKILL; its last line says `ended` or `killed`.
/// A member that is a zombie is not alive: `kill -0` still finds zombies, and a
/// container's init may reap them late or never, so `kill -0` alone waited out the whole
/// grace. Where there is no /proc, `kill -0` decides. Parameter expansions only (no
/// `set --`, no process per check), so it reads the same in sh, dash, bash, ksh and zsh.
const KILL_SCRIPT: &str = r#"KILL_TERM 2>/dev/null
alive() {
  KILL_0 2>/dev/null || return 1
  [ -r /proc/self/stat ] || return 0
  for f in /proc/[0-9]*/stat; do
    read -r s 2>/dev/null <"$f" || continue
    s=${s##*") "}; st=${s%% *}; s=${s#* }; s=${s#* }
    [ "${s%% *}" = PGID ] && [ "$st" != Z ] && return 0
  done
  return 1
}
i=0
while [ $i -lt TENTHS ] && alive; do sleep 0.1; i=$((i+1)); done
if alive; then echo killed; else echo ended; fi
KILL_KILL 2>/dev/null
true"#;

/// The kill script for group `pgid`. A shell's own `kill` takes `-SIG -PGID` (dash
/// refuses the `--` that bash accepts); the kill(1) that sudo runs needs `--` before a
/// negative pid (procps reads `-PGID` without it as another option and signals nothing).
fn kill_script(pgid: u32, sudo: bool) -> String {
    let kill = |sig: &str| {
        if sudo {
            format!("sudo -n kill -{sig} -- -{pgid}")
        } else {
            format!("kill -{sig} -{pgid}")
        }
    };
    KILL_SCRIPT
        .replace("KILL_TERM", &kill("TERM"))
        .replace("KILL_0", &kill("0"))
        .replace("KILL_KILL", &kill("KILL"))
        .replace("PGID", &pgid.to_string())
        .replace("TENTHS", &KILL_GRACE_TENTHS.to_string())
}

/// SIGTERM the remote group, SIGKILL it after a grace period (at once when it is gone),
/// through a new channel. Returns whether the session still works.
fn kill_remote(conn: &Conn, pgid: Option<u32>, sudo: &Option<Option<String>>) -> bool {
    let Some(pgid) = pgid else {
        return true;
    };
    let s = &conn.session;
    s.set_blocking(true);
    // After Ctrl-C nexus must end soon whatever the server does: the kill (SIGTERM, up
    // to KILL_GRACE_TENTHS of grace, SIGKILL) gets a bound over all its calls, enforced
    // by shutting the socket down; after a timeout it may take longer.
    // Two seconds on top of the grace: on a loaded host, opening the channel and starting
    // the kill script took more than half a second, and the command survived.
    let budget = if signals::cancelled() {
        Duration::from_millis(u64::from(KILL_GRACE_TENTHS) * 100 + 2000)
    } else {
        Duration::from_secs(6)
    };
    let watch = {
        use std::os::fd::AsFd;
        super::watchdog::watch_until(conn.socket.as_fd(), Instant::now() + budget)
    };
    let mut said = String::new();
    let ok = match s.channel_session() {
        Ok(mut ch) => {
            let done = ch.exec(&kill_script(pgid, sudo.is_some())).is_ok();
            let _ = ch.read_to_string(&mut said);
            let _ = ch.wait_close();
            done
        }
        Err(_) => false,
    };
    let ok = watch.finish().is_none() && ok;
    let label = &conn.label;
    // The last line: a login that prints (a banner) comes first.
    // A banner without a newline puts the word at the end of its line.
    let word = said.lines().last().map(str::trim).and_then(|l| {
        ["ended", "killed"]
            .into_iter()
            .find(|w| l == *w || l.ends_with(&format!(" {w}")) || l.ends_with(&format!(":{w}")))
    });
    match word {
        Some("ended") => log::debug!("ssh: {label}: remote process group {pgid} ended after SIGTERM"),
        Some("killed") => log::debug!(
            "ssh: {label}: remote process group {pgid} was still running {} after SIGTERM; sent SIGKILL",
            crate::config::duration::display(Duration::from_millis(u64::from(KILL_GRACE_TENTHS) * 100))
        ),
        _ => log::warn!(
            "{label}: could not end the remote command (process group {pgid}): it may still be running; `ssh {label} kill -TERM -{pgid}` ends it"
        ),
    }
    ok
}

fn signal_number(name: &str) -> i32 {
    match name.trim_start_matches("SIG") {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "SEGV" => 11,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "USR1" => 10,
        "USR2" => 12,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn plain_commands_run_in_the_login_shell() {
        let cmd = RemoteCommand {
            line: "echo $HOME".into(),
            dir: None,
            env: vec![("NEXUS_TASK".into(), "t".into())],
            private_env: vec![],
            sudo: None,
            pty: false,
            secret: false,
        };
        assert_eq!(
            wrap_with(&cmd, "N"),
            "printf '\\036nexus-pgid-N %s\\n' \"$$\"; NEXUS_TASK='t'; export NEXUS_TASK; echo $HOME"
        );
    }

    #[test]
    fn wrapper_reports_the_group_then_execs() {
        let cmd = RemoteCommand {
            line: "echo 'hi'".into(),
            dir: Some("/srv/app".into()),
            env: vec![("A".into(), "b c".into())],
            private_env: vec![],
            sudo: Some(Some("app".into())),
            pty: false,
            secret: false,
        };
        assert_eq!(
            wrap_with(&cmd, "N"),
            "printf '\\036nexus-pgid-N %s\\n' \"$$\"; cd '/srv/app' || exit 1; exec sudo -n -u 'app' -- env 'A=b c' sh -c 'echo '\\''hi'\\'''"
        );
    }

    fn scan(chunks: &[&[u8]]) -> (Vec<u8>, Option<u32>) {
        let mut m = Marker::new("N");
        let mut out = Vec::new();
        let mut pgid = None;
        for c in chunks {
            if let Some(p) = m.feed(c, &mut |d| out.extend_from_slice(d)) {
                pgid = Some(p);
            }
        }
        m.flush(&mut |d| out.extend_from_slice(d));
        (out, pgid)
    }

    #[test]
    fn the_marker_is_found_wherever_it_arrives_and_never_shown() {
        let line: &[u8] = b"\x1enexus-pgid-N 4242\n";
        assert_eq!(scan(&[line, b"out\n"]), (b"out\n".to_vec(), Some(4242)));
        // After a banner, split across reads, with the banner's last line unfinished.
        let (out, pgid) = scan(&[b"Welcome!\nno newline:", b"\x1enexus-pg", b"id-N 7\nhi\n"]);
        assert_eq!(
            (out.as_slice(), pgid),
            (&b"Welcome!\nno newline:hi\n"[..], Some(7))
        );
        // Text that only looks like a marker, and no marker at all.
        let (out, pgid) = scan(&[b"\x1enexus-pgid-X 1\n", b"\x1enex"]);
        assert_eq!(
            (out.as_slice(), pgid),
            (&b"\x1enexus-pgid-X 1\n\x1enex"[..], None)
        );
    }
}
