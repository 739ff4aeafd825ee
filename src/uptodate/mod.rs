//! Up-to-date checks (docs/nexus-toml.md, "Up-to-date checks"): whether a unit has work
//! to do before it runs. A local task with `sources` is up to date when its definition
//! (rendered commands, env, dir, args), its sources' contents and its outputs' contents
//! are what they were after its last success and every output exists; contents are
//! hashed only for files whose size, mtime, ctime, inode or device changed since they
//! were last hashed (the stat cache). `creates` / `unless` are checked on the target by
//! one script (guard.rs). The check runs when the unit is about to run, after its
//! dependencies, so a dependency that rewrote a source makes the task run.
//! Must not: run the task's commands or print (it emits `Checked` events).

pub mod guard;
pub mod hash;
pub mod store;
pub mod walk;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use hash::Digest;
use store::{Cached, Record, StatCache};
use walk::File;

use crate::config::Task;
use crate::exec::{Cause, ExecResult};
use crate::run::event::{Event, Failure, Name};
use crate::run::scheduler::Ctx;
use crate::run::RunInfo;

/// A file changed less than this before it was hashed may have changed again within
/// the same clock tick, which its stat would not show: it is hashed again next time.
const RACY_NS: i64 = 50_000_000;

/// Reasons shown for one decision, at most (then `and N more`).
const MAX_REASONS: usize = 5;

/// The state of a run's up-to-date checks.
#[derive(Default)]
pub struct Store {
    /// `$NEXUS_HOME/uptodate/PROJECT`; None: no checks (tasks run, nothing is recorded).
    dir: Option<PathBuf>,
    /// `-B/--always`: run anyway (and record the success).
    pub always: bool,
    /// A dry run: decide, write nothing.
    pub dry: bool,
    cache: Mutex<Option<StatCache>>,
}

/// What the check of a task with `sources` decided.
#[derive(Debug)]
pub enum Decision {
    /// Nothing to do; why it is up to date.
    Skip(Vec<String>),
    /// Why it runs, and what to record when it succeeds.
    Run {
        reasons: Vec<String>,
        pending: Option<Pending>,
    },
}

/// What a task's record will hold once it succeeds.
#[derive(Debug)]
pub struct Pending {
    task: String,
    definition: Vec<(String, String, Digest)>,
    sources: Vec<(PathBuf, Digest)>,
    outputs: Vec<String>,
}

