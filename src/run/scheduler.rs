//! The scheduler: a ready queue like `make -j`. A task starts as soon as all of its
//! dependencies succeeded, up to `parallel_limit` tasks at once; among ready tasks the
//! one with the longest chain of dependents goes first. A started task becomes units,
//! one per target (remote units also limited by `max_connections`; `serial` tasks hand
//! out one at a time). Fail-fast by default: after the first failure nothing new
//! starts, running units finish, the rest is `skipped`.
//!
//! There is no scheduler thread. Worker threads (the calling thread is the first) take
//! units from the queue, run them, and then do the bookkeeping themselves: the thread
//! that finishes a unit releases the dependents and takes the next unit at once, so a
//! chain of tasks runs on one thread without hand-offs, as make runs it. More threads
//! are started only when more units are ready than threads are free.
//! Must not: print, or run commands itself (units do).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::Scope;
use std::time::{Duration, Instant};

use super::event::{Event, Failure, HostResult, Name, RunStatus, TaskResult, TaskStatus};
use super::recorder::Recorder;
use super::rollout::{self, Next};
use super::unit::{run_rollback, run_unit, UnitResult};
use super::RunInfo;
use crate::config::{Config, Target};
use crate::error::exit;
use crate::plan::Plan;
use crate::signals;

/// Stack of a worker thread: units need little (no deep recursion).
const WORKER_STACK: usize = 512 * 1024;

#[derive(Debug, Clone)]
pub struct Options {
    pub parallel_limit: usize,
    pub max_connections: usize,
    pub continue_on_error: bool,
    /// Replaces every remote task's hosts (`-H`).
    pub hosts_override: Option<Vec<Target>>,
    /// stdout carries JSON events: an interactive command's stdout goes to stderr.
    pub stdout_is_data: bool,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: RunStatus,
    pub exit_code: i32,
    pub tasks: Vec<TaskResult>,
}

/// Everything a run reads, borrowed for its duration.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub config: &'a Config,
    pub plan: &'a Plan,
    pub run: &'a RunInfo,
    pub opts: &'a Options,
    pub recorder: &'a Recorder,
}

/// What a worker needs to run a unit without the lock.
struct Job {
    task: Name,
    host: Name,
    target: Target,
}

/// One task's target: (position in the plan, index into the task's targets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Unit {
    task: usize,
    target: usize,
    /// The rollback of a stopped rollout on a failed host, not the task's steps.
    rollback: bool,
}

struct TaskState {
    name: Name,
    targets: Vec<Target>,
    labels: Vec<Name>,
    /// Batches, failure budget, rollback (`serial` is rolling with batch 1).
    rollout: Option<rollout::Progress>,
    waiting_deps: usize,
    /// Targets not yet handed out.
    pending: VecDeque<usize>,
    /// Units handed out but not yet taken by a worker.
    queued: usize,
    running: usize,
    /// Counted in `running_tasks` (it had units to run).
    counted: bool,
    results: Vec<Option<UnitResult>>,
    started: Option<Instant>,
    status: Option<TaskStatus>,
    duration: Option<Duration>,
    /// Length of the longest chain of selected dependents (priority).
    chain: usize,
    /// Hosts that failed in a dependency (--continue-on-error) or pre-flight: skipped.
    excluded: Vec<String>,
    /// Runs alone (`interactive = true`).
    interactive: bool,
}

/// The scheduler's state, behind one lock.
#[derive(Default)]
struct Board {
    tasks: Vec<TaskState>,
    dependents: Vec<Vec<usize>>,
    /// Ready tasks by (longest chain of dependents, earliest in plan).
    ready: BinaryHeap<(usize, Reverse<usize>)>,
    /// Units a worker may take now.
    queue: VecDeque<Unit>,
    /// Remote units waiting for a connection slot.
    waiting: VecDeque<Unit>,
    running_tasks: usize,
    running_units: usize,
    remote_units: usize,
    stopping: bool,
    /// An interactive task runs: nothing else may start until it ends.
    exclusive: bool,
    /// Rollouts waiting before their next batch (`canary_wait`).
    paused: Vec<usize>,
    first_failure: Option<i32>,
    workers: usize,
    idle: usize,
    /// Workers started that have not yet taken the board's lock: each will take a
    /// queued unit, so they count as available.
    starting: usize,
}

