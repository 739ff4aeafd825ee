//! The keys of up-to-date checks (docs/nexus-toml.md, "Up-to-date checks"): a task's
//! `sources` and `outputs` (globs relative to the project root, checked when the file is
//! loaded), and `creates` / `unless` on tasks and commands (templates). A task with
//! `sources` must be local. Must not: look at files or run anything (src/uptodate does).

use std::ops::Range;

use toml::de::DeTable;

use super::load::{Value, Walker};
use super::model::{Spanned, Target, Task};
use super::template::Template;

/// `creates` and `unless` of a task or a command: the thing is skipped where the path
/// exists or the command exits 0.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    pub creates: Option<Spanned<Template>>,
    pub unless: Option<Spanned<Template>>,
}

impl Guard {
    pub fn is_empty(&self) -> bool {
        self.creates.is_none() && self.unless.is_none()
    }

    pub fn templates(&self) -> impl Iterator<Item = &Spanned<Template>> {
        self.creates.iter().chain(self.unless.iter())
    }
}

/// What a task's up-to-date checks look at.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    /// `sources`: globs relative to the project root, as written.
    pub sources: Vec<String>,
    /// `outputs`: the same.
    pub outputs: Vec<String>,
    /// Task-level `creates` / `unless`.
    pub guard: Guard,
}

impl Walker<'_> {
    /// `sources` / `outputs`: a glob or a list of globs.
    pub(super) fn globs(&mut self, v: &Value, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (g, span) in self.string_list(v, key).unwrap_or_default() {
            if let Some(g) = self.glob(&g, span, key) {
                out.push(g);
            }
        }
        out
    }

    fn glob(&mut self, g: &str, span: Range<usize>, key: &str) -> Option<String> {
        if !self.no_nul(g, span.clone()) {
            return None;
        }
        let problem = if g.trim().is_empty() {
            Some("is empty".to_string())
        } else {
            crate::uptodate::walk::check_glob(g).err()
        };
        match problem {
            None => Some(g.trim_start_matches("./").to_string()),
            Some(why) => {
                self.error(
                    span,
                    format!("`{key}` pattern `{g}` {why}"),
                    Some("write a path or a glob relative to the project root, such as \"src/**/*.rs\"".into()),
                );
                None
            }
        }
    }

    /// `creates` / `unless`: a template.
    pub(super) fn guard_template(&mut self, v: &Value, key: &str) -> Option<Spanned<Template>> {
        let s = self.string(v, key)?;
        if s.trim().is_empty() {
            self.error(
                v.span(),
                format!("`{key}` is empty"),
                Some(match key {
                    "creates" => "give the path whose existence means the work is done".into(),
                    _ => "give the command that exits 0 when the work is done".into(),
                }),
            );
            return None;
        }
        self.template(&s, v.span())
    }

    /// Content checks are for local tasks, and `outputs` needs `sources`.
    pub(super) fn local_sources(&mut self, task: &Task, t: &DeTable) {
        let c = &task.checks;
        let span = |k: &str| t.get(k).map(|v| v.span());
        if !c.sources.is_empty() && task.targets.iter().any(|t| !matches!(t, Target::Local)) {
            self.error(
                span("sources").unwrap_or(task.span.clone()),
                format!(
                    "task `{}` has `sources` but runs on hosts: sources and outputs are checked on this machine, for local tasks",
                    task.name
                ),
                Some("on hosts, skip work with `creates = \"PATH\"` or `unless = \"COMMAND\"`".into()),
            );
        }
        if c.sources.is_empty() && t.contains_key("outputs") {
            self.error(
                span("outputs").unwrap_or(task.span.clone()),
                format!("task `{}` has `outputs` but no `sources`", task.name),
                Some(
                    "add `sources`: the task is skipped when they and the outputs are unchanged"
                        .into(),
                ),
            );
        }
    }
}
