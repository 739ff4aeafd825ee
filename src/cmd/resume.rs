//! `nexus resume [RUN_ID]`: continue an interrupted run from its journal. Finished
//! (task, host) pairs are not run again; an unfinished host starts at the first command
//! it had not completed. A changed nexus.toml is refused unless `--force`.

use std::path::Path;

use super::{load, load_path, prepare};
use crate::cli::args::{Exec, Global, ResumeArgs};
use crate::config;
use crate::error::Error;
use crate::exec::ssh::target::RunOverrides;
use crate::state::history::{self, RunState, Summary};
use crate::state::journal::{self, Journal};
use crate::state::record::RunHeader;
use crate::state::{self, resume as policy, survivors};

pub fn resume(g: &Global, args: &ResumeArgs) -> Result<i32, Error> {
    let home = state::home();
    let path = match &args.run_id {
        Some(id) => {
            let path = state::checked_journal_path(&home, id).map_err(|e| {
                e.with_help("`nexus runs --interrupted` lists the runs that can be resumed")
            })?;
            refuse_other_project(g, &path)?;
            path
        }
        None => {
            let project = state::project_of(&super::config_path(g)?);
            let (runs, _) = history::history(&home, state::Scope::Project(&project))?;
            match runs.into_iter().find(|r| r.state == RunState::Interrupted) {
                Some(r) => r.path,
                None => {
                    return Err(Error::usage("no interrupted run to resume in this project")
                        .with_help("`nexus runs` lists the project's recent runs; `nexus runs --all` every project's"))
                }
            }
        }
    };
    resume_run(g, &args.exec, &path, args.force)
}

/// A run of another project is resumed from there (its commands, directories and state
/// belong to it). Outside every project, a run id is enough.
fn refuse_other_project(g: &Global, path: &Path) -> Result<(), Error> {
    let Ok(here) = super::config_path(g).map(|p| state::project_of(&p)) else {
        return Ok(());
    };
    let Ok(s) = history::peek(path) else {
        // Unreadable: resume_run reports why.
        return Ok(());
    };
    let theirs = s.header.project();
    if theirs == here {
        return Ok(());
    }
    Err(Error::usage(format!(
        "run {} belongs to another project: {theirs}",
        s.id()
    ))
    .with_help(format!(
        "resume it there: cd {} && nexus resume {}",
        crate::exec::shell_quote(theirs),
        s.id()
    )))
}

/// Refuse runs that are not interrupted.
fn check_state(s: &Summary) -> Result<(), Error> {
    match s.state {
        RunState::Interrupted => Ok(()),
        RunState::Running => Err(Error::usage(format!("run {} is still running", s.id()))
            .with_help("wait for it to finish, or stop it first")),
        other => Err(Error::usage(format!(
            "run {} was not interrupted (it finished: {})",
            s.id(),
            other.name()
        ))
        .with_help("start a new run with `nexus run`")),
    }
}

/// The config the run was started from (or the one -c names).
fn config_of(g: &Global, header: &RunHeader) -> Result<config::Config, Error> {
    if g.config.is_some() {
        return load(g);
    }
    let p = Path::new(&header.config);
    if p.is_file() {
        load_path(p)
    } else {
        load(g)
    }
}

/// Continue the run journaled at `path`: take the run (one process at a time), check
/// what it was, that nothing of the killed process still runs, then run the rest.
pub fn resume_run(g: &Global, exec: &Exec, path: &Path, force: bool) -> Result<i32, Error> {
    let owned = journal::Owned::take(path)
        .map_err(|e| {
            Error::usage(format!(
                "cannot resume from {}: {}",
                path.display(),
                crate::error::io_reason(&e)
            ))
            .with_help("the journal cannot be read; start a new run with `nexus run`")
        })?
        .ok_or_else(|| taken_elsewhere(path))?;
    let (summary, read) = history::summarize_owned(path).map_err(|why| {
        Error::usage(format!("cannot resume from {}: {why}", path.display()))
            .with_help("the journal has no usable start record; start a new run with `nexus run`")
    })?;
    check_state(&summary)?;
    if let Some((line, reason)) = &summary.problem {
        crate::error::warn(
            format_args!(
                "{}:{line}: {reason}; resuming from the {} valid records before it",
                path.display(),
                read.entries.len()
            ),
            &[],
        );
    }
    let header = &summary.header;
    let config = config_of(g, header)?;
    if let Some(detail) = policy::config_changes(header, &config).filter(|_| !force) {
        return Err(Error::usage(format!(
            "{} changed since run {} started; {detail}",
            config::display_path(&config.path).display(),
            header.run_id
        ))
        .with_help(format!(
            "resume anyway with `nexus resume {} --force`, or start fresh with `nexus run`",
            header.run_id
        )));
    }
    let mut p = prepare(
        config,
        &header.targets,
        None,
        &RunOverrides::default(),
        exec.keyfile.as_deref(),
    )?;
    still_running(&p, &header.run_id, survivors::unfinished(read.records()))?;
    p.info.run_id = header.run_id.clone();
    p.info.args = header.args.clone();
    p.info.counter = header.counter;
    let mut checkpoint = policy::checkpoint(read.records());
    announce(&p, header, &checkpoint);
    // What finished producers staged: consumers of this resume get exactly that.
    p.info.artifacts =
        crate::run::artifacts::Ledger::from_journal(std::mem::take(&mut checkpoint.artifacts));
    p.info.checkpoint = Some(checkpoint);
    p.info.uptodate = crate::uptodate::Store::new(
        &state::home(),
        &state::project_of(&p.config.path),
        false,
        false,
    );
    if summary.problem.is_some() {
        // Cut the bad tail so the journal stays a valid prefix plus what follows.
        owned
            .repair(read.valid_len)
            .map_err(|e| state::unusable("repair", path, &e))?;
    }
    let journal = Journal::append_to(owned, read.last_seq())
        .map_err(|e| state::unusable("append to", path, &e))?;
    super::run::execute(g, exec, p, journal)
}

