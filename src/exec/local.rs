//! Local commands: one process group per command, stdout and stderr read separately
//! through poll(2) on the calling thread, a deadline, and cancellation. On timeout or
//! cancel the whole group is killed (SIGTERM, then SIGKILL after a grace period), so
//! background grandchildren (`sleep 300 &`) go too. Like make, a command without shell
//! metacharacters is exec'd directly; everything else runs under `sh -c` (or `[config]
//! shell`); a `#!` script runs from a private file (`script`). An interactive command
//! is attached to the terminal instead (`attached`).
//! Must not: print, or leave a process it started running after a timeout or cancel.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::attached::Attached;
use super::script::{self, ScriptFile};
use super::ssh::remote::quote;
use super::{Cause, ExecResult, Progress, Stream};
use crate::{signals, sys};

/// Pipe buffer asked for each command's stdout and stderr, and how much is read at once:
/// a command that prints a lot then hands over its output in few, large pieces.
const PIPE_SIZE: usize = 1024 * 1024;
const READ_SIZE: usize = 256 * 1024;

/// Time between SIGTERM and SIGKILL when a group is stopped.
pub const KILL_GRACE: Duration = Duration::from_millis(1000);

/// What to run, fully expanded.
#[derive(Debug, Clone)]
pub struct LocalCommand {
    pub line: String,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    /// None: no sudo. Some(None): `sudo -n`. Some(Some(u)): `sudo -n -u u`.
    pub sudo: Option<Option<String>>,
    /// The line holds a secret: it goes to the shell on stdin, never in an argument list.
    pub secret: bool,
    /// The shell and its arguments (`[config] shell`); the line goes last.
    pub shell: Vec<String>,
    /// Attached to nexus's terminal (an interactive task): stdin, stdout and stderr are
    /// nexus's own, nothing is captured.
    pub attached: Option<Attached>,
}

impl LocalCommand {
    /// Runs under `sh -c`, where simple lines may be exec'd directly.
    fn default_shell(&self) -> bool {
        self.shell == ["sh", "-c"]
    }
}

/// The variables a run may set for its commands (docs/nexus-toml.md): those this run
/// does not set are removed from what a command inherits.
const RUN_VARS: [&str; 2] = ["NEXUS_GIT_SHA", "NEXUS_GIT_BRANCH"];

/// Words that need a shell even without metacharacters (builtins and keywords).
const SHELL_WORDS: &[&str] = &[
    ".", ":", "alias", "bg", "break", "case", "cd", "command", "continue", "do", "done", "elif",
    "else", "esac", "eval", "exec", "exit", "export", "fc", "fg", "fi", "for", "function",
    "getopts", "hash", "if", "jobs", "local", "read", "readonly", "return", "select", "set",
    "shift", "source", "test", "then", "times", "trap", "type", "ulimit", "umask", "unalias",
    "unset", "until", "wait", "while", "[", "[[", "!", "{", "}",
];

/// The argv to exec directly, when the line has no shell syntax at all.
pub fn direct_argv(line: &str) -> Option<Vec<&str>> {
    const META: &[char] = &[
        '#', ';', '"', '\'', '*', '?', '[', ']', '$', '<', '>', '(', ')', '{', '}', '|', '&', '~',
        '`', '\\', '=', '%', '\n', '\r', '\t', '^', '!',
    ];
    if line.contains(META) {
        return None;
    }
    let argv: Vec<&str> = line.split(' ').filter(|w| !w.is_empty()).collect();
    let first = *argv.first()?;
    if SHELL_WORDS.contains(&first) {
        return None;
    }
    Some(argv)
}

