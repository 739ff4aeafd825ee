//! One error type for everything a user can cause: what happened, where, what to try,
//! and the exit code it maps to. Rendering lives here too so every error looks the same.
//! Must not: print on its own, or carry anything the user cannot act on (no backtraces).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Exit codes (docs/output.md, "Exit codes").
pub mod exit {
    pub const SUCCESS: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const SSH: i32 = 3;
    pub const TIMEOUT: i32 = 4;
    pub const INTERRUPTED: i32 = 130;
}

/// How many problems of one file are shown; the rest are counted in one line.
pub const MAX_SHOWN: usize = 20;

/// A source line longer than this (in characters) is shown as a window around the caret.
pub const LINE_WINDOW: usize = 100;

/// Characters of context shown before the caret in a windowed line.
const WINDOW_BEFORE: usize = 40;

/// A place in nexus.toml, resolved to line and column, with the source line for the caret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// The line as shown: at most about `LINE_WINDOW` characters around the caret (`…`
    /// where cut), control characters replaced by `\u{fffd}`.
    pub source_line: String,
    /// Characters of `source_line` before the caret.
    pub caret: usize,
    /// Width of the caret underline, in characters (at least 1).
    pub width: usize,
}

impl Location {
    /// Resolve a byte span in `source` to a line/column location (1-based, columns in chars).
    /// Counts lines from the start of `source`: to resolve many spans, use a `Locator`.
    pub fn from_span(file: &Path, source: &str, span: Range<usize>) -> Location {
        Locator::new(file, source).locate(span)
    }
}

/// Resolves byte spans of one source to locations, counting lines from the previous
/// span: spans given in file order cost one pass over the text in all.
pub struct Locator<'s> {
    file: &'s Path,
    src: &'s str,
    /// A byte offset already resolved, its 1-based line, and where that line starts.
    at: usize,
    line: usize,
    line_start: usize,
}

impl<'s> Locator<'s> {
    pub fn new(file: &'s Path, src: &'s str) -> Locator<'s> {
        Locator {
            file,
            src,
            at: 0,
            line: 1,
            line_start: 0,
        }
    }

    pub fn locate(&mut self, span: Range<usize>) -> Location {
        let src = self.src;
        let mut start = span.start.min(src.len());
        while !src.is_char_boundary(start) {
            start -= 1;
        }
        if start < self.at {
            (self.at, self.line, self.line_start) = (0, 1, 0);
        }
        let skipped = &src.as_bytes()[self.at..start];
        if let Some(i) = skipped.iter().rposition(|&b| b == b'\n') {
            self.line += skipped.iter().filter(|&&b| b == b'\n').count();
            self.line_start = self.at + i + 1;
        }
        self.at = start;
        let line_start = self.line_start;
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let mut end = span.end.clamp(start, line_end);
        while !src.is_char_boundary(end) {
            end -= 1;
        }
        let line_text = src[line_start..line_end].trim_end_matches('\r');
        let before = start - line_start;
        let column = src[line_start..start].chars().count() + 1;
        let width = src[start..end].chars().count().max(1);
        let (source_line, caret, width) = window(line_text, before.min(line_text.len()), width);
        Location {
            file: self.file.to_path_buf(),
            line: self.line,
            column,
            source_line,
            caret,
            width,
        }
    }
}

/// The part of `line` shown under a location: all of it when short, else about
/// `LINE_WINDOW` characters around byte `at`, with `…` where cut. Returns the text, the
/// characters before the caret in it, and the caret width clipped to the text.
fn window(line: &str, at: usize, width: usize) -> (String, usize, usize) {
    let head = &line[..at];
    let tail = &line[at..];
    let short = line.len() <= LINE_WINDOW || line.chars().nth(LINE_WINDOW).is_none();
    let (before, after, cut_left, cut_right) = if short {
        (head, tail, false, false)
    } else {
        // About WINDOW_BEFORE characters before the caret, more when the line ends soon.
        let tail_chars = tail.chars().take(LINE_WINDOW).count();
        let want_before = LINE_WINDOW - tail_chars.min(LINE_WINDOW - WINDOW_BEFORE);
        let left = head
            .char_indices()
            .rev()
            .nth(want_before - 1)
            .map_or(0, |(i, _)| i);
        let shown_before = head[left..].chars().count();
        let right = tail
            .char_indices()
            .nth(LINE_WINDOW - shown_before)
            .map_or(tail.len(), |(i, _)| i);
        let after = &tail[..right];
        (&head[left..], after, left > 0, right < tail.len())
    };
    let mut text = String::new();
    if cut_left {
        text.push('…');
    }
    text.extend(before.chars().map(visible));
    let caret = text.chars().count();
    text.extend(after.chars().map(visible));
    let room = after.chars().count().max(1);
    if cut_right {
        text.push('…');
    }
    (text, caret, width.min(room))
}

