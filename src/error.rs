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

/// A place in nexus.toml, resolved to line and column, with the source line for the caret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub source_line: String,
    /// Width of the caret underline, in characters (at least 1).
    pub width: usize,
}

impl Location {
    /// Resolve a byte span in `source` to a line/column location (1-based, columns in chars).
    pub fn from_span(file: &Path, source: &str, span: Range<usize>) -> Location {
        let start = span.start.min(source.len());
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line = source[..start].matches('\n').count() + 1;
        let column = source[line_start..start].chars().count() + 1;
        let end = span.end.clamp(start, line_end);
        let width = source[start..end].chars().count().max(1);
        Location {
            file: file.to_path_buf(),
            line,
            column,
            source_line: source[line_start..line_end]
                .trim_end_matches('\r')
                .to_string(),
            width,
        }
    }
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
            .take(loc.column - 1)
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

    /// Several problems found in one file (exit 2).
    pub fn validation(diagnostics: Vec<Diagnostic>) -> Error {
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
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = word.chars().count();
    let limit = (len / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| {
            let d = edit_distance(word, c);
            let prefix = len >= 3 && c.starts_with(word);
            (if prefix { d.min(limit) } else { d }, c)
        })
        .filter(|(d, c)| *d <= limit && *d < c.chars().count().max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

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
