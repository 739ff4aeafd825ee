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
    /// Unfinished last lines of stdout and stderr.
    partial: [LineBuf; 2],
    head: Vec<Line>,
    head_bytes: usize,
    /// Raw bytes of the tail lines, oldest first, and each line's stream and length.
    tail_bytes: VecDeque<u8>,
    tail_lines: VecDeque<(Stream, usize)>,
    omitted_lines: u64,
    omitted_bytes: u64,
}

impl Capture {
    /// Take a chunk of one stream's output.
    pub fn push(&mut self, stream: Stream, data: &[u8]) {
        let mut partial = std::mem::take(&mut self.partial[stream as usize]);
        let mut rest = data;
        if self.head_bytes >= HEAD_BYTES && data.len() > 2 * TAIL_BYTES {
            // Only the last TAIL_BYTES can survive: finish the held line, count the middle
            // without keeping it.
            let first = data.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
            partial.push(&data[..first], &mut |l| self.line(stream, l));
            let cut = data.len() - TAIL_BYTES;
            let cut = data[cut..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(data.len(), |i| cut + i + 1)
                .max(first);
            self.omit_tail();
            self.omitted_lines += data[first..cut].iter().filter(|&&b| b == b'\n').count() as u64;
            self.omitted_bytes += (cut - first) as u64;
            rest = &data[cut..];
        }
        partial.push(rest, &mut |l| self.line(stream, l));
        self.partial[stream as usize] = partial;
    }

    fn line(&mut self, stream: Stream, raw: &[u8]) {
        let body = raw.strip_suffix(b"\n").unwrap_or(raw);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        if self.head_bytes < HEAD_BYTES && self.tail_lines.is_empty() && self.omitted_lines == 0 {
            self.head_bytes += raw.len();
            self.head.push(Line(stream, text(body)));
            return;
        }
        let kept = &body[..body.len().min(MAX_LINE + 1)];
        self.tail_bytes.extend(kept);
        self.tail_lines.push_back((stream, kept.len()));
        self.omitted_bytes += (raw.len() - kept.len()) as u64;
        while self.tail_bytes.len() > TAIL_BYTES && self.tail_lines.len() > 1 {
            self.drop_oldest();
        }
    }

    fn drop_oldest(&mut self) {
        if let Some((_, len)) = self.tail_lines.pop_front() {
            self.tail_bytes.drain(..len);
            self.omitted_lines += 1;
            self.omitted_bytes += len as u64 + 1;
        }
    }

    fn omit_tail(&mut self) {
        while !self.tail_lines.is_empty() {
            self.drop_oldest();
        }
    }

    pub fn finish(mut self) -> Captured {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let mut partial = std::mem::take(&mut self.partial[stream as usize]);
            partial.finish(&mut |l| self.line(stream, l));
        }
        let bytes: Vec<u8> = self.tail_bytes.into_iter().collect();
        let mut at = 0;
        let tail = self
            .tail_lines
            .into_iter()
            .map(|(stream, len)| {
                let line = Line(stream, text(&bytes[at..at + len]));
                at += len;
                line
            })
            .collect();
        Captured {
            head: self.head,
            omitted_lines: self.omitted_lines,
            omitted_bytes: self.omitted_bytes,
            tail,
        }
    }
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
}
