//! Text output (REQ-0143): normal prints one line per finished task (and per host for
//! remote tasks); verbose also streams every command and output line tagged with its
//! task/host; quiet prints one line per task. Failures get the REQ-0132 block on stderr;
//! the run ends with a summary of succeeded, failed and skipped tasks.

use std::collections::{HashMap, VecDeque};
use std::io::Write;

use nu_ansi_term::{Color, Style as Ansi};

use super::event::{Event, Failure, Kind, RunStatus, TaskStatus};
use super::{Options, Verbosity};
use crate::config::duration;
use crate::exec::Stream;
use crate::timefmt::secs;

/// Lines of output kept per command for the failure report.
const TAIL_LINES: usize = 10;

#[derive(Default)]
struct UnitLog {
    /// Commands that succeeded, in order.
    succeeded: Vec<String>,
    command: String,
    stderr: VecDeque<String>,
    stdout: VecDeque<String>,
    failure: Option<(String, Failure, Option<i32>)>,
}

pub struct Renderer<O: Write, E: Write> {
    out: O,
    err: E,
    opts: Options,
    units: HashMap<(String, String), UnitLog>,
}

fn push_tail(q: &mut VecDeque<String>, line: &str) {
    if q.len() == TAIL_LINES {
        q.pop_front();
    }
    q.push_back(line.to_string());
}

impl<O: Write, E: Write> Renderer<O, E> {
    pub fn new(out: O, err: E, opts: Options) -> Self {
        Renderer {
            out,
            err,
            opts,
            units: HashMap::new(),
        }
    }

    fn paint(&self, color: Color, bold: bool, text: &str) -> String {
        if self.opts.style.color {
            let mut s = Ansi::new().fg(color);
            if bold {
                s = s.bold();
            }
            s.paint(text).to_string()
        } else {
            text.to_string()
        }
    }

    fn dim(&self, text: &str) -> String {
        if self.opts.style.color {
            Ansi::new().dimmed().paint(text).to_string()
        } else {
            text.to_string()
        }
    }

    /// The status mark: ✓ ✗ ⊘ … on a terminal, words otherwise.
    fn mark(&self, status: TaskStatus) -> String {
        let word = plain_word(status);
        let (sym, color) = match status {
            TaskStatus::Success => ("✓", Color::Green),
            TaskStatus::Failed | TaskStatus::TimedOut => ("✗", Color::Red),
            TaskStatus::Skipped | TaskStatus::Cancelled => ("⊘", Color::Yellow),
        };
        let text = if self.opts.style.unicode { sym } else { word };
        self.paint(color, true, text)
    }

    fn ok_mark(&self) -> String {
        self.mark(TaskStatus::Success)
    }

