//! The local side of file steps: what an upload covers (files with their mode, size and
//! SHA-256, symlinks with their target; `exclude` globs skip paths), the tar stream that
//! carries the changed ones, and unpacking a download beside its destination.
//! Must not: run anything on a target.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::scripts::Found;
use super::Report;

#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the base on the target (`/`-separated).
    pub rel: String,
    pub kind: Kind,
    pub mode: u32,
    pub size: u64,
    /// Hex SHA-256 of a file's content (empty for links).
    pub sha256: String,
}

#[derive(Debug, Clone)]
pub enum Kind {
    File(PathBuf),
    Data(Vec<u8>),
    Link(String),
}

impl Entry {
    pub fn data(rel: String, data: Vec<u8>, mode: u32) -> Entry {
        Entry {
            rel,
            mode,
            size: data.len() as u64,
            sha256: hex(&Sha256::digest(&data)),
            kind: Kind::Data(data),
        }
    }

    /// Whether the target's `found` differs from this entry.
    pub fn differs(&self, found: Option<&Found>) -> bool {
        let Some(f) = found else { return true };
        match &self.kind {
            Kind::Link(target) => !f.is_link() || f.link.as_deref() != Some(target.as_str()),
            _ => {
                !f.is_file()
                    || f.size != self.size
                    || f.mode != self.mode & 0o7777
                    || f.sha256.as_deref() != Some(self.sha256.as_str())
            }
        }
    }

    /// The content, when it is small enough to hold for a diff.
    pub fn content(&self) -> Option<Vec<u8>> {
        match &self.kind {
            Kind::Data(d) => Some(d.clone()),
            Kind::File(p) if self.size <= 1024 * 1024 => std::fs::read(p).ok(),
            _ => None,
        }
    }
}

