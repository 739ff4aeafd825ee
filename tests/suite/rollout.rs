//! Rollouts and handlers (issue 14) against the suite's OpenSSH sshd, with 8 host
//! aliases (`h1`…`h8`) for it: batches and the order they run in, health checks,
//! failure budgets and rollback, canaries and run_once, handlers that are never lost.
//! The remote commands run as the suite's user on this machine, so they append to a log
//! in the test's directory: order is asserted from that log.

use std::time::Duration;

use crate::common::sshd::{Keys, Server};
use crate::common::*;

/// A project whose group `web` is `h1`…`h8`, aliases of `server` in an ssh_config of the
/// test's own, with `body` (tasks, handlers) after it. No real ~/.ssh, no agent.
fn fleet(server: &Server, body: &str) -> Test {
    let keys = Keys::get();
    let t = Test::new();
    let home = t.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let t = t
        .env("HOME", home.to_str().unwrap())
        .env("SSH_AUTH_SOCK", "");
    let ssh_config = t.path("ssh_config");
    std::fs::write(
        &ssh_config,
        format!(
            "Host h*\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n",
            server.port,
            user(),
            keys.key("id_ed25519").display()
        ),
    )
    .unwrap();
    let log = t.path("log");
    let toml = format!(
        "[config]\nssh_config = \"{}\"\nknown_hosts = \"{}\"\n\n[hosts]\nweb = [\"h1\", \"h2\", \"h3\", \"h4\", \"h5\", \"h6\", \"h7\", \"h8\"]\n\n[vars]\nlog = \"{}\"\ndir = \"{}\"\n\n{body}",
        ssh_config.display(),
        server.known_hosts().display(),
        log.display(),
        t.path("").display(),
    );
    t.toml(&toml)
}

/// `text` with the number of probes of a health check written as N (how many fit in its
/// timeout depends on how long each took on a loaded machine).
fn mask_probes(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split(" probes, every ").enumerate() {
        if i > 0 {
            out.push_str(" probes, every ");
        }
        match part.rfind('(') {
            Some(at)
                if part[at + 1..].chars().all(|c| c.is_ascii_digit()) && at + 1 < part.len() =>
            {
                out.push_str(&part[..=at]);
                out.push('N');
            }
            _ => out.push_str(part),
        }
    }
    out
}

/// The log's lines.
fn log(t: &Test) -> Vec<String> {
    log_lines(&t.read("log"))
}

/// The log's lines with each run of `sizes` lines sorted (hosts of one batch run at
/// once, in any order).
fn log_by_batch(t: &Test, sizes: &[usize]) -> Vec<String> {
    let mut lines = log(t);
    let mut at = 0;
    for &n in sizes {
        let end = (at + n).min(lines.len());
        lines[at..end].sort();
        at = end;
    }
    lines
}

