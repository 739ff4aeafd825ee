//! Pre-flight checks (docs/commands.md, "preflight"): configuration, host connectivity (TCP connect to
//! the SSH port, latency, server banner), SSH authentication (which method worked), sudo
//! (`sudo -n true`, only where the plan uses sudo), and free disk space for the run's
//! journal. Checks run in parallel across hosts (`host`); `render` shows the report.
//! Must not: run any task command or write anything on a host.

mod host;
mod render;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use render::{render_text, to_json};

use crate::config::{Config, Target};
use crate::error::exit;
use crate::exec::ssh::SshContext;
use crate::plan::Plan;

/// Free space below which the state directory fails the disk check: a run journal keeps
/// up to 64 KiB of output per command.
pub const MIN_STATE_FREE: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Options {
    pub skip_connectivity: bool,
    pub skip_auth: bool,
    pub skip_sudo: bool,
    pub skip_disk: bool,
    pub timeout: Duration,
    pub parallel: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Pass,
    Fail,
    Skip,
}

impl Mark {
    fn name(self) -> &'static str {
        match self {
            Mark::Pass => "passed",
            Mark::Fail => "failed",
            Mark::Skip => "skipped",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub group: &'static str,
    pub subject: String,
    pub mark: Mark,
    pub detail: String,
    /// For failures: the reason and what to try.
    pub suggestions: Vec<String>,
    pub duration: Duration,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub targets: Vec<String>,
    pub checks: Vec<Check>,
    pub elapsed: Duration,
}

pub const GROUPS: &[&str] = &[
    "Configuration",
    "Host Connectivity",
    "SSH Authentication",
    "Sudo Access",
    "Disk Space",
];

impl Report {
    pub fn failures(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.mark == Mark::Fail)
            .collect()
    }

    /// Hosts that failed connectivity or authentication.
    pub fn unavailable(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| {
                c.mark == Mark::Fail
                    && matches!(c.group, "Host Connectivity" | "SSH Authentication")
            })
            .map(|c| c.subject.clone())
            .collect()
    }

    /// 0 all passed; 3 a connectivity/auth check failed; 1 any other failed.
    pub fn exit_code(&self) -> i32 {
        let f = self.failures();
        if f.is_empty() {
            exit::SUCCESS
        } else if f
            .iter()
            .any(|c| matches!(c.group, "Host Connectivity" | "SSH Authentication"))
        {
            exit::SSH
        } else {
            exit::FAILED
        }
    }
}

/// The remote hosts of the plan, and whether any of their tasks uses sudo.
fn remote_hosts(
    config: &Config,
    plan: &Plan,
    override_: Option<&[Target]>,
) -> Vec<(crate::config::host::HostSpec, bool)> {
    let mut out: Vec<(crate::config::host::HostSpec, bool)> = Vec::new();
    for &i in &plan.tasks {
        let task = &config.tasks[i];
        if task.commands.is_empty() {
            continue;
        }
        let sudo = task.commands.iter().any(|c| c.sudo);
        for t in crate::run::effective_targets(task, override_) {
            if let Target::Remote(h) = t {
                match out.iter_mut().find(|(x, _)| *x == h) {
                    Some(e) => e.1 |= sudo,
                    None => out.push((h, sudo)),
                }
            }
        }
    }
    out
}

/// Run the checks. `ssh` is the run's prepared SSH context (None when no remote hosts).
pub fn run(
    config: &Config,
    plan: &Plan,
    ssh: Option<&SshContext>,
    override_: Option<&[Target]>,
    opts: &Options,
) -> Report {
    let start = Instant::now();
    let mut checks = config_checks(config, plan);
    let per_host = host_checks(&remote_hosts(config, plan, override_), ssh, opts);
    // Group by check kind, hosts in plan order within each group.
    for group in &GROUPS[1..] {
        for hc in &per_host {
            checks.extend(hc.iter().filter(|c| c.group == *group).cloned());
        }
    }
    let local_sudo = plan.tasks.iter().any(|&i| {
        let t = &config.tasks[i];
        t.targets.contains(&Target::Local) && t.commands.iter().any(|c| c.sudo)
    });
    if local_sudo && !opts.skip_sudo {
        checks.push(local_sudo_check());
    }
    if !opts.skip_disk {
        checks.push(state_disk_check(&crate::state::home()));
    }
    Report {
        targets: plan.targets.clone(),
        checks,
        elapsed: start.elapsed(),
    }
}

fn config_checks(config: &Config, plan: &Plan) -> Vec<Check> {
    let file = crate::config::display_path(&config.path);
    let cfg = |subject: String| Check {
        group: "Configuration",
        subject,
        mark: Mark::Pass,
        detail: String::new(),
        suggestions: vec![],
        duration: Duration::ZERO,
    };
    let mut checks = vec![cfg(format!("{} valid", file.display()))];
    for t in &plan.targets {
        checks.push(cfg(format!("task {t} exists")));
    }
    let chain: Vec<&str> = plan
        .tasks
        .iter()
        .map(|&t| config.tasks[t].name.as_str())
        .collect();
    checks.push(cfg(format!(
        "dependencies resolved: {}",
        chain.join(" -> ")
    )));
    checks.extend(source_checks(config, plan));
    checks
}

