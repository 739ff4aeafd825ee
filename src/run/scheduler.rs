//! The scheduler: a ready queue like `make -j`. A task is dispatched as soon as all of its
//! dependencies succeeded, up to `parallel_limit` tasks at once (remote units also up to
//! `max_connections`); among ready tasks the one with the longest chain of dependents goes
//! first. Each (task, target) unit runs on its own thread and reports back on a channel.
//! Fail-fast by default: after the first failure nothing new starts, running units finish,
//! the rest is `skipped`. Must not: print, or run commands itself.

use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Sender};

use super::pool::Pool;
use super::unit::{run_unit, UnitResult};
use super::RunInfo;
use crate::config::{Config, Strategy, Target};
use crate::error::exit;
use crate::output::event::{Event, Failure, Kind, RunStatus, TaskStatus};
use crate::plan::Plan;
use crate::signals;

#[derive(Debug, Clone)]
pub struct Options {
    pub parallel_limit: usize,
    pub max_connections: usize,
    pub continue_on_error: bool,
    /// Replaces every remote task's hosts (`-H`).
    pub hosts_override: Option<Vec<Target>>,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: RunStatus,
    pub exit_code: i32,
    pub tasks: Vec<(String, TaskStatus, Option<Duration>)>,
}

struct TaskState {
    targets: Vec<Target>,
    waiting_deps: usize,
    /// Targets not yet dispatched (serial tasks hand them out one at a time).
    pending: VecDeque<usize>,
    running: usize,
    results: Vec<Option<UnitResult>>,
    started: Option<Instant>,
    status: Option<TaskStatus>,
    duration: Option<Duration>,
    /// Length of the longest chain of selected dependents (priority).
    chain: usize,
    /// Hosts that failed in a dependency (with --continue-on-error): skipped here.
    excluded: Vec<String>,
}

struct Done {
    task: usize,
    target: usize,
    result: UnitResult,
}

/// Exit code of a failure class (SPEC §8).
fn failure_code(f: &Failure) -> i32 {
    match f {
        Failure::Timeout { .. } => exit::TIMEOUT,
        Failure::Connect(_) => exit::SSH,
        Failure::Cancelled => exit::INTERRUPTED,
        _ => exit::FAILED,
    }
}

