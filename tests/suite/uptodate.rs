//! Up-to-date checks (docs/nexus-toml.md, "Up-to-date checks"). The correctness matrix
//! of issue 15, one test per row, each asserting the `-v` reason: first run, unchanged,
//! touched, edited, edited with the old mtime put back, output deleted, output edited,
//! definition changed, `-B`, a git branch switched away and back, a dependency that
//! rewrote a source. Then the JSON statuses, the dry-run plan, load errors, and
//! `creates` / `unless` locally and against a real sshd (one exec request per host for
//! all of a task's guards, counted in sshd's own DEBUG log).
//!
//! Between changing a file and the next check the tests wait 100 ms: a file changed
//! within 50 ms before it is hashed is hashed again at the next check (its stat could
//! not show a second change in the same clock tick; git calls such entries "racily
//! clean"), which would blur what the hash counts assert.

use std::process::Command;
use std::time::Duration;

use crate::common::sshd::{Keys, Server};
use crate::common::*;

const BUILD: &str = r#"
[tasks.build]
sources = ["src/**"]
outputs = ["dist/app.js"]
run = ["mkdir -p dist", "cat src/*.rs > dist/app.js"]
"#;

fn project() -> Test {
    Test::new()
        .toml(BUILD)
        .file("src/main.rs", "fn main() {}\n")
}

fn settle() {
    std::thread::sleep(Duration::from_millis(100));
}

/// `nexus run build -v` after the settling wait.
fn build(t: &Test, extra: &[&str]) -> Run {
    settle();
    let mut args = vec!["run", "build", "-v"];
    args.extend_from_slice(extra);
    t.clone_args(&args).run()
}

/// What `-v` prints for a run of BUILD that ran, and why.
fn ran(reason: &str) -> String {
    format!(
        "* build\nbuild: running ({reason})\nbuild | $ mkdir -p dist\nbuild | $ cat src/*.rs > dist/app.js\nok build 0.0s\nCompleted in 0.0s: 1 succeeded\n"
    )
}

const SKIPPED: &str = "* build\nbuild: up to date (1 source and 1 output unchanged)\nup to date build\nCompleted in 0.0s: 0 succeeded, 1 up to date\n";

fn sh(t: &Test, script: &str) {
    let st = Command::new("sh")
        .args(["-c", script])
        .current_dir(t.dir.path())
        .status()
        .expect("sh");
    assert!(st.success(), "`{script}` failed");
}

/// The `uptodate:` debug lines (how many files were hashed), and everything else.
fn split_debug(r: &Run) -> (Vec<String>, String) {
    let mut debug = Vec::new();
    let mut rest = String::new();
    for l in r.stderr.lines() {
        match l.strip_prefix("nexus: debug: uptodate: ") {
            Some(d) => debug.push(d.to_string()),
            None => {
                rest.push_str(l);
                rest.push('\n');
            }
        }
    }
    (debug, rest)
}

#[test]
fn first_run_runs() {
    let t = project();
    build(&t, &[]).expect(0, "", &ran("first run"));
    assert_eq!(t.read("dist/app.js"), "fn main() {}\n");
}

#[test]
fn unchanged_is_skipped() {
    let t = project();
    build(&t, &[]).expect_code(0);
    build(&t, &[]).expect(0, "", SKIPPED);
    build(&t, &[]).expect(0, "", SKIPPED);
}

#[test]
fn touch_without_a_change_is_skipped_and_not_hashed_again() {
    let t = project().env("NEXUS_LOG_LEVEL", "nexus::uptodate=debug");
    build(&t, &[]).expect_code(0);
    build(&t, &[]).expect_code(0);
    sh(&t, "touch src/main.rs");
    let r = build(&t, &[]);
    let (debug, rest) = split_debug(&r);
    assert_text("stderr", &mask(&rest), &mask(SKIPPED));
    assert_eq!(debug, ["build: 2 files checked, 1 hashed (13 bytes)"]);
    // The following check trusts the new stat: nothing is read.
    let r = build(&t, &[]);
    let (debug, rest) = split_debug(&r);
    assert_text("stderr", &mask(&rest), &mask(SKIPPED));
    assert_eq!(debug, ["build: 2 files checked, 0 hashed (0 bytes)"]);
}

