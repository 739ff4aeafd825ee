//! `[tasks]`: each task's keys (declared in `keys::TASK`), its dependencies (undefined
//! ones suggested, cycles reported as a path), its targets (`on`) and its commands.
//! Must not: plan or run anything.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::cycle;
use super::groups::defined_groups;
use super::host::HostSpec;
use super::keys;
use super::load::{Value, Walker};
use super::model::*;
use crate::error::did_you_mean;

/// A task while its keys are read, with the spans of its `deps` (for cycle errors), its
/// aliases (checked against every name once all tasks are read) and where it says
/// `interactive`.
pub struct TaskDraft {
    pub task: Task,
    pub dep_spans: Vec<Range<usize>>,
    pub aliases: Vec<(String, Range<usize>)>,
    pub interactive_span: Option<Range<usize>>,
    /// `batch`, `canary`, `canary_wait` where written (only rolling tasks take them).
    pub rolling_keys: Vec<(&'static str, Range<usize>)>,
    /// `artifacts_from` as written: names with their spans (checked against `deps`).
    pub artifacts_from: Option<Vec<(String, Range<usize>)>>,
}

impl Walker<'_> {
    pub(super) fn tasks(&mut self, t: &DeTable) -> Vec<Task> {
        let names: Vec<String> = t.iter().map(|(k, _)| k.get_ref().to_string()).collect();
        self.task_names = names.clone();
        self.task_index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let mut dep_spans: Vec<Vec<Range<usize>>> = Vec::new();
        let mut tasks = Vec::new();
        let mut aliases = Vec::new();
        for (k, v) in t.iter() {
            let name = k.get_ref().to_string();
            self.printable_name(&name, k.span(), "task name");
            let Some(tt) = self.table(v, &format!("tasks.{name}")) else {
                continue;
            };
            let mut draft = self.task(&name, k.span(), tt);
            for (alias, span) in std::mem::take(&mut draft.aliases) {
                aliases.push((alias, span, tasks.len()));
            }
            tasks.push(draft.task);
            dep_spans.push(draft.dep_spans);
        }
        self.check_aliases(&mut tasks, aliases);
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

    fn task(&mut self, name: &str, span: Range<usize>, t: &DeTable) -> TaskDraft {
        let mut draft = TaskDraft {
            task: Task {
                name: name.to_string(),
                desc: None,
                deps: Vec::new(),
                targets: vec![Target::Local],
                on: vec!["local".to_string()],
                strategy: Strategy::Parallel,
                timeout: None,
                dir: None,
                env: Vec::new(),
                continue_on_error: false,
                commands: Vec::new(),
                params: Vec::new(),
                aliases: Vec::new(),
                private: name.starts_with('_'),
                interactive: false,
                checks: Default::default(),
                span: span.clone(),
                rollout: None,
                run_once: false,
                force_handlers: false,
                artifacts: Vec::new(),
                artifacts_from: None,
            },
            dep_spans: Vec::new(),
            aliases: Vec::new(),
            interactive_span: None,
            rolling_keys: Vec::new(),
            artifacts_from: None,
        };
        self.read_keys(t, keys::TASK, || format!("task `{name}`"), &mut draft);
        if draft.task.interactive {
            self.check_interactive(&draft);
        }
        self.check_rollout(&draft);
        self.artifacts_from(&mut draft);
        self.local_sources(&draft.task, t);
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
        draft
    }

    /// `artifacts_from`: each name must be one of the task's `deps`.
    fn artifacts_from(&mut self, d: &mut TaskDraft) {
        let Some(names) = d.artifacts_from.take() else {
            return;
        };
        let mut from = Vec::new();
        for (dep, span) in names {
            let index = self.task_index.get(&dep).copied();
            match index.filter(|i| d.task.deps.contains(i)) {
                Some(i) => from.push(i),
                None => self.error(
                    span,
                    format!(
                        "task `{}`: `artifacts_from` names `{dep}`, which is not one of its `deps`",
                        d.task.name
                    ),
                    Some(format!(
                        "add `{dep}` to `deps`, or remove it from `artifacts_from` (a task takes artifacts from its direct dependencies only)"
                    )),
                ),
            }
        }
        d.task.artifacts_from = Some(from);
    }

    /// `deps`: names of defined tasks, other than the task itself.
    pub(super) fn deps(&mut self, v: &Value, d: &mut TaskDraft) {
        let name = d.task.name.clone();
        for (dep, dspan) in self.string_list(v, "deps").unwrap_or_default() {
            match self.task_index.get(&dep).copied() {
                Some(_) if dep == name => self.error(
                    dspan,
                    format!("task `{name}` depends on itself"),
                    Some("remove it from `deps`".into()),
                ),
                Some(i) => {
                    if !d.task.deps.contains(&i) {
                        d.task.deps.push(i);
                        d.dep_spans.push(dspan);
                    }
                }
                None => {
                    let help = self.wants(&dspan).then(|| {
                        did_you_mean(&dep, self.task_names.iter().map(String::as_str))
                            .unwrap_or_else(|| defined_tasks(&self.task_names))
                    });
                    self.error(
                        dspan,
                        format!("task `{name}` depends on undefined task `{dep}`"),
                        help,
                    );
                }
            }
        }
    }

    /// `on`: "local", group names and hosts.
    pub(super) fn on(&mut self, v: &Value, d: &mut TaskDraft) {
        let items = self.string_list(v, "on").unwrap_or_default();
        if items.is_empty() {
            self.error(
                v.span(),
                format!("task `{}` has an empty `on`", d.task.name),
                Some("name \"local\", a host group or a host".into()),
            );
        }
        d.task.targets.clear();
        d.task.on.clear();
        for (item, ispan) in items {
            d.task.on.push(item.clone());
            self.target(&item, ispan, &mut d.task.targets);
        }
        dedup(&mut d.task.targets);
    }

    fn target(&mut self, item: &str, span: Range<usize>, out: &mut Vec<Target>) {
        let groups = std::mem::take(&mut self.groups);
        self.target_in(item, span, &groups, out);
        self.groups = groups;
    }

    fn target_in(
        &mut self,
        item: &str,
        span: Range<usize>,
        groups: &[(String, Vec<HostSpec>)],
        out: &mut Vec<Target>,
    ) {
        let push = |out: &mut Vec<Target>, t: Target| out.push(t); // deduplicated by `on`
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
        let known_host = self.host_names.contains(item);
        let looks_like_host = item.contains(['.', '@', ':', '{']);
        if known_host || looks_like_host {
            if let Some(h) = self.host(item, span) {
                push(out, Target::Remote(h));
            }
            return;
        }
        let help = self
            .wants(&span)
            .then(|| undefined_group_help(item, groups));
        self.error(span, format!("host group `{item}` is not defined"), help);
    }

    pub(super) fn commands(&mut self, v: &Value, task: &str) -> Vec<Command> {
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
                format!("{} `{task}` has an empty command", self.steps_of),
                Some("remove it or write the command".into()),
            );
            return None;
        }
        let template = self.template(text, span)?;
        Some(Command::new(text.to_string(), template))
    }

    fn command_table(&mut self, t: &DeTable, span: Range<usize>, task: &str) -> Option<Command> {
        if t.contains_key("secret") {
            return self.secret_step(t, span, task);
        }
        if super::files::FILE_KINDS.iter().any(|k| t.contains_key(*k)) {
            return self.file_step(t, span, task);
        }
        let Some(cv) = t.get("cmd") else {
            self.unknown_keys(t, &keys::names(keys::COMMAND), "a command");
            self.error(
                span,
                format!("a command of {} `{task}` has no `cmd`", self.steps_of),
                Some("write { cmd = \"...\" }".into()),
            );
            return None;
        };
        let text = self.string(cv, "cmd")?;
        let mut c = self.command_text(&text, cv.span(), task)?;
        self.read_keys(t, keys::COMMAND, || "a command".into(), &mut c);
        Some(c)
    }
}

