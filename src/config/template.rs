//! Templates (docs/nexus-toml.md, "Templates"): Jinja2, through minijinja, in commands,
//! env values, `dir` and host strings. Parsed once at load time — syntax, the names each
//! template uses (checked by the loader against the variables a task can see), its
//! `env("X")` and `secret("X")` calls — and rendered per (task, host) with strict
//! undefined names. Shell syntax passes through: in these strings `{# … #}` is not a
//! comment, so `${#list[@]}` stays shell. Must not: run anything, read files.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::OnceLock;

use crate::exec::shell_quote;
use minijinja::machinery::{tokenize, Token};
use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Error as EngineError, ErrorKind, UndefinedBehavior, Value};

/// Variables every template can use, whatever the task.
pub const BUILTINS: &[&str] = &[
    "host",
    "task",
    "run_id",
    "timestamp",
    "git_sha",
    "git_branch",
];

/// Names the engine provides (functions, loop helpers): never unknown variables.
const GLOBALS: &[&str] = &[
    "env",
    "secret",
    "range",
    "dict",
    "namespace",
    "loop",
    "caller",
    "varargs",
    "kwargs",
];

/// A template: its text, and what the load-time scan found in it (None: plain text).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    source: String,
    meta: Option<Box<Meta>>,
    /// A template file (Jinja2's own syntax, `{# #}` comments included), not a string
    /// of nexus.toml.
    file: bool,
}

/// What a template refers to, each with its byte range in the template text.
#[derive(Debug, Clone, PartialEq, Default)]
struct Meta {
    /// Variables it reads from the context (first use of each).
    names: Vec<(String, Range<usize>)>,
    /// `env("NAME")` / `env("NAME", "default")` with a literal name.
    env: Vec<EnvRef>,
    /// `secret("NAME")` with a literal name.
    secrets: Vec<(String, Range<usize>)>,
    /// `env(…)` or `secret(…)` with a name that is not a literal string.
    dynamic: Vec<(&'static str, Range<usize>)>,
}

#[derive(Debug, Clone, PartialEq)]
struct EnvRef {
    name: String,
    has_default: bool,
    span: Range<usize>,
}

/// A template error: message, help, byte range within the template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    pub help: Option<String>,
    pub span: Range<usize>,
}

/// The one engine: Jinja2 without HTML escaping, without `{# #}` comments (see the module
/// doc), strict about undefined names, with `env()`, `secret()` and the `quote` filter.
fn engine() -> &'static Environment<'static> {
    static ENGINE: OnceLock<Environment<'static>> = OnceLock::new();
    ENGINE.get_or_init(|| new_engine(inline_syntax()))
}

/// The engine of template files: the same, with Jinja2's own syntax.
fn file_engine() -> &'static Environment<'static> {
    static ENGINE: OnceLock<Environment<'static>> = OnceLock::new();
    ENGINE.get_or_init(|| new_engine(file_syntax()))
}

fn file_syntax() -> SyntaxConfig {
    SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .expect("valid delimiters")
}

fn new_engine(syntax: SyntaxConfig) -> Environment<'static> {
    {
        let mut env = Environment::new();
        env.set_syntax(syntax);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_debug(true);
        env.add_function("env", env_function);
        env.add_function("secret", secret_function);
        env.add_filter("quote", quote_filter);
        env
    }
}

/// Jinja2's delimiters, with comments moved to a sequence config strings cannot hold
/// (the loader refuses NUL): `{#` is too common in shell to mean a comment.
fn inline_syntax() -> SyntaxConfig {
    SyntaxConfig::builder()
        .comment_delimiters("\0{#", "#}\0")
        .keep_trailing_newline(true)
        .build()
        .expect("valid delimiters")
}

fn env_function(name: String, default: Option<String>) -> Result<String, EngineError> {
    match (std::env::var(&name), default) {
        (Ok(v), _) => Ok(v),
        (Err(_), Some(d)) => Ok(d),
        (Err(_), None) => Err(EngineError::new(
            ErrorKind::InvalidOperation,
            format!("environment variable `{name}` is not set"),
        )),
    }
}

/// The context key under which a render finds its secrets (a `Secrets` object).
const SECRETS_KEY: &str = "__nexus_secrets";

fn secret_function(state: &minijinja::State, name: String) -> Result<Value, EngineError> {
    let store = state.lookup(SECRETS_KEY).ok_or_else(|| {
        EngineError::new(
            ErrorKind::InvalidOperation,
            format!("secret `{name}` is not available here"),
        )
    })?;
    store.get_item(&Value::from(name.as_str())).and_then(|v| {
        if v.is_undefined() {
            Err(EngineError::new(
                ErrorKind::InvalidOperation,
                format!("no secret named `{name}` in the store"),
            ))
        } else {
            Ok(v)
        }
    })
}

