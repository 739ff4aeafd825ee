//! File contents to fingerprints: BLAKE3 (a cryptographic hash, so no file can be made
//! to look unchanged, and several times faster than SHA-256), cut to 128 bits. Many
//! files are hashed on several threads at once; a file over `SEGMENT` is hashed in
//! segments on several threads too, and its fingerprint is the hash of its segments'
//! hashes. Reads are large (1 MiB), positioned, and reuse one buffer per thread.
//! Must not: decide what to hash (mod.rs does, from the stat cache).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A file's fingerprint.
pub type Digest = [u8; 16];

/// Files larger than this are hashed in pieces of this size, in parallel.
const SEGMENT: u64 = 64 * 1024 * 1024;
const READ: usize = 1024 * 1024;

/// Threads for walking and hashing: one per core, at most 16.
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 16)
}

/// The hashes of a file's pieces, by offset.
type Pieces = Vec<(u64, Option<[u8; 32]>)>;

/// One piece of work: a whole file, or one segment of a large one.
struct Job {
    file: usize,
    offset: u64,
    /// None: the whole file, whatever its size now.
    len: Option<u64>,
}

/// The fingerprints of `files` (paths under `root`, with their sizes when statted), in
/// order; None for a file that could not be read.
pub fn hash_files(root: &Path, files: &[(&Path, u64)]) -> Vec<Option<Digest>> {
    let mut jobs = Vec::new();
    let mut big = Vec::new();
    for (i, (_, size)) in files.iter().enumerate() {
        if *size > SEGMENT {
            big.push(i);
            let mut off = 0;
            while off < *size {
                let len = SEGMENT.min(size - off);
                jobs.push(Job {
                    file: i,
                    offset: off,
                    len: Some(len),
                });
                off += len;
            }
        }
    }
    // Large pieces first: the small files fill the gaps at the end.
    jobs.extend(
        (0..files.len())
            .filter(|i| files[*i].1 <= SEGMENT)
            .map(|i| Job {
                file: i,
                offset: 0,
                len: None,
            }),
    );
    let results: Vec<Mutex<Pieces>> = files.iter().map(|_| Mutex::new(Vec::new())).collect();
    let next = AtomicUsize::new(0);
    let bytes: u64 = files.iter().map(|(_, s)| *s).sum();
    let n = if bytes < 4 * READ as u64 && jobs.len() < 64 {
        1
    } else {
        threads().min(jobs.len())
    };
    let work = || {
        let mut buf = vec![0u8; READ];
        loop {
            let j = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(j) else { break };
            let h = hash_piece(&root.join(files[job.file].0), job, &mut buf);
            if let Ok(mut r) = results[job.file].lock() {
                r.push((job.offset, h));
            }
        }
    };
    if n <= 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..n {
                s.spawn(work);
            }
        });
    }
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let mut pieces = r.into_inner().unwrap_or_else(|e| e.into_inner());
            pieces.sort_by_key(|p| p.0);
            combine(&pieces, big.contains(&i))
        })
        .collect()
}

/// A file's digest from its pieces (one for a small file).
fn combine(pieces: &[(u64, Option<[u8; 32]>)], segmented: bool) -> Option<Digest> {
    let mut out = [0u8; 16];
    if !segmented {
        let h = pieces.first()?.1?;
        out.copy_from_slice(&h[..16]);
        return Some(out);
    }
    let mut h = blake3::Hasher::new();
    h.update(b"nexus segments\0");
    for (_, p) in pieces {
        h.update(&(*p)?);
    }
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    Some(out)
}

fn hash_piece(path: &Path, job: &Job, buf: &mut [u8]) -> Option<[u8; 32]> {
    let f = File::open(path).ok()?;
    let mut h = blake3::Hasher::new();
    let mut off = job.offset;
    let end = job.len.map(|l| job.offset + l);
    loop {
        let want = match end {
            Some(e) if e <= off => break,
            Some(e) => buf.len().min((e - off) as usize),
            None => buf.len(),
        };
        let n = match f.read_at(&mut buf[..want], off) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        };
        h.update(&buf[..n]);
        off += n as u64;
    }
    Some(*h.finalize().as_bytes())
}

/// Hex of a digest.
pub fn hex(d: &Digest) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(32);
    for b in d {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

pub fn from_hex(s: &str) -> Option<Digest> {
    if s.len() != 32 {
        return None;
    }
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    let mut d = [0u8; 16];
    for (i, out) in d.iter_mut().enumerate() {
        *out = (nibble(b[2 * i])? << 4) | nibble(b[2 * i + 1])?;
    }
    Some(d)
}

/// The digest of a text (definitions: commands, env values, ...).
pub fn of_text(parts: &[&str]) -> Digest {
    let mut h = blake3::Hasher::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segmented_and_whole_files_hash_by_content() {
        let d = std::env::temp_dir().join(format!("nexus-hash-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("a"), b"hello").unwrap();
        std::fs::write(d.join("b"), b"hello").unwrap();
        std::fs::write(d.join("c"), b"hellp").unwrap();
        let files = [
            (Path::new("a"), 5),
            (Path::new("b"), 5),
            (Path::new("c"), 5),
            (Path::new("missing"), 5),
        ];
        let h = hash_files(&d, &files);
        assert_eq!(h[0], h[1]);
        assert_ne!(h[0], h[2]);
        assert_eq!(h[3], None);
        assert_eq!(from_hex(&hex(&h[0].unwrap())), h[0]);
        let _ = std::fs::remove_dir_all(&d);
    }
}
