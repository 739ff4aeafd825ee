//! One unit of work: the commands of one task on one target, in order, with retries
//! (exponential backoff, full jitter, capped at 30s), command and task timeouts, and
//! continue_on_error. Emits command and output events; returns how the unit ended.
//! Must not: decide what runs next (the scheduler does) or print.

use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use serde_json::json;

use super::RunInfo;
use crate::config::{Command, Target, Task};
use crate::exec::ssh::{self, remote};
use crate::exec::{local, ExecResult, Stream};
use crate::output::event::{Event, Failure, Kind, TaskStatus};
use crate::state::journal;

/// Longest delay between two attempts of a command.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);
/// Longest output line passed on as one event; longer lines are split.
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct UnitResult {
    pub status: TaskStatus,
    pub failure: Option<Failure>,
    pub duration: Duration,
}

/// Template values for one (task, host).
pub struct UnitVars<'a> {
    pub run: &'a RunInfo,
    pub task: &'a str,
    pub host: &'a str,
}

impl crate::config::template::Vars for UnitVars<'_> {
    fn host(&self) -> &str {
        self.host
    }
    fn task(&self) -> &str {
        self.task
    }
    fn run_id(&self) -> &str {
        &self.run.run_id
    }
    fn timestamp(&self) -> &str {
        &self.run.timestamp
    }
    fn git_sha(&self) -> String {
        self.run.git.sha.clone()
    }
    fn git_branch(&self) -> String {
        self.run.git.branch.clone()
    }
}

/// Splits a byte stream into lines and sends each as an `Output` event.
struct LineSink<'a> {
    events: &'a Sender<Event>,
    task: &'a str,
    host: &'a str,
    bufs: [Vec<u8>; 2],
    /// What the journal keeps of each stream (capped).
    captured: [String; 2],
}

impl LineSink<'_> {
    fn push(&mut self, stream: Stream, mut data: &[u8]) {
        let i = stream as usize;
        while let Some(nl) = data.iter().position(|&b| b == b'\n') {
            self.bufs[i].extend_from_slice(&data[..nl]);
            self.emit(stream);
            data = &data[nl + 1..];
        }
        self.bufs[i].extend_from_slice(data);
        if self.bufs[i].len() >= MAX_LINE {
            self.emit(stream);
        }
    }

    fn emit(&mut self, stream: Stream) {
        let buf = std::mem::take(&mut self.bufs[stream as usize]);
        let mut line = String::from_utf8(buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        if line.ends_with('\r') {
            line.pop();
        }
        let cap = &mut self.captured[stream as usize];
        if cap.len() + line.len() < journal::OUTPUT_CAP {
            cap.push_str(&line);
            cap.push('\n');
        }
        let _ = self.events.send(Event::now(Kind::Output {
            task: self.task.to_string(),
            host: self.host.to_string(),
            stream,
            line,
        }));
    }

    fn finish(&mut self) {
        for s in [Stream::Stdout, Stream::Stderr] {
            if !self.bufs[s as usize].is_empty() {
                self.emit(s);
            }
        }
    }
}

