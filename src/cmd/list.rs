//! `nexus list`: tasks with description, dependencies and targets (text, names or JSON).

use super::{load, print};
use crate::cli::args::Global;
use crate::config::{self, Config, Target};
use crate::error::Error;

pub fn list(g: &Global, names: bool, json: bool) -> Result<i32, Error> {
    let c = load(g)?;
    if names {
        let names: String = c.tasks.iter().map(|t| format!("{}\n", t.name)).collect();
        return print(&names);
    }
    if json {
        return print(&format!("{}\n", to_json(&c)));
    }
    if c.tasks.is_empty() {
        return print(&format!(
            "{} defines no tasks\n",
            config::display_path(&c.path).display()
        ));
    }
    print(&text(&c))
}

fn to_json(c: &Config) -> serde_json::Value {
    let tasks: Vec<serde_json::Value> = c
        .tasks
        .iter()
        .map(|t| {
            serde_json::json!({
                "name": t.name,
                "desc": t.desc,
                "deps": t.deps.iter().map(|&d| &c.tasks[d].name).collect::<Vec<_>>(),
                "on": t.on,
                "hosts": t.targets.iter().map(Target::label).collect::<Vec<_>>(),
                "commands": t.commands.iter().map(|c| &c.text).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::Value::Array(tasks)
}

fn text(c: &Config) -> String {
    let width = c
        .tasks
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut s = String::from("Tasks:\n");
    for t in &c.tasks {
        let mut line = format!("  {:<width$}", t.name);
        if let Some(d) = &t.desc {
            line += &format!("  {d}");
        }
        let mut extra = Vec::new();
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
