//! The run journal file: one append-only JSON-lines file per run under
//! `$NEXUS_HOME/runs/`. Each line is one `Record` with a sequence number, a time and a
//! CRC-32 of its own text, written with one write(2) before the run goes on, so a
//! SIGKILL loses nothing already done and truncation or corruption is found on reading.
//! The file is fdatasync'ed at most once a second at task boundaries and at the end.
//! Files are created 0600 without following symlinks. Must not: trust a line whose
//! checksum does not match, or rewrite records it did not write (repair only cuts a bad
//! tail).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::record::{Record, RunHeader};

/// CRC-32 (IEEE 802.3), table-driven.
pub fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0xEDB8_8320
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// `{...}` -> `{...,"crc":"xxxxxxxx"}` over the text without the crc.
pub fn seal(body: &str) -> String {
    let crc = crc32(body.as_bytes());
    format!("{},\"crc\":\"{crc:08x}\"}}", &body[..body.len() - 1])
}

/// The body of a sealed line (without the crc member) if its checksum holds.
pub fn unseal(line: &str) -> Result<String, String> {
    const TAIL: usize = ",\"crc\":\"xxxxxxxx\"}".len();
    let bad = || "no checksum (truncated or not a journal line)".to_string();
    if line.len() < TAIL + 2 || !line.ends_with("\"}") {
        return Err(bad());
    }
    let cut = line.len() - TAIL;
    // `get`: a multibyte character may straddle either end (a corrupt line).
    if line.get(cut..cut + 8) != Some(",\"crc\":\"") {
        return Err(bad());
    }
    let want = &line[cut + 8..line.len() - 2];
    let body = format!("{}}}", &line[..cut]);
    let got = format!("{:08x}", crc32(body.as_bytes()));
    if got != want {
        return Err(format!("checksum mismatch (stored {want}, computed {got})"));
    }
    Ok(body)
}

/// One line of a journal as read back.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Entry {
    pub seq: u64,
    #[serde(default)]
    pub ts: String,
    #[serde(flatten)]
    pub record: Record,
}

#[derive(Serialize)]
struct Out<'a> {
    seq: u64,
    #[serde(flatten)]
    record: &'a Record,
    ts: &'a str,
}

/// Parse one sealed line.
pub fn parse_line(line: &str) -> Result<Entry, String> {
    let body = unseal(line)?;
    serde_json::from_str(&body).map_err(|e| format!("not a valid record: {e}"))
}

/// A journal file opened for appending and locked (flock, exclusive) for as long as it is
/// open: the run belongs to this process. Another process's lock means the run is going.
pub struct Owned {
    path: PathBuf,
    file: File,
}

impl Owned {
    /// Open an existing journal and take its lock; None when another process holds it.
    pub fn take(path: &Path) -> std::io::Result<Option<Owned>> {
        let file = open(path, false)?;
        if !crate::sys::try_lock_exclusive(&file)? {
            return Ok(None);
        }
        Ok(Some(Owned {
            path: path.to_path_buf(),
            file,
        }))
    }

    /// Cut the file back to its valid prefix (only a bad tail goes; a process killed
    /// during the cut leaves the old file or the cut one).
    pub fn repair(&self, valid_len: u64) -> std::io::Result<()> {
        self.file.set_len(valid_len)?;
        self.file.sync_data()?;
        log::debug!(
            "journal: cut {} back to its {valid_len} valid bytes",
            self.path.display()
        );
        Ok(())
    }
}

/// Whether another process holds `path`'s lock (its run is going). A file that cannot
/// be opened is not held.
pub fn held(path: &Path) -> bool {
    match std::fs::File::open(path) {
        Ok(f) => crate::sys::try_lock_shared(&f).is_ok_and(|got| !got),
        Err(_) => false,
    }
}

/// An open journal, appended to by one process at a time. Records are written at once,
/// except those `Record::can_wait` says may wait for the next one (completions): they go
/// out together with it, in one write, or at `flush`.
pub struct Journal {
    pub path: PathBuf,
    file: File,
    seq: u64,
    /// Bytes of whole records in the file: a write that fails is cut back to it.
    len: u64,
    last_sync: Instant,
    pending: String,
}

/// Open for appending: create_new for a new run, existing for a resume. 0600, and never
/// through a symlink.
fn open(path: &Path, create: bool) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        crate::state::private_dir(dir)?;
    }
    std::fs::OpenOptions::new()
        .append(true)
        .create_new(create)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

