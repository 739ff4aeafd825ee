//! File steps (docs/nexus-toml.md, "Files"): `upload`, `template` and `download` on one
//! target. Each looks first (one script per host: sizes, modes and SHA-256 of the
//! candidates), then moves only what differs — many files as one tar stream, unpacked
//! beside their targets and renamed over them — and reports `changed` or `unchanged` with
//! the bytes moved. A dry run looks and reports, and can show a unified diff.
//! Must not: print (the report goes back as an event), or write outside the step's paths.

pub mod scripts;
pub mod shell;
mod source;

use std::io::Write;
use std::path::Path;

use crate::config::model::{FileKind, FileStep};
use crate::exec::Cause;
pub use shell::{Local, Ran, Shell, Stop};
use source::{Entry, Kind};

/// What a file step did (or, in a dry run, would do) on one target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub changed: bool,
    /// Files written (or that would be).
    pub files: usize,
    /// Files the step covers.
    pub total: usize,
    /// Bytes of file content moved.
    pub bytes: u64,
    /// Unified diffs of changed text files (dry run with `--diff`).
    pub diffs: Vec<String>,
}

/// A file step with its paths rendered for one target.
pub struct Request<'a> {
    pub step: &'a FileStep,
    pub from: String,
    pub to: String,
    /// The validator with `%s` standing for the new file.
    pub validate: Option<String>,
    /// The rendered template (template steps).
    pub body: Option<Vec<u8>>,
    /// The rendered template may hold a secret: no diff of it is shown.
    pub secret: bool,
    /// The project root: local paths are relative to it.
    pub root: &'a Path,
    pub dry_run: bool,
    pub diff: bool,
    /// Told (bytes sent, bytes to send) about once a second while more than
    /// `PROGRESS_MIN` bytes travel.
    pub progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
}

/// Transfers from this size on report their progress.
pub const PROGRESS_MIN: u64 = 8 * 1024 * 1024;

/// A reader that tells `progress` how far it got, at most once a second.
struct Counting<'a, R> {
    inner: R,
    sent: u64,
    total: u64,
    last: std::time::Instant,
    progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
}

impl<'a, R> Counting<'a, R> {
    fn new(
        inner: R,
        from: u64,
        total: u64,
        progress: Option<&'a (dyn Fn(u64, u64) + Sync)>,
    ) -> Self {
        Counting {
            inner,
            sent: from,
            total,
            last: std::time::Instant::now(),
            progress: progress.filter(|_| total >= PROGRESS_MIN),
        }
    }
}

impl<R: std::io::Read> std::io::Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n as u64;
        if let Some(p) = self.progress {
            if self.last.elapsed() >= std::time::Duration::from_secs(1) {
                self.last = std::time::Instant::now();
                p(self.sent.min(self.total), self.total);
            }
        }
        Ok(n)
    }
}

/// Why a step failed: what to say, and what the target printed (shown in the report).
#[derive(Debug)]
pub struct Failed {
    pub cause: Stop,
    pub output: Vec<u8>,
}

impl Failed {
    fn new(what: impl Into<String>) -> Failed {
        Failed {
            cause: Stop::Failed(Cause::new(what)),
            output: Vec::new(),
        }
    }
}

impl From<Stop> for Failed {
    fn from(cause: Stop) -> Failed {
        Failed {
            cause,
            output: Vec::new(),
        }
    }
}

/// Every file and symlink under the local directory `dir`: path relative to it, size,
/// SHA-256 (empty for a link) and mode. Hashes are shared with the uploads of the run.
pub fn inventory(dir: &Path) -> Result<Vec<(String, u64, String, u32)>, String> {
    Ok(source::scan_dir(dir, &[], None)?
        .into_iter()
        .map(|e| (e.rel, e.size, e.sha256, e.mode))
        .collect())
}