/// A character as shown in a source line: control characters (other than tab) would
/// move the terminal's cursor or change its colors, so they are shown as `\u{fffd}`.
fn visible(c: char) -> char {
    if c.is_control() && c != '\t' {
        '\u{fffd}'
    } else {
        c
    }
}

/// `text` with control characters written as escapes (`\u{1b}`, `\n`): safe to print
/// when it comes from a file or the command line.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// One problem to show: a message, where it is (a file location with the source line
/// and a caret), facts about it (`Host: web-1`), sections of lines (captured output),
/// and what to try. Config errors, run failures, SSH errors, pre-flight failures and
/// warnings are all rendered from this one type, so "what to try" always reads `help:`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostic {
    pub message: String,
    pub location: Option<Location>,
    /// `Label: value` lines, in order.
    pub facts: Vec<(String, String)>,
    /// Titled blocks of lines (captured output, earlier commands).
    pub sections: Vec<Section>,
    pub help: Vec<String>,
}

/// A titled block of lines inside a diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub title: String,
    pub lines: Vec<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            ..Diagnostic::default()
        }
    }

    pub fn at(mut self, location: Location) -> Diagnostic {
        self.location = Some(location);
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help.push(help.into());
        self
    }

    pub fn help_opt(mut self, help: Option<String>) -> Diagnostic {
        self.help.extend(help);
        self
    }

    pub fn fact(mut self, label: impl Into<String>, value: impl Into<String>) -> Diagnostic {
        self.facts.push((label.into(), value.into()));
        self
    }

    pub fn section(mut self, title: impl Into<String>, lines: Vec<String>) -> Diagnostic {
        self.sections.push(Section {
            title: title.into(),
            lines,
        });
        self
    }

    /// The diagnostic as text, indented under a heading (`Error: ...`, `warning: ...`).
    fn render(&self, out: &mut String, paint: &Paint) {
        match &self.location {
            Some(loc) => self.render_located(out, loc, paint),
            None => self.render_plain(out, paint),
        }
    }

    fn render_located(&self, out: &mut String, loc: &Location, paint: &Paint) {
        *out += &format!(
            "  {}:{}:{}: {}\n",
            loc.file.display(),
            loc.line,
            loc.column,
            self.message
        );
        let num = loc.line.to_string();
        let pad = " ".repeat(num.len());
        let lead: String = loc
            .source_line
            .chars()
            .take(loc.caret)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        *out += &format!("  {pad} |\n  {num} | {}\n", loc.source_line);
        *out += &format!("  {pad} | {lead}{}\n", "^".repeat(loc.width));
        for h in &self.help {
            *out += &format!("  {pad} = {} {h}\n", paint.help());
        }
    }

    fn render_plain(&self, out: &mut String, paint: &Paint) {
        if !self.message.is_empty() {
            for line in self.message.lines() {
                *out += &format!("  {line}\n");
            }
        }
        for (k, v) in &self.facts {
            *out += &format!("  {k}: {v}\n");
        }
        for s in &self.sections {
            *out += &format!("\n  {}:\n", s.title);
            for l in &s.lines {
                *out += &format!("    {l}\n");
            }
        }
        let body = !self.message.is_empty() || !self.facts.is_empty() || !self.sections.is_empty();
        if body && !self.help.is_empty() {
            out.push('\n');
        }
        for h in &self.help {
            *out += &format!("  {} {h}\n", paint.help());
        }
    }
}

/// Colors of the headings, when the output is a terminal.
struct Paint {
    color: bool,
}

