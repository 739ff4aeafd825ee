//! `nexus run --dry-run`: the plan by phase with every command as it would run
//! (placeholders expanded; `{{ host }}` kept when a task has several hosts), its
//! annotations, and a summary with an estimate from earlier runs' journals.
//! Must not: run, connect (the pre-flight checks do that) or write anything.

use serde_json::json;

use crate::config::{duration, Command, Config, Strategy, Target};
use crate::plan::Plan;
use crate::run::RunInfo;

/// What one file step would do on one target: task, host, the step's line, and its
/// report or why the target could not be read.
pub struct FilePreview {
    pub task: String,
    pub host: String,
    pub step: String,
    pub seen: Result<crate::transfer::Report, String>,
}

/// Look at every file step of the plan on each of its targets (read-only).
pub fn preview_files(
    config: &Config,
    plan: &Plan,
    run: &RunInfo,
    hosts_override: Option<&[Target]>,
    diff: bool,
) -> Vec<FilePreview> {
    let mut out = Vec::new();
    for &i in &plan.tasks {
        let t = &config.tasks[i];
        if !t.commands.iter().any(|c| c.file.is_some()) {
            continue;
        }
        for target in crate::run::effective_targets(t, hosts_override) {
            if crate::signals::cancelled() {
                return out;
            }
            let host = target.label();
            let seen = crate::run::unit::preview(run, &config.env, t, &host, &target, diff);
            out.extend(seen.into_iter().map(|(step, seen)| FilePreview {
                task: t.name.clone(),
                host: host.clone(),
                step,
                seen,
            }));
        }
    }
    out
}

fn files_text(files: &[FilePreview]) -> String {
    if files.is_empty() {
        return String::new();
    }
    let mut s = String::from("\nFile steps (read from the targets; nothing written)\n");
    for f in files {
        let unit = if f.host == "local" {
            f.task.clone()
        } else {
            format!("{}@{}", f.task, f.host)
        };
        let what = match &f.seen {
            Ok(r) if r.changed => format!(
                "would change {} of {} file{} ({} to move)",
                r.files,
                r.total,
                if r.total == 1 { "" } else { "s" },
                crate::preflight::bytes(r.bytes)
            ),
            Ok(r) => format!(
                "unchanged ({} file{})",
                r.total,
                if r.total == 1 { "" } else { "s" }
            ),
            Err(why) => format!("cannot tell: {why}"),
        };
        s += &format!("  {unit}: {}: {what}\n", f.step);
        for d in f.seen.iter().flat_map(|r| r.diffs.iter()) {
            for line in d.lines() {
                s += &format!("    {line}\n");
            }
        }
    }
    s
}

fn files_json(files: &[FilePreview]) -> serde_json::Value {
    files
        .iter()
        .map(|f| match &f.seen {
            Ok(r) => json!({ "task": f.task, "host": f.host, "step": f.step, "changed": r.changed,
                             "files": r.files, "total": r.total, "bytes": r.bytes, "diffs": r.diffs }),
            Err(why) => json!({ "task": f.task, "host": f.host, "step": f.step, "error": why }),
        })
        .collect()
}

/// One task of the plan as shown.
struct Shown {
    name: String,
    phase: usize,
    targets: Vec<String>,
    strategy: &'static str,
    commands: Vec<(String, Vec<String>)>,
    /// The up-to-date check now: (up to date, reasons, a dependency runs first).
    check: Option<(bool, Vec<String>, bool)>,
    /// The task's own `creates` / `unless`, as written.
    guards: Vec<String>,
    /// A rolling task's batches: (hosts, canary).
    batches: Vec<(Vec<String>, bool)>,
    /// `wait_for`, `max_fail`, `rollback`, `canary_wait`, handlers notified, as notes.
    rollout: Vec<String>,
}

/// The batches of a rolling task over `targets`.
fn batches(t: &crate::config::Task, targets: &[String]) -> Vec<(Vec<String>, bool)> {
    if t.strategy != Strategy::Rolling {
        return Vec::new();
    }
    let Some(plan) = t.rollout_plan() else {
        return Vec::new();
    };
    crate::run::rollout::batches(targets.len(), &plan)
        .into_iter()
        .enumerate()
        .map(|(k, r)| (targets[r].to_vec(), k == 0 && plan.canary.is_some()))
        .collect()
}

