//! One function per subcommand: turn parsed `Args` into work and an exit code.
//! Must not: hold logic that belongs to config, plan, run or output.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::{help, Args};
use crate::config::{self, Config, Target};
use crate::error::{exit, Error};
use crate::output::{self, Format, Style, Verbosity};
use crate::run::{self, scheduler, RunInfo};
use crate::state::{self, journal::Journal};
use crate::{dryrun, plan, preflight, signals};
use std::io::IsTerminal;

pub const STARTER: &str = include_str!("../nexus.toml.example");

pub fn dispatch(args: &Args) -> Result<i32, Error> {
    if args.has("help") {
        return print(&match args.command {
            Some(c) if c != "help" => help::command(c).unwrap_or_else(help::general),
            _ => help::general(),
        });
    }
    if args.has("version") && args.command.is_none() {
        return version();
    }
    init_logging(args);
    match args.command {
        None => {
            let _ = write!(std::io::stderr(), "{}", help::general());
            Err(Error::usage("no command given").with_help("for example: nexus run build"))
        }
        Some("help") => match args.positionals.first() {
            None => print(&help::general()),
            Some(c) => match help::command(c) {
                Some(text) => print(&text),
                None => {
                    let names = crate::cli::flags::COMMANDS.iter().map(|c| c.name);
                    let mut e = Error::usage(format!("unknown command `{c}`"));
                    if let Some(h) = crate::error::did_you_mean(c, names) {
                        e = e.with_help(h);
                    }
                    Err(e)
                }
            },
        },
        Some("version") => version(),
        Some("completions") => {
            let shell = &args.positionals[0];
            match help::completions(shell) {
                Some(s) => print(&s),
                None => {
                    let h = crate::error::did_you_mean(shell, help::SHELLS.iter().copied())
                        .unwrap_or_else(|| format!("choose one of: {}", help::SHELLS.join(", ")));
                    Err(Error::usage(format!("no completions for shell `{shell}`")).with_help(h))
                }
            }
        }
        Some("init") => init(args),
        Some("validate") => validate(args),
        Some("list") => list(args),
        Some("run") => run_cmd(args),
        Some("hosts") => hosts(args),
        Some("runs") => runs(args),
        Some("preflight") => preflight_cmd(args),
        Some("resume") => resume(args),
        Some(other) => Err(Error::usage(format!("unknown command `{other}`"))),
    }
}

fn print(text: &str) -> Result<i32, Error> {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    Ok(exit::SUCCESS)
}

fn version() -> Result<i32, Error> {
    print(&format!(
        "nexus {} (commit {}, {})\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("NEXUS_GIT_SHA").unwrap_or("unknown"),
        option_env!("NEXUS_TARGET").unwrap_or("unknown target"),
    ))
}

