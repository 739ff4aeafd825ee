//! Resume policy: what an interrupted run had finished (the checkpoint read from its
//! journal), whether nexus.toml changed since it started (fingerprints of the file and of
//! each task), and which run a new `nexus run` should offer to resume.
//! Must not: prompt or print (the resume and run commands do), or run anything.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use super::history::{self, RunState, Summary};
use super::record::{Record, RunHeader};
use crate::config::Config;
use crate::run::event::TaskStatus;

/// What an interrupted run had finished, for resuming it.
#[derive(Debug, Default, Clone)]
pub struct Checkpoint {
    pub done_tasks: HashSet<String>,
    pub done_units: HashSet<(String, String)>,
    /// Per (task, host) with progress but not finished: index of the first command to run.
    pub next_command: HashMap<(String, String), usize>,
    /// Rollouts that had stopped (too many failed hosts), with their failed hosts: a
    /// resume rolls those back again and starts no other host.
    pub stopped_rollouts: HashMap<String, Vec<String>>,
    /// The artifacts staged per (task, host), as journaled (moved into the resumed run's
    /// ledger, src/run/artifacts.rs).
    pub artifacts: HashMap<(String, String), Vec<crate::run::artifacts::Staged>>,
}

impl Checkpoint {
    /// True when resuming would skip something (a task, a host or a command).
    pub fn skips_anything(&self) -> bool {
        !self.done_tasks.is_empty()
            || !self.done_units.is_empty()
            || self.next_command.values().any(|&n| n > 0)
    }
}

/// Completed tasks, completed (task, host) pairs, and per unfinished pair the commands
/// already completed in a row from the first (see docs/state.md, "Resume").
pub fn checkpoint<'a>(records: impl IntoIterator<Item = &'a Record>) -> Checkpoint {
    let mut c = Checkpoint::default();
    for r in records {
        match r {
            Record::TaskFinish {
                task,
                status: TaskStatus::Success,
                ..
            } => {
                c.done_tasks.insert(task.clone());
            }
            Record::UnitFinish {
                task,
                host,
                status: TaskStatus::Success,
            } => {
                let key = (task.clone(), host.clone());
                c.next_command.remove(&key);
                c.done_units.insert(key);
            }
            Record::CommandFinish {
                task,
                host,
                index,
                status,
                ignored,
                part: None,
                ..
            } if *status == TaskStatus::Success || *ignored => {
                let next = c
                    .next_command
                    .entry((task.clone(), host.clone()))
                    .or_insert(0);
                if *index == *next {
                    *next = index + 1;
                }
            }
            Record::RolloutStopped { task, failed } => {
                c.stopped_rollouts.insert(task.clone(), failed.clone());
            }
            Record::Artifacts { task, host, files } => {
                c.artifacts
                    .insert((task.clone(), host.clone()), files.clone());
            }
            _ => {}
        }
    }
    c
}

/// FNV-1a, 64 bit: a cheap fingerprint of the config and of each task.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The fingerprint of the whole file.
pub fn config_hash(config: &Config) -> String {
    format!("{:016x}", fnv(config.source.as_bytes()))
}

/// Per task, a fingerprint of everything that decides what it runs.
pub fn task_hashes(config: &Config) -> BTreeMap<String, String> {
    config
        .tasks
        .iter()
        .map(|t| {
            let deps: Vec<&str> = t
                .deps
                .iter()
                .map(|&d| config.tasks[d].name.as_str())
                .collect();
            let cmds: Vec<String> = t
                .commands
                .iter()
                .map(|c| {
                    format!(
                        "{}|{}|{:?}|{}|{:?}|{}|{:?}|{}",
                        c.text,
                        c.sudo,
                        c.user,
                        c.pty,
                        c.timeout,
                        c.retries,
                        c.retry_delay,
                        c.continue_on_error
                    )
                })
                .collect();
            // `[env]` and `[config] shell` decide what every task runs (they are left
            // out when unset, so fingerprints of files without them stay as they were).
            let env: Vec<String> = config
                .env
                .iter()
                .filter(|(k, _)| !t.env.iter().any(|(tk, _)| tk == k))
                .chain(t.env.iter())
                .map(|(k, v)| format!("{k}={:?}", v.value))
                .chain(config.settings.shell.iter().map(|s| format!("shell={s:?}")))
                .collect();
            let mut text = format!(
                "{deps:?}|{:?}|{:?}|{:?}|{:?}|{env:?}|{}|{cmds:?}",
                t.on,
                t.strategy,
                t.timeout,
                t.dir.as_ref().map(|d| &d.value),
                t.continue_on_error
            );
            // What a task hands on and takes (left out when unset, as above).
            if !t.artifacts.is_empty() {
                text += &format!("|artifacts={:?}", t.artifacts);
            }
            if let Some(from) = &t.artifacts_from {
                let names: Vec<&str> = from
                    .iter()
                    .map(|&i| config.tasks[i].name.as_str())
                    .collect();
                text += &format!("|artifacts_from={names:?}");
            }
            (t.name.clone(), format!("{:016x}", fnv(text.as_bytes())))
        })
        .collect()
}

/// When nexus.toml changed since the run started: which tasks changed ("no task changed
/// (only other parts of the file)" when none did). None when the file is the same.
pub fn config_changes(header: &RunHeader, config: &Config) -> Option<String> {
    if header.config_hash == config_hash(config) {
        return None;
    }
    let now = task_hashes(config);
    let then = &header.task_hashes;
    let mut changed: Vec<String> = now
        .iter()
        .filter(|(k, v)| then.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    changed.extend(
        then.keys()
            .filter(|k| !now.contains_key(*k))
            .map(|k| format!("{k} (removed)")),
    );
    Some(if changed.is_empty() {
        "no task changed (only other parts of the file)".to_string()
    } else {
        format!("tasks changed: {}", changed.join(", "))
    })
}

/// The project's last run of these targets, when it was interrupted (what `nexus run`
/// offers to resume).
pub fn interrupted_run_of(home: &Path, project: &str, targets: &[String]) -> Option<Summary> {
    let key = super::target_key(targets);
    history::latest_of(home, super::Scope::Project(project), &key)
        .filter(|s| s.state == RunState::Interrupted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fin(task: &str, host: &str, index: usize, status: TaskStatus) -> Record {
        Record::CommandFinish {
            task: task.into(),
            host: host.into(),
            index,
            attempt: 1,
            status,
            exit_code: Some(0),
            duration_ms: 1,
            ignored: false,
            output: Default::default(),
            part: None,
        }
    }

    #[test]
    fn checkpoint_keeps_the_completed_prefix() {
        let ok = TaskStatus::Success;
        let recs = vec![
            fin("a", "local", 0, ok),
            Record::UnitFinish {
                task: "a".into(),
                host: "local".into(),
                status: ok,
            },
            Record::TaskFinish {
                task: "a".into(),
                status: ok,
                duration_ms: 1,
            },
            fin("b", "h1", 0, ok),
            fin("b", "h1", 1, TaskStatus::Failed),
            fin("b", "h2", 0, ok),
            fin("b", "h2", 1, ok),
        ];
        let c = checkpoint(&recs);
        assert!(c.done_tasks.contains("a"));
        assert!(c.done_units.contains(&("a".into(), "local".into())));
        assert_eq!(c.next_command[&("b".into(), "h1".into())], 1);
        assert_eq!(c.next_command[&("b".into(), "h2".into())], 2);
    }
}
