//! What is kept of a command's output for the journal and the failure report: the first
//! `HEAD_BYTES` and the last `TAIL_BYTES`, stdout and stderr interleaved in the order the
//! lines came, with a count of what was left out between them. Memory is bounded
//! whatever the command prints; the tail is kept as raw bytes and turned into text only
//! when the command ends. Must not: grow with the size of the output.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::lines::LineBuf;
use crate::exec::Stream;

/// Bytes kept from the start of a command's output.
pub const HEAD_BYTES: usize = 32 * 1024;
/// Bytes kept from the end of a command's output.
pub const TAIL_BYTES: usize = 32 * 1024;
/// Longer lines are cut to this many bytes in the capture (the live output keeps them).
pub const MAX_LINE: usize = 4 * 1024;

/// One captured line, without its newline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line(pub Stream, pub String);

/// The kept output of one command attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Captured {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub head: Vec<Line>,
    /// Lines and bytes left out between head and tail.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_lines: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted_bytes: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tail: Vec<Line>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Captured {
    pub fn is_empty(&self) -> bool {
        self.head.is_empty() && self.tail.is_empty() && self.omitted_lines == 0
    }

    /// The last `n` kept lines, in order (from the tail, then the head if the tail is short).
    pub fn last_lines(&self, n: usize) -> Vec<&Line> {
        let kept = self.head.iter().chain(self.tail.iter());
        let total = self.head.len() + self.tail.len();
        kept.skip(total.saturating_sub(n)).collect()
    }

    /// Whether lines were left out before the last `n` kept lines.
    pub fn has_more_than(&self, n: usize) -> bool {
        self.omitted_lines > 0 || self.head.len() + self.tail.len() > n
    }
}

/// Builds a `Captured` from output as it arrives.
#[derive(Debug, Default)]
pub struct Capture {
    /// Unfinished last lines of stdout and stderr, while the head fills.
    partial: [LineBuf; 2],
    head: Vec<Line>,
    head_bytes: usize,
    head_full: bool,
    /// After the head: the last TAIL_BYTES of raw output, as chunks, oldest first.
    tail: VecDeque<(Stream, Vec<u8>)>,
    tail_len: usize,
    /// Bytes were dropped from the front of `tail` (its first line may be cut).
    tail_cut: bool,
    /// Everything after the head: bytes and newlines seen (to count what was left out).
    after_bytes: u64,
    after_newlines: u64,
}

impl Capture {
    /// Take a chunk of one stream's output.
    pub fn push(&mut self, stream: Stream, data: &[u8]) {
        if self.head_full {
            self.tail_push(stream, data);
            return;
        }
        let mut partial = std::mem::take(&mut self.partial[stream as usize]);
        let mut rest: &[u8] = &[];
        // Where in `data` the lines delivered so far end (the first one may begin with
        // bytes held from earlier chunks).
        let mut at = 0usize.wrapping_sub(partial.len());
        partial.push(data, &mut |l| {
            at = at.wrapping_add(l.len());
            if self.head_full {
                return;
            }
            self.head_line(stream, l);
            if self.head_bytes >= HEAD_BYTES {
                self.head_full = true;
                rest = &data[at.min(data.len())..];
            }
        });
        if self.head_full {
            // What follows the line that filled the head goes to the tail (`rest` holds
            // this stream's unfinished line too), with what the other stream held.
            let other = 1 - stream as usize;
            let mut other_held = Vec::new();
            self.partial[other].finish(&mut |l| other_held.extend_from_slice(l));
            let other_stream = if other == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            self.tail_push(other_stream, &other_held);
            self.tail_push(stream, rest);
        } else {
            self.partial[stream as usize] = partial;
        }
    }

    fn head_line(&mut self, stream: Stream, raw: &[u8]) {
        let body = raw.strip_suffix(b"\n").unwrap_or(raw);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        self.head_bytes += raw.len();
        self.head.push(Line(stream, text(body)));
    }

    /// Keep the last TAIL_BYTES, count the rest.
    fn tail_push(&mut self, stream: Stream, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.after_bytes += data.len() as u64;
        self.after_newlines += newlines(data) as u64;
        if data.len() >= TAIL_BYTES {
            self.tail_cut |= data.len() > TAIL_BYTES || !self.tail.is_empty();
            self.tail.clear();
            self.tail
                .push_back((stream, data[data.len() - TAIL_BYTES..].to_vec()));
            self.tail_len = TAIL_BYTES;
            return;
        }
        self.tail.push_back((stream, data.to_vec()));
        self.tail_len += data.len();
        while self.tail_len > TAIL_BYTES {
            let excess = self.tail_len - TAIL_BYTES;
            let Some(front) = self.tail.front_mut() else {
                break;
            };
            self.tail_cut = true;
            if front.1.len() <= excess {
                self.tail_len -= front.1.len();
                self.tail.pop_front();
            } else {
                front.1.drain(..excess);
                self.tail_len -= excess;
            }
        }
    }

