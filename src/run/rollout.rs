//! Rollouts (docs/nexus-toml.md, "Rollouts"): how a task's hosts are cut into batches
//! (`canary`, then `batch` sizes in turn), the state the scheduler keeps of a rollout
//! (which batch runs, which hosts failed, whether the failure budget is spent), and the
//! health check (`wait_for`) each host passes before its batch counts as done.
//! Must not: hand out units or lock the board (the scheduler does), or print.

use std::ops::Range;
use std::time::{Duration, Instant};

use super::capture::Capture;
use super::event::{CommandRef, Event, Failure, Name};
use super::scheduler::Ctx;
use crate::config::{Rollout, WaitFor};
use crate::exec::{Cause, Collected, ExecResult, Stream};

/// `CommandRef::part` of rollback steps.
pub const ROLLBACK: &str = "rollback";
/// `CommandRef::part` of the health check.
pub const WAIT_FOR: &str = "wait_for";

/// The batches of `total` hosts, as ranges of their positions: the canary first, then
/// the `batch` sizes in turn, the last repeating.
pub fn batches(total: usize, r: &Rollout) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    if let Some(c) = r.canary {
        let n = c.batch_of(total).min(total);
        if n > 0 {
            out.push(0..n);
        }
        start = n;
    }
    let mut sizes = r.batch.iter().copied();
    let mut size = crate::config::Amount::Count(1);
    while start < total {
        size = sizes.next().unwrap_or(size);
        let n = size.batch_of(total).min(total - start);
        out.push(start..start + n);
        start += n;
    }
    out
}

/// A task's rollout while it runs.
#[derive(Debug)]
pub struct Progress {
    pub plan: Rollout,
    /// Target positions of each batch.
    pub batches: Vec<Range<usize>>,
    /// The next batch to start.
    pub next: usize,
    /// Targets that failed (steps or health), in the order they failed.
    pub failed: Vec<usize>,
    /// Failed hosts tolerated.
    pub tolerated: usize,
    /// The rollout stopped; rollback units (if any) are out.
    pub stopped: bool,
    /// Start the next batch at this time (`canary_wait`).
    pub resume_at: Option<Instant>,
    /// Batches are shown (`rolling`); a `serial` or `parallel` task shows why it stopped
    /// only when it skipped hosts or rolls back.
    pub shown: bool,
}

/// What the scheduler does when a batch is over.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Start batch `next` now.
    Batch,
    /// Wait this long, then start the next batch.
    Wait(Duration),
    /// Too many failures: skip the rest, roll back the failed hosts.
    Stop,
    /// No batch is left.
    Done,
}

impl Progress {
    pub fn new(task: &crate::config::Task, plan: Rollout, total: usize) -> Progress {
        let tolerated = plan.max_fail.map_or(0, |m| m.tolerated_of(total));
        Progress {
            batches: batches(total, &plan),
            plan,
            next: 0,
            failed: Vec::new(),
            tolerated,
            stopped: false,
            resume_at: None,
            shown: task.strategy == crate::config::Strategy::Rolling,
        }
    }

    /// The batch that just ended was the canary.
    fn canary_ended(&self) -> bool {
        self.plan.canary.is_some() && self.next == 1
    }

    /// Every unit of the current batch is over: what comes next.
    pub fn batch_over(&mut self) -> Next {
        if self.stopped {
            return Next::Done;
        }
        if self.failed.len() > self.tolerated {
            self.stopped = true;
            return Next::Stop;
        }
        if self.next >= self.batches.len() {
            return Next::Done;
        }
        if self.canary_ended() && !self.plan.canary_wait.is_zero() {
            return Next::Wait(self.plan.canary_wait);
        }
        Next::Batch
    }
}

/// `wait_for` on one host: probe every `interval` until `successes` passes in a row, or
/// fail at `timeout` with the last probe's output. `probe` runs a line on the host with
/// a deadline. None: healthy.
pub fn wait_healthy(
    ctx: &Ctx<'_>,
    cmd: CommandRef,
    w: &WaitFor,
    task_deadline: Instant,
    probe: &mut dyn FnMut(&str, Instant) -> (ExecResult, Collected),
) -> Option<Failure> {
    let started = Instant::now();
    let deadline = (started + w.timeout).min(task_deadline);
    let mut passes = 0u32;
    let mut probes = 0u32;
    ctx.recorder.emit(Event::CommandStart(cmd.clone()));
    loop {
        // A probe that hangs longer than the interval (at least a second) failed.
        let limit = (Instant::now() + w.interval.max(Duration::from_secs(1))).min(task_deadline);
        let (result, out) = probe(&cmd.line, limit);
        probes += 1;
        if matches!(result, ExecResult::Cancelled) || crate::signals::cancelled() {
            return Some(finish(ctx, cmd, started, None, Failure::Cancelled, out));
        }
        if matches!(result, ExecResult::Exited(0)) {
            passes += 1;
            if passes >= w.successes {
                ctx.recorder.emit(Event::CommandFinish {
                    cmd,
                    exit_code: Some(0),
                    duration: started.elapsed(),
                    failure: None,
                    retry_in: None,
                    ignored: false,
                    output: Default::default(),
                });
                return None;
            }
        } else {
            passes = 0;
        }
        let now = Instant::now();
        if now >= deadline {
            let cause = unhealthy(w, probes, passes, &result, deadline >= task_deadline);
            let code = result.exit_code();
            return Some(finish(
                ctx,
                cmd,
                started,
                code,
                Failure::Unhealthy(cause),
                out,
            ));
        }
        let pause = w.interval.min(deadline - now);
        ctx.recorder.flush();
        if !crate::signals::sleep(pause) {
            return Some(finish(ctx, cmd, started, None, Failure::Cancelled, out));
        }
    }
}

