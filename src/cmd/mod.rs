//! One module per command: each turns its typed arguments into work and an exit code.
//! Shared here: printing a result, finding and loading nexus.toml, and preparing a run
//! (plan, `-H` hosts, preconditions, SSH settings).
//! Must not: hold logic that belongs to config, plan, run, state or output.

mod hosts;
mod info;
mod init;
mod list;
mod preflight;
mod resume;
mod run;
mod runs;
mod secret;
mod validate;

use std::io::Write;
use std::path::PathBuf;

use crate::cli::args::{Command, Global, Invocation};
use crate::config::{self, Config, Target};
use crate::error::{exit, Error};
use crate::exec::ssh::target::RunOverrides;
use crate::plan::Plan;
use crate::run::RunInfo;

pub fn dispatch(inv: &Invocation) -> Result<i32, Error> {
    let g = &inv.global;
    match &inv.command {
        Command::Bare(a) => run::bare(g, a),
        Command::Help(c) => info::help(*c),
        Command::Version => info::version(),
        Command::Completions(shell) => info::completions(shell),
        Command::Schema => info::schema(),
        Command::Man => info::man(),
        Command::Init { force } => init::init(g, *force),
        Command::Validate => validate::validate(g),
        Command::List { names, json } => list::list(g, *names, *json),
        Command::Run(a) => run::run(g, a),
        Command::Preflight(a) => preflight::preflight(g, a),
        Command::Resume(a) => resume::resume(g, a),
        Command::HostsResolve { host, ssh_config } => hosts::resolve(g, host, ssh_config),
        Command::Runs(a) => runs::runs(g, a),
        Command::Secret(a) => secret::secret(g, a),
    }
}

/// Write a command's result to stdout.
fn print(text: &str) -> Result<i32, Error> {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    Ok(exit::SUCCESS)
}

fn config_path(g: &Global) -> Result<PathBuf, Error> {
    let cwd = std::env::current_dir().map_err(|e| {
        Error::usage(format!(
            "cannot read the current directory: {}",
            crate::error::io_reason(&e)
        ))
    })?;
    let explicit = g.config.clone().or_else(|| {
        std::env::var_os("NEXUS_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    config::find(explicit.as_deref(), &cwd)
}

/// Find and load nexus.toml; its `log_level` applies from here on.
fn load(g: &Global) -> Result<Config, Error> {
    let path = config_path(g)?;
    load_path(&path)
}

fn load_path(path: &std::path::Path) -> Result<Config, Error> {
    let c = config::load(path)?;
    crate::userenv::export_dotenv(&c.dotenv);
    crate::logging::config_level(c.settings.log_level.as_deref());
    log::debug!(
        "config: loaded {} ({} tasks)",
        path.display(),
        c.tasks.len()
    );
    Ok(c)
}

/// `-H web,db-1.example.com`: group names expand to their hosts; anything else is a host.
fn parse_hosts_flag(config: &Config, list: &str) -> Result<Vec<Target>, Error> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Some((_, hosts)) = config.groups.iter().find(|(g, _)| g == item) {
            out.extend(hosts.iter().cloned().map(Target::Remote));
            continue;
        }
        match config::host::parse(item) {
            Ok(h) => out.push(Target::Remote(h)),
            Err(msg) => {
                return Err(Error::usage(format!("-H/--hosts: {msg}")).with_help(
                    "give host strings (user@host:port) or group names, comma-separated",
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(
            Error::usage("-H/--hosts names no hosts").with_help("for example: -H web-1,web-2")
        );
    }
    Ok(out)
}

/// What `run`, `resume` and `preflight` start from: the config, the plan of the targets,
/// the `-H` hosts, and a RunInfo with the preconditions checked and SSH hosts resolved.
struct Prepared {
    config: Config,
    plan: Plan,
    hosts_override: Option<Vec<Target>>,
    info: RunInfo,
}

fn prepare(
    config: Config,
    targets: &[String],
    hosts: Option<&str>,
    overrides: &RunOverrides,
    keyfile: Option<&std::path::Path>,
) -> Result<Prepared, Error> {
    let plan = crate::plan::plan(&config, targets)?;
    let hosts_override = match hosts {
        Some(list) => Some(parse_hosts_flag(&config, list)?),
        None => None,
    };
    let mut info = RunInfo::new(&config.root);
    info.vars = config.vars.clone();
    info.host_vars = config.host_vars.clone();
    info.configure(&config);
    crate::run::preconditions(&config, &plan.tasks, &mut info)?;
    if let Some((values, redactor)) = crate::secrets::used::for_run(&config, &plan.tasks, keyfile)?
    {
        info.secrets = Some(values);
        info.redactor = std::sync::Arc::new(redactor);
    }
    crate::run::prepare_ssh(
        &config,
        &plan.tasks,
        hosts_override.as_deref(),
        overrides,
        &mut info,
    )?;
    Ok(Prepared {
        config,
        plan,
        hosts_override,
        info,
    })
}
