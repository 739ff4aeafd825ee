//! Artifacts (docs/nexus-toml.md, "Artifacts"): after a task with `artifacts` succeeds
//! on a target, its files are collected into the run's staging area,
//! `$NEXUS_HOME/runs/RUN_ID.artifacts/TASK/HOST/PATH`; before a task that depends on it
//! runs on a target, they are put under that task's working directory through the file
//! step engine (src/transfer), so only files that differ move. Staged files belong to
//! their run: a resumed run finds them there, `nexus runs gc` removes them with it.
//! Must not: print (what happened goes out as events), or read files outside the working
//! directory and the staging area.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::config::model::{FileKind, FileStep, Spanned};
use crate::config::template::Template;
use crate::config::{Config, Task};
use crate::transfer::{self, Failed, Shell};

/// One staged file of one producer on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staged {
    /// Relative to the producer's working directory (`/`-separated).
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// Permission bits.
    pub mode: u32,
}

/// The artifacts a run staged, per (task, host), as they were journaled: what its
/// consumers must get.
#[derive(Debug, Default)]
pub struct Ledger(Mutex<HashMap<(String, String), Vec<Staged>>>);

impl Ledger {
    /// A ledger holding what an interrupted run journaled (for `nexus resume`).
    pub fn from_journal(staged: HashMap<(String, String), Vec<Staged>>) -> Ledger {
        Ledger(Mutex::new(staged))
    }

    /// `task` staged `files` from `host`.
    pub fn record(&self, task: &str, host: &str, files: &[Staged]) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.insert((task.to_string(), host.to_string()), files.to_vec());
    }

    /// What `task` staged from `host` in this run, if it did.
    pub fn get(&self, task: &str, host: &str) -> Option<Vec<Staged>> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&(task.to_string(), host.to_string())).cloned()
    }
}

/// Check that the files staged under `staged` for `producer` on `host` are the ones its
/// run recorded (`recorded`, from the journal): the same paths, sizes, SHA-256 and
/// modes, nothing more. A consumer never gets a file that changed after staging.
pub fn verify(
    staged: &Path,
    producer: &str,
    host: &str,
    recorded: Option<&[Staged]>,
) -> Result<(), Failed> {
    let again = || Some(format!("run the producer again: nexus run {producer}"));
    let Some(recorded) = recorded else {
        return Err(failed(
            format!("the artifacts of task `{producer}` from {host} are staged in {}, but this run's journal has no record of them", staged.display()),
            again(),
        ));
    };
    let now = inventory(staged).map_err(|e| failed(e, None))?;
    let by_path: HashMap<&str, &Staged> = now.iter().map(|n| (n.path.as_str(), n)).collect();
    let refuse = |what: String| Err(failed(what, again()));
    let of = |path: &str| format!("artifact `{path}` of task `{producer}` from {host}");
    for r in recorded {
        let Some(n) = by_path.get(r.path.as_str()) else {
            return refuse(format!(
                "{}, staged in {}, is gone",
                of(&r.path),
                staged.display()
            ));
        };
        if n.sha256 != r.sha256 || n.size != r.size {
            return refuse(format!(
                "{} changed after this run staged it: SHA-256 {} ({} bytes) now, the journal has {} ({} bytes)",
                of(&r.path), n.sha256, n.size, r.sha256, r.size
            ));
        }
        if n.mode != r.mode {
            return refuse(format!(
                "{} changed after this run staged it: mode {:04o} now, the journal has {:04o}",
                of(&r.path),
                n.mode,
                r.mode
            ));
        }
    }
    let known: std::collections::HashSet<&str> = recorded.iter().map(|r| r.path.as_str()).collect();
    if let Some(extra) = now.iter().find(|n| !known.contains(n.path.as_str())) {
        return refuse(format!(
            "`{}` in the staged artifacts of task `{producer}` from {host} ({}) was not staged by the task",
            extra.path,
            staged.display()
        ));
    }
    Ok(())
}

/// The staging area of run `run_id`.
pub fn run_dir(home: &Path, run_id: &str) -> PathBuf {
    crate::state::runs_dir(home).join(format!("{run_id}{SUFFIX}"))
}

/// What a run's staging directory is called after its run id.
pub const SUFFIX: &str = ".artifacts";

/// Where `task`'s artifacts from `host` are staged.
pub fn host_dir(run_id: &str, task: &str, host: &str) -> PathBuf {
    run_dir(&crate::state::home(), run_id).join(task).join(host)
}

/// A file step that is not written in nexus.toml (its paths are given by the request).
fn step(kind: FileKind) -> FileStep {
    let none = || Spanned {
        value: Template::literal(""),
        span: 0..0,
        text_start: None,
    };
    FileStep {
        kind,
        from: none(),
        to: none(),
        exclude: Vec::new(),
        mode: None,
        owner: None,
        group: None,
        sudo: false,
        validate: None,
        vars: Vec::new(),
        body: None,
    }
}

