//! Text output (docs/output.md): what commands print goes where `stream` routes it; nexus's
//! own lines all go to stderr, so `$(nexus run version)` captures only the command's
//! output: one line per finished task (and per host for remote tasks), retries, warnings,
//! `-v`'s echo of each command, failure reports, "still running" notices on a terminal,
//! and the summary.

mod rollout;

use std::collections::HashMap;
use std::io::Write;

use nu_ansi_term::{Color, Style as Ansi};

use super::report::{self, Failed};
use super::stream::{Streams, Writers};
use super::{describe, Mode, Options};
use crate::config::duration;
use crate::exec::Stream;
use crate::run::capture::Captured;
use crate::run::event::{
    Event, Failure, HostResult, Name, RunStatus, Stamped, TaskResult, TaskStatus,
};
use crate::run::recorder::Render;
use crate::timefmt::secs;

#[derive(Default)]
struct UnitLog {
    /// Commands that succeeded, in order.
    succeeded: Vec<String>,
    failure: Option<Failed>,
}

/// Up to this many hosts, a task's result has a line per host; more get counts.
const HOST_LINES: usize = 20;
/// Hosts named per outcome in the counts.
const NAMES_SHOWN: usize = 50;

pub struct Renderer<O: Write, E: Write> {
    out: O,
    err: E,
    opts: Options,
    units: HashMap<(Name, Name), UnitLog>,
    streams: Streams,
    run_id: String,
}

