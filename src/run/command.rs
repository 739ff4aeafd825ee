//! One command of a unit with its attempts: runs each attempt through the transport,
//! passes its output on as `Output` events and keeps its head and tail, decides whether
//! a failure is retried (after a backoff), tolerated (`continue_on_error`) or ends the
//! unit. Must not: choose the transport or the next command (unit.rs does).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::capture::{Capture, Captured};
use super::event::{CommandRef, Event, Failure, Name};
use super::recorder::Recorder;
use super::retry::backoff;
use super::RunInfo;
use crate::config::{Command, Task};
use crate::exec::{ExecResult, Progress, Stream};
use crate::secrets::OutputFilter;

/// When one attempt must stop: its timeout (if any), counted from when it starts
/// running, and never after the task's deadline (`super::no_deadline()` when the task
/// has no limit).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub command: Option<Duration>,
    pub task_deadline: Instant,
}

impl Limits {
    /// The deadline of an attempt that starts now.
    pub fn deadline(&self) -> Instant {
        match self.command {
            Some(limit) => (Instant::now() + limit).min(self.task_deadline),
            None => self.task_deadline,
        }
    }
}

/// Runs one attempt of a command within the limits.
pub type Exec<'a> = dyn FnMut(Limits, &mut dyn Progress) -> ExecResult + 'a;

/// One command of a unit, as written (`cmd`) and expanded (`line`).
pub struct Step<'a> {
    pub task: &'a Task,
    pub cmd: &'a Command,
    pub task_name: &'a Name,
    pub host: &'a Name,
    /// Position in the task's `run` list (or in the handler's, the rollback's).
    pub index: usize,
    pub line: Arc<str>,
    /// None: a step of the task; else `rollback`, `handler NAME` (CommandRef::part).
    pub part: Option<Name>,
}

/// Passes output on as it comes and keeps its head and tail, both masked (secret values
/// become `[secret NAME]` before either sees them).
struct Sink<'a> {
    recorder: &'a Recorder,
    cmd: &'a CommandRef,
    capture: Capture,
    filter: OutputFilter,
}

impl Sink<'_> {
    /// The streams ended: pass on what the filter held back.
    fn finish(mut self) -> Captured {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let Sink {
                recorder,
                cmd,
                capture,
                filter,
            } = &mut self;
            filter.finish(stream, &mut |clean| {
                capture.push(stream, clean);
                recorder.output(&cmd.task, &cmd.host, stream, clean);
            });
        }
        self.capture.finish()
    }
}

impl Progress for Sink<'_> {
    fn output(&mut self, stream: Stream, data: &[u8]) {
        let Sink {
            recorder,
            cmd,
            capture,
            filter,
        } = self;
        filter.push(stream, data, &mut |clean| {
            capture.push(stream, clean);
            recorder.output(&cmd.task, &cmd.host, stream, clean);
        });
    }

    fn spawned(&mut self, pgid: u32, remote: bool) {
        self.recorder.emit(Event::CommandSpawned {
            cmd: self.cmd.clone(),
            pgid,
            remote,
        });
    }
}

/// Run one command with its attempts. None on success (or a tolerated failure).
pub fn run(
    run: &RunInfo,
    recorder: &Recorder,
    step: &Step<'_>,
    task_deadline: Instant,
    exec: &mut Exec<'_>,
) -> Option<Failure> {
    let attempts = step.cmd.retries + 1;
    for attempt in 1..=attempts {
        let cmd = CommandRef {
            task: step.task_name.clone(),
            host: step.host.clone(),
            index: step.index,
            attempt,
            line: step.line.clone(),
            part: step.part.clone(),
        };
        recorder.emit(Event::CommandStart(cmd.clone()));
        if recorder.broken() {
            // The journal could not record the start: a command it cannot track is not
            // started (a resume would not know it ran).
            recorder.emit(Event::CommandFinish {
                cmd,
                exit_code: None,
                duration: Duration::ZERO,
                failure: Some(Failure::Cancelled),
                retry_in: None,
                ignored: false,
                output: Default::default(),
            });
            return Some(Failure::Cancelled);
        }
        let started = Instant::now();
        let limits = Limits {
            command: run.command_timeout(step.cmd),
            task_deadline,
        };
        let mut sink = Sink {
            recorder,
            cmd: &cmd,
            capture: Capture::default(),
            filter: recorder.output_filter(),
        };
        let result = exec(limits, &mut sink);
        let output = sink.finish();
        let failure = failure_of(run, &result, step, task_deadline);
        let retry_in = retry_delay(run, step, &failure, attempt, task_deadline);
        let tolerated = step.cmd.continue_on_error || step.task.continue_on_error;
        let ignored = tolerated
            && retry_in.is_none()
            && failure
                .as_ref()
                .is_some_and(|f| !matches!(f, Failure::Cancelled));
        recorder.emit(Event::CommandFinish {
            cmd,
            exit_code: result.exit_code(),
            duration: started.elapsed(),
            failure: failure.clone(),
            retry_in,
            ignored,
            output,
        });
        match (failure, retry_in) {
            (None, _) => return None,
            (Some(_), Some(delay)) => {
                recorder.flush();
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

/// The failure an attempt ended with, if any. A timeout is the task's when the task
/// deadline has passed, else the command's.
fn failure_of(
    run: &RunInfo,
    result: &ExecResult,
    step: &Step<'_>,
    task_deadline: Instant,
) -> Option<Failure> {
    let task_limit = Instant::now() >= task_deadline;
    let task_timeout = run.task_timeout(step.task).unwrap_or_default();
    let task_from = run.task_timeout_from(step.task);
    match result {
        ExecResult::Exited(0) => None,
        ExecResult::Exited(c) => Some(Failure::Exit(*c)),
        ExecResult::Signaled(s) => Some(Failure::Signal(*s)),
        ExecResult::TimedOut if task_limit => Some(Failure::Timeout {
            limit: task_timeout,
            task_limit,
            from: task_from,
            connecting: None,
        }),
        ExecResult::TimedOut => Some(Failure::Timeout {
            limit: run.command_timeout(step.cmd).unwrap_or_default(),
            task_limit,
            from: run.command_timeout_from(step.cmd),
            connecting: None,
        }),
        // Connecting is bounded by the task's deadline alone.
        ExecResult::ConnectTimedOut(c) => Some(Failure::Timeout {
            limit: task_timeout,
            task_limit: true,
            from: task_from,
            connecting: Some(c.clone()),
        }),
        ExecResult::Cancelled => Some(Failure::Cancelled),
        ExecResult::SpawnError(m) => Some(Failure::Spawn(m.clone())),
        ExecResult::ConnectError(m) => Some(Failure::Connect(m.clone())),
    }
}

/// The delay before another attempt, when the failure is worth one and time is left.
fn retry_delay(
    run: &RunInfo,
    step: &Step<'_>,
    failure: &Option<Failure>,
    attempt: u32,
    task_deadline: Instant,
) -> Option<Duration> {
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
    if !retryable || attempt > step.cmd.retries || crate::signals::cancelled() {
        return None;
    }
    let delay = backoff(step.cmd.retry_delay, attempt, &run.jitter_seed);
    (Instant::now() + delay < task_deadline).then_some(delay)
}