/// 16 hex digits naming a path in state file names (FNV-1a, 64 bit).
pub(crate) fn fnv64(s: &str) -> String {
    let h = s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:016x}")
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Store {
    /// The checks of a project (`state::project_of`) with its state under `home`.
    pub fn new(home: &Path, project: &str, always: bool, dry: bool) -> Store {
        Store {
            dir: Some(home.join("uptodate").join(fnv64(project))),
            always,
            dry,
            cache: Mutex::new(None),
        }
    }

    fn record_path(&self, task: &str) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join("tasks").join(fnv64(task)))
    }

    /// Decide whether `task` (local, with `sources`) has work to do. None when it has no
    /// `sources` or cannot be checked (it then runs).
    pub fn check(&self, task: &Task, run: &RunInfo) -> Option<Decision> {
        if task.checks.sources.is_empty() {
            return None;
        }
        let record_path = self.record_path(&task.name)?;
        let definition = definition(task, run).ok()?;
        let root = &run.root;
        let started = now_ns();
        let sources = walk::expand(root, &task.checks.sources).files;
        let outputs = walk::expand(root, &task.checks.outputs);
        let all: Vec<&File> = sources.iter().chain(&outputs.files).collect();
        let digests = self.digests(root, &task.name, &all, started);
        let (src, out) = digests.split_at(sources.len());
        let reasons = if self.always {
            vec!["-B/--always".to_string()]
        } else {
            let record = Record::load(&record_path, &task.name);
            let failed = record.is_none() && old(&record_path).exists();
            let now = Now {
                definition: &definition,
                sources: &sources,
                source_digests: src,
                outputs: &outputs,
                output_digests: out,
            };
            compare(record.as_ref(), failed, &now)
        };
        self.save_cache();
        if reasons.is_empty() {
            let n = |k: usize, what: &str| format!("{k} {what}{}", if k == 1 { "" } else { "s" });
            let why = format!(
                "{} and {} unchanged",
                n(sources.len(), "source"),
                n(outputs.files.len(), "output")
            );
            return Some(Decision::Skip(vec![why]));
        }
        if !self.dry {
            // A run that does not succeed leaves no record: the next one runs again.
            let _ = std::fs::rename(&record_path, old(&record_path));
        }
        let pending = Pending {
            task: task.name.clone(),
            definition,
            sources: known(&sources, src),
            outputs: task.checks.outputs.clone(),
        };
        Some(Decision::Run {
            reasons: shorten(reasons),
            pending: Some(pending),
        })
    }

    /// The task succeeded: record its definition, sources and (now) outputs.
    pub fn commit(&self, run: &RunInfo, p: Pending) {
        let Some(path) = self.record_path(&p.task) else {
            return;
        };
        if self.dry {
            return;
        }
        let outputs = walk::expand(&run.root, &p.outputs);
        for pattern in &outputs.unmatched {
            log::warn!(
                "task `{}` succeeded but its output `{pattern}` does not exist: it will run every time",
                p.task
            );
        }
        let files: Vec<&File> = outputs.files.iter().collect();
        let digests = self.digests(&run.root, &p.task, &files, now_ns());
        let record = Record {
            definition: p.definition,
            sources: p.sources,
            outputs: known(&outputs.files, &digests),
        };
        match record.save(&path, &p.task) {
            Ok(()) => {
                let _ = std::fs::remove_file(old(&path));
            }
            Err(e) => log::warn!(
                "cannot record the success of `{}` in {}: {e}; it will run again next time",
                p.task,
                path.display()
            ),
        }
        self.save_cache();
    }

    /// The content digests of `files`: from the stat cache where their stat is what it
    /// was when they were hashed, hashed (and cached) otherwise.
    fn digests(
        &self,
        root: &Path,
        task: &str,
        files: &[&File],
        started: i64,
    ) -> Vec<Option<Digest>> {
        let mut out: Vec<Option<Digest>> = vec![None; files.len()];
        let mut need = Vec::new();
        {
            let mut guard = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            let cache = guard.get_or_insert_with(|| self.load_cache());
            for (i, f) in files.iter().enumerate() {
                if cache.entries.len() > 50_000 {
                    cache.seen.insert(f.path.as_os_str().to_owned());
                }
                match cache.entries.get(f.path.as_os_str()) {
                    Some(c) if c.stat == f.stat && !c.racy => out[i] = Some(c.digest),
                    _ => need.push(i),
                }
            }
        }
        let list: Vec<(&Path, u64)> = need
            .iter()
            .map(|&i| (files[i].path.as_path(), files[i].stat.size))
            .collect();
        let hashed = hash::hash_files(root, &list);
        let bytes: u64 = list.iter().map(|(_, s)| s).sum();
        log::debug!(
            "uptodate: {task}: {} files checked, {} hashed ({bytes} bytes)",
            files.len(),
            need.len()
        );
        let mut guard = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let cache = guard.get_or_insert_with(StatCache::default);
        for (&i, d) in need.iter().zip(hashed) {
            out[i] = d;
            let f = files[i];
            match d {
                Some(digest) => {
                    let racy =
                        f.stat.ctime >= started - RACY_NS || f.stat.mtime >= started - RACY_NS;
                    cache.entries.insert(
                        f.path.as_os_str().to_owned(),
                        Cached {
                            stat: f.stat,
                            digest,
                            racy,
                        },
                    );
                }
                None => {
                    cache.entries.remove(f.path.as_os_str());
                }
            }
            cache.dirty = true;
        }
        out
    }

    fn load_cache(&self) -> StatCache {
        match &self.dir {
            Some(d) => StatCache::load(&d.join("stat")),
            None => StatCache::default(),
        }
    }

    fn save_cache(&self) {
        let Some(dir) = &self.dir else { return };
        if self.dry {
            return;
        }
        let mut guard = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = guard.as_mut().filter(|c| c.dirty) {
            c.save(&dir.join("stat"));
        }
    }
}

/// Where a record goes while its task runs again.
fn old(record: &Path) -> PathBuf {
    record.with_extension("old")
}

fn known(files: &[File], digests: &[Option<Digest>]) -> Vec<(PathBuf, Digest)> {
    files
        .iter()
        .zip(digests)
        .filter_map(|(f, d)| Some((f.path.clone(), (*d)?)))
        .collect()
}

fn shorten(mut reasons: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    reasons.retain(|r| seen.insert(r.clone()));
    if reasons.len() > MAX_REASONS {
        let more = reasons.len() - (MAX_REASONS - 1);
        reasons.truncate(MAX_REASONS - 1);
        reasons.push(format!("and {more} more changes"));
    }
    reasons
}

