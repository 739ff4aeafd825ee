//! `--format json`: one JSON object per line on stdout, as SPEC §7 lists them. Every line
//! has `event`, `run_id` and `ts`; `run_finish` is always the last line.

use std::io::Write;

use serde_json::{json, Map, Value};

use super::event::{Event, Failure, Kind};
use crate::timefmt;

pub struct Renderer<W: Write> {
    out: W,
    run_id: String,
}

impl<W: Write> Renderer<W> {
    pub fn new(out: W, run_id: String) -> Self {
        Renderer { out, run_id }
    }

    pub fn event(&mut self, ev: &Event) {
        let value = to_json(ev, &self.run_id);
        let _ = serde_json::to_writer(&mut self.out, &value);
        let _ = self.out.write_all(b"\n");
        let _ = self.out.flush();
    }
}

pub fn to_json(ev: &Event, run_id: &str) -> Value {
    let mut m = Map::new();
    let (name, body) = match &ev.kind {
        Kind::RunStart { targets, tasks } => {
            ("run_start", json!({ "targets": targets, "tasks": tasks }))
        }
        Kind::TaskStart { task, hosts } => ("task_start", json!({ "task": task, "hosts": hosts })),
        Kind::CommandStart {
            task,
            host,
            command,
            attempt,
        } => (
            "command_start",
            json!({ "task": task, "host": host, "command": command, "attempt": attempt }),
        ),
        Kind::Output {
            task,
            host,
            stream,
            line,
        } => (
            "output",
            json!({ "task": task, "host": host, "stream": stream.name(), "line": line }),
        ),
        Kind::CommandFinish {
            task,
            host,
            command,
            attempt,
            exit_code,
            duration,
            failure,
            retry_in,
            ignored,
        } => {
            let status = Failure::status_name(failure.as_ref());
            let mut v = json!({
                "task": task, "host": host, "command": command, "attempt": attempt,
                "exit_code": exit_code, "duration_ms": duration.as_millis() as u64,
                "status": status,
            });
            if let Some(f) = failure {
                v["error"] = json!(f.describe());
            }
            if let Some(d) = retry_in {
                v["retry_in_ms"] = json!(d.as_millis() as u64);
            }
            if *ignored {
                v["ignored"] = json!(true);
            }
            ("command_finish", v)
        }
        Kind::TaskFinish {
            task,
            status,
            duration,
            hosts,
        } => {
            let hosts: Map<String, Value> = hosts
                .iter()
                .map(|(h, s, _)| (h.clone(), json!(s.name())))
                .collect();
            (
                "task_finish",
                json!({ "task": task, "status": status.name(),
                        "duration_ms": duration.as_millis() as u64, "hosts": hosts }),
            )
        }
        Kind::RunFinish {
            status,
            duration,
            exit_code,
            tasks,
        } => {
            let tasks: Map<String, Value> = tasks
                .iter()
                .map(|(t, s, _)| (t.clone(), json!(s.name())))
                .collect();
            (
                "run_finish",
                json!({ "status": status.name(), "duration_ms": duration.as_millis() as u64,
                        "exit_code": exit_code, "tasks": tasks }),
            )
        }
    };
    m.insert("event".into(), json!(name));
    m.insert("run_id".into(), json!(run_id));
    m.insert("ts".into(), json!(timefmt::rfc3339(ev.ts)));
    if let Value::Object(b) = body {
        m.extend(b);
    }
    Value::Object(m)
}