/// Another process owns the run: it is going (a run, or another resume of it).
fn taken_elsewhere(path: &Path) -> Error {
    let id = state::journal_name(path).map_or("", |(id, _)| id);
    Error::usage(format!(
        "run {id} is going on in another nexus process (it holds the run's journal)"
    ))
    .with_help("wait for it to finish; `nexus runs` shows the run as running until then")
}

/// Refuse to resume while commands the killed process started still run: they would run
/// twice at once.
fn still_running(
    p: &super::Prepared,
    run_id: &str,
    unfinished: Vec<survivors::Unfinished>,
) -> Result<(), Error> {
    if unfinished.is_empty() {
        return Ok(());
    }
    let mut found: Vec<String> = Vec::new();
    let mut help: Vec<String> = Vec::new();
    let local = survivors::local(run_id);
    for u in unfinished.iter().filter(|u| !u.remote) {
        if local.iter().any(|f| f.pgid == u.pgid) {
            found.push(format!(
                "task `{}` on local: `{}` (process group {})",
                u.task, u.command, u.pgid
            ));
            help.push(format!("kill -- -{}", u.pgid));
        }
    }
    for u in unfinished.iter().filter(|u| u.remote) {
        if !remote_survivors(p, run_id, &u.host).is_empty() {
            found.push(format!(
                "task `{}` on {}: `{}` (process group {} there)",
                u.task, u.host, u.command, u.pgid
            ));
            help.push(format!("on {}: kill -- -{}", u.host, u.pgid));
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    log::debug!(
        "resume: {} command(s) of run {run_id} still running",
        found.len()
    );
    let mut d = crate::error::Diagnostic::new("");
    for f in &found {
        d = d.fact("Still running", f);
    }
    d = d.help(format!(
        "wait for them to finish, or stop them ({}); then run `nexus resume {run_id}` again",
        help.join("; ")
    ));
    Err(Error {
        title: format!(
            "run {run_id} cannot be resumed yet: commands the interrupted nexus started are still running"
        ),
        diagnostics: vec![d],
        exit_code: crate::error::exit::USAGE,
    })
}

/// Processes of `run_id` on the host labelled `host` (empty when it cannot be asked).
fn remote_survivors(p: &super::Prepared, run_id: &str, host: &str) -> Vec<String> {
    let Some((pool, target)) = p.info.ssh.as_ref().and_then(|s| s.by_label(host)) else {
        return Vec::new();
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let Ok(conn) = pool.checkout(target, deadline) else {
        return Vec::new();
    };
    let cmd = crate::exec::ssh::remote::RemoteCommand {
        line: survivors::remote_probe(run_id),
        dir: None,
        env: vec![],
        private_env: vec![],
        sudo: None,
        pty: false,
        secret: false,
    };
    let mut got = crate::exec::Collected::default();
    let (_, reusable) = crate::exec::ssh::remote::exec(&conn, &cmd, deadline, &mut got);
    if reusable {
        pool.checkin(target, conn);
    } else {
        pool.discard(target, conn);
    }
    String::from_utf8_lossy(&got.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// Say what the resume skips and what it runs (stderr), before it starts:
/// `resuming run ID (deploy #3): skipping build, test (finished), roll on web1; running
/// roll (the rest), notify`.
fn announce(p: &super::Prepared, header: &RunHeader, cp: &policy::Checkpoint) {
    let (mut done, mut skip, mut run) = (Vec::new(), Vec::new(), Vec::new());
    for &t in &p.plan.tasks {
        let name = p.config.tasks[t].name.as_str();
        if cp.done_tasks.contains(name) {
            done.push(name);
            continue;
        }
        let mut hosts: Vec<&str> = cp
            .done_units
            .iter()
            .filter(|(t, _)| t == name)
            .map(|(_, h)| h.as_str())
            .collect();
        hosts.sort_unstable();
        if !hosts.is_empty() {
            skip.push(format!("{name} on {}", hosts.join(", ")));
        }
        let mut partial: Vec<(&str, usize)> = cp
            .next_command
            .iter()
            .filter(|((t, _), &n)| t == name && n > 0)
            .map(|((_, h), &n)| (h.as_str(), n))
            .collect();
        partial.sort_unstable();
        for (h, n) in &partial {
            let s = if *n == 1 { "" } else { "s" };
            skip.push(format!("{n} command{s} of {name} on {h}"));
        }
        if hosts.is_empty() && partial.is_empty() {
            run.push(name.to_string());
        } else {
            run.push(format!("{name} (the rest)"));
        }
    }
    if !done.is_empty() {
        skip.insert(0, format!("{} (finished)", done.join(", ")));
    }
    let skipping = if skip.is_empty() {
        "nothing had finished".to_string()
    } else {
        format!("skipping {}", skip.join(", "))
    };
    let running = if run.is_empty() {
        String::new()
    } else {
        format!("; running {}", run.join(", "))
    };
    crate::error::note(format_args!(
        "resuming run {} ({} #{}): {skipping}{running}",
        header.run_id,
        state::target_key(&header.targets),
        header.counter
    ));
}
