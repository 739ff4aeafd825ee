//! The checks of one remote host: TCP connectivity (with latency and banner), SSH
//! authentication (which method worked), and `sudo -n true` where the plan uses sudo.
//! A host that fails a check has its later checks skipped with the reason.
//! Must not: run any task command or write anything on the host.

use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use super::{Check, Mark, Options};
use crate::exec::ssh::{connect, remote};
use crate::exec::ExecResult;

pub(super) fn sudo_suggestions(mark: Mark, user: &str) -> Vec<String> {
    if mark != Mark::Fail {
        return vec![];
    }
    vec![
        format!("allow it without a password: echo \"{user} ALL=(ALL) NOPASSWD:ALL\" > /etc/sudoers.d/{user}"),
        "or use --skip-sudo-check if sudo is not required".into(),
    ]
}

fn skip(group: &'static str, label: &str, why: &str) -> Check {
    Check {
        group,
        subject: label.to_string(),
        mark: Mark::Skip,
        detail: format!("skipped - {why}"),
        suggestions: vec![],
        duration: Duration::ZERO,
    }
}

pub(super) fn check_host(
    label: &str,
    t: &crate::exec::ssh::target::SshTarget,
    sudo: bool,
    opts: &Options,
) -> Vec<Check> {
    let mut out = Vec::new();
    let mut reachable = true;
    if !opts.skip_connectivity {
        let c = connectivity(label, t, opts);
        reachable = c.mark != Mark::Fail;
        out.push(c);
    }
    let mut conn = None;
    let mut why_skip = "host unreachable";
    if opts.skip_auth {
        // Nothing to check; sudo needs a session, so it is skipped too.
    } else if !reachable {
        out.push(skip("SSH Authentication", label, "host unreachable"));
    } else {
        let (check, c) = authentication(label, t, opts);
        if c.is_none() {
            reachable = false;
            why_skip = "authentication failed";
        }
        out.push(check);
        conn = c;
    }
    if sudo && !opts.skip_sudo {
        out.push(match &conn {
            None if !reachable => skip("Sudo Access", label, why_skip),
            None => skip("Sudo Access", label, "no SSH session (--skip-auth)"),
            Some(c) => remote_sudo(label, &t.user, c, opts),
        });
    }
    out
}

/// TCP to the SSH port (through ProxyJump only the first hop can be reached directly).
fn connectivity(label: &str, t: &crate::exec::ssh::target::SshTarget, opts: &Options) -> Check {
    let first = t.jumps.first().unwrap_or(t);
    let t0 = Instant::now();
    let (mark, detail, suggestions) = match tcp_banner(&first.hostname, first.port, opts.timeout) {
        Ok(banner) => (
            Mark::Pass,
            format!(
                "{}:{}, {}ms, {banner}",
                first.hostname,
                first.port,
                t0.elapsed().as_millis()
            ),
            vec![],
        ),
        Err(reason) => (
            Mark::Fail,
            format!("{reason} ({}:{})", first.hostname, first.port),
            vec![
                format!(
                    "Verify SSH is running: nc -zv {} {}",
                    first.hostname, first.port
                ),
                format!("Check the host name and port of `{label}` (nexus hosts resolve {label})"),
                "Check firewalls between here and the host".into(),
            ],
        ),
    };
    Check {
        group: "Host Connectivity",
        subject: label.to_string(),
        mark,
        detail,
        suggestions,
        duration: t0.elapsed(),
    }
}

/// A real login, bounded by the check timeout; the session, when it worked.
fn authentication(
    label: &str,
    t: &crate::exec::ssh::target::SshTarget,
    opts: &Options,
) -> (Check, Option<connect::Conn>) {
    let t0 = Instant::now();
    let mut bounded = t.clone();
    bounded.connect_timeout = bounded.connect_timeout.min(opts.timeout);
    // The check's timeout bounds the whole login, attempts included.
    let (mark, detail, suggestions, conn) = match connect::connect(&bounded, t0 + opts.timeout) {
        Ok(c) => (
            Mark::Pass,
            format!("{} as {}", c.auth, t.user),
            vec![],
            Some(c),
        ),
        Err(e) => {
            let mut help = e.suggestions.clone();
            if bounded.connect_timeout < t.connect_timeout {
                // The check's timeout, not connect_timeout, was the bound.
                let slow = crate::exec::ssh::budget::slow_hint(bounded.connect_timeout);
                for h in help.iter_mut().filter(|h| **h == slow) {
                    *h = format!(
                        "if the server is only slow to answer, raise --timeout (now {})",
                        crate::config::duration::display(opts.timeout)
                    );
                }
            }
            (Mark::Fail, e.reason.clone(), help, None)
        }
    };
    let check = Check {
        group: "SSH Authentication",
        subject: label.to_string(),
        mark,
        detail,
        suggestions,
        duration: t0.elapsed(),
    };
    (check, conn)
}

