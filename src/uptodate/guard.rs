//! `creates` and `unless`: every guard of a task on one target (the task's own and each
//! command's) is checked by ONE generated POSIX shell script, run once per host (one
//! exec request) before the task's first command, or by one local shell. The script
//! prints one line per guard: a marker, the guard's number, and 1 when it holds. An
//! `unless` command runs in a subshell with stdin from /dev/null and its output thrown
//! away. Must not: run the task's commands or decide which run (unit.rs skips them).

use crate::config::template::{Context, Template};
use crate::config::{Guard, Task};
use crate::exec::shell_quote;

/// What the guards of a task on one target say.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The task's own guard holds: why (`creates /etc/x exists`).
    pub task: Option<String>,
    /// For each command, in order: why it is skipped, if it is.
    pub commands: Vec<Option<String>>,
}

/// One guard to check.
#[derive(Debug, Clone)]
struct Item {
    /// None: the task's own; Some(i): command i's.
    owner: Option<usize>,
    creates: bool,
    /// Rendered path or command.
    text: String,
}

/// The checks a task needs on a target, rendered; None when it has no guards.
pub struct Plan {
    items: Vec<Item>,
    commands: usize,
    /// A guard may hold a secret value: the script goes on stdin.
    pub secret: bool,
}

const MARKER: &str = "nexus-guard";

impl Plan {
    pub fn of(task: &Task, vars: &Context) -> Result<Option<Plan>, String> {
        let mut items = Vec::new();
        let mut secret = false;
        let mut add = |owner: Option<usize>, g: &Guard| -> Result<(), String> {
            for (creates, t) in [(true, &g.creates), (false, &g.unless)] {
                let Some(t) = t else { continue };
                secret |= t.value.may_hold_secret();
                items.push(Item {
                    owner,
                    creates,
                    text: render(&t.value, vars, creates)?,
                });
            }
            Ok(())
        };
        add(None, &task.checks.guard)?;
        for (i, c) in task.commands.iter().enumerate() {
            add(Some(i), &c.guard)?;
        }
        Ok((!items.is_empty()).then_some(Plan {
            items,
            commands: task.commands.len(),
            secret,
        }))
    }

    /// The shell script that checks every guard and prints one line per guard.
    pub fn script(&self) -> String {
        let mut s = String::new();
        for (i, it) in self.items.iter().enumerate() {
            let test = if it.creates {
                let p = path_word(&it.text);
                format!("[ -e {p} ] || [ -L {p} ]")
            } else {
                format!("( {}\n) </dev/null >/dev/null 2>&1", it.text)
            };
            s +=
                &format!("if {test}; then echo '{MARKER} {i} 1'; else echo '{MARKER} {i} 0'; fi\n");
        }
        s
    }

    /// What the script printed, read back; an error when a line is missing.
    pub fn verdict(&self, stdout: &[u8]) -> Result<Verdict, String> {
        let text = String::from_utf8_lossy(stdout);
        let mut held = vec![None; self.items.len()];
        for line in text.lines() {
            let mut w = line.trim_end_matches('\r').split(' ');
            if w.next() != Some(MARKER) {
                continue;
            }
            let i: Option<usize> = w.next().and_then(|n| n.parse().ok());
            if let Some(slot) = i.and_then(|i| held.get_mut(i)) {
                *slot = Some(w.next() == Some("1"));
            }
        }
        let mut v = Verdict {
            task: None,
            commands: vec![None; self.commands],
        };
        for (it, h) in self.items.iter().zip(held) {
            let Some(h) = h else {
                return Err("the check of `creates` and `unless` stopped before the end".into());
            };
            if !h {
                continue;
            }
            let why = if it.creates {
                format!("creates {} exists", it.text)
            } else {
                format!("unless `{}` succeeded", it.text)
            };
            let slot = match it.owner {
                None => &mut v.task,
                Some(c) => &mut v.commands[c],
            };
            slot.get_or_insert(why);
        }
        Ok(v)
    }
}

fn render(t: &Template, vars: &Context, creates: bool) -> Result<String, String> {
    let what = if creates { "creates" } else { "unless" };
    t.render(vars)
        .map_err(|e| format!("cannot render `{what}` `{}`: {}", t.source(), e.message))
}

/// A path as one shell word; `~/` at its start stays the home directory.
fn path_word(p: &str) -> String {
    match p.strip_prefix("~/") {
        Some(rest) => format!("\"$HOME\"/{}", shell_quote(rest)),
        None => shell_quote(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_script_checks_every_guard_and_its_lines_are_read_back() {
        let src = "[tasks.a]\ncreates = \"/x y\"\nrun = [{ cmd = \"c1\", unless = \"test -f z\" }, \"c2\", { cmd = \"c3\", creates = \"~/q\" }]\n";
        let c = crate::config::parse(
            std::path::Path::new("nexus.toml"),
            std::path::Path::new("."),
            src,
        )
        .unwrap();
        let plan = Plan::of(&c.tasks[0], &Context::new()).unwrap().unwrap();
        let s = plan.script();
        assert!(s.contains("[ -e '/x y' ]"), "{s}");
        assert!(s.contains("( test -f z\n)"), "{s}");
        assert!(s.contains("\"$HOME\"/q"), "{s}");
        let v = plan
            .verdict(b"motd\nnexus-guard 0 0\nnexus-guard 1 1\nnexus-guard 2 0\n")
            .unwrap();
        assert_eq!(v.task, None);
        assert_eq!(
            v.commands,
            [Some("unless `test -f z` succeeded".to_string()), None, None]
        );
        assert!(plan.verdict(b"nexus-guard 0 1\n").is_err());
    }
}
