//! The report of a failed command, as a diagnostic: where (host, task,
//! command), how it ended, the last lines of its output (stdout and stderr in the order
//! they came; the last lines of stdout apart when stderr filled them), what ran before
//! it, and what to try.
//! Must not: print (the renderer does).

use crate::config::duration;
use crate::error::{Diagnostic, Error};
use crate::run::capture::Captured;
use crate::run::event::{Failure, LimitFrom};

/// Lines of output shown in the report.
pub const REPORT_LINES: usize = 20;
/// Lines of stdout shown apart when stderr filled the last `REPORT_LINES`.
pub const STDOUT_LINES: usize = 5;

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
        Failure::Spawn(_) if is_file_step(&f.command) => "File step failed",
        Failure::Spawn(_) => "Command could not start",
        Failure::Connect(_) => "SSH connection failed",
        Failure::Unhealthy(_) => "Health check failed",
        _ => "Command failed",
    };
    let mut d = Diagnostic::new("")
        .fact("Host", host)
        .fact("Task", task)
        .fact("Command", one_line(&f.command));
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
    let stdout = stdout_crowded_out(&f.output);
    if !stdout.is_empty() {
        d = d.section("Last lines on stdout", stdout);
    }
    if !succeeded.is_empty() {
        let done = succeeded.iter().map(|c| format!("{ok} {c}")).collect();
        d = d.section("Previous commands in this task succeeded", done);
    }
    if !shown_all {
        d = d.help(format!("more of its output: nexus runs show {run_id}"));
    }
    if !is_file_step(&f.command) {
        d.help.extend(hints(task, &f.failure));
    }
    Some(Error {
        title: title.to_string(),
        diagnostics: vec![d],
        exit_code: 0,
    })
}

/// The report of a failure outside every command of a unit (its artifacts could not be
/// staged or put in place); None for one without a cause of its own.
pub fn unit_failure(task: &str, host: &str, f: &Failure) -> Option<Error> {
    let (Failure::Spawn(c) | Failure::Connect(c)) = f else {
        return None;
    };
    let mut d = Diagnostic::new("")
        .fact("Host", host)
        .fact("Task", task)
        .fact("Reason", &c.what);
    d.help.extend(c.help.iter().cloned());
    Some(Error {
        title: "Task failed".to_string(),
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
            from,
            connecting,
        } => {
            let mut d = d.fact(
                "Timeout",
                format!(
                    "{} ({})",
                    duration::display(*limit),
                    limit_source(*task_limit, *from)
                ),
            );
            if let Some(c) = connecting {
                d = d.fact("Reason", &c.what);
                d.help.extend(c.help.iter().cloned());
            }
            d
        }
        Failure::Spawn(c) | Failure::Connect(c) | Failure::Unhealthy(c) => {
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

/// A command as one line: a multi-line one (a script) by its first line and how many
/// more it has.
fn one_line(command: &str) -> String {
    let mut lines = command.trim_end().lines();
    let first = lines.next().unwrap_or("");
    match lines.count() {
        0 => first.to_string(),
        1 => format!("{first} … (1 more line)"),
        n => format!("{first} … ({n} more lines)"),
    }
}

/// Which limit a timeout was: "command timeout", "[config] timeout", "--timeout", ...
pub fn limit_source(task_limit: bool, from: LimitFrom) -> &'static str {
    match (task_limit, from) {
        (false, LimitFrom::Own) => "command timeout",
        (false, LimitFrom::Flag) => "--timeout",
        (false, LimitFrom::Config) => "[config] timeout",
        (true, LimitFrom::Config) => "[config] task_timeout",
        (true, _) => "task timeout",
    }
}

/// The last lines of stdout when stderr alone filled the last `REPORT_LINES`: a test
/// runner says why on stdout, and its noise on stderr (or the order between two pipes
/// written at once was lost) must not hide it. Empty otherwise.
fn stdout_crowded_out(c: &Captured) -> Vec<String> {
    use crate::exec::Stream;
    let shown = c.last_lines(REPORT_LINES);
    if shown.iter().any(|l| l.0 == Stream::Stdout) {
        return Vec::new();
    }
    let mut out: Vec<String> = c
        .head
        .iter()
        .chain(c.tail.iter())
        .rev()
        .filter(|l| l.0 == Stream::Stdout)
        .take(STDOUT_LINES)
        .map(|l| l.1.clone())
        .collect();
    out.reverse();
    out
}

/// A file step's line: `upload a -> b`, `template a -> b`, `download a -> b`.
fn is_file_step(line: &str) -> bool {
    ["upload ", "template ", "download "]
        .iter()
        .any(|k| line.starts_with(k))
        && line.contains(" -> ")
}

fn hints(task: &str, f: &Failure) -> Vec<String> {
    let Failure::Timeout {
        task_limit, from, ..
    } = f
    else {
        return match f {
            Failure::Spawn(_) => vec![format!("check `dir` and the command of task `{task}`")],
            _ => vec![],
        };
    };
    let hint = match (task_limit, from) {
        (false, LimitFrom::Own) => {
            format!("raise the command's `timeout` in task `{task}` if it needs longer")
        }
        (false, LimitFrom::Flag) => format!(
            "run with a longer --timeout, or give the command its own `timeout` in task `{task}`"
        ),
        (false, LimitFrom::Config) => format!(
            "raise `timeout` in [config] (every command's default), give the command its own `timeout` in task `{task}`, or run with --timeout DURATION"
        ),
        (true, LimitFrom::Config) => format!(
            "raise `task_timeout` in [config], or give task `{task}` a `timeout` of its own (the whole task on one host)"
        ),
        (true, _) => format!("raise `timeout` of task `{task}` (the whole task on one host)"),
    };
    vec![hint]
}
