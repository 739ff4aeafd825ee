//! Run state under `$NEXUS_HOME` (default `$XDG_STATE_HOME/nexus`, else
//! `~/.local/state/nexus`): per-run journals (`runs/<id>.jsonl`), per-target run
//! counters (`counters.json`), the history read back from journals, and the checkpoint
//! a resume starts from. Must not: run commands.

pub mod journal;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{io_reason, Error};

/// Journals kept by automatic retention (the oldest beyond this are removed).
pub const KEEP_RUNS: usize = 200;

pub fn home() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(h) = env("NEXUS_HOME") {
        return h;
    }
    if let Some(x) = env("XDG_STATE_HOME") {
        return x.join("nexus");
    }
    crate::userenv::home().join(".local/state/nexus")
}

pub fn runs_dir(home: &Path) -> PathBuf {
    home.join("runs")
}

pub fn journal_path(home: &Path, run_id: &str) -> PathBuf {
    runs_dir(home).join(format!("{run_id}.jsonl"))
}

/// The state directory could not be used: what, where, what to try (exit 2).
pub fn unusable(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::usage(format!("cannot {what} {}: {}", path.display(), io_reason(e))).with_help(
        "nexus keeps a journal of every run there; make it writable, or set NEXUS_HOME to a directory that is",
    )
}

/// Next value of the run counter for `key` (the targets), stored in counters.json under
/// an exclusive lock so that concurrent runs get distinct numbers.
pub fn next_counter(home: &Path, key: &str) -> Result<u64, Error> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(home).map_err(|e| unusable("create", home, &e))?;
    let path = home.join("counters.json");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| unusable("open", &path, &e))?;
    // SAFETY: flock on a file we hold open; released when it is closed.
    unsafe {
        libc::flock(f.as_raw_fd(), libc::LOCK_EX);
    }
    let mut text = String::new();
    let _ = f.read_to_string(&mut text);
    let mut counters: BTreeMap<String, u64> = serde_json::from_str(&text).unwrap_or_default();
    let n = counters.get(key).copied().unwrap_or(0) + 1;
    counters.insert(key.to_string(), n);
    let body = serde_json::to_string_pretty(&counters).unwrap_or_default();
    f.set_len(0)
        .and_then(|_| f.rewind())
        .and_then(|_| f.write_all(body.as_bytes()))
        .map_err(|e| unusable("write", &path, &e))?;
    Ok(n)
}

/// The counter key of a set of targets: their names, sorted, space-separated.
pub fn target_key(targets: &[String]) -> String {
    let mut t = targets.to_vec();
    t.sort();
    t.dedup();
    t.join(" ")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    Success,
    Failed,
    Interrupted,
    Running,
}

impl RunState {
    pub fn name(&self) -> &'static str {
        match self {
            RunState::Success => "success",
            RunState::Failed => "failed",
            RunState::Interrupted => "interrupted",
            RunState::Running => "running",
        }
    }
}

/// One run as the history shows it.
#[derive(Debug, Clone)]
pub struct Summary {
    pub id: String,
    pub counter: u64,
    pub started: String,
    pub targets: Vec<String>,
    pub state: RunState,
    pub duration_ms: Option<u64>,
    pub path: PathBuf,
    /// (line, reason) when the journal has a bad line.
    pub problem: Option<(usize, String)>,
    pub records: Vec<Value>,
}

fn pid_alive(pid: u64) -> bool {
    // Our own pid is never a run that is still going (ids are unique per run).
    pid != u64::from(std::process::id()) && Path::new(&format!("/proc/{pid}")).exists()
}