/// Run one file step on the target behind `shell`.
pub fn run(req: &Request<'_>, shell: &mut dyn Shell) -> Result<Report, Failed> {
    match req.step.kind {
        FileKind::Upload | FileKind::Template => put(req, shell),
        FileKind::Download => fetch(req, shell),
    }
}

/// Where uploaded entries go: the base directory on the target, and the entries with
/// paths relative to it.
fn layout(req: &Request<'_>) -> Result<(String, Vec<Entry>), Failed> {
    let to = req.to.as_str();
    if let Some(body) = &req.body {
        let mode = req.step.mode.unwrap_or(0o644);
        let (base, name) = split_target(to, &req.from)?;
        return Ok((base, vec![Entry::data(name, body.clone(), mode)]));
    }
    let src = req.root.join(&req.from);
    let meta = std::fs::metadata(&src).map_err(|e| {
        Failed::new(format!(
            "cannot read `{}`: {}",
            req.from,
            crate::error::io_reason(&e)
        ))
    })?;
    if meta.is_dir() {
        let base = to.trim_end_matches('/');
        let base = if base.is_empty() { "/" } else { base };
        let entries =
            source::scan_dir(&src, &req.step.exclude, req.step.mode).map_err(Failed::new)?;
        return Ok((base.to_string(), entries));
    }
    let (base, name) = split_target(to, &req.from)?;
    let entry = source::file_entry(&src, name, req.step.mode).map_err(Failed::new)?;
    Ok((base, vec![entry]))
}

/// `to` ending in `/` is a directory the file goes into, under its own name; else `to`
/// is the file.
fn split_target(to: &str, from: &str) -> Result<(String, String), Failed> {
    let own_name = || {
        Path::new(from.trim_end_matches('/'))
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".j2").to_string())
            .unwrap_or_default()
    };
    if to.ends_with('/') {
        return Ok((to.to_string(), own_name()));
    }
    match to.rsplit_once('/') {
        Some(("", name)) => Ok(("/".into(), name.into())),
        Some((dir, name)) => Ok((dir.into(), name.into())),
        None => Ok((".".into(), to.into())),
    }
}

fn put(req: &Request<'_>, shell: &mut dyn Shell) -> Result<Report, Failed> {
    let (base, entries) = layout(req)?;
    let mut want: String = entries
        .iter()
        .map(|e| match &e.kind {
            Kind::Link(_) => format!("-2\t{}\n", e.rel),
            _ => format!("{}\t{}\n", e.size, e.rel),
        })
        .collect();
    for e in entries.iter().filter(|e| e.size >= LARGE) {
        want += &format!("-1\t{}\n", scripts::partial_name(&e.rel, &e.sha256));
    }
    let mut listing = Vec::new();
    let ran = shell.run(
        scripts::PROBE,
        std::slice::from_ref(&base),
        req.step.sudo,
        &mut want.as_bytes(),
        &mut listing,
    )?;
    if ran.code != 0 {
        return Err(script_failed("look at the target", &base, ran));
    }
    let found = scripts::parse_probe(&listing);
    let changed: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.differs(found.get(&e.rel)))
        .collect();
    let (large, small): (Vec<&Entry>, Vec<&Entry>) = changed
        .iter()
        .partition(|e| e.size >= LARGE && matches!(e.kind, Kind::File(_)));
    let resumed: Vec<u64> = large.iter().map(|e| source::resumable(e, &found)).collect();
    let mut report = Report {
        changed: !changed.is_empty(),
        files: changed.len(),
        total: entries.len(),
        bytes: changed.iter().map(|e| e.size).sum::<u64>() - resumed.iter().sum::<u64>(),
        diffs: Vec::new(),
    };
    if req.dry_run {
        if req.diff && req.secret {
            report.diffs = changed
                .iter()
                .map(|e| {
                    format!(
                        "{}: not shown: the template uses a secret ({} bytes)\n",
                        join(&base, &e.rel),
                        e.size
                    )
                })
                .collect();
        } else if req.diff {
            report.diffs = diffs(&base, &changed, &found, req.step.sudo, shell);
        }
        return Ok(report);
    }
    if !small.is_empty() {
        send(req, shell, &base, &small)?;
    }
    for (e, from) in large.iter().zip(resumed) {
        send_large(req, shell, &base, e, from)?;
    }
    Ok(report)
}

