//! Processes the tests look at from outside: a nexus reaped with wait4(2) for its peak
//! memory, and the process tree under a server (to kill one session of it).

#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{Run, Stop};

/// `wait_within`, reaping the child with wait4(2) so that its resource use comes back too:
/// the run and its peak resident set size in KiB (`ru_maxrss`). Past `limit` the child is
/// SIGKILLed and the test fails with what it printed.
#[track_caller]
pub fn wait_with_peak_rss(child: &mut Stop, command: &Command, limit: Duration) -> (Run, u64) {
    fn drain(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    }
    let pid = child.id() as libc::pid_t;
    let (out, err) = (drain(child.0.stdout.take()), drain(child.0.stderr.take()));
    let deadline = Instant::now() + limit;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut killed = false;
    loop {
        // SAFETY: wait4 on our own child with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert!(r == 0, "wait4({pid}): {}", std::io::Error::last_os_error());
        if Instant::now() >= deadline && !killed {
            child.signal(libc::SIGKILL);
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    };
    let run = Run::from_output(command, output);
    if killed {
        panic!(
            "\nnexus did not exit within {limit:?}; killed it\n{}\n",
            run.show()
        );
    }
    (run, usage.ru_maxrss.max(0) as u64)
}

/// The parent pid of `pid`, from /proc.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Every process below `pid` (children, their children, ...), parents before children.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut all: Vec<(u32, u32)> = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(parent) = parent_of(p) {
                all.push((p, parent));
            }
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(
            all.iter()
                .filter(|(_, parent)| *parent == p)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// SIGKILL these processes (test processes, by PID).
pub fn kill_all(pids: &[u32]) {
    for &p in pids {
        // SAFETY: signalling processes of a server this test started, by PID.
        unsafe {
            libc::kill(p as i32, libc::SIGKILL);
        }
    }
}
