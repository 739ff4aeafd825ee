//! Globs to files: `sources` and `outputs` patterns (relative to the project root, `*`
//! within one path component, `**` across them, as git and go-task read them) become a
//! sorted list of files with what `lstat` says about each. A pattern without glob
//! characters is one `stat`; the others walk only below their literal prefix, and only
//! as deep as they can match, on several threads. Symbolic links to files count as
//! those files; links to directories are not followed (no loops).
//! Must not: read file contents (hash.rs does) or decide anything.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use crate::glob::{Glob, GlobSet};

/// What `stat` says about a file: enough to tell that it changed without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    pub size: u64,
    /// Nanoseconds since the epoch.
    pub mtime: i64,
    pub ctime: i64,
    pub ino: u64,
    pub dev: u64,
}

impl Stat {
    pub fn of(m: &std::fs::Metadata) -> Stat {
        Stat {
            size: m.size(),
            mtime: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            ino: m.ino(),
            dev: m.dev(),
        }
    }
}

/// One file a pattern matched: its path relative to the project root, `/`-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub path: PathBuf,
    pub stat: Stat,
}

/// The files of a list of patterns, and the patterns that matched none.
#[derive(Debug, Default)]
pub struct Expanded {
    pub files: Vec<File>,
    pub unmatched: Vec<String>,
}

const META: &[char] = &['*', '?', '[', '{'];

/// Whether `g` is a glob nexus can use; why not otherwise.
pub fn check_glob(g: &str) -> Result<(), String> {
    if g.starts_with('/') {
        return Err("is absolute".into());
    }
    Glob::new(g, true)
        .map(|_| ())
        .map_err(|e| format!("is not a valid glob: {e}"))
}

/// Where a pattern's walk starts and how deep it may go.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Root {
    base: PathBuf,
    /// Levels of directories below `base` to read (1: only `base` itself).
    depth: usize,
}

/// A pattern's literal prefix and its depth; None for a pattern without glob characters.
fn root_of(pattern: &str) -> Option<Root> {
    let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
    let first_glob = parts.iter().position(|p| p.contains(META))?;
    let rest = &parts[first_glob..];
    let depth = if rest.contains(&"**") {
        usize::MAX
    } else {
        rest.len()
    };
    Some(Root {
        base: parts[..first_glob].iter().collect(),
        depth,
    })
}

/// Drop roots that another root's walk covers.
fn merge(mut roots: Vec<Root>) -> Vec<Root> {
    roots.sort_by(|a, b| a.base.cmp(&b.base).then(b.depth.cmp(&a.depth)));
    let mut out: Vec<Root> = Vec::new();
    for r in roots {
        let covered = out.iter().any(|o| {
            r.base.starts_with(&o.base) && {
                let below = r.base.components().count() - o.base.components().count();
                o.depth == usize::MAX || r.depth.saturating_add(below) <= o.depth
            }
        });
        if !covered {
            out.push(r);
        }
    }
    out
}

/// The files `patterns` match under `root`, sorted by path, each once.
pub fn expand(root: &Path, patterns: &[String]) -> Expanded {
    let mut set = GlobSet::default();
    let mut roots = Vec::new();
    let mut literal = Vec::new();
    // Each pattern's glob, compiled once: for the walk, then for the unmatched check.
    let mut globs = Vec::with_capacity(patterns.len());
    for p in patterns {
        let mut compiled = None;
        match root_of(p) {
            Some(r) => {
                compiled = Glob::new(p, true).ok();
                if let Some(g) = &compiled {
                    set.add(g.clone());
                }
                roots.push(r);
            }
            None => literal.push(PathBuf::from(p.trim_end_matches('/'))),
        }
        globs.push(compiled);
    }
    let mut files: Vec<File> = literal.iter().filter_map(|p| file_at(root, p)).collect();
    if !roots.is_empty() {
        files.extend(walk(root, &merge(roots), &set));
    }
    // By bytes, not by components: much cheaper, and every list is sorted the same way.
    files.sort_unstable_by(|a, b| bytes(&a.path).cmp(bytes(&b.path)));
    files.dedup_by(|a, b| a.path == b.path);
    let unmatched = patterns
        .iter()
        .zip(&globs)
        .filter(|(p, g)| !matches_any(p, g.as_ref(), &files))
        .map(|(p, _)| p.clone())
        .collect();
    Expanded { files, unmatched }
}

/// Whether `pattern` (a path, or a glob compiled as `glob`) names one of `files`.
fn matches_any(pattern: &str, glob: Option<&Glob>, files: &[File]) -> bool {
    match root_of(pattern) {
        None => {
            let p = Path::new(pattern.trim_end_matches('/'));
            files
                .binary_search_by(|f| bytes(&f.path).cmp(bytes(p)))
                .is_ok()
        }
        Some(_) => glob.is_some_and(|g| files.iter().any(|f| g.is_match(&f.path))),
    }
}

/// A path's bytes: the order every file list is kept in.
pub fn bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