/// The health check's `command_finish` with its failure and the last probe's output.
fn finish(
    ctx: &Ctx<'_>,
    cmd: CommandRef,
    started: Instant,
    exit_code: Option<i32>,
    failure: Failure,
    out: Collected,
) -> Failure {
    let mut capture = Capture::default();
    capture.push(Stream::Stdout, &out.stdout);
    capture.push(Stream::Stderr, &out.stderr);
    // Secret values in it are masked by the recorder, as in every command's output.
    let output = capture.finish();
    ctx.recorder.emit(Event::CommandFinish {
        cmd,
        exit_code,
        duration: started.elapsed(),
        failure: Some(failure.clone()),
        retry_in: None,
        ignored: false,
        output,
    });
    failure
}

/// Why the host is unhealthy, for its report.
fn unhealthy(w: &WaitFor, probes: u32, passes: u32, last: &ExecResult, task_limit: bool) -> Cause {
    let needed = if w.successes == 1 {
        "did not pass".to_string()
    } else {
        format!("did not pass {} times in a row", w.successes)
    };
    let limit = if task_limit {
        "before the task's timeout".to_string()
    } else {
        format!("within {}", crate::config::duration::display(w.timeout))
    };
    let how = match last {
        ExecResult::Exited(0) => format!("the last passed, {passes} in a row"),
        ExecResult::Exited(c) => format!("the last exited with {c}"),
        ExecResult::Signaled(s) => format!("the last was killed by signal {s}"),
        ExecResult::TimedOut => "the last did not finish in time".to_string(),
        ExecResult::SpawnError(c)
        | ExecResult::ConnectError(c)
        | ExecResult::ConnectTimedOut(c) => {
            format!("the last could not run: {}", c.what)
        }
        ExecResult::Cancelled => "the last was cancelled".to_string(),
    };
    let probes = if probes == 1 {
        "1 probe".to_string()
    } else {
        format!("{probes} probes")
    };
    Cause {
        what: format!(
            "the health check {needed} {limit} ({probes}, every {}; {how})",
            crate::config::duration::display(w.interval)
        ),
        help: vec![
            format!("run it on the host to see why: {}", w.text),
            "raise `wait_for.timeout` if the service needs longer to become healthy".to_string(),
        ],
    }
}

/// The hosts of `positions` by label.
pub fn labels(all: &[Name], positions: impl IntoIterator<Item = usize>) -> Vec<Name> {
    positions.into_iter().map(|i| all[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Amount::{Count, Percent};

    fn sizes(total: usize, r: &Rollout) -> Vec<usize> {
        batches(total, r).iter().map(|b| b.len()).collect()
    }

    #[test]
    fn batches_follow_the_sizes_and_the_last_repeats() {
        let mut r = Rollout {
            batch: vec![Percent(25)],
            ..Rollout::default()
        };
        assert_eq!(sizes(8, &r), vec![2, 2, 2, 2]);
        assert_eq!(sizes(10, &r), vec![3, 3, 3, 1]);
        r.batch = vec![Count(1), Percent(50), Percent(100)];
        assert_eq!(sizes(8, &r), vec![1, 4, 3]);
        r.batch = vec![Count(3)];
        r.canary = Some(Count(1));
        assert_eq!(sizes(8, &r), vec![1, 3, 3, 1]);
        assert_eq!(sizes(1, &r), vec![1]);
        assert!(sizes(0, &r).is_empty());
    }

    #[test]
    fn the_rollout_stops_once_failures_exceed_max_fail() {
        let r = Rollout {
            batch: vec![Count(1)],
            max_fail: Some(Count(1)),
            ..Rollout::default()
        };
        let task = crate::config::parse(
            std::path::Path::new("nexus.toml"),
            std::path::Path::new("."),
            "[tasks.a]\nrun = \"true\"\n",
        )
        .unwrap()
        .tasks
        .remove(0);
        let mut p = Progress::new(&task, r, 4);
        p.next = 1;
        p.failed.push(0);
        assert_eq!(p.batch_over(), Next::Batch);
        p.next = 2;
        p.failed.push(1);
        assert_eq!(p.batch_over(), Next::Stop);
        assert_eq!(p.batch_over(), Next::Done);
    }
}
