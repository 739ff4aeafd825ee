//! Handlers (docs/nexus-toml.md, "Handlers"): a step's `notify` is recorded when it is
//! made — in the journal (a `handler` event) and in the project's pending handlers
//! under `$NEXUS_HOME/handlers/` — and stays pending for that task and host until its
//! handler succeeds. At the end of the task on a host, each pending handler runs once, in
//! file order (a handler that succeeds notifies its own `notify` list); when the task
//! failed there they stay pending (unless `force_handlers`), for the next run or resume
//! that reaches the task on that host.
//! Must not: run commands itself (unit.rs runs a handler's steps for it).

use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::event::{Event, Failure, HandlerState, Name};
use super::scheduler::Ctx;
use crate::config::{Handler, Spanned, Task};

/// One line of the pending file: a notification, or its handler's success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Line {
    op: Op,
    task: String,
    host: String,
    handler: String,
    /// The run that made the notification.
    #[serde(default)]
    run: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    Notify,
    Done,
}

/// A file longer than this many lines more than it has pending entries is rewritten
/// with only those when it is opened.
const COMPACT_SLACK: usize = 1000;

/// The pending handlers of a project. Off (nothing kept) until a run opens it.
#[derive(Debug, Default)]
pub struct Pending {
    path: Option<PathBuf>,
    /// Notifications not yet followed by their handler's success, in the order made.
    entries: Mutex<Vec<Line>>,
}

impl Pending {
    /// The pending handlers of `project` under `home`. An unreadable file is reported
    /// once and counts as empty (a handler can then only be lost, never run twice).
    pub fn open(home: &Path, project: &str) -> Pending {
        let path = home.join("handlers").join(crate::uptodate::fnv64(project));
        let (entries, lines) = match read(&path) {
            Ok(r) => r,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    crate::error::warn(
                        format_args!(
                            "cannot read the pending handlers {}: {}",
                            path.display(),
                            crate::error::io_reason(&e)
                        ),
                        &["handlers notified by earlier runs will not run; fix the file's permissions".to_string()],
                    );
                }
                (Vec::new(), 0)
            }
        };
        if lines > entries.len() + COMPACT_SLACK {
            if let Err(e) = rewrite(&path, &entries) {
                log::debug!("handlers: cannot compact {}: {e}", path.display());
            }
        }
        Pending {
            path: Some(path),
            entries: Mutex::new(entries),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Line>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record that `handler` is notified for `task` on `host` (once while it is pending).
    fn notify(&self, task: &str, host: &str, handler: &str, run: &str) -> std::io::Result<()> {
        let mut entries = self.lock();
        if entries
            .iter()
            .any(|l| l.task == task && l.host == host && l.handler == handler)
        {
            return Ok(());
        }
        let line = Line {
            op: Op::Notify,
            task: task.to_string(),
            host: host.to_string(),
            handler: handler.to_string(),
            run: run.to_string(),
        };
        self.append(&line)?;
        entries.push(line);
        Ok(())
    }

    /// `handler` succeeded for `task` on `host`: no longer pending.
    fn done(&self, task: &str, host: &str, handler: &str) -> std::io::Result<()> {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|l| !(l.task == task && l.host == host && l.handler == handler));
        if entries.len() == before {
            return Ok(());
        }
        self.append(&Line {
            op: Op::Done,
            task: task.to_string(),
            host: host.to_string(),
            handler: handler.to_string(),
            run: String::new(),
        })
    }

    /// Handlers pending for `task` on `host`: (handler, run that notified it).
    fn of(&self, task: &str, host: &str) -> Vec<(String, String)> {
        self.lock()
            .iter()
            .filter(|l| l.task == task && l.host == host)
            .map(|l| (l.handler.clone(), l.run.clone()))
            .collect()
    }

    fn append(&self, line: &Line) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            crate::state::private_dir(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        let mut text = serde_json::to_vec(line).map_err(std::io::Error::other)?;
        text.push(b'\n');
        f.write_all(&text)
    }
}

/// The pending entries of a file and how many lines it has. Lines that do not parse
/// (a torn last line) are left out.
fn read(path: &Path) -> std::io::Result<(Vec<Line>, usize)> {
    let f = std::fs::File::open(path)?;
    let mut entries: Vec<Line> = Vec::new();
    let mut count = 0;
    for line in std::io::BufReader::new(f).lines() {
        count += 1;
        let Ok(l) = serde_json::from_str::<Line>(&line?) else {
            continue;
        };
        let same = |e: &Line| e.task == l.task && e.host == l.host && e.handler == l.handler;
        match l.op {
            Op::Notify if !entries.iter().any(same) => entries.push(l),
            Op::Notify => {}
            Op::Done => entries.retain(|e| !same(e)),
        }
    }
    Ok((entries, count))
}

