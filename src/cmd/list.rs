//! `nexus list`: tasks with their parameters, description, aliases, dependencies and
//! targets (text, names or JSON); private tasks only in JSON.

use super::{load, print};
use crate::cli::args::Global;
use crate::config::{self, Config, Target};
use crate::error::Error;

pub fn list(g: &Global, names: bool, json: bool) -> Result<i32, Error> {
    let c = load(g)?;
    if names {
        let names: String = c
            .tasks
            .iter()
            .filter(|t| !t.private)
            .map(|t| format!("{}\n", t.name))
            .collect();
        return print(&names);
    }
    if json {
        return print(&format!("{}\n", to_json(&c)));
    }
    print_list(&c)
}

/// The text list of `c`'s tasks (`nexus list`, a bare `nexus` without `default`).
pub fn print_list(c: &Config) -> Result<i32, Error> {
    if c.tasks.iter().all(|t| t.private) {
        return print(&format!(
            "{} defines no {}tasks\n",
            config::display_path(&c.path).display(),
            if c.tasks.is_empty() { "" } else { "public " }
        ));
    }
    print(&text(c))
}

fn to_json(c: &Config) -> serde_json::Value {
    let tasks: Vec<serde_json::Value> = c
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            serde_json::json!({
                "name": t.name,
                "desc": t.desc,
                "args": t.params.iter().map(param_spec).collect::<Vec<_>>(),
                "aliases": t.aliases,
                "private": t.private,
                "default": c.default == Some(i),
                "deps": t.deps.iter().map(|&d| &c.tasks[d].name).collect::<Vec<_>>(),
                "on": t.on,
                "hosts": t.targets.iter().map(Target::label).collect::<Vec<_>>(),
                "commands": t.commands.iter().map(|c| &c.text).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::Value::Array(tasks)
}

/// One line per public task: name, description, then `[aliases: …; deps: …; on: …]`.
/// The default task is marked `(default)`.
fn text(c: &Config) -> String {
    let public = || c.tasks.iter().enumerate().filter(|(_, t)| !t.private);
    // The name and its parameters as `nexus run` takes them: `deploy VERSION [CHANNEL=stable]`.
    let head = |t: &crate::config::Task| {
        let sig = crate::bind::signature(&t.params);
        if sig.is_empty() {
            t.name.clone()
        } else {
            format!("{} {sig}", t.name)
        }
    };
    let width = public()
        .map(|(_, t)| head(t).chars().count())
        .max()
        .unwrap_or(0);
    let mut s = String::from("Tasks:\n");
    for (i, t) in public() {
        let mut line = format!("  {:<width$}", head(t));
        if let Some(d) = &t.desc {
            line += &format!("  {d}");
        }
        if c.default == Some(i) {
            line += "  (default)";
        }
        let mut extra = Vec::new();
        if !t.aliases.is_empty() {
            extra.push(format!("aliases: {}", t.aliases.join(", ")));
        }
        if !t.deps.is_empty() {
            let deps: Vec<&str> = t.deps.iter().map(|&d| c.tasks[d].name.as_str()).collect();
            extra.push(format!("deps: {}", deps.join(", ")));
        }
        if t.on != ["local"] {
            extra.push(format!("on: {}", t.on.join(", ")));
        }
        if !extra.is_empty() {
            line += &format!("  [{}]", extra.join("; "));
        }
        s += line.trim_end();
        s.push('\n');
    }
    s
}

/// A parameter as `args` declares it: `version`, `channel=stable`, `*rest`, `+files`.
fn param_spec(p: &crate::config::model::Param) -> String {
    use crate::config::model::Variadic;
    let mark = match p.variadic {
        Some(Variadic::Any) => "*",
        Some(Variadic::AtLeastOne) => "+",
        None => "",
    };
    match &p.default {
        Some(d) => format!("{mark}{}={d}", p.name),
        None => format!("{mark}{}", p.name),
    }
}
