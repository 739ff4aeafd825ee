//! Placeholders (docs/nexus-toml.md): `{{ env("X") }}`, `{{ env("X", "d") }}`, `{{ host }}`,
//! `{{ task }}`, `{{ run_id }}`, `{{ timestamp }}`, `{{ git_sha }}`, `{{ git_branch }}` and
//! the `{{ "{{" }}` escape. Parsed once at load time into pieces; expanded per (task, host).
//! Shell syntax (`$HOME`, `${X}`) is plain text here. Must not: run anything but git.

use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    Env {
        name: String,
        default: Option<String>,
        /// Byte range of the placeholder inside the template text.
        span: Range<usize>,
    },
    Host,
    Task,
    RunId,
    Timestamp,
    GitSha,
    GitBranch,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    pub pieces: Vec<Piece>,
}

/// A template error: message, help, byte range within the template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    pub help: Option<String>,
    pub span: Range<usize>,
}

const NAMES: &[&str] = &[
    "env",
    "host",
    "task",
    "run_id",
    "timestamp",
    "git_sha",
    "git_branch",
];

/// Values a template can draw on when expanded.
pub trait Vars {
    fn host(&self) -> &str;
    fn task(&self) -> &str;
    fn run_id(&self) -> &str;
    fn timestamp(&self) -> &str;
    fn git_sha(&self) -> String;
    fn git_branch(&self) -> String;
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Template {
    pub fn literal(text: &str) -> Template {
        Template {
            pieces: vec![Piece::Lit(text.to_string())],
        }
    }

    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut pos = 0;
        while let Some(rel) = text[pos..].find("{{") {
            let open = pos + rel;
            lit.push_str(&text[pos..open]);
            let close = find_close(text, open + 2).ok_or_else(|| TemplateError {
                message: "placeholder `{{` is not closed with `}}`".to_string(),
                help: Some("write `{{ \"{{\" }}` for a literal `{{`".to_string()),
                span: open..text.len(),
            })?;
            let inner = text[open + 2..close].trim();
            let span = open..close + 2;
            let piece = parse_expr(inner, span.clone())?;
            match piece {
                Piece::Lit(s) => lit.push_str(&s),
                p => {
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                    }
                    pieces.push(p);
                }
            }
            pos = close + 2;
        }
        lit.push_str(&text[pos..]);
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Ok(Template { pieces })
    }

    /// Required env vars that are unset: (name, span within the text).
    pub fn unset_env(&self) -> Vec<(&str, Range<usize>)> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Env {
                    name,
                    default: None,
                    span,
                } if std::env::var_os(name).is_none() => Some((name.as_str(), span.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn is_literal(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Lit(_)))
    }

    pub fn uses(&self, f: impl Fn(&Piece) -> bool) -> bool {
        self.pieces.iter().any(f)
    }

    /// Expand with `vars`. A required env var that is unset expands to "" (callers check
    /// `unset_env` before any command runs).
    pub fn expand(&self, vars: &dyn Vars) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Lit(s) => out.push_str(s),
                Piece::Env { name, default, .. } => out.push_str(
                    &vars
                        .env(name)
                        .or_else(|| default.clone())
                        .unwrap_or_default(),
                ),
                Piece::Host => out.push_str(vars.host()),
                Piece::Task => out.push_str(vars.task()),
                Piece::RunId => out.push_str(vars.run_id()),
                Piece::Timestamp => out.push_str(vars.timestamp()),
                Piece::GitSha => out.push_str(&vars.git_sha()),
                Piece::GitBranch => out.push_str(&vars.git_branch()),
            }
        }
        out
    }
}