/// Replace the file with `entries`, through a temporary file renamed over it.
fn rewrite(path: &Path, entries: &[Line]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    for l in entries {
        let mut text = serde_json::to_vec(l).map_err(std::io::Error::other)?;
        text.push(b'\n');
        f.write_all(&text)?;
    }
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// A step that ran and succeeded notifies `handlers` on `host`: journaled and kept.
pub fn notify(ctx: &Ctx<'_>, task: &Name, host: &Name, handlers: &[Spanned<String>]) {
    for h in handlers {
        if let Err(e) = ctx
            .run
            .handlers
            .notify(task, host, &h.value, &ctx.run.run_id)
        {
            crate::error::warn(
                format_args!(
                    "cannot record that `{}` notified handler `{}` on {host}: {}",
                    task,
                    h.value,
                    crate::error::io_reason(&e)
                ),
                &["the journal has it; if this run does not run the handler, run its steps by hand".to_string()],
            );
        }
        ctx.recorder.emit(Event::Handler {
            task: task.clone(),
            host: host.clone(),
            handler: Name::from(h.value.as_str()),
            state: HandlerState::Notified,
            from_run: None,
        });
    }
}

/// Runs a handler's steps on the unit's host, as `part`.
pub type RunSteps<'a> = dyn FnMut(&Handler, &Name) -> Option<Failure> + 'a;

/// The end of `task` on `host`: run the pending handlers once each, in file order (or
/// leave them pending when the task failed here, `ok` false, without
/// `force_handlers`). The failure of a handler, if one failed.
pub fn at_end(
    ctx: &Ctx<'_>,
    task: &Task,
    name: &Name,
    host: &Name,
    ok: bool,
    run_steps: &mut RunSteps<'_>,
) -> Option<Failure> {
    let handlers = &ctx.config.handlers;
    let mut notified: Vec<Option<String>> = vec![None; handlers.len()];
    for (h, run) in ctx.run.handlers.of(&task.name, host) {
        match ctx.config.handler(&h) {
            Some(i) => notified[i] = Some(run),
            None => {
                // Removed from nexus.toml since: nothing can run it any more.
                log::warn!(
                    "handler `{h}` of task `{}` on {host}, pending from run {run}, is no longer defined: dropped",
                    task.name
                );
                let _ = ctx.run.handlers.done(&task.name, host, &h);
            }
        }
    }
    let event = |handler: &Handler, state, from_run: Option<String>| {
        ctx.recorder.emit(Event::Handler {
            task: name.clone(),
            host: host.clone(),
            handler: Name::from(handler.name.as_str()),
            state,
            from_run,
        });
    };
    if (!ok && !task.force_handlers) || crate::signals::cancelled() {
        for (i, _) in notified.iter().enumerate().filter(|(_, n)| n.is_some()) {
            event(&handlers[i], HandlerState::Pending, None);
        }
        return None;
    }
    let mut ran = vec![false; handlers.len()];
    while let Some(i) = (0..handlers.len()).find(|&i| notified[i].is_some() && !ran[i]) {
        ran[i] = true;
        let h = &handlers[i];
        let from = notified[i]
            .clone()
            .filter(|r| *r != ctx.run.run_id && !r.is_empty());
        event(h, HandlerState::Running, from);
        let part = Name::from(format!("handler {}", h.name));
        if let Some(f) = run_steps(h, &part) {
            event(h, HandlerState::Failed, None);
            return Some(f);
        }
        event(h, HandlerState::Success, None);
        if let Err(e) = ctx.run.handlers.done(&task.name, host, &h.name) {
            log::warn!(
                "handlers: cannot record that `{}` ran on {host}: {e}",
                h.name
            );
        }
        // A handler that already ran here is not notified again (it runs once).
        let chained: Vec<Spanned<String>> = h
            .notify
            .iter()
            .chain(h.commands.iter().flat_map(|c| c.notify.iter()))
            .filter(|n| ctx.config.handler(&n.value).is_none_or(|j| !ran[j]))
            .cloned()
            .collect();
        notify(ctx, name, host, &chained);
        for n in &chained {
            if let Some(j) = ctx.config.handler(&n.value) {
                notified[j].get_or_insert_with(|| ctx.run.run_id.clone());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_stay_pending_until_done_across_opens() {
        let dir = std::env::temp_dir().join(format!("nexus-handlers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = Pending::open(&dir, "/project");
        p.notify("deploy", "web1", "restart", "run-1").unwrap();
        p.notify("deploy", "web1", "restart", "run-2").unwrap();
        p.notify("deploy", "web2", "restart", "run-1").unwrap();
        p.done("deploy", "web2", "restart").unwrap();
        let again = Pending::open(&dir, "/project");
        assert_eq!(
            again.of("deploy", "web1"),
            vec![("restart".to_string(), "run-1".to_string())]
        );
        assert!(again.of("deploy", "web2").is_empty());
        assert!(Pending::open(&dir, "/other")
            .of("deploy", "web1")
            .is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
