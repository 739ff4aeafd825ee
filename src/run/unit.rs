//! One unit of work: the commands of one task on one target, in order, within the task's
//! timeout; a resumed unit starts at the first command it had not completed. Holds the
//! unit's SSH session for all its commands. Must not: decide what runs next (the
//! scheduler does) or print.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::command::{self, Exec, Limits, Step};
use super::event::{CommandRef, Event, Failure, Name, TaskStatus};
use super::scheduler::Ctx;
use super::{artifacts, handlers, RunInfo};
use crate::config::{Target, Task};
use crate::exec::ssh::{self, remote};
use crate::exec::{local, Cause, ExecResult, Progress};
use crate::uptodate;

#[derive(Debug, Clone)]
pub struct UnitResult {
    pub status: TaskStatus,
    pub failure: Option<Failure>,
    pub duration: Duration,
}

/// Where and with what environment the unit's commands run.
struct Place<'a> {
    /// What the unit's templates are rendered with.
    vars: crate::config::template::Context,
    dir: std::path::PathBuf,
    /// `dir` as rendered (the remote working directory).
    remote_dir: Option<String>,
    /// nexus's variables, then the task's `env`.
    env: Vec<(String, String)>,
    /// How many of `env` are nexus's (the rest must not appear in argument lists).
    builtins: usize,
    remote: Option<RemoteSession<'a>>,
    /// An interactive task's commands are attached to the terminal.
    attached: Option<local::Attached>,
    /// The local shell (`[config] shell`).
    shell: Vec<String>,
}

/// Run every command of `task` on `target`.
pub fn run_unit(
    ctx: &Ctx<'_>,
    task: &Task,
    name: &Name,
    host: &Name,
    target: &Target,
) -> UnitResult {
    let start = Instant::now();
    let task_deadline = match ctx.run.task_timeout(task) {
        Some(limit) => start + limit,
        None => super::no_deadline(),
    };
    let (status, outcome) = match place(ctx.run, &ctx.config.env, task, host, target) {
        Ok(mut place) => {
            place.attached = task.interactive.then_some(local::Attached {
                stdout_to_stderr: ctx.opts.stdout_is_data,
                terminal: false,
            });
            // No "still running" notices while a command has the terminal.
            ctx.recorder.attached(task.interactive);
            let ended = match take_artifacts(ctx, task, name, host, &mut place, task_deadline) {
                Some(f) => (f.task_status(), Some(f)),
                None => {
                    let ended = run_checked(ctx, task, name, host, &mut place, task_deadline);
                    finish_unit(ctx, task, name, host, &mut place, task_deadline, ended)
                }
            };
            let ended = stage_artifacts(ctx, task, name, host, &mut place, task_deadline, ended);
            ctx.recorder.attached(false);
            if let Some(r) = place.remote.as_mut() {
                r.release();
            }
            ended
        }
        Err(failure) => (failure.task_status(), Some(failure)),
    };
    ctx.recorder.emit(Event::UnitFinish {
        task: name.clone(),
        host: host.clone(),
        status,
    });
    UnitResult {
        status,
        failure: outcome,
        duration: start.elapsed(),
    }
}