/// What the definition of `task` is in this run, as hashes by part: the rendered
/// commands (with their options and guards), `dir`, each `env` value, each argument,
/// and the patterns. A template that may hold a secret is hashed as written, so no
/// secret's hash is stored.
pub fn definition(task: &Task, run: &RunInfo) -> Result<Vec<(String, String, Digest)>, String> {
    let vars = run.context(&task.name, "local");
    let text = |t: &crate::config::model::Spanned<crate::config::template::Template>| {
        if t.value.may_hold_secret() {
            return Ok(t.value.source().to_string());
        }
        t.value.render(&vars).map_err(|e| e.message)
    };
    let mut cmds = Vec::new();
    for c in &task.commands {
        cmds.push(text(&c.template)?);
        cmds.push(format!("{}|{:?}|{}", c.sudo, c.user, c.pty));
        for g in [&c.guard.creates, &c.guard.unless] {
            cmds.push(g.as_ref().map(&text).transpose()?.unwrap_or_default());
        }
    }
    let cmd_refs: Vec<&str> = cmds.iter().map(String::as_str).collect();
    let dir = task
        .dir
        .as_ref()
        .map(&text)
        .transpose()?
        .unwrap_or_default();
    let mut parts = vec![
        (
            "commands".to_string(),
            String::new(),
            hash::of_text(&cmd_refs),
        ),
        ("dir".to_string(), String::new(), hash::of_text(&[&dir])),
    ];
    for (k, v) in &task.env {
        parts.push(("env".into(), k.clone(), hash::of_text(&[&text(v)?])));
    }
    for (k, v) in run.args.get(&task.name).into_iter().flatten() {
        parts.push(("arg".into(), k.clone(), hash::of_text(&[&format!("{v:?}")])));
    }
    for (kind, globs) in [
        ("sources", &task.checks.sources),
        ("outputs", &task.checks.outputs),
    ] {
        let refs: Vec<&str> = globs.iter().map(String::as_str).collect();
        parts.push((kind.to_string(), String::new(), hash::of_text(&refs)));
    }
    Ok(parts)
}

/// A task's files and definition now.
struct Now<'a> {
    definition: &'a [(String, String, Digest)],
    sources: &'a [File],
    source_digests: &'a [Option<Digest>],
    outputs: &'a walk::Expanded,
    output_digests: &'a [Option<Digest>],
}

/// Why the task must run (empty: it is up to date).
fn compare(record: Option<&Record>, failed: bool, now: &Now<'_>) -> Vec<String> {
    let Some(rec) = record else {
        let why = if failed {
            "its last run did not succeed"
        } else {
            "first run"
        };
        return vec![why.to_string()];
    };
    let mut why = definition_changes(&rec.definition, now.definition);
    file_changes(&rec.sources, now.sources, now.source_digests, "", &mut why);
    for p in &now.outputs.unmatched {
        why.push(format!("output {p} missing"));
    }
    let (files, digests) = (&now.outputs.files, now.output_digests);
    file_changes(&rec.outputs, files, digests, "output ", &mut why);
    why
}

fn definition_changes(
    old: &[(String, String, Digest)],
    new: &[(String, String, Digest)],
) -> Vec<String> {
    let mut why = Vec::new();
    let label = |kind: &str, name: &str| match kind {
        "commands" | "dir" => kind.to_string(),
        "sources" | "outputs" => format!("{kind} patterns"),
        _ => format!("{kind} {name}"),
    };
    for (kind, name, d) in new {
        match old.iter().find(|(k, n, _)| k == kind && n == name) {
            Some((_, _, od)) if od == d => {}
            Some(_) => why.push(format!("{} changed", label(kind, name))),
            None => why.push(format!("{} added", label(kind, name))),
        }
    }
    for (kind, name, _) in old {
        if !new.iter().any(|(k, n, _)| k == kind && n == name) {
            why.push(format!("{} removed", label(kind, name)));
        }
    }
    why
}

