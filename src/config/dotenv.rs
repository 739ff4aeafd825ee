//! dotenv files (`dotenv = [".env"]`, docs/nexus-toml.md): `KEY=value` lines, `#`
//! comments, blank lines, an optional `export ` before the name, values bare, in single
//! quotes (taken as they are) or double quotes (`\n`, `\t`, `\r`, `\"`, `\\`, `\$`
//! escapes). Values are not expanded (`$X` stays as written). A file that does not exist
//! is skipped; a line that is none of these is an error with the file's line and column.
//! Must not: change nexus's own environment (the run passes the values on).

use std::ops::Range;
use std::path::Path;

use super::rules::is_env_name;
use crate::error::{Diagnostic, Error, Locator};

/// The largest dotenv file read, in bytes.
pub const MAX_SIZE: u64 = 1024 * 1024;

/// A problem on one line: where (byte range in the file), what, what to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub span: Range<usize>,
    pub message: String,
    pub help: String,
}

/// The variables of a dotenv file's text, in order (a name given twice keeps its last
/// value), or its first problem.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, Problem> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let at = start;
        start += line.len();
        let line = line.trim_end_matches('\n').trim_end_matches('\r');
        if let Some((k, v)) = parse_line(line, at)? {
            vars.retain(|(name, _)| *name != k);
            vars.push((k, v));
        }
    }
    Ok(vars)
}

fn problem(span: Range<usize>, message: impl Into<String>, help: impl Into<String>) -> Problem {
    Problem {
        span,
        message: message.into(),
        help: help.into(),
    }
}

/// One line (`at`: its offset in the file): None for a blank line or a comment.
fn parse_line(line: &str, at: usize) -> Result<Option<(String, String)>, Problem> {
    let body = line.trim_start();
    let mut pos = at + (line.len() - body.len());
    if body.is_empty() || body.starts_with('#') {
        return Ok(None);
    }
    let body = match body.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => {
            let rest = rest.trim_start();
            pos += body.len() - rest.len();
            rest
        }
        _ => body,
    };
    let Some(eq) = body.find('=') else {
        return Err(problem(
            pos..pos + body.len(),
            "expected `NAME=value`",
            "write one variable per line as NAME=value; comments start with #",
        ));
    };
    let name = body[..eq].trim_end();
    if !is_env_name(name) {
        return Err(problem(
            pos..pos + eq.max(1),
            format!("`{name}` is not a valid environment variable name"),
            "a name has letters, digits and `_`, and does not start with a digit (like `RUST_LOG`)",
        ));
    }
    let raw = &body[eq + 1..];
    let lead = raw.len() - raw.trim_start().len();
    let value = value(raw.trim_start(), pos + eq + 1 + lead)?;
    if value.contains('\0') {
        return Err(problem(
            pos..pos + body.len(),
            format!("the value of `{name}` has a NUL byte"),
            "no environment variable can hold one: remove it",
        ));
    }
    Ok(Some((name.to_string(), value)))
}

/// A value (`at`: its offset in the file): quoted, or bare up to a ` #` comment.
fn value(raw: &str, at: usize) -> Result<String, Problem> {
    let (text, rest) = match raw.chars().next() {
        Some('\'') => match raw[1..].find('\'') {
            Some(end) => (raw[1..1 + end].to_string(), &raw[end + 2..]),
            None => return Err(unterminated(at, raw, '\'')),
        },
        Some('"') => double_quoted(raw, at)?,
        _ => {
            let end = raw
                .char_indices()
                .find(|&(i, c)| c == '#' && raw[..i].ends_with([' ', '\t']))
                .map_or(raw.len(), |(i, _)| i);
            return Ok(raw[..end].trim_end().to_string());
        }
    };
    let after = rest.trim_start();
    if !after.is_empty() && !after.starts_with('#') {
        let off = at + raw.len() - after.len();
        return Err(problem(
            off..off + after.len(),
            "unexpected text after the closing quote",
            "quote the whole value, or start a comment with #",
        ));
    }
    Ok(text)
}

