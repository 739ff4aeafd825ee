//! Run state under `$NEXUS_HOME` (default `$XDG_STATE_HOME/nexus`, else
//! `~/.local/state/nexus`): per-run journals (`runs/<id>.jsonl`), per-target run
//! counters (`counters.json`), the history read back from journals (`history`), and what
//! a resume starts from (`resume`). Directories are 0700, files 0600.
//! Must not: run commands.

pub mod history;
pub mod journal;
pub mod record;
pub mod resume;
pub mod survivors;

use std::path::{Path, PathBuf};

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

/// The project a nexus.toml belongs to: the absolute directory holding it, symlinks
/// resolved, so that every way of reaching it names the same project.
pub fn project_of(config_path: &Path) -> String {
    let file = std::fs::canonicalize(config_path).unwrap_or_else(|_| config_path.to_path_buf());
    let dir = file.parent().unwrap_or(Path::new("/"));
    dir.display().to_string()
}

/// Which runs a history question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// The runs of one project (its root, as `project_of` names it).
    Project(&'a str),
    /// Every project's runs.
    All,
}

impl Scope<'_> {
    pub fn includes(&self, header: &record::RunHeader) -> bool {
        match self {
            Scope::Project(p) => header.project() == *p,
            Scope::All => true,
        }
    }

    /// From a journal's file name alone: Some(false) when its tag says it is another
    /// project's, Some(true) when it may be in scope, None when the name has no tag
    /// (read the header).
    pub fn may_include(&self, path: &Path) -> Option<bool> {
        match (self, journal_name(path)?.1) {
            (Scope::All, _) => Some(true),
            (Scope::Project(p), Some(tag)) => Some(tag == project_tag(p)),
            (Scope::Project(_), None) => None,
        }
    }
}

pub fn runs_dir(home: &Path) -> PathBuf {
    home.join("runs")
}

/// The journal of a new run: `runs/RUN_ID.TAG.jsonl`, TAG naming its project (see
/// `project_tag`) so that a project's journals are told apart by name, without reading.
pub fn journal_path(home: &Path, run_id: &str, project: &str) -> PathBuf {
    runs_dir(home).join(format!("{run_id}.{}.jsonl", project_tag(project)))
}

/// Eight hex digits naming a project in journal file names (FNV-1a of its path). Two
/// projects sharing a tag would only share retention; everything that decides what runs
/// reads the project from the journal itself.
pub fn project_tag(project: &str) -> String {
    let h = project.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{h:08x}")
}

/// (run id, project tag) of a journal file name; the tag is None for journals written
/// before projects (`RUN_ID.jsonl`).
pub fn journal_name(path: &Path) -> Option<(&str, Option<&str>)> {
    let name = path.file_name()?.to_str()?.strip_suffix(".jsonl")?;
    Some(match name.split_once('.') {
        Some((id, tag)) => (id, Some(tag)),
        None => (name, None),
    })
}

/// The journal of run `id`, wherever its project tag puts it.
fn find_journal(home: &Path, id: &str) -> Option<PathBuf> {
    let legacy = runs_dir(home).join(format!("{id}.jsonl"));
    if legacy.exists() {
        return Some(legacy);
    }
    std::fs::read_dir(runs_dir(home))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| journal_name(p).is_some_and(|(i, _)| i == id))
}

/// Whether `id` has the form of a run id (`20261124T180741123Z-1a2b`): anything else
/// could name a file outside the runs directory.
pub fn valid_run_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 24
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..18].iter().all(u8::is_ascii_digit)
        && &b[18..20] == b"Z-"
        && b[20..]
            .iter()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

/// The journal of run `id`, which must have a run id's form and exist.
pub fn checked_journal_path(home: &Path, id: &str) -> Result<PathBuf, Error> {
    if !valid_run_id(id) {
        return Err(Error::usage(format!("`{id}` is not a run id"))
            .with_help("run ids look like 20261124T180741123Z-1a2b; `nexus runs` lists them"));
    }
    find_journal(home, id).ok_or_else(|| {
        Error::usage(format!("no run `{id}` in {}", runs_dir(home).display()))
            .with_help("`nexus runs` lists the runs")
    })
}

/// Create `dir` (and parents) as 0700 when missing.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
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
    use std::collections::BTreeMap;
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    private_dir(home).map_err(|e| unusable("create", home, &e))?;
    let path = home.join("counters.json");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| unusable("open", &path, &e))?;
    crate::sys::lock_exclusive(&f).map_err(|e| unusable("lock", &path, &e))?;
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
    log::debug!("state: counter `{key}` is now {n} ({})", path.display());
    Ok(n)
}

/// The counter key of a set of targets: their names, sorted, space-separated.
/// The counters.json key of a project's runs of these targets.
pub fn counter_key(project: &str, targets: &[String]) -> String {
    format!("{project}\n{}", target_key(targets))
}

pub fn target_key(targets: &[String]) -> String {
    let mut t = targets.to_vec();
    t.sort();
    t.dedup();
    t.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_checked() {
        assert!(valid_run_id("20261124T180741123Z-1a2b"));
        assert!(!valid_run_id("../../etc/passwd"));
        assert!(!valid_run_id("20261124T180741123Z-1A2B"));
        assert!(!valid_run_id("20261124T180741123Z-1a2b/"));
    }

    #[test]
    fn target_keys_ignore_order() {
        assert_eq!(target_key(&["b".into(), "a".into(), "b".into()]), "a b");
    }
}