impl Paint {
    fn word(&self, word: &str, color: nu_ansi_term::Color) -> String {
        if self.color {
            color.bold().paint(word).to_string()
        } else {
            word.to_string()
        }
    }

    fn help(&self) -> String {
        self.word("help:", nu_ansi_term::Color::Cyan)
    }
}

/// The error every fallible operation in nexus returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Headline after `Error: `, e.g. "Validation failed".
    pub title: String,
    pub diagnostics: Vec<Diagnostic>,
    pub exit_code: i32,
}

impl Error {
    /// A usage/configuration error (exit 2) with a single message.
    pub fn usage(message: impl Into<String>) -> Error {
        Error {
            title: message.into(),
            diagnostics: Vec::new(),
            exit_code: exit::USAGE,
        }
    }

    /// What to try; consecutive hints are shown together.
    pub fn with_help(mut self, help: impl Into<String>) -> Error {
        match self.diagnostics.last_mut() {
            Some(d) if d.message.is_empty() && d.location.is_none() && d.facts.is_empty() => {
                d.help.push(help.into())
            }
            _ => self.diagnostics.push(Diagnostic::new("").help(help)),
        }
        self
    }

    pub fn with_code(mut self, code: i32) -> Error {
        self.exit_code = code;
        self
    }

    /// Several problems found in one file (exit 2): the first `MAX_SHOWN`, then a line
    /// that counts the others.
    pub fn validation(mut diagnostics: Vec<Diagnostic>) -> Error {
        let more = diagnostics.len().saturating_sub(MAX_SHOWN);
        diagnostics.truncate(MAX_SHOWN);
        Error::validation_more(diagnostics, more)
    }

    /// Problems of one file (exit 2) of which `more` others were found and are not shown.
    pub fn validation_more(mut diagnostics: Vec<Diagnostic>, more: usize) -> Error {
        if more > 0 {
            let what = if more == 1 { "problem" } else { "problems" };
            diagnostics.push(
                Diagnostic::new(format!("and {more} more {what}, not shown"))
                    .help("fix the ones above, then run `nexus validate` again to see the rest"),
            );
        }
        Error {
            title: "Validation failed".to_string(),
            diagnostics,
            exit_code: exit::USAGE,
        }
    }

    pub fn io(what: impl fmt::Display, path: &Path, err: &std::io::Error) -> Error {
        Error::usage(format!("{what} {}: {}", path.display(), io_reason(err)))
    }

    /// The error as text; `color` paints the headings.
    pub fn render(&self, color: bool) -> String {
        let paint = Paint { color };
        let mut out = format!(
            "{} {}\n",
            paint.word("Error:", nu_ansi_term::Color::Red),
            self.title
        );
        for d in &self.diagnostics {
            out.push('\n');
            d.render(&mut out, &paint);
        }
        out
    }
}

/// A warning as text: `warning: MESSAGE`, then its facts and `help:` lines indented.
pub fn warning_text(d: &Diagnostic, color: bool) -> String {
    let paint = Paint { color };
    if d.location.is_some() {
        // `warning: FILE:LINE:COL: message`, then the line and its caret.
        let mut body = String::new();
        d.render(&mut body, &paint);
        let body = body.strip_prefix("  ").unwrap_or(&body);
        return format!(
            "{} {body}",
            paint.word("warning:", nu_ansi_term::Color::Yellow)
        );
    }
    let mut out = format!(
        "{} {}\n",
        paint.word("warning:", nu_ansi_term::Color::Yellow),
        d.message
    );
    let rest = Diagnostic {
        message: String::new(),
        ..d.clone()
    };
    rest.render(&mut out, &paint);
    out
}

/// Whether stderr is a terminal that takes colors (not NO_COLOR, TERM=dumb or CI).
pub fn stderr_color() -> bool {
    use std::io::IsTerminal;
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    let force = env("FORCE_COLOR").is_some_and(|v| v != "0" && v != "false");
    force
        || (std::io::stderr().is_terminal()
            && env("NO_COLOR").is_none()
            && env("CI").is_none()
            && !dumb)
}

