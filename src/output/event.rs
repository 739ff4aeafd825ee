//! Events: the one way workers and the scheduler tell the world what happened. Every
//! event goes through a channel to a single consumer (renderer, later the journal), so
//! output never interleaves and JSON stays valid. Must not: format anything for humans.

use std::time::{Duration, SystemTime};

use crate::exec::Stream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Success,
    Failed,
    Skipped,
    TimedOut,
    Cancelled,
}

impl TaskStatus {
    pub fn name(self) -> &'static str {
        match self {
            TaskStatus::Success => "success",
            TaskStatus::Failed => "failed",
            TaskStatus::Skipped => "skipped",
            TaskStatus::TimedOut => "timed_out",
            TaskStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Why a command counted as failed, for the error report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Exit(i32),
    Signal(i32),
    Timeout { limit: Duration, task_limit: bool },
    Cancelled,
    Spawn(String),
    Connect(String),
}

impl Failure {
    /// The status word of a command attempt that ended with `failure` (None: success),
    /// as JSON events and the journal write it.
    pub fn status_name(failure: Option<&Failure>) -> &'static str {
        match failure {
            None => "success",
            Some(Failure::Timeout { .. }) => "timed_out",
            Some(Failure::Cancelled) => "cancelled",
            Some(_) => "failed",
        }
    }

    /// "exited with 3", "timed out after 5s", ...: the end of a sentence about a command.
    pub fn describe(&self) -> String {
        match self {
            Failure::Exit(c) => format!("exited with {c}"),
            Failure::Signal(s) => format!("was killed by signal {s}"),
            Failure::Timeout { limit, task_limit } => format!(
                "timed out after {} ({} timeout)",
                crate::config::duration::display(*limit),
                if *task_limit { "task" } else { "command" }
            ),
            Failure::Cancelled => "was cancelled".to_string(),
            Failure::Spawn(m) | Failure::Connect(m) => m.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Kind {
    RunStart {
        targets: Vec<String>,
        tasks: Vec<String>,
    },
    TaskStart {
        task: String,
        hosts: Vec<String>,
    },
    CommandStart {
        task: String,
        host: String,
        command: String,
        attempt: u32,
    },
    Output {
        task: String,
        host: String,
        stream: Stream,
        line: String,
    },
    CommandFinish {
        task: String,
        host: String,
        command: String,
        attempt: u32,
        exit_code: Option<i32>,
        duration: Duration,
        failure: Option<Failure>,
        /// Another attempt follows after `retry_in`.
        retry_in: Option<Duration>,
        /// The failure is tolerated (continue_on_error).
        ignored: bool,
    },
    TaskFinish {
        task: String,
        status: TaskStatus,
        duration: Duration,
        /// Per host: label, status, duration.
        hosts: Vec<(String, TaskStatus, Duration)>,
    },
    RunFinish {
        status: RunStatus,
        duration: Duration,
        exit_code: i32,
        /// Every selected task in plan order, with status and duration (None if it never ran).
        tasks: Vec<(String, TaskStatus, Option<Duration>)>,
    },
}

#[derive(Debug, Clone)]
pub struct Event {
    pub ts: SystemTime,
    pub kind: Kind,
}

impl Event {
    pub fn now(kind: Kind) -> Event {
        Event {
            ts: SystemTime::now(),
            kind,
        }
    }
}