fn unterminated(at: usize, raw: &str, quote: char) -> Problem {
    problem(
        at..at + raw.len(),
        format!("the value's {quote} is not closed on its line"),
        format!("close it with {quote}; a value ends on its line (write a newline as \\n in double quotes)"),
    )
}

/// `"..."` with escapes: the text and what follows the closing quote.
fn double_quoted(raw: &str, at: usize) -> Result<(String, &str), Problem> {
    let mut out = String::new();
    let mut chars = raw.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &raw[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, e @ ('"' | '\\' | '$'))) => out.push(e),
                Some((_, e)) => {
                    out.push('\\');
                    out.push(e);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(unterminated(at, raw, '"'))
}

/// Read the dotenv `files` (relative to `root`; shown as written), later files winning.
/// A missing file is skipped; `spans` point at each name in nexus.toml (`config_file`,
/// `config_source`) for errors about the file itself.
pub fn load(
    root: &Path,
    files: &[(String, Range<usize>)],
    config_file: &Path,
    config_source: &str,
) -> Result<Vec<(String, String)>, Error> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for (name, span) in files {
        let path = crate::userenv::expand_tilde_path(name);
        let path = root.join(path);
        let at_config = || Locator::new(config_file, config_source).locate(span.clone());
        let text = match read(&path) {
            Ok(Some(t)) => t,
            Ok(None) => {
                log::debug!("dotenv: {} does not exist; skipped", path.display());
                continue;
            }
            Err(why) => {
                return Err(Error::validation(vec![Diagnostic::new(format!(
                    "cannot read dotenv file {name}: {why}"
                ))
                .at(at_config())
                .help("fix the file, or remove it from `dotenv`")]))
            }
        };
        let found = parse(&text).map_err(|p| {
            let shown = super::display_path(&path);
            let shown = shown.as_path();
            Error::validation(vec![Diagnostic::new(p.message)
                .at(Locator::new(shown, &text).locate(p.span))
                .help(p.help)])
        })?;
        for (k, v) in found {
            vars.retain(|(name, _)| *name != k);
            vars.push((k, v));
        }
    }
    Ok(vars)
}

/// The file's text; None when it does not exist.
fn read(path: &Path) -> Result<Option<String>, String> {
    use std::io::Read;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(crate::error::io_reason(&e)),
    };
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    if meta.len() > MAX_SIZE {
        return Err(format!("it is larger than 1 MiB ({} bytes)", meta.len()));
    }
    let file = crate::sys::open_read_nonblocking(path).map_err(|e| crate::error::io_reason(&e))?;
    let mut bytes = Vec::new();
    file.take(MAX_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| crate::error::io_reason(&e))?;
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| "it is not UTF-8 text".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(text: &str) -> Vec<(String, String)> {
        parse(text).unwrap()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_forms_users_write() {
        let text = "# a comment\n\nA=1\nexport B = two words \nC='it s' \nD=\"a\\nb \\\"q\\\" \\$x\"  # note\nE=x#y # comment\nF=\nG=''\r\nA=last\n  export\tH=h\n";
        assert_eq!(
            vars(text),
            pairs(&[
                ("B", "two words"),
                ("C", "it s"),
                ("D", "a\nb \"q\" $x"),
                ("E", "x#y"),
                ("F", ""),
                ("G", ""),
                ("A", "last"),
                ("H", "h"),
            ])
        );
    }

    #[test]
    fn malformed_lines_say_where() {
        let e = parse("A=1\nnot a line\n").unwrap_err();
        assert_eq!(
            (e.span, e.message.as_str()),
            (4..14, "expected `NAME=value`")
        );
        let e = parse("1A=x\n").unwrap_err();
        assert_eq!(e.message, "`1A` is not a valid environment variable name");
        let e = parse("A='open\n").unwrap_err();
        assert_eq!(e.message, "the value's ' is not closed on its line");
        assert_eq!(e.span, 2..7);
        let e = parse("A=\"x\" y\n").unwrap_err();
        assert_eq!(e.message, "unexpected text after the closing quote");
        assert_eq!(e.span, 6..7);
    }
}