/// How many bytes of large file `e` the target already holds in its partial file (0
/// when there is none, or it is not a prefix of the file).
pub fn resumable(e: &Entry, found: &std::collections::HashMap<String, Found>) -> u64 {
    let Kind::File(path) = &e.kind else { return 0 };
    let Some(part) = found.get(&super::scripts::partial_name(&e.rel, &e.sha256)) else {
        return 0;
    };
    let (Some(hash), true) = (&part.sha256, part.size > 0 && part.size < e.size) else {
        return 0;
    };
    let prefix = std::fs::File::open(path).and_then(|f| {
        let mut h = Sha256::new();
        let mut rest = f.take(part.size);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = rest.read(&mut buf)?;
            if n == 0 {
                return Ok(hex(&h.finalize()));
            }
            h.update(&buf[..n]);
        }
    });
    match prefix {
        Ok(p) if p == *hash => part.size,
        _ => 0,
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a file, computed once per process for a given (path, size, mtime, ctime,
/// inode): the units of a run that upload the same file to many hosts share it, and
/// those that ask at the same time wait for the first.
fn sha256_cached(path: &Path, meta: &std::fs::Metadata) -> std::io::Result<String> {
    use std::os::unix::fs::MetadataExt;
    use std::sync::{Arc, Mutex, OnceLock};
    type Key = (PathBuf, u64, i64, i64, i64, i64, u64);
    type Slot = Arc<Mutex<Option<String>>>;
    static CACHE: OnceLock<Mutex<std::collections::HashMap<Key, Slot>>> = OnceLock::new();
    let key = (
        path.to_path_buf(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
        meta.ino(),
    );
    let slot = {
        let mut cache = CACHE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Arc::clone(cache.entry(key).or_default())
    };
    // Held while hashing: others asking for the same file wait for this result.
    let mut held = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(h) = held.as_ref() {
        return Ok(h.clone());
    }
    let h = sha256_file(path)?;
    *held = Some(h.clone());
    Ok(h)
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hex(&h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

fn name_ok(rel: &str) -> Result<(), String> {
    if rel.contains(['\n', '\t']) {
        return Err(format!(
            "cannot upload `{}`: its name has a tab or a newline",
            rel.escape_debug()
        ));
    }
    Ok(())
}

/// One local file (or symlink) as entry `rel`.
pub fn file_entry(path: &Path, rel: String, mode: Option<u32>) -> Result<Entry, String> {
    name_ok(&rel)?;
    let why = |e: std::io::Error| {
        format!(
            "cannot read `{}`: {}",
            path.display(),
            crate::error::io_reason(&e)
        )
    };
    let meta = std::fs::symlink_metadata(path).map_err(why)?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).map_err(why)?;
        return Ok(Entry {
            rel,
            kind: Kind::Link(target.to_string_lossy().into_owned()),
            mode: 0o777,
            size: 0,
            sha256: String::new(),
        });
    }
    use std::os::unix::fs::PermissionsExt;
    Ok(Entry {
        rel,
        mode: mode.unwrap_or(meta.permissions().mode() & 0o7777),
        size: meta.len(),
        sha256: sha256_cached(path, &meta).map_err(why)?,
        kind: Kind::File(path.to_path_buf()),
    })
}

/// Every file and symlink under `dir` but those `exclude` matches, in name order.
pub fn scan_dir(dir: &Path, exclude: &[String], mode: Option<u32>) -> Result<Vec<Entry>, String> {
    let mut set = crate::glob::GlobSet::default();
    for g in exclude {
        let glob = crate::glob::Glob::new(g, false)
            .map_err(|e| format!("`exclude` pattern `{g}`: {e}"))?;
        set.add(glob);
    }
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, rel)) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(&path)
            .map_err(|e| {
                format!(
                    "cannot read `{}`: {}",
                    path.display(),
                    crate::error::io_reason(&e)
                )
            })?
            .filter_map(Result::ok)
            .collect();
        names.sort_by_key(|d| d.file_name());
        for d in names.into_iter().rev() {
            let name = d.file_name().to_string_lossy().into_owned();
            let child_rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if set.is_match(&child_rel) || set.is_match(&name) {
                continue;
            }
            let ft = d.file_type().map_err(|e| e.to_string())?;
            if ft.is_dir() {
                stack.push((d.path(), child_rel));
            } else if ft.is_file() || ft.is_symlink() {
                out.push(file_entry(&d.path(), child_rel, mode)?);
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

/// The manifest the apply script reads: for each directory holding entries (parents
/// first), `DIR<TAB>NAME<TAB>NAME...` (`.` for the base).
pub fn manifest(entries: &[Entry]) -> String {
    let mut dirs: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for e in entries {
        let (dir, name) = e.rel.rsplit_once('/').unwrap_or((".", e.rel.as_str()));
        dirs.entry(dir).or_default().push(name);
    }
    let mut out = String::new();
    for (dir, names) in dirs {
        out += dir;
        for n in names {
            out.push('\t');
            out += n;
        }
        out.push('\n');
    }
    out
}

/// The entries as a tar stream into `w`, led by their manifest.
pub fn write_tar(w: impl std::io::Write, entries: &[Entry]) -> std::io::Result<()> {
    let mut b = tar::Builder::new(w);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let list = manifest(entries);
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o600);
    h.set_mtime(now);
    h.set_size(list.len() as u64);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, ".nexus-manifest", list.as_bytes())?;
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(e.mode);
        h.set_mtime(now);
        match &e.kind {
            Kind::Link(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, &e.rel, target)?;
            }
            Kind::Data(d) => {
                h.set_size(d.len() as u64);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, &e.rel, d.as_slice())?;
            }
            Kind::File(p) => {
                let f = std::fs::File::open(p)?;
                let size = f.metadata()?.len();
                if size != e.size {
                    return Err(std::io::Error::other(format!(
                        "`{}` changed while it was being sent",
                        p.display()
                    )));
                }
                h.set_size(size);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, &e.rel, f)?;
            }
        }
    }
    b.into_inner()?.flush()
}