/// A file nexus wrote for a command: a `#!` script, run as an executable; or the line
/// of an interactive command that holds a secret, which the shell sources (its stdin is
/// the terminal's, so the line cannot go there, and must not go in an argument list).
#[derive(Debug, Clone, Copy)]
enum Written<'a> {
    Script(&'a Path),
    Sourced(&'a Path),
}

/// The argv of `cmd`, with `written` the file nexus wrote for it, if any.
fn argv(cmd: &LocalCommand, direct: bool, written: Option<Written<'_>>) -> Vec<String> {
    let mut argv: Vec<String> = Vec::new();
    if let Some(user) = &cmd.sudo {
        argv.extend(["sudo".into(), "-n".into()]);
        if let Some(u) = user {
            argv.extend(["-u".into(), u.clone()]);
        }
        argv.push("--".into());
    }
    if payload(cmd).is_some() {
        // The shell reads its script from stdin (no `cat`, no `eval`: one process).
        argv.extend(["sh".into(), "-s".into()]);
        return argv;
    }
    match written {
        Some(Written::Script(path)) => {
            argv.push(path.display().to_string());
            return argv;
        }
        Some(Written::Sourced(path)) => {
            argv.extend(cmd.shell.iter().cloned());
            argv.push(format!(". {}", quote(&path.display().to_string())));
            return argv;
        }
        None => {}
    }
    match direct_argv(&cmd.line).filter(|_| direct && cmd.default_shell()) {
        Some(words) => argv.extend(words.into_iter().map(str::to_string)),
        None => {
            argv.extend(cmd.shell.iter().cloned());
            argv.push(cmd.line.clone());
        }
    }
    argv
}

fn build(cmd: &LocalCommand, direct: bool, written: Option<Written<'_>>) -> Command {
    let argv = argv(cmd, direct, written);
    let program = if cmd.sudo.is_none() && !cmd.env.iter().any(|(k, _)| k == "PATH") {
        resolve_program(&argv[0]).unwrap_or_else(|| PathBuf::from(&argv[0]))
    } else {
        PathBuf::from(&argv[0])
    };
    let mut c = Command::new(program);
    c.args(&argv[1..]);
    // Only when it differs from ours: without a directory to change to, std can start
    // the command with posix_spawn (vfork) even in a static binary.
    if !is_current_dir(&cmd.dir) {
        c.current_dir(&cmd.dir);
    }
    // nexus's variables come from this run only, not from a nexus that started this one.
    for k in RUN_VARS {
        if !cmd.env.iter().any(|(name, _)| name == k) {
            c.env_remove(k);
        }
    }
    let through_stdin = payload(cmd).is_some();
    c.envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .stdin(if through_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(a) = cmd.attached {
        super::attached::configure(&mut c, a);
    }
    c
}

/// With sudo, which starts the command from a clean environment, the variables go in
/// as shell code on stdin (never in an argument list), followed by the command, as the
/// script of `sh -s`. A line that holds a secret goes the same way. Under another
/// `[config] shell`, the code execs that shell, which finds the line in its environment
/// (not in an argument list); a `#!` script under sudo is written to a file by the code
/// (`script::runner`), as the user sudo runs it as.
fn payload(cmd: &LocalCommand) -> Option<String> {
    let is_script = script::is_script(&cmd.line);
    let sudo = cmd.sudo.is_some();
    // Without sudo, nexus writes a script's file itself.
    if !sudo && (is_script || cmd.attached.is_some()) {
        return None;
    }
    if !(cmd.secret || (sudo && (!cmd.env.is_empty() || is_script))) {
        return None;
    }
    let line = if is_script {
        script::runner(&cmd.line)
    } else if cmd.default_shell() {
        cmd.line.clone()
    } else {
        let shell: Vec<String> = cmd.shell.iter().map(|w| quote(w)).collect();
        format!(
            "__nexus_line={}; export __nexus_line\nexec {} 'eval \"$__nexus_line\"'",
            quote(&cmd.line),
            shell.join(" ")
        )
    };
    // The environment goes as it does for any command, except through sudo.
    let env: &[(String, String)] = if sudo { &cmd.env } else { &[] };
    let script = super::export_script(env, &line);
    // One compound command: `sh -s` parses all of it before running any of it, and the
    // command's own stdin is empty, as /dev/null would be.
    Some(format!("{{\n{script}}} </dev/null\n"))
}

/// The PATH lookup of `name`, done once per program per process (like a shell's hash
/// table): execvp would otherwise try every PATH entry on every spawn.
fn resolve_program(name: &str) -> Option<PathBuf> {
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Option<PathBuf>>>> = OnceLock::new();
    if name.contains('/') {
        return None;
    }
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(hit) = cache.lock().ok()?.get(name) {
        return hit.clone();
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .filter(|d| !d.as_os_str().is_empty())
            .map(|d| d.join(name))
            .find(|p| {
                std::fs::metadata(p)
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    });
    cache.lock().ok()?.insert(name.to_string(), found.clone());
    found
}

/// Whether `dir` is the directory nexus runs in (looked up once).
fn is_current_dir(dir: &std::path::Path) -> bool {
    static CWD: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    CWD.get_or_init(|| std::env::current_dir().ok())
        .as_deref()
        .is_some_and(|cwd| cwd == dir)
}

/// A command's stdout and stderr pipes. nexus keeps a write end of each while the
/// command runs (see `Running::held`).
struct Pipes {
    out: (OwnedFd, OwnedFd),
    err: (OwnedFd, OwnedFd),
}

impl Pipes {
    fn new() -> io::Result<Pipes> {
        let (out, err) = (sys::pipe()?, sys::pipe()?);
        for r in [&out.0, &err.0] {
            sys::grow_pipe(r.as_raw_fd(), PIPE_SIZE);
        }
        Ok(Pipes { out, err })
    }
}

/// A started command: by std's `Command`, or by `sys::spawn` (see `spawn_plain`).
enum Proc {
    Std(Child),
    Own(sys::Spawned),
}

impl Proc {
    fn id(&self) -> u32 {
        match self {
            Proc::Std(c) => c.id(),
            Proc::Own(s) => s.id(),
        }
    }
}

/// What waiting for and killing a command needs of it.
pub(super) trait Reap {
    fn try_wait(&mut self) -> io::Result<Option<std::process::ExitStatus>>;
    fn wait(&mut self) -> io::Result<std::process::ExitStatus>;
}

impl Reap for Child {
    fn try_wait(&mut self) -> io::Result<Option<std::process::ExitStatus>> {
        Child::try_wait(self)
    }
    fn wait(&mut self) -> io::Result<std::process::ExitStatus> {
        Child::wait(self)
    }
}

impl Reap for Proc {
    fn try_wait(&mut self) -> io::Result<Option<std::process::ExitStatus>> {
        match self {
            Proc::Std(c) => c.try_wait(),
            Proc::Own(s) => s.try_wait(),
        }
    }
    fn wait(&mut self) -> io::Result<std::process::ExitStatus> {
        match self {
            Proc::Std(c) => c.wait(),
            Proc::Own(s) => s.wait(),
        }
    }
}

/// nexus's /dev/null, opened once: every captured command's stdin.
fn dev_null() -> Option<&'static File> {
    static NULL: std::sync::OnceLock<Option<File>> = std::sync::OnceLock::new();
    NULL.get_or_init(|| File::open("/dev/null").ok()).as_ref()
}

/// nexus's environment as (name, `NAME=value`), without the run variables, read at the
/// first command: nexus changes its environment only while it loads nexus.toml (the
/// dotenv files, `userenv::export_dotenv`), before any command starts.
fn base_env() -> &'static [(Vec<u8>, std::ffi::CString)] {
    use std::os::unix::ffi::OsStrExt;
    static ENV: std::sync::OnceLock<Vec<(Vec<u8>, std::ffi::CString)>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        std::env::vars_os()
            .filter(|(k, _)| !RUN_VARS.iter().any(|r| r.as_bytes() == k.as_bytes()))
            .filter_map(|(k, v)| {
                let kv = [k.as_bytes(), b"=", v.as_bytes()].concat();
                Some((k.as_bytes().to_vec(), std::ffi::CString::new(kv).ok()?))
            })
            .collect()
    })
}

