//! Pre-flight checks (REQ-0172..0176): configuration, host connectivity (TCP connect to
//! the SSH port, latency, server banner), SSH authentication (which method worked), sudo
//! (`sudo -n true`, only where the plan uses sudo). Checks run in parallel across hosts;
//! a host that fails a check has its later checks skipped with the reason. Rendering as
//! text (REQ-0174/0175 layout), quiet (failures only) or one JSON document.
//! Must not: run any task command or write anything on a host.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::config::{Config, Target};
use crate::error::exit;
use crate::exec::ssh::{connect, remote, SshContext};
use crate::exec::ExecResult;
use crate::output::Style;
use crate::plan::Plan;

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
    let mut checks = Vec::new();
    let file = crate::config::display_path(&config.path);
    let cfg = |subject: String| Check {
        group: "Configuration",
        subject,
        mark: Mark::Pass,
        detail: String::new(),
        suggestions: vec![],
        duration: Duration::ZERO,
    };
    checks.push(cfg(format!("{} valid", file.display())));
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

    let hosts = remote_hosts(config, plan, override_);
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
                let found = ssh.and_then(|s| s.target(spec));
                let host_checks = match found {
                    Some((_, target)) => check_host(&label, target, *sudo, opts),
                    None => vec![],
                };
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, host_checks));
            });
        }
    });
    let mut per_host = results.into_inner().unwrap_or_else(|e| e.into_inner());
    per_host.sort_by_key(|(i, _)| *i);
    // Group by check kind, hosts in plan order within each group.
    for group in &GROUPS[1..] {
        for (_, hc) in &per_host {
            checks.extend(hc.iter().filter(|c| c.group == *group).cloned());
        }
    }
    // Local sudo, when local tasks use it.
    let local_sudo = plan.tasks.iter().any(|&i| {
        let t = &config.tasks[i];
        t.targets.contains(&Target::Local) && t.commands.iter().any(|c| c.sudo)
    });
    if local_sudo && !opts.skip_sudo {
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
        checks.push(Check {
            group: "Sudo Access",
            subject: "local".into(),
            mark,
            suggestions: sudo_suggestions(mark, &crate::userenv::user_name()),
            detail,
            duration: t0.elapsed(),
        });
    }
    Report {
        targets: plan.targets.clone(),
        checks,
        elapsed: start.elapsed(),
    }
}

fn sudo_suggestions(mark: Mark, user: &str) -> Vec<String> {
    if mark != Mark::Fail {
        return vec![];
    }
    vec![
        format!("allow it without a password: echo \"{user} ALL=(ALL) NOPASSWD:ALL\" > /etc/sudoers.d/{user}"),
        "or use --skip-sudo-check if sudo is not required".into(),
    ]
}

fn skip(group: &'static str, label: &str, why: &str) -> Check {
    Check {
        group,
        subject: label.to_string(),
        mark: Mark::Skip,
        detail: format!("skipped - {why}"),
        suggestions: vec![],
        duration: Duration::ZERO,
    }
}