/// `rel` under `root` when it is a file (or a link to one).
fn file_at(root: &Path, rel: &Path) -> Option<File> {
    let m = std::fs::metadata(root.join(rel)).ok()?;
    m.is_file().then(|| File {
        path: rel.to_path_buf(),
        stat: Stat::of(&m),
    })
}

/// Directories still to read, shared by the walking threads.
struct Queue {
    dirs: VecDeque<(PathBuf, usize)>,
    /// Threads reading a directory now (they may add more).
    busy: usize,
}

/// Walk `roots` on several threads; the files `set` matches.
fn walk(root: &Path, roots: &[Root], set: &GlobSet) -> Vec<File> {
    let queue = Mutex::new(Queue {
        dirs: roots.iter().map(|r| (r.base.clone(), r.depth)).collect(),
        busy: 0,
    });
    let more = Condvar::new();
    let threads = super::hash::threads().min(8);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| walker(root, set, &queue, &more)))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    })
}

fn walker(root: &Path, set: &GlobSet, queue: &Mutex<Queue>, more: &Condvar) -> Vec<File> {
    let mut found = Vec::new();
    let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some((dir, depth)) = q.dirs.pop_front() {
            q.busy += 1;
            drop(q);
            let subdirs = read_dir(root, &dir, depth, set, &mut found);
            q = queue.lock().unwrap_or_else(|e| e.into_inner());
            q.busy -= 1;
            q.dirs.extend(subdirs);
            more.notify_all();
            continue;
        }
        if q.busy == 0 {
            more.notify_all();
            return found;
        }
        q = more.wait(q).unwrap_or_else(|e| e.into_inner());
    }
}

/// The matching files of one directory; its subdirectories to read next.
fn read_dir(
    root: &Path,
    dir: &Path,
    depth: usize,
    set: &GlobSet,
    found: &mut Vec<File>,
) -> Vec<(PathBuf, usize)> {
    let mut subdirs = Vec::new();
    let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
        return subdirs;
    };
    for e in entries.flatten() {
        let Ok(kind) = e.file_type() else { continue };
        let rel = join(dir, e.file_name());
        if kind.is_dir() {
            if depth > 1 {
                let below = if depth == usize::MAX {
                    depth
                } else {
                    depth - 1
                };
                subdirs.push((rel, below));
            }
            continue;
        }
        if !set.is_match(&rel) {
            continue;
        }
        let meta = if kind.is_symlink() {
            std::fs::metadata(e.path())
        } else {
            e.metadata()
        };
        match meta {
            Ok(m) if m.is_file() => found.push(File {
                path: rel,
                stat: Stat::of(&m),
            }),
            _ => {}
        }
    }
    subdirs
}

/// `dir/name`, without a leading `./` when `dir` is empty.
fn join(dir: &Path, name: OsString) -> PathBuf {
    if dir.as_os_str().is_empty() {
        return PathBuf::from(name);
    }
    let mut v = dir.as_os_str().as_bytes().to_vec();
    v.push(b'/');
    v.extend_from_slice(&name.into_vec());
    PathBuf::from(OsString::from_vec(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_start_at_the_literal_prefix_and_go_as_deep_as_needed() {
        let r = |p| root_of(p).map(|r| (r.base.display().to_string(), r.depth));
        assert_eq!(r("src/main.rs"), None);
        assert_eq!(r("src/**"), Some(("src".into(), usize::MAX)));
        assert_eq!(r("src/*/x.rs"), Some(("src".into(), 2)));
        assert_eq!(r("*.json"), Some(("".into(), 1)));
        let m = merge(vec![
            root_of("src/a/*.rs").unwrap(),
            root_of("src/**").unwrap(),
            root_of("*.json").unwrap(),
        ]);
        assert_eq!(m.len(), 2, "{m:?}");
    }

    #[test]
    fn stars_stay_within_a_component_and_double_stars_cross() {
        let d = std::env::temp_dir().join(format!("nexus-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for f in ["a.rs", "src/b.rs", "src/x/c.rs", "src/x/y/d.txt", "p.json"] {
            let p = d.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        let names = |pats: &[&str]| {
            let pats: Vec<String> = pats.iter().map(|s| s.to_string()).collect();
            let e = expand(&d, &pats);
            let files: Vec<String> = e
                .files
                .iter()
                .map(|f| f.path.display().to_string())
                .collect();
            (files, e.unmatched)
        };
        assert_eq!(names(&["*.rs"]).0, ["a.rs"]);
        assert_eq!(names(&["src/*.rs"]).0, ["src/b.rs"]);
        assert_eq!(
            names(&["src/**/*.rs", "p.json"]).0,
            ["p.json", "src/b.rs", "src/x/c.rs"]
        );
        assert_eq!(
            names(&["src/**"]).0,
            ["src/b.rs", "src/x/c.rs", "src/x/y/d.txt"]
        );
        assert_eq!(names(&["nope/**", "a.rs"]).1, ["nope/**"]);
        let _ = std::fs::remove_dir_all(&d);
    }
}