fn place<'a>(
    run: &'a RunInfo,
    config_env: &[(
        String,
        crate::config::Spanned<crate::config::template::Template>,
    )],
    task: &'a Task,
    host: &'a str,
    target: &Target,
) -> Result<Place<'a>, Failure> {
    let vars = run.context(&task.name, host);
    let rendered =
        |what: &str, t: &crate::config::model::Spanned<crate::config::template::Template>| {
            t.value.render(&vars).map_err(|e| {
                Failure::Spawn(Cause::new(format!(
                    "cannot render {what} `{}`: {}",
                    t.value.source(),
                    e.message
                )))
            })
        };
    let remote_dir = match &task.dir {
        Some(d) => Some(rendered("`dir`", d)?),
        None => None,
    };
    let dir = match &remote_dir {
        Some(d) => run.root.join(d),
        None => run.root.clone(),
    };
    let mut env: Vec<(String, String)> = vec![
        ("NEXUS_RUN_ID".into(), run.run_id.clone()),
        ("NEXUS_TASK".into(), task.name.clone()),
        ("NEXUS_HOST".into(), host.to_string()),
        ("NEXUS_RUN_COUNTER".into(), run.counter.to_string()),
        ("NEXUS_TIMESTAMP".into(), run.timestamp.clone()),
    ];
    if let Some(g) = &run.git {
        env.push(("NEXUS_GIT_SHA".into(), g.sha.clone()));
        env.push(("NEXUS_GIT_BRANCH".into(), g.branch.clone()));
    }
    let builtins = env.len();
    // `[env]`, then the task's `env`, which wins.
    let global = config_env
        .iter()
        .filter(|(k, _)| !task.env.iter().any(|(tk, _)| tk == k));
    for (k, v) in global.chain(task.env.iter()) {
        env.push((k.clone(), rendered(&format!("env `{k}`"), v)?));
    }
    let remote = match target {
        Target::Local => None,
        Target::Remote(spec) => match run.ssh.as_ref().and_then(|s| s.target(spec)) {
            Some((pool, t)) => Some(RemoteSession {
                pool,
                target: t,
                conn: None,
            }),
            None => {
                return Err(Failure::Connect(Cause::new(format!(
                    "no SSH settings were prepared for {host}"
                ))))
            }
        },
    };
    Ok(Place {
        vars,
        dir,
        remote_dir,
        env,
        builtins,
        remote,
        attached: None,
        shell: run.shell.clone(),
    })
}

/// A failed artifact transfer as the unit's failure.
fn artifact_failure(f: crate::transfer::Failed) -> Failure {
    match f.cause {
        crate::transfer::Stop::Failed(c) => Failure::Spawn(c),
        crate::transfer::Stop::Connect(c) => Failure::Connect(c),
        crate::transfer::Stop::Cancelled => Failure::Cancelled,
        crate::transfer::Stop::TimedOut => Failure::Spawn(Cause::new(
            "the task's timeout ended while its artifacts were moved",
        )),
    }
}

/// Before the task's steps: its dependencies' artifacts put in place on this target
/// (src/run/artifacts.rs); the failure, if one could not be.
fn take_artifacts(
    ctx: &Ctx<'_>,
    task: &Task,
    name: &Name,
    host: &Name,
    place: &mut Place<'_>,
    task_deadline: Instant,
) -> Option<Failure> {
    for producer in artifacts::sources(ctx.config, task) {
        let hosts = artifacts::staged_hosts(&ctx.run.run_id, &producer.name);
        for (from_host, to) in artifacts::layout(&hosts) {
            let staged = artifacts::host_dir(&ctx.run.run_id, &producer.name, &from_host);
            let recorded = ctx.run.artifacts.get(&producer.name, &from_host);
            if let Err(f) =
                artifacts::verify(&staged, &producer.name, &from_host, recorded.as_deref())
            {
                return Some(artifact_failure(f));
            }
            let root = ctx.run.root.clone();
            let placed = place.with_shell(task_deadline, |shell, _| {
                artifacts::place(&staged, &to, &root, shell)
            });
            match placed {
                Ok(report) => ctx.recorder.emit(Event::ArtifactsPlaced {
                    task: name.clone(),
                    host: host.clone(),
                    from: Name::from(producer.name.as_str()),
                    report,
                }),
                Err(f) => return Some(artifact_failure(f)),
            }
        }
    }
    None
}

/// After the task succeeded on this target: its `artifacts` staged (src/run/artifacts.rs).
/// A declared artifact that is missing fails the unit.
fn stage_artifacts(
    ctx: &Ctx<'_>,
    task: &Task,
    name: &Name,
    host: &Name,
    place: &mut Place<'_>,
    task_deadline: Instant,
    ended: (TaskStatus, Option<Failure>),
) -> (TaskStatus, Option<Failure>) {
    if task.artifacts.is_empty() || !ended.0.is_ok() {
        return ended;
    }
    let staged = artifacts::host_dir(&ctx.run.run_id, &task.name, host);
    let workdir = place.dir.clone();
    let shown = match &place.remote_dir {
        Some(d) => format!("`{d}`"),
        None => "the login directory".to_string(),
    };
    let collected = place.with_shell(task_deadline, |shell, local| {
        if local {
            artifacts::collect_local(task, &workdir, &staged, shell)
        } else {
            artifacts::collect(task, host, &shown, &staged, shell)
        }
    });
    match collected {
        Ok(files) => {
            ctx.run.artifacts.record(&task.name, host, &files);
            ctx.recorder.emit(Event::ArtifactsCollected {
                task: name.clone(),
                host: host.clone(),
                files,
            });
            ended
        }
        Err(f) => {
            let f = artifact_failure(f);
            (f.task_status(), Some(f))
        }
    }
}

