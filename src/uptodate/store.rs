//! What the up-to-date checks keep under `$NEXUS_HOME/uptodate/PROJECT/` (docs/state.md,
//! "Up-to-date state"): `stat`, the stat cache (per file: size, mtime, ctime, inode,
//! device and content hash), and `tasks/TASK`, the record of each task's last success
//! (its definition's hashes, its sources' and outputs' hashes). Text files, one record a
//! line, paths last and length-prefixed (any byte but NUL may be in a file name).
//! Written whole to a temporary file (0600, in a 0700 directory) and renamed into
//! place, so a reader sees the old file or the new one. An unreadable or damaged file
//! counts as missing: it can only make a task run, never skip it.
//! Must not: decide anything (mod.rs does).

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::hash::{from_hex, hex, Digest};
use super::walk::Stat;

const STAT_MAGIC: &str = "nexus-stat-cache 1";
const TASK_MAGIC: &str = "nexus-uptodate 1";

/// A file's content hash and the stat it was taken under.
#[derive(Debug, Clone, Copy)]
pub struct Cached {
    pub stat: Stat,
    pub digest: Digest,
    /// Changed so shortly before it was hashed that a change in the same clock tick
    /// would not show in its stat: hashed again next time (git's "racily clean").
    pub racy: bool,
}

/// The stat cache of a project.
#[derive(Debug, Default)]
pub struct StatCache {
    /// By path (bytes: hashing a `Path` walks its components).
    pub entries: HashMap<OsString, Cached>,
    pub dirty: bool,
    /// Paths this process looked up or hashed (to prune the others, see `save`).
    pub seen: std::collections::HashSet<OsString>,
}

/// Above this many entries, `save` keeps only the paths this process used when they
/// are fewer than half: files that come and go (generated names) do not pile up.
const PRUNE_ABOVE: usize = 100_000;

/// A task's last success.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Record {
    /// (kind, name, hash): `commands`, `dir`, `env NAME`, `arg NAME`.
    pub definition: Vec<(String, String, Digest)>,
    /// Sorted by path.
    pub sources: Vec<(PathBuf, Digest)>,
    pub outputs: Vec<(PathBuf, Digest)>,
}

fn path_field(p: &Path) -> Vec<u8> {
    let b = p.as_os_str().as_bytes();
    let mut v = format!("{}:", b.len()).into_bytes();
    v.extend_from_slice(b);
    v
}

/// Split one record: the words before the length-prefixed tail, and the tail.
fn split_record(line: &[u8], words: usize) -> Option<(Vec<&str>, &[u8], &[u8])> {
    let mut rest = line;
    let mut out = Vec::with_capacity(words);
    for _ in 0..words {
        let sp = rest.iter().position(|&b| b == b' ')?;
        out.push(std::str::from_utf8(&rest[..sp]).ok()?);
        rest = &rest[sp + 1..];
    }
    let colon = rest.iter().position(|&b| b == b':')?;
    let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
    let tail = rest.get(colon + 1..colon + 1 + len)?;
    let after = rest.get(colon + 1 + len..)?;
    Some((out, tail, after.strip_prefix(b"\n")?))
}

fn to_path(b: &[u8]) -> PathBuf {
    PathBuf::from(std::ffi::OsString::from_vec(b.to_vec()))
}

impl StatCache {
    pub fn load(path: &Path) -> StatCache {
        let mut c = StatCache::default();
        let Ok(data) = std::fs::read(path) else {
            return c;
        };
        let Some(mut rest) = data.strip_prefix(format!("{STAT_MAGIC}\n").as_bytes()) else {
            return c;
        };
        while !rest.is_empty() {
            let Some((w, p, after)) = split_record(rest, 7) else {
                log::debug!("uptodate: {} is damaged; not used", path.display());
                return StatCache::default();
            };
            rest = after;
            let num = |i: usize| w[i].parse::<i64>().ok();
            let (Some(size), Some(mtime), Some(ctime), Some(ino), Some(dev)) =
                (num(0), num(1), num(2), num(3), num(4))
            else {
                continue;
            };
            let Some(digest) = from_hex(w[6]) else {
                continue;
            };
            let stat = Stat {
                size: size as u64,
                mtime,
                ctime,
                ino: ino as u64,
                dev: dev as u64,
            };
            let racy = w[5] == "1";
            let p = OsString::from_vec(p.to_vec());
            c.entries.insert(p, Cached { stat, digest, racy });
        }
        c
    }

