//! `nexus preflight TASK...`: the checks of a run without running it.

use super::{load, prepare, print};
use crate::cli::args::{Global, PreflightArgs, PreflightFormat};
use crate::error::{exit, Error};
use crate::exec::ssh::target::RunOverrides;
use crate::output::Style;
use crate::{preflight, signals};

pub fn preflight(g: &Global, args: &PreflightArgs) -> Result<i32, Error> {
    let c = &args.checks;
    let opts = preflight::Options {
        skip_connectivity: c.skip_connectivity,
        skip_auth: c.skip_auth,
        skip_sudo: c.skip_sudo,
        skip_disk: c.skip_disk,
        timeout: c.timeout,
        parallel: c.parallel,
    };
    let config = load(g)?;
    // Task arguments may follow task names, as for `run`; the checks do not use them.
    let (targets, _) = crate::bind::bind(&config, &args.targets, &[])?;
    let p = prepare(
        config,
        &targets,
        args.hosts.as_deref(),
        &RunOverrides::default(),
        None,
    )?;
    // Ctrl-C ends the checks (connections close, ProxyCommands end) and nexus with 130.
    signals::install();
    let report = preflight::run(
        &p.config,
        &p.plan,
        p.info.ssh.as_ref(),
        p.hosts_override.as_deref(),
        &opts,
    );
    if signals::cancelled() {
        return Ok(exit::INTERRUPTED);
    }
    match args.format {
        PreflightFormat::Json => print(&format!("{}\n", preflight::to_json(&report)))?,
        f => print(&preflight::render_text(
            &report,
            Style::for_stdout(g.plain),
            f == PreflightFormat::Quiet,
        ))?,
    };
    Ok(if args.force {
        exit::SUCCESS
    } else {
        report.exit_code()
    })
}
