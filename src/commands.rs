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
use crate::{plan, signals};

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
        .resolve_with(&spec.host, &overrides, &fallbacks);
    let text: String = resolved
        .ssh_g_lines()
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
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

fn run_cmd(args: &Args) -> Result<i32, Error> {
    let parallel_limit = args.count("parallel-limit")?;
    let config = load(args)?;
    let plan = plan::plan(&config, &args.positionals)?;
    let hosts_override = match args.value("hosts") {
        Some(list) => Some(parse_hosts_flag(&config, list)?),
        None => None,
    };
    let mut info = RunInfo::new(&config.root);
    run::preconditions(&config, &plan.tasks, &mut info)?;
    let overrides = crate::exec::ssh::target::RunOverrides {
        user: args.value("user").map(str::to_string),
        identity: args.value("identity").map(str::to_string),
    };
    run::prepare_ssh(
        &config,
        &plan.tasks,
        hosts_override.as_deref(),
        &overrides,
        &mut info,
    )?;
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