fn check_host(
    label: &str,
    t: &crate::exec::ssh::target::SshTarget,
    sudo: bool,
    opts: &Options,
) -> Vec<Check> {
    let mut out = Vec::new();
    let mut reachable = true;
    if !opts.skip_connectivity {
        // Through ProxyJump only the first hop can be reached directly.
        let first = t.jumps.first().unwrap_or(t);
        let t0 = Instant::now();
        let c = match tcp_banner(&first.hostname, first.port, opts.timeout) {
            Ok(banner) => Check {
                group: "Host Connectivity",
                subject: label.to_string(),
                mark: Mark::Pass,
                detail: format!(
                    "{}:{}, {}ms, {banner}",
                    first.hostname,
                    first.port,
                    t0.elapsed().as_millis()
                ),
                suggestions: vec![],
                duration: t0.elapsed(),
            },
            Err(reason) => {
                reachable = false;
                Check {
                    group: "Host Connectivity",
                    subject: label.to_string(),
                    mark: Mark::Fail,
                    detail: format!("{reason} ({}:{})", first.hostname, first.port),
                    suggestions: vec![
                        format!("Verify SSH is running: nc -zv {} {}", first.hostname, first.port),
                        format!("Check the host name and port of `{label}` (nexus hosts resolve {label})"),
                        "Check firewalls between here and the host".into(),
                    ],
                    duration: t0.elapsed(),
                }
            }
        };
        out.push(c);
    }
    let mut conn = None;
    let mut why_skip = "host unreachable";
    if opts.skip_auth {
        // Nothing to check; sudo needs a session, so it is skipped too.
    } else if !reachable {
        out.push(skip("SSH Authentication", label, "host unreachable"));
    } else {
        let t0 = Instant::now();
        let mut bounded = t.clone();
        bounded.connect_timeout = bounded.connect_timeout.min(opts.timeout);
        match connect::connect(&bounded) {
            Ok(c) => {
                out.push(Check {
                    group: "SSH Authentication",
                    subject: label.to_string(),
                    mark: Mark::Pass,
                    detail: format!("{} as {}", c.auth, t.user),
                    suggestions: vec![],
                    duration: t0.elapsed(),
                });
                conn = Some(c);
            }
            Err(e) => {
                reachable = false;
                why_skip = "authentication failed";
                out.push(Check {
                    group: "SSH Authentication",
                    subject: label.to_string(),
                    mark: Mark::Fail,
                    detail: e.reason.clone(),
                    suggestions: e.suggestions.clone(),
                    duration: t0.elapsed(),
                });
            }
        }
    }
    if sudo && !opts.skip_sudo {
        match &conn {
            None if !reachable => out.push(skip("Sudo Access", label, why_skip)),
            None => out.push(skip("Sudo Access", label, "no SSH session (--skip-auth)")),
            Some(c) => {
                let t0 = Instant::now();
                let mut err = Vec::new();
                let cmd = remote::RemoteCommand {
                    line: "sudo -n true".into(),
                    dir: None,
                    env: vec![],
                    sudo: None,
                    pty: false,
                };
                let (res, _) = remote::exec(c, &cmd, Instant::now() + opts.timeout, &mut |s, d| {
                    if s == crate::exec::Stream::Stderr {
                        err.extend_from_slice(d);
                    }
                });
                let (mark, detail) = match res {
                    ExecResult::Exited(0) => (Mark::Pass, "NOPASSWD confirmed".to_string()),
                    ExecResult::TimedOut => (Mark::Fail, "sudo -n true timed out".to_string()),
                    other => {
                        // sshd may print its own notices first; sudo's word is the last line.
                        let text = String::from_utf8_lossy(&err).to_string();
                        let msg = text.lines().last().unwrap_or("").trim().to_string();
                        let msg = if msg.is_empty() {
                            format!("sudo -n true failed ({other:?})")
                        } else {
                            format!("\"{msg}\"")
                        };
                        (Mark::Fail, msg)
                    }
                };
                out.push(Check {
                    group: "Sudo Access",
                    subject: label.to_string(),
                    mark,
                    suggestions: sudo_suggestions(mark, &t.user),
                    detail,
                    duration: t0.elapsed(),
                });
            }
        }
    }
    out
}

/// TCP connect and read the server's identification line.
fn tcp_banner(host: &str, port: u16, timeout: Duration) -> Result<String, String> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {}", crate::error::io_reason(&e)))?
        .collect();
    let mut last = String::from("no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(timeout));
                let mut buf = [0u8; 256];
                let mut got = Vec::new();
                while !got.contains(&b'\n') && got.len() < 255 {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&got);
                let banner = line.lines().next().unwrap_or("").trim().to_string();
                return Ok(if banner.is_empty() {
                    "no banner".into()
                } else {
                    banner
                });
            }
            Err(e) => {
                last = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => "Connection refused".into(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                        format!(
                            "timed out after {}",
                            crate::config::duration::display(timeout)
                        )
                    }
                    _ => crate::error::io_reason(&e),
                }
            }
        }
    }
    Err(last)
}

