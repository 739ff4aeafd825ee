//! Commands a killed nexus left running: a SIGKILLed nexus cannot stop its children, and a
//! resume that started them again would run each twice at once. What started and did not
//! finish comes from the journal (`command_spawned` without `command_finish`); what still
//! runs is found by the environment every command of a run gets (`NEXUS_RUN_ID`), which a
//! reused process id cannot fake. Must not: stop anything (the user decides).

use super::record::Record;

/// A command the journal says started and did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub task: String,
    pub host: String,
    /// The process group it ran in (on `host`).
    pub pgid: u32,
    pub remote: bool,
    pub command: String,
}

/// Commands that started and did not finish, in the order they started.
pub fn unfinished<'a>(records: impl IntoIterator<Item = &'a Record>) -> Vec<Unfinished> {
    let mut started: Vec<((String, String, usize, u32), Unfinished)> = Vec::new();
    let mut command = String::new();
    for r in records {
        match r {
            Record::CommandStart { command: c, .. } => command = c.clone(),
            Record::CommandSpawned {
                task,
                host,
                index,
                attempt,
                pgid,
                remote,
            } => started.push((
                (task.clone(), host.clone(), *index, *attempt),
                Unfinished {
                    task: task.clone(),
                    host: host.clone(),
                    pgid: *pgid,
                    remote: *remote,
                    command: command.clone(),
                },
            )),
            Record::CommandFinish {
                task,
                host,
                index,
                attempt,
                ..
            } => {
                let key = (task.clone(), host.clone(), *index, *attempt);
                started.retain(|(k, _)| *k != key);
            }
            _ => {}
        }
    }
    started.into_iter().map(|(_, u)| u).collect()
}

/// The line a command of run `run_id` has in its environment.
pub fn marker(run_id: &str) -> String {
    format!("NEXUS_RUN_ID={run_id}")
}

/// A process of a run found running.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Found {
    pub pid: u32,
    pub pgid: u32,
    pub command: String,
}

/// Processes on this machine whose environment marks them as commands of `run_id`.
/// Processes of other users cannot be seen.
pub fn local(run_id: &str) -> Vec<Found> {
    let needle = marker(run_id);
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !env.split(|&b| b == 0).any(|v| v == needle.as_bytes()) {
            continue;
        }
        let Some(pgid) = crate::sys::live_group_of(pid) else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        found.push(Found {
            pid,
            pgid,
            command: cmd.trim().to_string(),
        });
    }
    found.sort();
    found
}

/// The shell snippet that lists, on a host, the processes of `run_id` (pid and command).
pub fn remote_probe(run_id: &str) -> String {
    format!(
        "for f in $(grep -l -s -a -F '{}' /proc/[0-9]*/environ 2>/dev/null); do p=${{f#/proc/}}; p=${{p%/environ}}; printf '%s %s\\n' \"$p\" \"$(tr '\\0' ' ' < /proc/$p/cmdline 2>/dev/null)\"; done",
        marker(run_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::event::TaskStatus;

    #[test]
    fn started_and_not_finished() {
        let start = |task: &str, index| Record::CommandStart {
            task: task.into(),
            host: "local".into(),
            index,
            attempt: 1,
            command: format!("cmd-{task}"),
            part: None,
        };
        let spawned = |task: &str, index, pgid| Record::CommandSpawned {
            task: task.into(),
            host: "local".into(),
            index,
            attempt: 1,
            pgid,
            remote: false,
        };
        let recs = vec![
            start("a", 0),
            spawned("a", 0, 10),
            Record::CommandFinish {
                task: "a".into(),
                host: "local".into(),
                index: 0,
                attempt: 1,
                status: TaskStatus::Success,
                exit_code: Some(0),
                duration_ms: 1,
                ignored: false,
                output: Default::default(),
                part: None,
            },
            start("b", 0),
            spawned("b", 0, 20),
        ];
        let u = unfinished(&recs);
        assert_eq!(u.len(), 1);
        assert_eq!((u[0].task.as_str(), u[0].pgid), ("b", 20));
        assert_eq!(u[0].command, "cmd-b");
    }
}