#[test]
fn a_content_edit_runs() {
    let t = project();
    build(&t, &[]).expect_code(0);
    std::fs::write(t.path("src/main.rs"), "fn main() { run() }\n").unwrap();
    build(&t, &[]).expect(0, "", &ran("src/main.rs changed"));
    std::fs::write(t.path("src/new.rs"), "fn new() {}\n").unwrap();
    build(&t, &[]).expect(0, "", &ran("src/new.rs added"));
    std::fs::remove_file(t.path("src/new.rs")).unwrap();
    build(&t, &[]).expect(0, "", &ran("src/new.rs removed"));
    build(&t, &[]).expect(0, "", SKIPPED);
}

#[test]
fn an_edit_with_the_old_mtime_put_back_runs() {
    let t = project();
    sh(&t, "touch -d '2020-01-01 00:00:00' src/main.rs");
    build(&t, &[]).expect_code(0);
    let before = std::fs::metadata(t.path("src/main.rs")).unwrap();
    // Same size, same inode, the old mtime: only the ctime tells (make decides wrongly).
    std::fs::write(t.path("src/main.rs"), "fn mian() {}\n").unwrap();
    sh(&t, "touch -d '2020-01-01 00:00:00' src/main.rs");
    let after = std::fs::metadata(t.path("src/main.rs")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (before.len(), before.mtime(), before.ino()),
        (after.len(), after.mtime(), after.ino())
    );
    build(&t, &[]).expect(0, "", &ran("src/main.rs changed"));
}

#[test]
fn a_deleted_output_runs() {
    let t = project();
    build(&t, &[]).expect_code(0);
    std::fs::remove_file(t.path("dist/app.js")).unwrap();
    build(&t, &[]).expect(0, "", &ran("output dist/app.js missing"));
    assert_eq!(t.read("dist/app.js"), "fn main() {}\n");
}

#[test]
fn an_edited_output_runs() {
    let t = project();
    build(&t, &[]).expect_code(0);
    std::fs::write(t.path("dist/app.js"), "hand-edited\n").unwrap();
    build(&t, &[]).expect(0, "", &ran("output dist/app.js changed"));
    assert_eq!(t.read("dist/app.js"), "fn main() {}\n");
}

#[test]
fn a_changed_command_env_or_argument_runs() {
    let toml = |cmd: &str, mode: &str| {
        format!(
            "[tasks.build]\nsources = [\"src/**\"]\noutputs = [\"dist/app.js\"]\nargs = [\"version=1\"]\n\
             env = {{ MODE = \"{mode}\" }}\nrun = [\"mkdir -p dist\", \"{cmd} > dist/app.js\"]\n"
        )
    };
    let t = Test::new()
        .toml(&toml("cat src/*.rs", "debug"))
        .file("src/main.rs", "fn main() {}\n");
    let ran_with = |reason: &str, cmd: &str| {
        format!(
            "* build\nbuild: running ({reason})\nbuild | $ mkdir -p dist\nbuild | $ {cmd} > dist/app.js\nok build 0.0s\nCompleted in 0.0s: 1 succeeded\n"
        )
    };
    build(&t, &[]).expect(0, "", &ran_with("first run", "cat src/*.rs"));
    build(&t, &[]).expect(0, "", SKIPPED);
    build(&t, &["2"]).expect(0, "", &ran_with("arg version changed", "cat src/*.rs"));
    std::fs::write(t.path("nexus.toml"), toml("cat src/*.rs", "release")).unwrap();
    build(&t, &["2"]).expect(0, "", &ran_with("env MODE changed", "cat src/*.rs"));
    std::fs::write(t.path("nexus.toml"), toml("cat src/main.rs", "release")).unwrap();
    build(&t, &["2"]).expect(0, "", &ran_with("commands changed", "cat src/main.rs"));
    build(&t, &["2"]).expect(0, "", SKIPPED);
}

#[test]
fn always_runs() {
    let t = project();
    build(&t, &[]).expect_code(0);
    build(&t, &["-B"]).expect(0, "", &ran("-B/--always"));
    build(&t, &["--always"]).expect(0, "", &ran("-B/--always"));
    // A forced success is recorded like any other.
    build(&t, &[]).expect(0, "", SKIPPED);
}