/// The common case without std's `Command`: a program found on PATH (an absolute path),
/// stdin from /dev/null and output into `pipes`. It saves the vfork child half its system
/// calls (`sys::spawn`), and nexus an open of /dev/null and a copy of its environment per
/// command: time a chain of small tasks spends per task between two commands. None
/// where that does not apply (the caller uses `build`).
fn spawn_plain(
    cmd: &LocalCommand,
    direct: bool,
    written: Option<Written<'_>>,
    pipes: &Pipes,
) -> Option<io::Result<Proc>> {
    use std::ffi::CString;
    use std::os::fd::AsFd;
    use std::os::unix::ffi::OsStrExt;
    if cmd.attached.is_some() || payload(cmd).is_some() {
        return None;
    }
    if cmd.sudo.is_some() || cmd.env.iter().any(|(k, _)| k == "PATH") {
        return None;
    }
    let dir = if is_current_dir(&cmd.dir) {
        None
    } else if sys::can_spawn_in_dir() {
        Some(CString::new(cmd.dir.as_os_str().as_bytes()).ok()?)
    } else {
        return None;
    };
    let argv = argv(cmd, direct, written);
    let program = resolve_program(&argv[0]).filter(|p| p.is_absolute())?;
    let program = CString::new(program.as_os_str().as_bytes()).ok()?;
    let argv: Vec<CString> = argv
        .into_iter()
        .map(CString::new)
        .collect::<Result<_, _>>()
        .ok()?;
    // As `build`: nexus's environment without the run variables this run does not set,
    // then the command's variables (the last of a name wins).
    let mut envp: Vec<&std::ffi::CStr> = base_env()
        .iter()
        .filter(|(k, _)| !cmd.env.iter().any(|(n, _)| n.as_bytes() == k.as_slice()))
        .map(|(_, kv)| kv.as_c_str())
        .collect();
    let mut own = Vec::with_capacity(cmd.env.len());
    for (i, (k, v)) in cmd.env.iter().enumerate() {
        if !cmd.env[i + 1..].iter().any(|(n, _)| n == k) {
            own.push(CString::new(format!("{k}={v}")).ok()?);
        }
    }
    envp.extend(own.iter().map(CString::as_c_str));
    let stdin = dev_null()?;
    let stdio = [stdin.as_fd(), pipes.out.1.as_fd(), pipes.err.1.as_fd()];
    Some(sys::spawn(&program, &argv, &envp, dir.as_deref(), stdio).map(Proc::Own))
}

