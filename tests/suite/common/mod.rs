//! Test harness: write a nexus.toml into a fresh directory, run the real binary, compare
//! stdout, stderr and exit code together. Expected text is written unindented inline;
//! durations and run ids are masked so the comparison is exact about everything else.
//! The assertion methods are `#[track_caller]`: a failure names the test's line, shows a
//! line diff of each stream that differs, and then everything the run printed.

#![allow(dead_code)]

pub mod process;
pub mod rusage;
pub mod sshd;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub const BIN: &str = env!("CARGO_BIN_EXE_nexus");

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("nexus-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Remove the common leading indentation and a leading newline (like just's `unindent`).
pub fn unindent(s: &str) -> String {
    let s = s.strip_prefix('\n').unwrap_or(s);
    let indent = s
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: String = s
        .lines()
        .map(|l| {
            if l.len() >= indent {
                &l[indent..]
            } else {
                l.trim_start()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    if s.ends_with('\n') {
        out.push('\n');
    }
    // A trailing indented closing line leaves spaces after the last newline.
    while out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Replace durations like `0.0s`, `12.3s` with `X.Xs` and run ids with `RUN_ID`.
pub fn mask(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        // Run id: 8 digits 'T' 9 digits 'Z-' 4 hex.
        if i + 24 <= b.len()
            && b[i..i + 8].iter().all(u8::is_ascii_digit)
            && b[i + 8] == b'T'
            && b[i + 9..i + 18].iter().all(u8::is_ascii_digit)
            && &b[i + 18..i + 20] == b"Z-"
            && b[i + 20..i + 24].iter().all(u8::is_ascii_hexdigit)
        {
            out.push_str("RUN_ID");
            i += 24;
            continue;
        }
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j + 2 < b.len() + 1
                && b.get(j) == Some(&b'.')
                && b.get(j + 1).is_some_and(u8::is_ascii_digit)
            {
                let mut k = j + 1;
                while k < b.len() && b[k].is_ascii_digit() {
                    k += 1;
                }
                if b.get(k) == Some(&b's') && !b.get(k + 1).is_some_and(u8::is_ascii_alphanumeric) {
                    out.push_str("X.Xs");
                    i = k + 1;
                    continue;
                }
            }
        }
        let ch = s[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// What one run of the binary printed, and how it ended.
pub struct Run {
    /// The command line, for failure messages.
    pub command: String,
    pub stdout: String,
    pub stderr: String,
    /// The exit code; -1 when a signal ended the process.
    pub code: i32,
}

impl Run {
    /// A finished process started from `command` (`Test::command()` plus arguments).
    pub fn from_output(command: &Command, out: Output) -> Run {
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        Run {
            command: format!("nexus {}", args.join(" ")),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
        }
    }

    /// Everything the run printed, unmasked.
    pub fn show(&self) -> String {
        format!(
            "everything `{}` printed:\n--- exit code: {}\n--- stdout:\n{}\n--- stderr:\n{}\n--- end",
            self.command, self.code, self.stdout, self.stderr
        )
    }

    /// Assert all three at once (masked); on a mismatch, a line diff of each stream that
    /// differs and everything the run printed.
    #[track_caller]
    pub fn expect(&self, code: i32, stdout: &str, stderr: &str) -> &Self {
        // Expected text is masked too, so tests may spell out real ids and paths.
        let (want_out, want_err) = (mask(&unindent(stdout)), mask(&unindent(stderr)));
        self.check(Some(code), Some(&want_out), Some(&want_err))
    }

    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        self.check(Some(code), None, None)
    }

    #[track_caller]
    pub fn expect_stderr(&self, stderr: &str) -> &Self {
        self.check(None, None, Some(&mask(&unindent(stderr))))
    }

    #[track_caller]
    pub fn expect_stdout(&self, stdout: &str) -> &Self {
        self.check(None, Some(&mask(&unindent(stdout))), None)
    }

    /// Compare what is given (expected text already unindented and masked).
    #[track_caller]
    fn check(&self, code: Option<i32>, stdout: Option<&str>, stderr: Option<&str>) -> &Self {
        let mut report = String::new();
        if let Some(code) = code.filter(|&c| c != self.code) {
            report += &format!("exit code: expected {code}, got {}\n", self.code);
        }
        for (name, want, got) in [
            ("stdout", stdout, &self.stdout),
            ("stderr", stderr, &self.stderr),
        ] {
            let Some(want) = want else { continue };
            let got = mask(got);
            if got != want {
                report += &format!(
                    "{name} differs (- expected, + actual):\n{}",
                    diff(want, &got)
                );
            }
        }
        if !report.is_empty() {
            panic!("\n{report}\n{}\n", self.show());
        }
        self
    }

    /// stdout parsed as JSON Lines.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        let mut lines = Vec::new();
        for l in self.stdout.lines() {
            match serde_json::from_str(l) {
                Ok(v) => lines.push(v),
                Err(e) => panic!("\nline is not JSON ({e}): {l}\n{}\n", self.show()),
            }
        }
        lines
    }
}

/// A line diff of `expected` and `actual`: `- ` expected only, `+ ` actual only, `  ` both.
/// Control characters are escaped; trailing blanks and a missing final newline are named,
/// so lines that differ only there do not look the same.
pub fn diff(expected: &str, actual: &str) -> String {
    use similar::{ChangeTag, TextDiff};
    let mut out = String::new();
    for change in TextDiff::from_lines(expected, actual).iter_all_changes() {
        let sign = match change.tag() {
            ChangeTag::Delete => "- ",
            ChangeTag::Insert => "+ ",
            ChangeTag::Equal => "  ",
        };
        let line = change.value();
        let text = line.strip_suffix('\n').unwrap_or(line);
        out.push_str(sign);
        for ch in text.chars() {
            if ch.is_control() && ch != '\t' {
                out.extend(ch.escape_default());
            } else {
                out.push(ch);
            }
        }
        if text.ends_with([' ', '\t']) {
            out.push_str("   <- trailing blanks");
        }
        if change.missing_newline() {
            out.push_str("   <- no newline at the end");
        }
        out.push('\n');
    }
    out
}

/// `assert_eq!` for text: on a mismatch, a line diff (- expected, + actual) and both texts.
#[track_caller]
pub fn assert_text(what: &str, actual: &str, expected: &str) {
    if actual != expected {
        panic!(
            "\n{what} differs (- expected, + actual):\n{}\n--- actual:\n{actual}\n--- end\n",
            diff(expected, actual)
        );
    }
}

pub struct Test {
    pub dir: std::sync::Arc<TempDir>,
    args: Vec<String>,
    env: HashMap<String, String>,
    remove_env: Vec<String>,
}

impl Test {
    pub fn new() -> Test {
        Test {
            dir: std::sync::Arc::new(TempDir::new("cli")),
            args: Vec::new(),
            env: HashMap::new(),
            remove_env: vec![
                "NO_COLOR".into(),
                "FORCE_COLOR".into(),
                "NEXUS_CONFIG".into(),
                "NEXUS_LOG_LEVEL".into(),
                "CI".into(),
            ],
        }
    }

    /// Write nexus.toml (unindented).
    pub fn toml(self, text: &str) -> Test {
        self.file("nexus.toml", text)
    }

    pub fn file(self, name: &str, text: &str) -> Test {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, unindent(text)).expect("write file");
        self
    }

    /// Another command in the same directory and environment, with these arguments.
    pub fn clone_args(&self, args: &[&str]) -> Test {
        Test {
            dir: std::sync::Arc::clone(&self.dir),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: self.env.clone(),
            remove_env: self.remove_env.clone(),
        }
    }

    pub fn args(mut self, args: &[&str]) -> Test {
        self.args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Test {
        self.env.insert(k.into(), v.into());
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.args(&self.args).current_dir(self.dir.path());
        for k in &self.remove_env {
            c.env_remove(k);
        }
        c.env("NEXUS_HOME", self.dir.path().join(".nexus-home"));
        c.envs(&self.env);
        c.stdin(Stdio::null());
        c
    }

    pub fn run(&self) -> Run {
        let mut command = self.command();
        let out: Output = command.output().expect("run nexus");
        Run::from_output(&command, out)
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }
}

/// The name of the user running the suite. The test servers run as this user too, and a
/// server run by a normal user lets only that user log in: tests log in as this user
/// (root when the suite runs as root).
pub fn user() -> &'static str {
    static USER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    USER.get_or_init(|| {
        let out = Command::new("id").arg("-un").output().expect("id -un");
        assert!(out.status.success(), "id -un: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}

/// Whether the suite runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// For a test that needs root: as root, false (run the test); otherwise true (return at
/// once) after `SKIP test: needs root (why)` on the real stderr, so the skip shows in
/// every run (libtest counts the test as passed).
pub fn skip_unless_root(test: &str, why: &str) -> bool {
    if is_root() {
        return false;
    }
    note(&format!("SKIP {test}: needs root ({why})"));
    true
}

/// A line on the test binary's real stderr. libtest captures `print!`/`eprint!` output
/// of passing tests; a write to `std::io::stderr()` itself is not captured, so the line
/// shows in every run.
pub fn note(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Poll `done` every 20 ms until it is true; fail the test after `limit`. A bounded wait
/// for something a test needs to have happened (a process started, a line logged): the
/// limit only keeps a broken build from hanging the suite, it asserts nothing about speed.
#[track_caller]
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process a test started, stopped by PID when dropped if it is still running (so also
/// when the test fails before it ends): SIGTERM, then SIGKILL after 5 s.
pub struct Stop(pub Child);

impl Stop {
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Send `signal` to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: signalling a child this test started, by its PID (not yet reaped: the
        // Child is still ours).
        unsafe {
            libc::kill(self.0.id() as i32, signal);
        }
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        if !matches!(self.0.try_wait(), Ok(None)) {
            return;
        }
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.0.try_wait(), Ok(None)) {
            if Instant::now() >= deadline {
                let _ = self.0.kill();
                let _ = self.0.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Wait for `child` (spawned from `command` with piped stdout and stderr), reading both
/// as it goes. Past `limit` the child is SIGKILLed and the test fails with what it
/// printed: the limit only keeps a hung nexus from hanging the suite.
#[track_caller]
pub fn wait_within(child: &mut Stop, command: &Command, limit: Duration) -> Run {
    let child = &mut child.0;
    fn drain(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    }
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for nexus") {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        status: status.unwrap_or_else(|| std::os::unix::process::ExitStatusExt::from_raw(9)),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    let run = Run::from_output(command, output);
    if status.is_none() {
        panic!(
            "\nnexus did not exit within {limit:?}; killed it\n{}\n",
            run.show()
        );
    }
    run
}

/// Lines of a log file written by commands (`echo x >> log`).
pub fn log_lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

/// Position of `needle` in `lines`, panicking with the log when absent.
#[track_caller]
pub fn pos(lines: &[String], needle: &str) -> usize {
    lines
        .iter()
        .position(|l| l == needle)
        .unwrap_or_else(|| panic!("`{needle}` not in log: {lines:?}"))
}

/// A `sleep` duration that marks one test's processes among all of the machine's
/// (other test binaries run beside this one): `SECS.PPPPPPPTT`, this process's PID and
/// `tag` at fixed widths, so no marker is a prefix of another (`sleep 2.123` would also
/// match `sleep 2.1234`). A sleep of about SECS seconds.
pub fn marker(secs: u32, tag: u32) -> String {
    assert!(tag < 100, "tag {tag} has more than two digits");
    format!("{secs}.{:07}{tag:02}", std::process::id())
}

/// Running processes (not zombies) whose command line contains `needle`.
pub fn processes_matching(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rfind(')')
            .is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z'));
        if cmd.contains(needle) && !zombie {
            found.push(format!("{pid}: {cmd}"));
        }
    }
    found
}

/// SIGKILL the running processes whose command line contains `needle` (a SIGKILLed
/// nexus cannot stop its commands); how many there were.
pub fn kill_matching(needle: &str) -> usize {
    let found = processes_matching(needle);
    for p in &found {
        if let Some(pid) = p.split(':').next().and_then(|s| s.parse::<i32>().ok()) {
            // SAFETY: signalling a process this test started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    found.len()
}

#[test]
fn mask_masks_only_durations_and_ids() {
    assert_eq!(mask("ok a 0.0s (12.34s)"), "ok a X.Xs (X.Xs)");
    assert_eq!(mask("v1.2s3 10s 1.5"), "v1.2s3 10s 1.5");
    assert_eq!(mask("run 20261124T181847914Z-e378 done"), "run RUN_ID done");
}

/// Every process's argument list, joined (to look for a value that must not be there).
pub fn all_cmdlines() -> String {
    let mut all = String::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            all += &String::from_utf8_lossy(&c).replace('\0', " ");
            all.push('\n');
        }
    }
    all
}