/// `{{ x | quote }}`: one shell word whatever `x` holds; the words of a variadic
/// parameter each quoted, separated by spaces.
fn quote_filter(v: Value) -> String {
    match v.downcast_object_ref::<Words>() {
        Some(w) => {
            w.0.iter()
                .map(|s| shell_quote(s))
                .collect::<Vec<_>>()
                .join(" ")
        }
        None => shell_quote(&v.to_string()),
    }
}

/// The words of a variadic parameter: a list in expressions (`for`, `length`, `[0]`),
/// written as the words separated by spaces, as a shell would show `$*`.
#[derive(Debug)]
struct Words(Vec<String>);

impl minijinja::value::Object for Words {
    fn repr(self: &std::sync::Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Seq
    }

    fn get_value(self: &std::sync::Arc<Self>, key: &Value) -> Option<Value> {
        self.0.get(key.as_usize()?).map(|s| Value::from(s.as_str()))
    }

    fn enumerate(self: &std::sync::Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Seq(self.0.len())
    }

    fn render(self: &std::sync::Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

impl Template {
    pub fn literal(text: &str) -> Template {
        Template {
            source: text.to_string(),
            meta: None,
            file: false,
        }
    }

    /// Check the syntax of a template file's `text` and find what it refers to.
    pub fn parse_file(text: &str) -> Result<Template, TemplateError> {
        let tmpl = file_engine()
            .template_from_str(text)
            .map_err(|e| syntax_error(text, &e))?;
        let undeclared = tmpl.undeclared_variables(false);
        let meta = scan_with(text, &undeclared, file_syntax());
        Ok(Template {
            source: text.to_string(),
            meta: Some(Box::new(meta)),
            file: true,
        })
    }

    /// Check the syntax of `text` and find what it refers to.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(Template::literal(text));
        }
        let tmpl = engine()
            .template_from_str(text)
            .map_err(|e| syntax_error(text, &e))?;
        let undeclared = tmpl.undeclared_variables(false);
        let meta = scan(text, &undeclared);
        Ok(Template {
            source: text.to_string(),
            meta: Some(Box::new(meta)),
            file: false,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn is_literal(&self) -> bool {
        self.meta.is_none()
    }

    /// The variables it reads, each with the range of its first use.
    pub fn names(&self) -> impl Iterator<Item = (&str, Range<usize>)> {
        self.meta
            .iter()
            .flat_map(|m| m.names.iter().map(|(n, s)| (n.as_str(), s.clone())))
    }

    pub fn uses(&self, name: &str) -> bool {
        self.names().any(|(n, _)| n == name)
    }

    /// `secret("NAME")` calls with a literal name.
    pub fn secrets(&self) -> impl Iterator<Item = (&str, Range<usize>)> {
        self.meta
            .iter()
            .flat_map(|m| m.secrets.iter().map(|(n, s)| (n.as_str(), s.clone())))
    }

    /// Whether rendering may produce a secret's value (so the result must not go into an
    /// argument list).
    pub fn may_hold_secret(&self) -> bool {
        self.meta
            .as_ref()
            .is_some_and(|m| !m.secrets.is_empty() || m.dynamic.iter().any(|(f, _)| *f == "secret"))
    }

    /// `env(…)` / `secret(…)` calls whose name is computed: (function, range).
    pub fn dynamic_calls(&self) -> impl Iterator<Item = (&'static str, Range<usize>)> + '_ {
        self.meta.iter().flat_map(|m| m.dynamic.iter().cloned())
    }

    /// Required env vars (no default) that are unset: (name, range within the text).
    pub fn unset_env(&self) -> Vec<(&str, Range<usize>)> {
        self.meta
            .iter()
            .flat_map(|m| &m.env)
            .filter(|r| !r.has_default && std::env::var_os(&r.name).is_none())
            .map(|r| (r.name.as_str(), r.span.clone()))
            .collect()
    }

    /// Render with `ctx` (see `Context`).
    pub fn render(&self, ctx: &Context) -> Result<String, TemplateError> {
        if self.meta.is_none() {
            return Ok(self.source.clone());
        }
        let engine = if self.file { file_engine() } else { engine() };
        engine
            .render_str(&self.source, ctx.value())
            .map_err(|e| render_error(&self.source, &e))
    }
}

/// The values a template is rendered with: the built-ins, then variable layers (later ones
/// win), and the secrets a run opened.
#[derive(Default, Clone)]
pub struct Context {
    map: BTreeMap<String, Value>,
    /// `map` as the engine takes it, built at the first render (a unit renders each of
    /// its commands with the same context).
    built: std::cell::OnceCell<Value>,
}

impl Context {
    pub fn new() -> Context {
        Context::default()
    }

    pub fn set(&mut self, name: &str, value: impl Into<Value>) -> &mut Context {
        self.built.take();
        self.map.insert(name.to_string(), value.into());
        self
    }

    /// Add every variable of `vars` (TOML values), replacing earlier ones of the same name.
    pub fn layer(&mut self, vars: &[(String, toml::Value)]) -> &mut Context {
        self.built.take();
        for (k, v) in vars {
            self.map
                .insert(k.clone(), Value::from(minijinja::value::Serde(v)));
        }
        self
    }

    /// A task parameter: one word, or the words of a variadic one.
    pub fn arg(&mut self, name: &str, value: &crate::bind::ArgValue) -> &mut Context {
        let v = match value {
            crate::bind::ArgValue::One(w) => Value::from(w.as_str()),
            crate::bind::ArgValue::Many(ws) => Value::from_object(Words(ws.clone())),
        };
        self.built.take();
        self.map.insert(name.to_string(), v);
        self
    }

    /// Make `secret(…)` find values in `secrets` (an object whose items are the values).
    pub fn secrets(&mut self, secrets: Value) -> &mut Context {
        self.built.take();
        self.map.insert(SECRETS_KEY.to_string(), secrets);
        self
    }

    fn value(&self) -> Value {
        self.built
            .get_or_init(|| Value::from(self.map.clone()))
            .clone()
    }
}

fn span_of(text: &str, e: &EngineError) -> Range<usize> {
    if let Some(r) = e
        .range()
        .filter(|r| r.end <= text.len() && r.start <= r.end)
    {
        return r;
    }
    // A line without a column: that whole line.
    match e.line() {
        Some(line) => {
            let start = text
                .split_inclusive('\n')
                .take(line.saturating_sub(1))
                .map(str::len)
                .sum::<usize>();
            let end = text[start..].find('\n').map_or(text.len(), |n| start + n);
            start..end
        }
        None => 0..text.len(),
    }
}

fn detail(e: &EngineError) -> String {
    e.detail()
        .map(str::to_string)
        .unwrap_or_else(|| e.kind().to_string())
}

fn syntax_error(text: &str, e: &EngineError) -> TemplateError {
    let help = if e.detail().is_some_and(|d| d.contains("end of input")) {
        "close it with `}}` (or `%}`); write `{{ \"{{\" }}` for a literal `{{`"
    } else {
        "templates use Jinja2 syntax; write `{{ \"{{\" }}` for a literal `{{`"
    };
    TemplateError {
        message: format!("invalid template: {}", detail(e)),
        help: Some(help.to_string()),
        span: span_of(text, e),
    }
}

fn render_error(text: &str, e: &EngineError) -> TemplateError {
    TemplateError {
        message: detail(e),
        help: None,
        span: span_of(text, e),
    }
}

/// Walk the tokens of `text`: where each undeclared name is first used, and the `env()`
/// and `secret()` calls.
fn scan(text: &str, undeclared: &std::collections::HashSet<String>) -> Meta {
    scan_with(text, undeclared, inline_syntax())
}

fn scan_with(
    text: &str,
    undeclared: &std::collections::HashSet<String>,
    syntax: SyntaxConfig,
) -> Meta {
    let tokens: Vec<(Token, Range<usize>)> = tokenize(text, false, syntax)
        .map_while(Result::ok)
        .map(|(t, s)| (t, s.start_offset as usize..s.end_offset as usize))
        .collect();
    let mut meta = Meta::default();
    for (i, (tok, span)) in tokens.iter().enumerate() {
        let Token::Ident(name) = tok else { continue };
        let after_dot = i > 0 && matches!(tokens[i - 1].0, Token::Dot);
        if after_dot {
            continue;
        }
        let called = matches!(tokens.get(i + 1), Some((Token::ParenOpen, _)));
        if called && (*name == "env" || *name == "secret") {
            call(&mut meta, name, &tokens[i..], span.start);
            continue;
        }
        if undeclared.contains(*name)
            && !GLOBALS.contains(name)
            && !meta.names.iter().any(|(n, _)| n == name)
        {
            meta.names.push((name.to_string(), span.clone()));
        }
    }
    meta
}

/// Record an `env(…)` or `secret(…)` call starting at `toks[0]`: with a literal name and
/// (for `env`) an optional default, else as a dynamic call.
fn call(meta: &mut Meta, func: &str, toks: &[(Token, Range<usize>)], start: usize) {
    let name = match toks.get(2) {
        Some((Token::Str(s), _)) => Some(s.to_string()),
        Some((Token::String(s), _)) => Some(s.to_string()),
        _ => None,
    };
    let closes_at = |k: usize| match toks.get(k) {
        Some((Token::ParenClose, r)) => Some(r.end),
        _ => None,
    };
    let comma = matches!(toks.get(3), Some((Token::Comma, _)));
    match (func, name, closes_at(3)) {
        ("env", Some(name), Some(end)) => meta.env.push(EnvRef {
            name,
            has_default: false,
            span: start..end,
        }),
        ("env", Some(name), None) if comma => {
            let end = (4..toks.len()).find_map(closes_at).unwrap_or(toks[0].1.end);
            meta.env.push(EnvRef {
                name,
                has_default: true,
                span: start..end,
            })
        }
        ("secret", Some(name), Some(end)) => meta.secrets.push((name, start..end)),
        (f, _, _) => meta.dynamic.push((
            if f == "env" { "env" } else { "secret" },
            start..toks[0].1.end,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        let mut c = Context::new();
        c.set("host", "web-1")
            .set("task", "deploy")
            .set("run_id", "R1")
            .set("timestamp", "T")
            .set("git_sha", "abc")
            .set("git_branch", "main");
        c
    }

    fn render(s: &str) -> String {
        Template::parse(s).unwrap().render(&ctx()).unwrap()
    }

    #[test]
    fn templates_render() {
        std::env::set_var("NEXUS_TPL_SET", "yes");
        assert_eq!(render("echo {{ host }}/{{task}}"), "echo web-1/deploy");
        assert_eq!(
            render("{{ env(\"NEXUS_TPL_SET\") }} {{ env(\"NEXUS_TPL_NOPE\", \"d\") }}"),
            "yes d"
        );
        assert_eq!(
            render("{{ run_id }} {{ git_sha }}@{{ git_branch }}"),
            "R1 abc@main"
        );
        assert_eq!(render("a {{ \"{{\" }} b }}"), "a {{ b }}");
        assert_eq!(
            render("echo $HOME ${X} }} ${#list[@]} #}"),
            "echo $HOME ${X} }} ${#list[@]} #}"
        );
        assert_eq!(
            render("{% for x in [1, 2] %}{{ x }}{% endfor %} {{ host | upper }}"),
            "12 WEB-1"
        );
        assert_eq!(render("trailing\n"), "trailing\n");
    }

    #[test]
    fn quote_makes_one_shell_word() {
        assert_eq!(shell_quote("1.4.2"), "1.4.2");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's $(x)"), "'it'\\''s $(x)'");
        let mut c = ctx();
        c.set("v", "x; rm -rf /");
        let t = Template::parse("echo {{ v | quote }}").unwrap();
        assert_eq!(t.render(&c).unwrap(), "echo 'x; rm -rf /'");
        let words = crate::bind::ArgValue::Many(vec!["a b".into(), "c".into()]);
        c.arg("rest", &words);
        let t = Template::parse("{{ rest }}|{{ rest | quote }}|{{ rest | length }}|{{ rest[1] }}|{% for w in rest %}<{{ w }}>{% endfor %}").unwrap();
        assert_eq!(t.render(&c).unwrap(), "a b c|'a b' c|2|c|<a b><c>");
    }

    #[test]
    fn scan_finds_names_env_and_secrets() {
        let t = Template::parse(
            "{{ hots }} {{ env(\"A\") }} {{ env(\"B\", \"d\") }} {{ secret(\"S\") }} {{ x.host }} {% set y = 1 %}{{ y }}",
        )
        .unwrap();
        let names: Vec<_> = t.names().collect();
        assert_eq!(names, vec![("hots", 3..7), ("x", 67..68)]);
        let unset: Vec<_> = t.unset_env();
        assert_eq!(unset, vec![("A", 14..22)]);
        assert_eq!(t.secrets().collect::<Vec<_>>(), vec![("S", 49..60)]);
        assert!(t.may_hold_secret());
        assert!(
            Template::parse("{{ env(x) }}")
                .unwrap()
                .dynamic_calls()
                .count()
                == 1
        );
    }

    #[test]
    fn errors_carry_span_and_help() {
        let e = Template::parse("echo {{ host").unwrap_err();
        assert!(e.message.starts_with("invalid template: "), "{e:?}");
        assert!(e.span.start >= 5, "{e:?}");
        let e = Template::parse("{{ host(").unwrap_err();
        assert!(e.message.starts_with("invalid template"), "{e:?}");
        let e = Template::parse("{{ env(\"NEXUS_TPL_UNSET_X\") }}")
            .unwrap()
            .render(&ctx())
            .unwrap_err();
        assert_eq!(
            e.message,
            "environment variable `NEXUS_TPL_UNSET_X` is not set"
        );
    }
}
