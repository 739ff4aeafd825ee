//! `nexus run`: plan, pre-flight for `--dry-run` and `--force`, the resume offer, then
//! the run itself with its journal, recorder and scheduler (shared with `resume`).

use std::io::{IsTerminal, Write};

use super::{load, prepare, print, resume, Prepared};
use crate::cli::args::{Checks, Exec, Global, RunArgs};
use crate::error::Error;
use crate::exec::ssh::target::RunOverrides;
use crate::output::{self, Style};
use crate::run::recorder::Recorder;
use crate::run::scheduler::{self, Ctx};
use crate::state::journal::Journal;
use crate::state::record::RunHeader;
use crate::state::{self, history};
use crate::{dryrun, preflight, signals};

pub fn run(g: &Global, args: &RunArgs) -> Result<i32, Error> {
    let config = match load(g) {
        Err(_) if args.shorthand && super::config_path(g).is_err() => {
            let word = &args.targets[0];
            return Err(shorthand_error(word, None).with_help(format!(
                "`nexus {word}` would run task `{word}`, but there is no nexus.toml here or in a parent directory"
            )));
        }
        r => r?,
    };
    if args.shorthand && config.task_index(&args.targets[0]).is_none() {
        return Err(shorthand_error(&args.targets[0], Some(&config)));
    }
    run_config(g, args, config)
}

/// A bare `nexus`: the file's `default` task, else the list of its tasks.
pub fn bare(g: &Global, args: &RunArgs) -> Result<i32, Error> {
    if super::config_path(g).is_err() {
        return super::info::missing();
    }
    let config = load(g)?;
    let Some(d) = config.default else {
        return super::list::print_list(&config);
    };
    let args = RunArgs {
        targets: vec![config.tasks[d].name.clone()],
        ..args.clone()
    };
    run_config(g, &args, config)
}

/// `nexus WORD` where WORD is neither a command nor a task (None: no nexus.toml).
fn shorthand_error(word: &str, config: Option<&crate::config::Config>) -> Error {
    let commands = crate::cli::flags::COMMANDS.iter().map(|c| c.name);
    let (title, help) = match config {
        None => (
            format!("unknown command `{word}`"),
            crate::error::did_you_mean(word, commands)
                .unwrap_or_else(|| "run `nexus help` to see the commands".into()),
        ),
        Some(c) => (
            format!("`{word}` is neither a command nor a task"),
            crate::error::did_you_mean(word, c.runnable_names())
                .or_else(|| crate::error::did_you_mean(word, commands))
                .unwrap_or_else(|| {
                    "`nexus list` shows the tasks, `nexus help` the commands".into()
                }),
        ),
    };
    Error::usage(title).with_help(help)
}

fn run_config(g: &Global, args: &RunArgs, config: crate::config::Config) -> Result<i32, Error> {
    let overrides = RunOverrides {
        user: args.user.clone(),
        identity: args.identity.clone(),
    };
    let (targets, mut bound) = crate::bind::bind(&config, &args.targets, &args.rest)?;
    let mut p = prepare(
        config,
        &targets,
        args.hosts.as_deref(),
        &overrides,
        args.exec.keyfile.as_deref(),
    )?;
    crate::bind::defaults(&p.config, &p.plan.tasks, &mut bound)?;
    p.info.args = bound;
    let redactor = std::sync::Arc::clone(&p.info.redactor);
    run_prepared(g, args, p).map_err(|e| redactor.redact_error(e))
}