/// The local sources of the plan's upload steps exist (template files were read when
/// nexus.toml was loaded); a source that uses variables is left to the run.
fn source_checks(config: &Config, plan: &Plan) -> Vec<Check> {
    let mut out = Vec::new();
    for &i in &plan.tasks {
        let t = &config.tasks[i];
        for c in &t.commands {
            let Some(step) = c.file.as_deref() else {
                continue;
            };
            let what = match step.kind {
                crate::config::model::FileKind::Upload => "upload source",
                crate::config::model::FileKind::Template => "template",
                crate::config::model::FileKind::Download => continue,
            };
            let rel = step.from.value.source();
            if !step.from.value.is_literal() {
                continue;
            }
            let found = std::fs::metadata(config.root.join(rel));
            let mut check = Check {
                group: "Configuration",
                subject: format!("{what} {rel} (task {})", t.name),
                mark: Mark::Pass,
                detail: String::new(),
                suggestions: vec![],
                duration: Duration::ZERO,
            };
            if let Err(e) = found {
                check.mark = Mark::Fail;
                check.detail = crate::error::io_reason(&e);
                check.suggestions = vec![
                    "paths of upload sources are relative to the project root, the directory of nexus.toml".into(),
                ];
            }
            out.push(check);
        }
    }
    out
}

/// Each host's checks, `opts.parallel` hosts at a time, in the order of `hosts`.
fn host_checks(
    hosts: &[(crate::config::host::HostSpec, bool)],
    ssh: Option<&SshContext>,
    opts: &Options,
) -> Vec<Vec<Check>> {
    let results: Mutex<Vec<(usize, Vec<Check>)>> = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    let workers = opts.parallel.max(1).min(hosts.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((spec, sudo)) = hosts.get(i) else {
                    break;
                };
                let label = spec.label();
                let checks = match ssh.and_then(|s| s.target(spec)) {
                    Some((_, target)) => host::check_host(&label, target, *sudo, opts),
                    None => vec![],
                };
                let mut r = results.lock().unwrap_or_else(|e| e.into_inner());
                r.push((i, checks));
            });
        }
    });
    let mut per_host = results.into_inner().unwrap_or_else(|e| e.into_inner());
    per_host.sort_by_key(|(i, _)| *i);
    per_host.into_iter().map(|(_, c)| c).collect()
}

/// `sudo -n true` here, when local tasks use sudo.
fn local_sudo_check() -> Check {
    let t0 = Instant::now();
    let out = std::process::Command::new("sudo")
        .args(["-n", "true"])
        .stdin(std::process::Stdio::null())
        .output();
    let (mark, detail) = match out {
        Ok(o) if o.status.success() => (Mark::Pass, "NOPASSWD confirmed".to_string()),
        Ok(o) => (
            Mark::Fail,
            String::from_utf8_lossy(&o.stderr).trim().to_string(),
        ),
        Err(e) => (
            Mark::Fail,
            format!("cannot run sudo: {}", crate::error::io_reason(&e)),
        ),
    };
    Check {
        group: "Sudo Access",
        subject: "local".into(),
        mark,
        suggestions: host::sudo_suggestions(mark, &crate::userenv::user_name()),
        detail,
        duration: t0.elapsed(),
    }
}

/// Room for the run journal: free space where `$NEXUS_HOME` is (or would be created).
pub fn state_disk_check(home: &std::path::Path) -> Check {
    let t0 = Instant::now();
    let existing = home.ancestors().find(|p| p.exists()).unwrap_or(home);
    let subject = format!("state directory {}", home.display());
    let (mark, detail, suggestions) = match crate::sys::free_space(existing) {
        Ok(free) if free >= MIN_STATE_FREE => (Mark::Pass, format!("{} free", bytes(free)), vec![]),
        Ok(free) => (
            Mark::Fail,
            format!(
                "only {} free; the run journal needs at least {}",
                bytes(free),
                bytes(MIN_STATE_FREE)
            ),
            vec![format!(
                "free space on the file system of {}, or set NEXUS_HOME to a directory with room",
                existing.display()
            )],
        ),
        Err(e) => (
            Mark::Fail,
            format!(
                "cannot read free space of {}: {}",
                existing.display(),
                crate::error::io_reason(&e)
            ),
            vec!["set NEXUS_HOME to a directory nexus can use".into()],
        ),
    };
    Check {
        group: "Disk Space",
        subject,
        mark,
        detail,
        suggestions,
        duration: t0.elapsed(),
    }
}

/// `1.5 GB`, `320 MB`, `12 KB`, `17 B` (decimal units).
pub fn bytes(n: u64) -> String {
    const UNITS: &[(u64, &str)] = &[(1_000_000_000, "GB"), (1_000_000, "MB"), (1_000, "KB")];
    for &(size, unit) in UNITS {
        if n >= size {
            return format!("{:.1} {unit}", n as f64 / size as f64);
        }
    }
    format!("{n} B")
}