    pub fn finish(mut self) -> Captured {
        if !self.head_full {
            for stream in [Stream::Stdout, Stream::Stderr] {
                let mut partial = std::mem::take(&mut self.partial[stream as usize]);
                partial.finish(&mut |l| self.head_line(stream, l));
            }
        }
        let mut tail = Vec::new();
        let mut kept_bytes = 0u64;
        let mut kept_newlines = 0u64;
        let mut bufs: [LineBuf; 2] = Default::default();
        let mut skip_first = self.tail_cut;
        for (stream, mut chunk) in std::mem::take(&mut self.tail) {
            if skip_first {
                // The first line of what was kept may have lost its start: leave it out.
                skip_first = false;
                let cut = chunk
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(chunk.len(), |i| i + 1);
                chunk.drain(..cut);
            }
            kept_bytes += chunk.len() as u64;
            kept_newlines += newlines(&chunk) as u64;
            bufs[stream as usize].push(&chunk, &mut |l| tail.push(tail_line(stream, l)));
        }
        for stream in [Stream::Stdout, Stream::Stderr] {
            bufs[stream as usize].finish(&mut |l| tail.push(tail_line(stream, l)));
        }
        Captured {
            head: self.head,
            omitted_lines: self.after_newlines - kept_newlines,
            omitted_bytes: self.after_bytes - kept_bytes,
            tail,
        }
    }
}

fn tail_line(stream: Stream, raw: &[u8]) -> Line {
    let body = raw.strip_suffix(b"\n").unwrap_or(raw);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    Line(stream, text(body))
}

/// Newlines in `data`.
fn newlines(data: &[u8]) -> usize {
    // memchr counts with SIMD where the CPU has it.
    memchr::memchr_iter(b'\n', data).count()
}

/// UTF-8 text of a line, lossy, cut to MAX_LINE bytes with a note of what was cut.
fn text(body: &[u8]) -> String {
    if body.len() <= MAX_LINE {
        return String::from_utf8_lossy(body).into_owned();
    }
    let mut end = MAX_LINE;
    // Cut on a character boundary when the text is UTF-8 there.
    while end > MAX_LINE - 4 && (body[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    format!(
        "{}… [line cut: longer than {MAX_LINE} bytes]",
        String::from_utf8_lossy(&body[..end])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(c: &Captured) -> Vec<String> {
        c.head
            .iter()
            .chain(c.tail.iter())
            .map(|l| l.1.clone())
            .collect()
    }

    #[test]
    fn small_output_is_kept_whole_and_in_order() {
        let mut c = Capture::default();
        c.push(Stream::Stdout, b"a\nb\n");
        c.push(Stream::Stderr, b"e\n");
        c.push(Stream::Stdout, b"c");
        let got = c.finish();
        assert_eq!(lines(&got), ["a", "b", "e", "c"]);
        assert_eq!(got.head[2].0, Stream::Stderr);
        assert_eq!(got.omitted_lines, 0);
    }

    #[test]
    fn large_output_keeps_head_and_tail_and_counts_the_rest() {
        let mut c = Capture::default();
        let mut total_lines = 0u64;
        for chunk in 0..200 {
            let mut data = Vec::new();
            for i in 0..1000 {
                data.extend_from_slice(format!("line {chunk}-{i}\n").as_bytes());
            }
            total_lines += 1000;
            c.push(Stream::Stdout, &data);
        }
        let got = c.finish();
        let kept = (got.head.len() + got.tail.len()) as u64;
        assert_eq!(kept + got.omitted_lines, total_lines);
        assert_eq!(got.head[0].1, "line 0-0");
        assert_eq!(got.tail.last().unwrap().1, "line 199-999");
        let tail_bytes: usize = got.tail.iter().map(|l| l.1.len()).sum();
        assert!(tail_bytes <= TAIL_BYTES, "{tail_bytes}");
        assert!(got.omitted_bytes > 0);
        assert_eq!(got.last_lines(2)[0].1, "line 199-998");
    }

    #[test]
    fn newlines_are_counted_exactly() {
        let data: Vec<u8> = (0..5000u32)
            .map(|i| [b'\n', 0, 1, b'x', 0x0b, 0x09][i as usize % 6])
            .collect();
        let want = data.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(newlines(&data), want);
        assert_eq!(newlines(b"\x00\n\x01\n\n"), 3);
    }

    #[test]
    fn long_lines_are_cut_in_the_capture() {
        let mut c = Capture::default();
        let long = vec![b'x'; 100_000];
        c.push(Stream::Stdout, &long);
        let got = c.finish();
        assert_eq!(got.head.len(), 1);
        assert!(got.head[0].1.len() < MAX_LINE + 60);
        assert!(got.head[0]
            .1
            .ends_with("[line cut: longer than 4096 bytes]"));
    }

    #[test]
    fn every_line_is_kept_or_counted_however_output_is_chunked() {
        fn prop(lens: Vec<u16>, cuts: Vec<u16>) -> bool {
            let mut c = Capture::default();
            let mut data = Vec::new();
            let mut streams = Vec::new();
            for (i, len) in lens.iter().enumerate() {
                let line = format!("{i}:{}\n", "y".repeat(*len as usize % 3000));
                streams.push(if len % 3 == 0 {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                });
                data.push(line.into_bytes());
            }
            // Feed each line in pieces cut at `cuts`.
            for (line, stream) in data.iter().zip(&streams) {
                let mut at = 0;
                for cut in &cuts {
                    let next = (at + *cut as usize % 50 + 1).min(line.len());
                    c.push(*stream, &line[at..next]);
                    at = next;
                }
                c.push(*stream, &line[at..]);
            }
            let got = c.finish();
            let total = got.head.len() as u64 + got.omitted_lines + got.tail.len() as u64;
            let tail_bytes: usize = got.tail.iter().map(|l| l.1.len()).sum();
            total == data.len() as u64 && tail_bytes <= TAIL_BYTES
        }
        quickcheck::QuickCheck::new()
            .tests(200)
            .quickcheck(prop as fn(Vec<u16>, Vec<u16>) -> bool);
    }
}
