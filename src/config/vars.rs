//! Template variables: `[vars]` read into plain TOML values, and the load-time check that
//! every name a task's templates use is one the task can see (the built-ins, `[vars]`,
//! the task's parameters), reported at file:line:column with a suggestion.
//! Must not: render anything.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::load::{Value, Walker};
use super::model::{Param, Task, Variadic};
use super::template::BUILTINS;
use crate::error::did_you_mean;

impl Walker<'_> {
    /// `[vars]`: names that are identifiers and do not shadow a built-in; any TOML value.
    pub(super) fn vars(&mut self, t: &DeTable) -> Vec<(String, toml::Value)> {
        let mut out = Vec::new();
        for (k, v) in t.iter() {
            let name = k.get_ref().to_string();
            if self.var_name(&name, k.span()) {
                out.push((name, plain(v.get_ref())));
            }
        }
        out
    }

    /// A variable name: an identifier that is not a built-in.
    pub(super) fn var_name(&mut self, name: &str, span: Range<usize>) -> bool {
        let ident = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ident {
            self.error(
                span,
                format!("`{name}` is not a valid variable name"),
                Some("a name has letters, digits and `_`, and does not start with a digit (like `app_port`)".into()),
            );
            return false;
        }
        if BUILTINS.contains(&name) || name == "env" || name == "secret" || name.starts_with("__") {
            self.error(
                span,
                format!("variable `{name}` would hide nexus's own `{name}`"),
                Some("choose another name".into()),
            );
            return false;
        }
        true
    }

    /// `args = ["version", "channel=stable", "*rest"]`: required parameters first, then
    /// those with defaults, then at most one variadic (`*` any number, `+` at least one).
    pub(super) fn params(&mut self, v: &Value) -> Vec<Param> {
        let mut out: Vec<Param> = Vec::new();
        for (text, span) in self.string_list(v, "args").unwrap_or_default() {
            let (variadic, rest) = match text.as_bytes().first() {
                Some(b'*') => (Some(Variadic::Any), &text[1..]),
                Some(b'+') => (Some(Variadic::AtLeastOne), &text[1..]),
                _ => (None, text.as_str()),
            };
            let (name, default) = match rest.split_once('=') {
                Some((n, d)) => (n.trim(), Some(d.to_string())),
                None => (rest.trim(), None),
            };
            if !self.var_name(name, span.clone()) {
                continue;
            }
            let problem = if out.iter().any(|p| p.name == name) {
                Some(format!("parameter `{name}` is declared twice"))
            } else if out.last().is_some_and(|p| p.variadic.is_some()) {
                Some(format!(
                    "parameter `{name}` comes after the variadic parameter `{}`",
                    out[out.len() - 1].name
                ))
            } else if variadic.is_some() && default.is_some() {
                Some(format!("variadic parameter `{name}` cannot have a default"))
            } else if default.is_none()
                && variadic.is_none()
                && out.iter().any(|p| p.default.is_some())
            {
                Some(format!(
                    "required parameter `{name}` comes after a parameter with a default"
                ))
            } else {
                None
            };
            if let Some(message) = problem {
                self.error(
                    span,
                    message,
                    Some("order: required parameters, then `name=default` ones, then one `*name` or `+name`".into()),
                );
                continue;
            }
            out.push(Param {
                name: name.to_string(),
                default,
                variadic,
            });
        }
        out
    }

    /// Every name used by the templates of `tasks` must be a built-in, in `vars`, or a
    /// parameter of the task.
    pub(super) fn check_names(&mut self, tasks: &[Task], vars: &[(String, toml::Value)]) {
        for task in tasks {
            let host_vars = self.vars_of_every_host(task);
            let known: Vec<&str> = BUILTINS
                .iter()
                .copied()
                .chain(vars.iter().map(|(k, _)| k.as_str()))
                .chain(task.params.iter().map(|p| p.name.as_str()))
                .chain(host_vars.iter().map(String::as_str))
                .collect();
            for tpl in task.templates() {
                for (name, inner) in tpl.value.names() {
                    if known.contains(&name) {
                        continue;
                    }
                    let help = match self.hosts_lacking(task, name) {
                        Some(host) => format!(
                            "`{name}` is in the vars of some of the task's hosts but not of `{host}`: give it a default in [vars], or define it for every host"
                        ),
                        None => did_you_mean(name, known.iter().copied()).unwrap_or_else(|| {
                            let remote = task
                                .targets
                                .iter()
                                .any(|t| matches!(t, super::model::Target::Remote(_)));
                            format!(
                                "task `{}` can use {}, `[vars]`{}",
                                task.name,
                                BUILTINS.join(", "),
                                if remote {
                                    ", its `args` and the vars of its hosts"
                                } else {
                                    " and its `args`"
                                }
                            )
                        }),
                    };
                    self.error(
                        tpl.file_span(inner),
                        format!("unknown variable `{name}`"),
                        Some(help),
                    );
                }
            }
        }
    }
}

impl Walker<'_> {
    /// The names defined for every host `task` runs on (none for a local task).
    fn vars_of_every_host(&self, task: &Task) -> Vec<String> {
        let mut common: Option<Vec<String>> = None;
        for t in &task.targets {
            let names: Vec<String> = match t {
                super::model::Target::Local => Vec::new(),
                super::model::Target::Remote(h) => self
                    .host_vars
                    .get(&h.label())
                    .map(|v| v.iter().map(|(k, _)| k.clone()).collect())
                    .unwrap_or_default(),
            };
            common = Some(match common {
                None => names,
                Some(c) => c.into_iter().filter(|n| names.contains(n)).collect(),
            });
        }
        common.unwrap_or_default()
    }

    /// A host of `task` whose vars lack `name` while another host's have it.
    fn hosts_lacking(&self, task: &Task, name: &str) -> Option<String> {
        let has = |h: &super::host::HostSpec| {
            self.host_vars
                .get(&h.label())
                .is_some_and(|v| v.iter().any(|(k, _)| k == name))
        };
        let remote = task.targets.iter().filter_map(|t| match t {
            super::model::Target::Remote(h) => Some(h),
            super::model::Target::Local => None,
        });
        let (with, without): (Vec<_>, Vec<_>) = remote.partition(|h| has(h));
        match (with.is_empty(), without.first()) {
            (false, Some(h)) => Some(h.label()),
            _ => None,
        }
    }
}

/// A TOML value of the file as a plain value (dates as their text).
pub(super) fn plain(v: &DeValue) -> toml::Value {
    match v {
        DeValue::String(s) => toml::Value::String(s.to_string()),
        DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .map(toml::Value::Integer)
            .unwrap_or_else(|_| toml::Value::String(i.as_str().to_string())),
        DeValue::Float(f) => f
            .as_str()
            .replace('_', "")
            .parse::<f64>()
            .map(toml::Value::Float)
            .unwrap_or_else(|_| toml::Value::String(f.as_str().to_string())),
        DeValue::Boolean(b) => toml::Value::Boolean(*b),
        DeValue::Datetime(d) => toml::Value::String(d.to_string()),
        DeValue::Array(a) => toml::Value::Array(a.iter().map(|x| plain(x.get_ref())).collect()),
        DeValue::Table(t) => toml::Value::Table(
            t.iter()
                .map(|(k, x)| (k.get_ref().to_string(), plain(x.get_ref())))
                .collect(),
        ),
    }
}
