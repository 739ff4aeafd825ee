//! Where file steps run their scripts (src/transfer/scripts.rs): a host's SSH session
//! (given by the run, src/run/unit.rs) or this machine (`Local`, here). Either way: one
//! `sh -c SCRIPT` with arguments, a stream on its stdin, its stdout into a writer, its
//! stderr kept for the report, within a deadline. Must not: print.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::exec::Cause;

/// How a script ended.
#[derive(Debug, Default)]
pub struct Ran {
    pub code: i32,
    pub stderr: Vec<u8>,
}

pub trait Shell {
    /// Run `script` under `sh -c` (through `sudo -n` when `sudo`) with `args` as `$1`...,
    /// `input` on its stdin and its stdout into `out`. Err: it could not run or was
    /// stopped (timeout, Ctrl-C, a lost connection), with why.
    fn run(
        &mut self,
        script: &str,
        args: &[String],
        sudo: bool,
        input: &mut (dyn Read + Send),
        out: &mut (dyn Write + Send),
    ) -> Result<Ran, Stop>;
}

/// Why a script did not end by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    TimedOut,
    Cancelled,
    /// Could not start, or the connection was lost.
    Failed(Cause),
    Connect(Cause),
}

/// The command line that runs `script` with `args`.
pub fn command_line(script: &str, args: &[String]) -> String {
    let mut line = format!("sh -c {} nexus", crate::exec::ssh::remote::quote(script));
    for a in args {
        line.push(' ');
        line += &crate::exec::ssh::remote::quote(a);
    }
    line
}

/// This machine: scripts run in `dir`, in their own process group, killed at `deadline`.
pub struct Local {
    pub dir: PathBuf,
    pub deadline: Instant,
}

impl Local {
    /// `sh -c SCRIPT nexus ARGS...` (under `sudo -n` when asked) in its own process
    /// group, with all three streams piped.
    fn spawn(
        &self,
        script: &str,
        args: &[String],
        sudo: bool,
    ) -> Result<std::process::Child, Stop> {
        use std::os::unix::process::CommandExt;
        let mut cmd = if sudo {
            let mut c = Command::new("sudo");
            c.args(["-n", "--", "sh", "-c", script, "nexus"]);
            c
        } else {
            let mut c = Command::new("sh");
            c.args(["-c", script, "nexus"]);
            c
        };
        cmd.args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        cmd.spawn().map_err(|e| {
            Stop::Failed(Cause::new(format!(
                "cannot start sh in {}: {}",
                self.dir.display(),
                crate::error::io_reason(&e)
            )))
        })
    }
}

impl Shell for Local {
    fn run(
        &mut self,
        script: &str,
        args: &[String],
        sudo: bool,
        input: &mut (dyn Read + Send),
        out: &mut (dyn Write + Send),
    ) -> Result<Ran, Stop> {
        let mut child = self.spawn(script, args, sudo)?;
        let pid = child.id();
        let (mut stdin, mut stdout, mut stderr) = (
            child.stdin.take().expect("piped"),
            child.stdout.take().expect("piped"),
            child.stderr.take().expect("piped"),
        );
        let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
        let deadline = self.deadline;
        let mut err = Vec::new();
        let stopped = std::thread::scope(|s| {
            s.spawn(move || {
                let _ = std::io::copy(input, &mut stdin);
            });
            let errs = s.spawn(move || {
                let mut e = Vec::new();
                let _ = (&mut stderr).take(1 << 20).read_to_end(&mut e);
                let _ = std::io::copy(&mut stderr, &mut std::io::sink());
                e
            });
            let watchdog = s.spawn(move || loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let tick = left.min(std::time::Duration::from_millis(100));
                match done_rx.recv_timeout(tick) {
                    Ok(()) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return None,
                    Err(_) if crate::signals::cancelled() => {
                        crate::sys::signal_group(pid, libc::SIGKILL);
                        return Some(Stop::Cancelled);
                    }
                    Err(_) if Instant::now() >= deadline => {
                        crate::sys::signal_group(pid, libc::SIGKILL);
                        return Some(Stop::TimedOut);
                    }
                    Err(_) => {}
                }
            });
            let copied = std::io::copy(&mut stdout, out);
            err = errs.join().unwrap_or_default();
            let _ = done_tx.send(());
            let stopped = watchdog.join().unwrap_or(None);
            (stopped, copied)
        });
        let status = child.wait();
        if let Some(stop) = stopped.0 {
            return Err(stop);
        }
        if let Err(e) = stopped.1 {
            crate::sys::signal_group(pid, libc::SIGKILL);
            return Err(Stop::Failed(Cause::new(format!(
                "cannot keep what the script printed: {}",
                crate::error::io_reason(&e)
            ))));
        }
        let code = match status {
            Ok(s) => s
                .code()
                .unwrap_or(128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0)),
            Err(e) => return Err(Stop::Failed(Cause::new(e.to_string()))),
        };
        Ok(Ran { code, stderr: err })
    }
}
