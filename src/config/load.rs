//! Turns nexus.toml text into the validated `Config`. Walks the spanned TOML tree
//! (toml's `DeTable`) so that every problem can point at its line and column, and collects
//! all problems of a file instead of stopping at the first. The keys each table takes are
//! declared once, in `keys`; `groups` reads `[hosts]`, `tasks` reads `[tasks]`.
//! Must not: run commands or touch the network.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned as TSpanned;

use super::duration;
use super::host::HostSpec;
use super::keys::{self, Key};
use super::model::*;
use super::report::Problems;
use super::template::Template;
use crate::error::{did_you_mean, Diagnostic, Error};

pub type Value<'i> = TSpanned<DeValue<'i>>;

pub use super::tasks::TaskDraft;

/// Parse and validate `source` read from `path`; `root` is the project root.
pub fn parse(path: &Path, root: &Path, source: &str) -> Result<Config, Error> {
    let mut w = Walker {
        src: source,
        problems: Problems::default(),
        task_names: Vec::new(),
        task_index: std::collections::HashMap::new(),
        groups: Vec::new(),
        host_names: std::collections::HashSet::new(),
        host_vars: std::collections::HashMap::new(),
        steps_of: "task",
    };
    let doc = match DeTable::parse(source) {
        Ok(doc) => doc.into_inner(),
        Err(first) => return Err(syntax_errors(path, source, &first)),
    };
    let config = w.document(&doc, path, root, source);
    if w.problems.is_empty() {
        Ok(config)
    } else {
        Err(w.problems.into_error(path, source))
    }
}

/// Files up to this size (bytes) get all their TOML syntax errors looked for; larger ones
/// only the first. Recovering keeps every error found, some hundred bytes each, and a
/// file of stray `}` has two per byte: 16 MiB of them took 8 GB.
pub const RECOVER_MAX: usize = 64 * 1024;

/// The TOML syntax errors of `source`, of which `first` is the first.
fn syntax_errors(path: &Path, source: &str, first: &toml::de::Error) -> Error {
    let mut problems = Problems::default();
    let mut add = |e: &toml::de::Error| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().trim_end_matches('.').to_string();
        problems.push(span, format!("TOML syntax error: {message}"), None);
    };
    if source.len() > RECOVER_MAX {
        add(first);
        let mut e = problems.into_error(path, source);
        e.diagnostics.push(
            Diagnostic::new("only the first TOML syntax error is looked for in a file over 64 KiB")
                .help("fix it, then run `nexus validate` again"),
        );
        return e;
    }
    let (_, errors) = DeTable::parse_recoverable(source);
    errors.iter().for_each(&mut add);
    if errors.is_empty() {
        add(first);
    }
    problems.into_error(path, source)
}

pub struct Walker<'a> {
    src: &'a str,
    /// What is wrong so far (bounded: the first problems by position, and a count).
    problems: Problems,
    /// Task names in file order (for `deps`), and the host groups (for `on`).
    pub(super) task_names: Vec<String>,
    /// Position of each task name in `task_names`.
    pub(super) task_index: std::collections::HashMap<String, usize>,
    pub(super) groups: Vec<(String, Vec<HostSpec>)>,
    /// The hosts of the groups, by host name and by full host string (for `on`).
    pub(super) host_names: std::collections::HashSet<String>,
    /// Variables of each host (groups' and its own), by host label.
    pub(super) host_vars: std::collections::HashMap<String, Vec<(String, toml::Value)>>,
    /// Whose steps are being read, for messages: "task" or "handler".
    pub(super) steps_of: &'static str,
}

impl<'a> Walker<'a> {
    pub(super) fn error(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        self.problems.push(span, message.into(), help);
    }

    /// Whether a problem at `span` would be shown (only the first ones by position are):
    /// compute costly hints only then.
    pub(super) fn wants(&self, span: &Range<usize>) -> bool {
        self.problems.wants(span.start)
    }

    pub(super) fn unknown_keys(&mut self, table: &DeTable, allowed: &[&str], what: &str) {
        for (k, _) in table.iter() {
            let key = k.get_ref().as_ref();
            if !allowed.contains(&key) {
                let help = did_you_mean(key, allowed.iter().copied())
                    .or_else(|| Some(format!("{what} takes: {}", allowed.join(", "))));
                self.error(k.span(), format!("unknown key `{key}` in {what}"), help);
            }
        }
    }

    pub(super) fn type_error(&mut self, v: &Value, key: &str, expected: &str) {
        let found = v.get_ref().type_str();
        self.error(
            v.span(),
            format!("`{key}` must be {expected}, found {found}"),
            None,
        );
    }