fn mark_text(style: Style, m: Mark) -> String {
    use nu_ansi_term::Color;
    let (sym, word, color) = match m {
        Mark::Pass => ("✓", "ok  ", Color::Green),
        Mark::Fail => ("✗", "FAIL", Color::Red),
        Mark::Skip => ("⊘", "skip", Color::Yellow),
    };
    let text = if style.unicode { sym } else { word };
    if style.color {
        color.bold().paint(text).to_string()
    } else {
        text.to_string()
    }
}

/// The REQ-0174/0175 text. `quiet` prints only the failures.
pub fn render_text(r: &Report, style: Style, quiet: bool) -> String {
    let mut s = String::new();
    let failures = r.failures();
    if !quiet {
        s += &format!("Pre-flight checks for: {}\n", r.targets.join(", "));
        for group in GROUPS {
            let items: Vec<&Check> = r.checks.iter().filter(|c| c.group == *group).collect();
            if items.is_empty() {
                continue;
            }
            let counted = items.iter().filter(|c| c.mark != Mark::Skip).count();
            let passed = items.iter().filter(|c| c.mark == Mark::Pass).count();
            if *group == "Configuration" {
                s += &format!("\n{group}\n");
            } else {
                s += &format!("\n{group} [{passed}/{counted}]\n");
            }
            for c in items {
                let detail = if c.detail.is_empty() {
                    String::new()
                } else if c.mark == Mark::Fail {
                    format!("  {}", c.detail)
                } else {
                    format!("  ({})", c.detail)
                };
                s += &format!("  {} {}{detail}\n", mark_text(style, c.mark), c.subject);
            }
        }
        s.push('\n');
        if failures.is_empty() {
            s += &format!(
                "{} All pre-flight checks passed ({} checks in {})\n",
                mark_text(style, Mark::Pass).trim_end(),
                r.checks.iter().filter(|c| c.mark == Mark::Pass).count(),
                crate::timefmt::secs(r.elapsed)
            );
            return s;
        }
        s += &format!(
            "{} Pre-flight checks failed ({} error{})\n",
            mark_text(style, Mark::Fail),
            failures.len(),
            if failures.len() == 1 { "" } else { "s" }
        );
    }
    if failures.is_empty() {
        return s;
    }
    s += "\nErrors:\n";
    let arrow = if style.unicode { "→" } else { "->" };
    for (i, c) in failures.iter().enumerate() {
        let what = match c.group {
            "Sudo Access" => format!("sudo not available: {}", c.detail),
            _ => c.detail.clone(),
        };
        s += &format!("  {}. {}: {what}\n", i + 1, c.subject);
        for sug in &c.suggestions {
            s += &format!("     {arrow} {sug}\n");
        }
        s.push('\n');
    }
    if !quiet {
        s += "Run with --force to skip failed hosts and continue with available hosts.\n";
    }
    s
}

pub fn to_json(r: &Report) -> serde_json::Value {
    json!({
        "targets": r.targets,
        "passed": r.failures().is_empty(),
        "exit_code": r.exit_code(),
        "duration_ms": r.elapsed.as_millis() as u64,
        "checks": r.checks.iter().map(|c| json!({
            "group": c.group, "subject": c.subject, "status": c.mark.name(),
            "detail": c.detail, "duration_ms": c.duration.as_millis() as u64,
        })).collect::<Vec<_>>(),
        "errors": r.failures().iter().map(|c| json!({
            "group": c.group, "subject": c.subject, "reason": c.detail, "suggestions": c.suggestions,
        })).collect::<Vec<_>>(),
    })
}
