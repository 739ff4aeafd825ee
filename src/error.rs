//! One error type for everything a user can cause: what happened, where, what to try,
//! and the exit code it maps to. Rendering lives here too so every error looks the same.
//! Must not: print on its own, or carry anything the user cannot act on (no backtraces).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Exit codes of SPEC §8.
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

/// One problem found in a file, with its place and an optional hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub location: Option<Location>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            location: None,
            help: None,
        }
    }

    pub fn at(mut self, location: Location) -> Diagnostic {
        self.location = Some(location);
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    pub fn help_opt(mut self, help: Option<String>) -> Diagnostic {
        self.help = help;
        self
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

    pub fn with_help(mut self, help: impl Into<String>) -> Error {
        self.diagnostics.push(Diagnostic::new("").help(help));
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
}

/// Tell the user something went wrong but the work goes on: `warning: MESSAGE` on
/// stderr, then `  help: ...` lines. Always shown, whatever `--log-level` says, and
/// written with one write so that it does not interleave with other output.
pub fn warn(message: impl fmt::Display, help: &[String]) {
    use std::io::Write;
    let mut text = format!("warning: {message}\n");
    for h in help {
        text += &format!("  help: {h}\n");
    }
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
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
        writeln!(f, "Error: {}", self.title)?;
        for d in &self.diagnostics {
            writeln!(f)?;
            if d.message.is_empty() && d.location.is_none() {
                if let Some(help) = &d.help {
                    for line in help.lines() {
                        writeln!(f, "  {line}")?;
                    }
                }
                continue;
            }
            match &d.location {
                Some(loc) => {
                    writeln!(
                        f,
                        "  {}:{}:{}: {}",
                        loc.file.display(),
                        loc.line,
                        loc.column,
                        d.message
                    )?;
                    let num = loc.line.to_string();
                    let pad = " ".repeat(num.len());
                    writeln!(f, "  {pad} |")?;
                    writeln!(f, "  {num} | {}", loc.source_line)?;
                    let lead: String = loc
                        .source_line
                        .chars()
                        .take(loc.column - 1)
                        .map(|c| if c == '\t' { '\t' } else { ' ' })
                        .collect();
                    writeln!(f, "  {pad} | {lead}{}", "^".repeat(loc.width))?;
                    if let Some(help) = &d.help {
                        writeln!(f, "  {pad} = help: {help}")?;
                    }
                }
                None => {
                    writeln!(f, "  {}", d.message)?;
                    if let Some(help) = &d.help {
                        writeln!(f, "  help: {help}")?;
                    }
                }
            }
        }
        Ok(())
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
