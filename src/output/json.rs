//! `--format json`: one JSON object per line on stdout, as docs/output.md lists them. Every line
//! has `event`, `run_id` and `ts`; an `output` event carries one line; `run_finish` is
//! always the last line. Must not: write anything else to stdout.

use std::io::Write;

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::describe;
use crate::exec::Stream;
use crate::run::event::{Event, Failure, Name, Stamped};
use crate::run::lines::LineBuf;
use crate::run::recorder::Render;
use crate::timefmt;

pub struct Renderer<W: Write> {
    out: W,
    run_id: String,
    /// Unfinished last lines per (task, host, stream).
    partial: HashMap<(Name, Name, Stream), LineBuf>,
}

impl<W: Write> Renderer<W> {
    pub fn new(out: W, run_id: String) -> Self {
        Renderer {
            out,
            run_id,
            partial: HashMap::new(),
        }
    }

    /// One `output` event per line. The members before `line` are the same for every
    /// line of a chunk: written once and copied (output is the hot path of JSON mode).
    fn output_lines(&mut self, ts: &str, task: &Name, host: &Name, stream: Stream, data: &[u8]) {
        let key = (task.clone(), host.clone(), stream);
        let mut buf = self.partial.remove(&key).unwrap_or_default();
        let head = self.output_head(ts, task, host, stream);
        let out = &mut self.out;
        buf.push(data, &mut |l| write_line(out, &head, l));
        if !buf.is_empty() {
            self.partial.insert(key, buf);
        }
    }

    /// The unfinished lines of a command that ended.
    fn end_of_output(&mut self, ts: &str, task: &Name, host: &Name) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            if let Some(mut buf) = self.partial.remove(&(task.clone(), host.clone(), stream)) {
                let head = self.output_head(ts, task, host, stream);
                let out = &mut self.out;
                buf.finish(&mut |l| write_line(out, &head, l));
            }
        }
    }

    /// `{"event":"output","run_id":…,"ts":…,"task":…,"host":…,"stream":…,"line":`
    fn output_head(&self, ts: &str, task: &Name, host: &Name, stream: Stream) -> Vec<u8> {
        let mut head = Vec::with_capacity(160);
        head.extend_from_slice(b"{\"event\":\"output\",\"run_id\":");
        let _ = serde_json::to_writer(&mut head, &self.run_id);
        for (k, v) in [
            ("ts", ts),
            ("task", task),
            ("host", host),
            ("stream", stream.name()),
        ] {
            head.extend_from_slice(format!(",\"{k}\":").as_bytes());
            let _ = serde_json::to_writer(&mut head, v);
        }
        head.extend_from_slice(b",\"line\":");
        head
    }

    fn line(&mut self, ts: &str, name: &str, body: Value) {
        let mut m = Map::new();
        m.insert("event".into(), json!(name));
        m.insert("run_id".into(), json!(self.run_id));
        m.insert("ts".into(), json!(ts));
        if let Value::Object(b) = body {
            m.extend(b);
        }
        let _ = serde_json::to_writer(&mut self.out, &Value::Object(m));
        let _ = self.out.write_all(b"\n");
    }
}

/// One `output` event: the shared members, then the line as a JSON string.
fn write_line(out: &mut impl Write, head: &[u8], raw: &[u8]) {
    let text = raw.strip_suffix(b"\n").unwrap_or(raw);
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    let _ = out.write_all(head);
    if plain(text) {
        // Printable ASCII only: the JSON string is the text between quotes.
        let _ = out.write_all(b"\"");
        let _ = out.write_all(text);
        let _ = out.write_all(b"\"");
    } else {
        let _ = match std::str::from_utf8(text) {
            Ok(t) => serde_json::to_writer(&mut *out, t),
            Err(_) => serde_json::to_writer(&mut *out, &String::from_utf8_lossy(text)),
        };
    }
    let _ = out.write_all(b"}\n");
}

/// True when `text` is printable ASCII without `"` or `\\` (nothing to escape). Checks 16
/// bytes at a time without branching per byte: most output is plain.
fn plain(text: &[u8]) -> bool {
    let special = |b: u8| !(0x20..0x80).contains(&b) || b == b'"' || b == b'\\';
    let mut chunks = text.chunks_exact(16);
    for c in &mut chunks {
        if c.iter().fold(false, |any, &b| any | special(b)) {
            return false;
        }
    }
    !chunks.remainder().iter().any(|&b| special(b))
}

