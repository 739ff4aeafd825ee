//! Typed arguments: the raw parse (`Raw`: a command, positionals and flag values) becomes
//! one typed value per command, with every flag's value checked and every combination
//! that makes no sense refused here — before any file is read or host resolved.
//! Must not: read nexus.toml, touch the state directory or the network.

use std::path::PathBuf;
use std::time::Duration;

use super::Raw;
use crate::error::{did_you_mean, Error};
use crate::output::{Format, Mode};

/// Flags every command takes.
#[derive(Debug, Clone, Default)]
pub struct Global {
    /// `-c/--config`.
    pub config: Option<PathBuf>,
    /// `--plain`.
    pub plain: bool,
    /// `--log-level`, as given.
    pub log_level: Option<String>,
    /// `--log-format json`.
    pub log_json: bool,
}

/// How a run shows itself (run and resume).
#[derive(Debug, Clone, Copy)]
pub struct Show {
    pub format: Format,
    /// `--output` or `-q`; None: `[config] output`, else stream.
    pub mode: Option<Mode>,
    /// `-v`: echo each command.
    pub verbose: bool,
}

/// What `run` and `resume` share.
#[derive(Debug, Clone)]
pub struct Exec {
    pub show: Show,
    /// `--keyfile`: master key file of the secret store.
    pub keyfile: Option<PathBuf>,
    pub continue_on_error: bool,
    pub parallel_limit: Option<usize>,
    /// `--timeout`: limit of each command attempt that sets none (over `[config] timeout`).
    pub timeout: Option<Duration>,
}

/// `nexus run TASK...`.
#[derive(Debug, Clone)]
pub struct RunArgs {
    /// Task names, each followed by its arguments.
    pub targets: Vec<String>,
    /// The words after `--`: for the last task's variadic parameter.
    pub rest: Vec<String>,
    /// Given as `nexus TASK ...` (no command name): an unknown task may be a mistyped
    /// command.
    pub shorthand: bool,
    pub exec: Exec,
    pub dry_run: bool,
    /// `--diff` (with `--dry-run`): unified diffs of the files file steps would change.
    pub diff: bool,
    /// Skip hosts that fail pre-flight.
    pub force: bool,
    pub no_resume: bool,
    /// `-B/--always`: run tasks even when they are up to date.
    pub always: bool,
    /// `-H`: hosts or groups replacing every remote task's hosts.
    pub hosts: Option<String>,
    pub user: Option<String>,
    pub identity: Option<String>,
    /// Limits of the checks run by `--dry-run` and `--force`.
    pub checks: Checks,
}

/// Options of the pre-flight checks.
#[derive(Debug, Clone)]
pub struct Checks {
    pub skip_connectivity: bool,
    pub skip_auth: bool,
    pub skip_sudo: bool,
    pub skip_disk: bool,
    pub timeout: Duration,
    pub parallel: usize,
}

