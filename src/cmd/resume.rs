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
use crate::state::{self, resume as policy};

pub fn resume(g: &Global, args: &ResumeArgs) -> Result<i32, Error> {
    let home = state::home();
    let path = match &args.run_id {
        Some(id) => state::checked_journal_path(&home, id).map_err(|e| {
            e.with_help("`nexus runs --interrupted` lists the runs that can be resumed")
        })?,
        None => {
            let (runs, _) = history::history(&home)?;
            match runs.into_iter().find(|r| r.state == RunState::Interrupted) {
                Some(r) => r.path,
                None => {
                    return Err(Error::usage("no interrupted run to resume")
                        .with_help("`nexus runs` lists the recent runs"))
                }
            }
        }
    };
    resume_run(g, &args.exec, &path, args.force)
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

/// Continue the run journaled at `path`.
pub fn resume_run(g: &Global, exec: &Exec, path: &Path, force: bool) -> Result<i32, Error> {
    let (summary, read) = super::runs::read_for_resume(path)?;
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
    let mut p = prepare(config, &header.targets, None, &RunOverrides::default())?;
    p.info.run_id = header.run_id.clone();
    p.info.counter = header.counter;
    p.info.checkpoint = Some(policy::checkpoint(read.records()));
    if summary.problem.is_some() {
        // Cut the bad tail so the journal stays a valid prefix plus what follows.
        journal::repair(path, read.valid_len).map_err(|e| state::unusable("repair", path, &e))?;
    }
    let journal = Journal::append_to(path, read.last_seq())
        .map_err(|e| state::unusable("append to", path, &e))?;
    super::run::execute(g, exec, p, journal)
}