/// Files from this size on travel on their own and survive an interruption: the next
/// run continues from what arrived.
pub const LARGE: u64 = 64 * 1024 * 1024;

/// One large file, from byte `from` on, through the PART script.
fn send_large(
    req: &Request<'_>,
    shell: &mut dyn Shell,
    base: &str,
    e: &Entry,
    from: u64,
) -> Result<(), Failed> {
    let Kind::File(path) = &e.kind else {
        return Ok(());
    };
    let file = std::fs::File::open(path).map_err(|err| {
        Failed::new(format!(
            "cannot read `{}`: {}",
            path.display(),
            crate::error::io_reason(&err)
        ))
    })?;
    let mut file = file;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(from))
        .map_err(|err| Failed::new(format!("cannot read `{}`: {err}", path.display())))?;
    let mut file = Counting::new(file, from, e.size, req.progress);
    let args = [
        base.to_string(),
        e.rel.clone(),
        e.sha256.clone(),
        from.to_string(),
        format!("{:o}", e.mode),
        req.step.owner.clone().unwrap_or_default(),
        req.step.group.clone().unwrap_or_default(),
        e.size.to_string(),
    ];
    let ran = shell.run(
        scripts::PART,
        &args,
        req.step.sudo,
        &mut file,
        &mut std::io::sink(),
    )?;
    if ran.code != 0 {
        return Err(script_failed("write the files", base, ran));
    }
    Ok(())
}

/// Write `changed` under `base` through the apply script, as one tar stream.
fn send(
    req: &Request<'_>,
    shell: &mut dyn Shell,
    base: &str,
    changed: &[&Entry],
) -> Result<(), Failed> {
    let validated = match (&req.validate, changed) {
        (Some(v), [one]) => (v.replace("%s", "\"$NEXUS_FILE\""), one.rel.clone()),
        _ => (String::new(), String::new()),
    };
    let args = [
        base.to_string(),
        validated.0,
        req.step.owner.clone().unwrap_or_default(),
        req.step.group.clone().unwrap_or_default(),
        validated.1,
    ];
    let (reader, writer) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| Failed::new(format!("cannot make a stream: {e}")))?;
    let total = changed.iter().map(|e| e.size).sum();
    let mut reader = Counting::new(reader, 0, total, req.progress);
    let entries: Vec<Entry> = changed.iter().map(|e| (*e).clone()).collect();
    let mut out = Vec::new();
    let (ran, written) = std::thread::scope(|s| {
        let producer = s.spawn(move || source::write_tar(writer, &entries));
        let ran = shell.run(scripts::APPLY, &args, req.step.sudo, &mut reader, &mut out);
        drop(reader);
        (ran, producer.join())
    });
    let ran = ran?;
    if ran.code != 0 {
        return Err(script_failed("write the files", base, ran));
    }
    match written {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Failed::new(format!("cannot read a file to send: {e}"))),
        Err(_) => Err(Failed::new("the sending thread failed")),
    }
}

fn script_failed(doing: &str, base: &str, ran: Ran) -> Failed {
    let text = String::from_utf8_lossy(&ran.stderr);
    let validator = ran.code == 65 && text.contains("nexus: the validator exited");
    let what = if validator {
        "the validator refused the new file: the old file is kept".to_string()
    } else {
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        format!("cannot {doing} in `{base}` (exit {}): {last}", ran.code)
    };
    let mut cause = Cause::new(what);
    if text.contains("Permission denied") {
        cause = cause.help(format!(
            "the login user may not write in `{base}`: add `sudo = true` to the step, or choose a directory it owns"
        ));
    }
    Failed {
        cause: Stop::Failed(cause),
        output: ran.stderr,
    }
}