/// Run every command of `task` on `target`.
pub fn run_unit(run: &RunInfo, task: &Task, target: &Target, events: &Sender<Event>) -> UnitResult {
    let start = Instant::now();
    let host = target.label();
    let vars = UnitVars {
        run,
        task: &task.name,
        host: &host,
    };
    let task_deadline = start + task.timeout;
    let dir = match &task.dir {
        Some(d) => run.root.join(d.value.expand(&vars)),
        None => run.root.clone(),
    };
    let mut env: Vec<(String, String)> = vec![
        ("NEXUS_RUN_ID".into(), run.run_id.clone()),
        ("NEXUS_TASK".into(), task.name.clone()),
        ("NEXUS_HOST".into(), host.clone()),
        ("NEXUS_RUN_COUNTER".into(), run.counter.to_string()),
    ];
    env.extend(
        task.env
            .iter()
            .map(|(k, v)| (k.clone(), v.value.expand(&vars))),
    );

    let mut remote: Option<RemoteSession> = match target {
        Target::Local => None,
        Target::Remote(spec) => match run.ssh.as_ref().and_then(|s| s.target(spec)) {
            Some((pool, t)) => Some(RemoteSession {
                pool,
                target: t,
                conn: None,
            }),
            None => {
                return UnitResult {
                    status: TaskStatus::Failed,
                    failure: Some(Failure::Connect(format!(
                        "no SSH settings were prepared for {host}"
                    ))),
                    duration: start.elapsed(),
                }
            }
        },
    };

    // On resume, the commands this host already completed are not run again.
    let first = run
        .checkpoint
        .as_ref()
        .and_then(|c| c.next_command.get(&(task.name.clone(), host.clone())))
        .copied()
        .unwrap_or(0);
    let mut outcome = None;
    for (index, cmd) in task.commands.iter().enumerate().skip(first) {
        let line = cmd.template.value.expand(&vars);
        let mut exec = |limits: Limits, sink: &mut dyn FnMut(Stream, &[u8])| -> ExecResult {
            match remote.as_mut() {
                None => {
                    let spec = local::LocalCommand {
                        line: line.clone(),
                        dir: dir.clone(),
                        env: env.clone(),
                        sudo: cmd.sudo.then(|| cmd.user.clone()),
                    };
                    local::exec(&spec, limits.deadline(), sink)
                }
                Some(r) => {
                    let spec = remote::RemoteCommand {
                        line: line.clone(),
                        dir: task.dir.as_ref().map(|d| d.value.expand(&vars)),
                        env: env.clone(),
                        sudo: cmd.sudo.then(|| cmd.user.clone()),
                        pty: cmd.pty,
                    };
                    r.exec(&spec, limits, sink)
                }
            }
        };
        let step = Step {
            task,
            cmd,
            index,
            host: &host,
            line: &line,
        };
        if let Some(failure) = run_command(run, &step, task_deadline, events, &mut exec) {
            let status = match failure {
                Failure::Timeout { .. } => TaskStatus::TimedOut,
                Failure::Cancelled => TaskStatus::Cancelled,
                _ => TaskStatus::Failed,
            };
            outcome = Some((status, failure));
            break;
        }
    }
    if let Some(r) = remote.as_mut() {
        r.release();
    }
    if let Some(j) = &run.journal {
        let status = outcome.as_ref().map_or(TaskStatus::Success, |(s, _)| *s);
        j.record(
            "unit_finish",
            json!({"task": task.name, "host": host, "status": status.name()}),
        );
    }
    match outcome {
        Some((status, failure)) => UnitResult {
            status,
            failure: Some(failure),
            duration: start.elapsed(),
        },
        None => UnitResult {
            status: TaskStatus::Success,
            failure: None,
            duration: start.elapsed(),
        },
    }
}

/// A unit's hold on one pooled SSH session, taken at its first command.
struct RemoteSession<'a> {
    pool: &'a ssh::pool::Pool,
    target: &'a ssh::target::SshTarget,
    conn: Option<ssh::connect::Conn>,
}

impl RemoteSession<'_> {
    fn exec(
        &mut self,
        cmd: &remote::RemoteCommand,
        limits: Limits,
        sink: &mut dyn FnMut(Stream, &[u8]),
    ) -> ExecResult {
        if self.conn.is_none() {
            match self.pool.checkout(self.target) {
                Ok(c) => self.conn = Some(c),
                Err(e) if crate::signals::cancelled() => {
                    let _ = e;
                    return ExecResult::Cancelled;
                }
                Err(e) => return ExecResult::ConnectError(e.text()),
            }
        }
        let Some(conn) = self.conn.as_ref() else {
            return ExecResult::ConnectError("no session".into());
        };
        // The command's own timeout starts once the session is ready: connecting has
        // connect_timeout (and its attempts); the task deadline still covers both.
        let (result, reusable) = remote::exec(conn, cmd, limits.deadline(), sink);
        if !reusable {
            if let Some(c) = self.conn.take() {
                self.pool.discard(self.target, c);
            }
        }
        result
    }

    fn release(&mut self) {
        if let Some(c) = self.conn.take() {
            self.pool.checkin(self.target, c);
        }
    }
}

/// When one attempt of a command must stop: its timeout, counted from when it starts
/// running, and never after the task's deadline.
#[derive(Debug, Clone, Copy)]
struct Limits {
    command: Duration,
    task_deadline: Instant,
}

impl Limits {
    /// The deadline of an attempt that starts now.
    fn deadline(&self) -> Instant {
        (Instant::now() + self.command).min(self.task_deadline)
    }
}

/// Runs one attempt of a command within the limits, passing its output on.
type Exec<'a> = dyn FnMut(Limits, &mut dyn FnMut(Stream, &[u8])) -> ExecResult + 'a;

/// One command of a unit, as written (`cmd`) and expanded (`line`).
struct Step<'a> {
    task: &'a Task,
    cmd: &'a Command,
    /// Position in the task's `run` list (the journal's checkpoint unit).
    index: usize,
    host: &'a str,
    line: &'a str,
}