/// The rest of `run` once the config is loaded and the plan made. From here on Ctrl-C
/// ends what runs (pre-flight connections, commands) cleanly.
fn run_prepared(g: &Global, args: &RunArgs, mut p: Prepared) -> Result<i32, Error> {
    p.info.uptodate = crate::uptodate::Store::new(
        &state::home(),
        &state::project_of(&p.config.path),
        args.always,
        args.dry_run,
    );
    if args.dry_run {
        signals::install();
        let json = args.exec.show.format == output::Format::Json;
        return dry_run(g, args, &p, json);
    }
    if args.force {
        signals::install();
        p.info.unavailable = unavailable_hosts(g, &p, &args.checks);
        if signals::cancelled() {
            return Ok(crate::error::exit::INTERRUPTED);
        }
    }
    let home = state::home();
    let project = state::project_of(&p.config.path);
    if !args.no_resume {
        if let Some(code) = offer_resume(
            g,
            &args.exec,
            &home,
            &project,
            &p.plan.targets,
            &p.info.args,
        )? {
            return Ok(code);
        }
    }
    let scope = state::Scope::Project(&project);
    let _ = history::gc(&home, scope, state::KEEP_RUNS.saturating_sub(1));
    p.info.counter = state::next_counter(&home, &state::counter_key(&project, &p.plan.targets))?;
    let path = state::journal_path(&home, &p.info.run_id, &project);
    let header = RunHeader {
        run_id: p.info.run_id.clone(),
        counter: p.info.counter,
        targets: p.plan.targets.clone(),
        args: p.info.args.clone(),
        config: p.config.path.display().to_string(),
        project,
        config_hash: state::resume::config_hash(&p.config),
        task_hashes: state::resume::task_hashes(&p.config),
        plan: p
            .plan
            .tasks
            .iter()
            .map(|&t| p.config.tasks[t].name.clone())
            .collect(),
        pid: std::process::id(),
    };
    let journal = Journal::create(&path, &header)
        .map_err(|e| state::unusable("create the run journal", &path, &e))?;
    execute(g, &args.exec, p, journal)
}

fn preflight_options(c: &Checks) -> preflight::Options {
    preflight::Options {
        skip_connectivity: c.skip_connectivity,
        skip_auth: c.skip_auth,
        skip_sudo: c.skip_sudo,
        skip_disk: c.skip_disk,
        timeout: c.timeout,
        parallel: c.parallel,
    }
}

/// `run --force`: pre-flight the hosts, report those that fail, run without them.
fn unavailable_hosts(g: &Global, p: &Prepared, checks: &Checks) -> Vec<String> {
    let mut opts = preflight_options(checks);
    opts.skip_sudo = true;
    let report = preflight::run(
        &p.config,
        &p.plan,
        p.info.ssh.as_ref(),
        p.hosts_override.as_deref(),
        &opts,
    );
    let unavailable = report.unavailable();
    if !unavailable.is_empty() {
        let style = Style::detect(g.plain);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{}", preflight::render_text(&report, style, true));
        drop(err);
        crate::error::warn(
            format_args!("--force: continuing without {}", unavailable.join(", ")),
            &[],
        );
    }
    unavailable
}

fn dry_run(g: &Global, args: &RunArgs, p: &Prepared, json: bool) -> Result<i32, Error> {
    let hosts = p.hosts_override.as_deref();
    let report = preflight::run(
        &p.config,
        &p.plan,
        p.info.ssh.as_ref(),
        hosts,
        &preflight_options(&args.checks),
    );
    if signals::cancelled() {
        return Ok(crate::error::exit::INTERRUPTED);
    }
    let code = report.exit_code();
    let files = dryrun::preview_files(&p.config, &p.plan, &p.info, hosts, args.diff);
    if signals::cancelled() {
        return Ok(crate::error::exit::INTERRUPTED);
    }
    if json {
        let checks = preflight::to_json(&report);
        let mut doc = dryrun::to_json(&p.config, &p.plan, &p.info, hosts, checks, &files);
        p.info.redactor.redact_json(&mut doc);
        print(&format!("{doc}\n"))?;
    } else {
        let style = Style::for_stdout(g.plain);
        let checks = preflight::render_text(&report, style, false);
        let text = dryrun::render_text(
            &p.config,
            &p.plan,
            &p.info,
            hosts,
            &checks,
            &files,
            style.unicode,
        );
        print(&p.info.redactor.redact(&text))?;
    }
    Ok(code)
}