fn request<'a>(
    step: &'a FileStep,
    from: String,
    to: String,
    root: &'a Path,
) -> transfer::Request<'a> {
    transfer::Request {
        step,
        from,
        to,
        validate: None,
        body: None,
        secret: false,
        root,
        dry_run: false,
        diff: false,
        progress: None,
    }
}

fn failed(what: String, help: Option<String>) -> Failed {
    let mut cause = crate::exec::Cause::new(what);
    if let Some(h) = help {
        cause = cause.help(h);
    }
    Failed {
        cause: transfer::Stop::Failed(cause),
        output: Vec::new(),
    }
}

fn missing(task: &str, host: &str, pattern: &str, dir: &str) -> Failed {
    let glob = pattern.contains(['*', '?', '[', '{']);
    let what = if glob {
        format!("artifact `{pattern}` of task `{task}` matched no file on {host} (in {dir})")
    } else {
        format!("artifact `{pattern}` of task `{task}` does not exist on {host} (in {dir})")
    };
    failed(
        what,
        Some(
            "make the task write it, or correct the path in `artifacts` (relative to the task's working directory)".into(),
        ),
    )
}

/// The literal directory part of a glob (`.` when it starts with one).
fn glob_base(pattern: &str) -> String {
    let parts: Vec<&str> = pattern.split('/').collect();
    let first = parts
        .iter()
        .position(|p| p.contains(['*', '?', '[', '{']))
        .unwrap_or(parts.len());
    if first == 0 {
        ".".into()
    } else {
        parts[..first].join("/")
    }
}

fn matcher(pattern: &str) -> Option<crate::glob::Glob> {
    crate::glob::Glob::new(pattern, true).ok()
}

/// Lists what is under each argument: `F<TAB>PATH` for files and links (a directory's
/// files, found by `find`), `D<TAB>ARG` for an argument that is a directory, `?<TAB>ARG`
/// for one that does not exist.
const LIST: &str = r#"for p; do
  if [ -e "$p" ] || [ -L "$p" ]; then
    [ -d "$p" ] && printf 'D\t%s\n' "$p"
    find "$p" \( -type f -o -type l \) -print | sed 's/^/F	/'
  else printf '?\t%s\n' "$p"; fi
done
"#;

/// What to fetch: paths on the target, each a file or (true) a directory as a whole.
pub fn resolve(
    task: &str,
    host: &str,
    dir: &str,
    patterns: &[String],
    shell: &mut dyn Shell,
) -> Result<Vec<(String, bool)>, Failed> {
    let args: Vec<String> = patterns
        .iter()
        .map(|p| {
            if p.contains(['*', '?', '[', '{']) {
                glob_base(p)
            } else {
                p.trim_end_matches('/').to_string()
            }
        })
        .collect();
    let mut out = Vec::new();
    let ran = shell.run(LIST, &args, false, &mut std::io::empty(), &mut out)?;
    if ran.code != 0 {
        let text = String::from_utf8_lossy(&ran.stderr).trim().to_string();
        return Err(failed(
            format!(
                "cannot list the artifacts of task `{task}` on {host} (exit {}): {text}",
                ran.code
            ),
            None,
        ));
    }
    let text = String::from_utf8_lossy(&out);
    let absent: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("?\t")).collect();
    let dirs: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("D\t")).collect();
    let files: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("F\t"))
        .map(|f| f.strip_prefix("./").unwrap_or(f))
        .collect();
    let mut fetch = Vec::new();
    for (p, base) in patterns.iter().zip(&args) {
        match matcher(p).filter(|_| p.contains(['*', '?', '[', '{'])) {
            None => {
                if absent.contains(&base.as_str()) {
                    return Err(missing(task, host, p, dir));
                }
                fetch.push((base.clone(), dirs.contains(&base.as_str())));
            }
            Some(m) => {
                let hits: Vec<(String, bool)> = files
                    .iter()
                    .filter(|f| m.is_match(f))
                    .map(|f| (f.to_string(), false))
                    .collect();
                if hits.is_empty() {
                    return Err(missing(task, host, p, dir));
                }
                fetch.extend(hits);
            }
        }
    }
    fetch.sort();
    fetch.dedup();
    Ok(fetch)
}

/// Empty (or make) the staging directory of one producer on one host.
fn fresh(staged: &Path) -> Result<(), Failed> {
    if staged.exists() {
        std::fs::remove_dir_all(staged).map_err(|e| {
            failed(
                format!(
                    "cannot empty the staging directory {}: {}",
                    staged.display(),
                    crate::error::io_reason(&e)
                ),
                None,
            )
        })?;
    }
    std::fs::create_dir_all(staged).map_err(|e| {
        failed(
            format!(
                "cannot create the staging directory {}: {}",
                staged.display(),
                crate::error::io_reason(&e)
            ),
            None,
        )
    })
}