/// Changed, added and removed files between a record and now (both sorted by path).
fn file_changes(
    old: &[(PathBuf, Digest)],
    new: &[File],
    digests: &[Option<Digest>],
    prefix: &str,
    why: &mut Vec<String>,
) {
    let (mut i, mut j) = (0, 0);
    let show = |p: &Path| p.display().to_string();
    let missing = if prefix.is_empty() {
        "removed"
    } else {
        "missing"
    };
    while i < old.len() || j < new.len() {
        let ord = match (old.get(i), new.get(j)) {
            (Some(o), Some(n)) => walk::bytes(&o.0).cmp(walk::bytes(&n.path)),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match ord {
            std::cmp::Ordering::Less => {
                why.push(format!("{prefix}{} {missing}", show(&old[i].0)));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                why.push(format!("{prefix}{} added", show(&new[j].path)));
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                match digests[j] {
                    Some(d) if d == old[i].1 => {}
                    Some(_) => why.push(format!("{prefix}{} changed", show(&new[j].path))),
                    None => why.push(format!("{prefix}{} unreadable", show(&new[j].path))),
                }
                i += 1;
                j += 1;
            }
        }
    }
}

/// Before a unit's commands: the check of a local task with `sources`. Emits `Checked`.
/// Some(None): up to date, skip; Some(pending): run, and commit `pending` on success;
/// None: no check.
pub fn before_unit(ctx: &Ctx<'_>, task: &Task, name: &Name, host: &Name) -> Gate {
    let Some(decision) = ctx.run.uptodate.check(task, ctx.run) else {
        return Gate::Run(None);
    };
    let (up_to_date, reasons, pending) = match decision {
        Decision::Skip(r) => (true, r, None),
        Decision::Run { reasons, pending } => (false, reasons, pending),
    };
    ctx.recorder.emit(Event::Checked {
        task: name.clone(),
        host: host.clone(),
        up_to_date,
        reasons,
    });
    if up_to_date {
        Gate::UpToDate
    } else {
        Gate::Run(pending)
    }
}

/// What a unit does after its checks.
pub enum Gate {
    UpToDate,
    Run(Option<Pending>),
}

/// Whether `task` or one of its commands has `creates` or `unless`.
pub fn guarded(task: &Task) -> bool {
    !task.checks.guard.is_empty() || task.commands.iter().any(|c| !c.guard.is_empty())
}

/// Check every `creates` / `unless` of `task` on the unit's target with one run of
/// `probe` (script, whether it may hold a secret). None when the task has no guards.
/// Emits `Checked` when the task's own guard holds.
pub fn guards(
    ctx: &Ctx<'_>,
    task: &Task,
    name: &Name,
    host: &Name,
    vars: &crate::config::template::Context,
    probe: impl FnOnce(&str, bool) -> (ExecResult, crate::exec::Collected),
) -> Result<Option<guard::Verdict>, Failure> {
    let plan = match guard::Plan::of(task, vars) {
        Ok(Some(p)) => p,
        Ok(None) => return Ok(None),
        Err(msg) => return Err(Failure::Spawn(Cause::new(msg))),
    };
    let (result, out) = probe(&plan.script(), plan.secret);
    log::debug!("uptodate: {name} on {host}: creates/unless checked in one shell: {result:?}");
    let verdict = match result {
        ExecResult::Exited(_) | ExecResult::Signaled(_) => plan.verdict(&out.stdout),
        ExecResult::TimedOut => Err(String::new()),
        other => return Err(exec_failure(other, ctx.run, task)),
    };
    let v = verdict.map_err(|m| match m.is_empty() {
        true => exec_failure(ExecResult::TimedOut, ctx.run, task),
        false => {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.lines().last().unwrap_or("").to_string();
            Failure::Spawn(Cause::new(format!("{m} {last}").trim_end().to_string()))
        }
    })?;
    if let Some(why) = &v.task {
        ctx.recorder.emit(Event::Checked {
            task: name.clone(),
            host: host.clone(),
            up_to_date: true,
            reasons: vec![why.clone()],
        });
    }
    Ok(Some(v))
}

/// The failure of a check script that did not run to its end (it is bounded by the
/// task's deadline alone).
fn exec_failure(r: ExecResult, run: &RunInfo, task: &Task) -> Failure {
    let limit = run.task_timeout(task).unwrap_or_default();
    let from = run.task_timeout_from(task);
    match r {
        ExecResult::TimedOut => Failure::Timeout {
            limit,
            task_limit: true,
            from,
            connecting: None,
        },
        ExecResult::ConnectTimedOut(c) => Failure::Timeout {
            limit,
            task_limit: true,
            from,
            connecting: Some(c),
        },
        ExecResult::Cancelled => Failure::Cancelled,
        ExecResult::ConnectError(c) => Failure::Connect(c),
        ExecResult::SpawnError(c) => Failure::Spawn(c),
        ExecResult::Exited(c) => Failure::Exit(c),
        ExecResult::Signaled(s) => Failure::Signal(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_changes_name_what_changed_was_added_and_removed() {
        let p = |s: &str| PathBuf::from(s);
        let f = |s: &str| File {
            path: p(s),
            stat: Default::default(),
        };
        let old = vec![(p("a"), [1; 16]), (p("b"), [2; 16]), (p("c"), [3; 16])];
        let new = vec![f("a"), f("b"), f("d")];
        let digests = [Some([1; 16]), Some([9; 16]), Some([4; 16])];
        let mut why = Vec::new();
        file_changes(&old, &new, &digests, "", &mut why);
        assert_eq!(why, ["b changed", "c removed", "d added"]);
        let mut why = Vec::new();
        file_changes(&old[..1], &[], &[], "output ", &mut why);
        assert_eq!(why, ["output a missing"]);
    }

    #[test]
    fn many_reasons_are_shortened() {
        let r: Vec<String> = (0..9).map(|i| i.to_string()).collect();
        assert_eq!(shorten(r), ["0", "1", "2", "3", "and 5 more changes"]);
    }
}
