//! Transports that run one command on one target: `local` today (std::process),
//! SSH beside it. A transport reports output through a callback and returns how the
//! command ended; it never prints and never decides about retries.

pub mod local;
pub mod ssh;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// How one command attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecResult {
    Exited(i32),
    Signaled(i32),
    TimedOut,
    Cancelled,
    /// The command could not be started at all (bad directory, missing sudo, ...).
    SpawnError(String),
    /// The remote host could not be reached or authenticated (exit code 3).
    ConnectError(String),
}

impl ExecResult {
    pub fn success(&self) -> bool {
        matches!(self, ExecResult::Exited(0))
    }

    /// The exit code to report in events: the process's own, 128+signal, or None.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            ExecResult::Exited(c) => Some(*c),
            ExecResult::Signaled(s) => Some(128 + s),
            _ => None,
        }
    }
}