pub struct Scheduler<'a> {
    ctx: Ctx<'a>,
    board: Mutex<Board>,
    wake: Condvar,
    start: Instant,
}

/// Run the plan to the end (or to cancellation).
pub fn execute(ctx: Ctx<'_>) -> Outcome {
    Scheduler::new(ctx).run()
}

impl<'a> Scheduler<'a> {
    pub fn new(ctx: Ctx<'a>) -> Scheduler<'a> {
        let mut board = Board {
            tasks: ctx
                .plan
                .tasks
                .iter()
                .map(|&t| task_state(&ctx, t))
                .collect(),
            ..Board::default()
        };
        link_dependents(&ctx, &mut board);
        Scheduler {
            ctx,
            board: Mutex::new(board),
            wake: Condvar::new(),
            start: Instant::now(),
        }
    }

    pub fn run(self) -> Outcome {
        let names: Vec<Name> = self.lock().tasks.iter().map(|s| s.name.clone()).collect();
        self.ctx.recorder.emit(Event::RunStart {
            targets: self.ctx.plan.targets.clone(),
            tasks: names,
        });
        std::thread::scope(|scope| {
            {
                let mut b = self.lock();
                b.workers = 1;
                self.dispatch(&mut b);
            }
            self.work(scope, false);
        });
        self.finish()
    }

    fn lock(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A worker: take units until nothing is left to do. `new`: started by `hire`.
    fn work<'s>(&'s self, scope: &'s Scope<'s, '_>, new: bool) {
        let mut b = self.lock();
        if new {
            b.starting -= 1;
        }
        loop {
            if let Some(unit) = b.queue.pop_front() {
                let s = &mut b.tasks[unit.task];
                s.queued -= 1;
                s.running += 1;
                let job = Job {
                    task: s.name.clone(),
                    host: s.labels[unit.target].clone(),
                    target: s.targets[unit.target].clone(),
                };
                b.running_units += 1;
                self.hire(&mut b, scope);
                drop(b);
                let task = &self.ctx.config.tasks[self.ctx.plan.tasks[unit.task]];
                let result = if unit.rollback {
                    run_rollback(&self.ctx, task, &job.task, &job.host, &job.target);
                    None
                } else {
                    Some(run_unit(&self.ctx, task, &job.task, &job.host, &job.target))
                };
                b = self.lock();
                self.complete(&mut b, unit, result);
                continue;
            }
            // Completions waiting in the journal go out before this thread waits.
            self.ctx.recorder.flush();
            if self.resume_paused(&mut b) {
                self.hire(&mut b, scope);
                continue;
            }
            if self.finished(&b) {
                self.wake.notify_all();
                return;
            }
            let nap = self.until_paused_ends(&b);
            b.idle += 1;
            b = self
                .wake
                .wait_timeout(b, nap)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
            b.idle -= 1;
        }
    }

    /// Make sure every queued unit has a worker: wake idle ones, start more if needed
    /// (counting the ones already starting, which will take a unit each).
    fn hire<'s>(&'s self, b: &mut Board, scope: &'s Scope<'s, '_>) {
        let wanted = b.queue.len().saturating_sub(b.starting);
        for _ in 0..wanted.min(b.idle) {
            self.wake.notify_one();
        }
        for _ in b.idle..wanted {
            let spawned = std::thread::Builder::new()
                .name("nexus-worker".into())
                .stack_size(WORKER_STACK)
                .spawn_scoped(scope, move || self.work(scope, true));
            match spawned {
                Ok(_) => {
                    b.workers += 1;
                    b.starting += 1;
                }
                Err(e) => {
                    log::debug!("scheduler: cannot start a worker thread: {e}");
                    break;
                }
            }
        }
    }