/// The up-to-date checks (src/uptodate), then the commands that are not skipped: the
/// unit's status and the failure that ended it, if any.
fn run_checked(
    ctx: &Ctx<'_>,
    task: &Task,
    name: &Name,
    host: &Name,
    place: &mut Place<'_>,
    task_deadline: Instant,
) -> (TaskStatus, Option<Failure>) {
    let pending = match uptodate::before_unit(ctx, task, name, host) {
        uptodate::Gate::UpToDate => return (TaskStatus::UpToDate, None),
        uptodate::Gate::Run(p) => p,
    };
    let vars = uptodate::guarded(task).then(|| place.vars.clone());
    let checked = vars.map(|vars| {
        uptodate::guards(ctx, task, name, host, &vars, |script, secret| {
            place.probe(script, secret, task_deadline)
        })
    });
    let skips = match checked.unwrap_or(Ok(None)) {
        Ok(Some(v)) if v.task.is_some() => return (TaskStatus::UpToDate, None),
        Ok(v) => v.map(|v| v.commands).unwrap_or_default(),
        Err(f) => return (f.task_status(), Some(f)),
    };
    match run_commands(ctx, task, name, host, place, task_deadline, &skips) {
        Some(f) => (f.task_status(), Some(f)),
        None => {
            if let Some(p) = pending {
                ctx.run.uptodate.commit(ctx.run, p);
            }
            // Every command skipped by its own guard: nothing was done here.
            let all_skipped = !skips.is_empty() && skips.iter().all(Option::is_some);
            let status = if all_skipped {
                TaskStatus::UpToDate
            } else {
                TaskStatus::Success
            };
            (status, None)
        }
    }
}

/// The unit's commands in order, but those whose `creates` / `unless` holds (`skips`);
/// the failure that ended the unit, if any.
fn run_commands(
    ctx: &Ctx<'_>,
    task: &Task,
    name: &Name,
    host: &Name,
    place: &mut Place<'_>,
    task_deadline: Instant,
    skips: &[Option<String>],
) -> Option<Failure> {
    // On resume, the commands this host already completed are not run again.
    let first = ctx
        .run
        .checkpoint
        .as_ref()
        .and_then(|c| c.next_command.get(&(task.name.clone(), host.to_string())))
        .copied()
        .unwrap_or(0);
    for (index, cmd) in task.commands.iter().enumerate().skip(first) {
        let (rendered, line) = rendered_line(cmd, &place.vars);
        if let Some(Some(reason)) = skips.get(index) {
            let cmd = CommandRef {
                task: name.clone(),
                host: host.clone(),
                index,
                attempt: 1,
                line,
                part: None,
            };
            let reason = reason.clone();
            ctx.recorder.emit(Event::CommandSkipped { cmd, reason });
            continue;
        }
        let step = Step {
            task,
            cmd,
            task_name: name,
            host,
            index,
            line: line.clone(),
            part: None,
        };
        let (failed, notifies) = run_step(ctx, place, &step, &rendered, task_deadline);
        if let Some(failure) = failed {
            return Some(failure);
        }
        if notifies && !cmd.notify.is_empty() {
            handlers::notify(ctx, name, host, &cmd.notify);
        }
    }
    None
}

/// A step's command line rendered, and the line to show: the rendered one, or as
/// written when it cannot be rendered (the step then fails saying why).
fn rendered_line(
    cmd: &crate::config::Command,
    vars: &crate::config::template::Context,
) -> (
    Result<String, crate::config::template::TemplateError>,
    Arc<str>,
) {
    let rendered = cmd.template.value.render(vars);
    let line: Arc<str> = match &rendered {
        Ok(l) => Arc::from(l.as_str()),
        Err(_) => Arc::from(cmd.template.value.source()),
    };
    (rendered, line)
}