impl<O: Write, E: Write> Renderer<O, E> {
    pub fn new(out: O, err: E, opts: Options, run_id: String) -> Self {
        Renderer {
            out,
            err,
            opts,
            units: HashMap::new(),
            streams: Streams::new(opts),
            run_id,
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
            TaskStatus::UpToDate => ("≡", Color::Green),
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

    fn task_start(&mut self, task: &Name, hosts: &[Name]) {
        self.streams.task_start(task, hosts.len(), &mut self.out);
        if self.opts.verbose {
            let bullet = if self.opts.style.unicode { "●" } else { "*" };
            let on = if hosts.iter().all(|h| &**h == "local") {
                String::new()
            } else {
                let hosts: Vec<&str> = hosts.iter().map(|h| &**h).collect();
                format!(" [{}]", hosts.join(", "))
            };
            let line = format!("{} {}{on}", self.paint(Color::Cyan, true, bullet), task);
            let _ = writeln!(self.err, "{line}");
        }
    }

    fn command_start(&mut self, c: &crate::run::event::CommandRef) {
        let key = (c.task.clone(), c.host.clone());
        self.streams.start(&key);
        if self.opts.verbose {
            let again = if c.attempt > 1 {
                format!(" (attempt {})", c.attempt)
            } else {
                String::new()
            };
            let line = format!("{}$ {}{again}", self.streams.prefix(&key), c.line);
            let _ = writeln!(self.err, "{}", self.dim(&line));
        }
    }

    fn show_output(&mut self, task: &Name, host: &Name, stream: Stream, data: &[u8]) {
        let key = (task.clone(), host.clone());
        let mut w = Writers {
            out: &mut self.out,
            err: &mut self.err,
        };
        self.streams.output(&key, stream, data, &mut w);
    }

    fn unit_finish(&mut self, task: &Name, host: &Name) {
        let key = (task.clone(), host.clone());
        let mut w = Writers {
            out: &mut self.out,
            err: &mut self.err,
        };
        self.streams.finish(&key, &mut w);
    }

    /// `… task@host: still running after 2m (no output for 30s)` on a terminal.
    fn still_running(&mut self, now: std::time::Instant) {
        if !self.opts.progress {
            return;
        }
        for (key, running, silent) in self.streams.silent(now) {
            let name = if &*key.1 == "local" {
                key.0.to_string()
            } else {
                format!("{}@{}", key.0, key.1)
            };
            let dots = if self.opts.style.unicode {
                "…"
            } else {
                "..."
            };
            let line = format!(
                "{dots} {name}: still running after {} (no output for {})",
                duration::display(round_secs(running)),
                duration::display(round_secs(silent))
            );
            let _ = writeln!(self.err, "{}", self.dim(&line));
        }
        let _ = self.err.flush();
    }

    fn command_finish(
        &mut self,
        cmd: &crate::run::event::CommandRef,
        exit_code: Option<i32>,
        failure: &Option<Failure>,
        retry_in: Option<std::time::Duration>,
        ignored: bool,
        output: &Captured,
    ) {
        let (task, host, command) = (&*cmd.task, &*cmd.host, &*cmd.line);
        if cmd.part.as_deref() == Some(crate::run::rollout::ROLLBACK) {
            // The host failed already: its report is the failure that stopped the rollout.
            if let (Some(f), None) = (failure, retry_in) {
                let warning = crate::error::Diagnostic::new(format!(
                    "task `{task}` on {host}: rollback `{command}` {}",
                    describe::failure(f)
                ));
                let text = crate::error::warning_text(&warning, self.opts.style.color);
                let _ = self.err.write_all(text.as_bytes());
            }
            return;
        }
        let Some(f) = failure else {
            self.unit(&cmd.task, &cmd.host)
                .succeeded
                .push(command.to_string());
            return;
        };
        let what = describe::failure(f);
        if let Some(delay) = retry_in {
            if self.opts.mode != Mode::Quiet {
                let key = (cmd.task.clone(), cmd.host.clone());
                let line = format!(
                    "{}`{command}` {what}; retrying in {} (attempt {} next)",
                    self.streams.prefix(&key),
                    duration::display(delay),
                    cmd.attempt + 1
                );
                let _ = writeln!(self.err, "{line}");
            }
            return;
        }
        if ignored {
            self.unit(&cmd.task, &cmd.host)
                .succeeded
                .push(format!("{command} (failed, ignored)"));
            let warning = crate::error::Diagnostic::new(format!(
                "task `{task}` on {host}: `{command}` {what}; continuing (continue_on_error)"
            ));
            let text = crate::error::warning_text(&warning, self.opts.style.color);
            let _ = self.err.write_all(text.as_bytes());
            return;
        }
        self.unit(&cmd.task, &cmd.host).failure = Some(Failed {
            command: command.to_string(),
            failure: f.clone(),
            exit_code,
            output: output.clone(),
        });
    }

    fn unit(&mut self, task: &Name, host: &Name) -> &mut UnitLog {
        self.units.entry((task.clone(), host.clone())).or_default()
    }

    fn task_finish(
        &mut self,
        task: &Name,
        status: TaskStatus,
        duration: std::time::Duration,
        hosts: &[HostResult],
    ) {
        self.streams.task_finish(task);
        let local_only = hosts.iter().all(|h| &*h.host == "local");
        let line = match self.opts.mode {
            _ if status == TaskStatus::UpToDate => self.up_to_date_line(task),
            Mode::Quiet => format!("{} {task} ({})", self.mark(status), secs(duration)),
            _ => format!("{} {task} {}", self.mark(status), self.dim(&secs(duration))),
        };
        let _ = writeln!(self.err, "{line}");
        if !local_only && self.opts.mode != Mode::Quiet {
            if hosts.len() <= HOST_LINES || self.opts.verbose {
                for (i, h) in hosts.iter().enumerate() {
                    self.host_line(h, i + 1 == hosts.len());
                }
            } else {
                self.host_counts(hosts);
            }
        }
        for h in hosts {
            let u = self.units.remove(&(task.clone(), h.host.clone()));
            if matches!(
                h.status,
                TaskStatus::Success | TaskStatus::Skipped | TaskStatus::UpToDate
            ) {
                continue;
            }
            match u {
                Some(u) if u.failure.is_some() => self.failure_block(task, &h.host, &u),
                _ => {
                    let e = h
                        .failure
                        .as_ref()
                        .and_then(|f| report::unit_failure(task, &h.host, f));
                    if let Some(e) = e {
                        let _ = writeln!(self.err, "{}", e.render(self.opts.style.color));
                    }
                }
            }
        }
    }

    /// Many hosts: a count per outcome, and the hosts that did not succeed by name.
    fn host_counts(&mut self, hosts: &[HostResult]) {
        let unreachable = |h: &&HostResult| matches!(h.failure, Some(Failure::Connect(_)));
        let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
        for h in hosts {
            let word = match h.status {
                _ if unreachable(&h) => "unreachable".to_string(),
                TaskStatus::Success => "ok".to_string(),
                other => other.name().replace('_', " "),
            };
            match groups.iter_mut().find(|(w, _)| *w == word) {
                Some((_, names)) => names.push(&h.host),
                None => groups.push((word, vec![&h.host])),
            }
        }
        let counts: Vec<String> = groups
            .iter()
            .map(|(w, n)| format!("{} {w}", n.len()))
            .collect();
        let _ = writeln!(self.err, "  {} hosts: {}", hosts.len(), counts.join(", "));
        for (word, names) in groups
            .iter()
            .filter(|(w, _)| !matches!(w.as_str(), "ok" | "skipped" | "up to date"))
        {
            let shown: Vec<&str> = names.iter().take(NAMES_SHOWN).copied().collect();
            let more = names.len().saturating_sub(NAMES_SHOWN);
            let tail = if more > 0 {
                format!(" and {more} more (-v lists every host)")
            } else {
                String::new()
            };
            let _ = writeln!(self.err, "  {word}: {}{tail}", shown.join(", "));
        }
    }

    /// `up to date build` (`≡ build up to date` on a terminal).
    fn up_to_date_line(&self, task: &str) -> String {
        let mark = self.mark(TaskStatus::UpToDate);
        if self.opts.style.unicode {
            format!("{mark} {task} {}", self.dim("up to date"))
        } else {
            format!("{mark} {task}")
        }
    }

    /// `-v`: why a unit runs (`build: running (src/main.rs changed)`) or is up to date.
    fn checked(&mut self, task: &Name, host: &Name, up_to_date: bool, reasons: &[String]) {
        if !self.opts.verbose {
            return;
        }
        let name = unit_name(task, host);
        let what = if up_to_date { "up to date" } else { "running" };
        let line = format!("{name}: {what} ({})", reasons.join(", "));
        let _ = writeln!(self.err, "{}", self.dim(&line));
    }

    /// A command whose `creates` / `unless` holds: `deploy@web-1: skipped `…` (creates /x exists)`.
    /// On a terminal: `… web-1: upload big.iso -> /srv/: 120.0 MB of 256.0 MB sent (46%)`.
    fn file_progress(&mut self, cmd: &crate::run::event::CommandRef, sent: u64, total: u64) {
        if !self.opts.progress || self.opts.mode == Mode::Quiet {
            return;
        }
        let dots = if self.opts.style.unicode {
            "…"
        } else {
            "..."
        };
        let line = format!(
            "{dots} {}: {}: {} of {} sent ({}%)",
            unit_name(&cmd.task, &cmd.host),
            cmd.line,
            crate::preflight::bytes(sent),
            crate::preflight::bytes(total),
            sent * 100 / total.max(1)
        );
        let _ = writeln!(self.err, "{}", self.dim(&line));
    }

    /// `web-1: upload dist/ -> /opt/app/: changed (3 of 40 files, 12.0 KiB sent)`.
    fn file_step(&mut self, cmd: &crate::run::event::CommandRef, r: &crate::transfer::Report) {
        if self.opts.mode == Mode::Quiet {
            return;
        }
        let name = unit_name(&cmd.task, &cmd.host);
        let what = if r.changed {
            format!(
                "changed ({} of {} file{}, {} moved)",
                r.files,
                r.total,
                if r.total == 1 { "" } else { "s" },
                crate::preflight::bytes(r.bytes)
            )
        } else {
            format!(
                "unchanged ({} file{})",
                r.total,
                if r.total == 1 { "" } else { "s" }
            )
        };
        let _ = writeln!(self.err, "{name}: {}: {what}", cmd.line);
        for d in &r.diffs {
            let _ = write!(self.err, "{d}");
            if !d.ends_with('\n') {
                let _ = writeln!(self.err);
            }
        }
    }

    fn artifacts_collected(
        &mut self,
        task: &str,
        host: &str,
        files: &[crate::run::artifacts::Staged],
    ) {
        if self.opts.mode == Mode::Quiet {
            return;
        }
        let name = unit_name(task, host);
        let bytes: u64 = files.iter().map(|f| f.size).sum();
        let _ = writeln!(
            self.err,
            "{name}: artifacts staged ({} file{}, {})",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            crate::preflight::bytes(bytes)
        );
    }

    fn artifacts_placed(
        &mut self,
        task: &str,
        host: &str,
        from: &str,
        r: &crate::transfer::Report,
    ) {
        if self.opts.mode == Mode::Quiet {
            return;
        }
        let name = unit_name(task, host);
        let plural = if r.total == 1 { "" } else { "s" };
        let what = if r.changed {
            format!(
                "changed ({} of {} file{plural}, {} moved)",
                r.files,
                r.total,
                crate::preflight::bytes(r.bytes)
            )
        } else {
            format!("unchanged ({} file{plural})", r.total)
        };
        let _ = writeln!(self.err, "{name}: artifacts of {from}: {what}");
    }

    fn command_skipped(&mut self, cmd: &crate::run::event::CommandRef, reason: &str) {
        if self.opts.mode == Mode::Quiet {
            return;
        }
        let name = unit_name(&cmd.task, &cmd.host);
        let line = format!("{name}: skipped `{}` ({reason})", cmd.line);
        let _ = writeln!(self.err, "{}", self.dim(&line));
    }

    fn host_line(&mut self, h: &HostResult, last: bool) {
        let tree = self.tree(last);
        let shown = match h.status {
            TaskStatus::Skipped => "skipped".to_string(),
            TaskStatus::UpToDate if self.opts.style.unicode => "up to date".to_string(),
            _ => secs(h.duration),
        };
        let mark = if matches!(h.failure, Some(Failure::Connect(_))) {
            let word = if self.opts.style.unicode {
                "✗ unreachable"
            } else {
                "UNREACHABLE"
            };
            self.paint(Color::Red, true, word)
        } else {
            self.mark(h.status)
        };
        let _ = writeln!(self.err, "  {tree} {} {mark} {}", h.host, self.dim(&shown));
    }

    /// The report of a failed command, on stderr.
    fn failure_block(&mut self, task: &str, host: &str, u: &UnitLog) {
        let Some(f) = &u.failure else {
            return;
        };
        let ok = self.ok_mark();
        if let Some(e) = report::failure(task, host, f, &u.succeeded, &self.run_id, &ok) {
            let _ = writeln!(self.err, "{}", e.render(self.opts.style.color));
        }
    }

    fn run_finish(
        &mut self,
        status: RunStatus,
        duration: std::time::Duration,
        tasks: &[TaskResult],
    ) {
        let count = |s: TaskStatus| tasks.iter().filter(|t| t.status == s).count();
        let (ok, failed, timed, skipped, cancelled, fresh) = (
            count(TaskStatus::Success),
            count(TaskStatus::Failed),
            count(TaskStatus::TimedOut),
            count(TaskStatus::Skipped),
            count(TaskStatus::Cancelled),
            count(TaskStatus::UpToDate),
        );
        if self.opts.mode == Mode::Quiet {
            for t in tasks {
                if t.status == TaskStatus::Skipped {
                    let _ = writeln!(self.err, "{} {}", self.mark(t.status), t.task);
                }
            }
            return;
        }
        let mut counts = vec![format!("{ok} succeeded")];
        for (n, word) in [
            (fresh, "up to date"),
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
                .map(|t| t.task.chars().count())
                .max()
                .unwrap_or(0);
            let word_width = tasks
                .iter()
                .map(|t| plain_word(t.status).len())
                .fold(9, usize::max);
            let _ = writeln!(self.err, "\nSummary:");
            for t in tasks {
                let (name, s, d) = (&t.task, &t.status, &t.duration);
                let shown = match (s, d) {
                    (TaskStatus::Skipped | TaskStatus::UpToDate, _) | (_, None) => {
                        s.name().replace('_', " ")
                    }
                    (_, Some(d)) => secs(*d),
                };
                let mark = self.mark(*s);
                let pad = if self.opts.style.unicode {
                    String::new()
                } else {
                    " ".repeat(word_width.saturating_sub(plain_word(*s).len()))
                };
                let _ = writeln!(
                    self.err,
                    "  {mark}{pad} {:<width$}  {}",
                    &**name,
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
            self.err,
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
        TaskStatus::UpToDate => "up to date",
    }
}

impl<O: Write + Send, E: Write + Send> Render for Renderer<O, E> {
    fn output(
        &mut self,
        _at: std::time::SystemTime,
        task: &Name,
        host: &Name,
        stream: Stream,
        data: &[u8],
    ) {
        self.show_output(task, host, stream, data);
        let _ = self.out.flush();
        let _ = self.err.flush();
    }

    fn event(&mut self, ev: &Stamped) {
        match &ev.event {
            Event::TaskStart { task, hosts } => self.task_start(task, hosts),
            Event::CommandStart(c) => self.command_start(c),
            Event::CommandFinish {
                cmd,
                exit_code,
                failure,
                retry_in,
                ignored,
                output,
                ..
            } => self.command_finish(cmd, *exit_code, failure, *retry_in, *ignored, output),
            Event::TaskFinish {
                task,
                status,
                duration,
                hosts,
            } => self.task_finish(task, *status, *duration, hosts),
            Event::RunFinish {
                status,
                duration,
                tasks,
                ..
            } => self.run_finish(*status, *duration, tasks),
            Event::UnitFinish { task, host, .. } => self.unit_finish(task, host),
            Event::Checked {
                task,
                host,
                up_to_date,
                reasons,
            } => self.checked(task, host, *up_to_date, reasons),
            Event::CommandSkipped { cmd, reason } => self.command_skipped(cmd, reason),
            Event::FileStep { cmd, report } => self.file_step(cmd, report),
            Event::ArtifactsCollected { task, host, files } => {
                self.artifacts_collected(task, host, files);
            }
            Event::ArtifactsPlaced {
                task,
                host,
                from,
                report,
            } => self.artifacts_placed(task, host, from, report),
            Event::FileProgress { cmd, sent, total } => self.file_progress(cmd, *sent, *total),
            Event::Batch { .. }
            | Event::BatchWait { .. }
            | Event::RolloutStopped { .. }
            | Event::Handler { .. } => self.rollout(&ev.event),
            Event::RunStart { .. } | Event::CommandSpawned { .. } => {}
        }
        let _ = self.out.flush();
        let _ = self.err.flush();
    }

    fn tick(&mut self, now: std::time::Instant) {
        self.still_running(now);
    }
}

/// `task` for local units, `task@host` for remote ones.
fn unit_name(task: &str, host: &str) -> String {
    if host == "local" {
        task.to_string()
    } else {
        format!("{task}@{host}")
    }
}

/// Whole seconds, for notices.
fn round_secs(d: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_secs(d.as_secs())
}