impl Journal {
    /// Create the journal of a new run, starting with its header, and own it.
    pub fn create(path: &Path, header: &RunHeader) -> std::io::Result<Journal> {
        let file = open(path, true)?;
        let mut j = Journal {
            path: path.to_path_buf(),
            file,
            seq: 0,
            len: 0,
            last_sync: Instant::now(),
            pending: String::new(),
        };
        let started = crate::sys::lock_exclusive(&j.file)
            .and_then(|()| j.write(&Record::RunStart(header.clone())));
        if let Err(e) = started {
            // Nothing ran: leave no journal of a run that did not start.
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        log::debug!("journal: created {}", path.display());
        Ok(j)
    }

    /// Continue the journal of an interrupted run, owned, after its last valid record.
    pub fn append_to(owned: Owned, seq: u64) -> std::io::Result<Journal> {
        let Owned { path, file } = owned;
        let len = file.metadata()?.len();
        let mut j = Journal {
            path,
            file,
            seq,
            len,
            last_sync: Instant::now(),
            pending: String::new(),
        };
        j.write(&Record::Resume {
            pid: std::process::id(),
        })?;
        log::debug!("journal: resuming {} after record {seq}", j.path.display());
        Ok(j)
    }

    /// Append one record as one line. Lines are whole in the file or not there at all.
    pub fn write(&mut self, record: &Record) -> std::io::Result<()> {
        let ts = crate::timefmt::rfc3339(std::time::SystemTime::now());
        let out = Out {
            seq: self.seq + 1,
            record,
            ts: &ts,
        };
        let body = serde_json::to_string(&out).map_err(std::io::Error::other)?;
        self.pending += &seal(&body);
        self.pending.push('\n');
        self.seq += 1;
        if record.can_wait() {
            return Ok(());
        }
        self.flush()
    }

    /// Write what waits, in one write. A write that fails part-way (a full disk, a
    /// file-size limit) is cut back, so the file holds whole records only.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self.file.write_all(self.pending.as_bytes());
        match &result {
            Ok(()) => self.len += self.pending.len() as u64,
            Err(_) => {
                let _ = self.file.set_len(self.len);
            }
        }
        self.pending.clear();
        result
    }

    /// Flush to disk if the last sync is a second old or more (task boundaries).
    pub fn checkpoint(&mut self) -> std::io::Result<()> {
        if self.last_sync.elapsed().as_secs() >= 1 {
            self.sync()?;
        }
        Ok(())
    }

    /// Flush to disk now.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.flush()?;
        self.file.sync_data()?;
        self.last_sync = Instant::now();
        log::trace!("journal: synced {}", self.path.display());
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// A journal read back: the records of its valid prefix, and what was wrong after it.
#[derive(Debug, Default)]
pub struct Read {
    pub entries: Vec<Entry>,
    /// Bytes of the valid prefix (what a repair keeps).
    pub valid_len: u64,
    /// (1-based line, reason) of the first bad line, if any.
    pub problem: Option<(usize, String)>,
}

impl Read {
    pub fn records(&self) -> impl DoubleEndedIterator<Item = &Record> {
        self.entries.iter().map(|e| &e.record)
    }

    pub fn last_seq(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.seq)
    }
}

/// Read a journal. I/O errors (missing file, a directory, no permission) are errors;
/// bad lines are not: the valid prefix is returned with the problem noted.
pub fn read(path: &Path) -> std::io::Result<Read> {
    let bytes = std::fs::read(path)?;
    let mut out = Read::default();
    let mut at = 0usize;
    let mut number = 0;
    for raw in bytes.split_inclusive(|&b| b == b'\n') {
        number += 1;
        let complete = raw.ends_with(b"\n");
        let text = String::from_utf8_lossy(raw.strip_suffix(b"\n").unwrap_or(raw));
        match parse_line(&text) {
            Ok(e) if complete => out.entries.push(e),
            Ok(_) => {
                out.problem = Some((number, "truncated last line (no newline)".into()));
                break;
            }
            Err(reason) => {
                let reason = if complete {
                    reason
                } else {
                    format!("truncated last line ({reason})")
                };
                out.problem = Some((number, reason));
                break;
            }
        }
        at += raw.len();
    }
    out.valid_len = at as u64;
    if out.entries.is_empty() && out.problem.is_none() {
        out.problem = Some((1, "the journal is empty".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::event::TaskStatus;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn seal_round_trips_and_detects_flips() {
        let line = seal(r#"{"ev":"x","n":1}"#);
        assert_eq!(unseal(&line).unwrap(), r#"{"ev":"x","n":1}"#);
        let flipped = line.replace("\"n\":1", "\"n\":2");
        assert!(unseal(&flipped)
            .unwrap_err()
            .starts_with("checksum mismatch"));
        assert_eq!(
            unseal(&line[..line.len() - 3]).unwrap_err(),
            "no checksum (truncated or not a journal line)"
        );
    }

    #[test]
    fn records_round_trip_through_lines() {
        let dir = std::env::temp_dir().join(format!("nexus-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("r.jsonl");
        let header = RunHeader {
            run_id: "R".into(),
            counter: 3,
            targets: vec!["all".into()],
            pid: 7,
            ..RunHeader::default()
        };
        let mut j = Journal::create(&path, &header).unwrap();
        let fin = Record::TaskFinish {
            task: "a".into(),
            status: TaskStatus::Success,
            duration_ms: 5,
        };
        j.write(&fin).unwrap();
        drop(j);
        let r = read(&path).unwrap();
        assert_eq!(r.problem, None);
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.entries[0].record, Record::RunStart(header));
        assert_eq!((r.entries[1].seq, &r.entries[1].record), (2, &fin));
        // A newer record kind is read as Unknown, not refused.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let line = seal(r#"{"seq":3,"ev":"from_the_future","x":1}"#);
        writeln!(f, "{line}").unwrap();
        let r = read(&path).unwrap();
        assert_eq!(r.entries[2].record, Record::Unknown);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