impl<W: Write + Send> Render for Renderer<W> {
    fn output(
        &mut self,
        at: std::time::SystemTime,
        task: &Name,
        host: &Name,
        stream: Stream,
        data: &[u8],
    ) {
        let ts = timefmt::rfc3339(at);
        self.output_lines(&ts, task, host, stream, data);
        let _ = self.out.flush();
    }

    fn event(&mut self, ev: &Stamped) {
        let ts = timefmt::rfc3339(ev.ts);
        if let Event::CommandFinish { cmd, .. } = &ev.event {
            self.end_of_output(&ts, &cmd.task, &cmd.host);
        }
        if let Some((name, body)) = to_json(&ev.event) {
            self.line(&ts, name, body);
        }
        let _ = self.out.flush();
    }
}

/// The event's name and members (without `event`, `run_id`, `ts`); None for events that
/// are not shown in JSON.
pub fn to_json(ev: &Event) -> Option<(&'static str, Value)> {
    Some(match ev {
        Event::RunStart { targets, tasks } => (
            "run_start",
            json!({ "targets": targets, "tasks": tasks.iter().map(|t| &**t).collect::<Vec<_>>() }),
        ),
        Event::TaskStart { task, hosts } => (
            "task_start",
            json!({ "task": &**task, "hosts": hosts.iter().map(|h| &**h).collect::<Vec<_>>() }),
        ),
        Event::CommandStart(c) => {
            let mut v = json!({ "task": &*c.task, "host": &*c.host, "command": &*c.line, "attempt": c.attempt });
            if let Some(part) = &c.part {
                v["part"] = json!(&**part);
            }
            ("command_start", v)
        }
        Event::CommandFinish { .. } => return command_finish(ev),
        Event::TaskFinish {
            task,
            status,
            duration,
            hosts,
        } => {
            let hosts: Map<String, Value> = hosts
                .iter()
                .map(|h| (h.host.to_string(), json!(h.status.name())))
                .collect();
            (
                "task_finish",
                json!({ "task": &**task, "status": status.name(),
                        "duration_ms": duration.as_millis() as u64, "hosts": hosts }),
            )
        }
        Event::RunFinish {
            status,
            duration,
            exit_code,
            tasks,
        } => {
            let tasks: Map<String, Value> = tasks
                .iter()
                .map(|t| (t.task.to_string(), json!(t.status.name())))
                .collect();
            (
                "run_finish",
                json!({ "status": status.name(), "duration_ms": duration.as_millis() as u64,
                        "exit_code": exit_code, "tasks": tasks }),
            )
        }
        Event::Checked { .. } | Event::CommandSkipped { .. } => return check_event(ev),
        Event::FileProgress { cmd, sent, total } => (
            "file_progress",
            json!({ "task": &*cmd.task, "host": &*cmd.host, "index": cmd.index,
                    "step": &*cmd.line, "sent": sent, "total": total }),
        ),
        Event::FileStep { cmd, report } => (
            "file",
            json!({ "task": &*cmd.task, "host": &*cmd.host, "index": cmd.index,
                    "step": &*cmd.line, "changed": report.changed, "files": report.files,
                    "total": report.total, "bytes": report.bytes, "diffs": &report.diffs }),
        ),
        Event::ArtifactsCollected { .. } | Event::ArtifactsPlaced { .. } => {
            return artifacts_event(ev)
        }
        Event::CommandSpawned { .. } | Event::UnitFinish { .. } => return None,
        Event::Batch { .. }
        | Event::BatchWait { .. }
        | Event::RolloutStopped { .. }
        | Event::Handler { .. } => return rollout_event(ev),
    })
}

/// `artifacts` and `artifacts_placed`.
fn artifacts_event(ev: &Event) -> Option<(&'static str, Value)> {
    Some(match ev {
        Event::ArtifactsCollected { task, host, files } => (
            "artifacts",
            json!({ "task": &**task, "host": &**host, "files": files }),
        ),
        Event::ArtifactsPlaced {
            task,
            host,
            from,
            report,
        } => (
            "artifacts_placed",
            json!({ "task": &**task, "host": &**host, "from": &**from,
                    "changed": report.changed, "files": report.files,
                    "total": report.total, "bytes": report.bytes }),
        ),
        _ => return None,
    })
}