/// Index of the `}}` closing a placeholder opened before `from`, skipping quoted strings.
fn find_close(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = from;
    let mut quote = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote => i += 1,
            b'"' => quote = !quote,
            b'}' if !quote && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn parse_expr(inner: &str, span: Range<usize>) -> Result<Piece, TemplateError> {
    let err = |message: String, help: Option<String>| TemplateError {
        message,
        help,
        span: span.clone(),
    };
    if inner.starts_with('"') {
        return match parse_string_args(inner) {
            Some(args) if args.len() == 1 => Ok(Piece::Lit(args[0].clone())),
            _ => Err(err(
                format!("`{{{{ {inner} }}}}` is not a valid placeholder"),
                Some("a string placeholder holds one quoted string, e.g. `{{ \"{{\" }}`".into()),
            )),
        };
    }
    let name_end = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let name = &inner[..name_end];
    let rest = inner[name_end..].trim();
    if name.is_empty() {
        return Err(err(
            "empty placeholder `{{ }}`".to_string(),
            Some("write `{{ \"{{\" }}` for a literal `{{`".into()),
        ));
    }
    let simple = match name {
        "host" => Some(Piece::Host),
        "task" => Some(Piece::Task),
        "run_id" => Some(Piece::RunId),
        "timestamp" => Some(Piece::Timestamp),
        "git_sha" => Some(Piece::GitSha),
        "git_branch" => Some(Piece::GitBranch),
        _ => None,
    };
    if let Some(p) = simple {
        if rest.is_empty() {
            return Ok(p);
        }
        return Err(err(
            format!("placeholder `{name}` takes no arguments"),
            Some(format!("write `{{{{ {name} }}}}`")),
        ));
    }
    if name == "env" {
        let args = rest
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .and_then(|r| parse_string_args(r.trim()));
        return match args.as_deref() {
            Some([n]) if valid_env_name(n) => Ok(Piece::Env {
                name: n.clone(),
                default: None,
                span,
            }),
            Some([n, d]) if valid_env_name(n) => Ok(Piece::Env {
                name: n.clone(),
                default: Some(d.clone()),
                span,
            }),
            _ => Err(err(
                format!("`{{{{ {inner} }}}}` is not a valid env placeholder"),
                Some("write `{{ env(\"NAME\") }}` or `{{ env(\"NAME\", \"default\") }}`".into()),
            )),
        };
    }
    let help = crate::error::did_you_mean(name, NAMES.iter().copied()).or_else(|| {
        Some(
            "placeholders are env(\"NAME\"), host, task, run_id, timestamp, git_sha, git_branch"
                .to_string(),
        )
    });
    Err(err(format!("unknown placeholder `{name}`"), help))
}

fn valid_env_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with(|c: char| c.is_ascii_digit())
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `"a"` or `"a", "b"`: double-quoted strings with `\"` and `\\` escapes, comma-separated.
fn parse_string_args(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next()? != '"' {
            return None;
        }
        let mut cur = String::new();
        loop {
            match chars.next()? {
                '\\' => cur.push(chars.next()?),
                '"' => break,
                c => cur.push(c),
            }
        }
        out.push(cur);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Some(out),
            Some(',') => continue,
            Some(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct V;
    impl Vars for V {
        fn host(&self) -> &str {
            "web-1"
        }
        fn task(&self) -> &str {
            "deploy"
        }
        fn run_id(&self) -> &str {
            "R1"
        }
        fn timestamp(&self) -> &str {
            "T"
        }
        fn git_sha(&self) -> String {
            "abc".into()
        }
        fn git_branch(&self) -> String {
            "main".into()
        }
        fn env(&self, name: &str) -> Option<String> {
            (name == "SET").then(|| "yes".to_string())
        }
    }

    fn expand(s: &str) -> String {
        Template::parse(s).unwrap().expand(&V)
    }

    #[test]
    fn placeholders_expand() {
        assert_eq!(expand("echo {{ host }}/{{task}}"), "echo web-1/deploy");
        assert_eq!(
            expand("{{ env(\"SET\") }} {{ env(\"NOPE\", \"d\") }}"),
            "yes d"
        );
        assert_eq!(
            expand("{{ run_id }} {{ git_sha }}@{{ git_branch }}"),
            "R1 abc@main"
        );
        assert_eq!(expand("a {{ \"{{\" }} b }}"), "a {{ b }}");
        assert_eq!(expand("echo $HOME ${X} }}"), "echo $HOME ${X} }}");
    }

    #[test]
    fn errors_carry_span_and_help() {
        let e = Template::parse("echo {{ hots }}").unwrap_err();
        assert_eq!(e.message, "unknown placeholder `hots`");
        assert_eq!(e.help.as_deref(), Some("did you mean `host`?"));
        assert_eq!(e.span, 5..15);
        assert!(Template::parse("echo {{ host").is_err());
        assert!(Template::parse("{{ env(NAME) }}").is_err());
        assert!(Template::parse("{{ host(1) }}").is_err());
    }
}
