//! Interactive commands (`interactive = true`): stdin, stdout and stderr are nexus's
//! own, so the command talks to the terminal and nothing is captured. The command still
//! gets a process group of its own (a timeout or Ctrl-C ends all of it); when nexus's
//! stdin is the terminal and nexus is in its foreground, that group is made the
//! terminal's foreground group while the command runs (so it may read the terminal and
//! gets Ctrl-C itself, as under a shell), and nexus takes the terminal back after.
//! Must not: leave the terminal to a group that has ended.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use super::{ExecResult, Progress};
use crate::signals;

/// How an interactive command is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attached {
    /// stdout carries nexus's JSON events: the command's stdout goes to stderr.
    pub stdout_to_stderr: bool,
    /// The command gets the terminal (nexus had it when it started the command).
    pub terminal: bool,
}

/// Whether nexus's stdin is a terminal whose foreground process group is nexus's.
pub fn owns_terminal() -> bool {
    // SAFETY: isatty, tcgetpgrp and getpgrp only read process and terminal state.
    unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp() }
}

/// Make `pgid` the foreground group of the terminal on stdin. SIGTTOU is blocked on
/// this thread meanwhile: a process of a background group (nexus, once it gave the
/// terminal away) may then still set it.
fn give_terminal(pgid: libc::pid_t) {
    // SAFETY: a signal mask of this thread, saved and restored around tcsetpgrp(0, ..).
    unsafe {
        let mut block: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut block);
        libc::sigaddset(&mut block, libc::SIGTTOU);
        libc::pthread_sigmask(libc::SIG_BLOCK, &block, &mut old);
        libc::tcsetpgrp(0, pgid);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
}

/// Attach `c` to nexus's standard streams (see the module's note).
pub fn configure(c: &mut Command, a: Attached) {
    c.stdin(Stdio::inherit()).stderr(Stdio::inherit());
    if a.stdout_to_stderr {
        use std::os::fd::AsFd;
        match std::io::stderr().as_fd().try_clone_to_owned() {
            Ok(fd) => c.stdout(Stdio::from(fd)),
            Err(_) => c.stdout(Stdio::null()),
        };
    } else {
        c.stdout(Stdio::inherit());
    }
    if a.terminal {
        // SAFETY: only async-signal-safe calls (sigprocmask, tcsetpgrp, getpgrp) between
        // fork and exec; the child is already the leader of its own group here.
        unsafe {
            c.pre_exec(|| {
                let mut block: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut block);
                libc::sigaddset(&mut block, libc::SIGTTOU);
                libc::sigprocmask(libc::SIG_BLOCK, &block, std::ptr::null_mut());
                libc::tcsetpgrp(0, libc::getpgrp());
                libc::sigprocmask(libc::SIG_UNBLOCK, &block, std::ptr::null_mut());
                Ok(())
            });
        }
    }
}

/// Wait for an attached command until it exits, `deadline` passes, or the run is
/// cancelled; then take the terminal back. A command that the terminal's Ctrl-C ended
/// (it had the terminal, so nexus did not get the SIGINT) cancels the run, as Ctrl-C
/// would have.
pub fn wait(
    a: Attached,
    mut child: Child,
    deadline: Instant,
    progress: &mut dyn Progress,
) -> ExecResult {
    let pgid = child.id();
    progress.spawned(pgid, false);
    let terminal = a.terminal;
    if terminal {
        // The child sets it too (before exec); whoever comes first, it is the child's.
        give_terminal(pgid as libc::pid_t);
    }
    let result = match super::local::wait_until(&mut child, deadline) {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => ExecResult::Exited(code),
            (None, Some(libc::SIGINT)) if terminal => {
                signals::cancel();
                ExecResult::Cancelled
            }
            (None, Some(sig)) => ExecResult::Signaled(sig),
            (None, None) => ExecResult::Exited(-1),
        },
        None => {
            super::local::kill_group(pgid, &mut child);
            if signals::cancelled() {
                ExecResult::Cancelled
            } else {
                ExecResult::TimedOut
            }
        }
    };
    if terminal {
        // SAFETY: getpgrp has no preconditions.
        give_terminal(unsafe { libc::getpgrp() });
    }
    result
}