/// Start `cmd` by `attempt(direct, written)`; a direct exec of a program that is not
/// found goes to the shell instead, which says so with its usual exit code 127.
fn with_fallback<T>(
    cmd: &LocalCommand,
    written: Option<Written<'_>>,
    attempt: impl Fn(bool, Option<Written<'_>>) -> io::Result<T>,
) -> io::Result<T> {
    match attempt(true, written) {
        Err(e) if e.kind() == io::ErrorKind::NotFound && cmd.dir.is_dir() && written.is_none() => {
            attempt(false, None)
        }
        r => r,
    }
}

/// An attached command, by std's `Command` (its terminal set-up runs before exec).
fn spawn_attached(cmd: &LocalCommand, written: Option<Written<'_>>) -> io::Result<Child> {
    with_fallback(cmd, written, |direct, written| {
        build(cmd, direct, written).spawn()
    })
}

/// A command whose output goes into `pipes`.
fn spawn(cmd: &LocalCommand, written: Option<Written<'_>>, pipes: &Pipes) -> io::Result<Proc> {
    with_fallback(cmd, written, |direct, written| {
        if let Some(spawned) = spawn_plain(cmd, direct, written, pipes) {
            return spawned;
        }
        let mut c = build(cmd, direct, written);
        c.stdout(pipes.out.1.try_clone()?)
            .stderr(pipes.err.1.try_clone()?);
        c.spawn().map(Proc::Std)
    })
}

/// Why `cmd` could not start.
fn spawn_error(cmd: &LocalCommand, script: Option<&ScriptFile>, e: &io::Error) -> ExecResult {
    if !cmd.dir.is_dir() {
        return ExecResult::SpawnError(Cause::new(format!(
            "working directory {} does not exist",
            cmd.dir.display()
        )));
    }
    let why = crate::error::io_reason(e);
    let Some(file) = script else {
        return ExecResult::SpawnError(Cause::new(format!("cannot start `{}`: {why}", cmd.line)));
    };
    let interpreter = script::interpreter(&cmd.line);
    let cause = match e.kind() {
        io::ErrorKind::NotFound => Cause::new(format!(
            "cannot run the script: its interpreter `{interpreter}` was not found"
        ))
        .help("check the script's first line (#!/usr/bin/env python3, say)"),
        io::ErrorKind::PermissionDenied => Cause::new(format!(
            "cannot run the script from {}: {why}",
            file.dir().display()
        ))
        .help("the temporary directory may be mounted noexec: set TMPDIR to another directory"),
        _ => Cause::new(format!("cannot run the script (`#!{interpreter}`): {why}")),
    };
    ExecResult::SpawnError(cause)
}

/// Run `cmd` until it exits, `deadline` passes, or the run is cancelled.
pub fn exec(cmd: &LocalCommand, deadline: Instant, progress: &mut dyn Progress) -> ExecResult {
    // A `#!` script is run from a private file (under sudo the payload writes it); so is
    // an interactive line holding a secret.
    let is_script = script::is_script(&cmd.line);
    let sourced = !is_script && cmd.secret && cmd.attached.is_some() && cmd.sudo.is_none();
    let file = if (is_script && cmd.sudo.is_none()) || sourced {
        match ScriptFile::write(&cmd.line) {
            Ok(f) => Some(f),
            Err(e) => {
                return ExecResult::SpawnError(
                    Cause::new(format!(
                        "cannot write the script to a temporary file: {}",
                        crate::error::io_reason(&e)
                    ))
                    .help("check TMPDIR (or /tmp): it must be writable"),
                )
            }
        }
    } else {
        None
    };
    let path = file.as_ref().map(|f| {
        if sourced {
            Written::Sourced(&f.path)
        } else {
            Written::Script(&f.path)
        }
    });
    if let Some(a) = cmd.attached {
        // Whether nexus has the terminal to give is known only before the child takes it.
        let cmd = LocalCommand {
            attached: Some(Attached {
                terminal: super::attached::owns_terminal(),
                ..a
            }),
            ..cmd.clone()
        };
        return match spawn_attached(&cmd, path) {
            Ok(child) => {
                super::attached::wait(cmd.attached.unwrap_or(a), child, deadline, progress)
            }
            Err(e) => spawn_error(&cmd, file.as_ref().filter(|_| is_script), &e),
        };
    }
    let spawned = Pipes::new().and_then(|p| spawn(cmd, path, &p).map(|c| (c, p)));
    let (mut child, pipes) = match spawned {
        Ok(c) => c,
        Err(e) => return spawn_error(cmd, file.as_ref().filter(|_| is_script), &e),
    };
    let stdin = match &mut child {
        Proc::Std(c) => c.stdin.take(),
        Proc::Own(_) => None,
    };
    if let (Some(p), Some(mut input)) = (payload(cmd), stdin) {
        // The shell reads it all before it runs anything; an error means it is gone,
        // and its exit status says why.
        let _ = std::io::Write::write_all(&mut input, p.as_bytes());
    }
    progress.spawned(child.id(), false);
    // A pidfd makes the child's exit one more event for poll(2); without one (old
    // kernels) we look every 100ms, and the pipes' closing is what tells us it ended.
    let pidfd = sys::pidfd_open(child.id());
    let held = if pidfd.is_some() {
        vec![pipes.out.1, pipes.err.1]
    } else {
        Vec::new()
    };
    let mut r = Running {
        pgid: child.id(),
        out: Some(File::from(pipes.out.0)),
        err: Some(File::from(pipes.err.0)),
        held,
        pidfd,
        child,
        buf: vec![0u8; READ_SIZE],
    };
    r.run(deadline, progress)
}

/// A started command: its group, its pipes, and what tells us it exited.
struct Running {
    child: Proc,
    pgid: u32,
    out: Option<File>,
    err: Option<File>,
    /// nexus's own write ends of the pipes, kept (with a pidfd) until the command exits.
    /// Many programs close stdout and stderr on their way out (coreutils do, at exit);
    /// without these each close would wake nexus (a pipe with no writer left polls as
    /// hung up) only to find the command still running: two more trips through the
    /// scheduler per command, a tenth of the time a `true` takes.
    held: Vec<OwnedFd>,
    pidfd: Option<OwnedFd>,
    buf: Vec<u8>,
}

/// What one turn of the wait loop found.
enum Turn {
    Go,
    Exited(std::process::ExitStatus),
    /// The pipes closed and there is no pidfd: wait for the exit by polling.
    PipesClosed,
    Stop(ExecResult),
}

impl Running {
    fn run(&mut self, deadline: Instant, progress: &mut dyn Progress) -> ExecResult {
        let status = loop {
            match self.turn(deadline, progress) {
                Turn::Go => {}
                Turn::Exited(s) => break s,
                Turn::Stop(r) => return r,
                Turn::PipesClosed => match wait_until(&mut self.child, deadline) {
                    Some(s) => break s,
                    None => {
                        kill_group(self.pgid, &mut self.child);
                        return if signals::cancelled() {
                            ExecResult::Cancelled
                        } else {
                            ExecResult::TimedOut
                        };
                    }
                },
            }
        };
        match (status.code(), status.signal()) {
            (Some(code), _) => ExecResult::Exited(code),
            (None, Some(sig)) => ExecResult::Signaled(sig),
            (None, None) => ExecResult::Exited(-1),
        }
    }

    /// Wait for output, the exit, the deadline or a cancellation; handle what came.
    fn turn(&mut self, deadline: Instant, progress: &mut dyn Progress) -> Turn {
        let now = Instant::now();
        let stop = if now >= deadline {
            Some(ExecResult::TimedOut)
        } else if signals::cancelled() {
            Some(ExecResult::Cancelled)
        } else {
            None
        };
        if let Some(result) = stop {
            kill_group(self.pgid, &mut self.child);
            self.held.clear();
            self.drain(progress);
            return Turn::Stop(result);
        }
        let most = if self.pidfd.is_some() {
            Duration::MAX
        } else {
            Duration::from_millis(100)
        };
        let ready = sys::poll(
            &[
                sys::Wait::read(self.out.as_ref().map(|o| o.as_raw_fd())),
                sys::Wait::read(self.err.as_ref().map(|e| e.as_raw_fd())),
                sys::Wait::read(Some(signals::wake_fd())),
                sys::Wait::read(self.pidfd.as_ref().map(|p| p.as_raw_fd())),
            ],
            (deadline - now).clamp(Duration::from_millis(1), most),
        );
        if ready[0] {
            read_some(&mut self.out, Stream::Stdout, &mut self.buf, progress);
        }
        if ready[1] {
            read_some(&mut self.err, Stream::Stderr, &mut self.buf, progress);
        }
        let child_done = ready[3] || (self.pidfd.is_none() && !ready.contains(&true));
        let pipes_closed = self.out.is_none() && self.err.is_none();
        if child_done || pipes_closed {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Done. Whatever still holds the pipes is a background process that
                // outlives the command (as with make): take what is there and stop.
                self.held.clear();
                self.drain(progress);
                return Turn::Exited(status);
            }
            if pipes_closed && self.pidfd.is_none() {
                return Turn::PipesClosed;
            }
        }
        Turn::Go
    }

    /// Read what is already in the pipes without blocking, then close them.
    fn drain(&mut self, progress: &mut dyn Progress) {
        for (pipe, stream) in [
            (&mut self.out, Stream::Stdout),
            (&mut self.err, Stream::Stderr),
        ] {
            for _ in 0..64 {
                let Some(p) = pipe.as_ref() else { break };
                if !sys::poll(&[sys::Wait::read(Some(p.as_raw_fd()))], Duration::ZERO)[0] {
                    break;
                }
                read_some(pipe, stream, &mut self.buf, progress);
            }
            *pipe = None;
        }
    }
}