impl Walker<'_> {
    /// `aliases`: names, each once.
    pub(super) fn aliases(&mut self, v: &Value) -> Vec<(String, Range<usize>)> {
        let mut out: Vec<(String, Range<usize>)> = Vec::new();
        for (alias, span) in self.string_list(v, "aliases").unwrap_or_default() {
            if alias.trim().is_empty() {
                self.error(
                    span,
                    "an alias cannot be empty",
                    Some("remove it, or write the name".into()),
                );
            } else if self.printable_name(&alias, span.clone(), "alias")
                && !out.iter().any(|(a, _)| *a == alias)
            {
                out.push((alias, span));
            }
        }
        out
    }

    /// Every alias names one task and is no task's name.
    fn check_aliases(&mut self, tasks: &mut [Task], aliases: Vec<(String, Range<usize>, usize)>) {
        let mut owner: std::collections::HashMap<String, usize> = Default::default();
        let index = std::mem::take(&mut self.task_index);
        for (alias, span, t) in aliases {
            let name = tasks[t].name.clone();
            if index.contains_key(&alias) {
                let message = if alias == name {
                    format!("task `{name}` has its own name as an alias")
                } else {
                    format!("alias `{alias}` of task `{name}` is the name of another task")
                };
                let help = "a name runs one task: rename the alias or the task";
                self.error(span, message, Some(help.into()));
            } else if let Some(&other) = owner.get(&alias) {
                let first = tasks[other].name.clone();
                self.error(
                    span,
                    format!("alias `{alias}` is given to both `{first}` and `{name}`"),
                    Some("a name runs one task: keep the alias on one of them".into()),
                );
            } else {
                owner.insert(alias.clone(), t);
                tasks[t].aliases.push(alias);
            }
        }
        self.task_index = index;
    }

    /// An interactive task runs here, and its commands need no sudo (sudo would take the
    /// environment nexus passes on the terminal's input).
    fn check_interactive(&mut self, d: &TaskDraft) {
        let name = &d.task.name;
        let span = d.interactive_span.clone().unwrap_or(d.task.span.clone());
        if d.task
            .targets
            .iter()
            .any(|t| matches!(t, Target::Remote(_)))
        {
            self.error(
                span.clone(),
                format!("task `{name}` is interactive and runs on remote hosts"),
                Some(
                    "interactive tasks run on this machine only: remove `on`, or `interactive`"
                        .into(),
                ),
            );
        }
        if d.task.commands.iter().any(|c| c.sudo) {
            self.error(
                span,
                format!("task `{name}` is interactive and has a command with `sudo` or `user`"),
                Some("write sudo in the command itself (cmd = \"sudo ...\"): an interactive command can answer sudo's password prompt".into()),
            );
        }
    }
}

/// Keep the first of each target, in order.
fn dedup(targets: &mut Vec<Target>) {
    let mut seen = std::collections::HashSet::new();
    targets.retain(|t| seen.insert(t.clone()));
}

pub(super) fn defined_tasks(names: &[String]) -> String {
    format!("defined tasks: {}", super::report::some_names(names))
}

fn undefined_group_help(item: &str, groups: &[(String, Vec<HostSpec>)]) -> String {
    let mut candidates: Vec<&str> = groups.iter().map(|(g, _)| g.as_str()).collect();
    candidates.push("local");
    did_you_mean(item, candidates).unwrap_or_else(|| {
        let names: Vec<String> = groups.iter().map(|(g, _)| g.clone()).collect();
        format!(
            "{}; a host can be named directly when it is listed under [hosts] or has a dot, `@` or `:`",
            defined_groups(&names)
        )
    })
}
