//! Processes the tests look at from outside: the peak memory of a running nexus, and the
//! process tree under a server (to kill one session of it).

#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{Run, Stop};

/// `wait_within`, sampling the child's peak resident set size while it runs (VmHWM of
/// /proc/PID/status, every 20 ms; the peak only grows, so the last sample is the peak up
/// to a moment before the end): the run and that peak in KiB (0 if it ended before the
/// first sample). Not wait4's ru_maxrss: on Linux a child that std starts with
/// posix_spawn (vfork semantics) inherits the spawner's peak as its own at exec, so it
/// would measure the test runner, not nexus.
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
    let status_file = format!("/proc/{}/status", child.id());
    let (out, err) = (drain(child.0.stdout.take()), drain(child.0.stderr.take()));
    let deadline = Instant::now() + limit;
    let mut peak = 0;
    let status = loop {
        if let Some(kib) = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| vm_hwm(&s))
        {
            peak = kib;
        }
        if let Some(st) = child.0.try_wait().expect("wait for nexus") {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.0.kill();
            let _ = child.0.wait();
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
    (run, peak)
}

/// `VmHWM:   12345 kB` of a /proc/PID/status text, in KiB.
pub fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
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