fn git(t: &Test, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "advice.detachedHead=false",
        ])
        .args(args)
        .current_dir(t.dir.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", t.dir.path())
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

#[test]
fn switching_git_branches_away_and_back_is_skipped() {
    let t = project();
    git(&t, &["init", "-q"]);
    git(&t, &["add", "nexus.toml", "src"]);
    git(&t, &["commit", "-q", "-m", "one"]);
    git(&t, &["checkout", "-q", "-b", "other"]);
    std::fs::write(t.path("src/main.rs"), "fn main() { other() }\n").unwrap();
    git(&t, &["commit", "-q", "-am", "two"]);
    git(&t, &["checkout", "-q", "main"]);
    build(&t, &[]).expect(0, "", &ran("first run"));
    let ino = |t: &Test| {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(t.path("src/main.rs")).unwrap();
        (m.ino(), m.mtime_nsec(), m.ctime_nsec())
    };
    let first = ino(&t);
    settle();
    git(&t, &["checkout", "-q", "other"]);
    git(&t, &["checkout", "-q", "main"]);
    // git wrote the file anew (make would rebuild); its content is what it was.
    assert_ne!(ino(&t), first);
    build(&t, &[]).expect(0, "", SKIPPED);
    git(&t, &["checkout", "-q", "other"]);
    build(&t, &[]).expect(0, "", &ran("src/main.rs changed"));
}

#[test]
fn a_dependency_that_rewrote_a_source_makes_the_task_run() {
    let t = Test::new()
        .toml(&format!(
            "[tasks.gen]\nrun = \"date +%s%N > src/gen.rs\"\n{}deps = [\"gen\"]\n",
            BUILD.trim_start()
        ))
        .file("src/main.rs", "fn main() {}\n");
    let reasons = |r: &Run| -> Vec<String> {
        r.stderr
            .lines()
            .filter(|l| l.starts_with("build: "))
            .map(str::to_string)
            .collect()
    };
    settle();
    let r = t.clone_args(&["run", "build", "-v"]).run();
    r.expect_code(0);
    assert_eq!(reasons(&r), ["build: running (first run)"]);
    settle();
    let r = t.clone_args(&["run", "build", "-v"]).run();
    r.expect_code(0);
    // The check happens after gen ran, not when the run started.
    assert_eq!(reasons(&r), ["build: running (src/gen.rs changed)"]);
}

#[test]
fn json_events_say_up_to_date_and_dependents_run() {
    let t = Test::new()
        .toml(&format!(
            "{BUILD}\n[tasks.test]\ndeps = [\"build\"]\nrun = \"true\"\n"
        ))
        .file("src/main.rs", "fn main() {}\n");
    settle();
    t.clone_args(&["run", "test"]).run().expect_code(0);
    settle();
    let r = t.clone_args(&["run", "test", "--format", "json"]).run();
    r.expect_code(0);
    let lines = r.json_lines();
    let find = |event: &str, task: &str| {
        lines
            .iter()
            .find(|l| l["event"] == event && l["task"] == task)
            .cloned()
            .unwrap_or_else(|| panic!("no {event} of {task}: {}", r.show()))
    };
    let check = find("check", "build");
    assert_eq!(check["up_to_date"], true);
    assert_eq!(check["reasons"][0], "1 source and 1 output unchanged");
    let fin = find("task_finish", "build");
    assert_eq!(fin["status"], "up_to_date");
    assert_eq!(fin["hosts"]["local"], "up_to_date");
    assert_eq!(find("task_finish", "test")["status"], "success");
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "run_finish");
    assert_eq!(last["status"], "success");
    assert_eq!(last["tasks"]["build"], "up_to_date");
    assert_eq!(last["tasks"]["test"], "success");
    assert!(!lines
        .iter()
        .any(|l| l["event"] == "command_start" && l["task"] == "build"));
}

#[test]
fn the_summary_counts_up_to_date_tasks() {
    let t = Test::new()
        .toml(&format!(
            "{BUILD}\n[tasks.test]\ndeps = [\"build\"]\nrun = \"true\"\n"
        ))
        .file("src/main.rs", "fn main() {}\n");
    settle();
    t.clone_args(&["run", "test"]).run().expect_code(0);
    settle();
    t.clone_args(&["run", "test"]).run().expect(
        0,
        "",
        "
        up to date build
        ok test 0.0s

        Summary:
          up to date build  up to date
          ok         test   0.0s
        Completed in 0.0s: 1 succeeded, 1 up to date
        ",
    );
}