    /// Nothing runs, nothing is queued, and nothing more may start.
    fn finished(&self, b: &Board) -> bool {
        b.running_units == 0
            && b.queue.is_empty()
            && b.paused.is_empty()
            && (b.ready.is_empty() || b.stopping || self.halted())
    }

    /// Ctrl-C, SIGTERM, or a journal that cannot be written: start nothing new.
    fn halted(&self) -> bool {
        signals::cancelled() || self.ctx.recorder.broken()
    }

    /// Record a unit's result (None: a rollback); hand out what may run next.
    fn complete(&self, b: &mut Board, unit: Unit, result: Option<UnitResult>) {
        b.running_units -= 1;
        if matches!(b.tasks[unit.task].targets[unit.target], Target::Remote(_)) {
            b.remote_units -= 1;
        }
        let s = &mut b.tasks[unit.task];
        s.running -= 1;
        if let Some(result) = result {
            if let Some(r) = s.rollout.as_mut() {
                if !result.status.is_ok() && result.status != TaskStatus::Skipped {
                    r.failed.push(unit.target);
                }
            }
            s.results[unit.target] = Some(result);
        }
        if s.rollout.is_some() && s.running == 0 && s.queued == 0 {
            self.batch_over(b, unit.task);
        }
        self.admit(b);
        let s = &b.tasks[unit.task];
        if s.running == 0 && s.queued == 0 && s.pending.is_empty() {
            self.finish_task(b, unit.task);
        }
        self.dispatch(b);
    }

    /// Start ready tasks while there is room. An interactive task waits until nothing
    /// else runs (tasks ready after it wait too) and then runs alone.
    fn dispatch(&self, b: &mut Board) {
        while !b.stopping && !self.halted() && b.running_tasks < self.limit() && !b.exclusive {
            let Some(&(_, Reverse(p))) = b.ready.peek() else {
                break;
            };
            let interactive = b.tasks[p].interactive;
            if interactive && b.running_tasks > 0 {
                break;
            }
            b.ready.pop();
            b.exclusive = interactive;
            self.start_task(b, p);
        }
    }

    fn limit(&self) -> usize {
        self.ctx.opts.parallel_limit.max(1)
    }

    fn start_task(&self, b: &mut Board, p: usize) {
        let s = &mut b.tasks[p];
        s.started = Some(Instant::now());
        log::debug!("scheduler: start task {} (chain {})", s.name, s.chain);
        self.ctx.recorder.emit(Event::TaskStart {
            task: s.name.clone(),
            hosts: s.labels.clone(),
        });
        self.settle(s);
        if s.pending.is_empty() {
            self.finish_task(b, p);
            return;
        }
        s.counted = true;
        b.running_tasks += 1;
        if s.rollout.is_some() {
            let stopped = self
                .ctx
                .run
                .checkpoint
                .as_ref()
                .and_then(|cp| cp.stopped_rollouts.get(&*s.name).cloned());
            match stopped {
                Some(failed) => self.stopped_before(b, p, &failed),
                None => self.next_batch(b, p),
            }
        } else {
            let n = s.pending.len();
            self.hand_out(b, p, n);
        }
    }

    /// Targets that need no run: failed in a dependency, unavailable, or done before
    /// the interruption this run resumes.
    fn settle(&self, s: &mut TaskState) {
        let excluded = std::mem::take(&mut s.excluded);
        settle_targets(s, TaskStatus::Skipped, |label| {
            excluded.iter().any(|e| e == label)
        });
        if let Some(cp) = &self.ctx.run.checkpoint {
            let task = s.name.to_string();
            settle_targets(s, TaskStatus::Success, |label| {
                cp.done_units.contains(&(task.clone(), label.to_string()))
            });
        }
    }

