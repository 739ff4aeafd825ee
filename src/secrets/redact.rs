//! Redaction: every secret value a run uses, and each line of a multi-line value, is
//! replaced by `[secret NAME]` in what nexus writes. `Redactor` holds the values (wiped
//! when it is dropped) and rewrites whole texts; `OutputFilter` rewrites a command's
//! output as it streams, holding back only the bytes at the end of a chunk that could
//! still grow into a value (never more than the longest value), so a value split across
//! two chunks is caught and memory stays bounded.
//! Must not: decide which values a run uses (the caller registers them) or do I/O.

use std::borrow::Cow;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::exec::Stream;

/// Lines of a multi-line value shorter than this (after trimming blanks) are not masked
/// on their own: masking `}` or `--` would hide ordinary text. The whole value is.
pub const MIN_LINE: usize = 4;

/// One byte sequence to mask and the secret it belongs to.
struct Pattern {
    bytes: Zeroizing<Vec<u8>>,
    /// Index into `Redactor::labels`.
    label: usize,
}

/// The values to mask in one run.
#[derive(Default)]
pub struct Redactor {
    patterns: Vec<Pattern>,
    /// `[secret NAME]` per secret.
    labels: Vec<Vec<u8>>,
    /// Bytes some pattern starts with.
    first: Vec<bool>,
    /// Length of the longest pattern.
    longest: usize,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: a value must never reach a debug print.
        let names: Vec<Cow<'_, str>> = self
            .labels
            .iter()
            .map(|l| String::from_utf8_lossy(l))
            .collect();
        f.debug_struct("Redactor").field("labels", &names).finish()
    }
}

/// A span of masked bytes in a buffer and the secrets found in it.
struct Region {
    start: usize,
    end: usize,
    labels: Vec<usize>,
}

impl Redactor {
    /// Mask these (name, value) pairs. Empty values are ignored.
    pub fn new<'a>(secrets: impl IntoIterator<Item = (&'a str, &'a str)>) -> Redactor {
        let mut r = Redactor {
            first: vec![false; 256],
            ..Redactor::default()
        };
        for (name, value) in secrets {
            r.add(name, value);
        }
        r
    }

    fn add(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        let label = match self.labels.iter().position(|l| *l == label_of(name)) {
            Some(i) => i,
            None => {
                self.labels.push(label_of(name));
                self.labels.len() - 1
            }
        };
        let mut push = |bytes: &[u8]| {
            if self.patterns.iter().any(|p| *p.bytes == bytes) {
                return;
            }
            self.first[bytes[0] as usize] = true;
            self.longest = self.longest.max(bytes.len());
            self.patterns.push(Pattern {
                bytes: Zeroizing::new(bytes.to_vec()),
                label,
            });
        };
        push(value.as_bytes());
        if value.contains('\n') {
            for line in value.split('\n').map(str::trim) {
                if line.chars().count() >= MIN_LINE {
                    push(line.as_bytes());
                }
            }
        }
    }

    /// True when there is nothing to mask (every call is then a pass-through).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// `text` with every value replaced by its `[secret NAME]`.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = Vec::new();
        match self.mask(text.as_bytes(), 0, text.len(), &mut out) {
            None => Cow::Borrowed(text),
            Some(_) => Cow::Owned(String::from_utf8_lossy(&out).into_owned()),
        }
    }

    /// Redact `s` in place.
    pub fn redact_string(&self, s: &mut String) {
        if let Cow::Owned(clean) = self.redact(s) {
            *s = clean;
        }
    }

    /// Redact a shared string, keeping it when nothing changes.
    pub fn redact_arc(&self, s: &mut Arc<str>) {
        if let Cow::Owned(clean) = self.redact(s) {
            *s = Arc::from(clean);
        }
    }

    /// Mask every string of a JSON document (before it is written, so values that JSON
    /// escapes are masked too).
    pub fn redact_json(&self, v: &mut serde_json::Value) {
        if self.is_empty() {
            return;
        }
        match v {
            serde_json::Value::String(s) => self.redact_string(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| self.redact_json(x)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|x| self.redact_json(x)),
            _ => {}
        }
    }

    /// An error with every value in its text masked.
    pub fn redact_error(&self, mut e: crate::error::Error) -> crate::error::Error {
        if self.is_empty() {
            return e;
        }
        self.redact_string(&mut e.title);
        for d in &mut e.diagnostics {
            self.redact_string(&mut d.message);
            for (k, v) in &mut d.facts {
                self.redact_string(k);
                self.redact_string(v);
            }
            for s in &mut d.sections {
                self.redact_string(&mut s.title);
                s.lines.iter_mut().for_each(|l| self.redact_string(l));
            }
            d.help.iter_mut().for_each(|h| self.redact_string(h));
            if let Some(loc) = &mut d.location {
                self.redact_string(&mut loc.source_line);
            }
        }
        e
    }

    /// Every occurrence of every pattern in `buf`, overlapping ones included, by start.
    fn matches(&self, buf: &[u8]) -> Vec<(usize, usize, usize)> {
        let mut found = Vec::new();
        for p in &self.patterns {
            // A finder per call: an owned one would keep a copy of the value that is
            // never wiped.
            let finder = memchr::memmem::Finder::new(&p.bytes[..]);
            let mut at = 0;
            while let Some(i) = finder.find(&buf[at..]) {
                found.push((at + i, at + i + p.bytes.len(), p.label));
                at += i + 1;
            }
        }
        found.sort_unstable();
        found
    }

    /// Masked spans of `buf` that start before `cut`: the first `forced` bytes (the rest
    /// of a value shown masked already, no label) and every match, overlapping or
    /// touching ones merged.
    fn regions(&self, buf: &[u8], forced: usize, cut: usize) -> Vec<Region> {
        let mut regions: Vec<Region> = Vec::new();
        if forced > 0 {
            regions.push(Region {
                start: 0,
                end: forced,
                labels: Vec::new(),
            });
        }
        for (start, end, label) in self.matches(buf) {
            if start >= cut {
                break;
            }
            match regions.last_mut() {
                Some(r) if start <= r.end => {
                    r.end = r.end.max(end);
                    if !r.labels.contains(&label) {
                        r.labels.push(label);
                    }
                }
                _ => regions.push(Region {
                    start,
                    end,
                    labels: vec![label],
                }),
            }
        }
        regions
    }

    /// Write `buf[..cut]` masked to `out`. None when nothing in it is masked (`out` is
    /// then untouched); else how many bytes after `cut` belong to a value shown masked
    /// already (the caller skips them next time).
    fn mask(&self, buf: &[u8], forced: usize, cut: usize, out: &mut Vec<u8>) -> Option<usize> {
        let regions = self.regions(buf, forced, cut);
        if regions.is_empty() {
            return None;
        }
        let mut pos = 0;
        for r in &regions {
            out.extend_from_slice(&buf[pos..r.start]);
            for &l in &r.labels {
                out.extend_from_slice(&self.labels[l]);
            }
            pos = r.end;
        }
        if pos >= cut {
            return Some(pos - cut);
        }
        out.extend_from_slice(&buf[pos..cut]);
        Some(0)
    }

    /// Where the tail of `buf` that could still become a value starts: the first
    /// position whose rest is a proper prefix of some pattern (`buf.len()` if none).
    fn hold_from(&self, buf: &[u8]) -> usize {
        let start = buf.len().saturating_sub(self.longest.saturating_sub(1));
        (start..buf.len())
            .find(|&i| {
                let rest = &buf[i..];
                self.first[rest[0] as usize]
                    && self
                        .patterns
                        .iter()
                        .any(|p| p.bytes.len() > rest.len() && p.bytes.starts_with(rest))
            })
            .unwrap_or(buf.len())
    }
}

