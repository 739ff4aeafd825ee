//! Turns nexus.toml text into the validated `Config`. Walks the spanned TOML tree
//! (toml's `DeTable`) so that every problem can point at its line and column, and collects
//! all problems of a file instead of stopping at the first. Must not: run commands or
//! touch the network.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned as TSpanned;

use super::host::{self, HostSpec};
use super::model::*;
use super::template::Template;
use super::{cycle, duration};
use crate::error::{did_you_mean, Diagnostic, Error, Location};

type Value<'i> = TSpanned<DeValue<'i>>;

const TOP_KEYS: &[&str] = &["version", "config", "hosts", "tasks"];
const CONFIG_KEYS: &[&str] = &[
    "ssh_user",
    "ssh_port",
    "ssh_identity",
    "ssh_config",
    "known_hosts",
    "host_key_checking",
    "connect_timeout",
    "parallel_limit",
    "pool_size",
    "max_connections",
    "log_level",
];
const TASK_KEYS: &[&str] = &[
    "desc",
    "deps",
    "on",
    "strategy",
    "timeout",
    "dir",
    "env",
    "continue_on_error",
    "run",
];
const COMMAND_KEYS: &[&str] = &[
    "cmd",
    "sudo",
    "user",
    "pty",
    "timeout",
    "retries",
    "retry_delay",
    "continue_on_error",
];
const GROUP_KEYS: &[&str] = &["groups", "hosts"];
const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace", "off"];

/// Parse and validate `source` read from `path`; `root` is the project root.
pub fn parse(path: &Path, root: &Path, source: &str) -> Result<Config, Error> {
    let mut w = Walker {
        path,
        src: source,
        diags: Vec::new(),
    };
    let (doc, errors) = DeTable::parse_recoverable(source);
    for e in &errors {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().trim_end_matches('.').to_string();
        w.error(span, format!("TOML syntax error: {message}"), None);
    }
    if !errors.is_empty() {
        return Err(Error::validation(w.diags));
    }
    let doc = doc.into_inner();
    let config = w.document(&doc, path, root, source);
    if w.diags.is_empty() {
        Ok(config)
    } else {
        let key = |d: &Diagnostic| d.location.as_ref().map(|l| (l.line, l.column));
        w.diags.sort_by_key(key);
        Err(Error::validation(w.diags))
    }
}

struct Walker<'a> {
    path: &'a Path,
    src: &'a str,
    diags: Vec<Diagnostic>,
}

impl<'a> Walker<'a> {
    fn loc(&self, span: Range<usize>) -> Location {
        Location::from_span(self.path, self.src, span)
    }

    fn error(&mut self, span: Range<usize>, message: impl Into<String>, help: Option<String>) {
        let d = Diagnostic::new(message).at(self.loc(span)).help_opt(help);
        self.diags.push(d);
    }

    fn unknown_keys(&mut self, table: &DeTable, allowed: &[&str], what: &str) {
        for (k, _) in table.iter() {
            let key = k.get_ref().as_ref();
            if !allowed.contains(&key) {
                let help = did_you_mean(key, allowed.iter().copied())
                    .or_else(|| Some(format!("{what} takes: {}", allowed.join(", "))));
                self.error(k.span(), format!("unknown key `{key}` in {what}"), help);
            }
        }
    }

    fn type_error(&mut self, v: &Value, key: &str, expected: &str) {
        let found = v.get_ref().type_str();
        self.error(
            v.span(),
            format!("`{key}` must be {expected}, found {found}"),
            None,
        );
    }