fn read_some(pipe: &mut Option<File>, stream: Stream, buf: &mut [u8], progress: &mut dyn Progress) {
    if let Some(p) = pipe {
        match p.read(buf) {
            Ok(0) => *pipe = None,
            Ok(n) => progress.output(stream, &buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => *pipe = None,
        }
    }
}

/// Wait for the child until `deadline` or cancellation; None if it did not exit in time.
pub(super) fn wait_until(
    child: &mut dyn Reap,
    deadline: Instant,
) -> Option<std::process::ExitStatus> {
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() >= deadline || signals::cancelled() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// SIGTERM the whole group, give it `KILL_GRACE`, then SIGKILL whatever is left.
pub(super) fn kill_group(pgid: u32, child: &mut dyn Reap) {
    sys::signal_group(pgid, libc::SIGTERM);
    let start = Instant::now();
    while start.elapsed() < KILL_GRACE {
        let _ = child.try_wait();
        if !sys::group_exists(pgid) {
            return;
        }
        if child.try_wait().ok().flatten().is_some() && group_only_zombies(pgid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    sys::signal_group(pgid, libc::SIGKILL);
    let _ = child.wait();
}

/// True when every process left in the group is a zombie (exited, not yet reaped by init).
fn group_only_zombies(pgid: u32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name (which is in parentheses): state, ppid, pgrp.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let mut f = rest.split(' ');
        let state = f.next().unwrap_or("");
        let pgrp = f.nth(1).and_then(|s| s.parse::<u32>().ok());
        if pgrp == Some(pgid) && state != "Z" {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::direct_argv;

    #[test]
    fn direct_exec_only_without_shell_syntax() {
        assert_eq!(direct_argv("true"), Some(vec!["true"]));
        assert_eq!(direct_argv("sleep  0.05"), Some(vec!["sleep", "0.05"]));
        assert_eq!(direct_argv("echo $HOME"), None);
        assert_eq!(direct_argv("cd /tmp"), None);
        assert_eq!(direct_argv("A=1 env"), None);
        assert_eq!(direct_argv("a && b"), None);
        assert_eq!(direct_argv("  "), None);
    }
}