/// One step with its attempts: the failure that ended it, if any, and whether it
/// notifies its handlers: its last attempt exited 0 (not a failure tolerated by
/// `continue_on_error`) and, for a file step, it changed something.
fn run_step(
    ctx: &Ctx<'_>,
    place: &mut Place<'_>,
    step: &Step<'_>,
    rendered: &Result<String, crate::config::template::TemplateError>,
    task_deadline: Instant,
) -> (Option<Failure>, bool) {
    let shown = CommandRef {
        task: step.task_name.clone(),
        host: step.host.clone(),
        index: step.index,
        attempt: 1,
        line: step.line.clone(),
        part: step.part.clone(),
    };
    let mut file_report: Option<crate::transfer::Report> = None;
    let mut succeeded = false;
    let mut exec = |limits: Limits, progress: &mut dyn Progress| -> ExecResult {
        let result = match rendered {
            Ok(_) if step.cmd.file.is_some() => {
                let moved = |sent: u64, total: u64| {
                    ctx.recorder.emit(Event::FileProgress {
                        cmd: shown.clone(),
                        sent,
                        total,
                    });
                };
                let (result, report) = place.file_step(ctx.run, step.cmd, limits, progress, &moved);
                file_report = report;
                result
            }
            Ok(_) => place.exec(step.cmd, &step.line, limits, progress),
            Err(e) => ExecResult::SpawnError(Cause::new(format!(
                "cannot render the command: {}",
                e.message
            ))),
        };
        succeeded = matches!(result, ExecResult::Exited(0));
        result
    };
    let exec: &mut Exec<'_> = &mut exec;
    let failed = command::run(ctx.run, ctx.recorder, step, task_deadline, exec);
    let changed = file_report.as_ref().map(|r| r.changed);
    if let Some(report) = file_report {
        ctx.recorder.emit(Event::FileStep {
            cmd: shown.clone(),
            report,
        });
    }
    (failed, succeeded && changed != Some(false))
}

/// Whose steps a part of a unit runs that is not the task's own: a handler's, the
/// rollback (`CommandRef::part`), and by when.
struct Part<'a> {
    task: &'a Task,
    name: &'a Name,
    host: &'a Name,
    part: Name,
    task_deadline: Instant,
}

/// The steps of a part, in order; the failure that ended them, if any.
fn run_part(
    ctx: &Ctx<'_>,
    place: &mut Place<'_>,
    p: &Part<'_>,
    cmds: &[crate::config::Command],
) -> Option<Failure> {
    let Part {
        task,
        name,
        host,
        task_deadline,
        ..
    } = *p;
    let skips = match part_guards(ctx, place, p, cmds) {
        Ok(s) => s,
        Err(f) => return Some(f),
    };
    for (index, cmd) in cmds.iter().enumerate() {
        let (rendered, line) = rendered_line(cmd, &place.vars);
        if let Some(Some(reason)) = skips.get(index) {
            let cmd = CommandRef {
                task: name.clone(),
                host: host.clone(),
                index,
                attempt: 1,
                line,
                part: Some(p.part.clone()),
            };
            let reason = reason.clone();
            ctx.recorder.emit(Event::CommandSkipped { cmd, reason });
            continue;
        }
        let step = Step {
            task,
            cmd,
            task_name: name,
            host,
            index,
            line,
            part: Some(p.part.clone()),
        };
        if let (Some(failure), _) = run_step(ctx, place, &step, &rendered, task_deadline) {
            return Some(failure);
        }
    }
    None
}

/// The `creates` / `unless` of a part's steps, checked as a task's are (one script on the
/// host): per step, why it is skipped.
fn part_guards(
    ctx: &Ctx<'_>,
    place: &mut Place<'_>,
    p: &Part<'_>,
    cmds: &[crate::config::Command],
) -> Result<Vec<Option<String>>, Failure> {
    if cmds.iter().all(|c| c.guard.is_empty()) {
        return Ok(Vec::new());
    }
    // The same checks as the task's steps get, over these steps alone.
    let mut steps = p.task.clone();
    steps.commands = cmds.to_vec();
    steps.checks = Default::default();
    let vars = place.vars.clone();
    let deadline = p.task_deadline;
    let probe = |script: &str, secret| place.probe(script, secret, deadline);
    let verdict = uptodate::guards(ctx, &steps, p.name, p.host, &vars, probe)?;
    Ok(verdict.map(|v| v.commands).unwrap_or_default())
}