impl Default for Checks {
    fn default() -> Checks {
        Checks {
            skip_connectivity: false,
            skip_auth: false,
            skip_sudo: false,
            skip_disk: false,
            timeout: Duration::from_secs(5),
            parallel: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreflightFormat {
    Text,
    Json,
    /// Failures only.
    Quiet,
}

/// `nexus preflight TASK...`.
#[derive(Debug, Clone)]
pub struct PreflightArgs {
    pub targets: Vec<String>,
    pub hosts: Option<String>,
    pub checks: Checks,
    pub format: PreflightFormat,
    /// Exit 0 whatever the checks found.
    pub force: bool,
}

/// `nexus resume [RUN_ID]`.
#[derive(Debug, Clone)]
pub struct ResumeArgs {
    pub run_id: Option<String>,
    /// Resume even if nexus.toml changed.
    pub force: bool,
    pub exec: Exec,
}

#[derive(Debug, Clone)]
pub enum RunsArgs {
    List {
        interrupted: bool,
        json: bool,
        all: bool,
    },
    Show(String),
    Gc {
        keep: usize,
        all: bool,
    },
}

/// What `nexus secret` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretAction {
    Init,
    /// `--from-file PATH`, else stdin or a prompt.
    Set {
        name: String,
        from_file: Option<PathBuf>,
    },
    Get(String),
    List,
    Delete(String),
    /// `--new-keyfile PATH`, else a new passphrase.
    RotateKey {
        new_keyfile: Option<PathBuf>,
    },
}

/// `nexus secret ACTION [NAME]`.
#[derive(Debug, Clone)]
pub struct SecretArgs {
    pub action: SecretAction,
    /// `--keyfile PATH`.
    pub keyfile: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub enum Command {
    /// A bare `nexus` (with `run`'s flags, if any): the `default` task, else the list.
    Bare(RunArgs),
    /// `nexus help [COMMAND]`, `--help`.
    Help(Option<&'static str>),
    Version,
    Completions(&'static str),
    /// `nexus schema`: the JSON Schema of nexus.toml.
    Schema,
    /// `nexus man`: the manual page.
    Man,
    Init {
        force: bool,
    },
    Validate,
    List {
        names: bool,
        json: bool,
    },
    Run(RunArgs),
    Preflight(PreflightArgs),
    Resume(ResumeArgs),
    HostsResolve {
        host: String,
        /// `--ssh-config FILE`; Some(None) for `--ssh-config none`.
        ssh_config: Option<Option<PathBuf>>,
    },
    Runs(RunsArgs),
    Secret(SecretArgs),
}

/// A whole command line, typed and checked.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub global: Global,
    pub command: Command,
}

/// Check the raw parse and type it.
pub fn typed(raw: &Raw) -> Result<Invocation, Error> {
    let global = Global {
        config: raw.value("config").map(PathBuf::from),
        plain: raw.has("plain"),
        log_level: raw.value("log-level").map(str::to_string),
        log_json: raw.value("log-format") == Some("json"),
    };
    let command = command(raw)?;
    Ok(Invocation { global, command })
}

fn command(raw: &Raw) -> Result<Command, Error> {
    if raw.has("help") {
        let c = raw.command.filter(|c| *c != "help");
        return Ok(Command::Help(c));
    }
    let Some(name) = raw.command else {
        if raw.has("version") {
            return Ok(Command::Version);
        }
        return Ok(Command::Bare(run_args(raw)?));
    };
    Ok(match name {
        "help" => Command::Help(help_topic(raw)?),
        "version" => Command::Version,
        "completions" => Command::Completions(shell(&raw.positionals[0])?),
        "schema" => Command::Schema,
        "man" => Command::Man,
        "init" => Command::Init {
            force: raw.has("force"),
        },
        "validate" => Command::Validate,
        "list" => Command::List {
            names: raw.has("names"),
            json: format_json(raw, "list")?,
        },
        "run" => Command::Run(run_args(raw)?),
        "preflight" => Command::Preflight(preflight_args(raw)?),
        "resume" => Command::Resume(ResumeArgs {
            run_id: raw.positionals.first().cloned(),
            force: raw.has("force"),
            exec: exec_args(raw, "resume")?,
        }),
        "hosts" => hosts_args(raw)?,
        "runs" => Command::Runs(runs_args(raw)?),
        "secret" => Command::Secret(secret_args(raw)?),
        other => return Err(Error::usage(format!("unknown command `{other}`"))),
    })
}

fn help_topic(raw: &Raw) -> Result<Option<&'static str>, Error> {
    let Some(c) = raw.positionals.first() else {
        return Ok(None);
    };
    match super::flags::command(c) {
        Some(def) => Ok(Some(def.name)),
        None => {
            let names = super::flags::COMMANDS.iter().map(|c| c.name);
            let mut e = Error::usage(format!("unknown command `{c}`"));
            if let Some(h) = did_you_mean(c, names) {
                e = e.with_help(h);
            }
            Err(e)
        }
    }
}

fn shell(name: &str) -> Result<&'static str, Error> {
    let shells = super::help::SHELLS;
    match shells.iter().find(|s| **s == name) {
        Some(s) => Ok(s),
        None => {
            let h = did_you_mean(name, shells.iter().copied())
                .unwrap_or_else(|| format!("choose one of: {}", shells.join(", ")));
            Err(Error::usage(format!("no completions for shell `{name}`")).with_help(h))
        }
    }
}

/// `--format json` for commands where json is the only other choice than text.
fn format_json(raw: &Raw, command: &str) -> Result<bool, Error> {
    match raw.value("format") {
        Some("quiet") => Err(Error::usage(format!(
            "--format quiet is for `nexus preflight`, not `nexus {command}`"
        ))
        .with_help("choose --format text or --format json")),
        other => Ok(other == Some("json")),
    }
}

fn exec_args(raw: &Raw, command: &str) -> Result<Exec, Error> {
    let json = match raw.value("format") {
        Some("quiet") => {
            return Err(Error::usage(format!(
                "--format quiet is for `nexus preflight`, not `nexus {command}`"
            ))
            .with_help("use -q for one line per task"))
        }
        other => other == Some("json"),
    };
    if raw.has("quiet") && raw.has("verbose") {
        return Err(
            Error::usage("-q/--quiet and -v/--verbose cannot be used together").with_help(
                "choose one: -q shows no command output but for failures, -v echoes every command",
            ),
        );
    }
    let output = raw.value("output").and_then(Mode::parse);
    if raw.has("quiet") && output.is_some_and(|m| m != Mode::Quiet) {
        return Err(
            Error::usage("-q/--quiet and --output cannot be used together")
                .with_help("-q is --output quiet"),
        );
    }
    let mode = if raw.has("quiet") {
        Some(Mode::Quiet)
    } else {
        output
    };
    Ok(Exec {
        show: Show {
            format: if json { Format::Json } else { Format::Text },
            mode,
            verbose: raw.has("verbose"),
        },
        continue_on_error: raw.has("continue-on-error"),
        parallel_limit: raw.count("parallel-limit")?,
        keyfile: raw.value("keyfile").map(PathBuf::from),
        timeout: timeout_flag(raw)?,
    })
}

/// `--timeout DURATION`: more than zero.
fn timeout_flag(raw: &Raw) -> Result<Option<Duration>, Error> {
    let Some(t) = raw.value("timeout") else {
        return Ok(None);
    };
    let timeout = crate::config::duration::parse(t).map_err(|m| {
        Error::usage(format!("--timeout: {m}")).with_help("for example: --timeout 5s")
    })?;
    if timeout.is_zero() {
        return Err(Error::usage("--timeout must be greater than zero")
            .with_help("for example: --timeout 5s"));
    }
    Ok(Some(timeout))
}

fn run_args(raw: &Raw) -> Result<RunArgs, Error> {
    let user = raw.value("user").map(str::to_string);
    if user.as_deref() == Some("") {
        return Err(
            Error::usage("-u/--user needs a user name, got an empty string")
                .with_help("for example: -u deploy"),
        );
    }
    let identity = raw.value("identity").map(str::to_string);
    if identity.as_deref() == Some("") {
        return Err(
            Error::usage("-i/--identity needs a key file, got an empty string")
                .with_help("for example: -i ~/.ssh/deploy_key"),
        );
    }
    Ok(RunArgs {
        targets: raw.positionals.clone(),
        rest: raw.rest.clone(),
        shorthand: raw.shorthand,
        exec: exec_args(raw, "run")?,
        dry_run: raw.has("dry-run"),
        diff: raw.has("diff"),
        force: raw.has("force"),
        no_resume: raw.has("no-resume"),
        always: raw.has("always"),
        hosts: raw.value("hosts").map(str::to_string),
        user,
        identity,
        checks: Checks::default(),
    })
}

fn checks(raw: &Raw) -> Result<Checks, Error> {
    let timeout = timeout_flag(raw)?.unwrap_or(Duration::from_secs(5));
    Ok(Checks {
        skip_connectivity: raw.has("skip-connectivity"),
        skip_auth: raw.has("skip-auth"),
        skip_sudo: raw.has("skip-sudo-check"),
        skip_disk: raw.has("skip-disk-check"),
        timeout,
        parallel: raw.count("parallel")?.unwrap_or(10),
    })
}

fn preflight_args(raw: &Raw) -> Result<PreflightArgs, Error> {
    Ok(PreflightArgs {
        targets: raw.positionals.clone(),
        hosts: raw.value("hosts").map(str::to_string),
        checks: checks(raw)?,
        format: match raw.value("format") {
            Some("json") => PreflightFormat::Json,
            Some("quiet") => PreflightFormat::Quiet,
            _ => PreflightFormat::Text,
        },
        force: raw.has("force"),
    })
}

fn hosts_args(raw: &Raw) -> Result<Command, Error> {
    let sub = &raw.positionals[0];
    if sub != "resolve" {
        let mut e = Error::usage(format!("unknown hosts subcommand `{sub}`"));
        if let Some(h) = did_you_mean(sub, ["resolve"]) {
            e = e.with_help(h);
        }
        return Err(e.with_help("usage: nexus hosts resolve HOST"));
    }
    let ssh_config = raw
        .value("ssh-config")
        .map(|p| (p != "none").then(|| PathBuf::from(p)));
    Ok(Command::HostsResolve {
        host: raw.positionals[1].clone(),
        ssh_config,
    })
}

fn runs_args(raw: &Raw) -> Result<RunsArgs, Error> {
    let sub = raw.positionals.first().map(String::as_str);
    if raw.has("keep") && sub != Some("gc") {
        return Err(Error::usage("--keep is for `nexus runs gc`")
            .with_help("for example: nexus runs gc --keep 50"));
    }
    if raw.has("all") && sub == Some("show") {
        return Err(
            Error::usage("--all is for the list of runs and for `nexus runs gc`")
                .with_help("`nexus runs show ID` shows a run of any project"),
        );
    }
    if raw.has("interrupted") && sub.is_some() {
        return Err(
            Error::usage("--interrupted is for the list of runs (`nexus runs`)")
                .with_help("for example: nexus runs --interrupted"),
        );
    }
    match (sub, raw.positionals.get(1)) {
        (None, _) => Ok(RunsArgs::List {
            interrupted: raw.has("interrupted"),
            json: format_json(raw, "runs")?,
            all: raw.has("all"),
        }),
        (Some("show"), Some(id)) => Ok(RunsArgs::Show(id.clone())),
        (Some("show"), None) => {
            Err(Error::usage("`nexus runs show` needs a run id")
                .with_help("`nexus runs` lists them"))
        }
        (Some("gc"), None) => Ok(RunsArgs::Gc {
            keep: raw.count("keep")?.unwrap_or(crate::state::KEEP_RUNS),
            all: raw.has("all"),
        }),
        (Some("gc"), Some(extra)) => Err(Error::usage(format!(
            "unexpected argument `{extra}` for `nexus runs gc`"
        ))
        .with_help("usage: nexus runs gc [--keep N] [--all]")),
        (Some(other), _) => {
            let mut e = Error::usage(format!("unknown runs subcommand `{other}`"));
            if let Some(h) = did_you_mean(other, ["show", "gc"]) {
                e = e.with_help(h);
            }
            Err(e.with_help("usage: nexus runs [show ID | gc]"))
        }
    }
}

const SECRET_ACTIONS: &[&str] = &["init", "set", "get", "list", "delete", "rotate-key"];

fn secret_args(raw: &Raw) -> Result<SecretArgs, Error> {
    let sub = raw.positionals[0].as_str();
    if !SECRET_ACTIONS.contains(&sub) {
        let mut e = Error::usage(format!("unknown secret subcommand `{sub}`"));
        if let Some(h) = did_you_mean(sub, SECRET_ACTIONS.iter().copied()) {
            e = e.with_help(h);
        }
        return Err(e.with_help(
            "usage: nexus secret init | set NAME | get NAME | list | delete NAME | rotate-key",
        ));
    }
    for (flag, owner) in [("from-file", "set"), ("new-keyfile", "rotate-key")] {
        if raw.has(flag) && sub != owner {
            return Err(Error::usage(format!(
                "--{flag} is for `nexus secret {owner}`"
            )));
        }
    }
    let name = raw.positionals.get(1).cloned();
    let action = match (sub, name) {
        ("set", Some(name)) => SecretAction::Set {
            name,
            from_file: raw.value("from-file").map(PathBuf::from),
        },
        ("get", Some(name)) => SecretAction::Get(name),
        ("delete", Some(name)) => SecretAction::Delete(name),
        ("set" | "get" | "delete", None) => {
            return Err(Error::usage(format!("`nexus secret {sub}` needs a NAME"))
                .with_help("`nexus secret list` shows the names"))
        }
        (_, Some(extra)) => {
            return Err(Error::usage(format!(
                "unexpected argument `{extra}` for `nexus secret {sub}`"
            )))
        }
        ("init", None) => SecretAction::Init,
        ("list", None) => SecretAction::List,
        _ => SecretAction::RotateKey {
            new_keyfile: raw.value("new-keyfile").map(PathBuf::from),
        },
    };
    Ok(SecretArgs {
        action,
        keyfile: raw.value("keyfile").map(PathBuf::from),
    })
}