/// Unpack the tar stream in `tarball` to `to`: a directory's contents under `to`, or
/// the one file at `to` (inside it when `into_dir`). Only files that differ are written
/// (to a temporary name beside them, then renamed).
pub fn unpack(tarball: &Path, to: &Path, into_dir: bool, dry_run: bool) -> Result<Report, String> {
    let file = std::fs::File::open(tarball).map_err(|e| e.to_string())?;
    let mut archive = tar::Archive::new(file);
    let mut report = Report::default();
    let entries = archive
        .entries()
        .map_err(|e| format!("cannot read what the target sent: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("cannot read what the target sent: {e}"))?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let rel: PathBuf = path
            .components()
            .filter(|c| matches!(c, std::path::Component::Normal(_)))
            .collect();
        if rel.as_os_str().is_empty() {
            continue;
        }
        let single = !path.starts_with(".");
        let dest = match (single, into_dir) {
            (true, false) => to.to_path_buf(),
            _ => to.join(&rel),
        };
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            if !dry_run {
                std::fs::create_dir_all(&dest)
                    .map_err(|e| format!("cannot create `{}`: {e}", dest.display()))?;
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        report.total += 1;
        let mode = entry.header().mode().unwrap_or(0o644);
        let size = entry.header().size().unwrap_or(0);
        // Streamed: a file is hashed (and, unless dry, written beside its target) as it
        // comes, never held whole in memory.
        let staged = if dry_run {
            None
        } else {
            Some(temp_beside(&dest)?)
        };
        let new_hash = copy_hashing(&mut entry, staged.as_ref().map(|(_, f)| f)).map_err(|e| {
            format!(
                "cannot write `{}`: {}",
                dest.display(),
                crate::error::io_reason(&e)
            )
        })?;
        let old_same = std::fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == size)
            && sha256_file(&dest).is_ok_and(|h| h == new_hash);
        if old_same {
            if let Some((tmp, _)) = staged {
                let _ = std::fs::remove_file(tmp);
            }
            continue;
        }
        report.changed = true;
        report.files += 1;
        report.bytes += size;
        if let Some((tmp, f)) = staged {
            finish_atomic(&tmp, f, &dest, mode)?;
        }
    }
    Ok(report)
}

/// A new private file beside `dest` (its directory created).
fn temp_beside(dest: &Path) -> Result<(PathBuf, std::fs::File), String> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let tmp = dir.join(format!(
        ".nexus-new.{}.{}",
        std::process::id(),
        dest.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    std::fs::File::create(&tmp).map(|f| (tmp, f)).map_err(|e| {
        format!(
            "cannot write in `{}`: {}",
            dir.display(),
            crate::error::io_reason(&e)
        )
    })
}

/// Copy `from` into `to` (when given), returning the hex SHA-256 of what passed.
fn copy_hashing(from: &mut impl Read, to: Option<&std::fs::File>) -> std::io::Result<String> {
    use std::io::Write;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut out = to;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(hex(&h.finalize()));
        }
        h.update(&buf[..n]);
        if let Some(f) = out.as_mut() {
            f.write_all(&buf[..n])?;
        }
    }
}

/// Give the staged file its mode, sync it and rename it over `dest`.
fn finish_atomic(tmp: &Path, f: std::fs::File, dest: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |e: std::io::Error| {
        let _ = std::fs::remove_file(tmp);
        format!(
            "cannot write `{}`: {}",
            dest.display(),
            crate::error::io_reason(&e)
        )
    };
    f.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
        .map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(tmp, dest).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_lists_directories_parents_first() {
        let e = |rel: &str| Entry::data(rel.to_string(), Vec::new(), 0o644);
        let entries = [e("a/b/c.txt"), e("top"), e("a-x/y"), e("a/one"), e("a/two")];
        assert_eq!(
            manifest(&entries),
            ".\ttop\na\tone\ttwo\na-x\ty\na/b\tc.txt\n"
        );
    }
}
