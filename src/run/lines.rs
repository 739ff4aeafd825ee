//! Turning a stream of output chunks into lines: what arrives is held until its newline,
//! and a run of more than `MAX_PIECE` bytes without one is passed on as a piece of its
//! own, so memory stays bounded whatever a command prints.
//! Must not: allocate per line when a chunk holds whole lines (they are passed as slices).

/// Longest run of bytes without a newline held back; longer ones are passed on in pieces.
pub const MAX_PIECE: usize = 64 * 1024;

/// The unfinished last line of one stream.
#[derive(Debug, Default)]
pub struct LineBuf {
    partial: Vec<u8>,
}

impl LineBuf {
    /// Pass each complete line of `data` (with its `\n`) to `line`; keep the rest.
    pub fn push(&mut self, mut data: &[u8], line: &mut dyn FnMut(&[u8])) {
        if !self.partial.is_empty() {
            match memchr::memchr(b'\n', data) {
                Some(nl) => {
                    self.partial.extend_from_slice(&data[..=nl]);
                    line(&self.partial);
                    self.partial.clear();
                    data = &data[nl + 1..];
                }
                None => {
                    self.partial.extend_from_slice(data);
                    self.spill(line);
                    return;
                }
            }
        }
        let mut start = 0;
        for nl in memchr::memchr_iter(b'\n', data) {
            line(&data[start..=nl]);
            start = nl + 1;
        }
        self.partial.extend_from_slice(&data[start..]);
        self.spill(line);
    }

    /// A held run longer than MAX_PIECE goes out as a piece of its own.
    fn spill(&mut self, line: &mut dyn FnMut(&[u8])) {
        if self.partial.len() >= MAX_PIECE {
            line(&self.partial);
            self.partial.clear();
        }
    }

    /// The unfinished line, if any (the stream ended).
    pub fn finish(&mut self, line: &mut dyn FnMut(&[u8])) {
        if !self.partial.is_empty() {
            line(&self.partial);
            self.partial.clear();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.partial.is_empty()
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.partial.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(chunks: &[&[u8]]) -> Vec<String> {
        let mut b = LineBuf::default();
        let mut out = Vec::new();
        for c in chunks {
            b.push(c, &mut |l| {
                out.push(String::from_utf8_lossy(l).into_owned())
            });
        }
        b.finish(&mut |l| out.push(String::from_utf8_lossy(l).into_owned()));
        out
    }

    #[test]
    fn lines_across_chunks_and_a_last_line_without_newline() {
        assert_eq!(
            lines(&[b"a\nb", b"c\nd\n", b"e"]),
            ["a\n", "bc\n", "d\n", "e"]
        );
        assert_eq!(lines(&[b"", b"\n"]), ["\n"]);
    }

    #[test]
    fn a_long_run_without_newline_is_cut_into_pieces() {
        let big = vec![b'x'; MAX_PIECE * 2 + 10];
        let got = lines(&[&big[..100], &big[100..MAX_PIECE], &big[MAX_PIECE..]]);
        assert!(got.len() >= 2, "{}", got.len());
        assert!(got.iter().all(|l| l.len() <= 2 * MAX_PIECE));
        assert_eq!(got.iter().map(String::len).sum::<usize>(), big.len());
    }
}