fn label_of(name: &str) -> Vec<u8> {
    format!("[secret {name}]").into_bytes()
}

/// What is held of one stream between chunks.
#[derive(Default)]
struct Held {
    bytes: Vec<u8>,
    /// The first `skip` bytes of `bytes` belong to a value already shown masked.
    skip: usize,
}

/// Masks the output of one command attempt as it streams (stdout and stderr apart).
pub struct OutputFilter {
    redactor: Arc<Redactor>,
    held: [Held; 2],
    out: Vec<u8>,
}

impl OutputFilter {
    pub fn new(redactor: Arc<Redactor>) -> OutputFilter {
        OutputFilter {
            redactor,
            held: Default::default(),
            out: Vec::new(),
        }
    }

    /// Take a chunk of `stream`; pass on what can be shown (masked) to `sink`.
    pub fn push(&mut self, stream: Stream, data: &[u8], sink: &mut dyn FnMut(&[u8])) {
        if self.redactor.is_empty() {
            sink(data);
            return;
        }
        let OutputFilter {
            redactor,
            held,
            out,
        } = self;
        let (r, held) = (&**redactor, &mut held[stream as usize]);
        let joined;
        let buf: &[u8] = if held.bytes.is_empty() {
            data
        } else {
            held.bytes.extend_from_slice(data);
            joined = std::mem::take(&mut held.bytes);
            &joined
        };
        let cut = r.hold_from(buf);
        out.clear();
        let skip = match r.mask(buf, held.skip, cut, out) {
            None => {
                if cut > 0 {
                    sink(&buf[..cut]);
                }
                0
            }
            Some(skip) => {
                if !out.is_empty() {
                    sink(out);
                }
                skip
            }
        };
        held.bytes.clear();
        held.bytes.extend_from_slice(&buf[cut..]);
        held.skip = skip;
    }

