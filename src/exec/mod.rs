//! Transports that run one command on one target: `local` today (std::process),
//! SSH beside it. A transport reports output through a callback and returns how the
//! command ended; it never prints and never decides about retries.

pub mod attached;
pub mod local;
pub mod script;
pub mod ssh;

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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

/// What a transport reports while a command runs.
pub trait Progress {
    fn output(&mut self, stream: Stream, data: &[u8]);
    /// The process group the command runs in is known (remote: the remote group).
    fn spawned(&mut self, pgid: u32, remote: bool);
}

/// Output kept whole, for the short commands nexus runs itself (checks, probes).
#[derive(Debug, Default)]
pub struct Collected {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Progress for Collected {
    fn output(&mut self, stream: Stream, data: &[u8]) {
        match stream {
            Stream::Stdout => self.stdout.extend_from_slice(data),
            Stream::Stderr => self.stderr.extend_from_slice(data),
        }
    }

    fn spawned(&mut self, _pgid: u32, _remote: bool) {}
}

/// Why a command could not run, and what to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub what: String,
    pub help: Vec<String>,
}

impl Cause {
    pub fn new(what: impl Into<String>) -> Cause {
        Cause {
            what: what.into(),
            help: Vec::new(),
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Cause {
        self.help.push(help.into());
        self
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
    SpawnError(Cause),
    /// The remote host could not be reached or authenticated (exit code 3).
    ConnectError(Cause),
    /// The task's deadline passed while the host was still being connected to (exit
    /// code 4); how far connecting had got.
    ConnectTimedOut(Cause),
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

/// `s` as one word of a POSIX shell command: as it is when it holds only characters no
/// shell treats specially, else in single quotes (embedded ones escaped).
pub fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./-+:@%,".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Shell code that exports `vars` and then runs `line` (for a shell that reads it from
/// stdin: the values never appear in an argument list).
pub fn export_script<'a>(
    vars: impl IntoIterator<Item = &'a (String, String)>,
    line: &str,
) -> String {
    let mut p = String::new();
    for (k, v) in vars {
        p += &format!("{k}={}; export {k}\n", ssh::remote::quote(v));
    }
    p += line;
    p.push('\n');
    p
}