/// After the task's steps on a host: its notified handlers (src/run/handlers.rs), then
/// its health check (`wait_for`, src/run/rollout.rs) where the steps succeeded.
fn finish_unit(
    ctx: &Ctx<'_>,
    task: &Task,
    name: &Name,
    host: &Name,
    place: &mut Place<'_>,
    task_deadline: Instant,
    ended: (TaskStatus, Option<Failure>),
) -> (TaskStatus, Option<Failure>) {
    let ok = ended.0.is_ok();
    let mut steps = |h: &crate::config::Handler, part: &Name| {
        let p = Part {
            task,
            name,
            host,
            part: part.clone(),
            task_deadline,
        };
        run_part(ctx, place, &p, &h.commands)
    };
    if let Some(f) = handlers::at_end(ctx, task, name, host, ok, &mut steps) {
        if ok {
            return (f.task_status(), Some(f));
        }
    }
    let wait_for = task.rollout.as_ref().and_then(|r| r.wait_for.as_ref());
    let Some(w) = wait_for.filter(|_| ok) else {
        return ended;
    };
    let line = match w.template.value.render(&place.vars) {
        Ok(l) => l,
        Err(e) => {
            let f = Failure::Spawn(Cause::new(format!(
                "cannot render `wait_for`: {}",
                e.message
            )));
            return (f.task_status(), Some(f));
        }
    };
    let cmd = CommandRef {
        task: name.clone(),
        host: host.clone(),
        index: 0,
        attempt: 1,
        line: Arc::from(line),
        part: Some(Name::from(super::rollout::WAIT_FOR)),
    };
    let secret = w.template.value.may_hold_secret();
    let mut probe = |line: &str, limit: Instant| place.probe(line, secret, limit);
    match super::rollout::wait_healthy(ctx, cmd, w, task_deadline, &mut probe) {
        None => ended,
        Some(f) => (f.task_status(), Some(f)),
    }
}

/// The rollback of a rollout that stopped, on a host that failed: `rollback`'s steps in
/// order. The host stays failed whatever they do (their failures are reported).
pub fn run_rollback(ctx: &Ctx<'_>, task: &Task, name: &Name, host: &Name, target: &Target) {
    let steps = task.rollout.as_ref().map_or(&[][..], |r| &r.rollback[..]);
    let task_deadline = match ctx.run.task_timeout(task) {
        Some(limit) => Instant::now() + limit,
        None => super::no_deadline(),
    };
    match place(ctx.run, &ctx.config.env, task, host, target) {
        Ok(mut place) => {
            let p = Part {
                task,
                name,
                host,
                part: Name::from(super::rollout::ROLLBACK),
                task_deadline,
            };
            run_part(ctx, &mut place, &p, steps);
            if let Some(r) = place.remote.as_mut() {
                r.release();
            }
        }
        // The unit's own report already says this (the same `dir` or `env` failed it).
        Err(f) => log::warn!(
            "task `{}` on {host}: the rollback could not start: {}",
            task.name,
            crate::output::describe::failure(&f)
        ),
    }
    ctx.recorder.emit(Event::UnitFinish {
        task: name.clone(),
        host: host.clone(),
        status: TaskStatus::Failed,
    });
}

impl Place<'_> {
    /// One attempt of `cmd`, locally or on the unit's host.
    fn exec(
        &mut self,
        cmd: &crate::config::Command,
        line: &str,
        limits: Limits,
        progress: &mut dyn Progress,
    ) -> ExecResult {
        let how = How {
            sudo: cmd.sudo.then(|| cmd.user.clone()),
            pty: cmd.pty,
            secret: cmd.template.value.may_hold_secret(),
            probe: false,
        };
        self.exec_line(line, how, limits, progress)
    }

    /// A script of nexus's own (the `creates` / `unless` checks), run like a command
    /// with the task's env and dir, without sudo; what it printed.
    fn probe(
        &mut self,
        script: &str,
        secret: bool,
        task_deadline: Instant,
    ) -> (ExecResult, crate::exec::Collected) {
        let mut out = crate::exec::Collected::default();
        let how = How {
            sudo: None,
            pty: false,
            secret,
            probe: true,
        };
        let limits = Limits {
            command: None,
            task_deadline,
        };
        let result = self.exec_line(script, how, limits, &mut out);
        (result, out)
    }

    fn exec_line(
        &mut self,
        line: &str,
        how: How,
        limits: Limits,
        progress: &mut dyn Progress,
    ) -> ExecResult {
        match self.remote.as_mut() {
            None => {
                let spec = local::LocalCommand {
                    line: line.to_string(),
                    dir: self.dir.clone(),
                    env: self.env.clone(),
                    sudo: how.sudo,
                    secret: how.secret,
                    shell: self.shell.clone(),
                    // nexus's own checks never take the terminal.
                    attached: self.attached.filter(|_| !how.probe),
                };
                local::exec(&spec, limits.deadline(), progress)
            }
            Some(r) => {
                let script = crate::exec::script::is_script(line);
                let spec = remote::RemoteCommand {
                    line: if script {
                        crate::exec::script::runner(line)
                    } else {
                        line.to_string()
                    },
                    dir: self.remote_dir.clone(),
                    env: self.env[..self.builtins].to_vec(),
                    private_env: self.env[self.builtins..].to_vec(),
                    sudo: how.sudo,
                    pty: how.pty,
                    secret: script || how.secret,
                };
                r.exec(&spec, limits, progress)
            }
        }
    }
}