/// What a rollout adds to a task: its health check, budget, rollback, handlers.
fn rollout_notes(t: &crate::config::Task) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(r) = &t.rollout {
        if let Some(w) = &r.wait_for {
            a.push(format!(
                "wait_for: {} (every {}, {} in a row, within {})",
                w.text,
                duration::display(w.interval),
                w.successes,
                duration::display(w.timeout)
            ));
        }
        if let Some(m) = r.max_fail {
            a.push(format!("max_fail: {}", m.display()));
        }
        if !r.canary_wait.is_zero() {
            a.push(format!("canary_wait: {}", duration::display(r.canary_wait)));
        }
        if !r.rollback.is_empty() {
            let steps: Vec<&str> = r.rollback.iter().map(|c| c.text.as_str()).collect();
            a.push(format!("rollback: {}", steps.join("; ")));
        }
    }
    if t.run_once {
        a.push("run_once".into());
    }
    if t.force_handlers {
        a.push("force_handlers".into());
    }
    a
}

fn annotations(c: &Command, task: &crate::config::Task) -> Vec<String> {
    let mut a = Vec::new();
    if task.interactive {
        a.push("interactive".into());
    }
    match (&c.user, c.sudo) {
        (Some(u), _) => a.push(format!("sudo:{u}")),
        (None, true) => a.push("sudo".into()),
        _ => {}
    }
    if c.retries > 0 {
        a.push(format!("retries:{}", c.retries));
    }
    if let Some(t) = c.timeout {
        a.push(format!("timeout:{}", duration::display(t)));
    }
    if c.pty {
        a.push("pty".into());
    }
    if c.continue_on_error || task.continue_on_error {
        a.push("continue_on_error".into());
    }
    if !c.notify.is_empty() {
        let names: Vec<&str> = c.notify.iter().map(|n| n.value.as_str()).collect();
        a.push(format!("notify:{}", names.join(",")));
    }
    a.extend(guard_notes(&c.guard));
    a
}

/// `creates:PATH`, `unless:CMD` as written.
fn guard_notes(g: &crate::config::Guard) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(p) = &g.creates {
        a.push(format!("creates:{}", p.value.source()));
    }
    if let Some(u) = &g.unless {
        a.push(format!("unless:{}", u.value.source()));
    }
    a
}

/// What the up-to-date check of each task of the plan says now (`run` of those that
/// would run, so that their dependents are known to be checked again).
fn checks(config: &Config, plan: &Plan, run: &RunInfo) -> Vec<Option<(bool, Vec<String>, bool)>> {
    let mut runs = vec![false; config.tasks.len()];
    let mut out = Vec::new();
    for &i in &plan.tasks {
        let t = &config.tasks[i];
        let dep_runs = t.deps.iter().any(|&d| runs[d]);
        let local = t.targets.iter().all(|x| matches!(x, Target::Local));
        let check = if t.commands.is_empty() || !local {
            None
        } else {
            run.uptodate.check(t, run)
        };
        let shown = check.map(|d| match d {
            crate::uptodate::Decision::Skip(r) => (true, r, dep_runs),
            crate::uptodate::Decision::Run { reasons, .. } => (false, reasons, dep_runs),
        });
        runs[i] = match &shown {
            Some((fresh, _, _)) => !fresh || dep_runs,
            None => !t.commands.is_empty() || dep_runs,
        };
        out.push(shown);
    }
    out
}

/// ` (up to date: …)` / ` (runs: …)` after a task's name in the plan.
fn check_note(check: &Option<(bool, Vec<String>, bool)>) -> String {
    match check {
        None => String::new(),
        Some((true, why, false)) => format!("  (up to date, skipped: {})", why.join(", ")),
        Some((true, why, true)) => format!(
            "  (up to date now: {}; checked again after its dependencies run)",
            why.join(", ")
        ),
        Some((false, why, _)) => format!("  (runs: {})", why.join(", ")),
    }
}

