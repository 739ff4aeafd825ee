//! The run journal: one append-only JSON-lines file per run under `$NEXUS_HOME/runs/`.
//! Every record is written (one write(2) of a whole line) before the step it describes
//! is followed by the next one, so a SIGKILL loses nothing already done; the file is
//! fdatasync'ed at most once a second at task boundaries and at the end of the run.
//! Each line ends in a CRC-32 of its own text, so truncation and corruption are found.
//! Must not: trust a line whose checksum does not match.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value;

/// Captured output kept per command and stream in the journal.
pub const OUTPUT_CAP: usize = 64 * 1024;

pub struct Journal {
    pub path: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    file: File,
    seq: u64,
    last_sync: Instant,
}

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

/// The body of a sealed line if its checksum holds.
pub fn unseal(line: &str) -> Result<Value, String> {
    const TAIL: usize = ",\"crc\":\"xxxxxxxx\"}".len();
    if line.len() < TAIL + 2 || !line.ends_with("\"}") {
        return Err("no checksum (truncated or not a journal line)".into());
    }
    let cut = line.len() - TAIL;
    if !line.is_char_boundary(cut) || &line[cut..cut + 8] != ",\"crc\":\"" {
        return Err("no checksum (truncated or not a journal line)".into());
    }
    let want = &line[cut + 8..line.len() - 2];
    let body = format!("{}}}", &line[..cut]);
    let got = format!("{:08x}", crc32(body.as_bytes()));
    if got != want {
        return Err(format!("checksum mismatch (stored {want}, computed {got})"));
    }
    serde_json::from_str(&body).map_err(|e| format!("not valid JSON: {e}"))
}

impl Journal {
    /// Create the journal file of a new run.
    pub fn create(path: &Path) -> std::io::Result<Journal> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)?;
        Ok(Journal {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner {
                file,
                seq: 0,
                last_sync: Instant::now(),
            }),
        })
    }

    /// Continue an existing journal (resume), after its last valid record.
    pub fn append_to(path: &Path, seq: u64) -> std::io::Result<Journal> {
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Journal {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner {
                file,
                seq,
                last_sync: Instant::now(),
            }),
        })
    }

    /// Append one record: `ev` plus `fields`, stamped with `seq` and `ts`.
    pub fn record(&self, ev: &str, fields: Value) {
        let ts = crate::timefmt::rfc3339(std::time::SystemTime::now());
        let fields = fields.to_string();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.seq += 1;
        // `{"seq":N,"ev":"…","ts":"…"` + the fields' members; ev is one of ours (no escaping).
        let mut body = format!("{{\"seq\":{},\"ev\":\"{ev}\",\"ts\":\"{ts}\"", inner.seq);
        match fields.strip_prefix('{') {
            Some("}") | None => body.push('}'),
            Some(rest) => {
                body.push(',');
                body.push_str(rest);
            }
        }
        let mut line = seal(&body);
        line.push('\n');
        if let Err(e) = inner.file.write_all(line.as_bytes()) {
            log::error!("cannot write the run journal {}: {e}", self.path.display());
        }
    }

    /// Flush to disk if the last sync is older than a second (task boundaries).
    pub fn checkpoint(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.last_sync.elapsed().as_secs() >= 1 {
            let _ = inner.file.sync_data();
            inner.last_sync = Instant::now();
        }
    }

    /// Flush to disk now (end of the run).
    pub fn sync(&self) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let _ = inner.file.sync_data();
    }
}

/// A journal read back: the records of its valid prefix, and what was wrong after it.
#[derive(Debug, Default)]
pub struct Read {
    pub records: Vec<Value>,
    /// (1-based line, reason) of the first bad line, if any.
    pub problem: Option<(usize, String)>,
}

/// Read a journal. I/O errors (missing file, a directory, no permission) are errors;
/// bad lines are not: the valid prefix is returned with the problem noted.
pub fn read(path: &Path) -> std::io::Result<Read> {
    let bytes = std::fs::read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut out = Read::default();
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let last = i + 1 == lines.len();
        match unseal(line) {
            Ok(v) => out.records.push(v),
            Err(reason) => {
                let reason = if last && !complete {
                    format!("truncated last line ({reason})")
                } else {
                    reason
                };
                out.problem = Some((i + 1, reason));
                break;
            }
        }
    }
    if out.records.is_empty() && out.problem.is_none() {
        out.problem = Some((1, "the journal is empty".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn seal_round_trips_and_detects_flips() {
        let line = seal(r#"{"ev":"x","n":1}"#);
        assert_eq!(unseal(&line).unwrap()["n"], 1);
        let flipped = line.replace("\"n\":1", "\"n\":2");
        assert!(unseal(&flipped)
            .unwrap_err()
            .starts_with("checksum mismatch"));
        assert!(unseal(&line[..line.len() - 3]).is_err());
    }
}
