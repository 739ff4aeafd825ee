//! Task parameters from the command line, as just binds them: after a task name, as many
//! words as its `args` take (required ones, then ones with defaults while words remain,
//! then a variadic one takes the rest); words after `--` go to the last named task's
//! variadic parameter. Tasks that run only as dependencies get their defaults.
//! Must not: know about templates beyond the values it hands them.

use std::collections::BTreeMap;

use crate::config::model::{Param, Variadic};
use crate::config::Config;
use crate::error::{did_you_mean, Error};

/// A bound parameter: one word, or the words of a variadic parameter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum ArgValue {
    One(String),
    Many(Vec<String>),
}

/// Parameters by task name, each task's in declaration order.
pub type Args = BTreeMap<String, Vec<(String, ArgValue)>>;

/// Split `words` into task names and their arguments; `rest` is what followed `--`.
pub fn bind(
    config: &Config,
    words: &[String],
    rest: &[String],
) -> Result<(Vec<String>, Args), Error> {
    let mut targets: Vec<String> = Vec::new();
    let mut args = Args::new();
    let mut i = 0;
    while i < words.len() {
        let name = &words[i];
        let Some(t) = config.task_index(name) else {
            let prev = targets.last().and_then(|p| config.task_index(p));
            return Err(match prev {
                Some(p) if !config.tasks[p].params.is_empty() => too_many(config, p, name),
                _ => unknown_task(config, name),
            });
        };
        // A variadic parameter takes every word left, and those after `--`: its task is
        // the last one named.
        let (bound, used) = bind_task(config, t, &words[i + 1..], rest)?;
        i += 1 + used;
        // An alias names its task: parameters, history and the journal know the task.
        let name = &config.tasks[t].name;
        targets.push(name.clone());
        args.insert(name.clone(), bound);
    }
    let last_variadic = targets
        .last()
        .and_then(|n| config.task_index(n))
        .is_some_and(|t| {
            config.tasks[t]
                .params
                .last()
                .is_some_and(|p| p.variadic.is_some())
        });
    if !rest.is_empty() && !last_variadic {
        let mut e = Error::usage(format!(
            "the words after `--` ({}) have no parameter to go to",
            rest.join(" ")
        ));
        if let Some(n) = targets.last() {
            e = e.with_help(usage_line(config, n));
        }
        return Err(
            e.with_help("`--` passes words to the last task's `*name` or `+name` parameter")
        );
    }
    Ok((targets, args))
}

/// Bind the parameters of task `t` from `words`; how many words were used.
fn bind_task(
    config: &Config,
    t: usize,
    words: &[String],
    rest: &[String],
) -> Result<(Vec<(String, ArgValue)>, usize), Error> {
    let task = &config.tasks[t];
    let mut out = Vec::new();
    let mut used = 0;
    for p in &task.params {
        match p.variadic {
            Some(kind) => {
                let mut many: Vec<String> = words[used..].to_vec();
                used = words.len();
                many.extend(rest.iter().cloned());
                if kind == Variadic::AtLeastOne && many.is_empty() {
                    return Err(missing(config, &task.name, p));
                }
                out.push((p.name.clone(), ArgValue::Many(many)));
            }
            None => match (words.get(used), &p.default) {
                (Some(w), _) => {
                    out.push((p.name.clone(), ArgValue::One(w.clone())));
                    used += 1;
                }
                (None, Some(d)) => out.push((p.name.clone(), ArgValue::One(d.clone()))),
                (None, None) => return Err(missing(config, &task.name, p)),
            },
        }
    }
    Ok((out, used))
}

/// Defaults for the tasks of the plan that were not named (they run as dependencies); a
/// required parameter there is an error naming the task that needs it.
pub fn defaults(config: &Config, plan: &[usize], args: &mut Args) -> Result<(), Error> {
    for &t in plan {
        let task = &config.tasks[t];
        if task.params.is_empty() || args.contains_key(&task.name) {
            continue;
        }
        let (bound, _) = bind_task(config, t, &[], &[]).map_err(|e| {
            e.with_help(format!(
                "`{}` runs as a dependency here; name it on the command line with its arguments, or give the parameter a default",
                task.name
            ))
        })?;
        args.insert(task.name.clone(), bound);
    }
    Ok(())
}

/// A word after a task's arguments that is no task name.
fn too_many(config: &Config, t: usize, extra: &str) -> Error {
    let task = &config.tasks[t].name;
    Error::usage(format!(
        "task `{task}` got an extra argument `{extra}` (and there is no task of that name)"
    ))
    .with_help(usage_line(config, task))
}

fn missing(config: &Config, task: &str, p: &Param) -> Error {
    let what = if p.variadic.is_some() {
        "at least one argument for"
    } else {
        "argument"
    };
    Error::usage(format!("task `{task}` needs {what} `{}`", p.name))
        .with_help(usage_line(config, task))
}

fn unknown_task(config: &Config, name: &str) -> Error {
    let help = did_you_mean(name, config.runnable_names()).unwrap_or_else(|| {
        if config.tasks.is_empty() {
            format!("{} defines no tasks", config.path.display())
        } else {
            "run `nexus list` to see the tasks".to_string()
        }
    });
    Error::usage(format!("unknown task `{name}`")).with_help(help)
}

/// `usage: nexus run deploy VERSION [CHANNEL] [REST]...`
pub fn usage_line(config: &Config, task: &str) -> String {
    let params = config
        .task_index(task)
        .map(|t| signature(&config.tasks[t].params))
        .unwrap_or_default();
    if params.is_empty() {
        format!("usage: nexus run {task}")
    } else {
        format!("usage: nexus run {task} {params}")
    }
}

/// The parameters as `nexus list` and usage lines show them.
pub fn signature(params: &[Param]) -> String {
    params
        .iter()
        .map(|p| {
            let n = p.name.to_uppercase();
            match (p.variadic, &p.default) {
                (Some(Variadic::Any), _) => format!("[{n}]..."),
                (Some(Variadic::AtLeastOne), _) => format!("{n}..."),
                (None, Some(d)) => format!("[{n}={d}]"),
                (None, None) => n,
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
