//! The history of runs read back from their journals: one `Summary` per run (for
//! `nexus runs`, the resume hint and dry-run estimates), and retention (`runs gc`).
//! Reading for the start of every run is cheap: the first line and the last 16 KiB of
//! a journal, not the whole file. Must not: write journals.

use std::path::{Path, PathBuf};

use super::journal::{self, Entry};
use super::record::{Record, RunHeader};
use super::{runs_dir, unusable, Scope};
use crate::error::{io_reason, Error};
use crate::run::event::RunStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Success,
    Failed,
    Interrupted,
    Running,
}

impl RunState {
    pub fn name(self) -> &'static str {
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
    pub header: RunHeader,
    /// Time of the first record.
    pub started: String,
    pub state: RunState,
    pub duration_ms: Option<u64>,
    pub path: PathBuf,
    /// (line, reason) when the journal has a bad line.
    pub problem: Option<(usize, String)>,
}

impl Summary {
    pub fn id(&self) -> &str {
        &self.header.run_id
    }
}

/// A summary from the first record and the last `run_finish`; `going`: another process
/// holds the journal's lock (a pid in the journal could have been reused; a lock cannot
/// outlive its process).
fn summary(path: &Path, head: &Entry, recent: &[&Record], going: bool) -> Option<Summary> {
    let Record::RunStart(header) = &head.record else {
        return None;
    };
    let finish = recent.iter().rev().find_map(|r| match r {
        Record::RunFinish {
            status,
            duration_ms,
            ..
        } => Some((*status, *duration_ms)),
        _ => None,
    });
    let state = match finish {
        _ if going => RunState::Running,
        Some((RunStatus::Success, _)) => RunState::Success,
        Some((RunStatus::Failed, _)) => RunState::Failed,
        Some((RunStatus::Interrupted, _)) => RunState::Interrupted,
        None => RunState::Interrupted,
    };
    Some(Summary {
        header: header.clone(),
        started: head.ts.clone(),
        state,
        duration_ms: finish.map(|(_, d)| d),
        path: path.to_path_buf(),
        problem: None,
    })
}

/// Read a whole journal (checked line by line) and summarise it; Err for a journal with
/// no usable first record.
pub fn summarize(path: &Path) -> Result<(Summary, journal::Read), String> {
    summarize_as(path, journal::held(path))
}

/// `summarize` for the process that owns the journal (it holds the lock itself).
pub fn summarize_owned(path: &Path) -> Result<(Summary, journal::Read), String> {
    summarize_as(path, false)
}

fn summarize_as(path: &Path, going: bool) -> Result<(Summary, journal::Read), String> {
    let read = journal::read(path).map_err(|e| io_reason(&e))?;
    let no_head = || {
        read.problem
            .as_ref()
            .map(|(l, r)| format!("line {l}: {r}"))
            .unwrap_or_else(|| "it does not start with a run_start record".into())
    };
    let Some(head) = read.entries.first() else {
        return Err(no_head());
    };
    let records: Vec<&Record> = read.records().collect();
    let mut s = summary(path, head, &records, going).ok_or_else(no_head)?;
    s.problem = read.problem.clone();
    Ok((s, read))
}

/// A cheap summary for the start of every run: the first line and the last 16 KiB only,
/// so the cost does not grow with the size of the history. No full check.
pub fn peek(path: &Path) -> Result<Summary, String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| io_reason(&e))?;
    let head = first_entry(&f)?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(16 * 1024);
    let mut tail = Vec::new();
    f.seek(SeekFrom::Start(from)).map_err(|e| io_reason(&e))?;
    f.read_to_end(&mut tail).map_err(|e| io_reason(&e))?;
    let tail = String::from_utf8_lossy(&tail);
    // Only the records that decide the state are parsed.
    let recent: Vec<Record> = tail
        .lines()
        .skip(usize::from(from > 0))
        .filter(|l| l.contains("\"ev\":\"run_finish\""))
        .filter_map(|l| journal::parse_line(l).ok())
        .map(|e| e.record)
        .collect();
    let recent: Vec<&Record> = recent.iter().collect();
    summary(path, &head, &recent, journal::held(path))
        .ok_or_else(|| "it does not start with a valid run_start record".to_string())
}

/// The first record of a journal file.
fn first_entry(f: &std::fs::File) -> Result<Entry, String> {
    use std::io::{BufRead, Read};
    let mut first = String::new();
    std::io::BufReader::new(f)
        .take(1 << 20)
        .read_line(&mut first)
        .map_err(|e| io_reason(&e))?;
    journal::parse_line(first.trim_end())
        .map_err(|_| "it does not start with a valid run_start record".to_string())
}

/// Journals that could not be read at all: (path, reason).
pub type Unreadable = Vec<(PathBuf, String)>;

