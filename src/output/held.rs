//! Output held back for `--output grouped` while another unit's block is being shown:
//! kept in memory up to `MEMORY`, then in an unnamed temporary file (created 0600 and
//! unlinked at once), so memory stays bounded whatever a command prints.
//! Must not: lose or reorder output; it is replayed exactly as it came.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use crate::exec::Stream;

/// Bytes held in memory before the rest goes to a temporary file.
pub const MEMORY: usize = 256 * 1024;

/// Chunks of one unit's output, in order: `[stream][u32 length][bytes]` records.
#[derive(Default)]
pub struct Held {
    mem: Vec<u8>,
    file: Option<File>,
    /// The temporary file could not be created or written: keep in memory only what fits
    /// and count the rest.
    lost: u64,
}

impl Held {
    pub fn push(&mut self, stream: Stream, data: &[u8]) {
        self.mem.push(stream as u8);
        self.mem
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.mem.extend_from_slice(data);
        if self.mem.len() > MEMORY {
            self.spill();
        }
    }

    fn spill(&mut self) {
        if self.file.is_none() {
            self.file = temp_file().ok();
        }
        let written = match self.file.as_mut() {
            Some(f) => f.write_all(&self.mem).is_ok(),
            None => false,
        };
        if !written {
            self.lost += self.mem.len() as u64;
            self.file = None;
        }
        self.mem.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.mem.is_empty() && self.file.is_none() && self.lost == 0
    }

    /// Replay everything held, in order, then forget it. Returns the bytes that could
    /// not be kept (a temporary file that failed), if any.
    pub fn replay(&mut self, out: &mut dyn FnMut(Stream, &[u8])) -> u64 {
        if let Some(mut f) = self.file.take() {
            if f.seek(SeekFrom::Start(0)).is_ok() {
                let mut r = std::io::BufReader::with_capacity(64 * 1024, &mut f);
                while let Some((stream, data)) = next_record(&mut r) {
                    out(stream, &data);
                }
            }
        }
        let mut at = &self.mem[..];
        while let Some((stream, data)) = next_record(&mut at) {
            out(stream, &data);
        }
        self.mem.clear();
        std::mem::take(&mut self.lost)
    }
}

fn next_record(r: &mut dyn Read) -> Option<(Stream, Vec<u8>)> {
    let mut head = [0u8; 5];
    r.read_exact(&mut head).ok()?;
    let stream = if head[0] == Stream::Stderr as u8 {
        Stream::Stderr
    } else {
        Stream::Stdout
    };
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut data = vec![0u8; len];
    r.read_exact(&mut data).ok()?;
    Some((stream, data))
}

/// A new private file in the temporary directory, already unlinked.
fn temp_file() -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    for n in 0..100u32 {
        let path = dir.join(format!("nexus-held-{}-{n}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path);
        match f {
            Ok(f) => {
                let _ = std::fs::remove_file(&path);
                return Ok(f);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary file name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_in_order_across_memory_and_file() {
        let mut h = Held::default();
        let mut want = Vec::new();
        for i in 0..2000 {
            let s = if i % 3 == 0 {
                Stream::Stderr
            } else {
                Stream::Stdout
            };
            let line = format!("line {i} {}\n", "x".repeat(300));
            h.push(s, line.as_bytes());
            want.push((s, line));
        }
        let mut got = Vec::new();
        let lost = h.replay(&mut |s, d| got.push((s, String::from_utf8(d.to_vec()).unwrap())));
        assert_eq!(lost, 0);
        assert_eq!(got, want);
        assert!(h.is_empty());
    }
}