    /// The stream ended: pass on what was held, masked.
    pub fn finish(&mut self, stream: Stream, sink: &mut dyn FnMut(&[u8])) {
        let held = std::mem::take(&mut self.held[stream as usize]);
        if held.bytes.is_empty() {
            return;
        }
        self.out.clear();
        let len = held.bytes.len();
        match self
            .redactor
            .mask(&held.bytes, held.skip, len, &mut self.out)
        {
            None => sink(&held.bytes),
            Some(_) if !self.out.is_empty() => sink(&self.out),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filtered(r: &Arc<Redactor>, chunks: &[&[u8]]) -> Vec<u8> {
        let mut f = OutputFilter::new(Arc::clone(r));
        let mut got = Vec::new();
        for c in chunks {
            f.push(Stream::Stdout, c, &mut |b| got.extend_from_slice(b));
        }
        f.finish(Stream::Stdout, &mut |b| got.extend_from_slice(b));
        got
    }

    #[test]
    fn values_and_lines_of_values_are_masked() {
        let r = Redactor::new([("DB", "hunter22"), ("KEY", "-----BEGIN\nabcdefgh\nxy\n")]);
        assert_eq!(r.redact("pw=hunter22;"), "pw=[secret DB];");
        assert_eq!(r.redact("no secret here"), "no secret here");
        assert_eq!(
            r.redact("-----BEGIN\r\nabcdefgh\r\nxy"),
            "[secret KEY]\r\n[secret KEY]\r\nxy"
        );
        assert_eq!(r.redact("-----BEGIN\nabcdefgh\nxy\n!"), "[secret KEY]!");
        assert!(matches!(r.redact("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn overlapping_values_are_masked_whole() {
        let r = Redactor::new([("A", "abcd"), ("B", "cdefgh")]);
        assert_eq!(r.redact("xabcdefghy"), "x[secret A][secret B]y");
        assert_eq!(r.redact("aaaa"), "aaaa");
        let r = Redactor::new([("A", "aaaa")]);
        assert_eq!(r.redact("baaaaaaab"), "b[secret A]b");
    }

    #[test]
    fn a_value_split_across_chunks_is_masked() {
        let r = Arc::new(Redactor::new([("DB", "hunter22")]));
        assert_eq!(filtered(&r, &[b"pw=hun", b"ter22\n"]), b"pw=[secret DB]\n");
        assert_eq!(filtered(&r, &[b"h", b"u", b"nter2", b"2"]), b"[secret DB]");
        assert_eq!(filtered(&r, &[b"hunt", b"er"]), b"hunter");
        // Only what could become a value is held back.
        let mut f = OutputFilter::new(Arc::clone(&r));
        let mut got = Vec::new();
        f.push(Stream::Stdout, b"line\nhun", &mut |b| {
            got.extend_from_slice(b)
        });
        assert_eq!(got, b"line\n");
        f.push(Stream::Stderr, b"x", &mut |b| got.extend_from_slice(b));
        assert_eq!(got, b"line\nx");
    }

    #[test]
    fn a_long_run_of_overlapping_matches_is_not_held() {
        let r = Arc::new(Redactor::new([("A", "aaaa")]));
        let mut f = OutputFilter::new(Arc::clone(&r));
        let mut got = Vec::new();
        for _ in 0..1000 {
            f.push(Stream::Stdout, b"aaaaaaa", &mut |b| {
                got.extend_from_slice(b)
            });
            assert!(f.held[0].bytes.len() < 4);
        }
        f.finish(Stream::Stdout, &mut |b| got.extend_from_slice(b));
        assert!(!got.windows(4).any(|w| w == b"aaaa"), "{got:?}");
        assert!(got.starts_with(b"[secret A]"));
    }

    #[test]
    fn errors_are_masked() {
        let r = Redactor::new([("DB", "hunter22")]);
        let e = crate::error::Error::usage("cannot run `login hunter22`").with_help("x hunter22");
        let e = r.redact_error(e);
        assert_eq!(e.title, "cannot run `login [secret DB]`");
        assert_eq!(e.diagnostics[0].help[0], "x [secret DB]");
    }

    /// No chunking of output lets a value through, and text without values is unchanged.
    #[test]
    fn no_chunking_lets_a_value_through() {
        fn prop(pre: Vec<u8>, post: Vec<u8>, cuts: Vec<u8>, value: String, copies: u8) -> bool {
            let value: String = value.chars().filter(|c| *c != '\n').collect();
            if value.chars().count() < 4 {
                return true;
            }
            let r = Arc::new(Redactor::new([("S", value.as_str())]));
            let mut data = pre.clone();
            for _ in 0..=copies % 3 {
                data.extend_from_slice(value.as_bytes());
                data.extend_from_slice(&post);
            }
            let chunks = split(&data, &cuts);
            let got = filtered(&r, &chunks);
            let v = value.as_bytes();
            if got.windows(v.len()).any(|w| w == v) {
                return false;
            }
            // The same cuts over text without the value: unchanged.
            let clean: Vec<u8> = [pre, post].concat();
            if clean.windows(v.len()).any(|w| w == v) {
                return true;
            }
            filtered(&r, &split(&clean, &cuts)) == clean
        }
        quickcheck::QuickCheck::new()
            .tests(500)
            .quickcheck(prop as fn(Vec<u8>, Vec<u8>, Vec<u8>, String, u8) -> bool);
    }

    fn split<'a>(data: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
        let mut chunks = Vec::new();
        let mut at = 0;
        for c in cuts {
            let next = (at + *c as usize % 7).min(data.len());
            chunks.push(&data[at..next]);
            at = next;
        }
        chunks.push(&data[at..]);
        chunks
    }
}
