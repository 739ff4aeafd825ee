//! The records of a run journal, as types. Each line of a journal is one `Record` with
//! its sequence number and time; `Record::from_event` is the only place that decides
//! which events are journaled and with which fields, so the journal and the live output
//! share one vocabulary. Must not: do I/O (journal.rs writes and reads lines).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::run::capture::Captured;
use crate::run::event::{Event, Failure, HandlerState, RunStatus, TaskStatus};

/// The first record of every journal: what the run is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunHeader {
    pub run_id: String,
    /// Run number of these targets in this project (`deploy #42`).
    pub counter: u64,
    pub targets: Vec<String>,
    /// Task parameters as bound from the command line (and defaults), by task.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub args: crate::bind::Args,
    /// The nexus.toml the run was started from.
    pub config: String,
    /// The project the run belongs to: the absolute directory of its nexus.toml (empty in
    /// journals from before projects; see `project()`).
    #[serde(default)]
    pub project: String,
    /// Fingerprint of the whole file, and of each task (to name what changed on resume).
    pub config_hash: String,
    #[serde(default)]
    pub task_hashes: BTreeMap<String, String>,
    /// Tasks of the plan, in order.
    #[serde(default)]
    pub plan: Vec<String>,
    pub pid: u32,
}

impl RunHeader {
    /// The project the run belongs to (for older journals: the directory of `config`).
    pub fn project(&self) -> &str {
        if !self.project.is_empty() {
            return &self.project;
        }
        match self.config.rfind('/') {
            Some(0) => "/",
            Some(i) => &self.config[..i],
            None => ".",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Record {
    RunStart(RunHeader),
    /// A process took the run over to resume it.
    Resume {
        pid: u32,
    },
    #[serde(alias = "cmd_start")]
    CommandStart {
        task: String,
        host: String,
        index: usize,
        attempt: u32,
        command: String,
        /// `wait_for`, `rollback`, `handler NAME`: not one of the task's steps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        part: Option<String>,
    },
    /// The process group a command runs in, so a later process can find survivors.
    CommandSpawned {
        task: String,
        host: String,
        index: usize,
        attempt: u32,
        pgid: u32,
        remote: bool,
    },
    #[serde(alias = "cmd_finish")]
    CommandFinish {
        task: String,
        host: String,
        index: usize,
        attempt: u32,
        status: TaskStatus,
        exit_code: Option<i32>,
        duration_ms: u64,
        #[serde(default)]
        ignored: bool,
        #[serde(default)]
        output: Captured,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        part: Option<String>,
    },
    UnitFinish {
        task: String,
        host: String,
        status: TaskStatus,
    },
    /// What a file step changed on a host.
    File {
        task: String,
        host: String,
        index: usize,
        changed: bool,
        files: usize,
        bytes: u64,
    },
    /// A task's artifacts staged from a host (src/run/artifacts.rs).
    Artifacts {
        task: String,
        host: String,
        files: Vec<crate::run::artifacts::Staged>,
    },
    /// The artifacts of `from` put in place for a task on a host.
    ArtifactsPlaced {
        task: String,
        host: String,
        from: String,
        files: usize,
        bytes: u64,
    },
    TaskFinish {
        task: String,
        status: TaskStatus,
        duration_ms: u64,
    },
    RunFinish {
        status: RunStatus,
        exit_code: i32,
        duration_ms: u64,
    },
    /// A batch of a rollout started (index from 1).
    Batch {
        task: String,
        index: usize,
        of: usize,
        hosts: Vec<String>,
    },
    /// The rollout stopped: more hosts failed than `max_fail` allows.
    RolloutStopped {
        task: String,
        failed: Vec<String>,
    },
    /// A step notified a handler on a host (pending until it succeeds).
    Notify {
        task: String,
        host: String,
        handler: String,
    },
    /// A handler ran on a host (`success` or `failed`).
    HandlerFinish {
        task: String,
        host: String,
        handler: String,
        status: TaskStatus,
    },
    /// A record this version does not know (written by a newer nexus): kept out of the way.
    #[serde(other)]
    Unknown,
}

fn ms(d: std::time::Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

impl Record {
    fn file(cmd: &crate::run::event::CommandRef, report: &crate::transfer::Report) -> Record {
        Record::File {
            task: cmd.task.to_string(),
            host: cmd.host.to_string(),
            index: cmd.index,
            changed: report.changed,
            files: report.files,
            bytes: report.bytes,
        }
    }

    /// The journal record of an event; None for events the journal does not keep
    /// (output lines are kept in `CommandFinish`; starts of runs and tasks are implied).
    pub fn from_event(ev: &Event) -> Option<Record> {
        Some(match ev {
            Event::CommandStart(c) => Record::CommandStart {
                task: c.task.to_string(),
                host: c.host.to_string(),
                index: c.index,
                attempt: c.attempt,
                command: c.line.to_string(),
                part: c.part.as_deref().map(str::to_string),
            },
            Event::CommandSpawned { cmd, pgid, remote } => Record::CommandSpawned {
                task: cmd.task.to_string(),
                host: cmd.host.to_string(),
                index: cmd.index,
                attempt: cmd.attempt,
                pgid: *pgid,
                remote: *remote,
            },
            Event::CommandFinish {
                cmd,
                exit_code,
                duration,
                failure,
                ignored,
                output,
                ..
            } => Record::CommandFinish {
                task: cmd.task.to_string(),
                host: cmd.host.to_string(),
                index: cmd.index,
                attempt: cmd.attempt,
                status: failure
                    .as_ref()
                    .map_or(TaskStatus::Success, Failure::task_status),
                exit_code: *exit_code,
                duration_ms: ms(*duration),
                ignored: *ignored,
                output: output.clone(),
                part: cmd.part.as_deref().map(str::to_string),
            },
            Event::UnitFinish { task, host, status } => Record::UnitFinish {
                task: task.to_string(),
                host: host.to_string(),
                status: *status,
            },
            Event::TaskFinish {
                task,
                status,
                duration,
                ..
            } => Record::TaskFinish {
                task: task.to_string(),
                status: *status,
                duration_ms: ms(*duration),
            },
            Event::RunFinish {
                status,
                exit_code,
                duration,
                ..
            } => Record::RunFinish {
                status: *status,
                exit_code: *exit_code,
                duration_ms: ms(*duration),
            },
            Event::FileStep { .. }
            | Event::ArtifactsCollected { .. }
            | Event::ArtifactsPlaced { .. } => return file_record(ev),
            Event::Batch { .. }
            | Event::RolloutStopped { .. }
            | Event::Handler { .. }
            | Event::BatchWait { .. } => return rollout_record(ev),
            // Checks decide again on resume: nothing of them is kept.
            Event::RunStart { .. }
            | Event::TaskStart { .. }
            | Event::Checked { .. }
            | Event::CommandSkipped { .. }
            | Event::FileProgress { .. } => return None,
        })
    }

    /// Completions may wait for the next record (or an idle moment) to go out in the same
    /// write; anything that starts something does not wait, so every completion is on
    /// disk before the next step starts.
    pub fn can_wait(&self) -> bool {
        matches!(
            self,
            Record::CommandFinish { .. } | Record::UnitFinish { .. } | Record::TaskFinish { .. }
        )
    }

    /// Records after which the journal is worth flushing to disk (task boundaries).
    pub fn is_checkpoint(&self) -> bool {
        matches!(self, Record::TaskFinish { .. })
    }
}

/// The records of file steps, and of artifacts staged and put in place.
fn file_record(ev: &Event) -> Option<Record> {
    Some(match ev {
        Event::FileStep { cmd, report } => Record::file(cmd, report),
        Event::ArtifactsCollected { task, host, files } => Record::Artifacts {
            task: task.to_string(),
            host: host.to_string(),
            files: files.clone(),
        },
        Event::ArtifactsPlaced {
            task,
            host,
            from,
            report,
        } => Record::ArtifactsPlaced {
            task: task.to_string(),
            host: host.to_string(),
            from: from.to_string(),
            files: report.files,
            bytes: report.bytes,
        },
        _ => return None,
    })
}

/// The records of rollouts and handlers: batches, a stopped rollout, notifications,
/// handler results (a handler starting, or left pending, is not kept).
fn rollout_record(ev: &Event) -> Option<Record> {
    Some(match ev {
        Event::Batch {
            task,
            index,
            of,
            hosts,
            ..
        } => Record::Batch {
            task: task.to_string(),
            index: *index,
            of: *of,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        },
        Event::RolloutStopped { task, failed, .. } => Record::RolloutStopped {
            task: task.to_string(),
            failed: failed.iter().map(|h| h.to_string()).collect(),
        },
        Event::Handler {
            task,
            host,
            handler,
            state: HandlerState::Notified,
            ..
        } => Record::Notify {
            task: task.to_string(),
            host: host.to_string(),
            handler: handler.to_string(),
        },
        Event::Handler {
            task,
            host,
            handler,
            state: state @ (HandlerState::Success | HandlerState::Failed),
            ..
        } => Record::HandlerFinish {
            task: task.to_string(),
            host: host.to_string(),
            handler: handler.to_string(),
            status: if *state == HandlerState::Success {
                TaskStatus::Success
            } else {
                TaskStatus::Failed
            },
        },
        _ => return None,
    })
}
