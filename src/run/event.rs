//! What happened during a run, as typed values: the scheduler and the units produce
//! `Event`s and hand them to the `Recorder`, which journals them and then renders them.
//! One vocabulary for the journal, text output and JSON Lines.
//! Must not: hold sentences for humans (the renderers write those) or do I/O.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::capture::Captured;
use crate::exec::Cause;

/// How a task (or one host of it) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Success,
    Failed,
    Skipped,
    TimedOut,
    Cancelled,
    /// Nothing to do: sources, outputs and definition unchanged since the last success,
    /// or a task-level `creates` / `unless` holds (docs/nexus-toml.md).
    UpToDate,
}

impl TaskStatus {
    pub fn name(self) -> &'static str {
        match self {
            TaskStatus::Success => "success",
            TaskStatus::Failed => "failed",
            TaskStatus::Skipped => "skipped",
            TaskStatus::TimedOut => "timed_out",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::UpToDate => "up_to_date",
        }
    }

    /// Done, as far as dependents care: it succeeded or had nothing to do.
    pub fn is_ok(self) -> bool {
        matches!(self, TaskStatus::Success | TaskStatus::UpToDate)
    }
}

/// How the whole run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Success,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Success => "success",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// Why one attempt of a command counted as failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Exit(i32),
    Signal(i32),
    Timeout {
        limit: Duration,
        task_limit: bool,
        /// Where the limit was set.
        from: LimitFrom,
        /// The host was still being connected to: how far it had got.
        connecting: Option<Cause>,
    },
    Cancelled,
    /// The command could not start (missing directory, no such program, ...).
    Spawn(Cause),
    /// The host could not be reached, or the connection was lost (exit code 3).
    Connect(Cause),
    /// `wait_for` did not pass `successes` times in a row within its `timeout`.
    Unhealthy(Cause),
}

impl Failure {
    /// The status word of an attempt that ended with `failure` (None: success).
    pub fn status_name(failure: Option<&Failure>) -> &'static str {
        match failure {
            None => "success",
            Some(Failure::Timeout { .. }) => "timed_out",
            Some(Failure::Cancelled) => "cancelled",
            Some(_) => "failed",
        }
    }

    /// The task status a unit gets when this failure ends it.
    pub fn task_status(&self) -> TaskStatus {
        match self {
            Failure::Timeout { .. } => TaskStatus::TimedOut,
            Failure::Cancelled => TaskStatus::Cancelled,
            _ => TaskStatus::Failed,
        }
    }
}

/// Where the limit of a timeout was set (docs/nexus-toml.md, "Timeouts").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitFrom {
    /// The command's or the task's own `timeout`.
    Own,
    /// `run --timeout`.
    Flag,
    /// `[config] timeout` or `task_timeout`.
    Config,
}

/// A name shared by many events (task names, host labels) without copying it each time.
pub type Name = Arc<str>;

/// One host's part of a finished task.
#[derive(Debug, Clone)]
pub struct HostResult {
    pub host: Name,
    pub status: TaskStatus,
    pub duration: Duration,
    /// The failure that ended this host's unit, if it failed.
    pub failure: Option<Failure>,
}

/// One task's line in the run summary.
#[derive(Debug, Clone)]
pub struct TaskResult {
    pub task: Name,
    pub status: TaskStatus,
    /// None when it never ran.
    pub duration: Option<Duration>,
}

/// A command as the unit ran it: where it is in its task, and its text after expansion.
#[derive(Debug, Clone)]
pub struct CommandRef {
    pub task: Name,
    pub host: Name,
    /// Position in the task's `run` list (what resume counts).
    pub index: usize,
    pub attempt: u32,
    pub line: Arc<str>,
    /// None: one of the task's steps. Else what it belongs to: `wait_for`, `rollback`,
    /// `handler NAME` (not counted by resume).
    pub part: Option<Name>,
}

/// Where a handler is for one host (`handler` events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandlerState {
    /// A step notified it (journaled, pending until it succeeds).
    Notified,
    Running,
    Success,
    Failed,
    /// Not run: the task failed on the host; a later run runs it.
    Pending,
}

impl HandlerState {
    pub fn name(self) -> &'static str {
        match self {
            HandlerState::Notified => "notified",
            HandlerState::Running => "running",
            HandlerState::Success => "success",
            HandlerState::Failed => "failed",
            HandlerState::Pending => "pending",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Event {
    RunStart {
        targets: Vec<String>,
        tasks: Vec<Name>,
    },
    TaskStart {
        task: Name,
        hosts: Vec<Name>,
    },
    CommandStart(CommandRef),
    /// The command's process group is known (local: its pid; remote: the remote group).
    CommandSpawned {
        cmd: CommandRef,
        pgid: u32,
        remote: bool,
    },
    CommandFinish {
        cmd: CommandRef,
        exit_code: Option<i32>,
        duration: Duration,
        failure: Option<Failure>,
        /// Another attempt follows after this delay.
        retry_in: Option<Duration>,
        /// The failure is tolerated (`continue_on_error`).
        ignored: bool,
        /// Head and tail of what the attempt printed.
        output: Captured,
    },
    UnitFinish {
        task: Name,
        host: Name,
        status: TaskStatus,
    },
    /// An up-to-date check decided (src/uptodate): skip the unit, or run it and why.
    Checked {
        task: Name,
        host: Name,
        up_to_date: bool,
        /// Why it runs (`src/main.rs changed`), or why it is up to date.
        reasons: Vec<String>,
    },
    /// A large transfer of a file step is under way (about once a second).
    FileProgress {
        cmd: CommandRef,
        sent: u64,
        total: u64,
    },
    /// A file step finished on a target: what it changed (src/transfer).
    FileStep {
        cmd: CommandRef,
        report: crate::transfer::Report,
    },
    /// A task's artifacts were staged from a target (src/run/artifacts.rs).
    ArtifactsCollected {
        task: Name,
        host: Name,
        files: Vec<super::artifacts::Staged>,
    },
    /// The artifacts of `from` were put in place for a task on a target.
    ArtifactsPlaced {
        task: Name,
        host: Name,
        from: Name,
        report: crate::transfer::Report,
    },
    /// A command not run because its `creates` / `unless` holds.
    CommandSkipped {
        cmd: CommandRef,
        reason: String,
    },
    TaskFinish {
        task: Name,
        status: TaskStatus,
        duration: Duration,
        hosts: Vec<HostResult>,
    },
    /// A batch of a rollout starts (src/run/rollout.rs); `index` counts from 1.
    Batch {
        task: Name,
        index: usize,
        of: usize,
        hosts: Vec<Name>,
        canary: bool,
    },
    /// The rollout waits before its next batch (`canary_wait`).
    BatchWait {
        task: Name,
        wait: Duration,
    },
    /// More hosts failed than `max_fail` allows: nothing more starts.
    RolloutStopped {
        task: Name,
        failed: Vec<Name>,
        max_fail: usize,
        /// Hosts never started (skipped).
        skipped: usize,
        /// `rollback` runs on the failed hosts.
        rollback: bool,
    },
    /// A handler on a host: notified, running, finished, or left pending.
    Handler {
        task: Name,
        host: Name,
        handler: Name,
        state: HandlerState,
        /// The run whose notification this is, when it is an earlier run's.
        from_run: Option<String>,
    },
    RunFinish {
        status: RunStatus,
        duration: Duration,
        exit_code: i32,
        /// Every selected task in plan order.
        tasks: Vec<TaskResult>,
    },
}

/// An event and when it happened.
#[derive(Debug, Clone)]
pub struct Stamped {
    pub ts: SystemTime,
    pub event: Event,
}