/// `command_finish`: how the attempt ended, and why when it failed.
fn command_finish(ev: &Event) -> Option<(&'static str, Value)> {
    let Event::CommandFinish {
        cmd,
        exit_code,
        duration,
        failure,
        retry_in,
        ignored,
        ..
    } = ev
    else {
        return None;
    };
    let mut v = json!({
        "task": &*cmd.task, "host": &*cmd.host, "command": &*cmd.line,
        "attempt": cmd.attempt, "exit_code": exit_code,
        "duration_ms": duration.as_millis() as u64,
        "status": Failure::status_name(failure.as_ref()),
    });
    if let Some(f) = failure {
        v["error"] = json!(describe::failure(f));
    }
    if let Some(d) = retry_in {
        v["retry_in_ms"] = json!(d.as_millis() as u64);
    }
    if *ignored {
        v["ignored"] = json!(true);
    }
    if let Some(part) = &cmd.part {
        v["part"] = json!(&**part);
    }
    Some(("command_finish", v))
}

/// The events of rollouts and handlers: `batch` and `handler`.
fn rollout_event(ev: &Event) -> Option<(&'static str, Value)> {
    let names = |v: &[Name]| v.iter().map(|h| h.to_string()).collect::<Vec<_>>();
    Some(match ev {
        Event::Batch {
            task,
            index,
            of,
            hosts,
            canary,
        } => (
            "batch",
            json!({ "task": &**task, "status": "started", "batch": index, "batches": of,
                    "hosts": names(hosts), "canary": canary }),
        ),
        Event::BatchWait { task, wait } => (
            "batch",
            json!({ "task": &**task, "status": "waiting", "wait_ms": wait.as_millis() as u64 }),
        ),
        Event::RolloutStopped {
            task,
            failed,
            max_fail,
            skipped,
            rollback,
        } => (
            "batch",
            json!({ "task": &**task, "status": "stopped", "failed": names(failed),
                    "max_fail": max_fail, "skipped": skipped, "rollback": rollback }),
        ),
        Event::Handler {
            task,
            host,
            handler,
            state,
            from_run,
        } => (
            "handler",
            json!({ "task": &**task, "host": &**host, "handler": &**handler,
                    "status": state.name(), "from_run": from_run }),
        ),
        _ => return None,
    })
}

/// The events of up-to-date checks: `check` and `command_skipped`.
fn check_event(ev: &Event) -> Option<(&'static str, Value)> {
    Some(match ev {
        Event::Checked {
            task,
            host,
            up_to_date,
            reasons,
        } => (
            "check",
            json!({ "task": &**task, "host": &**host, "up_to_date": up_to_date, "reasons": reasons }),
        ),
        Event::CommandSkipped { cmd, reason } => {
            let mut v = json!({ "task": &*cmd.task, "host": &*cmd.host, "command": &*cmd.line,
                                "index": cmd.index, "reason": reason });
            if let Some(part) = &cmd.part {
                v["part"] = json!(&**part);
            }
            ("command_skipped", v)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever a command prints, each `output` event is valid JSON holding the line (as
    /// UTF-8, invalid bytes replaced), whether it took the plain path or not.
    #[test]
    fn output_events_hold_the_line() {
        fn prop(line: Vec<u8>, ascii: String) -> bool {
            [line, ascii.into_bytes()].iter().all(|raw| {
                let raw: Vec<u8> = raw.iter().copied().filter(|&b| b != b'\n').collect();
                let mut out = Vec::new();
                write_line(&mut out, b"{\"line\":", &raw);
                let v: Value = serde_json::from_slice(&out).expect("valid JSON");
                let text = raw.strip_suffix(b"\r").unwrap_or(&raw);
                out.ends_with(b"}\n") && v["line"] == *String::from_utf8_lossy(text)
            })
        }
        quickcheck::QuickCheck::new()
            .tests(2000)
            .quickcheck(prop as fn(Vec<u8>, String) -> bool);
    }
}
