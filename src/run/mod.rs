//! A run: its identity (id, start time, git facts for placeholders), the checks that
//! must pass before any command starts, and the scheduler that drives the units.
//! Must not: parse flags or render output.

pub mod artifacts;
pub mod capture;
pub mod command;
pub mod event;
pub mod handlers;
pub mod lines;
pub mod recorder;
pub mod retry;
pub mod rollout;
pub mod scheduler;
pub mod unit;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant, SystemTime};

use crate::config::template::Context;
use crate::config::{Command, Config, Target, Task};
use crate::error::{Diagnostic, Error};
use crate::timefmt;
use event::LimitFrom;

/// Facts of one run shared by every unit.
pub struct RunInfo {
    pub run_id: String,
    pub started: SystemTime,
    pub timestamp: String,
    pub root: PathBuf,
    /// The project's commit and branch, when it is in a git repository.
    pub git: Option<crate::git::GitInfo>,
    pub jitter_seed: AtomicU64,
    /// SSH pool and resolved hosts, when the run has remote tasks.
    pub ssh: Option<crate::exec::ssh::SshContext>,
    /// Run number of these targets (`deploy #42`).
    pub counter: u64,
    /// What an interrupted run had done, when this run resumes it.
    pub checkpoint: Option<crate::state::resume::Checkpoint>,
    /// Hosts found unreachable by pre-flight (`run --force`): skipped in every task.
    pub unavailable: Vec<String>,
    /// The secret values this run uses, masked in everything it writes (the recorder,
    /// dry-run plans, errors). Empty when the run uses none.
    pub redactor: std::sync::Arc<crate::secrets::Redactor>,
    /// `[vars]` of the file.
    pub vars: Vec<(String, toml::Value)>,
    /// Variables of each host (its groups' and its own), by host label.
    pub host_vars: std::collections::HashMap<String, Vec<(String, toml::Value)>>,
    /// Task parameters bound from the command line (and defaults), by task name.
    pub args: crate::bind::Args,
    /// The secrets `secret("NAME")` reads (an object from name to value), when the run
    /// uses any.
    pub secrets: Option<minijinja::Value>,
    /// Limits of commands and tasks that set none of their own.
    pub timeouts: Timeouts,
    /// `[config] shell`, else `sh -c`: what local commands run under.
    pub shell: Vec<String>,
    /// Up-to-date checks: their state, `-B`. Off until the run names its project.
    pub uptodate: crate::uptodate::Store,
    /// Handlers notified and not yet run, of this project (src/run/handlers.rs).
    pub handlers: handlers::Pending,
    /// The artifacts this run staged, per (task, host), with their hashes: consumers get
    /// exactly these (src/run/artifacts.rs).
    pub artifacts: artifacts::Ledger,
}

/// Default limits of a run (docs/nexus-toml.md, "Timeouts"): none unless configured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// `run --timeout`, else `[config] timeout`.
    pub command: Option<Duration>,
    /// `command` came from `run --timeout`.
    pub from_flag: bool,
    /// `[config] task_timeout`.
    pub task: Option<Duration>,
}

/// A deadline that never comes (a century from now): for what has no limit.
pub fn no_deadline() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

impl RunInfo {
    pub fn new(root: &Path) -> RunInfo {
        let started = SystemTime::now();
        let nanos = started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let seed = nanos ^ (u64::from(std::process::id()) << 32);
        RunInfo {
            run_id: new_run_id(started, seed),
            started,
            timestamp: timefmt::rfc3339(started),
            root: root.to_path_buf(),
            git: None,
            jitter_seed: AtomicU64::new(seed | 1),
            ssh: None,
            counter: 0,
            checkpoint: None,
            unavailable: Vec::new(),
            redactor: Default::default(),
            vars: Vec::new(),
            host_vars: Default::default(),
            args: Default::default(),
            secrets: None,
            timeouts: Timeouts::default(),
            shell: default_shell(),
            uptodate: Default::default(),
            handlers: Default::default(),
            artifacts: Default::default(),
        }
    }

    /// What the templates of `task` on `host` are rendered with: the built-ins, `[vars]`,
    /// the task's parameters, the run's secrets.
    pub fn context(&self, task: &str, host: &str) -> Context {
        let mut c = Context::new();
        let (sha, branch) = self
            .git
            .as_ref()
            .map_or((String::new(), String::new()), |g| {
                (g.sha.clone(), g.branch.clone())
            });
        c.set("host", host)
            .set("task", task)
            .set("run_id", self.run_id.as_str())
            .set("timestamp", self.timestamp.as_str())
            .set("git_sha", sha)
            .set("git_branch", branch)
            .layer(&self.vars);
        if let Some(vars) = self.host_vars.get(host) {
            c.layer(vars);
        }
        for (name, value) in self.args.get(task).into_iter().flatten() {
            c.arg(name, value);
        }
        if let Some(s) = &self.secrets {
            c.secrets(s.clone());
        }
        c
    }