    /// Move `n` pending targets of task `p` towards the queue.
    fn hand_out(&self, b: &mut Board, p: usize, n: usize) {
        for _ in 0..n {
            let Some(ti) = b.tasks[p].pending.pop_front() else {
                break;
            };
            b.tasks[p].queued += 1;
            b.waiting.push_back(Unit {
                task: p,
                target: ti,
                rollback: false,
            });
        }
        self.admit(b);
    }

    /// Waiting units into the queue: local ones at once, remote ones within
    /// `max_connections`.
    fn admit(&self, b: &mut Board) {
        let mut blocked = VecDeque::new();
        while let Some(u) = b.waiting.pop_front() {
            let remote = matches!(b.tasks[u.task].targets[u.target], Target::Remote(_));
            if remote && b.remote_units >= self.ctx.opts.max_connections {
                blocked.push_back(u);
                continue;
            }
            b.remote_units += usize::from(remote);
            b.queue.push_back(u);
        }
        b.waiting = blocked;
    }

    /// Close task `p`: its status from its units, `task_finish`, release its dependents.
    fn finish_task(&self, b: &mut Board, p: usize) {
        let keep_going = self.ctx.opts.continue_on_error;
        let s = &mut b.tasks[p];
        let verdict = judge(s, keep_going);
        s.status = Some(verdict.status);
        s.duration = Some(s.started.map(|t| t.elapsed()).unwrap_or_default());
        if std::mem::take(&mut s.counted) {
            b.running_tasks -= 1;
        }
        if s.interactive {
            b.exclusive = false;
        }
        let s = &b.tasks[p];
        log::debug!("scheduler: task {} {}", s.name, verdict.status.name());
        self.ctx.recorder.emit(Event::TaskFinish {
            task: s.name.clone(),
            status: verdict.status,
            duration: s.duration.unwrap_or_default(),
            hosts: host_results(s),
        });
        if verdict.status.is_ok() || verdict.partial {
            self.release(b, p, &verdict.failed_hosts, verdict.partial);
        }
        if let Some(code) = verdict.code {
            b.first_failure.get_or_insert(code);
            if !keep_going && !b.stopping {
                log::debug!(
                    "scheduler: {} failed; starting nothing new",
                    b.tasks[p].name
                );
                b.stopping = true;
            }
        }
    }

    /// Task `p` is done: its dependents wait for one dependency less.
    fn release(&self, b: &mut Board, p: usize, failed_hosts: &[String], partial: bool) {
        for q in b.dependents[p].clone() {
            let d = &mut b.tasks[q];
            if partial {
                d.excluded.extend(failed_hosts.iter().cloned());
            }
            d.waiting_deps -= 1;
            if d.waiting_deps == 0 {
                b.ready.push((d.chain, Reverse(q)));
            }
        }
    }

    /// Everything that never ran is skipped; the run's status and exit code.
    fn finish(self) -> Outcome {
        let b = self.board.into_inner().unwrap_or_else(|e| e.into_inner());
        let tasks: Vec<TaskResult> = b
            .tasks
            .iter()
            .map(|s| TaskResult {
                task: s.name.clone(),
                status: s.status.unwrap_or(TaskStatus::Skipped),
                duration: s.duration,
            })
            .collect();
        let any_failed = tasks.iter().any(|t| !t.status.is_ok());
        let (status, exit_code) = if signals::cancelled() {
            let code = b.first_failure.unwrap_or(exit::INTERRUPTED);
            (RunStatus::Interrupted, code)
        } else if any_failed || self.ctx.recorder.broken() {
            (RunStatus::Failed, b.first_failure.unwrap_or(exit::FAILED))
        } else {
            (RunStatus::Success, exit::SUCCESS)
        };
        self.ctx.recorder.emit(Event::RunFinish {
            status,
            duration: self.start.elapsed(),
            exit_code,
            tasks: tasks.clone(),
        });
        Outcome {
            status,
            exit_code,
            tasks,
        }
    }
}