#[test]
fn the_dry_run_says_which_tasks_are_skipped_and_why() {
    let t = Test::new()
        .toml(&format!(
            "{BUILD}\n[tasks.test]\ndeps = [\"build\"]\nrun = \"true\"\n"
        ))
        .file("src/main.rs", "fn main() {}\n");
    let plan = |t: &Test| {
        settle();
        let r = t.clone_args(&["run", "test", "-n"]).run();
        r.expect_code(0);
        r.stdout
            .lines()
            .filter(|l| l.contains("* "))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        plan(&t),
        [
            "    * build [local]  (runs: first run)",
            "    * test [local]"
        ]
    );
    settle();
    t.clone_args(&["run", "test"]).run().expect_code(0);
    assert_eq!(
        plan(&t),
        [
            "    * build [local]  (up to date, skipped: 1 source and 1 output unchanged)",
            "    * test [local]"
        ]
    );
    std::fs::write(t.path("src/main.rs"), "changed\n").unwrap();
    assert_eq!(
        plan(&t),
        [
            "    * build [local]  (runs: src/main.rs changed)",
            "    * test [local]"
        ]
    );
    // The dry run recorded nothing: the real run still sees the change.
    build(&t, &[]).expect(0, "", &ran("src/main.rs changed"));
    settle();
    let r = t
        .clone_args(&["run", "test", "-n", "--format", "json"])
        .run();
    let doc: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let task = &doc["phases"][0]["tasks"][0];
    assert_eq!(task["up_to_date"], true, "{}", r.show());
    assert_eq!(task["reasons"][0], "1 source and 1 output unchanged");
}

#[test]
fn sources_on_a_remote_task_and_outputs_without_sources_are_load_errors() {
    Test::new()
        .toml(
            r#"
            [hosts]
            web = ["web-1.example.com"]
            [tasks.deploy]
            on = "web"
            sources = ["src/**"]
            run = "true"
            [tasks.pack]
            outputs = "dist/app.tar"
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

              nexus.toml:5:11: task `deploy` has `sources` but runs on hosts: sources and outputs are checked on this machine, for local tasks
                |
              5 | sources = ["src/**"]
                |           ^^^^^^^^^^
                = help: on hosts, skip work with `creates = "PATH"` or `unless = "COMMAND"`

              nexus.toml:8:11: task `pack` has `outputs` but no `sources`
                |
              8 | outputs = "dist/app.tar"
                |           ^^^^^^^^^^^^^^
                = help: add `sources`: the task is skipped when they and the outputs are unchanged
            "#,
        );
}

#[test]
fn local_creates_and_unless_skip_commands_and_tasks() {
    let t = Test::new().toml(
        r#"
        [tasks.setup]
        run = [
          { cmd = "echo made > made.txt", creates = "made.txt" },
          { cmd = "echo second >> log.txt", unless = "grep -q second log.txt" },
        ]
        [tasks.once]
        deps = ["setup"]
        creates = "done.flag"
        run = "touch done.flag"
        "#,
    );
    let run = |t: &Test| t.clone_args(&["run", "setup", "once", "-v"]).run();
    let r = run(&t);
    r.expect_code(0);
    assert_eq!(t.read("log.txt"), "second\n");
    let r = run(&t);
    r.expect(
        0,
        "",
        "
        * setup
        setup: skipped `echo made > made.txt` (creates made.txt exists)
        setup: skipped `echo second >> log.txt` (unless `grep -q second log.txt` succeeded)
        up to date setup
        * once
        once: up to date (creates done.flag exists)
        up to date once

        Summary:
          up to date setup  up to date
          up to date once   up to date
        Completed in 0.0s: 0 succeeded, 2 up to date
        ",
    );
    assert_eq!(t.read("log.txt"), "second\n");
}

/// A test whose nexus.toml reaches `server` as the current user.
fn ssh_test(server: &Server, body: &str) -> Test {
    let keys = Keys::get();
    let toml = format!(
        "[config]\nssh_config = \"none\"\nknown_hosts = \"{kh}\"\nssh_identity = \"{id}\"\n\n[hosts]\nweb = [\"{u}@127.0.0.1:{port}\"]\n\n{body}",
        u = user(),
        kh = server.known_hosts().display(),
        id = keys.key("id_ed25519").display(),
        port = server.port,
    );
    let t = Test::new().toml(&toml);
    let home = t.path("home");
    std::fs::create_dir_all(&home).unwrap();
    t.env("HOME", home.to_str().unwrap())
        .env("SSH_AUTH_SOCK", "")
}