    pub(super) fn string(&mut self, v: &Value, key: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.type_error(v, key, "a string");
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, v: &Value, key: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.type_error(v, key, "true or false");
                None
            }
        }
    }

    pub(super) fn integer(&mut self, v: &Value, key: &str, min: i64, max: i64) -> Option<i64> {
        let parsed = match v.get_ref() {
            DeValue::Integer(i) => {
                i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok()
            }
            _ => None,
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                self.error(
                    v.span(),
                    format!("`{key}` must be between {min} and {max}, found {n}"),
                    None,
                );
                None
            }
            None => {
                self.type_error(v, key, "an integer");
                None
            }
        }
    }

    pub(super) fn duration(&mut self, v: &Value, key: &str, allow_zero: bool) -> Option<Duration> {
        let d = match v.get_ref() {
            DeValue::Integer(_) => self
                .integer(v, key, 0, i64::MAX)
                .map(|n| Duration::from_millis(n as u64))?,
            DeValue::String(s) => match duration::parse(s) {
                Ok(d) => d,
                Err(msg) => {
                    self.error(
                        v.span(),
                        format!("`{key}` is not a valid duration: {msg}"),
                        Some("write milliseconds as an integer, or a string such as \"250ms\", \"10s\", \"5m\", \"1h\"".into()),
                    );
                    return None;
                }
            },
            _ => {
                self.type_error(v, key, "a duration (\"10s\" or milliseconds)");
                return None;
            }
        };
        if d.is_zero() && !allow_zero {
            self.error(v.span(), format!("`{key}` must be greater than zero"), None);
            return None;
        }
        Some(d)
    }

    /// A string, or a list of strings; each with its span.
    pub(super) fn string_list(
        &mut self,
        v: &Value,
        key: &str,
    ) -> Option<Vec<(String, Range<usize>)>> {
        match v.get_ref() {
            DeValue::String(s) => Some(vec![(s.to_string(), v.span())]),
            DeValue::Array(items) => {
                let mut out = Vec::new();
                for item in items.iter() {
                    match item.get_ref() {
                        DeValue::String(s) => out.push((s.to_string(), item.span())),
                        _ => self.type_error(item, key, "a string"),
                    }
                }
                Some(out)
            }
            _ => {
                self.type_error(v, key, "a string or a list of strings");
                None
            }
        }
    }

    pub(super) fn table<'v, 'i>(&mut self, v: &'v Value<'i>, key: &str) -> Option<&'v DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.type_error(v, key, "a table");
                None
            }
        }
    }

    /// Byte offset of a string value's text in the file when it maps 1:1 (no escapes).
    pub(super) fn text_start(&self, span: &Range<usize>, value: &str) -> Option<usize> {
        let raw = self.src.get(span.clone())?;
        for q in ["\"\"\"", "'''", "\"", "'"] {
            if raw.len() >= 2 * q.len() && raw.starts_with(q) && raw.ends_with(q) {
                let inner = &raw[q.len()..raw.len() - q.len()];
                return (inner == value).then_some(span.start + q.len());
            }
        }
        None
    }

    pub(super) fn template(&mut self, text: &str, span: Range<usize>) -> Option<Spanned<Template>> {
        if !self.no_nul(text, span.clone()) {
            return None;
        }
        let text_start = self.text_start(&span, text);
        match Template::parse(text) {
            Ok(t) => Some(Spanned {
                value: t,
                span,
                text_start,
            }),
            Err(e) => {
                let at = match text_start {
                    Some(s) => s + e.span.start..s + e.span.end,
                    None => span,
                };
                self.error(at, e.message, e.help);
                None
            }
        }
    }

    fn document(&mut self, doc: &DeTable, path: &Path, root: &Path, source: &str) -> Config {
        self.unknown_keys(doc, &keys::names(keys::TOP), "the top level");
        if let Some(v) = doc.get("version") {
            if let Some(n) = self.integer(v, "version", i64::MIN, i64::MAX) {
                if n != 1 {
                    self.error(
                        v.span(),
                        format!("unsupported format version {n}"),
                        Some("this nexus reads `version = 1`".into()),
                    );
                }
            }
        }
        let mut settings = Settings::default();
        if let Some(t) = doc.get("config").and_then(|v| self.table(v, "config")) {
            self.read_keys(t, keys::CONFIG, || "[config]".into(), &mut settings);
        }
        if let Some(t) = doc.get("hosts").and_then(|v| self.table(v, "hosts")) {
            self.groups = self.groups(t);
            self.host_names = host_names(&self.groups);
        }
        let vars = match doc.get("vars").and_then(|v| self.table(v, "vars")) {
            Some(t) => self.vars(t),
            None => Vec::new(),
        };
        let env = doc.get("env").map(|v| self.env(v)).unwrap_or_default();
        let dotenv_files = doc
            .get("dotenv")
            .map(|v| self.dotenv(v))
            .unwrap_or_default();
        let tasks = match doc.get("tasks").and_then(|v| self.table(v, "tasks")) {
            Some(t) => self.tasks(t),
            None => Vec::new(),
        };
        let handlers = match doc.get("handlers").and_then(|v| self.table(v, "handlers")) {
            Some(t) => self.handlers(t),
            None => Vec::new(),
        };
        self.check_notify(&tasks, &handlers);
        self.check_handler_names(&handlers, &vars);
        self.check_names(&tasks, &vars);
        self.check_env_names(&env, &vars);
        let default = doc
            .get("default")
            .and_then(|v| self.default_task(v, &tasks));
        Config {
            path: path.to_path_buf(),
            root: root.to_path_buf(),
            source: source.to_string(),
            settings,
            groups: std::mem::take(&mut self.groups),
            tasks,
            vars,
            default,
            env,
            dotenv_files,
            dotenv: Vec::new(),
            host_vars: std::mem::take(&mut self.host_vars),
            handlers,
        }
    }

    /// `dotenv`: file names, relative to the project root.
    fn dotenv(&mut self, v: &Value) -> Vec<(String, Range<usize>)> {
        let mut out = Vec::new();
        for (file, span) in self.string_list(v, "dotenv").unwrap_or_default() {
            if file.is_empty() {
                self.error(
                    span,
                    "a dotenv file name cannot be empty",
                    Some(
                        "write the file's path, relative to the project root: dotenv = [\".env\"]"
                            .into(),
                    ),
                );
            } else if self.no_nul(&file, span.clone()) {
                out.push((file, span));
            }
        }
        out
    }

    /// `[env]` values are rendered for every task: they may use the built-ins and
    /// `[vars]`, not one task's `args`.
    fn check_env_names(
        &mut self,
        env: &[(String, Spanned<Template>)],
        vars: &[(String, toml::Value)],
    ) {
        use super::template::BUILTINS;
        let known: Vec<&str> = BUILTINS
            .iter()
            .copied()
            .chain(vars.iter().map(|(k, _)| k.as_str()))
            .collect();
        for (_, tpl) in env {
            for (name, inner) in tpl.value.names() {
                if known.contains(&name) {
                    continue;
                }
                let help = did_you_mean(name, known.iter().copied()).unwrap_or_else(|| {
                    format!(
                        "`[env]` is for every task: it can use {} and `[vars]` (a task's `args` only in its own `env`)",
                        BUILTINS.join(", ")
                    )
                });
                self.error(
                    tpl.file_span(inner),
                    format!("unknown variable `{name}`"),
                    Some(help),
                );
            }
        }
    }

    /// `default`: the task (or alias) a bare `nexus` runs.
    fn default_task(&mut self, v: &Value, tasks: &[Task]) -> Option<usize> {
        let name = self.string(v, "default")?;
        let found = tasks
            .iter()
            .position(|t| t.name == name)
            .or_else(|| tasks.iter().position(|t| t.aliases.contains(&name)));
        if found.is_none() {
            let names = tasks.iter().flat_map(|t| {
                std::iter::once(t.name.as_str()).chain(t.aliases.iter().map(String::as_str))
            });
            let help = did_you_mean(&name, names)
                .unwrap_or_else(|| super::tasks::defined_tasks(&self.task_names));
            self.error(
                v.span(),
                format!("`default` names undefined task `{name}`"),
                Some(help),
            );
        }
        found
    }

    /// Read every key of `table` that `keys` declares into `into`; report the others
    /// (`what` names the table in the message).
    pub(super) fn read_keys<T>(
        &mut self,
        table: &DeTable,
        keys: &[Key<T>],
        what: impl Fn() -> String,
        into: &mut T,
    ) {
        let mut unknown = false;
        for (k, v) in table.iter() {
            match keys.iter().find(|key| key.name == k.get_ref().as_ref()) {
                Some(key) => (key.read)(self, v, into),
                None => unknown = true,
            }
        }
        if unknown {
            self.unknown_keys(table, &keys::names(keys), &what());
        }
    }
}

/// Every host of `groups` by host name and by host string.
fn host_names(groups: &[(String, Vec<HostSpec>)]) -> std::collections::HashSet<String> {
    let mut names = std::collections::HashSet::new();
    for h in groups.iter().flat_map(|(_, hs)| hs) {
        names.insert(h.host.clone());
        names.insert(h.to_string());
    }
    names
}