    fn tree(&self, last: bool) -> &'static str {
        match (self.opts.style.unicode, last) {
            (true, false) => "├─",
            (true, true) => "└─",
            (false, false) => "|-",
            (false, true) => "`-",
        }
    }

    pub fn event(&mut self, ev: &Event) {
        let verbose = self.opts.verbosity == Verbosity::Verbose;
        match &ev.kind {
            Kind::RunStart { .. } => {}
            Kind::TaskStart { task, hosts } => {
                if verbose {
                    let bullet = if self.opts.style.unicode { "●" } else { "*" };
                    let on = if hosts.iter().all(|h| h == "local") {
                        String::new()
                    } else {
                        format!(" [{}]", hosts.join(", "))
                    };
                    let line = format!("{} {}{on}", self.paint(Color::Cyan, true, bullet), task);
                    let _ = writeln!(self.out, "{line}");
                }
            }
            Kind::CommandStart {
                task,
                host,
                command,
                attempt,
            } => {
                let u = self.units.entry((task.clone(), host.clone())).or_default();
                u.command = command.clone();
                u.stderr.clear();
                u.stdout.clear();
                if verbose {
                    let again = if *attempt > 1 {
                        format!(" (attempt {attempt})")
                    } else {
                        String::new()
                    };
                    let tag = self.tag(task, host);
                    let line = format!("{tag} $ {command}{again}");
                    let _ = writeln!(self.out, "{}", self.dim(&line));
                }
            }
            Kind::Output {
                task,
                host,
                stream,
                line,
            } => {
                let u = self.units.entry((task.clone(), host.clone())).or_default();
                match stream {
                    Stream::Stdout => push_tail(&mut u.stdout, line),
                    Stream::Stderr => push_tail(&mut u.stderr, line),
                }
                if verbose {
                    let tag = self.tag(task, host);
                    let _ = match stream {
                        Stream::Stdout => writeln!(self.out, "{tag} {line}"),
                        Stream::Stderr => writeln!(self.err, "{tag} {line}"),
                    };
                }
            }
            Kind::CommandFinish {
                task,
                host,
                command,
                attempt,
                exit_code,
                failure,
                retry_in,
                ignored,
                ..
            } => self.command_finish(
                task, host, command, *attempt, *exit_code, failure, *retry_in, *ignored,
            ),
            Kind::TaskFinish {
                task,
                status,
                duration,
                hosts,
            } => self.task_finish(task, *status, *duration, hosts),
            Kind::RunFinish {
                status,
                duration,
                tasks,
                ..
            } => self.run_finish(*status, *duration, tasks),
        }
        let _ = self.out.flush();
        let _ = self.err.flush();
    }

    fn tag(&self, task: &str, host: &str) -> String {
        let bar = if self.opts.style.unicode { "│" } else { "|" };
        let name = if host == "local" {
            task.to_string()
        } else {
            format!("{task}@{host}")
        };
        self.paint(Color::Blue, false, &format!("{name} {bar}"))
    }

    #[allow(clippy::too_many_arguments)]
    fn command_finish(
        &mut self,
        task: &str,
        host: &str,
        command: &str,
        attempt: u32,
        exit_code: Option<i32>,
        failure: &Option<Failure>,
        retry_in: Option<std::time::Duration>,
        ignored: bool,
    ) {
        let u = self
            .units
            .entry((task.to_string(), host.to_string()))
            .or_default();
        let Some(f) = failure else {
            u.succeeded.push(command.to_string());
            return;
        };
        let what = f.describe();
        if let Some(delay) = retry_in {
            if self.opts.verbosity != Verbosity::Quiet {
                let line = format!(
                    "{} `{command}` {what}; retrying in {} (attempt {} next)",
                    self.tag(task, host),
                    duration::display(delay),
                    attempt + 1
                );
                let _ = writeln!(self.err, "{line}");
            }
            return;
        }
        if ignored {
            u.succeeded.push(format!("{command} (failed, ignored)"));
            let line = format!(
                "warning: task `{task}` on {host}: `{command}` {what}; continuing (continue_on_error)"
            );
            let _ = writeln!(self.err, "{line}");
            return;
        }
        u.failure = Some((command.to_string(), f.clone(), exit_code));
    }

    fn task_finish(
        &mut self,
        task: &str,
        status: TaskStatus,
        duration: std::time::Duration,
        hosts: &[(String, TaskStatus, std::time::Duration)],
    ) {
        let local_only = hosts.iter().all(|(h, _, _)| h == "local");
        let line = match self.opts.verbosity {
            Verbosity::Quiet => format!("{} {task} ({})", self.mark(status), secs(duration)),
            _ => format!("{} {task} {}", self.mark(status), self.dim(&secs(duration))),
        };
        let _ = writeln!(self.out, "{line}");
        if !local_only && self.opts.verbosity != Verbosity::Quiet {
            for (i, (h, s, d)) in hosts.iter().enumerate() {
                let tree = self.tree(i + 1 == hosts.len());
                let shown = if *s == TaskStatus::Skipped {
                    "skipped".to_string()
                } else {
                    secs(*d)
                };
                let unreachable = self
                    .units
                    .get(&(task.to_string(), h.clone()))
                    .is_some_and(|u| matches!(u.failure, Some((_, Failure::Connect(_), _))));
                let mark = if unreachable {
                    let word = if self.opts.style.unicode {
                        "✗ unreachable"
                    } else {
                        "UNREACHABLE"
                    };
                    self.paint(Color::Red, true, word)
                } else {
                    self.mark(*s)
                };
                let _ = writeln!(self.out, "  {tree} {h} {mark} {}", self.dim(&shown));
            }
        }
        for (h, s, _) in hosts {
            if matches!(s, TaskStatus::Success | TaskStatus::Skipped) {
                self.units.remove(&(task.to_string(), h.clone()));
                continue;
            }
            if let Some(u) = self.units.remove(&(task.to_string(), h.clone())) {
                self.failure_block(task, h, &u);
            }
        }
    }

    /// The REQ-0132/0133 report of a failed command, on stderr.
    fn failure_block(&mut self, task: &str, host: &str, u: &UnitLog) {
        let Some((command, failure, exit_code)) = &u.failure else {
            return;
        };
        if matches!(failure, Failure::Cancelled) {
            return;
        }
        let title = match failure {
            Failure::Timeout { .. } => "Command timed out",
            Failure::Spawn(_) => "Command could not start",
            Failure::Connect(_) => "SSH connection failed",
            _ => "Command failed",
        };
        let mut b = String::new();
        b += &format!("{} {title}\n\n", self.paint(Color::Red, true, "Error:"));
        b += &format!("  Host: {host}\n  Task: {task}\n  Command: {command}\n");
        match failure {
            Failure::Exit(_) | Failure::Signal(_) => {
                if let Some(c) = exit_code {
                    b += &format!("  Exit code: {c}\n");
                }
                if let Failure::Signal(s) = failure {
                    b += &format!("  Signal: {s}\n");
                }
            }
            Failure::Timeout { limit, task_limit } => {
                let which = if *task_limit { "task" } else { "command" };
                b += &format!(
                    "  Timeout: {} ({which} timeout)\n",
                    duration::display(*limit)
                );
            }
            Failure::Spawn(m) | Failure::Connect(m) => b += &format!("  Reason: {m}\n"),
            Failure::Cancelled => {}
        }
        let tail = if u.stderr.is_empty() {
            &u.stdout
        } else {
            &u.stderr
        };
        if !tail.is_empty() {
            let which = if u.stderr.is_empty() {
                "stdout"
            } else {
                "stderr"
            };
            b += &format!("\n  Output (last lines of {which}):\n");
            for l in tail {
                b += &format!("    {l}\n");
            }
        }
        if !u.succeeded.is_empty() {
            b += "\n  Previous commands in this task succeeded:\n";
            for c in &u.succeeded {
                b += &format!("    {} {c}\n", self.ok_mark());
            }
        }
        let hint = match failure {
            Failure::Timeout {
                task_limit: false, ..
            } => Some(format!(
                "raise the command's `timeout` in task `{task}` if it needs longer"
            )),
            Failure::Timeout {
                task_limit: true, ..
            } => Some(format!(
                "raise `timeout` of task `{task}` (the whole task on one host)"
            )),
            Failure::Spawn(_) => Some(format!("check `dir` and the command of task `{task}`")),
            _ => None,
        };
        if let Some(h) = hint {
            b += &format!("\n  Suggestion: {h}\n");
        }
        let _ = writeln!(self.err, "{b}");
    }

    fn run_finish(
        &mut self,
        status: RunStatus,
        duration: std::time::Duration,
        tasks: &[(String, TaskStatus, Option<std::time::Duration>)],
    ) {
        let count = |s: TaskStatus| tasks.iter().filter(|(_, t, _)| *t == s).count();
        let (ok, failed, timed, skipped, cancelled) = (
            count(TaskStatus::Success),
            count(TaskStatus::Failed),
            count(TaskStatus::TimedOut),
            count(TaskStatus::Skipped),
            count(TaskStatus::Cancelled),
        );
        if self.opts.verbosity == Verbosity::Quiet {
            for (name, s, _) in tasks {
                if *s == TaskStatus::Skipped {
                    let _ = writeln!(self.out, "{} {name}", self.mark(*s));
                }
            }
            return;
        }
        let mut counts = vec![format!("{ok} succeeded")];
        for (n, word) in [
            (failed, "failed"),
            (timed, "timed out"),
            (cancelled, "cancelled"),
            (skipped, "skipped"),
        ] {
            if n > 0 {
                counts.push(format!("{n} {word}"));
            }
        }
        if status != RunStatus::Success || tasks.len() > 1 {
            let width = tasks
                .iter()
                .map(|(n, _, _)| n.chars().count())
                .max()
                .unwrap_or(0);
            let _ = writeln!(self.out, "\nSummary:");
            for (name, s, d) in tasks {
                let shown = match (s, d) {
                    (TaskStatus::Skipped, _) | (_, None) => s.name().replace('_', " "),
                    (_, Some(d)) => secs(*d),
                };
                let mark = self.mark(*s);
                let pad = if self.opts.style.unicode {
                    String::new()
                } else {
                    " ".repeat(9usize.saturating_sub(plain_word(*s).len()))
                };
                let _ = writeln!(
                    self.out,
                    "  {mark}{pad} {name:<width$}  {}",
                    self.dim(&shown)
                );
            }
        }
        let (mark, word) = match status {
            RunStatus::Success => (self.ok_mark(), "Completed"),
            RunStatus::Failed => (self.mark(TaskStatus::Failed), "Failed"),
            RunStatus::Interrupted => (self.mark(TaskStatus::Cancelled), "Interrupted"),
        };
        let mark = if self.opts.style.unicode {
            format!("{mark} ")
        } else {
            String::new()
        };
        let _ = writeln!(
            self.out,
            "{mark}{word} in {}: {}",
            secs(duration),
            counts.join(", ")
        );
    }
}

/// The status mark without a terminal.
fn plain_word(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Success => "ok",
        TaskStatus::Failed => "FAILED",
        TaskStatus::TimedOut => "TIMEOUT",
        TaskStatus::Skipped => "skipped",
        TaskStatus::Cancelled => "cancelled",
    }
}
