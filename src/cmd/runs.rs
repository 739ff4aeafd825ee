//! `nexus runs`: the recent runs, one run in detail (`show`), or retention (`gc`).

use crate::error::warn;
use std::path::Path;
use std::time::Duration;

use super::print;
use crate::cli::args::{Global, RunsArgs};
use crate::error::Error;
use crate::run::capture::{Captured, Line};
use crate::state;
use crate::state::history::{self, RunState, Summary};
use crate::state::record::Record;
use crate::state::Scope;
use crate::timefmt;

pub fn runs(g: &Global, args: &RunsArgs) -> Result<i32, Error> {
    let home = state::home();
    // The project here, if any: outside every project, every project's runs are shown.
    let here = super::config_path(g).ok().map(|p| state::project_of(&p));
    let scope = |all: bool| match (&here, all) {
        (Some(p), false) => Scope::Project(p),
        _ => Scope::All,
    };
    match args {
        RunsArgs::List {
            interrupted,
            json,
            all,
        } => list(&home, scope(*all), *interrupted, *json),
        RunsArgs::Show(id) => show(&home, id),
        RunsArgs::Gc { keep, all } => {
            let n = history::gc(&home, scope(*all), *keep)?;
            let whose = match scope(*all) {
                Scope::Project(p) => format!("of {p}"),
                Scope::All => "of each project".to_string(),
            };
            print(&format!(
                "removed {n} run journals, kept the newest {keep} {whose}\n"
            ))
        }
    }
}

fn warn_unreadable(bad: &[(std::path::PathBuf, String)], runs: &[&Summary]) {
    for (p, why) in bad {
        warn(
            format_args!("unreadable run journal {}: {why}", p.display()),
            &[],
        );
    }
    for r in runs {
        if let Some((line, why)) = &r.problem {
            warn(format_args!("{}:{line}: {why}", r.path.display()), &[]);
        }
    }
}

fn duration_text(ms: Option<u64>) -> String {
    ms.map(|d| timefmt::secs(Duration::from_millis(d)))
        .unwrap_or_else(|| "-".into())
}

fn list(home: &Path, scope: Scope<'_>, interrupted: bool, json: bool) -> Result<i32, Error> {
    let (runs, bad) = history::history(home, scope)?;
    let runs: Vec<&Summary> = runs
        .iter()
        .filter(|r| !interrupted || r.state == RunState::Interrupted)
        .collect();
    warn_unreadable(&bad, &runs);
    if json {
        let v: Vec<serde_json::Value> = runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id(), "counter": r.header.counter, "started": r.started,
                    "targets": r.header.targets, "status": r.state.name(),
                    "duration_ms": r.duration_ms, "journal": r.path.display().to_string(),
                    "project": r.header.project(),
                })
            })
            .collect();
        return print(&format!("{}\n", serde_json::Value::Array(v)));
    }
    if runs.is_empty() {
        return print(match scope {
            Scope::Project(_) => {
                "no runs in this project (`nexus runs --all` lists every project's)\n"
            }
            Scope::All => "no runs\n",
        });
    }
    let all = scope == Scope::All;
    let mut head = vec!["ID", "RUN", "STARTED", "TARGETS", "STATUS", "DURATION"];
    if all {
        head.push("PROJECT");
    }
    let mut rows = vec![head.into_iter().map(String::from).collect::<Vec<_>>()];
    for r in &runs {
        let mut row = vec![
            r.id().to_string(),
            format!(
                "{} #{}",
                state::target_key(&r.header.targets),
                r.header.counter
            ),
            r.started.clone(),
            r.header.targets.join(","),
            r.state.name().to_string(),
            duration_text(r.duration_ms),
        ];
        if all {
            row.push(r.header.project().to_string());
        }
        rows.push(row);
    }
    print(&table(&rows))
}

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
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
    out
}

fn show(home: &Path, id: &str) -> Result<i32, Error> {
    let path = state::checked_journal_path(home, id)?;
    let (summary, read) = history::summarize(&path).map_err(|why| {
        Error::usage(format!(
            "cannot read run {id} from {}: {why}",
            path.display()
        ))
        .with_help("`nexus runs` lists the runs")
    })?;
    let mut out = format!(
        "Run {} ({} #{})\n  started:  {}\n  status:   {}\n  duration: {}\n  journal:  {}\n",
        summary.id(),
        state::target_key(&summary.header.targets),
        summary.header.counter,
        summary.started,
        summary.state.name(),
        duration_text(summary.duration_ms),
        path.display()
    );
    if let Some((line, why)) = &summary.problem {
        out += &format!("  warning:  line {line}: {why}\n");
    }
    out += "\nTasks:\n";
    for r in read.records() {
        record_text(&mut out, r);
    }
    artifacts_text(&mut out, read.records());
    print(&out)
}

/// The run's staged artifacts: task, host, path, size, SHA-256 (the latest staging of
/// each task and host).
fn artifacts_text<'a>(out: &mut String, records: impl IntoIterator<Item = &'a Record>) {
    let mut staged: std::collections::BTreeMap<(&str, &str), &[crate::run::artifacts::Staged]> =
        Default::default();
    for r in records {
        if let Record::Artifacts { task, host, files } = r {
            staged.insert((task, host), files);
        }
    }
    if staged.is_empty() {
        return;
    }
    let mut rows = vec![["TASK", "HOST", "ARTIFACT", "SIZE", "SHA256"]
        .map(String::from)
        .to_vec()];
    for ((task, host), files) in staged {
        for f in files {
            rows.push(vec![
                task.to_string(),
                host.to_string(),
                f.path.clone(),
                f.size.to_string(),
                f.sha256.clone(),
            ]);
        }
    }
    *out += "\nArtifacts:\n";
    for line in table(&rows).lines() {
        *out += &format!("  {line}\n");
    }
}

fn record_text(out: &mut String, r: &Record) {
    match r {
        Record::TaskFinish { task, status, .. } => {
            *out += &format!("  {task} {}\n", status.name());
        }
        Record::CommandFinish {
            host,
            index,
            attempt,
            status,
            exit_code,
            output,
            part,
            ..
        } => {
            let code = exit_code.map_or("none".to_string(), |c| c.to_string());
            let part = part.as_ref().map_or(String::new(), |p| format!("{p} "));
            *out += &format!(
                "    [{host}] {part}#{index} attempt {attempt} {} (exit {code})\n",
                status.name()
            );
            output_text(out, output);
        }
        Record::Batch {
            task,
            index,
            of,
            hosts,
        } => *out += &format!("  {task} batch {index}/{of}: {}\n", hosts.join(", ")),
        Record::RolloutStopped { task, failed } => {
            *out += &format!("  {task} rollout stopped: {} failed\n", failed.join(", "));
        }
        Record::Notify { host, handler, .. } => {
            *out += &format!("    [{host}] notified handler {handler}\n")
        }
        _ => {}
    }
}

/// Captured output, `|` for stdout and `!` for stderr, with a marker where lines were
/// left out.
fn output_text(out: &mut String, c: &Captured) {
    let line = |out: &mut String, l: &Line| {
        let tag = if l.0 == crate::exec::Stream::Stdout {
            "|"
        } else {
            "!"
        };
        *out += &format!("      {tag} {}\n", l.1);
    };
    for l in &c.head {
        line(out, l);
    }
    if c.omitted_lines > 0 || c.omitted_bytes > 0 {
        *out += &format!(
            "      … {} lines ({} bytes) not kept …\n",
            c.omitted_lines, c.omitted_bytes
        );
    }
    for l in &c.tail {
        line(out, l);
    }
}