/// Run the plan to the end (or to cancellation); every event goes to `events`.
pub fn execute(
    config: &Arc<Config>,
    plan: &Plan,
    run: &Arc<RunInfo>,
    opts: &Options,
    events: &Sender<Event>,
) -> Outcome {
    let start = Instant::now();
    let n = config.tasks.len();
    // Position in the plan of each task index (usize::MAX: not selected).
    let mut pos = vec![usize::MAX; n];
    for (p, &t) in plan.tasks.iter().enumerate() {
        pos[t] = p;
    }
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); plan.tasks.len()];
    let mut states: Vec<TaskState> = plan
        .tasks
        .iter()
        .map(|&t| {
            let task = &config.tasks[t];
            let targets = super::effective_targets(task, opts.hosts_override.as_deref());
            let runs = !task.commands.is_empty();
            TaskState {
                pending: if runs {
                    (0..targets.len()).collect()
                } else {
                    VecDeque::new()
                },
                results: if runs {
                    vec![None; targets.len()]
                } else {
                    Vec::new()
                },
                targets,
                waiting_deps: task.deps.len(),
                running: 0,
                started: None,
                status: None,
                duration: None,
                chain: 0,
                excluded: run.unavailable.clone(),
            }
        })
        .collect();
    for (p, &t) in plan.tasks.iter().enumerate() {
        for &d in &config.tasks[t].deps {
            dependents[pos[d]].push(p);
        }
    }
    // Resuming: tasks the interrupted run completed count as done, without events.
    if let Some(cp) = &run.checkpoint {
        for (p, &t) in plan.tasks.iter().enumerate() {
            if cp.done_tasks.contains(&config.tasks[t].name) {
                states[p].status = Some(TaskStatus::Success);
                states[p].duration = Some(Duration::ZERO);
                for &q in &dependents[p] {
                    states[q].waiting_deps -= 1;
                }
            }
        }
    }
    for p in (0..plan.tasks.len()).rev() {
        states[p].chain = dependents[p]
            .iter()
            .map(|&q| states[q].chain + 1)
            .max()
            .unwrap_or(0);
    }

    let _ = events.send(Event::now(Kind::RunStart {
        targets: plan.targets.clone(),
        tasks: plan
            .tasks
            .iter()
            .map(|&t| config.tasks[t].name.clone())
            .collect(),
    }));

    // Ready tasks by (longest chain of dependents, earliest in plan).
    let parallel_limit = opts.parallel_limit.max(1);
    let mut ready: BinaryHeap<(usize, std::cmp::Reverse<usize>)> = states
        .iter()
        .enumerate()
        .filter(|(_, s)| s.waiting_deps == 0 && s.status.is_none())
        .map(|(p, s)| (s.chain, std::cmp::Reverse(p)))
        .collect();
    let (tx, rx) = unbounded::<Done>();
    let mut units_waiting: VecDeque<(usize, usize)> = VecDeque::new();
    let mut running_tasks = 0usize;
    let mut running_units = 0usize;
    let mut remote_units = 0usize;
    let mut stopping = false;
    let mut first_failure: Option<i32> = None;

    let mut pool = Pool::new();
    let mut spawn_unit = |p: usize, ti: usize, target: Target, tx: Sender<Done>| {
        let config = Arc::clone(config);
        let run = Arc::clone(run);
        let events = events.clone();
        let task_idx = plan.tasks[p];
        pool.submit(Box::new(move || {
            let result = run_unit(&run, &config.tasks[task_idx], &target, &events);
            let _ = tx.send(Done {
                task: p,
                target: ti,
                result,
            });
        }))
    };

    loop {
        // Start ready tasks while there is room.
        while !stopping && !signals::cancelled() && running_tasks < parallel_limit {
            let Some((_, std::cmp::Reverse(p))) = ready.pop() else {
                break;
            };
            let name = &config.tasks[plan.tasks[p]].name;
            let s = &mut states[p];
            s.started = Some(Instant::now());
            let _ = events.send(Event::now(Kind::TaskStart {
                task: name.clone(),
                hosts: s.targets.iter().map(Target::label).collect(),
            }));
            // Hosts that need no run: done before an interruption (resume), or failed in
            // a dependency (--continue-on-error). An aggregate has none to begin with:
            // it is done when its deps are.
            let task_name = &config.tasks[plan.tasks[p]].name;
            let excluded = std::mem::take(&mut s.excluded);
            settle_targets(s, TaskStatus::Skipped, |label| {
                excluded.iter().any(|e| e == label)
            });
            if let Some(cp) = &run.checkpoint {
                settle_targets(s, TaskStatus::Success, |label| {
                    cp.done_units
                        .contains(&(task_name.clone(), label.to_string()))
                });
            }
            if s.pending.is_empty() {
                finish_task(
                    config,
                    plan,
                    run,
                    &mut states,
                    p,
                    events,
                    &mut ready,
                    &dependents,
                    opts.continue_on_error,
                );
                continue;
            }
            running_tasks += 1;
            let serial = config.tasks[plan.tasks[p]].strategy == Strategy::Serial;
            let take = if serial { 1 } else { s.pending.len() };
            for _ in 0..take {
                if let Some(ti) = s.pending.pop_front() {
                    units_waiting.push_back((p, ti));
                }
            }
        }
        // Start waiting units, remote ones within max_connections.
        let mut blocked = VecDeque::new();
        while let Some((p, ti)) = units_waiting.pop_front() {
            let target = states[p].targets[ti].clone();
            let remote = matches!(target, Target::Remote(_));
            if remote && remote_units >= opts.max_connections {
                blocked.push_back((p, ti));
                continue;
            }
            if spawn_unit(p, ti, target, tx.clone()) {
                running_units += 1;
                remote_units += usize::from(remote);
                states[p].running += 1;
            } else {
                states[p].results[ti] = Some(UnitResult {
                    status: TaskStatus::Failed,
                    failure: Some(Failure::Spawn("cannot start a worker thread".into())),
                    duration: Duration::ZERO,
                });
            }
        }
        units_waiting = blocked;

        if running_units == 0 {
            // Tasks whose units could not even start finish here.
            let stuck: Vec<usize> = (0..states.len())
                .filter(|&p| {
                    states[p].status.is_none()
                        && states[p].started.is_some()
                        && states[p].running == 0
                        && states[p].pending.is_empty()
                })
                .collect();
            if !stuck.is_empty() {
                for p in stuck {
                    running_tasks -= 1;
                    let code = finish_task(
                        config,
                        plan,
                        run,
                        &mut states,
                        p,
                        events,
                        &mut ready,
                        &dependents,
                        opts.continue_on_error,
                    );
                    note_failure(code, opts, &mut stopping, &mut first_failure);
                }
                continue;
            }
            if ready.is_empty() || stopping || signals::cancelled() {
                break;
            }
            continue;
        }

        let Ok(done) = rx.recv() else { break };
        running_units -= 1;
        let p = done.task;
        if matches!(states[p].targets[done.target], Target::Remote(_)) {
            remote_units -= 1;
        }
        let failed = done.result.status != TaskStatus::Success;
        let s = &mut states[p];
        s.running -= 1;
        s.results[done.target] = Some(done.result);
        let serial = config.tasks[plan.tasks[p]].strategy == Strategy::Serial;
        if serial && !s.pending.is_empty() {
            let go_on = !failed && !signals::cancelled();
            if go_on {
                if let Some(ti) = s.pending.pop_front() {
                    units_waiting.push_back((p, ti));
                }
                continue;
            }
            s.pending.clear();
        }
        if s.running == 0 && s.pending.is_empty() && units_waiting.iter().all(|&(q, _)| q != p) {
            running_tasks -= 1;
            let code = finish_task(
                config,
                plan,
                run,
                &mut states,
                p,
                events,
                &mut ready,
                &dependents,
                opts.continue_on_error,
            );
            note_failure(code, opts, &mut stopping, &mut first_failure);
        }
    }

    // Everything that never ran is skipped.
    let cancelled = signals::cancelled();
    let tasks: Vec<(String, TaskStatus, Option<Duration>)> = plan
        .tasks
        .iter()
        .zip(&states)
        .map(|(&t, s)| {
            (
                config.tasks[t].name.clone(),
                s.status.unwrap_or(TaskStatus::Skipped),
                s.duration,
            )
        })
        .collect();
    let any_failed = tasks.iter().any(|(_, s, _)| *s != TaskStatus::Success);
    let (status, exit_code) = if cancelled {
        (
            RunStatus::Interrupted,
            first_failure.unwrap_or(exit::INTERRUPTED),
        )
    } else if any_failed {
        (RunStatus::Failed, first_failure.unwrap_or(exit::FAILED))
    } else {
        (RunStatus::Success, exit::SUCCESS)
    };
    if let Some(j) = &run.journal {
        j.record(
            "run_finish",
            serde_json::json!({
                "status": status.name(),
                "exit_code": exit_code,
                "duration_ms": start.elapsed().as_millis() as u64,
            }),
        );
        j.sync();
    }
    let _ = events.send(Event::now(Kind::RunFinish {
        status,
        duration: start.elapsed(),
        exit_code,
        tasks: tasks.clone(),
    }));
    Outcome {
        status,
        exit_code,
        tasks,
    }
}