/// Collect `task`'s artifacts from the host behind `shell` (its working directory is the
/// shell's) into `staged` (emptied first) by downloads, and list what was staged. `dir`
/// names the working directory in messages.
pub fn collect(
    task: &Task,
    host: &str,
    dir: &str,
    staged: &Path,
    shell: &mut dyn Shell,
) -> Result<Vec<Staged>, Failed> {
    let paths = resolve(&task.name, host, dir, &task.artifacts, shell)?;
    fresh(staged)?;
    let download = step(FileKind::Download);
    for (p, is_dir) in &paths {
        // A directory comes whole (its contents under `p/`); a file as itself.
        let to = staged.join(p).display().to_string();
        let to = if *is_dir { format!("{to}/") } else { to };
        transfer::run(&request(&download, p.clone(), to, staged), shell)?;
    }
    inventory(staged).map_err(|e| failed(e, None))
}

/// Collect a local task's artifacts from `workdir` (`shell` runs there) into `staged`:
/// found like a host's, then copied (a stream per file, modes kept).
pub fn collect_local(
    task: &Task,
    workdir: &Path,
    staged: &Path,
    shell: &mut dyn Shell,
) -> Result<Vec<Staged>, Failed> {
    let dir = match &task.dir {
        Some(_) => format!("`{}`", workdir.display()),
        None => "the project root".to_string(),
    };
    let paths = resolve(&task.name, "local", &dir, &task.artifacts, shell)?;
    fresh(staged)?;
    for (p, _) in &paths {
        copy_tree(&workdir.join(p), &staged.join(p)).map_err(|e| failed(e, None))?;
    }
    inventory(staged).map_err(|e| failed(e, None))
}

/// Copy a file (or a directory's files and links) to `to`, modes kept.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    let why = |p: &Path, e: std::io::Error| {
        format!(
            "cannot stage `{}`: {}",
            p.display(),
            crate::error::io_reason(&e)
        )
    };
    let meta = std::fs::symlink_metadata(from).map_err(|e| why(from, e))?;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| why(parent, e))?;
    }
    if meta.is_dir() {
        std::fs::create_dir_all(to).map_err(|e| why(to, e))?;
        for entry in std::fs::read_dir(from).map_err(|e| why(from, e))? {
            let entry = entry.map_err(|e| why(from, e))?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else if meta.file_type().is_symlink() {
        let target = std::fs::read_link(from).map_err(|e| why(from, e))?;
        std::os::unix::fs::symlink(target, to).map_err(|e| why(to, e))?;
    } else {
        std::fs::copy(from, to).map_err(|e| why(from, e))?;
    }
    Ok(())
}

/// The files staged under `dir`, with size, SHA-256 and mode, by path.
pub fn inventory(dir: &Path) -> Result<Vec<Staged>, String> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    Ok(transfer::inventory(dir)?
        .into_iter()
        .map(|(path, size, sha256, mode)| Staged {
            path,
            size,
            sha256,
            mode,
        })
        .collect())
}

/// The dependencies of `task` whose artifacts it takes (those that declare some).
pub fn sources<'c>(config: &'c Config, task: &Task) -> Vec<&'c Task> {
    let from = task.artifacts_from.as_ref().unwrap_or(&task.deps);
    from.iter()
        .map(|&i| &config.tasks[i])
        .filter(|t| !t.artifacts.is_empty())
        .collect()
}

/// Where the artifacts of a producer go under the consumer's working directory: at their
/// own paths when the producer ran on one target, under `HOST/` when on several.
pub fn layout(hosts: &[String]) -> Vec<(String, String)> {
    match hosts {
        [one] => vec![(one.clone(), ".".into())],
        _ => hosts.iter().map(|h| (h.clone(), h.clone())).collect(),
    }
}

/// The hosts `producer`'s artifacts were staged from in run `run_id`, sorted.
pub fn staged_hosts(run_id: &str, producer: &str) -> Vec<String> {
    let dir = run_dir(&crate::state::home(), run_id).join(producer);
    let mut hosts: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    hosts.sort();
    hosts
}

/// Put the artifacts staged from `producer_host` under `to` on the target behind
/// `shell`: only files that differ move.
pub fn place(
    staged: &Path,
    to: &str,
    root: &Path,
    shell: &mut dyn Shell,
) -> Result<transfer::Report, Failed> {
    let upload = step(FileKind::Upload);
    let from = staged.display().to_string();
    transfer::run(&request(&upload, from, to.to_string(), root), shell)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_host_at_own_paths_several_under_host() {
        assert_eq!(
            layout(&["local".into()]),
            vec![("local".into(), ".".into())]
        );
        assert_eq!(
            layout(&["h1".into(), "h2".into()]),
            vec![("h1".into(), "h1".into()), ("h2".into(), "h2".into())]
        );
    }

    #[test]
    fn a_glob_is_listed_from_its_literal_directory() {
        assert_eq!(glob_base("dist/*.tar.gz"), "dist");
        assert_eq!(glob_base("*.txt"), ".");
        assert_eq!(glob_base("a/b/**/c"), "a/b");
    }
}