/// Journal files, oldest first (ids sort by time).
fn journal_files(home: &Path) -> Result<Vec<PathBuf>, Error> {
    let dir = runs_dir(home);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(unusable("read", &dir, &e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// The newest run in `scope` of these targets (a `target_key`), reading only what it
/// must: the first line of newer journals, then `peek` of the match.
pub fn latest_of(home: &Path, scope: Scope<'_>, key: &str) -> Option<Summary> {
    let paths = journal_files(home).ok()?;
    for p in paths.iter().rev() {
        if scope.may_include(p) == Some(false) {
            continue;
        }
        let Some(h) = header_of(p) else { continue };
        if scope.includes(&h) && super::target_key(&h.targets) == key {
            return peek(p).ok();
        }
    }
    None
}

/// All journals, newest first, fully read and checked; unreadable ones as (path, reason).
pub fn history(home: &Path, scope: Scope<'_>) -> Result<(Vec<Summary>, Unreadable), Error> {
    history_with(home, scope, |p| summarize(p).map(|(s, _)| s))
}

/// The journals in `scope`, newest first, from `peek` (cheap: for the start of a run).
pub fn history_light(home: &Path, scope: Scope<'_>) -> Result<(Vec<Summary>, Unreadable), Error> {
    history_with(home, scope, peek)
}

/// Journals in `scope`, newest first. Unreadable journals are reported whatever their
/// project (which cannot be told).
fn history_with(
    home: &Path,
    scope: Scope<'_>,
    read: impl Fn(&Path) -> Result<Summary, String>,
) -> Result<(Vec<Summary>, Unreadable), Error> {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for p in journal_files(home)?.into_iter().rev() {
        if !in_scope(scope, &p) {
            continue;
        }
        match read(&p) {
            Ok(s) => good.push(s),
            Err(why) => bad.push((p, why)),
        }
    }
    Ok((good, bad))
}

/// Whether the journal at `path` is in `scope`: by its file name when that tells, else by
/// its header. A journal without a readable header is in every scope (so it is reported).
fn in_scope(scope: Scope<'_>, path: &Path) -> bool {
    match scope.may_include(path) {
        Some(maybe) => maybe,
        None => header_of(path).is_none_or(|h| scope.includes(&h)),
    }
}

/// The project tag of a journal: from its name, else from its header.
fn tag_of(path: &Path) -> Option<String> {
    match super::journal_name(path)? {
        (_, Some(tag)) => Some(tag.to_string()),
        (_, None) => header_of(path).map(|h| super::project_tag(h.project())),
    }
}

/// The run_start header of a journal file (its first line), if it has one.
fn header_of(path: &Path) -> Option<RunHeader> {
    let f = std::fs::File::open(path).ok()?;
    match first_entry(&f) {
        Ok(Entry {
            record: Record::RunStart(h),
            ..
        }) => Some(h),
        _ => None,
    }
}

/// Remove all but the newest `keep` journals of each project in `scope` (never one a
/// process holds: its run is going); returns how many were removed.
pub fn gc(home: &Path, scope: Scope<'_>, keep: usize) -> Result<usize, Error> {
    let paths = journal_files(home)?;
    if paths.len() <= keep {
        // No project can have more than `keep`: nothing to read.
        sweep_artifacts(home);
        return Ok(0);
    }
    let mut kept: std::collections::HashMap<String, usize> = Default::default();
    let mut removed = 0;
    for p in paths.iter().rev() {
        if !in_scope(scope, p) {
            continue;
        }
        let Some(tag) = tag_of(p) else { continue };
        let n = kept.entry(tag).or_default();
        if *n < keep {
            *n += 1;
        } else if !journal::held(p) && std::fs::remove_file(p).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        log::debug!("state: removed {removed} old journals, kept {keep} per project");
    }
    sweep_artifacts(home);
    Ok(removed)
}

/// Remove the staged artifacts (`runs/RUN_ID.artifacts`) of runs whose journal is gone:
/// a kept run's are kept. How many run folders were removed.
pub fn sweep_artifacts(home: &Path) -> usize {
    let suffix = crate::run::artifacts::SUFFIX;
    let Ok(entries) = std::fs::read_dir(runs_dir(home)) else {
        return 0;
    };
    let names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let kept: std::collections::HashSet<&str> = names
        .iter()
        .filter_map(|n| super::journal_name(Path::new(n)).map(|(id, _)| id))
        .collect();
    let mut removed = 0;
    for n in &names {
        let Some(id) = n.strip_suffix(suffix) else {
            continue;
        };
        if !kept.contains(id) && std::fs::remove_dir_all(runs_dir(home).join(n)).is_ok() {
            removed += 1;
        }
    }
    removed
}