fn init_logging(args: &Args) {
    let level = args
        .value("log-level")
        .map(str::to_string)
        .or_else(|| std::env::var("NEXUS_LOG_LEVEL").ok())
        .unwrap_or_else(|| "warn".to_string());
    let json = args.value("log-format") == Some("json");
    let mut b = env_logger::Builder::new();
    b.parse_filters(&level).target(env_logger::Target::Stderr);
    if json {
        b.format(|buf, rec| {
            let line = serde_json::json!({
                "ts": crate::timefmt::rfc3339(std::time::SystemTime::now()),
                "level": rec.level().as_str().to_lowercase(),
                "target": rec.target(),
                "message": rec.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    } else {
        b.format(|buf, rec| {
            writeln!(
                buf,
                "nexus: {}: {}",
                rec.level().as_str().to_lowercase(),
                rec.args()
            )
        });
    }
    let _ = b.try_init();
}

fn config_path(args: &Args) -> Result<PathBuf, Error> {
    let cwd = std::env::current_dir().map_err(|e| {
        Error::usage(format!(
            "cannot read the current directory: {}",
            crate::error::io_reason(&e)
        ))
    })?;
    let explicit = args.value("config").map(PathBuf::from).or_else(|| {
        std::env::var_os("NEXUS_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    config::find(explicit.as_deref(), &cwd)
}

fn load(args: &Args) -> Result<Config, Error> {
    let path = config_path(args)?;
    let c = config::load(&path)?;
    log::debug!("loaded {} ({} tasks)", path.display(), c.tasks.len());
    Ok(c)
}

fn init(args: &Args) -> Result<i32, Error> {
    let path = match args.value("config") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(config::FILE_NAME),
    };
    if path.exists() && !args.has("force") {
        return Err(Error::usage(format!("{} already exists", path.display()))
            .with_help("use `nexus init --force` to overwrite it"));
    }
    std::fs::write(&path, STARTER).map_err(|e| {
        Error::io("cannot write", &path, &e)
            .with_help("check that the directory exists and is writable")
    })?;
    print(&format!(
        "Wrote {}. Try: nexus list, then nexus run hello\n",
        path.display()
    ))
}

/// `nexus hosts resolve HOST`: host string > ssh_config > nexus.toml [config] > defaults.
fn hosts(args: &Args) -> Result<i32, Error> {
    use crate::exec::ssh::config as sshc;
    if args.positionals[0] != "resolve" {
        let mut e = Error::usage(format!(
            "unknown hosts subcommand `{}`",
            args.positionals[0]
        ));
        if let Some(h) = crate::error::did_you_mean(&args.positionals[0], ["resolve"]) {
            e = e.with_help(h);
        }
        return Err(e.with_help("usage: nexus hosts resolve HOST"));
    }
    let spec = config::host::parse(&args.positionals[1]).map_err(|m| {
        Error::usage(m).with_help("give a host string: host, user@host, user@host:port")
    })?;
    // nexus.toml is optional here: its [config] only fills in what ssh_config leaves open.
    let settings = match config_path(args) {
        Ok(p) if p.is_file() => load(args)?.settings,
        _ => config::Settings::default(),
    };
    let ssh_config = match args.value("ssh-config") {
        Some(path) => Some(sshc::parse_file(std::path::Path::new(path)).map_err(|e| {
            Error::usage(format!("cannot read ssh_config: {e}"))
                .with_help("fix the file, or point --ssh-config at another")
        })?),
        None => crate::exec::ssh::target::load_ssh_config(&settings).map_err(|e| {
            Error::usage(format!("cannot read ssh_config: {e}"))
                .with_help("fix the file, or set ssh_config = \"none\" in [config]")
        })?,
    };
    let overrides = sshc::Overrides {
        user: spec.user.clone(),
        port: spec.port,
        identity: None,
    };
    let fallbacks = sshc::Fallbacks {
        user: settings.ssh_user.clone(),
        port: (settings.ssh_port != 22).then_some(settings.ssh_port),
        identity: settings.ssh_identity.clone(),
    };
    let resolved = ssh_config
        .unwrap_or_default()
        .resolve_with(&spec.host, &overrides, &fallbacks)
        .map_err(|e| {
            Error::usage(format!("cannot read ssh_config: {e}"))
                .with_help("fix the line it names (`ssh -G HOST` shows what OpenSSH makes of it)")
        })?;
    // What nexus offers in the handshake, in ssh -G's words (a HostKeyAlgorithms left unset
    // is reordered per host at connect time by what known_hosts holds, as ssh does).
    use crate::exec::ssh::algorithms::{effective, Kind};
    let algorithms = |kind, spec: &Option<String>| {
        effective(kind, spec.as_deref()).map_err(|e| {
            Error::usage(format!("cannot resolve {}: {e}", args.positionals[1]))
                .with_help("fix the list in ssh_config, or remove it to use nexus's defaults")
        })
    };
    let mut lines = resolved.ssh_g_lines();
    lines.push(format!(
        "kexalgorithms {}",
        algorithms(Kind::Kex, &resolved.kex_algorithms)?
    ));
    lines.push(format!(
        "hostkeyalgorithms {}",
        algorithms(Kind::HostKey, &resolved.host_key_algorithms)?
    ));
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    print(&text)
}

fn validate(args: &Args) -> Result<i32, Error> {
    let c = load(args)?;
    let all: Vec<usize> = (0..c.tasks.len()).collect();
    let diags = c.unset_env(&all);
    if !diags.is_empty() {
        return Err(Error::validation(diags));
    }
    let hosts: std::collections::HashSet<_> = c.groups.iter().flat_map(|(_, h)| h).collect();
    print(&format!(
        "{} is valid: {} tasks, {} host groups, {} hosts\n",
        config::display_path(&c.path).display(),
        c.tasks.len(),
        c.groups.len(),
        hosts.len()
    ))
}

fn list(args: &Args) -> Result<i32, Error> {
    let c = load(args)?;
    if args.has("names") {
        let names: String = c.tasks.iter().map(|t| format!("{}\n", t.name)).collect();
        return print(&names);
    }
    if args.value("format") == Some("json") {
        let tasks: Vec<serde_json::Value> = c
            .tasks
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name,
                    "desc": t.desc,
                    "deps": t.deps.iter().map(|&d| &c.tasks[d].name).collect::<Vec<_>>(),
                    "on": t.on,
                    "hosts": t.targets.iter().map(Target::label).collect::<Vec<_>>(),
                    "commands": t.commands.iter().map(|c| &c.text).collect::<Vec<_>>(),
                })
            })
            .collect();
        return print(&format!("{}\n", serde_json::Value::Array(tasks)));
    }
    if c.tasks.is_empty() {
        return print(&format!(
            "{} defines no tasks\n",
            config::display_path(&c.path).display()
        ));
    }
    let width = c
        .tasks
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut s = String::from("Tasks:\n");
    for t in &c.tasks {
        s += &format!("  {:<width$}", t.name);
        if let Some(d) = &t.desc {
            s += &format!("  {d}");
        }
        let mut extra = Vec::new();
        if !t.deps.is_empty() {
            let deps: Vec<&str> = t.deps.iter().map(|&d| c.tasks[d].name.as_str()).collect();
            extra.push(format!("deps: {}", deps.join(", ")));
        }
        if t.on != ["local"] {
            extra.push(format!("on: {}", t.on.join(", ")));
        }
        if !extra.is_empty() {
            s += &format!("  [{}]", extra.join("; "));
        }
        s = s.trim_end().to_string();
        s.push('\n');
    }
    print(&s)
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

/// What `run` and `preflight` start from: the config, the plan of the positional targets,
/// the `-H` hosts, and a RunInfo with the preconditions checked and SSH hosts resolved.
struct Prepared {
    config: Config,
    plan: plan::Plan,
    hosts_override: Option<Vec<Target>>,
    info: RunInfo,
}

fn prepare(
    args: &Args,
    overrides: &crate::exec::ssh::target::RunOverrides,
) -> Result<Prepared, Error> {
    let config = load(args)?;
    let plan = plan::plan(&config, &args.positionals)?;
    let hosts_override = match args.value("hosts") {
        Some(list) => Some(parse_hosts_flag(&config, list)?),
        None => None,
    };
    let mut info = RunInfo::new(&config.root);
    run::preconditions(&config, &plan.tasks, &mut info)?;
    run::prepare_ssh(
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

fn run_cmd(args: &Args) -> Result<i32, Error> {
    let parallel_limit = args.count("parallel-limit")?;
    let overrides = crate::exec::ssh::target::RunOverrides {
        user: args.value("user").map(str::to_string),
        identity: args.value("identity").map(str::to_string),
    };
    let Prepared {
        config,
        plan,
        hosts_override,
        mut info,
    } = prepare(args, &overrides)?;

    if args.value("format") == Some("quiet") {
        return Err(Error::usage("--format quiet is for `nexus preflight`")
            .with_help("use -q for one line per task"));
    }
    if args.has("dry-run") {
        return dry_run(args, &config, &plan, &info, hosts_override.as_deref());
    }
    let mut unavailable = Vec::new();
    if args.has("force") {
        let mut opts = preflight_options(args)?;
        opts.skip_sudo = true;
        let report = preflight::run(
            &config,
            &plan,
            info.ssh.as_ref(),
            hosts_override.as_deref(),
            &opts,
        );
        unavailable = report.unavailable();
        if !unavailable.is_empty() {
            let style = Style::detect(args.has("plain"));
            let _ = write!(
                std::io::stderr(),
                "{}",
                preflight::render_text(&report, style, true)
            );
            let _ = writeln!(
                std::io::stderr(),
                "nexus: --force: continuing without {}",
                unavailable.join(", ")
            );
        }
    }

    let home = state::home();
    if !args.has("no-resume") {
        if let Some(code) = offer_resume(args, &home, &plan.targets)? {
            return Ok(code);
        }
    }
    let _ = state::gc(&home, state::KEEP_RUNS.saturating_sub(1));
    info.counter = state::next_counter(&home, &state::target_key(&plan.targets))?;
    let path = state::journal_path(&home, &info.run_id);
    let journal =
        Journal::create(&path).map_err(|e| state::unusable("create the run journal", &path, &e))?;
    journal.record(
        "run_start",
        serde_json::json!({
            "run_id": info.run_id,
            "counter": info.counter,
            "targets": plan.targets,
            "config": config.path.display().to_string(),
            "config_hash": format!("{:016x}", fnv(config.source.as_bytes())),
            "task_hashes": task_hashes(&config),
            "plan": plan.tasks.iter().map(|&t| &config.tasks[t].name).collect::<Vec<_>>(),
            "pid": std::process::id(),
        }),
    );
    info.journal = Some(journal);
    info.unavailable = unavailable;
    execute(args, config, plan, info, parallel_limit, hosts_override)
}

fn preflight_options(args: &Args) -> Result<preflight::Options, Error> {
    let timeout = match args.value("timeout") {
        None => std::time::Duration::from_secs(5),
        Some(t) => config::duration::parse(t).map_err(|m| {
            Error::usage(format!("--timeout: {m}")).with_help("for example: --timeout 5s")
        })?,
    };
    Ok(preflight::Options {
        skip_connectivity: args.has("skip-connectivity"),
        skip_auth: args.has("skip-auth"),
        skip_sudo: args.has("skip-sudo-check"),
        skip_disk: args.has("skip-disk-check"),
        timeout,
        parallel: args.count("parallel")?.unwrap_or(10),
    })
}

fn dry_run(
    args: &Args,
    config: &Config,
    plan: &plan::Plan,
    info: &RunInfo,
    hosts_override: Option<&[Target]>,
) -> Result<i32, Error> {
    let report = preflight::run(
        config,
        plan,
        info.ssh.as_ref(),
        hosts_override,
        &preflight_options(args)?,
    );
    let code = report.exit_code();
    if args.value("format") == Some("json") {
        let doc = dryrun::to_json(
            config,
            plan,
            info,
            hosts_override,
            preflight::to_json(&report),
        );
        print(&format!("{doc}\n"))?;
    } else {
        let style = Style::detect(args.has("plain"));
        let checks = preflight::render_text(&report, style, false);
        print(&dryrun::render_text(
            config,
            plan,
            info,
            hosts_override,
            &checks,
            style.unicode,
        ))?;
    }
    Ok(code)
}

fn preflight_cmd(args: &Args) -> Result<i32, Error> {
    let opts = preflight_options(args)?;
    let Prepared {
        config,
        plan,
        hosts_override,
        info,
    } = prepare(args, &crate::exec::ssh::target::RunOverrides::default())?;
    let report = preflight::run(
        &config,
        &plan,
        info.ssh.as_ref(),
        hosts_override.as_deref(),
        &opts,
    );
    match args.value("format") {
        Some("json") => print(&format!("{}\n", preflight::to_json(&report)))?,
        fmt => {
            let style = Style::detect(args.has("plain"));
            print(&preflight::render_text(
                &report,
                style,
                fmt == Some("quiet"),
            ))?
        }
    };
    Ok(if args.has("force") {
        exit::SUCCESS
    } else {
        report.exit_code()
    })
}

/// Scheduler, renderer and signals for a prepared run; returns the exit code.
fn execute(
    args: &Args,
    config: Config,
    plan: plan::Plan,
    info: RunInfo,
    parallel_limit: Option<usize>,
    hosts_override: Option<Vec<Target>>,
) -> Result<i32, Error> {
    let format = match args.value("format") {
        Some("json") => Format::Json,
        _ => Format::Text,
    };
    let verbosity = if args.has("quiet") {
        Verbosity::Quiet
    } else if args.has("verbose") {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    let opts = scheduler::Options {
        parallel_limit: parallel_limit.unwrap_or(config.settings.parallel_limit),
        max_connections: config.settings.max_connections,
        continue_on_error: args.has("continue-on-error"),
        hosts_override,
    };
    signals::install();
    let out_opts = output::Options {
        format,
        verbosity,
        style: Style::detect(args.has("plain")),
    };
    let config = Arc::new(config);
    let info = Arc::new(info);
    let (tx, renderer) = output::spawn(out_opts, info.run_id.clone());
    let outcome = scheduler::execute(&config, &plan, &info, &opts, &tx);
    drop(tx);
    let _ = renderer.join();
    Ok(outcome.exit_code)
}

/// FNV-1a, 64 bit: a cheap fingerprint of the config and of each task.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Per task, a fingerprint of everything that decides what it runs.
fn task_hashes(config: &Config) -> serde_json::Map<String, serde_json::Value> {
    config
        .tasks
        .iter()
        .map(|t| {
            let deps: Vec<&str> = t
                .deps
                .iter()
                .map(|&d| config.tasks[d].name.as_str())
                .collect();
            let cmds: Vec<String> = t
                .commands
                .iter()
                .map(|c| {
                    format!(
                        "{}|{}|{:?}|{}|{:?}|{}|{:?}|{}",
                        c.text,
                        c.sudo,
                        c.user,
                        c.pty,
                        c.timeout,
                        c.retries,
                        c.retry_delay,
                        c.continue_on_error
                    )
                })
                .collect();
            let env: Vec<String> = t
                .env
                .iter()
                .map(|(k, v)| format!("{k}={:?}", v.value))
                .collect();
            let text = format!(
                "{deps:?}|{:?}|{:?}|{:?}|{:?}|{env:?}|{}|{cmds:?}",
                t.on,
                t.strategy,
                t.timeout,
                t.dir.as_ref().map(|d| &d.value),
                t.continue_on_error
            );
            (
                t.name.clone(),
                serde_json::Value::from(format!("{:016x}", fnv(text.as_bytes()))),
            )
        })
        .collect()
}

/// The last run of these targets was interrupted: ask (terminal) or hint (CI, no tty).
/// Some(code) when the user chose to resume it here.
fn offer_resume(
    args: &Args,
    home: &std::path::Path,
    targets: &[String],
) -> Result<Option<i32>, Error> {
    let key = state::target_key(targets);
    let Some(last) = state::latest_of(home, &key) else {
        return Ok(None);
    };
    if last.state != state::RunState::Interrupted {
        return Ok(None);
    }
    let what = format!(
        "the last run of `{}` ({} #{}) was interrupted",
        key, last.id, last.counter
    );
    let ci = std::env::var_os("CI").filter(|v| !v.is_empty()).is_some();
    let tty = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if ci || !tty {
        let _ = writeln!(
            std::io::stderr(),
            "nexus: {what}; starting a new run (resume it instead with `nexus resume {}`)",
            last.id
        );
        return Ok(None);
    }
    let _ = write!(std::io::stderr(), "nexus: {what}. Resume? [Y/n/discard] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    match answer.trim().to_lowercase().as_str() {
        "" | "y" | "yes" => resume_run(args, home, &last.path, false).map(Some),
        "d" | "discard" => {
            let _ = std::fs::remove_file(&last.path);
            Ok(None)
        }
        _ => Ok(None),
    }
}

fn resume(args: &Args) -> Result<i32, Error> {
    let home = state::home();
    let path = match args.positionals.first() {
        Some(id) => {
            let p = state::journal_path(&home, id);
            if !p.exists() {
                let (runs, _) = state::history(&home)?;
                let ids = runs.iter().map(|r| r.id.as_str());
                let mut e = Error::usage(format!(
                    "no run `{id}` in {}",
                    state::runs_dir(&home).display()
                ));
                if let Some(h) = crate::error::did_you_mean(id, ids) {
                    e = e.with_help(h);
                }
                return Err(
                    e.with_help("`nexus runs --interrupted` lists the runs that can be resumed")
                );
            }
            p
        }
        None => {
            let (runs, _) = state::history(&home)?;
            match runs
                .into_iter()
                .find(|r| r.state == state::RunState::Interrupted)
            {
                Some(r) => r.path,
                None => {
                    return Err(Error::usage("no interrupted run to resume")
                        .with_help("`nexus runs` lists the recent runs"))
                }
            }
        }
    };
    resume_run(args, &home, &path, args.has("force"))
}

/// Continue the run journaled at `path`: completed (task, host) pairs are not run again.
fn resume_run(
    args: &Args,
    _home: &std::path::Path,
    path: &std::path::Path,
    force: bool,
) -> Result<i32, Error> {
    let summary = state::summarize(path).map_err(|why| {
        Error::usage(format!("cannot resume from {}: {why}", path.display()))
            .with_help("the journal has no usable start record; start a new run with `nexus run`")
    })?;
    match summary.state {
        state::RunState::Interrupted => {}
        state::RunState::Running => {
            return Err(Error::usage(format!("run {} is still running", summary.id))
                .with_help("wait for it to finish, or stop it first"))
        }
        ref s => {
            return Err(Error::usage(format!(
                "run {} was not interrupted (it finished: {})",
                summary.id,
                s.name()
            ))
            .with_help("start a new run with `nexus run`"))
        }
    }
    if let Some((line, reason)) = &summary.problem {
        let _ = writeln!(
            std::io::stderr(),
            "nexus: warning: {}:{line}: {reason}; resuming from the {} valid records before it",
            path.display(),
            summary.records.len()
        );
    }
    let head = &summary.records[0];
    let config = match args.value("config") {
        Some(_) => load(args)?,
        None => match head["config"].as_str() {
            Some(p) if std::path::Path::new(p).is_file() => config::load(std::path::Path::new(p))?,
            _ => load(args)?,
        },
    };
    let hash = format!("{:016x}", fnv(config.source.as_bytes()));
    if head["config_hash"].as_str() != Some(hash.as_str()) && !force {
        let now = task_hashes(&config);
        let then = head["task_hashes"].as_object().cloned().unwrap_or_default();
        let mut changed: Vec<String> = now
            .iter()
            .filter(|(k, v)| then.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        changed.extend(
            then.keys()
                .filter(|k| !now.contains_key(*k))
                .map(|k| format!("{k} (removed)")),
        );
        let detail = if changed.is_empty() {
            "no task changed (only other parts of the file)".to_string()
        } else {
            format!("tasks changed: {}", changed.join(", "))
        };
        return Err(Error::usage(format!(
            "{} changed since run {} started; {detail}",
            config::display_path(&config.path).display(),
            summary.id
        ))
        .with_help(format!(
            "resume anyway with `nexus resume {} --force`, or start fresh with `nexus run`",
            summary.id
        )));
    }
    let plan = plan::plan(&config, &summary.targets)?;
    let mut info = RunInfo::new(&config.root);
    info.run_id = summary.id.clone();
    info.counter = summary.counter;
    run::preconditions(&config, &plan.tasks, &mut info)?;
    run::prepare_ssh(
        &config,
        &plan.tasks,
        None,
        &crate::exec::ssh::target::RunOverrides::default(),
        &mut info,
    )?;
    info.checkpoint = Some(state::checkpoint(&summary.records));
    let seq = summary
        .records
        .last()
        .and_then(|r| r["seq"].as_u64())
        .unwrap_or(0);
    if summary.problem.is_some() {
        // Cut the bad tail so the journal stays a valid prefix plus what follows.
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let keep: String = text
            .lines()
            .take(summary.records.len())
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(path, keep).map_err(|e| state::unusable("repair", path, &e))?;
    }
    let journal =
        Journal::append_to(path, seq).map_err(|e| state::unusable("append to", path, &e))?;
    journal.record("resume", serde_json::json!({"pid": std::process::id()}));
    info.journal = Some(journal);
    let parallel_limit = args.count("parallel-limit")?;
    execute(args, config, plan, info, parallel_limit, None)
}

fn runs(args: &Args) -> Result<i32, Error> {
    let home = state::home();
    match args.positionals.first().map(String::as_str) {
        None => runs_list(args, &home),
        Some("show") => match args.positionals.get(1) {
            Some(id) => runs_show(&home, id),
            None => Err(Error::usage("`nexus runs show` needs a run id")
                .with_help("`nexus runs` lists them")),
        },
        Some("gc") => {
            let keep = args.count("keep")?.unwrap_or(state::KEEP_RUNS);
            let n = state::gc(&home, keep)?;
            print(&format!(
                "removed {n} run journals, kept the newest {keep}\n"
            ))
        }
        Some(other) => {
            let mut e = Error::usage(format!("unknown runs subcommand `{other}`"));
            if let Some(h) = crate::error::did_you_mean(other, ["show", "gc"]) {
                e = e.with_help(h);
            }
            Err(e.with_help("usage: nexus runs [show ID | gc]"))
        }
    }
}

fn runs_list(args: &Args, home: &std::path::Path) -> Result<i32, Error> {
    let (runs, bad) = state::history(home)?;
    for (p, why) in &bad {
        let _ = writeln!(
            std::io::stderr(),
            "nexus: warning: unreadable run journal {}: {why}",
            p.display()
        );
    }
    let runs: Vec<&state::Summary> = runs
        .iter()
        .filter(|r| !args.has("interrupted") || r.state == state::RunState::Interrupted)
        .collect();
    for r in &runs {
        if let Some((line, why)) = &r.problem {
            let _ = writeln!(
                std::io::stderr(),
                "nexus: warning: {}:{line}: {why}",
                r.path.display()
            );
        }
    }
    if args.value("format") == Some("json") {
        let v: Vec<serde_json::Value> = runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id, "counter": r.counter, "started": r.started, "targets": r.targets,
                    "status": r.state.name(), "duration_ms": r.duration_ms,
                    "journal": r.path.display().to_string(),
                })
            })
            .collect();
        return print(&format!("{}\n", serde_json::Value::Array(v)));
    }
    if runs.is_empty() {
        return print("no runs\n");
    }
    let mut rows = vec![[
        "ID".to_string(),
        "RUN".into(),
        "STARTED".into(),
        "TARGETS".into(),
        "STATUS".into(),
        "DURATION".into(),
    ]];
    for r in &runs {
        rows.push([
            r.id.clone(),
            format!("{} #{}", state::target_key(&r.targets), r.counter),
            r.started.clone(),
            r.targets.join(","),
            r.state.name().to_string(),
            r.duration_ms
                .map(|d| crate::timefmt::secs(std::time::Duration::from_millis(d)))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out += line.join("  ").trim_end();
        out.push('\n');
    }
    print(&out)
}

fn runs_show(home: &std::path::Path, id: &str) -> Result<i32, Error> {
    let path = state::journal_path(home, id);
    let summary = state::summarize(&path).map_err(|why| {
        Error::usage(format!(
            "cannot read run {id} from {}: {why}",
            path.display()
        ))
        .with_help("`nexus runs` lists the runs")
    })?;
    let mut out = format!(
        "Run {} ({} #{})\n  started:  {}\n  status:   {}\n  duration: {}\n  journal:  {}\n",
        summary.id,
        state::target_key(&summary.targets),
        summary.counter,
        summary.started,
        summary.state.name(),
        summary
            .duration_ms
            .map(|d| crate::timefmt::secs(std::time::Duration::from_millis(d)))
            .unwrap_or_else(|| "-".into()),
        path.display()
    );
    if let Some((line, why)) = &summary.problem {
        out += &format!("  warning:  line {line}: {why}\n");
    }
    out += "\nTasks:\n";
    for r in &summary.records {
        match r["ev"].as_str() {
            Some("task_finish") => {
                out += &format!(
                    "  {} {}\n",
                    r["task"].as_str().unwrap_or(""),
                    r["status"].as_str().unwrap_or("")
                );
            }
            Some("cmd_finish") => {
                out += &format!(
                    "    [{}] #{} attempt {} {} (exit {})\n",
                    r["host"].as_str().unwrap_or(""),
                    r["index"],
                    r["attempt"],
                    r["status"].as_str().unwrap_or(""),
                    r["exit_code"]
                );
                for (stream, tag) in [("stdout", "|"), ("stderr", "!")] {
                    for l in r[stream].as_str().unwrap_or("").lines() {
                        out += &format!("      {tag} {l}\n");
                    }
                }
            }
            _ => {}
        }
    }
    print(&out)
}
