//! Template files of `template` steps: read (relative to the project root) and parsed
//! when nexus.toml is loaded, and every name they use checked against what the step can
//! see — the built-ins, `[vars]`, the task's `args`, the vars of each of its hosts, the
//! step's own `vars`. Problems point into the template file (its own file:line:column),
//! or at the step in nexus.toml when the file cannot be read.
//! Must not: render anything (that happens per host, in src/transfer).

use std::path::{Path, PathBuf};

use super::model::{Command, Config, FileKind, FileStep, Target, TemplateFile};
use super::template::{Template, BUILTINS};
use crate::error::{did_you_mean, Diagnostic, Error, Location};

/// Template files larger than this are refused (they are rendered in memory per host).
pub const MAX_TEMPLATE: u64 = 16 * 1024 * 1024;

/// Read and check the template file of every template step of `config`.
pub fn load(config: &mut Config, display: &Path) -> Result<(), Error> {
    let mut problems: Vec<Diagnostic> = Vec::new();
    let root = config.root.clone();
    let at = Loading {
        root: &root,
        display,
        source: &config.source,
        host_vars: &config.host_vars,
        vars: &config.vars,
    };
    for task in &mut config.tasks {
        let remote: Vec<String> = task
            .targets
            .iter()
            .filter_map(|t| match t {
                Target::Remote(h) => Some(h.label()),
                Target::Local => None,
            })
            .collect();
        let params: Vec<String> = task.params.iter().map(|p| p.name.clone()).collect();
        problems.extend(at.steps(&mut task.commands, &remote, &params));
        if let Some(r) = task.rollout.as_mut() {
            problems.extend(at.steps(&mut r.rollback, &remote, &params));
        }
    }
    // A handler runs for any task on any host: only the names every template may use.
    for h in &mut config.handlers {
        problems.extend(at.steps(&mut h.commands, &[], &[]));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::validation(problems))
    }
}

/// What the template files of a config are read and checked with.
struct Loading<'a> {
    root: &'a Path,
    display: &'a Path,
    source: &'a str,
    host_vars: &'a HostVars,
    vars: &'a [(String, toml::Value)],
}

impl Loading<'_> {
    /// Read and check the template file of each template step of `cmds` (run on the
    /// hosts `remote`, with parameters `params`); the problems found.
    fn steps(&self, cmds: &mut [Command], remote: &[String], params: &[String]) -> Vec<Diagnostic> {
        let mut problems = Vec::new();
        for cmd in cmds {
            let Some(step) = cmd.file.as_deref_mut() else {
                continue;
            };
            if step.kind != FileKind::Template {
                continue;
            }
            if let Err(p) = self.step(step, remote, params) {
                problems.extend(p);
            }
        }
        problems
    }

    fn step(
        &self,
        step: &mut FileStep,
        remote: &[String],
        params: &[String],
    ) -> Result<(), Vec<Diagnostic>> {
        let at = || Location::from_span(self.display, self.source, step.from.span.clone());
        if !step.from.value.is_literal() {
            return Err(vec![Diagnostic::new("the path of a template file cannot use variables")
                .at(at())
                .help("it is read when nexus.toml is loaded: write the path itself, relative to the project root")]);
        }
        let rel = step.from.value.source().to_string();
        let shown = shown_path(self.display, &rel);
        let text = read(&self.root.join(&rel)).map_err(|why| {
            vec![Diagnostic::new(format!("cannot read template file `{rel}`: {why}"))
                .at(at())
                .help("paths of template files are relative to the project root (the directory of nexus.toml)")]
        })?;
        let template = Template::parse_file(&text).map_err(|e| {
            vec![Diagnostic::new(e.message)
                .at(Location::from_span(&shown, &text, e.span))
                .help_opt(e.help)]
        })?;
        let mut known: Vec<String> = BUILTINS.iter().map(|s| s.to_string()).collect();
        known.extend(self.vars.iter().map(|(k, _)| k.clone()));
        known.extend(params.iter().cloned());
        known.extend(step.vars.iter().map(|(k, _)| k.clone()));
        let seen = Seen {
            known: &known,
            remote,
            host_vars: self.host_vars,
            shown: &shown,
            text: &text,
        };
        let problems = seen.unknown_names(&template);
        step.body = Some(TemplateFile {
            shown: shown.clone(),
            template: super::model::Spanned {
                value: template,
                span: step.from.span.clone(),
                text_start: None,
            },
        });
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// What the names of one template file are checked against.
struct Seen<'a> {
    known: &'a [String],
    remote: &'a [String],
    host_vars: &'a HostVars,
    shown: &'a Path,
    text: &'a str,
}

type HostVars = std::collections::HashMap<String, Vec<(String, toml::Value)>>;

impl Seen<'_> {
    /// A problem for each name the template uses that is not known on every host.
    fn unknown_names(&self, template: &Template) -> Vec<Diagnostic> {
        let (known, remote, host_vars) = (self.known, self.remote, self.host_vars);
        let mut problems = Vec::new();
        for (name, span) in template.names() {
            if known.iter().any(|k| k == name) {
                continue;
            }
            let lacking = remote.iter().find(|h| !has(host_vars, h, name));
            if !remote.is_empty() && lacking.is_none() {
                continue; // every host of the task defines it
            }
            let some_have = remote.iter().any(|h| has(host_vars, h, name));
            let (message, help) = match lacking {
                    Some(host) if some_have => (
                        format!("unknown variable `{name}` (not defined for host `{host}`)"),
                        format!("`{name}` is in the vars of some of the task's hosts but not of `{host}`: give it a default in [vars], or define it for every host"),
                    ),
                    _ => (
                        format!("unknown variable `{name}`"),
                        did_you_mean(name, known.iter().map(String::as_str)).unwrap_or_else(|| {
                            format!(
                                "a template can use {}, `[vars]`, the task's `args`, the vars of its hosts and the step's `vars`",
                                BUILTINS.join(", ")
                            )
                        }),
                    ),
                };
            problems.push(
                Diagnostic::new(message)
                    .at(Location::from_span(self.shown, self.text, span))
                    .help(help),
            );
        }
        problems
    }
}

fn has(
    host_vars: &std::collections::HashMap<String, Vec<(String, toml::Value)>>,
    host: &str,
    name: &str,
) -> bool {
    host_vars
        .get(host)
        .is_some_and(|v| v.iter().any(|(k, _)| k == name))
}

/// The template's path as shown: beside nexus.toml as the user named it.
fn shown_path(display: &Path, rel: &str) -> PathBuf {
    match display.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => dir.join(rel),
        None => PathBuf::from(rel),
    }
}

fn read(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| crate::error::io_reason(&e))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > MAX_TEMPLATE {
        return Err(format!(
            "{} bytes; template files are rendered in memory and may have at most {MAX_TEMPLATE}",
            meta.len()
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TEMPLATE + 1).read_to_end(&mut bytes))
        .map_err(|e| crate::error::io_reason(&e))?;
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text (use `upload` for binary files)".into())
}