fn shown(
    config: &Config,
    plan: &Plan,
    run: &RunInfo,
    hosts_override: Option<&[Target]>,
) -> Vec<Shown> {
    let mut checks = checks(config, plan, run).into_iter();
    plan.tasks
        .iter()
        .zip(&plan.phase)
        .map(|(&i, &phase)| {
            let t = &config.tasks[i];
            let targets: Vec<String> = crate::run::effective_targets(t, hosts_override)
                .iter()
                .map(Target::label)
                .collect();
            let single = (targets.len() == 1).then(|| targets[0].clone());
            let commands = t
                .commands
                .iter()
                .map(|c| {
                    // With several hosts, `{{ host }}` is shown as written.
                    let host = single.as_deref().unwrap_or("{{ host }}");
                    let text = match c.template.value.render(&run.context(&t.name, host)) {
                        Ok(text) => text,
                        Err(e) => format!(
                            "{}  (cannot render: {})",
                            c.template.value.source(),
                            e.message
                        ),
                    };
                    (text, annotations(c, t))
                })
                .collect();
            Shown {
                name: t.name.clone(),
                phase,
                targets: targets.clone(),
                strategy: match t.strategy {
                    Strategy::Parallel => "parallel",
                    Strategy::Serial => "serial",
                    Strategy::Rolling => "rolling",
                },
                commands,
                check: checks.next().flatten(),
                guards: guard_notes(&t.checks.guard),
                batches: batches(t, &targets),
                rollout: rollout_notes(t),
            }
        })
        .collect()
}

/// Median duration of the project's earlier successful runs of the same targets, from
/// the journals.
pub fn estimate(config: &Config, targets: &[String]) -> Option<(std::time::Duration, usize)> {
    let home = crate::state::home();
    let project = crate::state::project_of(&config.path);
    let scope = crate::state::Scope::Project(&project);
    let (runs, _) = crate::state::history::history_light(&home, scope).ok()?;
    let key = crate::state::target_key(targets);
    let mut d: Vec<u64> = runs
        .iter()
        .filter(|r| {
            r.state == crate::state::history::RunState::Success
                && crate::state::target_key(&r.header.targets) == key
        })
        .filter_map(|r| r.duration_ms)
        .collect();
    if d.is_empty() {
        return None;
    }
    d.sort_unstable();
    Some((std::time::Duration::from_millis(d[d.len() / 2]), d.len()))
}

fn counts(tasks: &[Shown]) -> (usize, usize, usize) {
    let phases = tasks.iter().map(|t| t.phase).max().map_or(0, |p| p + 1);
    let mut hosts: Vec<&String> = tasks
        .iter()
        .flat_map(|t| t.targets.iter())
        .filter(|h| h.as_str() != "local")
        .collect();
    hosts.sort();
    hosts.dedup();
    let commands = tasks
        .iter()
        .map(|t| t.commands.len() * t.targets.len())
        .sum();
    (phases, hosts.len(), commands)
}