impl Place<'_> {
    /// `f` with a shell on this unit's target (true: this machine), in its working
    /// directory, within `task_deadline`.
    fn with_shell<R>(
        &mut self,
        task_deadline: Instant,
        f: impl FnOnce(&mut dyn crate::transfer::Shell, bool) -> R,
    ) -> R {
        match self.remote.as_mut() {
            None => {
                let mut shell = crate::transfer::Local {
                    dir: self.dir.clone(),
                    deadline: task_deadline,
                };
                f(&mut shell, true)
            }
            Some(r) => {
                let mut shell = RemoteShell {
                    session: r,
                    dir: self.remote_dir.clone(),
                    env: self.env[..self.builtins].to_vec(),
                    limits: Limits {
                        command: None,
                        task_deadline,
                    },
                };
                f(&mut shell, false)
            }
        }
    }

    /// One attempt of a file step (src/transfer), here or on the unit's host: how it
    /// ended, and its report when it succeeded.
    fn file_step(
        &mut self,
        run: &RunInfo,
        cmd: &crate::config::Command,
        limits: Limits,
        progress: &mut dyn Progress,
        moved: &(dyn Fn(u64, u64) + Sync),
    ) -> (ExecResult, Option<crate::transfer::Report>) {
        let Some(step) = cmd.file.as_deref() else {
            return (ExecResult::SpawnError(Cause::new("not a file step")), None);
        };
        let request = match self.file_request(run, step, None) {
            Ok(mut r) => {
                r.progress = Some(moved);
                r
            }
            Err(why) => return (ExecResult::SpawnError(Cause::new(why)), None),
        };
        let deadline = limits.deadline();
        let outcome = match self.remote.as_mut() {
            None => {
                let mut shell = crate::transfer::Local {
                    dir: self.dir.clone(),
                    deadline,
                };
                crate::transfer::run(&request, &mut shell)
            }
            Some(r) => {
                let mut shell = RemoteShell {
                    session: r,
                    dir: self.remote_dir.clone(),
                    env: self.env[..self.builtins].to_vec(),
                    limits,
                };
                crate::transfer::run(&request, &mut shell)
            }
        };
        match outcome {
            Ok(report) => (ExecResult::Exited(0), Some(report)),
            Err(failed) => {
                if !failed.output.is_empty() {
                    progress.output(crate::exec::Stream::Stderr, &failed.output);
                }
                let result = match failed.cause {
                    crate::transfer::Stop::TimedOut => ExecResult::TimedOut,
                    crate::transfer::Stop::Cancelled => ExecResult::Cancelled,
                    crate::transfer::Stop::Failed(c) => ExecResult::SpawnError(c),
                    crate::transfer::Stop::Connect(c) => ExecResult::ConnectError(c),
                };
                (result, None)
            }
        }
    }

    /// The step with its paths rendered for this unit, and a template's file rendered.
    fn file_request<'s>(
        &self,
        run: &'s RunInfo,
        step: &'s crate::config::model::FileStep,
        diff: Option<bool>,
    ) -> Result<crate::transfer::Request<'s>, String> {
        let render = |what: &str, t: &crate::config::Spanned<crate::config::template::Template>| {
            t.value
                .render(&self.vars)
                .map_err(|e| format!("cannot render {what} `{}`: {}", t.value.source(), e.message))
        };
        let body = match &step.body {
            Some(file) => {
                let mut vars = self.vars.clone();
                vars.layer(&step.vars);
                let text = file.template.value.render(&vars).map_err(|e| {
                    format!(
                        "cannot render template `{}`: {}",
                        file.shown.display(),
                        e.message
                    )
                })?;
                Some(text.into_bytes())
            }
            None => None,
        };
        Ok(crate::transfer::Request {
            step,
            from: render("the source", &step.from)?,
            to: render("`to`", &step.to)?,
            validate: match &step.validate {
                Some(v) => Some(render("`validate`", v)?),
                None => None,
            },
            body,
            secret: step
                .body
                .as_ref()
                .is_some_and(|b| b.template.value.may_hold_secret()),
            root: &run.root,
            dry_run: diff.is_some(),
            diff: diff.unwrap_or(false),
            progress: None,
        })
    }
}