    pub fn save(&mut self, path: &Path) {
        if self.entries.len() > PRUNE_ABOVE && self.seen.len() * 2 < self.entries.len() {
            let seen = &self.seen;
            self.entries.retain(|p, _| seen.contains(p));
        }
        let mut out = Vec::with_capacity(self.entries.len() * 96);
        out.extend_from_slice(STAT_MAGIC.as_bytes());
        out.push(b'\n');
        for (p, e) in &self.entries {
            let s = e.stat;
            out.extend_from_slice(
                format!(
                    "{} {} {} {} {} {} {} ",
                    s.size,
                    s.mtime,
                    s.ctime,
                    s.ino as i64,
                    s.dev as i64,
                    u8::from(e.racy),
                    hex(&e.digest)
                )
                .as_bytes(),
            );
            out.extend_from_slice(&path_field(Path::new(p)));
            out.push(b'\n');
        }
        if write_atomic(path, &out).is_ok() {
            self.dirty = false;
        }
    }
}

impl Record {
    pub fn load(path: &Path, task: &str) -> Option<Record> {
        let data = std::fs::read(path).ok()?;
        let mut rest = data.strip_prefix(format!("{TASK_MAGIC}\n").as_bytes())?;
        let (_, name, after) = split_record(rest, 1)?;
        if name != task.as_bytes() {
            return None;
        }
        rest = after;
        let mut r = Record::default();
        while !rest.is_empty() {
            let kind_end = rest.iter().position(|&b| b == b' ')?;
            let words = if &rest[..kind_end] == b"def" { 3 } else { 2 };
            let (w, tail, after) = split_record(rest, words)?;
            rest = after;
            match w[0] {
                "def" => r
                    .definition
                    .push((w[1].to_string(), lossy(tail), from_hex(w[2])?)),
                "src" => r.sources.push((to_path(tail), from_hex(w[1])?)),
                "out" => r.outputs.push((to_path(tail), from_hex(w[1])?)),
                _ => return None,
            }
        }
        Some(r)
    }

    pub fn save(&self, path: &Path, task: &str) -> std::io::Result<()> {
        let mut out = format!("{TASK_MAGIC}\ntask {}:{task}\n", task.len()).into_bytes();
        for (kind, name, d) in &self.definition {
            out.extend_from_slice(
                format!("def {kind} {} {}:{name}\n", hex(d), name.len()).as_bytes(),
            );
        }
        for (tag, list) in [("src", &self.sources), ("out", &self.outputs)] {
            for (p, d) in list {
                out.extend_from_slice(format!("{tag} {} ", hex(d)).as_bytes());
                out.extend_from_slice(&path_field(p));
                out.push(b'\n');
            }
        }
        write_atomic(path, &out)
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Write `data` to `path` through a private temporary file renamed over it.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    crate::state::private_dir(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(data)?;
        std::fs::rename(&tmp, path)
    };
    let r = write();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_caches_read_back_what_was_written() {
        let d = std::env::temp_dir().join(format!("nexus-store-{}", std::process::id()));
        let r = Record {
            definition: vec![
                ("commands".into(), String::new(), [1; 16]),
                ("env".into(), "A B".into(), [2; 16]),
            ],
            sources: vec![(PathBuf::from("src/a b\nc.rs"), [3; 16])],
            outputs: vec![(PathBuf::from("dist/x"), [4; 16])],
        };
        r.save(&d.join("tasks/t"), "build").unwrap();
        assert_eq!(Record::load(&d.join("tasks/t"), "build"), Some(r));
        assert_eq!(Record::load(&d.join("tasks/t"), "other"), None);
        let mut c = StatCache::default();
        let stat = Stat {
            size: 5,
            mtime: -3,
            ctime: 7,
            ino: u64::MAX,
            dev: 9,
        };
        c.entries.insert(
            OsString::from("x y"),
            Cached {
                stat,
                digest: [5; 16],
                racy: true,
            },
        );
        c.save(&d.join("stat"));
        let back = StatCache::load(&d.join("stat"));
        let e = back.entries[std::ffi::OsStr::new("x y")];
        assert_eq!((e.stat, e.digest, e.racy), (stat, [5; 16], true));
        let _ = std::fs::remove_dir_all(&d);
    }
}