pub fn render_text(
    config: &Config,
    plan: &Plan,
    run: &RunInfo,
    hosts_override: Option<&[Target]>,
    preflight: &str,
    files: &[FilePreview],
    unicode: bool,
) -> String {
    let tasks = shown(config, plan, run, hosts_override);
    let (bullet, mid, last) = if unicode {
        ("●", "├─", "└─")
    } else {
        ("*", "|-", "`-")
    };
    let mut s = String::from("DRY RUN: no command will be executed\n\n");
    s += preflight;
    s += "\nExecution plan\n";
    let phases = tasks.iter().map(|t| t.phase).max().map_or(0, |p| p + 1);
    for phase in 0..phases {
        let in_phase: Vec<&Shown> = tasks.iter().filter(|t| t.phase == phase).collect();
        let how = if in_phase.len() > 1 {
            " (parallel)"
        } else {
            ""
        };
        s += &format!("\n  Phase {}{how}:\n", phase + 1);
        for t in in_phase {
            let strategy = strategy_note(t);
            let guards = if t.guards.is_empty() {
                String::new()
            } else {
                format!("  [{}]", t.guards.join("] ["))
            };
            s += &format!(
                "    {bullet} {} [{}]{strategy}{guards}{}\n",
                t.name,
                t.targets.join(", "),
                check_note(&t.check)
            );
            s += &rollout_text(t);
            if t.commands.is_empty() {
                s += &format!("      {last} (aggregate: no commands)\n");
            }
            for (i, (cmd, ann)) in t.commands.iter().enumerate() {
                let branch = if i + 1 == t.commands.len() { last } else { mid };
                let ann = if ann.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", ann.join("] ["))
                };
                // A multi-line command (a script): its lines under its first.
                let cont = if i + 1 == t.commands.len() {
                    "  "
                } else {
                    "| "
                };
                let cont = if unicode && cont == "| " {
                    "│ "
                } else {
                    cont
                };
                let mut lines = cmd.trim_end().lines();
                s += &format!("      {branch} {}{ann}\n", lines.next().unwrap_or(""));
                for l in lines {
                    s += format!("      {cont} {l}").trim_end();
                    s.push('\n');
                }
            }
        }
    }
    s += &files_text(files);
    let (phases, hosts, commands) = counts(&tasks);
    s += "\nSummary\n";
    s += &format!("  Tasks:     {} tasks, {phases} phases\n", tasks.len());
    s += &format!("  Hosts:     {hosts} unique remote hosts\n");
    s += &format!("  Commands:  {commands} commands in all (per host)\n");
    s += &match estimate(config, &plan.targets) {
        Some((d, n)) => format!(
            "  Estimated: ~{} (median of {n} previous successful run{})\n",
            crate::timefmt::secs(d),
            if n == 1 { "" } else { "s" }
        ),
        None => "  Estimated: none (no previous successful runs of these targets)\n".into(),
    };
    s += "\nRun without --dry-run to execute.\n";
    s
}

/// `, serial: one host at a time` or `, rolling: 3 batches` after a task's hosts.
fn strategy_note(t: &Shown) -> String {
    if t.targets.len() > 1 && t.strategy == "serial" {
        ", serial: one host at a time".to_string()
    } else if !t.batches.is_empty() {
        format!(", rolling: {} batches", t.batches.len())
    } else {
        String::new()
    }
}

/// A rolling task's batches and rollout notes, under its line in the plan.
fn rollout_text(t: &Shown) -> String {
    let mut s = String::new();
    for (k, (hosts, canary)) in t.batches.iter().enumerate() {
        let what = if *canary { "canary batch" } else { "batch" };
        s += &format!("      {what} {}: {}\n", k + 1, hosts.join(", "));
    }
    for note in &t.rollout {
        s += &format!("      {note}\n");
    }
    s
}

pub fn to_json(
    config: &Config,
    plan: &Plan,
    run: &RunInfo,
    hosts_override: Option<&[Target]>,
    preflight: serde_json::Value,
    files: &[FilePreview],
) -> serde_json::Value {
    let tasks = shown(config, plan, run, hosts_override);
    let (phases, hosts, commands) = counts(&tasks);
    let est = estimate(config, &plan.targets);
    json!({
        "dry_run": true,
        "targets": plan.targets,
        "preflight": preflight,
        "phases": (0..phases).map(|p| json!({
            "phase": p + 1,
            "tasks": tasks.iter().filter(|t| t.phase == p).map(|t| json!({
                "task": t.name,
                "targets": t.targets,
                "strategy": t.strategy,
                "guards": t.guards,
                "batches": t.batches.iter().map(|(h, _)| h).collect::<Vec<_>>(),
                "rollout": t.rollout,
                "up_to_date": t.check.as_ref().map(|c| c.0),
                "reasons": t.check.as_ref().map(|c| c.1.clone()),
                "checked_after_deps": t.check.as_ref().map(|c| c.2),
                "commands": t.commands.iter().map(|(c, a)| json!({"command": c, "annotations": a})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "files": files_json(files),
        "summary": {
            "tasks": tasks.len(),
            "phases": phases,
            "hosts": hosts,
            "commands": commands,
            "estimate_ms": est.map(|(d, _)| d.as_millis() as u64),
            "estimate_runs": est.map(|(_, n)| n),
        },
    })
}