/// `sudo -n true` over the session.
fn remote_sudo(label: &str, user: &str, c: &connect::Conn, opts: &Options) -> Check {
    let t0 = Instant::now();
    let mut got = crate::exec::Collected::default();
    let cmd = remote::RemoteCommand {
        line: "sudo -n true".into(),
        dir: None,
        env: vec![],
        private_env: vec![],
        sudo: None,
        pty: false,
        secret: false,
    };
    let (res, _) = remote::exec(c, &cmd, Instant::now() + opts.timeout, &mut got);
    let (mark, detail) = match res {
        ExecResult::Exited(0) => (Mark::Pass, "NOPASSWD confirmed".to_string()),
        ExecResult::TimedOut => (Mark::Fail, "sudo -n true timed out".to_string()),
        other => {
            // sshd may print its own notices first; sudo's word is the last line.
            let text = String::from_utf8_lossy(&got.stderr).to_string();
            let msg = text.lines().last().unwrap_or("").trim().to_string();
            let msg = if msg.is_empty() {
                format!("sudo -n true failed ({other:?})")
            } else {
                format!("\"{msg}\"")
            };
            (Mark::Fail, msg)
        }
    };
    Check {
        group: "Sudo Access",
        subject: label.to_string(),
        mark,
        suggestions: sudo_suggestions(mark, user),
        detail,
        duration: t0.elapsed(),
    }
}

/// TCP connect and read the server's identification line, all within `timeout`: the
/// banner, or what came instead of it.
fn tcp_banner(host: &str, port: u16, timeout: Duration) -> Result<String, String> {
    use std::os::fd::AsFd;
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {}", crate::error::io_reason(&e)))?
        .collect();
    let deadline = Instant::now() + timeout;
    let wake = Some(crate::signals::wake_fd()).filter(|&fd| fd >= 0);
    let mut last = String::from("no address");
    for a in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        match crate::sys::tcp_connect(&a, left, wake) {
            Ok(s) => return Ok(banner_of(s.as_fd(), deadline, timeout)),
            Err(e) => {
                last = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => "Connection refused".into(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                        format!(
                            "timed out after {}",
                            crate::config::duration::display(timeout)
                        )
                    }
                    std::io::ErrorKind::Interrupted => "cancelled".into(),
                    _ => crate::error::io_reason(&e),
                }
            }
        }
    }
    Err(last)
}

/// The banner line the server at `fd` sends first (after any other lines), printable;
/// or what happened instead.
fn banner_of(fd: std::os::fd::BorrowedFd<'_>, deadline: Instant, timeout: Duration) -> String {
    use crate::exec::ssh::banner::{self, Banner};
    let other = |n: u64| match n {
        0 => String::new(),
        n => format!(" (it sent {} of other data)", super::bytes(n)),
    };
    match banner::wait(fd, deadline) {
        Banner::Ready { .. } => {
            let mut buf = [0u8; 256];
            let n = crate::sys::recv_now(fd, &mut buf, true).unwrap_or(0);
            let line = String::from_utf8_lossy(&buf[..n]);
            printable(line.lines().next().unwrap_or("").trim())
        }
        Banner::TimedOut { other: n } => format!(
            "no SSH banner within {}{}",
            crate::config::duration::display(timeout),
            other(n)
        ),
        Banner::Closed { other: n } => format!("closed without an SSH banner{}", other(n)),
        Banner::Cancelled => "cancelled".into(),
        Banner::Failed(e) => format!("no SSH banner: {}", crate::error::io_reason(&e)),
    }
}

/// `text` with control characters escaped: a server's words must not drive the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn a_banner_cannot_drive_the_terminal() {
        assert_eq!(printable("SSH-2.0-OpenSSH_9.2"), "SSH-2.0-OpenSSH_9.2");
        assert_eq!(
            printable("SSH-2.0-x\u{1b}]0;owned\u{7}"),
            "SSH-2.0-x\\u{1b}]0;owned\\u{7}"
        );
    }
}