/// The last run of these targets was interrupted: ask (terminal) or hint (CI, no tty).
/// Some(code) when the user chose to resume it here.
fn offer_resume(
    g: &Global,
    exec: &Exec,
    home: &std::path::Path,
    project: &str,
    targets: &[String],
    args: &crate::bind::Args,
) -> Result<Option<i32>, Error> {
    let Some(last) = state::resume::interrupted_run_of(home, project, targets) else {
        return Ok(None);
    };
    // Other arguments make another run.
    if last.header.args != *args {
        log::debug!("resume: run {} had other arguments; not offered", last.id());
        return Ok(None);
    }
    // A resume that would skip nothing is a new run: no question.
    let finished_something = state::journal::read(&last.path)
        .is_ok_and(|r| state::resume::checkpoint(r.records()).skips_anything());
    if !finished_something {
        log::debug!("resume: run {} finished nothing; not offered", last.id());
        return Ok(None);
    }
    let what = format!(
        "the last run of `{}` ({} #{}) was interrupted",
        state::target_key(targets),
        last.id(),
        last.header.counter
    );
    let ci = std::env::var_os("CI").filter(|v| !v.is_empty()).is_some();
    let tty = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let mut err = std::io::stderr();
    if ci || !tty {
        crate::error::warn(
            format_args!("{what}; starting a new run"),
            &[format!(
                "resume it instead with `nexus resume {}`",
                last.id()
            )],
        );
        return Ok(None);
    }
    let _ = write!(err, "nexus: {what}. Resume? [Y/n/discard] ");
    let _ = err.flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if signals::cancelled() {
        // Ctrl-C at the prompt (with --force, the handler is already in place).
        return Ok(Some(crate::error::exit::INTERRUPTED));
    }
    match answer.trim().to_lowercase().as_str() {
        "" | "y" | "yes" => resume::resume_run(g, exec, &last.path, false).map(Some),
        "d" | "discard" => {
            let _ = std::fs::remove_file(&last.path);
            Ok(None)
        }
        _ => Ok(None),
    }
}

/// Run a prepared plan with its journal: recorder, signals, scheduler. The exit code.
pub fn execute(g: &Global, exec: &Exec, mut p: Prepared, journal: Journal) -> Result<i32, Error> {
    if exec.timeout.is_some() {
        p.info.timeouts.command = exec.timeout;
        p.info.timeouts.from_flag = true;
    }
    let opts = scheduler::Options {
        parallel_limit: exec
            .parallel_limit
            .unwrap_or(p.config.settings.parallel_limit),
        max_connections: p.config.settings.max_connections,
        continue_on_error: exec.continue_on_error,
        hosts_override: p.hosts_override.clone(),
        stdout_is_data: exec.show.format == output::Format::Json,
    };
    if !p.config.handlers.is_empty() {
        p.info.handlers =
            crate::run::handlers::Pending::open(&state::home(), &state::project_of(&p.config.path));
    }
    signals::install();
    let out = output::Options {
        format: exec.show.format,
        mode: exec
            .show
            .mode
            .or(p.config.settings.output)
            .unwrap_or(output::Mode::Stream),
        verbose: exec.show.verbose,
        style: Style::detect(g.plain),
        progress: output::watched(),
    };
    let recorder = Recorder::new(Some(journal), output::renderer(out, p.info.run_id.clone()))
        .with_redactor(std::sync::Arc::clone(&p.info.redactor));
    let ctx = Ctx {
        config: &p.config,
        plan: &p.plan,
        run: &p.info,
        opts: &opts,
        recorder: &recorder,
    };
    let outcome = if out.progress {
        with_ticks(&recorder, || scheduler::execute(ctx))
    } else {
        scheduler::execute(ctx)
    };
    if let Some((path, why)) = recorder.state_error() {
        return Err(Error::usage(format!("cannot write the run journal {path}: {why}"))
            .with_code(crate::error::exit::FAILED)
            .with_help("nothing more was started once the journal could not record it; free space or fix permissions there, or set NEXUS_HOME elsewhere")
            .with_help(format!(
                "then `nexus resume {}` runs what the journal does not show as finished",
                p.info.run_id
            )));
    }
    Ok(outcome.exit_code)
}

/// Run `f` while a thread lets the renderer see time pass every few seconds ("still
/// running" notices on a terminal).
fn with_ticks<T>(recorder: &Recorder, f: impl FnOnce() -> T) -> T {
    let done = std::sync::Mutex::new(false);
    let wake = std::sync::Condvar::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut stop = done.lock().unwrap_or_else(|e| e.into_inner());
            while !*stop {
                let (g, _) = wake
                    .wait_timeout(stop, std::time::Duration::from_secs(5))
                    .unwrap_or_else(|e| e.into_inner());
                stop = g;
                if !*stop {
                    recorder.tick();
                }
            }
        });
        let result = f();
        *done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        wake.notify_all();
        result
    })
}
