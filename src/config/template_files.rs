//! Template files of `template` steps: read (relative to the project root) and parsed
//! when nexus.toml is loaded, and every name they use checked against what the step can
//! see — the built-ins, `[vars]`, the task's `args`, the vars of each of its hosts, the
//! step's own `vars`. Problems point into the template file (its own file:line:column),
//! or at the step in nexus.toml when the file cannot be read.
//! Must not: render anything (that happens per host, in src/transfer).

use std::path::{Path, PathBuf};

use super::model::{Config, FileKind, Target, TemplateFile};
use super::template::{Template, BUILTINS};
use crate::error::{did_you_mean, Diagnostic, Error, Location};

/// Template files larger than this are refused (they are rendered in memory per host).
pub const MAX_TEMPLATE: u64 = 16 * 1024 * 1024;

/// Read and check the template file of every template step of `config`.
pub fn load(config: &mut Config, display: &Path) -> Result<(), Error> {
    let mut problems: Vec<Diagnostic> = Vec::new();
    let root = config.root.clone();
    let (source, host_vars, vars) = (&config.source, &config.host_vars, &config.vars);
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
        for cmd in &mut task.commands {
            let Some(step) = cmd.file.as_deref_mut() else {
                continue;
            };
            if step.kind != FileKind::Template {
                continue;
            }
            let at = || Location::from_span(display, source, step.from.span.clone());
            if !step.from.value.is_literal() {
                problems.push(
                    Diagnostic::new("the path of a template file cannot use variables")
                        .at(at())
                        .help("it is read when nexus.toml is loaded: write the path itself, relative to the project root"),
                );
                continue;
            }
            let rel = step.from.value.source().to_string();
            let path = root.join(&rel);
            let shown = shown_path(display, &rel);
            let text = match read(&path) {
                Ok(t) => t,
                Err(why) => {
                    problems.push(
                        Diagnostic::new(format!("cannot read template file `{rel}`: {why}"))
                            .at(at())
                            .help("paths of template files are relative to the project root (the directory of nexus.toml)"),
                    );
                    continue;
                }
            };
            let template = match Template::parse_file(&text) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(
                        Diagnostic::new(e.message)
                            .at(Location::from_span(&shown, &text, e.span))
                            .help_opt(e.help),
                    );
                    continue;
                }
            };
            let mut known: Vec<String> = BUILTINS.iter().map(|s| s.to_string()).collect();
            known.extend(vars.iter().map(|(k, _)| k.clone()));
            known.extend(params.iter().cloned());
            known.extend(step.vars.iter().map(|(k, _)| k.clone()));
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
                        .at(Location::from_span(&shown, &text, span))
                        .help(help),
                );
            }
            step.body = Some(TemplateFile {
                shown: shown.clone(),
                template: super::model::Spanned {
                    value: template,
                    span: step.from.span.clone(),
                    text_start: None,
                },
            });
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::validation(problems))
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