/// Issue 14, 1: `batch = "25%"` of 8 hosts is four batches of two; no host of a batch
/// starts before every host of the batch before passed its health check.
#[test]
fn batches_of_25_percent_wait_for_the_health_of_the_batch_before() {
    let server = Server::openssh();
    let t = fleet(
        &server,
        r#"
        [tasks.deploy]
        on = "web"
        strategy = "rolling"
        batch = "25%"
        wait_for = { cmd = "echo healthy $NEXUS_HOST >> {{ log }}", interval = "100ms" }
        run = "echo start $NEXUS_HOST >> {{ log }}; sleep 0.2"
        "#,
    );
    let r = t.clone_args(&["run", "deploy", "--plain"]).run();
    r.expect_code(0);
    assert_text(
        "stderr",
        &mask(&r.stderr),
        "-- deploy: batch 1/4: h1, h2\n-- deploy: batch 2/4: h3, h4\n-- deploy: batch 3/4: h5, h6\n-- deploy: batch 4/4: h7, h8\nok deploy X.Xs\n  |- h1 ok X.Xs\n  |- h2 ok X.Xs\n  |- h3 ok X.Xs\n  |- h4 ok X.Xs\n  |- h5 ok X.Xs\n  |- h6 ok X.Xs\n  |- h7 ok X.Xs\n  `- h8 ok X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    let lines = log(&t);
    assert_eq!(lines.len(), 16, "{lines:?}");
    let batches = [["h1", "h2"], ["h3", "h4"], ["h5", "h6"], ["h7", "h8"]];
    for k in 1..batches.len() {
        for before in batches[k - 1] {
            for after in batches[k] {
                let healthy = pos(&lines, &format!("healthy {before}"));
                let start = pos(&lines, &format!("start {after}"));
                assert!(
                    healthy < start,
                    "{after} started before {before} was healthy: {lines:?}"
                );
            }
        }
    }
}

/// Issue 14, 2: with `successes = 2`, a probe that passes from its third try on is run
/// four times before the next batch starts; one that never passes fails the host at
/// `timeout`, and the report shows what its last try printed.
#[test]
fn wait_for_needs_its_successes_in_a_row_and_fails_at_timeout() {
    let server = Server::openssh();
    let t = fleet(
        &server,
        r#"
        [tasks.deploy]
        on = ["h1", "h2"]
        strategy = "rolling"
        wait_for = { cmd = "n=$(cat {{ dir }}/n-$NEXUS_HOST 2>/dev/null || echo 0); n=$((n+1)); echo $n > {{ dir }}/n-$NEXUS_HOST; echo probe $NEXUS_HOST $n >> {{ log }}; [ $n -ge 3 ]", interval = "100ms", successes = 2 }
        run = "echo start $NEXUS_HOST >> {{ log }}"

        [tasks.never]
        on = "h1"
        wait_for = { cmd = "echo not ready yet on $NEXUS_HOST; echo port 8080 refused >&2; exit 7", timeout = "1s", interval = "300ms" }
        run = "echo deployed"
        "#,
    );
    t.clone_args(&["run", "deploy", "-q", "--plain"])
        .run()
        .expect(0, "", "ok deploy (X.Xs)\n");
    assert_eq!(
        log(&t),
        [
            "start h1",
            "probe h1 1",
            "probe h1 2",
            "probe h1 3",
            "probe h1 4", //
            "start h2",
            "probe h2 1",
            "probe h2 2",
            "probe h2 3",
            "probe h2 4",
        ]
    );
    let started = std::time::Instant::now();
    let r = t.clone_args(&["run", "never", "--plain"]).run();
    let took = started.elapsed();
    r.expect_code(1).expect_stdout("never@h1 | deployed\n");
    assert_text(
        "stderr",
        &mask_probes(&mask(&r.stderr)),
        "FAILED never X.Xs
  `- h1 FAILED X.Xs
Error: Health check failed

  Host: h1
  Task: never
  Command: echo not ready yet on $NEXUS_HOST; echo port 8080 refused >&2; exit 7
  Reason: the health check did not pass within 1s (N probes, every 300ms; the last exited with 7)

  Output:
    not ready yet on h1
    port 8080 refused

  Previous commands in this task succeeded:
    ok echo deployed

  help: run it on the host to see why: echo not ready yet on $NEXUS_HOST; echo port 8080 refused >&2; exit 7
  help: raise `wait_for.timeout` if the service needs longer to become healthy


Summary:
  FAILED    never  X.Xs
Failed in X.Xs: 0 succeeded, 1 failed
",
    );
    assert!(
        took >= Duration::from_secs(1),
        "failed before its timeout: {took:?}"
    );
}

/// Issue 14, 3: with `max_fail = 0`, one host failing its health check stops the rollout
/// after its batch: the hosts not started are skipped, `rollback` runs on that host only,
/// exit 1. With `max_fail = 1` the rollout goes past one failure and stops at the second.
#[test]
fn a_failure_beyond_max_fail_stops_the_rollout_and_rolls_back_the_failed_hosts() {
    let server = Server::openssh();
    let task = |max_fail: u32, bad: &str| {
        format!(
            r#"
            [tasks.deploy]
            on = "web"
            strategy = "rolling"
            batch = 2
            max_fail = {max_fail}
            wait_for = {{ cmd = "case $NEXUS_HOST in {bad}) echo $NEXUS_HOST is down; exit 1;; esac", timeout = "300ms", interval = "100ms" }}
            rollback = ["echo rollback $NEXUS_HOST >> {{{{ log }}}}", "echo rolled back"]
            run = "echo start $NEXUS_HOST >> {{{{ log }}}}"
            "#
        )
    };
    let t = fleet(&server, &task(0, "h3"));
    let r = t.clone_args(&["run", "deploy", "--plain", "-q"]).run();
    r.expect_code(1);
    assert_text(
        "stderr",
        &mask_probes(&mask(&r.stderr)),
        "-- deploy: rollout stopped: 1 host failed (h3), max_fail is 0; 4 hosts not started (skipped); rolling back on h3
FAILED deploy (X.Xs)
Error: Health check failed

  Host: h3
  Task: deploy
  Command: case $NEXUS_HOST in h3) echo $NEXUS_HOST is down; exit 1;; esac
  Reason: the health check did not pass within 300ms (N probes, every 100ms; the last exited with 1)

  Output:
    h3 is down

  Previous commands in this task succeeded:
    ok echo start $NEXUS_HOST >> LOG

  help: run it on the host to see why: case $NEXUS_HOST in h3) echo $NEXUS_HOST is down; exit 1;; esac
  help: raise `wait_for.timeout` if the service needs longer to become healthy

"
        .replace("LOG", &t.path("log").display().to_string())
        .as_str(),
    );
    assert_eq!(
        log_by_batch(&t, &[2, 2, 1]),
        [
            "start h1",
            "start h2",
            "start h3",
            "start h4",
            "rollback h3"
        ]
    );
    let json = t.clone_args(&["run", "deploy", "--format", "json"]).run();
    let hosts = json
        .json_lines()
        .into_iter()
        .find(|e| e["event"] == "task_finish")
        .unwrap();
    assert_eq!(
        hosts["hosts"],
        serde_json::json!({"h1": "success", "h2": "success", "h3": "failed", "h4": "success",
            "h5": "skipped", "h6": "skipped", "h7": "skipped", "h8": "skipped"})
    );

    let t = fleet(&server, &task(1, "h3|h6"));
    let r = t.clone_args(&["run", "deploy", "--plain", "-q"]).run();
    r.expect_code(1);
    assert!(
        mask(&r.stderr).starts_with("-- deploy: rollout stopped: 2 hosts failed (h3, h6), max_fail is 1; 2 hosts not started (skipped); rolling back on h3, h6\nFAILED deploy (X.Xs)\n"),
        "{}",
        r.show()
    );
    assert_eq!(
        log_by_batch(&t, &[2, 2, 2, 2]),
        [
            "start h1",
            "start h2",
            "start h3",
            "start h4",
            "start h5",
            "start h6", //
            "rollback h3",
            "rollback h6",
        ]
    );
}

/// Issue 14, 4: `batch = [1, "50%", "100%"]` is 1, then 4, then the 3 left; `canary = 1`
/// runs one host first and waits `canary_wait` before the rest; `run_once` runs on one
/// host only.
#[test]
fn batch_lists_canaries_and_run_once() {
    let server = Server::openssh();
    let t = fleet(
        &server,
        r#"
        [tasks.list]
        on = "web"
        strategy = "rolling"
        batch = [1, "50%", "100%"]
        run = "echo list $NEXUS_HOST >> {{ log }}"

        [tasks.canary]
        on = "web"
        strategy = "rolling"
        canary = 1
        canary_wait = "1s"
        batch = "100%"
        run = "echo canary $NEXUS_HOST $(date +%s%N) >> {{ log }}"

        [tasks.once]
        on = "web"
        run_once = true
        run = "echo once $NEXUS_HOST >> {{ log }}"
        "#,
    );
    let r = t.clone_args(&["run", "list", "--plain"]).run();
    r.expect_code(0);
    assert!(
        mask(&r.stderr).starts_with(
            "-- list: batch 1/3: h1\n-- list: batch 2/3: h2, h3, h4, h5\n-- list: batch 3/3: h6, h7, h8\nok list X.Xs\n"
        ),
        "{}",
        r.show()
    );
    // -q shows no batches.
    t.clone_args(&["run", "list", "-q", "--plain"])
        .run()
        .expect(0, "", "ok list (X.Xs)\n");
    assert_eq!(
        log_by_batch(&t, &[1, 4, 3, 1, 4, 3]),
        ["list h1", "list h2", "list h3", "list h4", "list h5", "list h6", "list h7", "list h8"]
            .repeat(2)
    );
    std::fs::remove_file(t.path("log")).unwrap();

    let r = t.clone_args(&["run", "canary", "--plain"]).run();
    r.expect_code(0);
    assert!(
        mask(&r.stderr).starts_with(
            "-- canary: canary batch 1/2: h1\n-- canary: waiting 1s (canary_wait) before the next batch\n-- canary: batch 2/2: h2, h3, h4, h5, h6, h7, h8\nok canary X.Xs\n"
        ),
        "{}",
        r.show()
    );
    let lines = log(&t);
    assert_eq!(lines.len(), 8, "{lines:?}");
    let at = |line: &str| line.rsplit(' ').next().unwrap().parse::<u128>().unwrap();
    assert!(lines[0].starts_with("canary h1 "), "{lines:?}");
    for later in &lines[1..] {
        let gap = at(later) - at(&lines[0]);
        assert!(
            gap >= 1_000_000_000,
            "{later} only {gap} ns after the canary"
        );
    }
    std::fs::remove_file(t.path("log")).unwrap();

    t.clone_args(&["run", "once", "--plain"]).run().expect(
        0,
        "",
        "ok once X.Xs\n  `- h1 ok X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    assert_eq!(log(&t), ["once h1"]);
}

/// Issue 14, 5: a handler notified three times on a host runs once there, after the
/// task's steps; where nothing notified it, it does not run; a handler it notifies runs
/// after it (a chain); a handler nobody notified never runs.
#[test]
fn handlers_run_once_per_notified_host_in_file_order_with_chains() {
    let server = Server::openssh();
    let t = fleet(
        &server,
        r#"
        [tasks.config]
        on = ["h1", "h2"]
        run = [
          { cmd = "echo one $NEXUS_HOST >> {{ log }}", notify = "restart", unless = "test {{ host }} = h2" },
          { cmd = "echo two $NEXUS_HOST >> {{ log }}", notify = ["restart"], unless = "test {{ host }} = h2" },
          { cmd = "echo three $NEXUS_HOST >> {{ log }}", notify = "restart", unless = "test {{ host }} = h2" },
          "echo last $NEXUS_HOST >> {{ log }}",
        ]

        [handlers.unused]
        run = "echo unused $NEXUS_HOST >> {{ log }}"

        [handlers.check]
        run = "echo check $NEXUS_HOST >> {{ log }}"

        [handlers.restart]
        run = "echo restart $NEXUS_HOST >> {{ log }}"
        notify = "check"
        "#,
    );
    let r = t.clone_args(&["run", "config", "--plain"]).run();
    r.expect_code(0);
    // The hosts run at once: their lines are compared in sorted order.
    let sorted = |text: &str| {
        let mut lines: Vec<String> = mask(text).lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    assert_eq!(
        sorted(&r.stderr),
        sorted(
            &"config@h2: skipped `echo one $NEXUS_HOST >> LOG` (unless `test h2 = h2` succeeded)
config@h2: skipped `echo two $NEXUS_HOST >> LOG` (unless `test h2 = h2` succeeded)
config@h2: skipped `echo three $NEXUS_HOST >> LOG` (unless `test h2 = h2` succeeded)
-- config@h1: running handler `restart`
-- config@h1: running handler `check`
ok config X.Xs
  |- h1 ok X.Xs
  `- h2 ok X.Xs
Completed in X.Xs: 1 succeeded
"
            .replace("LOG", &t.path("log").display().to_string())
        ),
        "{}",
        r.show()
    );
    let mut h2: Vec<String> = log(&t).into_iter().filter(|l| l.ends_with("h2")).collect();
    h2.sort();
    assert_eq!(h2, ["last h2"]);
    let h1: Vec<String> = log(&t).into_iter().filter(|l| l.ends_with("h1")).collect();
    assert_eq!(
        h1,
        [
            "one h1",
            "two h1",
            "three h1",
            "last h1",
            "restart h1",
            "check h1"
        ]
    );
    // Done: nothing is pending, the next run's steps notify anew.
    std::fs::remove_file(t.path("log")).unwrap();
    t.clone_args(&["run", "config", "-q"]).run().expect_code(0);
    let h1: Vec<String> = log(&t).into_iter().filter(|l| l.ends_with("h1")).collect();
    assert_eq!(
        h1,
        [
            "one h1",
            "two h1",
            "three h1",
            "last h1",
            "restart h1",
            "check h1"
        ]
    );
}

/// Issue 14, 5: a task that fails on a host after notifying leaves its handler pending:
/// it does not run in that run, and the next run that reaches the task on that host runs
/// it and says from which run it was pending. `force_handlers = true` runs it in the
/// failing run.
#[test]
fn a_failed_task_leaves_its_handler_pending_for_the_next_run_unless_forced() {
    let server = Server::openssh();
    let body = |force: bool| {
        format!(
            r#"
            [tasks.deploy]
            on = "h1"
            force_handlers = {force}
            run = [
              {{ cmd = "echo config >> {{{{ log }}}}; touch {{{{ dir }}}}/configured", notify = "restart", creates = "{{{{ dir }}}}/configured" }},
              "echo check >> {{{{ log }}}}; test ! -e {{{{ dir }}}}/broken",
            ]

            [handlers.restart]
            run = "echo restart >> {{{{ log }}}}"
            "#
        )
    };
    let t = fleet(&server, &body(false));
    std::fs::write(t.path("broken"), "").unwrap();
    let r = t.clone_args(&["run", "deploy", "--plain", "-q"]).run();
    r.expect_code(1);
    assert!(
        r.stderr.starts_with("-- deploy@h1: handler `restart` not run (the task failed here); it stays pending for the next run\nFAILED deploy ("),
        "{}",
        r.show()
    );
    assert_eq!(log(&t), ["config", "check"]);
    let first = t
        .clone_args(&["runs", "--format", "json"])
        .run()
        .stdout
        .split('"')
        .find(|w| w.len() == 24 && w.contains('T'))
        .unwrap()
        .to_string();
    std::fs::remove_file(t.path("broken")).unwrap();
    let r = t.clone_args(&["run", "deploy", "--plain"]).run();
    r.expect(
        0,
        "",
        &format!(
            "deploy@h1: skipped `echo config >> {dir}log; touch {dir}/configured` (creates {dir}/configured exists)\n-- deploy@h1: running pending handler `restart` from run {first}\nok deploy X.Xs\n  `- h1 ok X.Xs\nCompleted in X.Xs: 1 succeeded\n",
            dir = t.path("").display()
        )
        .replace(&first, "RUN_ID"),
    );
    assert!(r.stderr.contains(&first), "{}", r.show());
    // The step that notified was skipped this time (`creates`): the notification was kept.
    assert_eq!(log(&t), ["config", "check", "check", "restart"]);
    // Run once: nothing is pending any more.
    t.clone_args(&["run", "deploy", "--plain", "-q"])
        .run()
        .expect(0, "", "ok deploy (X.Xs)\n");
    assert_eq!(log(&t), ["config", "check", "check", "restart", "check"]);

    let t = fleet(&server, &body(true));
    std::fs::write(t.path("broken"), "").unwrap();
    let r = t.clone_args(&["run", "deploy", "--plain"]).run();
    r.expect_code(1);
    assert!(
        r.stderr
            .starts_with("-- deploy@h1: running handler `restart`\nFAILED deploy "),
        "{}",
        r.show()
    );
    assert_eq!(log(&t), ["config", "check", "restart"]);
}

/// Issue 14, 5 and resume: nexus SIGKILLed in the third batch (h5 alone), after h5
/// notified its handler and before the handler ran. `nexus resume` goes on from that
/// batch (the batches that finished are not run again, nor h5's first step), runs h5's
/// pending handler, then the last batch; every host's handler ran exactly once.
#[test]
fn sigkill_mid_rollout_then_resume_continues_the_batches_and_runs_pending_handlers() {
    let server = Server::openssh();
    let sleep = marker(20, 14);
    let t = fleet(
        &server,
        &format!(
            r#"
            [tasks.deploy]
            on = "web"
            strategy = "rolling"
            batch = [2, 2, 1, 3]
            run = [
              {{ cmd = "echo start $NEXUS_HOST >> {{{{ log }}}}", notify = "restart" }},
              "if [ $NEXUS_HOST = h5 ] && [ ! -e {{{{ dir }}}}/go ]; then echo waiting >> {{{{ log }}}}; sleep {sleep}; fi",
            ]

            [handlers.restart]
            run = "echo restart $NEXUS_HOST >> {{{{ log }}}}"
            "#
        ),
    );
    let mut c = t.command();
    c.args(["run", "deploy", "-q"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    wait_until("h5 to wait", Duration::from_secs(20), || {
        t.read("log").contains("waiting")
    });
    // SAFETY: killing the nexus this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    for p in processes_matching(&format!("sleep {sleep}")) {
        if let Some(pid) = p.split(':').next().and_then(|s| s.parse::<i32>().ok()) {
            // SAFETY: the sleep the killed run left on the (local) sshd.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    std::fs::write(t.path("go"), "").unwrap();
    let before = log(&t);
    assert!(!before.contains(&"restart h5".to_string()), "{before:?}");
    let r = t.clone_args(&["resume", "--plain"]).run();
    r.expect_code(0);
    // The lines of the resume and the rollout, then the task's result.
    let lines: Vec<String> = mask(&r.stderr)
        .lines()
        .take_while(|l| !l.starts_with("ok deploy"))
        .map(str::to_string)
        .collect();
    assert!(
        mask(&r.stderr).contains("\nok deploy X.Xs\n"),
        "{}",
        r.show()
    );
    assert_eq!(
        lines[..3],
        [
            "resuming run RUN_ID (deploy #1): skipping deploy on h1, h2, h3, h4, 1 command of deploy on h5; running deploy (the rest)",
            "-- deploy: batch 3/4: h5",
            "-- deploy@h5: running handler `restart`",
        ],
        "{}",
        r.show()
    );
    // The hosts of the last batch run at once: their lines in any order.
    let mut last = lines[4..].to_vec();
    last.sort();
    assert_eq!(
        (lines[3].as_str(), last),
        (
            "-- deploy: batch 4/4: h6, h7, h8",
            vec![
                "-- deploy@h6: running handler `restart`".to_string(),
                "-- deploy@h7: running handler `restart`".to_string(),
                "-- deploy@h8: running handler `restart`".to_string(),
            ],
        ),
        "{}",
        r.show()
    );
    let after = log(&t);
    for h in ["h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8"] {
        let count = |what: &str| {
            after
                .iter()
                .filter(|l| **l == format!("{what} {h}"))
                .count()
        };
        assert_eq!((count("start"), count("restart")), (1, 1), "{h}: {after:?}");
    }
    // The batches that had finished are before the kill, the last one after it.
    assert!(
        pos(&after, "restart h4") < pos(&after, "waiting"),
        "{after:?}"
    );
    assert!(
        pos(&after, "start h6") > pos(&after, "restart h5"),
        "{after:?}"
    );
}

/// `--dry-run` lists a rolling task's batches and what its rollout does; `--format json`
/// has `batch` and `handler` events.
#[test]
fn dry_run_shows_the_batches_and_json_has_batch_and_handler_events() {
    let server = Server::openssh();
    let t = fleet(
        &server,
        r#"
        [tasks.deploy]
        on = "web"
        strategy = "rolling"
        canary = 1
        batch = ["50%", 3]
        max_fail = "25%"
        wait_for = { cmd = "true", interval = "100ms", successes = 2, timeout = "5s" }
        rollback = "echo undo"
        run = [{ cmd = "echo hi", notify = "restart" }]

        [handlers.restart]
        run = "echo restarted"
        "#,
    );
    let r = t
        .clone_args(&["run", "deploy", "--dry-run", "--plain"])
        .run();
    r.expect_code(0);
    let plan = r
        .stdout
        .split("Execution plan\n")
        .nth(1)
        .unwrap_or_default();
    assert_text(
        "plan",
        plan,
        "
  Phase 1:
    * deploy [h1, h2, h3, h4, h5, h6, h7, h8], rolling: 3 batches
      canary batch 1: h1
      batch 2: h2, h3, h4, h5
      batch 3: h6, h7, h8
      wait_for: true (every 100ms, 2 in a row, within 5s)
      max_fail: 25%
      rollback: echo undo
      `- echo hi  [notify:restart]

Summary
  Tasks:     1 tasks, 1 phases
  Hosts:     8 unique remote hosts
  Commands:  8 commands in all (per host)
  Estimated: none (no previous successful runs of these targets)

Run without --dry-run to execute.
",
    );
    let r = t.clone_args(&["run", "deploy", "--format", "json"]).run();
    r.expect_code(0);
    let events = r.json_lines();
    let batches: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "batch")
        .map(|e| {
            format!(
                "{} {} {} {}",
                e["batch"], e["batches"], e["hosts"], e["canary"]
            )
        })
        .collect();
    assert_eq!(
        batches,
        [
            r#"1 3 ["h1"] true"#,
            r#"2 3 ["h2","h3","h4","h5"] false"#,
            r#"3 3 ["h6","h7","h8"] false"#,
        ]
    );
    let h1: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "handler" && e["host"] == "h1")
        .map(|e| format!("{} {} {}", e["task"], e["handler"], e["status"]))
        .collect();
    assert_eq!(
        h1,
        [
            r#""deploy" "restart" "notified""#,
            r#""deploy" "restart" "running""#,
            r#""deploy" "restart" "success""#,
        ]
    );
    // The handler's command and the health check are told apart from the task's steps.
    let parts: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "command_finish" && e["host"] == "h1")
        .map(|e| format!("{} {} {}", e["command"], e["part"], e["status"]))
        .collect();
    assert_eq!(
        parts,
        [
            r#""echo hi" null "success""#,
            r#""echo restarted" "handler restart" "success""#,
            r#""true" "wait_for" "success""#,
        ]
    );
    // `runs show` tells the batches, notifications and parts apart too.
    let id = events[0]["run_id"].as_str().unwrap();
    let show = t.clone_args(&["runs", "show", id]).run();
    let h1: Vec<&str> = show
        .stdout
        .lines()
        .filter(|l| l.contains("batch") || l.contains("[h1]") || l.starts_with("  deploy"))
        .collect();
    assert_eq!(
        h1,
        [
            "  deploy batch 1/3: h1",
            "    [h1] #0 attempt 1 success (exit 0)",
            "    [h1] notified handler restart",
            "    [h1] handler restart #0 attempt 1 success (exit 0)",
            "    [h1] wait_for #0 attempt 1 success (exit 0)",
            "  deploy batch 2/3: h2, h3, h4, h5",
            "  deploy batch 3/3: h6, h7, h8",
            "  deploy success",
        ],
        "{}",
        show.show()
    );
}

/// Load-time errors of rollouts and handlers, each at its file:line:col with what to do:
/// a `notify` naming no handler (suggested), a cycle of handlers (its path), rolling
/// keys on a serial task, amounts out of range, a `wait_for` without `cmd`.
#[test]
fn rollout_and_handler_mistakes_are_load_time_errors() {
    Test::new()
        .toml(
            r#"
            [handlers.restart]
            run = ["systemctl restart app", ""]
            notify = "check"

            [handlers.check]
            run = "curl -fsS localhost/health"
            notify = ["restart"]

            [tasks.deploy]
            strategy = "serial"
            batch = "25%"
            max_fail = "120%"
            wait_for = { timeout = "5s" }
            run = [{ cmd = "install app.conf /etc/app.conf", notify = "restrat" }]

            [tasks.other]
            strategy = "rolling"
            batch = [1, 0]
            wait_for = { cmd = "true", successes = 0, intervall = "1s" }
            run = "true"
            "#,
        )
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:2:33: handler `restart` has an empty command
                |
              2 | run = ["systemctl restart app", ""]
                |                                 ^^
                = help: remove it or write the command

              nexus.toml:3:10: handler cycle: restart -> check -> restart
                |
              3 | notify = "check"
                |          ^^^^^^^
                = help: a handler may not notify itself, directly or through others: remove one of these notifications

              nexus.toml:11:9: task `deploy` sets `batch` but its strategy is serial
                 |
              11 | batch = "25%"
                 |         ^^^^^
                 = help: `batch`, `canary` and `canary_wait` are for rolling tasks: add strategy = "rolling"

              nexus.toml:12:12: `max_fail` `120%` is not a number of hosts or a percentage from 0% to 100%
                 |
              12 | max_fail = "120%"
                 |            ^^^^^^
                 = help: write a number of hosts (max_fail = 0) or a percentage (max_fail = "25%")

              nexus.toml:13:12: the `wait_for` of task `deploy` has no `cmd`
                 |
              13 | wait_for = { timeout = "5s" }
                 |            ^^^^^^^^^^^^^^^^^^
                 = help: write wait_for = { cmd = "curl -fsS localhost:8080/health", timeout = "60s" }

              nexus.toml:14:59: `notify` names undefined handler `restrat`
                 |
              14 | run = [{ cmd = "install app.conf /etc/app.conf", notify = "restrat" }]
                 |                                                           ^^^^^^^^^
                 = help: did you mean `restart`?

              nexus.toml:18:13: `batch` must be between 1 and 1000000, found 0
                 |
              18 | batch = [1, 0]
                 |             ^

              nexus.toml:19:40: `successes` must be between 1 and 1000, found 0
                 |
              19 | wait_for = { cmd = "true", successes = 0, intervall = "1s" }
                 |                                        ^

              nexus.toml:19:43: unknown key `intervall` in `wait_for`
                 |
              19 | wait_for = { cmd = "true", successes = 0, intervall = "1s" }
                 |                                           ^^^^^^^^^
                 = help: did you mean `interval`?
            "#,
        );
}

/// SIGTERM while a rollout waits after its canary: the run ends at once (not after the
/// wait), exit 130, the hosts not started are skipped, nothing is rolled back.
#[test]
fn sigterm_during_canary_wait_ends_the_run_at_once() {
    let server = Server::openssh();
    let t = fleet(
        &server,
        r#"
        [tasks.deploy]
        on = "web"
        strategy = "rolling"
        canary = 1
        canary_wait = "1m"
        batch = "100%"
        rollback = "echo rollback $NEXUS_HOST >> {{ log }}"
        run = "echo start $NEXUS_HOST >> {{ log }}"
        "#,
    );
    let mut c = t.clone_args(&["run", "deploy", "--plain"]).command();
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Stop(c.spawn().unwrap());
    wait_until("the canary", Duration::from_secs(20), || {
        t.read("log").contains("start h1")
    });
    std::thread::sleep(Duration::from_millis(300));
    let sent = std::time::Instant::now();
    child.signal(libc::SIGTERM);
    let r = wait_within(&mut child, &c, Duration::from_secs(20));
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    r.expect_code(130);
    assert_eq!(log(&t), ["start h1"]);
    assert!(
        mask(&r.stderr).starts_with(
            "-- deploy: canary batch 1/2: h1\n-- deploy: waiting 1m (canary_wait) before the next batch\n"
        ),
        "{}",
        r.show()
    );
    assert!(r.stderr.contains("  |- h2 skipped"), "{}", r.show());
}

/// A rollout that stopped, and nexus SIGKILLed during the rollback: `nexus resume` rolls
/// the failed host back again and starts no other host; the task fails.
#[test]
fn resume_of_a_stopped_rollout_rolls_back_again_and_starts_nothing_else() {
    let server = Server::openssh();
    let sleep = marker(20, 15);
    let t = fleet(
        &server,
        &format!(
            r#"
            [tasks.deploy]
            on = "web"
            strategy = "rolling"
            batch = 2
            wait_for = {{ cmd = "test $NEXUS_HOST != h3", timeout = "200ms", interval = "100ms" }}
            rollback = "echo rollback $NEXUS_HOST >> {{{{ log }}}}; [ -e {{{{ dir }}}}/go ] || sleep {sleep}"
            run = "echo start $NEXUS_HOST >> {{{{ log }}}}"
            "#
        ),
    );
    let mut c = t.command();
    c.args(["run", "deploy", "-q"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    wait_until("the rollback", Duration::from_secs(20), || {
        t.read("log").contains("rollback h3")
    });
    // SAFETY: killing the nexus this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
    for p in processes_matching(&format!("sleep {sleep}")) {
        if let Some(pid) = p.split(':').next().and_then(|s| s.parse::<i32>().ok()) {
            // SAFETY: the sleep the killed run left on the (local) sshd.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    std::fs::write(t.path("go"), "").unwrap();
    let r = t.clone_args(&["resume", "--plain", "-q"]).run();
    r.expect_code(1);
    assert!(
        mask(&r.stderr).starts_with(
            "resuming run RUN_ID (deploy #1): skipping deploy on h1, h2, h4, 1 command of deploy on h3; running deploy (the rest)\n\
             -- deploy: rollout stopped: 1 host failed (h3), max_fail is 0; 4 hosts not started (skipped); rolling back on h3\n\
             FAILED deploy (X.Xs)\n"
        ),
        "{}",
        r.show()
    );
    assert_eq!(
        log_by_batch(&t, &[2, 2, 1, 1]),
        [
            "start h1",
            "start h2",
            "start h3",
            "start h4",
            "rollback h3",
            "rollback h3"
        ]
    );
}

/// A step whose failure `continue_on_error` tolerates did not succeed: it notifies
/// nothing. Handlers work for local tasks too.
#[test]
fn a_tolerated_failure_notifies_nothing() {
    let t = Test::new().toml(
        r#"
        [tasks.tolerated]
        run = [{ cmd = "exit 3", continue_on_error = true, notify = "restart" }, "true"]

        [tasks.ok]
        run = [{ cmd = "true", notify = "restart" }]

        [handlers.restart]
        run = "echo restarted by $NEXUS_TASK >> log"
        "#,
    );
    t.clone_args(&["run", "tolerated", "--plain"]).run().expect(
        0,
        "",
        "warning: task `tolerated` on local: `exit 3` exited with 3; continuing (continue_on_error)\nok tolerated X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    assert_eq!(t.read("log"), "");
    t.clone_args(&["run", "ok", "--plain"]).run().expect(
        0,
        "",
        "-- ok: running handler `restart`\nok ok X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    assert_eq!(t.read("log"), "restarted by ok\n");
}

/// A handler's steps (and a rollback's) take `creates` / `unless` as a task's do.
#[test]
fn handler_steps_are_guarded_like_task_steps() {
    let t = Test::new().toml(
        r#"
        [tasks.config]
        run = [{ cmd = "true", notify = "setup" }]

        [handlers.setup]
        run = [
          { cmd = "echo install >> log; touch installed", creates = "installed" },
          { cmd = "echo start >> log", unless = "test -e skip-start" },
        ]
        "#,
    );
    t.clone_args(&["run", "config", "-q"])
        .run()
        .expect(0, "", "ok config (X.Xs)\n");
    std::fs::write(t.path("skip-start"), "").unwrap();
    t.clone_args(&["run", "config", "--plain"]).run().expect(
        0,
        "",
        "-- config: running handler `setup`\nconfig: skipped `echo install >> log; touch installed` (creates installed exists)\nconfig: skipped `echo start >> log` (unless `test -e skip-start` succeeded)\nok config X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    assert_eq!(t.read("log"), "install\nstart\n");
}