    /// What `config` sets for every run of it: default limits and the shell.
    pub fn configure(&mut self, config: &Config) {
        self.timeouts = Timeouts {
            command: config.settings.timeout,
            from_flag: false,
            task: config.settings.task_timeout,
        };
        self.shell = config.settings.shell.clone().unwrap_or_else(default_shell);
    }

    /// The limit of one attempt of `cmd`: its own, else the run's default.
    pub fn command_timeout(&self, cmd: &Command) -> Option<Duration> {
        cmd.timeout.or(self.timeouts.command)
    }

    /// Where `command_timeout` comes from.
    pub fn command_timeout_from(&self, cmd: &Command) -> LimitFrom {
        match (cmd.timeout, self.timeouts.from_flag) {
            (Some(_), _) => LimitFrom::Own,
            (None, true) => LimitFrom::Flag,
            (None, false) => LimitFrom::Config,
        }
    }

    /// The limit of `task` on one host: its own, else `[config] task_timeout`.
    pub fn task_timeout(&self, task: &Task) -> Option<Duration> {
        task.timeout.or(self.timeouts.task)
    }

    /// Where `task_timeout` comes from.
    pub fn task_timeout_from(&self, task: &Task) -> LimitFrom {
        if task.timeout.is_some() {
            LimitFrom::Own
        } else {
            LimitFrom::Config
        }
    }
}

/// `sh -c`: the shell of local commands unless `[config] shell` names another.
pub fn default_shell() -> Vec<String> {
    vec!["sh".to_string(), "-c".to_string()]
}

/// A sortable id: UTC time to the millisecond, then 4 hex digits against collisions.
pub fn new_run_id(t: SystemTime, seed: u64) -> String {
    let compact = timefmt::compact(t);
    format!("{compact}-{:04x}", (seed ^ (seed >> 17)) & 0xffff)
}

/// Everything that must hold before the first command: required env vars set, git facts
/// available when used. All problems are reported together.
pub fn preconditions(config: &Config, tasks: &[usize], run: &mut RunInfo) -> Result<(), Error> {
    let mut diags: Vec<Diagnostic> = config.unset_env(tasks);
    diags.extend(config.unknown_secrets(tasks));
    let uses_git = config
        .run_templates(tasks)
        .iter()
        .any(|(_, tpl)| tpl.value.uses("git_sha") || tpl.value.uses("git_branch"));
    match crate::git::head(&config.root) {
        Ok(g) => run.git = g,
        Err(msg) if uses_git => diags.push(Diagnostic::new(msg).help(
            "{{ git_sha }} and {{ git_branch }} need the project root to be in a git repository",
        )),
        Err(msg) => log::debug!("git: {msg}; NEXUS_GIT_SHA and NEXUS_GIT_BRANCH not set"),
    }
    if uses_git && run.git.is_none() && diags.is_empty() {
        diags.push(
            Diagnostic::new(format!(
                "{} is not in a git repository",
                config.root.display()
            ))
            .help("{{ git_sha }} and {{ git_branch }} need the project root to be in a git repository"),
        );
    }
    if diags.is_empty() {
        Ok(())
    } else {
        let mut e = Error::validation(diags);
        e.title = "Cannot start the run".to_string();
        Err(e)
    }
}

/// The targets a task runs on in this run: `-H` replaces the hosts of remote tasks.
/// A `run_once` task keeps the first of them.
pub fn effective_targets(task: &Task, hosts_override: Option<&[Target]>) -> Vec<Target> {
    let mut targets = match hosts_override {
        Some(hosts) if task.targets.iter().any(|t| matches!(t, Target::Remote(_))) => {
            hosts.to_vec()
        }
        _ => task.targets.clone(),
    };
    if task.run_once {
        targets.truncate(1);
    }
    targets
}

/// Descriptors one SSH connection holds while it connects: the socket, the copy the
/// handshake reads through, the watchdog's copy.
const FDS_PER_CONNECTION: u64 = 3;
/// Descriptors kept for everything else: the journal, pipes of local commands, logs.
const FDS_RESERVED: u64 = 64;