    fn string(&mut self, v: &Value, key: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.type_error(v, key, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, v: &Value, key: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.type_error(v, key, "true or false");
                None
            }
        }
    }

    fn integer(&mut self, v: &Value, key: &str, min: i64, max: i64) -> Option<i64> {
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

    fn duration(&mut self, v: &Value, key: &str, allow_zero: bool) -> Option<Duration> {
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
    fn string_list(&mut self, v: &Value, key: &str) -> Option<Vec<(String, Range<usize>)>> {
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

    fn table<'v, 'i>(&mut self, v: &'v Value<'i>, key: &str) -> Option<&'v DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.type_error(v, key, "a table");
                None
            }
        }
    }

    /// Byte offset of a string value's text in the file when it maps 1:1 (no escapes).
    fn text_start(&self, span: &Range<usize>, value: &str) -> Option<usize> {
        let raw = self.src.get(span.clone())?;
        for q in ["\"\"\"", "'''", "\"", "'"] {
            if raw.len() >= 2 * q.len() && raw.starts_with(q) && raw.ends_with(q) {
                let inner = &raw[q.len()..raw.len() - q.len()];
                return (inner == value).then_some(span.start + q.len());
            }
        }
        None
    }

    fn template(&mut self, text: &str, span: Range<usize>) -> Option<Spanned<Template>> {
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
        self.unknown_keys(doc, TOP_KEYS, "the top level");
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
        let settings = match doc.get("config") {
            Some(v) => match self.table(v, "config") {
                Some(t) => self.settings(t),
                None => Settings::default(),
            },
            None => Settings::default(),
        };
        let groups = match doc.get("hosts") {
            Some(v) => match self.table(v, "hosts") {
                Some(t) => self.groups(t),
                None => Vec::new(),
            },
            None => Vec::new(),
        };
        let tasks = match doc.get("tasks") {
            Some(v) => match self.table(v, "tasks") {
                Some(t) => self.tasks(t, &groups),
                None => Vec::new(),
            },
            None => Vec::new(),
        };
        Config {
            path: path.to_path_buf(),
            root: root.to_path_buf(),
            source: source.to_string(),
            settings,
            groups,
            tasks,
        }
    }

    fn settings(&mut self, t: &DeTable) -> Settings {
        self.unknown_keys(t, CONFIG_KEYS, "[config]");
        let mut s = Settings::default();
        for (k, v) in t.iter() {
            let key = k.get_ref().as_ref();
            match key {
                "ssh_user" => s.ssh_user = self.string(v, key).or(s.ssh_user),
                "ssh_port" => {
                    if let Some(n) = self.integer(v, key, 1, 65535) {
                        s.ssh_port = n as u16;
                    }
                }
                "ssh_identity" => s.ssh_identity = self.string(v, key),
                "ssh_config" => {
                    if let Some(p) = self.string(v, key) {
                        s.ssh_config = (p != "none").then_some(p);
                    }
                }
                "known_hosts" => s.known_hosts = self.string(v, key),
                "host_key_checking" => {
                    if let Some(text) = self.string(v, key) {
                        match HostKeyChecking::parse(&text) {
                            Some(h) => s.host_key_checking = h,
                            None => {
                                let help =
                                    did_you_mean(&text, HostKeyChecking::NAMES.iter().copied())
                                        .unwrap_or_else(|| {
                                            format!(
                                                "choose one of: {}",
                                                HostKeyChecking::NAMES.join(", ")
                                            )
                                        });
                                self.error(
                                    v.span(),
                                    format!("unknown host_key_checking `{text}`"),
                                    Some(help),
                                );
                            }
                        }
                    }
                }
                "connect_timeout" => {
                    if let Some(d) = self.duration(v, key, false) {
                        s.connect_timeout = d;
                    }
                }
                "parallel_limit" => {
                    if let Some(n) = self.integer(v, key, 1, 10_000) {
                        s.parallel_limit = n as usize;
                    }
                }
                "pool_size" => {
                    if let Some(n) = self.integer(v, key, 1, 1_000) {
                        s.pool_size = n as usize;
                    }
                }
                "max_connections" => {
                    if let Some(n) = self.integer(v, key, 1, 100_000) {
                        s.max_connections = n as usize;
                    }
                }
                "log_level" => {
                    if let Some(level) = self.string(v, key) {
                        if LOG_LEVELS.contains(&level.as_str()) {
                            s.log_level = Some(level);
                        } else {
                            let help = did_you_mean(&level, LOG_LEVELS.iter().copied())
                                .unwrap_or_else(|| {
                                    format!("choose one of: {}", LOG_LEVELS.join(", "))
                                });
                            self.error(
                                v.span(),
                                format!("unknown log_level `{level}`"),
                                Some(help),
                            );
                        }
                    }
                }
                _ => {}
            }
        }
        s
    }

    /// A host string from the file: env placeholders expanded, then parsed.
    fn host(&mut self, text: &str, span: Range<usize>) -> Option<HostSpec> {
        let tpl = self.template(text, span.clone())?;
        let env_only = tpl.value.pieces.iter().all(|p| {
            matches!(
                p,
                super::template::Piece::Lit(_) | super::template::Piece::Env { .. }
            )
        });
        if !env_only {
            self.error(
                span,
                format!("host string `{text}` may only use env placeholders"),
                None,
            );
            return None;
        }
        if let Some((name, inner)) = tpl.value.unset_env().first() {
            let at = tpl.file_span(inner.clone());
            self.error(
                at,
                format!("environment variable `{name}` is not set"),
                Some(format!(
                    "set it (export {name}=...) or give a default: {{{{ env(\"{name}\", \"...\") }}}}"
                )),
            );
            return None;
        }
        let expanded = tpl.value.expand(&EnvOnly);
        match host::parse(&expanded) {
            Ok(h) => Some(h),
            Err(msg) => {
                self.error(
                    span,
                    msg,
                    Some("host strings are host, user@host, user@host:port or [ipv6]:port".into()),
                );
                None
            }
        }
    }

    fn groups(&mut self, t: &DeTable) -> Vec<(String, Vec<HostSpec>)> {
        // Raw entries: direct hosts and referenced groups, per group.
        struct Raw {
            name: String,
            hosts: Vec<HostSpec>,
            refs: Vec<(String, Range<usize>)>,
        }
        let mut raws: Vec<Raw> = Vec::new();
        for (k, v) in t.iter() {
            let name = k.get_ref().to_string();
            if name == "local" {
                self.error(
                    k.span(),
                    "`local` is reserved for this machine and cannot name a host group",
                    Some("rename the group".into()),
                );
                continue;
            }
            let mut raw = Raw {
                name,
                hosts: Vec::new(),
                refs: Vec::new(),
            };
            match v.get_ref() {
                DeValue::String(_) | DeValue::Array(_) => {
                    for (s, span) in self.string_list(v, "hosts").unwrap_or_default() {
                        if let Some(h) = self.host(&s, span) {
                            raw.hosts.push(h);
                        }
                    }
                }
                DeValue::Table(gt) => {
                    self.unknown_keys(gt, GROUP_KEYS, "a host group table");
                    if let Some(g) = gt.get("groups") {
                        raw.refs = self.string_list(g, "groups").unwrap_or_default();
                    }
                    if let Some(h) = gt.get("hosts") {
                        for (s, span) in self.string_list(h, "hosts").unwrap_or_default() {
                            if let Some(h) = self.host(&s, span) {
                                raw.hosts.push(h);
                            }
                        }
                    }
                }
                _ => self.type_error(
                    v,
                    &raw.name.clone(),
                    "a host string, a list of host strings, or { groups = [...], hosts = [...] }",
                ),
            }
            raws.push(raw);
        }
        let names: Vec<String> = raws.iter().map(|r| r.name.clone()).collect();
        let index: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let mut edges: Vec<Vec<usize>> = vec![Vec::new(); raws.len()];
        for (i, r) in raws.iter().enumerate() {
            for (g, span) in &r.refs {
                match index.get(g.as_str()) {
                    Some(&j) => edges[i].push(j),
                    None => {
                        let help = did_you_mean(g, names.iter().map(String::as_str))
                            .unwrap_or_else(|| defined_groups(&names));
                        self.error(
                            span.clone(),
                            format!("host group `{}` includes undefined group `{g}`", r.name),
                            Some(help),
                        );
                    }
                }
            }
        }
        if let Some(path) = cycle::find(&edges) {
            let text: Vec<&str> = path.iter().map(|&i| names[i].as_str()).collect();
            let (from, to) = (path[0], path[1]);
            let span = raws[from]
                .refs
                .iter()
                .find(|(g, _)| *g == names[to])
                .map(|(_, s)| s.clone())
                .unwrap_or(0..0);
            self.error(
                span,
                format!("host groups include each other: {}", text.join(" -> ")),
                Some("a group may include other groups, but not itself".into()),
            );
            return Vec::new();
        }
        (0..raws.len())
            .map(|i| {
                let mut seen = HashSet::new();
                let mut hosts = Vec::new();
                collect_hosts(
                    i,
                    &raws.iter().map(|r| &r.hosts).collect::<Vec<_>>(),
                    &edges,
                    &mut seen,
                    &mut hosts,
                );
                (names[i].clone(), hosts)
            })
            .collect()
    }

    fn tasks(&mut self, t: &DeTable, groups: &[(String, Vec<HostSpec>)]) -> Vec<Task> {
        let names: Vec<String> = t.iter().map(|(k, _)| k.get_ref().to_string()).collect();
        let mut dep_spans: Vec<Vec<Range<usize>>> = Vec::new();
        let mut tasks = Vec::new();
        for (k, v) in t.iter() {
            let name = k.get_ref().to_string();
            let Some(tt) = self.table(v, &format!("tasks.{name}")) else {
                continue;
            };
            let (task, spans) = self.task(&name, k.span(), tt, &names, groups);
            tasks.push(task);
            dep_spans.push(spans);
        }
        if tasks.len() == names.len() {
            let edges: Vec<Vec<usize>> = tasks.iter().map(|t| t.deps.clone()).collect();
            if let Some(path) = cycle::find(&edges) {
                let text: Vec<&str> = path.iter().map(|&i| tasks[i].name.as_str()).collect();
                let (from, to) = (path[0], path[1]);
                let pos = tasks[from].deps.iter().position(|&d| d == to).unwrap_or(0);
                let span = dep_spans[from]
                    .get(pos)
                    .cloned()
                    .unwrap_or(tasks[from].span.clone());
                self.error(
                    span,
                    format!("dependency cycle: {}", text.join(" -> ")),
                    Some("remove one of these dependencies".into()),
                );
            }
        }
        tasks
    }

    fn task(
        &mut self,
        name: &str,
        span: Range<usize>,
        t: &DeTable,
        names: &[String],
        groups: &[(String, Vec<HostSpec>)],
    ) -> (Task, Vec<Range<usize>>) {
        let what = format!("task `{name}`");
        self.unknown_keys(t, TASK_KEYS, &what);
        let mut task = Task {
            name: name.to_string(),
            desc: None,
            deps: Vec::new(),
            targets: vec![Target::Local],
            on: vec!["local".to_string()],
            strategy: Strategy::Parallel,
            timeout: DEFAULT_TASK_TIMEOUT,
            dir: None,
            env: Vec::new(),
            continue_on_error: false,
            commands: Vec::new(),
            span: span.clone(),
        };
        let mut dep_spans = Vec::new();
        for (k, v) in t.iter() {
            let key = k.get_ref().as_ref();
            match key {
                "desc" => task.desc = self.string(v, key),
                "deps" => {
                    for (dep, dspan) in self.string_list(v, key).unwrap_or_default() {
                        match names.iter().position(|n| *n == dep) {
                            Some(i) if dep == name => {
                                let _ = i;
                                self.error(
                                    dspan,
                                    format!("task `{name}` depends on itself"),
                                    Some("remove it from `deps`".into()),
                                );
                            }
                            Some(i) => {
                                if !task.deps.contains(&i) {
                                    task.deps.push(i);
                                    dep_spans.push(dspan);
                                }
                            }
                            None => {
                                let help = did_you_mean(&dep, names.iter().map(String::as_str))
                                    .unwrap_or_else(|| defined_tasks(names));
                                self.error(
                                    dspan,
                                    format!("task `{name}` depends on undefined task `{dep}`"),
                                    Some(help),
                                );
                            }
                        }
                    }
                }
                "on" => {
                    let items = self.string_list(v, key).unwrap_or_default();
                    if items.is_empty() {
                        self.error(
                            v.span(),
                            format!("task `{name}` has an empty `on`"),
                            Some("name \"local\", a host group or a host".into()),
                        );
                    }
                    task.targets.clear();
                    task.on.clear();
                    for (item, ispan) in items {
                        task.on.push(item.clone());
                        self.target(&item, ispan, groups, &mut task.targets);
                    }
                }
                "strategy" => {
                    if let Some(s) = self.string(v, key) {
                        task.strategy = match s.as_str() {
                            "parallel" => Strategy::Parallel,
                            "serial" => Strategy::Serial,
                            other => {
                                let help = if matches!(other, "rolling" | "canary") {
                                    format!(
                                        "`{other}` is not available yet; choose parallel or serial"
                                    )
                                } else {
                                    did_you_mean(other, ["parallel", "serial"])
                                        .unwrap_or_else(|| "choose parallel or serial".into())
                                };
                                self.error(
                                    v.span(),
                                    format!("unknown strategy `{other}`"),
                                    Some(help),
                                );
                                Strategy::Parallel
                            }
                        }
                    }
                }
                "timeout" => task.timeout = self.duration(v, key, false).unwrap_or(task.timeout),
                "dir" => {
                    if let Some(s) = self.string(v, key) {
                        task.dir = self.template(&s, v.span());
                    }
                }
                "env" => {
                    if let Some(et) = self.table(v, key) {
                        for (ek, ev) in et.iter() {
                            let ename = ek.get_ref().to_string();
                            let text = match ev.get_ref() {
                                DeValue::String(s) => Some(s.to_string()),
                                DeValue::Integer(i) => Some(i.as_str().to_string()),
                                DeValue::Boolean(b) => Some(b.to_string()),
                                _ => {
                                    self.type_error(ev, &ename, "a string");
                                    None
                                }
                            };
                            if let Some(text) = text {
                                if let Some(tpl) = self.template(&text, ev.span()) {
                                    task.env.push((ename, tpl));
                                }
                            }
                        }
                    }
                }
                "continue_on_error" => {
                    task.continue_on_error = self.boolean(v, key).unwrap_or(false)
                }
                "run" => task.commands = self.commands(v, name),
                _ => {}
            }
        }
        let empty_run = t
            .get("run")
            .is_some_and(|r| matches!(r.get_ref(), DeValue::Array(a) if a.is_empty()));
        if empty_run && !t.contains_key("deps") {
            self.error(
                t.get("run").map_or(span.clone(), |r| r.span()),
                format!("task `{name}` has an empty `run`"),
                Some("list at least one command, or give the task `deps` (an aggregate)".into()),
            );
        }
        if !t.contains_key("run") && !t.contains_key("deps") {
            self.error(
                span,
                format!("task `{name}` has nothing to do"),
                Some(
                    "give it `run = \"...\"` (commands) or `deps = [...]` (an aggregate), or both"
                        .into(),
                ),
            );
        }
        (task, dep_spans)
    }

    fn target(
        &mut self,
        item: &str,
        span: Range<usize>,
        groups: &[(String, Vec<HostSpec>)],
        out: &mut Vec<Target>,
    ) {
        let push = |out: &mut Vec<Target>, t: Target| {
            if !out.contains(&t) {
                out.push(t);
            }
        };
        if item == "local" {
            push(out, Target::Local);
            return;
        }
        if let Some((_, hosts)) = groups.iter().find(|(g, _)| g == item) {
            for h in hosts {
                push(out, Target::Remote(h.clone()));
            }
            return;
        }
        let known_host = groups
            .iter()
            .flat_map(|(_, hs)| hs.iter())
            .any(|h| h.host == item || h.to_string() == item);
        let looks_like_host = item.contains(['.', '@', ':', '{']);
        if known_host || looks_like_host {
            if let Some(h) = self.host(item, span) {
                push(out, Target::Remote(h));
            }
            return;
        }
        let mut candidates: Vec<&str> = groups.iter().map(|(g, _)| g.as_str()).collect();
        candidates.push("local");
        let help = did_you_mean(item, candidates).unwrap_or_else(|| {
            let names: Vec<String> = groups.iter().map(|(g, _)| g.clone()).collect();
            format!(
                "{}; a host can be named directly when it is listed under [hosts] or has a dot, `@` or `:`",
                defined_groups(&names)
            )
        });
        self.error(
            span,
            format!("host group `{item}` is not defined"),
            Some(help),
        );
    }

    fn commands(&mut self, v: &Value, task: &str) -> Vec<Command> {
        let items: Vec<&Value> = match v.get_ref() {
            DeValue::Array(a) => a.iter().collect(),
            _ => vec![v],
        };
        let mut out = Vec::new();
        for item in items {
            match item.get_ref() {
                DeValue::String(s) => {
                    if let Some(c) = self.command_text(s, item.span(), task) {
                        out.push(c);
                    }
                }
                DeValue::Table(ct) => {
                    if let Some(c) = self.command_table(ct, item.span(), task) {
                        out.push(c);
                    }
                }
                _ => self.type_error(
                    item,
                    "run",
                    "a command string, a { cmd = ... } table, or a list of them",
                ),
            }
        }
        out
    }

    fn command_text(&mut self, text: &str, span: Range<usize>, task: &str) -> Option<Command> {
        if text.trim().is_empty() {
            self.error(
                span,
                format!("task `{task}` has an empty command"),
                Some("remove it or write the command".into()),
            );
            return None;
        }
        let template = self.template(text, span)?;
        Some(Command {
            text: text.to_string(),
            template,
            sudo: false,
            user: None,
            pty: false,
            timeout: DEFAULT_COMMAND_TIMEOUT,
            retries: 0,
            retry_delay: DEFAULT_RETRY_DELAY,
            continue_on_error: false,
        })
    }

    fn command_table(&mut self, t: &DeTable, span: Range<usize>, task: &str) -> Option<Command> {
        self.unknown_keys(t, COMMAND_KEYS, "a command");
        let Some(cv) = t.get("cmd") else {
            self.error(
                span,
                format!("a command of task `{task}` has no `cmd`"),
                Some("write { cmd = \"...\" }".into()),
            );
            return None;
        };
        let text = self.string(cv, "cmd")?;
        let mut c = self.command_text(&text, cv.span(), task)?;
        for (k, v) in t.iter() {
            let key = k.get_ref().as_ref();
            match key {
                "sudo" => c.sudo = self.boolean(v, key).unwrap_or(false),
                "user" => {
                    c.user = self.string(v, key);
                    c.sudo = c.sudo || c.user.is_some();
                }
                "pty" => c.pty = self.boolean(v, key).unwrap_or(false),
                "timeout" => c.timeout = self.duration(v, key, false).unwrap_or(c.timeout),
                "retries" => c.retries = self.integer(v, key, 0, 100).unwrap_or(0) as u32,
                "retry_delay" => {
                    c.retry_delay = self.duration(v, key, true).unwrap_or(c.retry_delay)
                }
                "continue_on_error" => c.continue_on_error = self.boolean(v, key).unwrap_or(false),
                _ => {}
            }
        }
        Some(c)
    }
}

fn collect_hosts(
    i: usize,
    hosts: &[&Vec<HostSpec>],
    edges: &[Vec<usize>],
    seen: &mut HashSet<HostSpec>,
    out: &mut Vec<HostSpec>,
) {
    for h in hosts[i].iter() {
        if seen.insert(h.clone()) {
            out.push(h.clone());
        }
    }
    for &j in &edges[i] {
        collect_hosts(j, hosts, edges, seen, out);
    }
}

fn defined_groups(names: &[String]) -> String {
    if names.is_empty() {
        "no host groups are defined; add them under [hosts]".to_string()
    } else {
        format!("defined groups: {}", names.join(", "))
    }
}

fn defined_tasks(names: &[String]) -> String {
    format!("defined tasks: {}", names.join(", "))
}

/// Expansion context for host strings: only env placeholders are allowed there.
struct EnvOnly;

impl super::template::Vars for EnvOnly {
    fn host(&self) -> &str {
        ""
    }
    fn task(&self) -> &str {
        ""
    }
    fn run_id(&self) -> &str {
        ""
    }
    fn timestamp(&self) -> &str {
        ""
    }
    fn git_sha(&self) -> String {
        String::new()
    }
    fn git_branch(&self) -> String {
        String::new()
    }
}
