//! Peak memory of a process a test runs: its own high-water mark (VmHWM in
//! /proc/PID/status), sampled every 2 ms while it runs. Not wait4's ru_maxrss: a child
//! started by posix_spawn (vfork) carries the test process's resident set into that
//! figure at exec, so it measured the test binary, not nexus, once the suite grew.
//! VmHWM only grows, so sampling misses at most what the process adds in its last 2 ms.

use std::process::Command;
use std::time::Duration;

/// Run `command` with stdout to /dev/null and stderr captured; (exit code, stderr, peak
/// resident set size in KB of that process alone).
pub fn run_peak_rss(mut command: Command) -> (i32, String, u64) {
    use std::io::Read;
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("spawn");
    let reader = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut err = String::new();
            let _ = e.read_to_string(&mut err);
            err
        })
    });
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Some(kb) = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| super::process::vm_hwm(&s))
        {
            peak = peak.max(kb);
        }
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let err = reader
        .map(|r| r.join().unwrap_or_default())
        .unwrap_or_default();
    (status.code().unwrap_or(-1), err, peak)
}