/// Read and summarise one journal; Err for a journal with no usable header.
pub fn summarize(path: &Path) -> Result<Summary, String> {
    let read = journal::read(path).map_err(|e| io_reason(&e))?;
    let first = read.records.first().filter(|r| r["ev"] == "run_start");
    let Some(head) = first else {
        let why = read
            .problem
            .as_ref()
            .map(|(l, r)| format!("line {l}: {r}"))
            .unwrap_or_else(|| "it does not start with a run_start record".into());
        return Err(why);
    };
    let finish = read.records.iter().rev().find(|r| r["ev"] == "run_finish");
    let last_pid = read
        .records
        .iter()
        .rev()
        .find(|r| r["ev"] == "run_start" || r["ev"] == "resume")
        .and_then(|r| r["pid"].as_u64())
        .unwrap_or(0);
    let mut summary = from_records(path, head, finish, last_pid);
    summary.problem = read.problem;
    summary.records = read.records;
    Ok(summary)
}

/// A Summary with no records, from the run_start record, the last run_finish (if any)
/// and the pid of the last process that ran the journal (for "running").
fn from_records(path: &Path, head: &Value, finish: Option<&Value>, last_pid: u64) -> Summary {
    let state = match finish.and_then(|f| f["status"].as_str()) {
        Some("success") => RunState::Success,
        Some("failed") => RunState::Failed,
        Some(_) => RunState::Interrupted,
        None if pid_alive(last_pid) => RunState::Running,
        None => RunState::Interrupted,
    };
    Summary {
        id: head["run_id"].as_str().unwrap_or_default().to_string(),
        counter: head["counter"].as_u64().unwrap_or(0),
        started: head["ts"].as_str().unwrap_or_default().to_string(),
        targets: head["targets"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        state,
        duration_ms: finish.and_then(|f| f["duration_ms"].as_u64()),
        path: path.to_path_buf(),
        problem: None,
        records: Vec::new(),
    }
}

/// A cheap summary for the start of every run: the first line and the last 16 KiB only,
/// so the cost does not grow with the size of the history. No records, no full check.
pub fn peek(path: &Path) -> Result<Summary, String> {
    use std::io::{BufRead, Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| io_reason(&e))?;
    let mut first = String::new();
    std::io::BufReader::new(&f)
        .take(1 << 20)
        .read_line(&mut first)
        .map_err(|e| io_reason(&e))?;
    let head = journal::unseal(first.trim_end())
        .ok()
        .filter(|h| h["ev"] == "run_start")
        .ok_or_else(|| "it does not start with a valid run_start record".to_string())?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(16 * 1024);
    let mut tail = Vec::new();
    f.seek(SeekFrom::Start(from)).map_err(|e| io_reason(&e))?;
    f.read_to_end(&mut tail).map_err(|e| io_reason(&e))?;
    let tail = String::from_utf8_lossy(&tail);
    // Only the records that decide the state are parsed.
    let recent: Vec<Value> = tail
        .lines()
        .skip(usize::from(from > 0))
        .filter(|l| l.contains("\"ev\":\"run_finish\"") || l.contains("\"ev\":\"resume\""))
        .filter_map(|l| journal::unseal(l).ok())
        .collect();
    let finish = recent.iter().rev().find(|r| r["ev"] == "run_finish");
    let last_pid = recent
        .iter()
        .rev()
        .find(|r| r["ev"] == "resume")
        .unwrap_or(&head)["pid"]
        .as_u64()
        .unwrap_or(0);
    Ok(from_records(path, &head, finish, last_pid))
}

/// Journals that could not be read at all: (path, reason).
pub type Unreadable = Vec<(PathBuf, String)>;

/// The newest run of these targets (by counter key), reading only what it must:
/// the first line of newer journals of other targets, then `peek` of the match.
pub fn latest_of(home: &Path, key: &str) -> Option<Summary> {
    use std::io::BufRead;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(runs_dir(home))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    for p in paths.iter().rev() {
        let Ok(f) = std::fs::File::open(p) else {
            continue;
        };
        let mut first = String::new();
        if std::io::BufReader::new(f).read_line(&mut first).is_err() {
            continue;
        }
        let Ok(head) = journal::unseal(first.trim_end()) else {
            continue;
        };
        let targets: Vec<String> = head["targets"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if target_key(&targets) == key {
            return peek(p).ok();
        }
    }
    None
}

/// All journals, newest first, fully read and checked; unreadable ones as (path, reason).
pub fn history(home: &Path) -> Result<(Vec<Summary>, Unreadable), Error> {
    history_with(home, summarize)
}

/// All journals, newest first, from `peek` (cheap: for the start of a run).
pub fn history_light(home: &Path) -> Result<(Vec<Summary>, Unreadable), Error> {
    history_with(home, peek)
}

fn history_with(
    home: &Path,
    read: fn(&Path) -> Result<Summary, String>,
) -> Result<(Vec<Summary>, Unreadable), Error> {
    let dir = runs_dir(home);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(unusable("read", &dir, &e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    paths.reverse();
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for p in paths {
        match read(&p) {
            Ok(s) => good.push(s),
            Err(why) => bad.push((p, why)),
        }
    }
    Ok((good, bad))
}

/// Remove all but the newest `keep` journals; returns how many were removed.
pub fn gc(home: &Path, keep: usize) -> Result<usize, Error> {
    let dir = runs_dir(home);
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(e) => e
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(unusable("read", &dir, &e)),
    };
    paths.sort();
    let excess = paths.len().saturating_sub(keep);
    let mut removed = 0;
    for p in paths.into_iter().take(excess) {
        if std::fs::remove_file(&p).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// What an interrupted run had finished, for resuming it.
#[derive(Debug, Default, Clone)]
pub struct Checkpoint {
    pub done_tasks: HashSet<String>,
    pub done_units: HashSet<(String, String)>,
    /// Per (task, host) with progress but not finished: index of the first command to run.
    pub next_command: HashMap<(String, String), usize>,
}

/// Completed tasks, completed (task, host) pairs, and per unfinished pair the commands
/// already completed in a row from the first (the PRD's checkpoint semantics).
pub fn checkpoint(records: &[Value]) -> Checkpoint {
    let mut c = Checkpoint::default();
    let key = |r: &Value| {
        (
            r["task"].as_str().unwrap_or_default().to_string(),
            r["host"].as_str().unwrap_or_default().to_string(),
        )
    };
    for r in records {
        match r["ev"].as_str() {
            Some("task_finish") if r["status"] == "success" => {
                c.done_tasks
                    .insert(r["task"].as_str().unwrap_or_default().to_string());
            }
            Some("unit_finish") if r["status"] == "success" => {
                c.next_command.remove(&key(r));
                c.done_units.insert(key(r));
            }
            Some("cmd_finish") if r["status"] == "success" || r["ignored"] == true => {
                let index = r["index"].as_u64().unwrap_or(0) as usize;
                let next = c.next_command.entry(key(r)).or_insert(0);
                if index == *next {
                    *next = index + 1;
                }
            }
            _ => {}
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checkpoint_keeps_the_completed_prefix() {
        let recs = vec![
            json!({"ev": "cmd_finish", "task": "a", "host": "local", "index": 0, "status": "success"}),
            json!({"ev": "unit_finish", "task": "a", "host": "local", "status": "success"}),
            json!({"ev": "task_finish", "task": "a", "status": "success"}),
            json!({"ev": "cmd_finish", "task": "b", "host": "h1", "index": 0, "status": "success"}),
            json!({"ev": "cmd_finish", "task": "b", "host": "h1", "index": 1, "status": "failed"}),
            json!({"ev": "cmd_finish", "task": "b", "host": "h2", "index": 0, "status": "success"}),
            json!({"ev": "cmd_finish", "task": "b", "host": "h2", "index": 1, "status": "success"}),
        ];
        let c = checkpoint(&recs);
        assert!(c.done_tasks.contains("a"));
        assert!(c.done_units.contains(&("a".into(), "local".into())));
        assert_eq!(c.next_command[&("b".into(), "h1".into())], 1);
        assert_eq!(c.next_command[&("b".into(), "h2".into())], 2);
    }

    #[test]
    fn target_keys_ignore_order() {
        assert_eq!(target_key(&["b".into(), "a".into(), "b".into()]), "a b");
    }
}