/// Run one command with its retries. None on success (or a tolerated failure).
fn run_command(
    run: &RunInfo,
    step: &Step<'_>,
    task_deadline: Instant,
    events: &Sender<Event>,
    exec: &mut Exec<'_>,
) -> Option<Failure> {
    let Step {
        task,
        cmd,
        index,
        host,
        line,
    } = *step;
    let attempts = cmd.retries + 1;
    let tolerated = cmd.continue_on_error || task.continue_on_error;
    for attempt in 1..=attempts {
        if let Some(j) = &run.journal {
            j.record(
                "cmd_start",
                json!({"task": task.name, "host": host, "index": index, "attempt": attempt, "command": line}),
            );
        }
        let _ = events.send(Event::now(Kind::CommandStart {
            task: task.name.clone(),
            host: host.to_string(),
            command: line.to_string(),
            attempt,
        }));
        let started = Instant::now();
        let limits = Limits {
            command: cmd.timeout,
            task_deadline,
        };
        let mut sink = LineSink {
            events,
            task: &task.name,
            host,
            bufs: [Vec::new(), Vec::new()],
            captured: [String::new(), String::new()],
        };
        let result = exec(limits, &mut |s, d| sink.push(s, d));
        sink.finish();
        let duration = started.elapsed();
        // A timeout is the task's when the task deadline has passed, else the command's.
        let task_limit = Instant::now() >= task_deadline;
        let failure = match &result {
            ExecResult::Exited(0) => None,
            ExecResult::Exited(c) => Some(Failure::Exit(*c)),
            ExecResult::Signaled(s) => Some(Failure::Signal(*s)),
            ExecResult::TimedOut => Some(Failure::Timeout {
                limit: if task_limit {
                    task.timeout
                } else {
                    cmd.timeout
                },
                task_limit,
            }),
            ExecResult::Cancelled => Some(Failure::Cancelled),
            ExecResult::SpawnError(m) => Some(Failure::Spawn(m.clone())),
            ExecResult::ConnectError(m) => Some(Failure::Connect(m.clone())),
        };
        let retryable = matches!(
            failure,
            Some(
                Failure::Exit(_)
                    | Failure::Signal(_)
                    | Failure::Timeout {
                        task_limit: false,
                        ..
                    }
            )
        );
        let retry_in = (retryable && attempt < attempts && !crate::signals::cancelled())
            .then(|| backoff(cmd.retry_delay, attempt, &run.jitter_seed));
        let retry_in = retry_in.filter(|d| Instant::now() + *d < task_deadline);
        let ignored = failure.is_some()
            && retry_in.is_none()
            && tolerated
            && !matches!(failure, Some(Failure::Cancelled));
        if let Some(j) = &run.journal {
            let status = Failure::status_name(failure.as_ref());
            j.record(
                "cmd_finish",
                json!({
                    "task": task.name, "host": host, "index": index, "attempt": attempt,
                    "status": status, "exit_code": result.exit_code(),
                    "duration_ms": duration.as_millis() as u64, "ignored": ignored,
                    "stdout": sink.captured[0], "stderr": sink.captured[1],
                }),
            );
        }
        let _ = events.send(Event::now(Kind::CommandFinish {
            task: task.name.clone(),
            host: host.to_string(),
            command: line.to_string(),
            attempt,
            exit_code: result.exit_code(),
            duration,
            failure: failure.clone(),
            retry_in,
            ignored,
        }));
        match (failure, retry_in) {
            (None, _) => return None,
            (Some(_), Some(delay)) => {
                if !crate::signals::sleep(delay) {
                    return Some(Failure::Cancelled);
                }
            }
            (Some(_), None) if ignored => return None,
            (Some(f), None) => return Some(f),
        }
    }
    None
}

/// Delay before attempt `attempt + 1`: full jitter over `base * 2^(attempt-1)`, capped.
pub fn backoff(base: Duration, attempt: u32, seed: &std::sync::atomic::AtomicU64) -> Duration {
    let exp = base
        .saturating_mul(1u32 << (attempt - 1).min(20))
        .min(MAX_RETRY_DELAY);
    let r = next_random(seed);
    let frac = (r >> 11) as f64 / (1u64 << 53) as f64;
    exp.mul_f64(frac)
}

/// xorshift64*: enough randomness for jitter, no dependency.
fn next_random(seed: &std::sync::atomic::AtomicU64) -> u64 {
    use std::sync::atomic::Ordering;
    let mut x = seed.load(Ordering::Relaxed) | 1;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    seed.store(x, Ordering::Relaxed);
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let seed = AtomicU64::new(42);
        for attempt in 1..40 {
            let d = backoff(Duration::from_secs(1), attempt, &seed);
            let ceiling = Duration::from_secs(1 << (attempt - 1).min(20)).min(MAX_RETRY_DELAY);
            assert!(d <= ceiling, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
        let spread: std::collections::HashSet<_> = (0..20)
            .map(|_| backoff(Duration::from_secs(8), 4, &seed))
            .collect();
        assert!(spread.len() > 10, "jitter should vary the delay");
    }
}