/// What the file steps of `task` would change on `target`, looked at read-only (a dry
/// run): each step's line, and its report or why the target could not be read.
pub fn preview(
    run: &RunInfo,
    config_env: &[(
        String,
        crate::config::Spanned<crate::config::template::Template>,
    )],
    task: &Task,
    host: &str,
    target: &Target,
    diff: bool,
) -> Vec<(String, Result<crate::transfer::Report, String>)> {
    let mut place = match place(run, config_env, task, host, target) {
        Ok(p) => p,
        Err(f) => return vec![(task.name.clone(), Err(crate::output::describe::failure(&f)))],
    };
    let limits = Limits {
        command: None,
        task_deadline: Instant::now() + PREVIEW_LIMIT,
    };
    let mut out = Vec::new();
    for cmd in &task.commands {
        let Some(step) = cmd.file.as_deref() else {
            continue;
        };
        let line = cmd
            .template
            .value
            .render(&place.vars)
            .unwrap_or_else(|_| cmd.text.clone());
        let seen = place.file_request(run, step, Some(diff)).and_then(|req| {
            let result = match place.remote.as_mut() {
                None => crate::transfer::run(
                    &req,
                    &mut crate::transfer::Local {
                        dir: place.dir.clone(),
                        deadline: limits.task_deadline,
                    },
                ),
                Some(r) => crate::transfer::run(
                    &req,
                    &mut RemoteShell {
                        session: r,
                        dir: place.remote_dir.clone(),
                        env: place.env[..place.builtins].to_vec(),
                        limits,
                    },
                ),
            };
            result.map_err(|f| match f.cause {
                crate::transfer::Stop::Failed(c) | crate::transfer::Stop::Connect(c) => c.what,
                crate::transfer::Stop::TimedOut => {
                    format!("no answer within {}s", PREVIEW_LIMIT.as_secs())
                }
                crate::transfer::Stop::Cancelled => "interrupted".into(),
            })
        });
        out.push((line, seen));
    }
    if let Some(r) = place.remote.as_mut() {
        r.release();
    }
    out
}

/// How long a dry run waits for one host's file steps to be looked at.
const PREVIEW_LIMIT: Duration = Duration::from_secs(120);

/// A file step's scripts on the unit's host, through its session.
struct RemoteShell<'p, 'a> {
    session: &'p mut RemoteSession<'a>,
    dir: Option<String>,
    env: Vec<(String, String)>,
    limits: Limits,
}

impl crate::transfer::Shell for RemoteShell<'_, '_> {
    fn run(
        &mut self,
        script: &str,
        args: &[String],
        sudo: bool,
        input: &mut (dyn std::io::Read + Send),
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<crate::transfer::Ran, crate::transfer::Stop> {
        use crate::transfer::Stop;
        let spec = remote::RemoteCommand {
            line: crate::transfer::shell::command_line(script, args),
            dir: self.dir.clone(),
            env: self.env.clone(),
            private_env: Vec::new(),
            sudo: sudo.then_some(None),
            pty: false,
            secret: false,
        };
        let mut sink = Sink {
            out,
            err: Vec::new(),
            failed: None,
        };
        let result = self
            .session
            .exec_streaming(&spec, input, self.limits, &mut sink);
        if let Some(e) = sink.failed {
            return Err(Stop::Failed(Cause::new(format!(
                "cannot keep what the host sent: {}",
                crate::error::io_reason(&e)
            ))));
        }
        match result {
            ExecResult::Exited(code) => Ok(crate::transfer::Ran {
                code,
                stderr: sink.err,
            }),
            ExecResult::Signaled(s) => Ok(crate::transfer::Ran {
                code: 128 + s,
                stderr: sink.err,
            }),
            ExecResult::TimedOut => Err(Stop::TimedOut),
            ExecResult::Cancelled => Err(Stop::Cancelled),
            ExecResult::SpawnError(c) => Err(Stop::Failed(c)),
            ExecResult::ConnectError(c) | ExecResult::ConnectTimedOut(c) => Err(Stop::Connect(c)),
        }
    }
}

/// Output of a file step's script: stdout to its writer, stderr kept (1 MiB at most).
struct Sink<'o> {
    out: &'o mut (dyn std::io::Write + Send),
    err: Vec<u8>,
    failed: Option<std::io::Error>,
}

