//! Run journal, history and crash-resume: SIGKILL mid-run, resume, corrupt journals,
//! counters.

use std::time::Duration;

use crate::common::sshd::{Keys, Server};
use crate::common::*;

/// A bounded wait (see `wait_until`) for something a test needs to have happened.
#[track_caller]
fn wait_for(what: &str, f: impl FnMut() -> bool) {
    wait_until(what, Duration::from_secs(15), f);
}

fn kill9(pid: u32) {
    // SAFETY: killing a child process we started.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
}

/// Stop whatever a SIGKILLed nexus left running (it cannot clean up after itself).
fn reap_orphans(marker: &str) {
    for p in processes_matching(marker) {
        if let Some(pid) = p.split(':').next().and_then(|s| s.parse::<i32>().ok()) {
            // SAFETY: signalling leftover test processes by PID.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

fn chain_toml(marker_sleep: &str) -> String {
    format!(
        r#"
        [tasks.t1]
        run = "echo t1 >> marker"
        [tasks.t2]
        deps = ["t1"]
        run = "echo t2 >> marker"
        [tasks.t3]
        deps = ["t2"]
        run = [{{ cmd = "echo t3 >> marker; sleep {marker_sleep}", timeout = "1m" }}]
        [tasks.t4]
        deps = ["t3"]
        run = "echo t4 >> marker"
        [tasks.t5]
        deps = ["t4"]
        run = "echo t5 >> marker"
        "#
    )
}

/// A chain run of t5 SIGKILLed while t3 sleeps (`tag` makes its sleep unique), with the
/// sleep it left behind stopped.
fn chain_killed_at_t3(tag: u32) -> Test {
    let sleep = marker(2, tag);
    let t = Test::new().toml(&chain_toml(&sleep));
    let mut c = t.command();
    c.args(["run", "t5", "-q"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    wait_for("t3 to start", || t.read("marker").contains("t3"));
    kill9(child.id());
    let _ = child.wait();
    reap_orphans(&format!("sleep {sleep}"));
    t
}

fn json_runs(t: &Test, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut c = t.command();
    c.args(["runs", "--format", "json"]).args(extra);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn sigkill_then_resume_finishes_the_chain_without_rerunning_completed_tasks() {
    let t = chain_killed_at_t3(0);

    let interrupted = json_runs(&t, &["--interrupted"]);
    assert_eq!(interrupted.len(), 1, "{interrupted:?}");
    assert_eq!(interrupted[0]["status"], "interrupted");
    assert_eq!(interrupted[0]["targets"], serde_json::json!(["t5"]));
    let id = interrupted[0]["id"].as_str().unwrap().to_string();

    let r = t.clone_args(&["resume", "-q"]).run();
    r.expect(
        0,
        "",
        "resuming run RUN_ID (t5 #1): skipping t1, t2 (finished); running t3, t4, t5\nok t3 (X.Xs)\nok t4 (X.Xs)\nok t5 (X.Xs)\n",
    );
    let marker = log_lines(&t.read("marker"));
    assert_eq!(marker, ["t1", "t2", "t3", "t3", "t4", "t5"]);
    let all = json_runs(&t, &[]);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["id"], id.as_str());
    assert_eq!(all[0]["status"], "success");
    assert!(json_runs(&t, &["--interrupted"]).is_empty());
}

#[test]
fn a_new_run_after_an_interrupted_one_prints_the_resume_hint() {
    let t = chain_killed_at_t3(1);
    let id = json_runs(&t, &[])[0]["id"].as_str().unwrap().to_string();

    let toml = chain_toml("0");
    std::fs::write(t.path("nexus.toml"), unindent(&toml)).unwrap();
    let r = t.clone_args(&["run", "t1", "-q"]).run();
    r.expect(0, "", "ok t1 (X.Xs)\n");
    let r = t
        .clone_args(&["run", "t5", "-q", "-p", "1"])
        .env("CI", "true")
        .run();
    let chain = "ok t1 (X.Xs)\nok t2 (X.Xs)\nok t3 (X.Xs)\nok t4 (X.Xs)\nok t5 (X.Xs)\n";
    r.expect(
        0,
        "",
        &format!("warning: the last run of `t5` ({id} #1) was interrupted; starting a new run\n  help: resume it instead with `nexus resume {id}`\n{chain}"),
    );
    t.clone_args(&["run", "t5", "-q", "--no-resume"])
        .run()
        .expect(0, "", chain);
}

#[test]
fn resume_refuses_a_changed_config_unless_forced() {
    let t = chain_killed_at_t3(2);
    let id = json_runs(&t, &[])[0]["id"].as_str().unwrap().to_string();

    let changed = chain_toml("0").replace("echo t4 >> marker", "echo t4-new >> marker");
    std::fs::write(t.path("nexus.toml"), unindent(&changed)).unwrap();
    t.clone_args(&["resume", &id]).run().expect(
        2,
        "",
        &format!(
            "
            Error: nexus.toml changed since run {id} started; tasks changed: t3, t4

              help: resume anyway with `nexus resume {id} --force`, or start fresh with `nexus run`
            "
        ),
    );
    t.clone_args(&["resume", &id, "--force", "-q"]).run().expect(
        0,
        "",
        "resuming run RUN_ID (t5 #1): skipping t1, t2 (finished); running t3, t4, t5\nok t3 (X.Xs)\nok t4 (X.Xs)\nok t5 (X.Xs)\n",
    );
    assert_eq!(
        log_lines(&t.read("marker")),
        ["t1", "t2", "t3", "t3", "t4-new", "t5"]
    );
}

#[test]
fn counters_increment_per_target_and_reach_commands() {
    let t = Test::new().toml(
        r#"
        [tasks.build]
        run = "echo build $NEXUS_RUN_COUNTER $NEXUS_TASK $NEXUS_HOST >> log"
        [tasks.deploy]
        run = "echo deploy $NEXUS_RUN_COUNTER >> log; exit 1"
        "#,
    );
    t.clone_args(&["run", "build", "-q"]).run().expect_code(0);
    let deploy_failed = "
        FAILED deploy (X.Xs)
        Error: Command failed

          Host: local
          Task: deploy
          Command: echo deploy $NEXUS_RUN_COUNTER >> log; exit 1
          Exit code: 1

        ";
    for _ in 0..2 {
        t.clone_args(&["run", "deploy", "-q"])
            .run()
            .expect(1, "", deploy_failed);
    }
    t.clone_args(&["run", "build", "-q"]).run().expect_code(0);
    assert_eq!(
        log_lines(&t.read("log")),
        [
            "build 1 build local",
            "deploy 1",
            "deploy 2",
            "build 2 local"
        ]
        .iter()
        .map(|s| s.replace("build 2 local", "build 2 build local"))
        .collect::<Vec<_>>()
    );
    let runs = json_runs(&t, &[]);
    let seen: Vec<(String, u64, String)> = runs
        .iter()
        .map(|r| {
            (
                r["targets"][0].as_str().unwrap().to_string(),
                r["counter"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("build".to_string(), 2, "success".to_string()),
            ("deploy".to_string(), 2, "failed".to_string()),
            ("deploy".to_string(), 1, "failed".to_string()),
            ("build".to_string(), 1, "success".to_string()),
        ]
    );
    let started: Vec<&str> = runs
        .iter()
        .map(|r| r["started"].as_str().unwrap())
        .collect();
    t.clone_args(&["runs"]).run().expect(
        0,
        &format!(
            "
            ID                        RUN        STARTED                   TARGETS  STATUS   DURATION
            RUN_ID  build #2   {}  build    success  X.Xs
            RUN_ID  deploy #2  {}  deploy   failed   X.Xs
            RUN_ID  deploy #1  {}  deploy   failed   X.Xs
            RUN_ID  build #1   {}  build    success  X.Xs
            ",
            started[0], started[1], started[2], started[3]
        ),
        "",
    );
}

/// The journal file of run `id` (`ID.TAG.jsonl`).
fn journal_of(t: &Test, id: &str) -> std::path::PathBuf {
    std::fs::read_dir(t.path(".nexus-home/runs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| nexus::state::journal_name(p).is_some_and(|(i, _)| i == id))
        .unwrap_or_else(|| panic!("no journal of run {id}"))
}

/// Run a two-task chain to completion and return the journal's path.
fn finished_run(t: &Test) -> std::path::PathBuf {
    t.clone_args(&["run", "b", "-q"]).run().expect_code(0);
    let runs = json_runs(t, &[]);
    std::path::PathBuf::from(runs[0]["journal"].as_str().unwrap())
}

const AB: &str = r#"
[tasks.a]
run = "echo a >> marker"
[tasks.b]
deps = ["a"]
run = "echo b >> marker"
"#;

#[test]
fn truncated_journal_is_reported_and_its_valid_prefix_resumed() {
    let t = Test::new().toml(AB);
    let path = finished_run(&t);
    let text = std::fs::read_to_string(&path).unwrap();
    // Cut in the middle of the line after a's task_finish: the run looks interrupted.
    let lines: Vec<&str> = text.lines().collect();
    let a_done = lines
        .iter()
        .position(|l| l.contains("\"ev\":\"task_finish\""))
        .unwrap();
    let keep: String = lines[..=a_done].iter().map(|l| format!("{l}\n")).collect();
    let partial = &lines[a_done + 1][..20];
    std::fs::write(&path, format!("{keep}{partial}")).unwrap();
    let line = a_done + 2;

    let warning = format!(
        "warning: {}:{line}: truncated last line (no checksum (truncated or not a journal line))\n",
        path.display()
    );
    let started = json_runs(&t, &["--interrupted"])[0]["started"]
        .as_str()
        .unwrap()
        .to_string();
    t.clone_args(&["runs", "--interrupted"]).run().expect(
        0,
        &format!(
            "
            ID                        RUN   STARTED                   TARGETS  STATUS       DURATION
            RUN_ID  b #1  {started}  b        interrupted  -
            "
        ),
        &warning,
    );
    t.clone_args(&["resume", "-q"]).run().expect(
        0,
        "",
        &format!(
            "{}; resuming from the {} valid records before it\nresuming run RUN_ID (b #1): skipping a (finished); running b\nok b (X.Xs)\n",
            warning.trim_end(),
            line - 1
        ),
    );
    assert_eq!(log_lines(&t.read("marker")), ["a", "b", "b"]);
}

#[test]
fn flipped_bytes_fail_the_checksum() {
    let t = Test::new().toml(AB);
    let path = finished_run(&t);
    let text = std::fs::read_to_string(&path).unwrap();
    let flipped = text.replacen("\"status\":\"success\"", "\"status\":\"succesS\"", 1);
    std::fs::write(&path, &flipped).unwrap();
    let bad_line = flipped.lines().position(|l| l.contains("succesS")).unwrap() + 1;
    // The stored checksum is the line's own; the computed one is that of the changed text.
    let line = flipped.lines().nth(bad_line - 1).unwrap();
    let (body, stored) = line
        .strip_suffix("\"}")
        .and_then(|l| l.rsplit_once(",\"crc\":\""))
        .unwrap_or_else(|| panic!("no crc field: {line}"));
    let computed = format!("{:08x}", crc32(format!("{body}}}").as_bytes()));
    let warning = format!(
        "warning: {}:{bad_line}: checksum mismatch (stored {stored}, computed {computed})\n",
        path.display()
    );
    // Only the records before the bad line count: the run looks interrupted.
    let started = json_runs(&t, &[])[0]["started"]
        .as_str()
        .unwrap()
        .to_string();
    t.clone_args(&["runs"]).run().expect(
        0,
        &format!(
            "
            ID                        RUN   STARTED                   TARGETS  STATUS       DURATION
            RUN_ID  b #1  {started}  b        interrupted  -
            "
        ),
        &warning,
    );
}

/// CRC-32 (IEEE 802.3, as zlib), bit by bit: an oracle independent of nexus's table.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn empty_journal_and_directory_in_its_place_are_clear_errors() {
    let t = Test::new().toml(AB);
    let runs = t.path(".nexus-home/runs");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::write(runs.join("20260101T000000000Z-0001.jsonl"), "").unwrap();
    std::fs::create_dir_all(runs.join("20260101T000000000Z-0002.jsonl")).unwrap();
    let r = t.clone_args(&["runs"]).run();
    r.expect(
        0,
        "no runs in this project (`nexus runs --all` lists every project's)\n",
        &format!(
            "warning: unreadable run journal {d}/20260101T000000000Z-0002.jsonl: Is a directory\nwarning: unreadable run journal {d}/20260101T000000000Z-0001.jsonl: line 1: the journal is empty\n",
            d = runs.display()
        ),
    );
    t.clone_args(&["resume", "20260101T000000000Z-0001"]).run().expect(
        2,
        "",
        &format!(
            "
            Error: cannot resume from {d}/20260101T000000000Z-0001.jsonl: line 1: the journal is empty

              help: the journal has no usable start record; start a new run with `nexus run`
            ",
            d = runs.display()
        ),
    );
    t.clone_args(&["resume", "20260101T000000000Z-0002"])
        .run()
        .expect(
            2,
            "",
            &format!(
                "
            Error: cannot resume from {d}/20260101T000000000Z-0002.jsonl: Is a directory

              help: the journal cannot be read; start a new run with `nexus run`
            ",
                d = runs.display()
            ),
        );
}

#[test]
fn unwritable_state_directory_stops_the_run_before_any_command() {
    let t = Test::new().toml(AB);
    // A file where the state directory should be: nothing can be created under it.
    std::fs::write(t.path("not-a-dir"), "").unwrap();
    let home = t.path("not-a-dir").join("state");
    let r = t
        .clone_args(&["run", "b"])
        .env("NEXUS_HOME", home.to_str().unwrap())
        .run();
    r.expect(
        2,
        "",
        &format!(
            "
            Error: cannot create {}: Not a directory

              help: nexus keeps a journal of every run there; make it writable, or set NEXUS_HOME to a directory that is
            ",
            home.display()
        ),
    );
    assert!(!t.path("marker").exists());
}

#[test]
fn gc_keeps_the_newest_journals() {
    let t = Test::new().toml(AB);
    for _ in 0..4 {
        t.clone_args(&["run", "a", "-q"]).run().expect_code(0);
    }
    t.clone_args(&["runs", "gc", "--keep", "2"]).run().expect(
        0,
        &format!(
            "removed 2 run journals, kept the newest 2 of {}\n",
            std::fs::canonicalize(t.path("")).unwrap().display()
        ),
        "",
    );
    assert_eq!(json_runs(&t, &[]).len(), 2);
}

#[test]
fn remote_resume_skips_hosts_that_finished() {
    let server = Server::openssh();
    let sleep = marker(2, 3);
    let marker = TempDir::new("remote-marker");
    let m = marker.path().join("marker");
    let toml = format!(
        "[config]\nssh_config = \"none\"\nknown_hosts = \"{kh}\"\nssh_identity = \"{id}\"\n[hosts]\nweb = [\"{u}@127.0.0.1:{p}\", \"127.0.0.1:{p}\"]\n[tasks.roll]\non = \"web\"\nstrategy = \"serial\"\nrun = [{{ cmd = \"echo {{{{ host }}}} >> {m}; case {{{{ host }}}} in {u}@*) ;; *) sleep {sleep};; esac\", timeout = \"1m\" }}]\n[tasks.after]\ndeps = [\"roll\"]\nrun = \"echo after >> {m}\"\n",
        kh = server.known_hosts().display(),
        id = Keys::get().key("id_ed25519").display(),
        p = server.port,
        u = user(),
        m = m.display(),
    );
    let t = Test::new().toml(&toml);
    let home = t.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let t = t
        .env("HOME", home.to_str().unwrap())
        .env("SSH_AUTH_SOCK", "");
    let mut c = t.command();
    c.args(["run", "after", "-q"])
        .stdout(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let second = format!("127.0.0.1:{}", server.port);
    wait_for("the second host to start", || {
        std::fs::read_to_string(&m)
            .unwrap_or_default()
            .lines()
            .any(|l| l == second)
    });
    kill9(child.id());
    let _ = child.wait();
    reap_orphans(&format!("sleep {sleep}"));
    let first = format!("{}@127.0.0.1:{}", user(), server.port);
    t.clone_args(&["resume", "-q"]).run().expect(
        0,
        "",
        &format!("resuming run RUN_ID (after #1): skipping roll on {first}; running roll (the rest), after\nok roll (X.Xs)\nok after (X.Xs)\n"),
    );
    assert_eq!(
        log_lines(&std::fs::read_to_string(&m).unwrap()),
        [first.as_str(), second.as_str(), second.as_str(), "after"]
    );
}

#[test]
fn runs_show_prints_the_summary_and_captured_output() {
    let t = Test::new().toml(
        r#"
        [tasks.a]
        run = ["echo out-of-a", "echo err-of-a >&2"]
        [tasks.b]
        deps = ["a"]
        run = "exit 4"
        "#,
    );
    t.clone_args(&["run", "b", "-q"]).run().expect(
        1,
        "",
        "
        ok a (X.Xs)
        FAILED b (X.Xs)
        Error: Command failed

          Host: local
          Task: b
          Command: exit 4
          Exit code: 4

        ",
    );
    let runs = json_runs(&t, &[]);
    let id = runs[0]["id"].as_str().unwrap().to_string();
    let journal = runs[0]["journal"].as_str().unwrap().to_string();
    let r = t.clone_args(&["runs", "show", &id]).run();
    r.expect(
        0,
        &format!(
            "
            Run {id} (b #1)
              started:  {started}
              status:   failed
              duration: X.Xs
              journal:  {journal}

            Tasks:
                [local] #0 attempt 1 success (exit 0)
                  | out-of-a
                [local] #1 attempt 1 success (exit 0)
                  ! err-of-a
              a success
                [local] #0 attempt 1 failed (exit 4)
              b failed
            ",
            started = runs[0]["started"].as_str().unwrap()
        ),
        "",
    );
    t.clone_args(&["runs", "show", "nope"]).run().expect(
        2,
        "",
        "
        Error: `nope` is not a run id

          help: run ids look like 20261124T180741123Z-1a2b; `nexus runs` lists them
        ",
    );
    t.clone_args(&["runs", "show", "../../../etc/x"])
        .run()
        .expect(
            2,
            "",
            "
        Error: `../../../etc/x` is not a run id

          help: run ids look like 20261124T180741123Z-1a2b; `nexus runs` lists them
        ",
        );
    t.clone_args(&["runs", "show", "20990101T000000000Z-0000"])
        .run()
        .expect(
            2,
            "",
            &format!(
                "
                Error: no run `20990101T000000000Z-0000` in {}/runs

                  help: `nexus runs` lists the runs
                ",
                t.path(".nexus-home").display()
            ),
        );
}

/// The journal of a pipeline with a retry, a failure, a skipped task and a remote host,
/// read back through the typed records; `runs show` from them; then an interrupted run of
/// the same file, resumed from its records.
#[test]
fn journal_records_read_back_typed_serve_runs_show_and_resume() {
    use nexus::run::event::{RunStatus, TaskStatus};
    use nexus::state::journal;
    use nexus::state::record::Record;
    let server = Server::openssh();
    let sleep = marker(2, 7);
    let toml = format!(
        r#"[config]
ssh_config = "none"
known_hosts = "{kh}"
ssh_identity = "{id}"
[hosts]
web = ["{u}@127.0.0.1:{p}"]
[tasks.prep]
run = [{{ cmd = "echo try >> attempts; test $(wc -l < attempts) -ge 2", retries = 2, retry_delay = 0 }}]
[tasks.remote]
on = "web"
run = "echo remote-ok"
[tasks.bad]
deps = ["prep", "remote"]
run = "echo boom >&2; exit 5"
[tasks.after]
deps = ["bad"]
run = "echo never"
[tasks.slow]
deps = ["prep", "remote"]
run = [{{ cmd = "test -f go || sleep {sleep}; echo slow-done >> log", timeout = "1m" }}]
"#,
        kh = server.known_hosts().display(),
        id = Keys::get().key("id_ed25519").display(),
        p = server.port,
        u = user(),
    );
    let t = Test::new().toml(&toml);
    let home = t.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let t = t
        .env("HOME", home.to_str().unwrap())
        .env("SSH_AUTH_SOCK", "");
    let h = format!("{}@127.0.0.1:{}", user(), server.port);

    // 1. A failed run: read its journal as records.
    t.clone_args(&["run", "after", "-q"]).run().expect_code(1);
    let runs = json_runs(&t, &[]);
    let id = runs[0]["id"].as_str().unwrap().to_string();
    let path = journal_of(&t, &id);
    let read = journal::read(&path).unwrap();
    assert_eq!(read.problem, None);
    let records: Vec<&Record> = read.records().collect();
    let Record::RunStart(header) = records[0] else {
        panic!("first record: {:?}", records[0]);
    };
    assert_eq!(
        (header.targets.clone(), header.plan.clone()),
        (
            vec!["after".to_string()],
            ["prep", "remote", "bad", "after"]
                .map(String::from)
                .to_vec()
        )
    );
    let finishes: Vec<(String, String, u32, TaskStatus, Option<i32>)> = records
        .iter()
        .filter_map(|r| match r {
            Record::CommandFinish {
                task,
                host,
                attempt,
                status,
                exit_code,
                ..
            } => Some((task.clone(), host.clone(), *attempt, *status, *exit_code)),
            _ => None,
        })
        .collect();
    let mut sorted = finishes.clone();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then(a.2.cmp(&b.2)));
    assert_eq!(
        sorted,
        [
            ("bad".into(), "local".into(), 1, TaskStatus::Failed, Some(5)),
            (
                "prep".into(),
                "local".into(),
                1,
                TaskStatus::Failed,
                Some(1)
            ),
            (
                "prep".into(),
                "local".into(),
                2,
                TaskStatus::Success,
                Some(0)
            ),
            ("remote".into(), h.clone(), 1, TaskStatus::Success, Some(0)),
        ]
    );
    let tasks: Vec<(String, TaskStatus)> = records
        .iter()
        .filter_map(|r| match r {
            Record::TaskFinish { task, status, .. } => Some((task.clone(), *status)),
            _ => None,
        })
        .collect();
    assert!(
        tasks.contains(&("bad".into(), TaskStatus::Failed)),
        "{tasks:?}"
    );
    assert!(
        !tasks.iter().any(|(t, _)| t == "after"),
        "skipped: never started"
    );
    assert!(matches!(
        records.last(),
        Some(Record::RunFinish {
            status: RunStatus::Failed,
            exit_code: 1,
            ..
        })
    ));
    let shown = t.clone_args(&["runs", "show", &id]).run();
    shown.expect_code(0).expect_stderr("");
    for line in [
        "  status:   failed",
        "    [local] #0 attempt 1 failed (exit 1)",
        "    [local] #0 attempt 2 success (exit 0)",
        &format!("    [{h}] #0 attempt 1 success (exit 0)"),
        "      | remote-ok",
        "    [local] #0 attempt 1 failed (exit 5)",
        "      ! boom",
        "  bad failed",
    ] {
        assert!(
            shown.stdout.lines().any(|l| l == line),
            "no `{line}` in:\n{}",
            shown.stdout
        );
    }

    // 2. An interrupted run of `slow`: its records say what finished; resume does the rest.
    let mut c = t.command();
    c.args(["run", "slow", "-q", "--no-resume"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    wait_for("the slow command to start", || {
        !processes_matching(&format!("sleep {sleep}")).is_empty()
    });
    kill9(child.id());
    let _ = child.wait();
    reap_orphans(&format!("sleep {sleep}"));
    let id2 = json_runs(&t, &["--interrupted"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let read = journal::read(&journal_of(&t, &id2)).unwrap();
    let cp = nexus::state::resume::checkpoint(read.records());
    assert!(cp.done_tasks.contains("prep") && cp.done_tasks.contains("remote"));
    assert!(!cp.done_tasks.contains("slow"));
    assert!(read.records().any(
        |r| matches!(r, Record::CommandSpawned { task, remote: false, .. } if task == "slow")
    ));
    let before = t.read("attempts");
    std::fs::write(t.path("go"), "").unwrap();
    t.clone_args(&["resume", &id2, "-q"]).run().expect(
        0,
        "",
        "resuming run RUN_ID (slow #1): skipping prep, remote (finished); running slow\nok slow (X.Xs)\n",
    );
    assert_eq!(t.read("attempts"), before, "prep was not run again");
    assert_eq!(t.read("log"), "slow-done\n");
    let after = journal::read(&journal_of(&t, &id2)).unwrap();
    assert!(after.records().any(|r| matches!(r, Record::Resume { .. })));
    assert!(matches!(
        after.records().last(),
        Some(Record::RunFinish {
            status: RunStatus::Success,
            ..
        })
    ));
}

/// Runs belong to their project: another project sharing NEXUS_HOME neither sees nor
/// resumes them, and `--all` shows both with their paths.
#[test]
fn history_belongs_to_its_project() {
    let a = chain_killed_at_t3(5);
    let id = json_runs(&a, &[])[0]["id"].as_str().unwrap().to_string();
    let a_root = std::fs::canonicalize(a.path("")).unwrap();
    let b_dir = a.path("b");
    std::fs::create_dir(&b_dir).unwrap();
    std::fs::write(
        b_dir.join("nexus.toml"),
        "[tasks.t5]\nrun = \"echo b >> marker\"\n",
    )
    .unwrap();
    let b_root = std::fs::canonicalize(&b_dir).unwrap();
    let in_b = |args: &[&str]| {
        let mut c = a.clone_args(args).env("CI", "true").command();
        c.current_dir(&b_dir);
        let out = c.output().unwrap();
        Run::from_output(&c, out)
    };

    // The same target in B: no word of A's interrupted run, and B's own counter.
    in_b(&["run", "t5", "-q"]).expect(0, "", "ok t5 (X.Xs)\n");
    let b_runs = in_b(&["runs", "--format", "json"]);
    let b_runs: serde_json::Value = serde_json::from_str(&b_runs.stdout).unwrap();
    assert_eq!(b_runs.as_array().unwrap().len(), 1, "{b_runs}");
    assert_eq!(b_runs[0]["counter"], 1);
    assert_eq!(b_runs[0]["project"], b_root.display().to_string());
    in_b(&["resume"]).expect(
        2,
        "",
        "
        Error: no interrupted run to resume in this project

          help: `nexus runs` lists the project's recent runs; `nexus runs --all` every project's
        ",
    );
    in_b(&["resume", &id]).expect(
        2,
        "",
        &format!(
            "
            Error: run {id} belongs to another project: {a}

              help: resume it there: cd {a} && nexus resume {id}
            ",
            a = a_root.display()
        ),
    );
    let all = in_b(&["runs", "--all"]);
    all.expect_code(0);
    let lines: Vec<&str> = all.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", all.show());
    assert!(lines[0].ends_with("DURATION  PROJECT"), "{}", all.show());
    assert!(
        lines[1].ends_with(&b_root.display().to_string()),
        "{}",
        all.show()
    );
    assert!(
        lines[2].ends_with(&a_root.display().to_string()),
        "{}",
        all.show()
    );
    assert!(lines[2].contains(&id), "{}", all.show());

    // A still offers its own run, and resumes it.
    let r = a.clone_args(&["resume", "-q"]).run();
    assert_eq!(r.code, 0, "{}", r.show());
    assert_eq!(
        log_lines(&a.read("marker")),
        ["t1", "t2", "t3", "t3", "t4", "t5"]
    );
    assert_eq!(
        std::fs::read_to_string(b_dir.join("marker")).unwrap(),
        "b\n"
    );
}

/// A run interrupted before anything finished is not offered for resuming: it would
/// skip nothing (Ctrl-C during the first task must not make every next run ask).
#[test]
fn an_interrupted_run_that_finished_nothing_is_not_offered() {
    let sleep = marker(30, 4);
    let t = Test::new().toml(&format!(
        r#"
        [tasks.slow]
        run = "echo slow >> marker; sleep {sleep}"
        [tasks.after]
        deps = ["slow"]
        run = "echo after >> marker"
        "#
    ));
    let mut c = t.clone_args(&["run", "after", "-q"]).command();
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Stop(c.spawn().unwrap());
    wait_for("the sleep to start", || {
        !processes_matching(&format!("sleep {sleep}")).is_empty()
    });
    child.signal(libc::SIGINT);
    let r = wait_within(&mut child, &c, Duration::from_secs(10));
    assert_eq!(r.code, 130, "{}", r.show());
    assert_eq!(json_runs(&t, &["--interrupted"]).len(), 1);

    std::fs::write(t.path("nexus.toml"), "[tasks.slow]\nrun = \"echo slow >> marker\"\n[tasks.after]\ndeps = [\"slow\"]\nrun = \"echo after >> marker\"\n").unwrap();
    t.clone_args(&["run", "after", "-q"])
        .env("CI", "true")
        .run()
        .expect(0, "", "ok slow (X.Xs)\nok after (X.Xs)\n");
}
