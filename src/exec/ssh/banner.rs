//! Waiting for the server's SSH banner (its `SSH-` identification line) before libssh2
//! takes the socket. Lines a server sends before its banner (RFC 4253 allows them) are
//! read and dropped here, through one fixed buffer, until the attempt's deadline or a
//! cancellation: a server that floods, trickles or says nothing cannot hold a connection
//! past its budget or grow nexus's memory, and the error can say what it sent instead.
//! The banner line itself is only peeked at and stays queued for libssh2.
//! Must not: consume a byte of the banner line, or wait without a deadline.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use crate::signals;
use crate::sys;

/// How the wait ended. `other` counts the bytes dropped that were not the banner.
#[derive(Debug)]
pub enum Banner {
    /// The banner line (or its first 255 bytes) is queued at the front of the socket.
    Ready {
        other: u64,
    },
    Closed {
        other: u64,
    },
    TimedOut {
        other: u64,
    },
    Cancelled,
    Failed(std::io::Error),
}

/// The longest banner line (RFC 4253: 255 bytes with CR LF); libssh2 reads no more.
const BANNER_MAX: usize = 255;
/// Bytes looked at and dropped at a time.
const CHUNK: usize = 16 * 1024;
/// How long to wait before looking again at a banner line that has not ended yet (the
/// socket stays readable while those bytes are queued, so poll cannot wait for more).
const PARTIAL_WAIT: Duration = Duration::from_millis(20);

/// What the queued bytes are.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// The banner line is complete at the front.
    Banner,
    /// The front may be the start of the banner: wait for more.
    Partial,
    /// This many bytes at the front are not the banner: drop them.
    Skip(usize),
}

/// Look at `data` (the front of the stream); `mid_line` says that it starts inside a line
/// that is not the banner, and is updated for what follows a `Skip`.
fn scan(data: &[u8], mid_line: &mut bool) -> Scan {
    const MAGIC: &[u8] = b"SSH-";
    let mut at = 0;
    loop {
        if *mid_line {
            match data[at..].iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    at += nl + 1;
                    *mid_line = false;
                }
                None => return Scan::Skip(data.len()),
            }
        }
        let line = &data[at..];
        let starts = line.len().min(MAGIC.len());
        if line.is_empty() || line[..starts] == MAGIC[..starts] {
            if at > 0 {
                return Scan::Skip(at);
            }
            let complete =
                line.len() >= MAGIC.len() && (line.contains(&b'\n') || line.len() >= BANNER_MAX);
            return if complete {
                Scan::Banner
            } else {
                Scan::Partial
            };
        }
        *mid_line = true;
    }
}

/// Wait until the banner is at the front of socket `fd`, dropping what comes before it,
/// until `deadline`.
pub fn wait(fd: BorrowedFd<'_>, deadline: Instant) -> Banner {
    let mut buf = vec![0u8; CHUNK];
    let mut other: u64 = 0;
    let mut mid_line = false;
    let mut partial = false;
    loop {
        if signals::cancelled() {
            return Banner::Cancelled;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Banner::TimedOut { other };
        }
        // Readable data, a cancellation, or (while part of a banner is queued) a moment.
        let (socket, most) = if partial {
            (None, PARTIAL_WAIT)
        } else {
            (Some(std::os::fd::AsRawFd::as_raw_fd(&fd)), left)
        };
        let waits = [
            sys::Wait::read(socket),
            sys::Wait::read(Some(signals::wake_fd())),
        ];
        sys::poll(&waits, left.min(most).max(Duration::from_millis(1)));
        let n = match sys::recv_now(fd, &mut buf, true) {
            Ok(0) => return Banner::Closed { other },
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Banner::Failed(e),
        };
        match scan(&buf[..n], &mut mid_line) {
            Scan::Banner => return Banner::Ready { other },
            Scan::Partial => partial = true,
            Scan::Skip(k) => {
                partial = false;
                match sys::recv_now(fd, &mut buf[..k], false) {
                    Ok(got) => other += got as u64,
                    Err(e) => return Banner::Failed(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned(data: &[u8], mid_line: bool) -> (Scan, bool) {
        let mut m = mid_line;
        (scan(data, &mut m), m)
    }

    #[test]
    fn the_banner_is_found_after_other_lines_and_never_dropped() {
        assert_eq!(scanned(b"SSH-2.0-x\r\n\0\0", false), (Scan::Banner, false));
        assert_eq!(scanned(b"SSH-2.0-x", false), (Scan::Partial, false));
        assert_eq!(scanned(b"SS", false), (Scan::Partial, false));
        assert_eq!(
            scanned(b"hello\r\nworld\nSSH-2", false),
            (Scan::Skip(13), false)
        );
        assert_eq!(scanned(b"hello\r\nwor", false), (Scan::Skip(10), true));
        assert_eq!(scanned(b"ld\nSSH-2.0-y\n", true), (Scan::Skip(3), false));
        assert_eq!(
            scanned(b"more of a long line", true),
            (Scan::Skip(19), true)
        );
        assert_eq!(scanned(b"\r\n", false), (Scan::Skip(2), false));
        let long = [b"SSH-".as_slice(), &[b'x'; 300]].concat();
        assert_eq!(scanned(&long, false), (Scan::Banner, false));
    }
}