#[test]
fn creates_on_a_host_skips_the_command_where_the_path_exists() {
    let server = Server::openssh();
    let probe = Test::new();
    let d = probe.dir.path().display().to_string();
    std::fs::write(probe.path("exists"), "").unwrap();
    let t = ssh_test(
        &server,
        &format!(
            r#"
[tasks.deploy]
on = "web"
run = [
  {{ cmd = "echo one >> {d}/log", creates = "{d}/exists" }},
  {{ cmd = "echo two >> {d}/log", creates = "{d}/absent" }},
]
"#
        ),
    );
    let r = t.clone_args(&["run", "deploy", "--format", "json"]).run();
    r.expect_code(0);
    assert_eq!(probe.read("log"), "two\n");
    let skipped: Vec<_> = r
        .json_lines()
        .into_iter()
        .filter(|l| l["event"] == "command_skipped")
        .collect();
    assert_eq!(skipped.len(), 1, "{}", r.show());
    assert_eq!(skipped[0]["index"], 0);
    assert_eq!(skipped[0]["reason"], format!("creates {d}/exists exists"));
    let host = format!("{}@127.0.0.1:{}", user(), server.port);
    let r = t.clone_args(&["run", "deploy"]).run();
    r.expect(
        0,
        "",
        &format!(
            "
            deploy@{host}: skipped `echo one >> {d}/log` (creates {d}/exists exists)
            ok deploy 0.0s
              `- {host} ok 0.0s
            Completed in 0.0s: 1 succeeded
            "
        ),
    );
}

#[test]
fn the_guards_of_three_commands_cost_one_exec_request_per_host() {
    let server = Server::openssh_logging("DEBUG", "");
    let probe = Test::new();
    let d = probe.dir.path().display().to_string();
    let t = ssh_test(
        &server,
        &format!(
            r#"
[tasks.deploy]
on = "web"
run = [
  {{ cmd = "touch {d}/a", creates = "{d}/a" }},
  {{ cmd = "touch {d}/b", unless = "test -e {d}/b" }},
  {{ cmd = "touch {d}/c", creates = "{d}/c" }},
]

[tasks.whole]
on = "web"
unless = "test -e {d}/a"
run = ["touch {d}/never", "touch {d}/never2"]
"#
        ),
    );
    let execs = || server.log_count("request exec");
    // Nothing holds: one request for the guards, one per command.
    let before = execs();
    t.clone_args(&["run", "deploy"]).run().expect_code(0);
    assert_eq!(execs() - before, 4);
    // Everything holds: the one request for the guards.
    let before = execs();
    let r = t.clone_args(&["run", "deploy", "--format", "json"]).run();
    r.expect_code(0);
    assert_eq!(execs() - before, 1);
    let lines = r.json_lines();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["event"] == "command_skipped")
            .count(),
        3
    );
    assert_eq!(lines.last().unwrap()["tasks"]["deploy"], "up_to_date");
    // A task-level guard that holds: one request, the task up to date there.
    let before = execs();
    let r = t.clone_args(&["run", "whole", "--format", "json"]).run();
    r.expect_code(0);
    assert_eq!(execs() - before, 1);
    let lines = r.json_lines();
    let check = lines.iter().find(|l| l["event"] == "check").unwrap();
    assert_eq!(
        check["reasons"][0],
        format!("unless `test -e {d}/a` succeeded")
    );
    assert_eq!(lines.last().unwrap()["tasks"]["whole"], "up_to_date");
    assert!(!probe.path("never").exists());
}

/// A malformed glob is a load error at its place, with the matcher's reason: in
/// `sources` and in a file step's `exclude` alike.
#[test]
fn a_malformed_glob_is_a_load_error_with_its_reason() {
    Test::new()
        .toml(
            r#"
            [tasks.a]
            run = "true"
            sources = ["src/[a"]

            [tasks.b]
            run = [{ upload = "d/", to = "/tmp/x/", exclude = ["{a"] }]
            "#,
        )
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:3:12: `sources` pattern `src/[a` is not a valid glob: unclosed character class; missing ']'
                |
              3 | sources = ["src/[a"]
                |            ^^^^^^^^
                = help: write a path or a glob relative to the project root, such as "src/**/*.rs"

              nexus.toml:6:52: `exclude` pattern `{a` is not a valid glob: unclosed alternate group; missing '}' (maybe escape '{' with '[{]'?)
                |
              6 | run = [{ upload = "d/", to = "/tmp/x/", exclude = ["{a"] }]
                |                                                    ^^^^
                = help: write a path or a glob relative to the project root, such as "src/**/*.rs"
            "#,
        );
}