/// Unified diffs of the changed text files of at most `DIFF_MAX` bytes; a line with
/// sizes and hashes for others.
fn diffs(
    base: &str,
    changed: &[&Entry],
    found: &std::collections::HashMap<String, scripts::Found>,
    sudo: bool,
    shell: &mut dyn Shell,
) -> Vec<String> {
    const DIFF_MAX: u64 = 1024 * 1024;
    let mut out = Vec::new();
    for e in changed {
        let path = join(base, &e.rel);
        let old_meta = found.get(&e.rel);
        let new = e.content();
        let small = e.size <= DIFF_MAX && old_meta.is_none_or(|f| f.size <= DIFF_MAX);
        let old = match old_meta {
            Some(f) if f.is_file() && small => {
                let mut text = Vec::new();
                let ran = shell.run(
                    "cat -- \"$1\"",
                    std::slice::from_ref(&path),
                    sudo,
                    &mut std::io::empty(),
                    &mut text,
                );
                ran.ok().filter(|r| r.code == 0).map(|_| text)
            }
            Some(_) => None,
            None => Some(Vec::new()),
        };
        let texts = match (old, new) {
            (Some(o), Some(n)) => String::from_utf8(o).ok().zip(String::from_utf8(n).ok()),
            _ => None,
        };
        match texts {
            Some((o, n)) if small => {
                let diff = similar::TextDiff::from_lines(&o, &n);
                out.push(
                    diff.unified_diff()
                        .header(&format!("{path} (on the target)"), &format!("{path} (new)"))
                        .to_string(),
                );
            }
            _ => out.push(format!(
                "{path}: binary or large: {} -> {} bytes, sha256 {} -> {}",
                old_meta.map_or("none".to_string(), |f| f.size.to_string()),
                e.size,
                old_meta.and_then(|f| f.sha256.as_deref()).unwrap_or("none"),
                e.sha256
            )),
        }
    }
    out
}

fn join(base: &str, rel: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{rel}")
    } else {
        format!("{base}/{rel}")
    }
}

/// `download`: the target's file or directory as a tar stream, unpacked beside the local
/// destination, and renamed over the files that differ.
fn fetch(req: &Request<'_>, shell: &mut dyn Shell) -> Result<Report, Failed> {
    let to = req.root.join(&req.to);
    let into_dir = req.to.ends_with('/');
    let parent = if into_dir {
        to.clone()
    } else {
        to.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| req.root.to_path_buf())
    };
    std::fs::create_dir_all(&parent).map_err(|e| {
        Failed::new(format!(
            "cannot create `{}`: {}",
            parent.display(),
            crate::error::io_reason(&e)
        ))
    })?;
    let mut tarball = tempfile_in(&parent)?;
    let ran = shell.run(
        scripts::FETCH,
        std::slice::from_ref(&req.from),
        req.step.sudo,
        &mut std::io::empty(),
        &mut tarball.1,
    )?;
    if ran.code != 0 {
        let _ = std::fs::remove_file(&tarball.0);
        return Err(script_failed("read", &req.from, ran));
    }
    let _ = tarball.1.flush();
    let result = source::unpack(&tarball.0, &to, into_dir, req.dry_run);
    let _ = std::fs::remove_file(&tarball.0);
    result.map_err(Failed::new)
}

fn tempfile_in(dir: &Path) -> Result<(std::path::PathBuf, std::fs::File), Failed> {
    for i in 0..100u32 {
        let path = dir.join(format!(".nexus-download.{}.{i}", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Failed::new(format!(
                    "cannot write in `{}`: {}",
                    dir.display(),
                    crate::error::io_reason(&e)
                )))
            }
        }
    }
    Err(Failed::new(format!(
        "cannot make a temporary file in `{}`",
        dir.display()
    )))
}