/// Take the targets whose label matches out of `pending`, recording `status` for them.
fn settle_targets(s: &mut TaskState, status: TaskStatus, matches: impl Fn(&str) -> bool) {
    let (targets, results) = (&s.targets, &mut s.results);
    s.pending.retain(|&ti| {
        let hit = matches(&targets[ti].label());
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

fn note_failure(code: Option<i32>, opts: &Options, stopping: &mut bool, first: &mut Option<i32>) {
    if let Some(c) = code {
        first.get_or_insert(c);
        if !opts.continue_on_error {
            *stopping = true;
        }
    }
}

/// Close a task: aggregate its units, emit `task_finish`, release its dependents.
/// With `keep_going` (--continue-on-error), a task that failed on some hosts but not all
/// releases its dependents too, which then skip the hosts that failed (as Ansible
/// drops failed hosts from the rest of a play). Returns the exit code class of its
/// failure, if it failed.
#[allow(clippy::too_many_arguments)]
fn finish_task(
    config: &Config,
    plan: &Plan,
    run: &RunInfo,
    states: &mut [TaskState],
    p: usize,
    events: &Sender<Event>,
    ready: &mut BinaryHeap<(usize, std::cmp::Reverse<usize>)>,
    dependents: &[Vec<usize>],
    keep_going: bool,
) -> Option<i32> {
    let s = &mut states[p];
    let duration = s.started.map(|t| t.elapsed()).unwrap_or_default();
    // The first failure in time decides (results hold durations from the same start).
    let mut failure: Option<&UnitResult> = None;
    let mut any_cancelled = false;
    for r in s.results.iter().flatten() {
        if r.status == TaskStatus::Cancelled {
            any_cancelled = true;
        } else if !matches!(r.status, TaskStatus::Success | TaskStatus::Skipped)
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
    let status = match (failure, any_cancelled) {
        (Some(f), _) => f.status,
        (None, true) => TaskStatus::Cancelled,
        (None, false) if never_ran || all_skipped => TaskStatus::Skipped,
        (None, false) => TaskStatus::Success,
    };
    let succeeded_somewhere = s
        .results
        .iter()
        .any(|r| r.as_ref().is_some_and(|r| r.status == TaskStatus::Success));
    let failed_hosts: Vec<String> = s
        .targets
        .iter()
        .zip(&s.results)
        .filter(|(_, r)| r.as_ref().is_none_or(|r| r.status != TaskStatus::Success))
        .map(|(t, _)| t.label())
        .collect();
    let partial = keep_going
        && matches!(status, TaskStatus::Failed | TaskStatus::TimedOut)
        && succeeded_somewhere;
    let code = failure.and_then(|f| f.failure.as_ref()).map(failure_code);
    s.status = Some(status);
    s.duration = Some(duration);
    let hosts = s
        .targets
        .iter()
        .zip(&s.results)
        .map(|(t, r)| match r {
            Some(r) => (t.label(), r.status, r.duration),
            None => (t.label(), TaskStatus::Skipped, Duration::ZERO),
        })
        .collect();
    if let Some(j) = &run.journal {
        j.record(
            "task_finish",
            serde_json::json!({
                "task": config.tasks[plan.tasks[p]].name,
                "status": status.name(),
                "duration_ms": duration.as_millis() as u64,
            }),
        );
        j.checkpoint();
    }
    let _ = events.send(Event::now(Kind::TaskFinish {
        task: config.tasks[plan.tasks[p]].name.clone(),
        status,
        duration,
        hosts,
    }));
    if status == TaskStatus::Success || partial {
        for &q in &dependents[p] {
            if partial {
                let ex = &mut states[q].excluded;
                ex.extend(failed_hosts.iter().cloned());
            }
            states[q].waiting_deps -= 1;
            if states[q].waiting_deps == 0 {
                ready.push((states[q].chain, std::cmp::Reverse(q)));
            }
        }
    }
    match status {
        TaskStatus::Success | TaskStatus::Skipped => None,
        TaskStatus::Cancelled => Some(exit::INTERRUPTED),
        _ => code.or(Some(exit::FAILED)),
    }
}