fn task_state(ctx: &Ctx<'_>, t: usize) -> TaskState {
    let task = &ctx.config.tasks[t];
    let targets = super::effective_targets(task, ctx.opts.hosts_override.as_deref());
    let runs = !task.commands.is_empty();
    let n = if runs { targets.len() } else { 0 };
    TaskState {
        name: Name::from(task.name.as_str()),
        labels: targets.iter().map(|t| Name::from(t.label())).collect(),
        targets,
        rollout: task
            .rollout_plan()
            .map(|r| rollout::Progress::new(task, r, n)),
        waiting_deps: task.deps.len(),
        pending: (0..n).collect(),
        queued: 0,
        running: 0,
        counted: false,
        results: vec![None; n],
        started: None,
        status: None,
        duration: None,
        chain: 0,
        excluded: ctx.run.unavailable.clone(),
        interactive: task.interactive,
    }
}

/// Dependents, chain lengths, tasks a resumed run already finished, and the first
/// ready tasks.
fn link_dependents(ctx: &Ctx<'_>, b: &mut Board) {
    let plan = ctx.plan;
    let mut pos = vec![usize::MAX; ctx.config.tasks.len()];
    for (p, &t) in plan.tasks.iter().enumerate() {
        pos[t] = p;
    }
    b.dependents = vec![Vec::new(); plan.tasks.len()];
    for (p, &t) in plan.tasks.iter().enumerate() {
        for &d in &ctx.config.tasks[t].deps {
            b.dependents[pos[d]].push(p);
        }
    }
    if let Some(cp) = &ctx.run.checkpoint {
        for p in 0..plan.tasks.len() {
            if cp.done_tasks.contains(&*b.tasks[p].name) {
                b.tasks[p].status = Some(TaskStatus::Success);
                b.tasks[p].duration = Some(Duration::ZERO);
                for q in b.dependents[p].clone() {
                    b.tasks[q].waiting_deps -= 1;
                }
            }
        }
    }
    for p in (0..plan.tasks.len()).rev() {
        let chain = b.dependents[p]
            .iter()
            .map(|&q| b.tasks[q].chain + 1)
            .max()
            .unwrap_or(0);
        b.tasks[p].chain = chain;
    }
    let ready: Vec<_> = (0..plan.tasks.len())
        .filter(|&p| b.tasks[p].waiting_deps == 0 && b.tasks[p].status.is_none())
        .map(|p| (b.tasks[p].chain, Reverse(p)))
        .collect();
    b.ready.extend(ready);
}

/// Take the targets whose label matches out of `pending`, recording `status` for them.
fn settle_targets(s: &mut TaskState, status: TaskStatus, matches: impl Fn(&str) -> bool) {
    let (labels, results) = (&s.labels, &mut s.results);
    s.pending.retain(|&ti| {
        let hit = matches(&labels[ti]);
        if hit {
            results[ti] = Some(UnitResult {
                status,
                failure: None,
                duration: Duration::ZERO,
            });
        }
        !hit
    });
}

/// How a task ended, judged from its units.
struct Verdict {
    status: TaskStatus,
    /// Failed on some hosts, succeeded on others, with --continue-on-error: its
    /// dependents run on the hosts that succeeded.
    partial: bool,
    failed_hosts: Vec<String>,
    /// Exit code class of its failure, if it failed.
    code: Option<i32>,
}