/// Tell the user something went wrong but the work goes on: `warning: MESSAGE` on
/// stderr, then `  help: ...` lines. Always shown, whatever `--log-level` says, and
/// written with one write so that it does not interleave with other output.
pub fn warn(message: impl fmt::Display, help: &[String]) {
    use std::io::Write;
    let mut d = Diagnostic::new(message.to_string());
    d.help = help.to_vec();
    let text = warning_text(&d, stderr_color());
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// A line of nexus's own about what it does (`resuming run …`), on stderr, in one write.
pub fn note(message: impl fmt::Display) {
    use std::io::Write;
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("{message}\n").as_bytes());
}

/// An io::Error's message without Rust's "(os error N)" suffix.
pub fn io_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The closest candidate by edit distance, if it is close enough to be a likely typo.
/// Close means: at most one edit per three characters (a swap of neighbours is one edit),
/// or the word is a prefix of at least three characters of the candidate.
/// Words longer than `SUGGEST_MAX` characters get no suggestion (nor are suggested): a
/// typo that long is unlikely, and the cost of comparing grows with the square.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = word.chars().count();
    if len > SUGGEST_MAX {
        return None;
    }
    let limit = (len / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != word && c.len() <= 4 * SUGGEST_MAX)
        .filter(|c| c.chars().count().abs_diff(len) <= limit || c.starts_with(word))
        .map(|c| {
            let d = edit_distance(word, c);
            let prefix = len >= 3 && c.starts_with(word);
            (if prefix { d.min(limit) } else { d }, c)
        })
        .filter(|(d, c)| *d <= limit && *d < c.chars().count().max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The longest word `suggest` compares, in characters.
pub const SUGGEST_MAX: usize = 64;

/// "did you mean `x`?" or nothing.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    suggest(word, candidates).map(|s| format!("did you mean `{s}`?"))
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// adjacent characters each cost one.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_points_at_the_token() {
        let src = "a = 1\ndeps = [\"buld\"]\n";
        let start = src.find("\"buld\"").unwrap();
        let loc = Location::from_span(Path::new("nexus.toml"), src, start..start + 6);
        assert_eq!((loc.line, loc.column, loc.width), (2, 9, 6));
        assert_eq!(loc.source_line, "deps = [\"buld\"]");
    }

    #[test]
    fn a_locator_agrees_with_counting_from_the_start() {
        let src = "a = 1\n\nbé = [\"x\",\r\n  \"y\"]\nlast";
        let naive = |at: usize| {
            let line = src[..at].matches('\n').count() + 1;
            let start = src[..at].rfind('\n').map_or(0, |i| i + 1);
            (line, src[start..at].chars().count() + 1)
        };
        let mut l = Locator::new(Path::new("f"), src);
        let offsets: Vec<usize> = (0..=src.len())
            .filter(|&i| src.is_char_boundary(i))
            .collect();
        // Forward, then backward (which starts counting again).
        for &at in offsets.iter().chain(offsets.iter().rev()) {
            let loc = l.locate(at..at + 1);
            assert_eq!((loc.line, loc.column), naive(at), "at {at}");
        }
    }

    #[test]
    fn a_long_line_is_cut_to_a_window_around_the_caret() {
        let line = format!("{}X{}", "a".repeat(300), "b".repeat(300));
        let (text, caret, width) = window(&line, 300, 500);
        assert_eq!(text, format!("…{}X{}…", "a".repeat(40), "b".repeat(59)));
        assert_eq!((caret, width), (41, 60));
        // Near the end of the line the window reaches further back.
        let (text, caret, width) = window(&line, 598, 1);
        assert_eq!(text, format!("…{}", "b".repeat(100)));
        assert_eq!((caret, width), (98, 1));
        let (text, caret, _) = window("a\u{1b}[31mb", 1, 1);
        assert_eq!((text.as_str(), caret), ("a\u{fffd}[31mb", 1));
    }

    #[test]
    fn suggestions_are_close_words_only() {
        assert_eq!(suggest("buld", ["build", "test"]), Some("build"));
        assert_eq!(suggest("biuld", ["build", "test"]), Some("build"));
        assert_eq!(suggest("dep", ["deps", "desc"]), Some("deps"));
        assert_eq!(suggest("zzzz", ["build", "test"]), None);
        assert_eq!(suggest("tcsh", ["bash", "zsh", "fish"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("hots", "host"), 1);
    }
}
