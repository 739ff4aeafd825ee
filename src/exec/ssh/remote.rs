//! One command on a remote host: its own exec channel, stdout and stderr streamed apart,
//! exit status and signal captured. The command runs under a small POSIX-shell wrapper
//! that first reports its process group (sshd makes each session's shell a group
//! leader), so that a timeout or Ctrl-C can kill the remote process tree through a
//! second channel, not merely close the first. Must not: block past the deadline or a
//! cancellation for longer than the kill takes.

use std::io::Read;
use std::time::{Duration, Instant};

use super::connect::Conn;
use crate::exec::{ExecResult, Progress, Stream};
use crate::signals;

/// What to run remotely, fully expanded.
#[derive(Debug, Clone)]
pub struct RemoteCommand {
    pub line: String,
    pub dir: Option<String>,
    pub env: Vec<(String, String)>,
    /// None: no sudo. Some(None): `sudo -n`. Some(Some(u)): `sudo -n -u u`.
    pub sudo: Option<Option<String>>,
    pub pty: bool,
}

/// The first stdout line of every remote command: `\x1e` + this + the group id.
const MARKER: &str = "\u{1e}nexus-pgid ";
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

/// The command line sent to the server's shell.
pub fn wrap(cmd: &RemoteCommand) -> String {
    let mut s = String::from("printf '\\036nexus-pgid %s\\n' \"$$\"; ");
    if let Some(d) = &cmd.dir {
        s += &format!("cd {} || exit 1; ", quote(d));
    }
    let shell_names = cmd.env.iter().all(|(k, _)| is_shell_name(k));
    if cmd.sudo.is_none() && shell_names {
        // The command runs in the login shell itself (SPEC §4), in the process group
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
    let session = &conn.session;
    session.set_blocking(true);
    let mut channel = match session.channel_session() {
        Ok(c) => c,
        Err(e) => {
            return (
                ExecResult::ConnectError(format!("cannot open a channel: {}", e.message())),
                false,
            )
        }
    };
    if cmd.pty {
        if let Err(e) = channel.request_pty("xterm", None, None) {
            return (
                ExecResult::SpawnError(format!("the server refused a PTY: {}", e.message())),
                true,
            );
        }
    }
    if let Err(e) = channel.exec(&wrap(cmd)) {
        return (
            ExecResult::SpawnError(format!(
                "the server refused to run the command: {}",
                e.message()
            )),
            true,
        );
    }
    session.set_blocking(false);

    let mut buf = vec![0u8; 32 * 1024];
    let mut head: Option<Vec<u8>> = Some(Vec::new()); // stdout until the marker line is seen
    let mut pgid: Option<u32> = None;
    let mut out_open = true;
    let mut err_open = true;
    let outcome: Option<ExecResult> = loop {
        let mut progressed = false;
        if out_open {
            match channel.read(&mut buf) {
                Ok(0) => out_open = !channel.eof(),
                Ok(n) => {
                    progressed = true;
                    match head.as_mut() {
                        Some(h) => {
                            h.extend_from_slice(&buf[..n]);
                            if let Some(nl) = h.iter().position(|&b| b == b'\n') {
                                let line = String::from_utf8_lossy(&h[..nl]).to_string();
                                let rest = h[nl + 1..].to_vec();
                                match line.trim_end_matches('\r').strip_prefix(MARKER) {
                                    Some(id) => {
                                        pgid = id.trim().parse().ok();
                                        if let Some(g) = pgid {
                                            progress.spawned(g, true);
                                        }
                                    }
                                    None => progress.output(Stream::Stdout, &h[..=nl]),
                                }
                                head = None;
                                if !rest.is_empty() {
                                    progress.output(Stream::Stdout, &rest);
                                }
                            }
                        }
                        None => progress.output(Stream::Stdout, &buf[..n]),
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => out_open = false,
            }
        }
        if err_open {
            match channel.stderr().read(&mut buf) {
                Ok(0) => err_open = !channel.eof(),
                Ok(n) => {
                    progressed = true;
                    progress.output(Stream::Stderr, &buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => err_open = false,
            }
        }
        if channel.eof() && !progressed {
            break None;
        }
        if !out_open && !err_open {
            break None;
        }
        if progressed {
            continue;
        }
        let now = Instant::now();
        if now >= deadline {
            break Some(ExecResult::TimedOut);
        }
        if signals::cancelled() {
            break Some(ExecResult::Cancelled);
        }
        // Sends a keepalive only when ServerAliveInterval has passed (no-op when 0).
        let _ = session.keepalive_send();
        wait_socket(conn, deadline - now);
    };
    if let Some(h) = head.filter(|h| !h.is_empty()) {
        progress.output(Stream::Stdout, &h);
    }

    match outcome {
        Some(stop) => {
            let reusable = kill_remote(conn, pgid, &cmd.sudo);
            session.set_blocking(true);
            session.set_timeout(2000);
            let _ = channel.close();
            session.set_timeout(0);
            (stop, reusable)
        }
        None => {
            session.set_blocking(true);
            session.set_timeout(5000);
            let _ = channel.wait_close();
            session.set_timeout(0);
            if let Ok(sig) = channel.exit_signal() {
                if let Some(name) = sig.exit_signal {
                    return (ExecResult::Signaled(signal_number(&name)), true);
                }
            }
            match channel.exit_status() {
                Ok(code) => (ExecResult::Exited(code), true),
                Err(e) => (
                    ExecResult::ConnectError(format!("lost the exit status: {}", e.message())),
                    false,
                ),
            }
        }
    }
}

/// Block until the socket is ready in the direction libssh2 waits for, the deadline,
/// a cancellation, or at most 100 ms.
fn wait_socket(conn: &Conn, left: Duration) {
    let outbound = matches!(
        conn.session.block_directions(),
        ssh2::BlockDirections::Outbound | ssh2::BlockDirections::Both
    );
    let socket = crate::sys::Wait {
        fd: Some(conn.fd),
        read: true,
        write: outbound,
    };
    let wake = crate::sys::Wait::read(Some(signals::wake_fd()));
    crate::sys::poll(
        &[socket, wake],
        left.clamp(Duration::from_millis(1), Duration::from_millis(100)),
    );
}

/// SIGTERM the remote group, SIGKILL it after a grace period, through a new channel.
/// Returns whether the session still works.
fn kill_remote(conn: &Conn, pgid: Option<u32>, sudo: &Option<Option<String>>) -> bool {
    let Some(pgid) = pgid else {
        return true;
    };
    let s = &conn.session;
    s.set_blocking(true);
    s.set_timeout(5000);
    let sudo = if sudo.is_some() { "sudo -n " } else { "" };
    let script = format!(
        "{sudo}kill -TERM -- -{pgid} 2>/dev/null; i=0; while [ $i -lt {KILL_GRACE_TENTHS} ] && {sudo}kill -0 -- -{pgid} 2>/dev/null; do sleep 0.1; i=$((i+1)); done; {sudo}kill -KILL -- -{pgid} 2>/dev/null; true"
    );
    let ok = match s.channel_session() {
        Ok(mut ch) => {
            let done = ch.exec(&script).is_ok();
            let mut sink = Vec::new();
            let _ = ch.read_to_end(&mut sink);
            let _ = ch.wait_close();
            done
        }
        Err(_) => false,
    };
    s.set_timeout(0);
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
            sudo: None,
            pty: false,
        };
        assert_eq!(
            wrap(&cmd),
            "printf '\\036nexus-pgid %s\\n' \"$$\"; NEXUS_TASK='t'; export NEXUS_TASK; echo $HOME"
        );
    }

    #[test]
    fn wrapper_reports_the_group_then_execs() {
        let cmd = RemoteCommand {
            line: "echo 'hi'".into(),
            dir: Some("/srv/app".into()),
            env: vec![("A".into(), "b c".into())],
            sudo: Some(Some("app".into())),
            pty: false,
        };
        assert_eq!(
            wrap(&cmd),
            "printf '\\036nexus-pgid %s\\n' \"$$\"; cd '/srv/app' || exit 1; exec sudo -n -u 'app' -- env 'A=b c' sh -c 'echo '\\''hi'\\'''"
        );
    }
}
