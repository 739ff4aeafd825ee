//! Text lines of rollouts and handlers (docs/output.md): batch boundaries, the wait after
//! a canary, why a rollout stopped, handlers running or left pending. All on stderr.

use std::io::Write;

use super::{unit_name, Renderer};
use crate::config::duration;
use crate::run::event::{Event, HandlerState, Name};

impl<O: Write, E: Write> Renderer<O, E> {
    /// The line of a rollout or handler event, if it has one. `-q` shows only why a
    /// rollout stopped and handlers left pending, not the progress.
    pub(super) fn rollout(&mut self, ev: &Event) {
        let progress = matches!(
            ev,
            Event::Batch { .. }
                | Event::BatchWait { .. }
                | Event::Handler {
                    state: HandlerState::Running,
                    ..
                }
        );
        if progress && self.opts.mode == crate::output::Mode::Quiet {
            return;
        }
        let line = match ev {
            Event::Batch {
                task,
                index,
                of,
                hosts,
                canary,
            } => {
                let what = if *canary { "canary batch" } else { "batch" };
                format!("{task}: {what} {index}/{of}: {}", join(hosts))
            }
            Event::BatchWait { task, wait } => format!(
                "{task}: waiting {} (canary_wait) before the next batch",
                duration::display(*wait)
            ),
            Event::RolloutStopped {
                task,
                failed,
                max_fail,
                skipped,
                rollback,
            } => stopped(task, failed, *max_fail, *skipped, *rollback),
            Event::Handler {
                task,
                host,
                handler,
                state,
                from_run,
            } => match handler_line(&unit_name(task, host), handler, *state, from_run) {
                Some(line) => line,
                None => return,
            },
            _ => return,
        };
        let mark = if self.opts.style.unicode { "»" } else { "--" };
        let _ = writeln!(self.err, "{}", self.dim(&format!("{mark} {line}")));
    }
}

fn join(hosts: &[Name]) -> String {
    let names: Vec<&str> = hosts.iter().map(|h| &**h).collect();
    names.join(", ")
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn stopped(task: &str, failed: &[Name], max_fail: usize, skipped: usize, rollback: bool) -> String {
    let mut line = format!(
        "{task}: rollout stopped: {} failed ({}), max_fail is {max_fail}",
        plural(failed.len(), "host"),
        join(failed)
    );
    if skipped > 0 {
        line += &format!("; {} not started (skipped)", plural(skipped, "host"));
    }
    if rollback {
        line += &format!("; rolling back on {}", join(failed));
    }
    line
}

fn handler_line(
    unit: &str,
    handler: &str,
    state: HandlerState,
    from_run: &Option<String>,
) -> Option<String> {
    Some(match (state, from_run) {
        (HandlerState::Running, Some(run)) => {
            format!("{unit}: running pending handler `{handler}` from run {run}")
        }
        (HandlerState::Running, None) => format!("{unit}: running handler `{handler}`"),
        (HandlerState::Pending, _) => format!(
            "{unit}: handler `{handler}` not run (the task failed here); it stays pending for the next run"
        ),
        (HandlerState::Failed, _) => {
            format!("{unit}: handler `{handler}` failed; it stays pending for the next run")
        }
        (HandlerState::Notified | HandlerState::Success, _) => return None,
    })
}
