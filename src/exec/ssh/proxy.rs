//! ProxyCommand: the user's command (`sh -c "exec CMD"`, as ssh runs it) in its own
//! process group, its stdin and stdout on one end of a socket pair, the SSH session on
//! the other; the group is killed when the session ends. The command's stderr is kept
//! (its last lines) to explain a command that failed.
//! Must not: interpret the command (sh does), or leave a process behind.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::connect::ConnectError;

/// How much of the command's stderr is kept.
const STDERR_TAIL: usize = 2048;

/// A running ProxyCommand. Dropping it kills its process group and reaps it.
pub struct Proxy {
    command: String,
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
}

/// Start `command` with its stdin and stdout on a socket; the other end is returned
/// for the session.
pub fn spawn(command: &str) -> Result<(UnixStream, Proxy), ConnectError> {
    let failed = |what: &str, e: std::io::Error| {
        ConnectError::new(
            format!(
                "ProxyCommand `{command}`: {what}: {}",
                crate::error::io_reason(&e)
            ),
            vec![],
        )
    };
    let (ours, theirs) = UnixStream::pair().map_err(|e| failed("socketpair", e))?;
    let theirs = OwnedFd::from(theirs);
    let stdin = theirs.try_clone().map_err(|e| failed("dup", e))?;
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("exec {command}"))
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(theirs))
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| failed("cannot run /bin/sh", e))?;
    let stderr = Arc::new(Mutex::new(Vec::new()));
    if let Some(mut pipe) = child.stderr.take() {
        let tail = Arc::clone(&stderr);
        // Drains the pipe (a full pipe would stall the command) until the command
        // and its children close it.
        let _ = std::thread::Builder::new()
            .name("nexus-proxy-stderr".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                    t.extend_from_slice(&buf[..n]);
                    let excess = t.len().saturating_sub(STDERR_TAIL);
                    t.drain(..excess);
                }
            });
    }
    let proxy = Proxy {
        command: command.to_string(),
        child,
        stderr,
    };
    Ok((ours, proxy))
}

impl Proxy {
    /// `e` (the session over the proxy failed) told as the command's failure when the
    /// command has exited: its status and the last line it wrote to stderr.
    pub fn explain(mut self, e: ConnectError, host: &str, port: u16) -> ConnectError {
        // The session fails as soon as the command closes its end; the exit follows.
        let deadline = Instant::now() + Duration::from_millis(500);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => return e,
            }
        };
        // Let the stderr reader take what the command wrote last.
        std::thread::sleep(Duration::from_millis(20));
        let said = {
            let tail = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
            let text = String::from_utf8_lossy(&tail).into_owned();
            text.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| format!(": {}", l.trim()))
                .unwrap_or_default()
        };
        let how = match status.code() {
            Some(c) => format!("exited with status {c}"),
            None => "was killed by a signal".to_string(),
        };
        ConnectError::new(
            format!(
                "ProxyCommand `{}` {how} before the SSH session was set up{said}",
                self.command
            ),
            vec![
                format!(
                    "run it by hand: sh -c '{}' should connect to {host} port {port} and print the server's SSH banner",
                    self.command.replace('\'', r"'\''")
                ),
                "fix ProxyCommand in ssh_config, or set ProxyCommand none for a direct connection"
                    .into(),
            ],
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // process_group(0) made the child the leader of a group of its own; the group
        // outlives the leader while members run.
        let pgid = self.child.id();
        crate::sys::signal_group(pgid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Whatever ignored SIGTERM in the group goes now; nexus does not exit before it
        // is gone (bounded: a process in uninterruptible sleep could hold on).
        crate::sys::signal_group(pgid, libc::SIGKILL);
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(1);
        while crate::sys::group_running(pgid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