impl Progress for Sink<'_> {
    fn output(&mut self, stream: crate::exec::Stream, data: &[u8]) {
        match stream {
            crate::exec::Stream::Stdout => {
                if self.failed.is_none() {
                    if let Err(e) = self.out.write_all(data) {
                        self.failed = Some(e);
                    }
                }
            }
            crate::exec::Stream::Stderr => {
                let room = (1usize << 20).saturating_sub(self.err.len());
                self.err.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
    }

    fn spawned(&mut self, _pgid: u32, _remote: bool) {}
}

/// How a line runs: sudo, a terminal, whether it may hold a secret, whether it is one
/// of nexus's own checks.
struct How {
    sudo: Option<Option<String>>,
    pty: bool,
    secret: bool,
    probe: bool,
}

fn connect_failed(e: ssh::connect::ConnectError) -> ExecResult {
    use ssh::connect::Stopped;
    match e.stopped {
        Some(Stopped::Cancelled) => ExecResult::Cancelled,
        None if crate::signals::cancelled() => ExecResult::Cancelled,
        Some(Stopped::Deadline) => ExecResult::ConnectTimedOut(Cause {
            what: format!(
                "connecting could not finish within the task's timeout: {}",
                e.reason
            ),
            help: e.suggestions,
        }),
        None => ExecResult::ConnectError(e.cause()),
    }
}

/// A unit's hold on one pooled SSH session, taken at its first command.
struct RemoteSession<'a> {
    pool: &'a ssh::pool::Pool,
    target: &'a ssh::target::SshTarget,
    conn: Option<ssh::connect::Conn>,
}

impl RemoteSession<'_> {
    fn exec(
        &mut self,
        cmd: &remote::RemoteCommand,
        limits: Limits,
        progress: &mut dyn Progress,
    ) -> ExecResult {
        self.run(cmd, None, limits, progress)
    }

    fn exec_streaming(
        &mut self,
        cmd: &remote::RemoteCommand,
        input: &mut dyn std::io::Read,
        limits: Limits,
        progress: &mut dyn Progress,
    ) -> ExecResult {
        self.run(cmd, Some(input), limits, progress)
    }

    /// Run `cmd` (with `input` streamed to it, if any) on the session, connecting first
    /// if the unit has none yet; a session left unusable is discarded.
    fn run(
        &mut self,
        cmd: &remote::RemoteCommand,
        input: Option<&mut dyn std::io::Read>,
        limits: Limits,
        progress: &mut dyn Progress,
    ) -> ExecResult {
        if self.conn.is_none() {
            // Connecting counts against the task's timeout, not the command's.
            match self.pool.checkout(self.target, limits.task_deadline) {
                Ok(c) => self.conn = Some(c),
                Err(e) => return connect_failed(e),
            }
        }
        let Some(conn) = self.conn.as_ref() else {
            return ExecResult::ConnectError(Cause::new("no session"));
        };
        // The command's own timeout starts once the session is ready: connecting has
        // connect_timeout (and its attempts); the task deadline still covers both.
        let (result, reusable) = match input {
            Some(input) => remote::exec_streaming(conn, cmd, input, limits.deadline(), progress),
            None => remote::exec(conn, cmd, limits.deadline(), progress),
        };
        if !reusable {
            if let Some(c) = self.conn.take() {
                self.pool.discard(self.target, c);
            }
        }
        result
    }

    fn release(&mut self) {
        if let Some(c) = self.conn.take() {
            self.pool.checkin(self.target, c);
        }
    }
}
