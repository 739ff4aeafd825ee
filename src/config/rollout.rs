//! Rollouts and handlers in nexus.toml (docs/nexus-toml.md, "Rollouts" and "Handlers"):
//! `batch`, `max_fail`, `canary`, `canary_wait`, `wait_for`, `rollback` on a task;
//! `[handlers.NAME]` with `run` and `notify`; `notify` on commands, checked against the
//! handlers (an unknown name is suggested, a cycle of handlers is printed as a path).
//! Must not: run anything (src/run/rollout.rs and src/run/handlers.rs do).

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::cycle;
use super::load::{TaskDraft, Value, Walker};
use super::model::*;
use crate::error::did_you_mean;

/// Keys of a `wait_for` table.
pub const WAIT_FOR: &[&str] = &["cmd", "timeout", "interval", "successes"];
/// Keys of a `[handlers.NAME]` table.
pub const HANDLER: &[&str] = &["run", "notify"];
/// Task keys that only a rolling task takes.
const ROLLING_ONLY: &[&str] = &["batch", "canary", "canary_wait"];

impl Walker<'_> {
    /// `batch`: a number, a percentage, or a list of them.
    pub(super) fn batch(&mut self, v: &Value, d: &mut TaskDraft) {
        d.rolling_keys.push(("batch", v.span()));
        let items: Vec<&Value> = match v.get_ref() {
            DeValue::Array(a) => a.iter().collect(),
            _ => vec![v],
        };
        if items.is_empty() {
            self.error(
                v.span(),
                "`batch` is an empty list",
                Some("give the hosts of each batch: batch = [1, \"25%\", \"100%\"]".into()),
            );
        }
        let mut sizes = Vec::new();
        for item in items {
            if let Some(a) = self.amount(item, "batch", false) {
                sizes.push(a);
            }
        }
        rollout(d).batch = sizes;
    }

    /// A number of hosts (`2`) or a percentage of them (`"25%"`).
    pub(super) fn amount(&mut self, v: &Value, key: &str, zero: bool) -> Option<Amount> {
        let min = i64::from(!zero);
        let help =
            format!("write a number of hosts ({key} = {min}) or a percentage ({key} = \"25%\")");
        match v.get_ref() {
            DeValue::Integer(_) => self
                .integer(v, key, min, 1_000_000)
                .map(|n| Amount::Count(n as usize)),
            DeValue::String(s) => {
                let pct = s
                    .strip_suffix('%')
                    .and_then(|n| n.trim().parse::<u32>().ok())
                    .filter(|&p| p <= 100 && (zero || p > 0));
                if pct.is_none() {
                    let range = if zero { "0% to 100%" } else { "1% to 100%" };
                    self.error(
                        v.span(),
                        format!(
                            "`{key}` `{s}` is not a number of hosts or a percentage from {range}"
                        ),
                        Some(help),
                    );
                }
                pct.map(Amount::Percent)
            }
            _ => {
                self.type_error(v, key, "a number or a percentage string");
                None
            }
        }
    }

    /// `wait_for = "CMD"` or `{ cmd, timeout, interval, successes }`.
    pub(super) fn wait_for(&mut self, v: &Value, d: &mut TaskDraft) {
        let (cv, t) = match v.get_ref() {
            DeValue::String(_) => (v, None),
            DeValue::Table(t) => {
                self.unknown_keys(t, WAIT_FOR, "`wait_for`");
                match t.get("cmd") {
                    Some(cv) => (cv, Some(t)),
                    None => {
                        self.error(
                            v.span(),
                            format!("the `wait_for` of task `{}` has no `cmd`", d.task.name),
                            Some("write wait_for = { cmd = \"curl -fsS localhost:8080/health\", timeout = \"60s\" }".into()),
                        );
                        return;
                    }
                }
            }
            _ => {
                self.type_error(v, "wait_for", "a command string or a { cmd = ... } table");
                return;
            }
        };
        let Some(text) = self.string(cv, "cmd") else {
            return;
        };
        if text.trim().is_empty() {
            self.error(
                cv.span(),
                format!(
                    "the `wait_for` of task `{}` has an empty command",
                    d.task.name
                ),
                Some("write the command that exits 0 when the host is healthy".into()),
            );
            return;
        }
        let Some(template) = self.template(&text, cv.span()) else {
            return;
        };
        let mut w = WaitFor {
            text,
            template,
            timeout: WAIT_FOR_TIMEOUT,
            interval: WAIT_FOR_INTERVAL,
            successes: 1,
        };
        if let Some(t) = t {
            self.wait_for_limits(t, &mut w);
        }
        rollout(d).wait_for = Some(w);
    }

    fn wait_for_limits(&mut self, t: &DeTable, w: &mut WaitFor) {
        if let Some(v) = t.get("timeout") {
            w.timeout = self.duration(v, "timeout", false).unwrap_or(w.timeout);
        }
        if let Some(v) = t.get("interval") {
            w.interval = self.duration(v, "interval", false).unwrap_or(w.interval);
        }
        if let Some(v) = t.get("successes") {
            w.successes = self.integer(v, "successes", 1, 1000).unwrap_or(1) as u32;
        }
    }

    /// Keys of a rolling task given to another: an error each.
    pub(super) fn check_rollout(&mut self, d: &TaskDraft) {
        if d.task.strategy == Strategy::Rolling {
            return;
        }
        for (key, span) in &d.rolling_keys {
            debug_assert!(ROLLING_ONLY.contains(key));
            let now = match d.task.strategy {
                Strategy::Serial => "serial",
                _ => "parallel",
            };
            self.error(
                span.clone(),
                format!("task `{}` sets `{key}` but its strategy is {now}", d.task.name),
                Some("`batch`, `canary` and `canary_wait` are for rolling tasks: add strategy = \"rolling\"".into()),
            );
        }
    }

    /// `[handlers]`: each a table with `run` and `notify`.
    pub(super) fn handlers(&mut self, t: &DeTable) -> Vec<Handler> {
        let mut out = Vec::new();
        for (k, v) in t.iter() {
            let name = k.get_ref().to_string();
            self.printable_name(&name, k.span(), "handler name");
            let Some(ht) = self.table(v, &format!("handlers.{name}")) else {
                continue;
            };
            self.unknown_keys(ht, HANDLER, &format!("handler `{name}`"));
            let commands = match ht.get("run") {
                Some(rv) => {
                    self.steps_of = "handler";
                    let steps = self.commands(rv, &name);
                    self.steps_of = "task";
                    steps
                }
                None => {
                    self.error(
                        k.span(),
                        format!("handler `{name}` has no `run`"),
                        Some("give it the steps to run: run = \"systemctl restart app\"".into()),
                    );
                    Vec::new()
                }
            };
            let notify = ht.get("notify").map(|v| self.notify(v)).unwrap_or_default();
            out.push(Handler {
                name,
                commands,
                notify,
                span: k.span(),
            });
        }
        out
    }

    /// `notify`: handler names (checked once every handler is read).
    pub(super) fn notify(&mut self, v: &Value) -> Vec<Spanned<String>> {
        self.string_list(v, "notify")
            .unwrap_or_default()
            .into_iter()
            .map(|(value, span)| Spanned {
                value,
                span,
                text_start: None,
            })
            .collect()
    }

    /// Every `notify` names a handler, and handlers notify no cycle.
    pub(super) fn check_notify(&mut self, tasks: &[Task], handlers: &[Handler]) {
        let names: Vec<&str> = handlers.iter().map(|h| h.name.as_str()).collect();
        let steps = tasks
            .iter()
            .flat_map(|t| t.commands.iter())
            .chain(handlers.iter().flat_map(|h| h.commands.iter()));
        let mut all: Vec<&Spanned<String>> = steps.flat_map(|c| c.notify.iter()).collect();
        all.extend(handlers.iter().flat_map(|h| h.notify.iter()));
        for n in all {
            if names.contains(&n.value.as_str()) {
                continue;
            }
            let help = did_you_mean(&n.value, names.iter().copied()).unwrap_or_else(|| {
                if names.is_empty() {
                    let key = if n
                        .value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    {
                        n.value.clone()
                    } else {
                        format!("{:?}", n.value)
                    };
                    format!("define it: [handlers.{key}] with run = \"...\"")
                } else {
                    format!("defined handlers: {}", names.join(", "))
                }
            });
            self.error(
                n.span.clone(),
                format!("`notify` names undefined handler `{}`", n.value),
                Some(help),
            );
        }
        self.handler_cycle(handlers);
    }

    /// A handler that notifies itself through others: `a -> b -> a`.
    fn handler_cycle(&mut self, handlers: &[Handler]) {
        let index = |name: &str| handlers.iter().position(|h| h.name == name);
        let edges: Vec<Vec<(usize, Range<usize>)>> = handlers
            .iter()
            .map(|h| {
                h.notify
                    .iter()
                    .chain(h.commands.iter().flat_map(|c| c.notify.iter()))
                    .filter_map(|n| index(&n.value).map(|i| (i, n.span.clone())))
                    .collect()
            })
            .collect();
        let plain: Vec<Vec<usize>> = edges
            .iter()
            .map(|e| e.iter().map(|(i, _)| *i).collect())
            .collect();
        let Some(path) = cycle::find(&plain) else {
            return;
        };
        let text: Vec<&str> = path.iter().map(|&i| handlers[i].name.as_str()).collect();
        let (from, to) = (path[0], path[1]);
        let span = edges[from]
            .iter()
            .find(|(i, _)| *i == to)
            .map_or(handlers[from].span.clone(), |(_, s)| s.clone());
        self.error(
            span,
            format!("handler cycle: {}", text.join(" -> ")),
            Some("a handler may not notify itself, directly or through others: remove one of these notifications".into()),
        );
    }
}

impl Walker<'_> {
    /// A handler runs for any task: its steps may use the built-ins and `[vars]`, not
    /// one task's `args`.
    pub(super) fn check_handler_names(
        &mut self,
        handlers: &[Handler],
        vars: &[(String, toml::Value)],
    ) {
        use super::template::BUILTINS;
        let known: Vec<&str> = BUILTINS
            .iter()
            .copied()
            .chain(vars.iter().map(|(k, _)| k.as_str()))
            .collect();
        for h in handlers {
            for tpl in h.commands.iter().flat_map(Command::templates) {
                for (name, inner) in tpl.value.names() {
                    if known.contains(&name) {
                        continue;
                    }
                    let help = did_you_mean(name, known.iter().copied()).unwrap_or_else(|| {
                        format!(
                            "handler `{}` runs for any task: it can use {} and `[vars]`",
                            h.name,
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
    }
}

/// The task's rollout, created by the first rollout key read.
pub(super) fn rollout(d: &mut TaskDraft) -> &mut Rollout {
    d.task.rollout.get_or_insert_with(Rollout::default)
}
