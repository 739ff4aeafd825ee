//! The report of a failed command, as a diagnostic: where (host, task,
//! command), how it ended, the last lines of its output (stdout and stderr in the order
//! they came), what ran before it, and what to try.
//! Must not: print (the renderer does).

use crate::config::duration;
use crate::error::{Diagnostic, Error};
use crate::run::capture::Captured;
use crate::run::event::Failure;

/// Lines of output shown in the report.
pub const REPORT_LINES: usize = 20;

/// A failed command of a unit.
pub struct Failed {
    pub command: String,
    pub failure: Failure,
    pub exit_code: Option<i32>,
    pub output: Captured,
}

/// The report of `f` on `host` in `task`; None for a cancelled command (Ctrl-C says it).
pub fn failure(
    task: &str,
    host: &str,
    f: &Failed,
    succeeded: &[String],
    run_id: &str,
    ok: &str,
) -> Option<Error> {
    let title = match f.failure {
        Failure::Cancelled => return None,
        Failure::Timeout { .. } => "Command timed out",
        Failure::Spawn(_) => "Command could not start",
        Failure::Connect(_) => "SSH connection failed",
        _ => "Command failed",
    };
    let mut d = Diagnostic::new("")
        .fact("Host", host)
        .fact("Task", task)
        .fact("Command", &f.command);
    d = how_it_ended(d, f);
    let (lines, shown_all) = last_lines(&f.output);
    if !lines.is_empty() {
        let title = if shown_all {
            "Output".to_string()
        } else {
            format!("Output (last {REPORT_LINES} lines)")
        };
        d = d.section(title, lines);
    }
    if !succeeded.is_empty() {
        let done = succeeded.iter().map(|c| format!("{ok} {c}")).collect();
        d = d.section("Previous commands in this task succeeded", done);
    }
    if !shown_all {
        d = d.help(format!("more of its output: nexus runs show {run_id}"));
    }
    d.help.extend(hints(task, &f.failure));
    Some(Error {
        title: title.to_string(),
        diagnostics: vec![d],
        exit_code: 0,
    })
}

fn how_it_ended(d: Diagnostic, f: &Failed) -> Diagnostic {
    match &f.failure {
        Failure::Exit(_) => match f.exit_code {
            Some(c) => d.fact("Exit code", c.to_string()),
            None => d,
        },
        Failure::Signal(s) => d.fact("Signal", s.to_string()),
        Failure::Timeout {
            limit,
            task_limit,
            connecting,
        } => {
            let which = if *task_limit { "task" } else { "command" };
            let mut d = d.fact(
                "Timeout",
                format!("{} ({which} timeout)", duration::display(*limit)),
            );
            if let Some(c) = connecting {
                d = d.fact("Reason", &c.what);
                d.help.extend(c.help.iter().cloned());
            }
            d
        }
        Failure::Spawn(c) | Failure::Connect(c) => {
            let mut d = d.fact("Reason", &c.what);
            d.help.extend(c.help.iter().cloned());
            d
        }
        Failure::Cancelled => d,
    }
}

/// The last lines of the output in order, and whether that is all of it.
fn last_lines(c: &Captured) -> (Vec<String>, bool) {
    let lines = c
        .last_lines(REPORT_LINES)
        .into_iter()
        .map(|l| l.1.clone())
        .collect();
    (lines, !c.has_more_than(REPORT_LINES))
}

fn hints(task: &str, f: &Failure) -> Vec<String> {
    match f {
        Failure::Timeout {
            task_limit: false, ..
        } => vec![format!(
            "raise the command's `timeout` in task `{task}` if it needs longer"
        )],
        Failure::Timeout {
            task_limit: true, ..
        } => vec![format!(
            "raise `timeout` of task `{task}` (the whole task on one host)"
        )],
        Failure::Spawn(_) => vec![format!("check `dir` and the command of task `{task}`")],
        _ => vec![],
    }
}