fn judge(s: &TaskState, keep_going: bool) -> Verdict {
    // The first failure in time decides (results hold durations from the same start).
    let mut failure: Option<&UnitResult> = None;
    let mut any_cancelled = false;
    for r in s.results.iter().flatten() {
        if r.status == TaskStatus::Cancelled {
            any_cancelled = true;
        } else if !r.status.is_ok()
            && r.status != TaskStatus::Skipped
            && failure.is_none_or(|f| r.duration < f.duration)
        {
            failure = Some(r);
        }
    }
    let never_ran = s.results.iter().any(Option::is_none);
    let all_skipped = !s.results.is_empty()
        && s.results
            .iter()
            .all(|r| r.as_ref().is_some_and(|r| r.status == TaskStatus::Skipped));
    let ran = |st: TaskStatus| s.results.iter().flatten().any(|r| r.status == st);
    let status = match (failure, any_cancelled) {
        (Some(f), _) => f.status,
        (None, true) => TaskStatus::Cancelled,
        (None, false) if never_ran || all_skipped => TaskStatus::Skipped,
        // Up to date everywhere it was not left out.
        (None, false) if !ran(TaskStatus::Success) && ran(TaskStatus::UpToDate) => {
            TaskStatus::UpToDate
        }
        (None, false) => TaskStatus::Success,
    };
    let succeeded_somewhere = s
        .results
        .iter()
        .any(|r| r.as_ref().is_some_and(|r| r.status.is_ok()));
    let failed_hosts = s
        .labels
        .iter()
        .zip(&s.results)
        .filter(|(_, r)| r.as_ref().is_none_or(|r| !r.status.is_ok()))
        .map(|(t, _)| t.to_string())
        .collect();
    let code = match status {
        TaskStatus::Success | TaskStatus::Skipped | TaskStatus::UpToDate => None,
        TaskStatus::Cancelled => Some(exit::INTERRUPTED),
        _ => Some(
            failure
                .and_then(|f| f.failure.as_ref())
                .map_or(exit::FAILED, failure_code),
        ),
    };
    Verdict {
        status,
        partial: keep_going
            && matches!(status, TaskStatus::Failed | TaskStatus::TimedOut)
            && succeeded_somewhere,
        failed_hosts,
        code,
    }
}

/// Exit code of a failure class (docs/output.md, "Exit codes").
fn failure_code(f: &Failure) -> i32 {
    match f {
        Failure::Timeout { .. } => exit::TIMEOUT,
        Failure::Connect(_) => exit::SSH,
        Failure::Cancelled => exit::INTERRUPTED,
        _ => exit::FAILED,
    }
}

fn host_results(s: &TaskState) -> Vec<HostResult> {
    s.labels
        .iter()
        .zip(&s.results)
        .map(|(h, r)| match r {
            Some(r) => HostResult {
                host: h.clone(),
                status: r.status,
                duration: r.duration,
                failure: r.failure.clone(),
            },
            None => HostResult {
                host: h.clone(),
                status: TaskStatus::Skipped,
                duration: Duration::ZERO,
                failure: None,
            },
        })
        .collect()
}

