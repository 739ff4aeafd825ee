//! The problems found in one nexus.toml, kept bounded whatever the file holds: only the
//! first `MAX_SHOWN` in file order are kept (and located, once, in one pass over the
//! text), the others are only counted; each kept message is made printable and short.
//! Must not: decide what is a problem (the walker does), or print.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Range;
use std::path::Path;

use crate::error::{printable, Diagnostic, Error, Locator, MAX_SHOWN};

/// A quoted part of a message (between backticks) longer than this many characters is
/// shortened to its start and end.
const QUOTE_MAX: usize = 80;

/// A message or hint longer than this many characters loses its middle.
const TEXT_MAX: usize = 600;

/// Names listed in a hint ("defined tasks: …").
const NAMES_SHOWN: usize = 20;

/// The problems of one file: the first `MAX_SHOWN` by position, and how many others.
#[derive(Default)]
pub(super) struct Problems {
    kept: BinaryHeap<Pending>,
    more: usize,
    seq: usize,
}

/// A problem not yet located: its byte span, message and hint.
struct Pending {
    span: Range<usize>,
    /// Order of finding, so problems at one position keep it.
    seq: usize,
    message: String,
    help: Option<String>,
}

impl Pending {
    fn key(&self) -> (usize, usize) {
        (self.span.start, self.seq)
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl Problems {
    /// Whether a problem found now at byte `start` would be shown: callers skip costly
    /// hints (suggestions, lists of names) for problems that would not.
    pub(super) fn wants(&self, start: usize) -> bool {
        self.kept.len() < MAX_SHOWN || self.kept.peek().is_some_and(|p| start < p.span.start)
    }

    pub(super) fn push(&mut self, span: Range<usize>, message: String, help: Option<String>) {
        let p = Pending {
            span,
            seq: self.seq,
            message,
            help,
        };
        self.seq += 1;
        if self.kept.len() < MAX_SHOWN {
            self.kept.push(p);
            return;
        }
        self.more += 1;
        if self.kept.peek().is_some_and(|last| p < *last) {
            self.kept.pop();
            self.kept.push(p);
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// The kept problems in file order, located in `src` (read from `path`), as the
    /// error to report.
    pub(super) fn into_error(self, path: &Path, src: &str) -> Error {
        let mut locator = Locator::new(path, src);
        let diags = self
            .kept
            .into_sorted_vec()
            .into_iter()
            .map(|p| {
                Diagnostic::new(tidy(&p.message))
                    .at(locator.locate(p.span))
                    .help_opt(p.help.as_deref().map(tidy))
            })
            .collect();
        Error::validation_more(diags, self.more)
    }
}

/// A message as shown: control characters escaped, long quoted parts (between
/// backticks) shortened, and at most about `TEXT_MAX` characters.
pub(super) fn tidy(text: &str) -> String {
    let text = printable(text);
    if text.matches('`').count() % 2 == 1 {
        // A backtick inside a quoted value: which parts are quoted is not known.
        return shorten(&text, TEXT_MAX);
    }
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 {
            out.push_str(&shorten(part, QUOTE_MAX));
        } else {
            out.push_str(part);
        }
    }
    shorten(&out, TEXT_MAX)
}

/// `text`, or its start and end around `…` when it has more than `max` characters.
pub(super) fn shorten(text: &str, max: usize) -> String {
    if text.chars().nth(max).is_none() {
        return text.to_string();
    }
    let keep_end = max / 4;
    let keep_start = max - keep_end - 1;
    let start: String = text.chars().take(keep_start).collect();
    let end_at = text
        .char_indices()
        .rev()
        .nth(keep_end - 1)
        .map_or(0, |(i, _)| i);
    format!("{start}…{}", &text[end_at..])
}

/// At most `NAMES_SHOWN` of `names`, comma-separated, and how many there are in all
/// when that is more.
pub(super) fn some_names(names: &[String]) -> String {
    let shown: Vec<String> = names
        .iter()
        .take(NAMES_SHOWN)
        .map(|n| shorten(n, QUOTE_MAX))
        .collect();
    if names.len() <= NAMES_SHOWN {
        return shown.join(", ");
    }
    format!("{}, … ({} in all)", shown.join(", "), names.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_problems_by_position_and_counts_the_rest() {
        let mut p = Problems::default();
        for start in (0..100).rev() {
            p.push(start..start + 1, format!("at {start}"), None);
        }
        assert!(!p.wants(50) && p.wants(3));
        let src = "x".repeat(100);
        let e = p.into_error(Path::new("f"), &src);
        let cols: Vec<usize> = e
            .diagnostics
            .iter()
            .filter_map(|d| d.location.as_ref().map(|l| l.column))
            .collect();
        assert_eq!(cols, (1..=MAX_SHOWN).collect::<Vec<_>>());
        assert_eq!(
            e.diagnostics[MAX_SHOWN].message,
            "and 80 more problems, not shown"
        );
    }

    #[test]
    fn long_quotes_and_control_characters_are_tamed() {
        let long = "k".repeat(200);
        let t = tidy(&format!("unknown key `{long}` in task `a\u{1b}[31m`"));
        assert_eq!(
            t,
            format!(
                "unknown key `{}…{}` in task `a\\u{{1b}}[31m`",
                "k".repeat(59),
                "k".repeat(20)
            )
        );
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcdefghij", 8), "abcde…ij");
    }
}