/// Raise the open-file limit to its hard limit; when the run may open more connections at
/// once than that allows, open fewer (the pool closes idle ones to make room) and say so.
/// Returns the `max_connections` to use.
fn check_descriptors(settings: &crate::config::Settings, hosts: usize) -> usize {
    let (soft, hard) = crate::sys::raise_nofile();
    let wanted = (hosts.saturating_mul(settings.pool_size)).min(settings.max_connections);
    let needed = wanted as u64 * FDS_PER_CONNECTION + FDS_RESERVED;
    log::debug!("descriptors: limit {soft} (hard {hard}); this run may use {needed}");
    if needed <= soft {
        return settings.max_connections;
    }
    let fits = (soft.saturating_sub(FDS_RESERVED) / FDS_PER_CONNECTION).max(1) as usize;
    crate::error::warn(
        format_args!(
            "this run may open {wanted} SSH connections at once, but nexus may only open {soft} files (hard limit {hard}): it opens at most {fits} at a time"
        ),
        &[format!(
            "raise the limit to {needed} (`ulimit -n {needed}` as root, or LimitNOFILE for a service) to reach more hosts at once"
        )],
    );
    fits
}

/// Resolve the SSH settings of every remote host the run will touch.
pub fn prepare_ssh(
    config: &Config,
    tasks: &[usize],
    hosts_override: Option<&[Target]>,
    overrides: &crate::exec::ssh::target::RunOverrides,
    run: &mut RunInfo,
) -> Result<(), Error> {
    let mut hosts = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &i in tasks {
        if config.tasks[i].commands.is_empty() {
            continue;
        }
        for t in effective_targets(&config.tasks[i], hosts_override) {
            if let Target::Remote(h) = t {
                if seen.insert(h.clone()) {
                    hosts.push(h);
                }
            }
        }
    }
    if hosts.is_empty() {
        return Ok(());
    }
    let max_connections = check_descriptors(&config.settings, hosts.len());
    let settings = crate::config::Settings {
        max_connections,
        ..config.settings.clone()
    };
    let ctx = crate::exec::ssh::SshContext::prepare(&hosts, &settings, overrides)
        .map_err(|(e, help)| Error::usage(e).with_help(help))?;
    run.ssh = Some(ctx);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(src: &str) -> Config {
        crate::config::parse(Path::new("nexus.toml"), Path::new("."), src).unwrap()
    }

    /// Issue 11: a command with no timeout configured anywhere has none (it was killed
    /// after 60 s, a task after 300 s).
    #[test]
    fn no_timeout_is_applied_unless_configured() {
        let c = config("[tasks.build]\nrun = \"cargo build\"\n");
        let (task, cmd) = (&c.tasks[0], &c.tasks[0].commands[0]);
        assert_eq!((task.timeout, cmd.timeout), (None, None));
        assert_eq!((c.settings.timeout, c.settings.task_timeout), (None, None));
        let mut run = RunInfo::new(Path::new("."));
        run.configure(&c);
        assert_eq!(run.command_timeout(cmd), None);
        assert_eq!(run.task_timeout(task), None);
        let limits = command::Limits {
            command: run.command_timeout(cmd),
            task_deadline: no_deadline(),
        };
        let year = Duration::from_secs(365 * 24 * 3600);
        assert!(limits.deadline() > Instant::now() + 50 * year);
    }

    #[test]
    fn a_steps_own_timeout_wins_over_the_defaults() {
        let c = config(
            "[config]\ntimeout = \"1s\"\ntask_timeout = \"1m\"\n[tasks.a]\nrun = [\"x\", { cmd = \"y\", timeout = \"5s\" }]\n[tasks.b]\ntimeout = \"2m\"\nrun = \"z\"\n",
        );
        let mut run = RunInfo::new(Path::new("."));
        run.configure(&c);
        let (a, b) = (&c.tasks[0], &c.tasks[1]);
        let secs = Duration::from_secs;
        assert_eq!(run.command_timeout(&a.commands[0]), Some(secs(1)));
        assert_eq!(run.command_timeout(&a.commands[1]), Some(secs(5)));
        assert_eq!(run.task_timeout(a), Some(secs(60)));
        assert_eq!(run.task_timeout(b), Some(secs(120)));
        assert_eq!(run.command_timeout_from(&a.commands[0]), LimitFrom::Config);
        // `run --timeout` replaces [config] timeout, not a step's own.
        run.timeouts.command = Some(secs(3));
        run.timeouts.from_flag = true;
        assert_eq!(run.command_timeout(&a.commands[0]), Some(secs(3)));
        assert_eq!(run.command_timeout_from(&a.commands[0]), LimitFrom::Flag);
        assert_eq!(run.command_timeout(&a.commands[1]), Some(secs(5)));
    }
}