impl Scheduler<'_> {
    /// A rollout's batch is over (every unit of it finished): start the next one, wait
    /// before it, or stop the rollout and roll the failed hosts back.
    fn batch_over(&self, b: &mut Board, p: usize) {
        let s = &mut b.tasks[p];
        let Some(r) = s.rollout.as_mut() else {
            return;
        };
        if self.halted() {
            s.pending.clear();
            return;
        }
        match r.batch_over() {
            Next::Done => {}
            Next::Batch => self.next_batch(b, p),
            Next::Wait(wait) => {
                r.resume_at = Some(Instant::now() + wait);
                b.paused.push(p);
                self.ctx.recorder.emit(Event::BatchWait {
                    task: s.name.clone(),
                    wait,
                });
            }
            Next::Stop => self.stop_rollout(b, p),
        }
    }

    /// More hosts failed than `max_fail` allows: skip the rest, roll back the failed.
    fn stop_rollout(&self, b: &mut Board, p: usize) {
        let s = &mut b.tasks[p];
        let Some(r) = s.rollout.as_ref() else {
            return;
        };
        let skipped = s.pending.len();
        s.pending.clear();
        let failed = r.failed.clone();
        let rollback = !r.plan.rollback.is_empty();
        if r.shown || skipped > 0 || rollback {
            self.ctx.recorder.emit(Event::RolloutStopped {
                task: s.name.clone(),
                failed: rollout::labels(&s.labels, failed.iter().copied()),
                max_fail: r.tolerated,
                skipped,
                rollback,
            });
        }
        if !rollback {
            return;
        }
        for &ti in &failed {
            b.tasks[p].queued += 1;
            b.waiting.push_back(Unit {
                task: p,
                target: ti,
                rollback: true,
            });
        }
    }

    /// A resumed run whose rollout had stopped: its failed hosts stay failed and are
    /// rolled back (again: the interruption may have cut the rollback short), no other
    /// host starts.
    fn stopped_before(&self, b: &mut Board, p: usize, failed: &[String]) {
        let s = &mut b.tasks[p];
        let Some(r) = s.rollout.as_mut() else {
            return;
        };
        for label in failed {
            let Some(ti) = s.labels.iter().position(|l| **l == **label) else {
                continue;
            };
            s.pending.retain(|&t| t != ti);
            s.results[ti] = Some(UnitResult {
                status: TaskStatus::Failed,
                failure: None,
                duration: Duration::ZERO,
            });
            r.failed.push(ti);
        }
        r.stopped = true;
        self.stop_rollout(b, p);
        self.admit(b);
        let s = &b.tasks[p];
        if s.running == 0 && s.queued == 0 {
            self.finish_task(b, p);
        }
    }

    /// Hand out the next batch with hosts left to run (a resumed run skips the hosts,
    /// and so the batches, that had finished).
    fn next_batch(&self, b: &mut Board, p: usize) {
        let s = &mut b.tasks[p];
        let Some(r) = s.rollout.as_mut() else {
            return;
        };
        while r.next < r.batches.len() {
            let k = r.next;
            r.next += 1;
            let batch = r.batches[k].clone();
            let hosts: Vec<usize> = s
                .pending
                .iter()
                .copied()
                .filter(|t| batch.contains(t))
                .collect();
            if hosts.is_empty() {
                continue;
            }
            s.pending.retain(|t| !batch.contains(t));
            if r.shown {
                self.ctx.recorder.emit(Event::Batch {
                    task: s.name.clone(),
                    index: k + 1,
                    of: r.batches.len(),
                    hosts: rollout::labels(&s.labels, hosts.iter().copied()),
                    canary: k == 0 && r.plan.canary.is_some(),
                });
            }
            for ti in hosts {
                s.queued += 1;
                b.waiting.push_back(Unit {
                    task: p,
                    target: ti,
                    rollback: false,
                });
            }
            self.admit(b);
            return;
        }
    }

    /// Rollouts whose wait is over start their next batch (on Ctrl-C: end instead).
    /// True when something was handed out.
    fn resume_paused(&self, b: &mut Board) -> bool {
        let now = Instant::now();
        let halted = self.halted();
        let due: Vec<usize> = b
            .paused
            .iter()
            .copied()
            .filter(|&p| {
                halted
                    || b.tasks[p]
                        .rollout
                        .as_ref()
                        .and_then(|r| r.resume_at)
                        .is_none_or(|t| t <= now)
            })
            .collect();
        if due.is_empty() {
            return false;
        }
        b.paused.retain(|p| !due.contains(p));
        for p in due {
            if let Some(r) = b.tasks[p].rollout.as_mut() {
                r.resume_at = None;
            }
            if halted {
                b.tasks[p].pending.clear();
            } else {
                self.next_batch(b, p);
            }
            let s = &b.tasks[p];
            if s.running == 0 && s.queued == 0 && s.pending.is_empty() {
                self.finish_task(b, p);
            }
        }
        self.dispatch(b);
        true
    }

    /// How long an idle worker waits: a second, or less when a rollout's wait ends first.
    fn until_paused_ends(&self, b: &Board) -> Duration {
        let now = Instant::now();
        b.paused
            .iter()
            .filter_map(|&p| b.tasks[p].rollout.as_ref().and_then(|r| r.resume_at))
            .map(|t| t.saturating_duration_since(now))
            .fold(Duration::from_secs(1), Duration::min)
    }
}
