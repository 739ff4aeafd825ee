//! Peak memory of a process a test runs: wait4(2) returns the child's own rusage.

use std::process::Command;

/// Run `command` with stdout to /dev/null and stderr captured; (exit code, stderr, peak
/// resident set size in KB of that process alone).
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which std does not know of
pub fn run_peak_rss(mut command: Command) -> (i32, String, u64) {
    use std::io::Read;
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("spawn");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter; the pid is our own child, not
    // yet reaped (the Child is never waited on after this).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(r, child.id() as i32, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, err, usage.ru_maxrss as u64)
}
