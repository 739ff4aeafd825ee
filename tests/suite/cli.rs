//! Integration tests: the real binary against nexus.toml files written per test.

use std::time::Duration;

use crate::common::*;

// ---------------------------------------------------------------- config errors

#[test]
fn unknown_keys_are_errors_with_suggestions() {
    Test::new()
        .toml(
            r#"
            verison = 1
            [config]
            paralel_limit = 3
            [tasks.build]
            run = "true"
            dep = ["x"]
            [tasks.test]
            run = [{ cmd = "true", retry = 2 }]
            "#,
        )
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:1:1: unknown key `verison` in the top level
                |
              1 | verison = 1
                | ^^^^^^^
                = help: did you mean `version`?

              nexus.toml:3:1: unknown key `paralel_limit` in [config]
                |
              3 | paralel_limit = 3
                | ^^^^^^^^^^^^^
                = help: did you mean `parallel_limit`?

              nexus.toml:6:1: unknown key `dep` in task `build`
                |
              6 | dep = ["x"]
                | ^^^
                = help: did you mean `deps`?

              nexus.toml:8:24: unknown key `retry` in a command
                |
              8 | run = [{ cmd = "true", retry = 2 }]
                |                        ^^^^^
                = help: did you mean `retry_delay`?
            "#,
        );
}

#[test]
fn undefined_dep_suggests_the_close_name() {
    Test::new()
        .toml(
            r#"
            [tasks.build]
            run = "true"
            [tasks.deploy]
            deps = ["buld"]
            run = "true"
            "#,
        )
        .args(&["run", "deploy"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:4:9: task `deploy` depends on undefined task `buld`
                |
              4 | deps = ["buld"]
                |         ^^^^^^
                = help: did you mean `build`?
            "#,
        );
}

#[test]
fn undefined_dep_without_close_name_lists_tasks() {
    Test::new()
        .toml(
            r#"
            [tasks.build]
            run = "true"
            [tasks.deploy]
            deps = ["zzz"]
            "#,
        )
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:4:9: task `deploy` depends on undefined task `zzz`
                |
              4 | deps = ["zzz"]
                |         ^^^^^
                = help: defined tasks: build, deploy
            "#,
        );
}

#[test]
fn cycle_is_printed_as_a_path() {
    Test::new()
        .toml(
            r#"
            [tasks.a]
            deps = ["c"]
            run = "true"
            [tasks.b]
            deps = ["a"]
            run = "true"
            [tasks.c]
            deps = ["b"]
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

              nexus.toml:2:9: dependency cycle: a -> c -> b -> a
                |
              2 | deps = ["c"]
                |         ^^^
                = help: remove one of these dependencies
            "#,
        );
}

#[test]
fn self_dependency_is_an_error() {
    Test::new()
        .toml(
            r#"
            [tasks.a]
            deps = ["a"]
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

              nexus.toml:2:9: task `a` depends on itself
                |
              2 | deps = ["a"]
                |         ^^^
                = help: remove it from `deps`
            "#,
        );
}

#[test]
fn undefined_group_and_empty_task() {
    Test::new()
        .toml(
            r#"
            [hosts]
            web = ["web-1.example.com"]
            [tasks.deploy]
            on = "webb"
            run = "true"
            [tasks.nothing]
            desc = "does nothing"
            "#,
        )
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:4:6: host group `webb` is not defined
                |
              4 | on = "webb"
                |      ^^^^^^
                = help: did you mean `web`?

              nexus.toml:6:8: task `nothing` has nothing to do
                |
              6 | [tasks.nothing]
                |        ^^^^^^^
                = help: give it `run = "..."` (commands) or `deps = [...]` (an aggregate), or both
            "#,
        );
}

#[test]
fn bad_durations_hosts_and_types() {
    Test::new()
        .toml(
            r#"
            [config]
            connect_timeout = "10"
            host_key_checking = "strikt"
            [hosts]
            web = ["web-1:99999", "@web-2", "ok.example.com"]
            [tasks.a]
            timeout = "5 minutes"
            run = [{ cmd = "true", retries = "3" }, ""]
            "#,
        )
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:2:19: `connect_timeout` is not a valid duration: `10` has no unit
                |
              2 | connect_timeout = "10"
                |                   ^^^^
                = help: write milliseconds as an integer, or a string such as "250ms", "10s", "5m", "1h"

              nexus.toml:3:21: unknown host_key_checking `strikt`
                |
              3 | host_key_checking = "strikt"
                |                     ^^^^^^^^
                = help: did you mean `strict`?

              nexus.toml:5:8: host string `web-1:99999` has port `99999`; a port is a number from 1 to 65535
                |
              5 | web = ["web-1:99999", "@web-2", "ok.example.com"]
                |        ^^^^^^^^^^^^^
                = help: host strings are host, user@host, user@host:port or [ipv6]:port

              nexus.toml:5:23: host string `@web-2` has an empty user before `@`
                |
              5 | web = ["web-1:99999", "@web-2", "ok.example.com"]
                |                       ^^^^^^^^
                = help: host strings are host, user@host, user@host:port or [ipv6]:port

              nexus.toml:7:11: `timeout` is not a valid duration: `5 minutes` has an unknown unit `minutes`
                |
              7 | timeout = "5 minutes"
                |           ^^^^^^^^^^^
                = help: write milliseconds as an integer, or a string such as "250ms", "10s", "5m", "1h"

              nexus.toml:8:34: `retries` must be an integer, found string
                |
              8 | run = [{ cmd = "true", retries = "3" }, ""]
                |                                  ^^^

              nexus.toml:8:41: task `a` has an empty command
                |
              8 | run = [{ cmd = "true", retries = "3" }, ""]
                |                                         ^^
                = help: remove it or write the command
            "#,
        );
}

#[test]
fn unknown_variables_and_secrets_point_inside_the_string() {
    Test::new()
        .toml(
            r#"
            [tasks.a]
            run = "echo {{ hots }} {{ env(\"X\") }}"
            "#,
        )
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:2:7: unknown variable `hots`
                |
              2 | run = "echo {{ hots }} {{ env(\"X\") }}"
                |       ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
                = help: did you mean `host`?
            "#,
        );
    Test::new()
        .toml(
            r#"
            [tasks.a]
            run = 'echo {{ secret("X") }}'
            "#,
        )
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:2:16: task `a` uses secret `X`, but .nexus/secrets.enc does not exist
                |
              2 | run = 'echo {{ secret("X") }}'
                |                ^^^^^^^^^^^
                = help: create the store with `nexus secret init`, then `nexus secret set X`
            "#,
        );
}

#[test]
fn unset_required_env_fails_before_any_command() {
    let t = Test::new().args(&["run", "deploy"]).toml(
        r#"
        [tasks.first]
        run = "echo ran >> log"
        [tasks.deploy]
        deps = ["first"]
        run = 'echo {{ env("NEXUS_TEST_UNSET_VAR") }} {{ env("NEXUS_TEST_UNSET_OK", "fine") }}'
        "#,
    );
    t.run().expect(
        2,
        "",
        r#"
        Error: Cannot start the run

          nexus.toml:5:16: task `deploy` needs environment variable `NEXUS_TEST_UNSET_VAR`, which is not set
            |
          5 | run = 'echo {{ env("NEXUS_TEST_UNSET_VAR") }} {{ env("NEXUS_TEST_UNSET_OK", "fine") }}'
            |                ^^^^^^^^^^^^^^^^^^^^^^^^^^^
            = help: set it (export NEXUS_TEST_UNSET_VAR=...), put it in a dotenv file, or give a default: {{ env("NEXUS_TEST_UNSET_VAR", "...") }}
        "#,
    );
    assert!(!t.path("log").exists(), "no command may run");
}

#[test]
fn toml_syntax_error_has_location() {
    Test::new()
        .toml("[tasks.a]\nrun = \"true\n")
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:2:12: TOML syntax error: invalid basic string, expected `"`
                |
              2 | run = "true
                |            ^
            "#,
        );
}

#[test]
fn missing_file_says_where_it_looked() {
    let t = Test::new();
    let dir = t.dir.path().display().to_string();
    t.args(&["list"]).run().expect(
        2,
        "",
        &format!(
            "Error: no nexus.toml in {dir} or any parent directory\n\n  help: create one with `nexus init`, or point at one with -c PATH or NEXUS_CONFIG\n"
        ),
    );
}

#[test]
fn config_is_found_in_a_parent_directory_and_commands_run_in_the_root() {
    let t = Test::new()
        .toml(
            r#"
            [tasks.where]
            run = "pwd > where.txt"
            "#,
        )
        .file("sub/deeper/.keep", "");
    let mut c = t.command();
    c.args(["run", "where", "-q"])
        .current_dir(t.path("sub/deeper"));
    let out = c.output().unwrap();
    Run::from_output(&c, out).expect(0, "", "ok where (X.Xs)\n");
    let root = std::fs::canonicalize(t.dir.path()).unwrap();
    assert_eq!(t.read("where.txt").trim(), root.display().to_string());
}

// ---------------------------------------------------------------- CLI

#[test]
fn unknown_task_and_flag_get_suggestions() {
    let t = Test::new().toml(
        r#"
        [tasks.build]
        run = "true"
        "#,
    );
    t.args(&["run", "biuld"]).run().expect(
        2,
        "",
        "
        Error: unknown task `biuld`

          help: did you mean `build`?
        ",
    );
    Test::new()
        .args(&["run", "--verbos", "build"])
        .run()
        .expect(
            2,
            "",
            "
            Error: unknown flag `--verbos`

              help: did you mean `--verbose`?
              help: see `nexus help run`
            ",
        );
    // No nexus.toml: `nexus rnu` could only be a command.
    Test::new().args(&["rnu"]).run().expect(
        2,
        "",
        "
        Error: unknown command `rnu`

          help: did you mean `run`?
          help: `nexus rnu` would run task `rnu`, but there is no nexus.toml here or in a parent directory
        ",
    );
    Test::new()
        .args(&["list", "--continue-on-error"])
        .run()
        .expect(
            2,
            "",
            "
        Error: --continue-on-error does not apply to `nexus list`

          help: it is a flag of: run, resume
          help: see `nexus help list`
        ",
        );
    Test::new().args(&["run", "x", "-p", "0"]).run().expect(
        2,
        "",
        "
        Error: --parallel-limit needs a positive whole number, got `0`

          help: for example: --parallel-limit 4
        ",
    );
}

#[test]
fn version_and_help() {
    let r = Test::new().args(&["--version"]).run();
    r.expect_code(0);
    assert!(
        r.stdout
            .starts_with(&format!("nexus {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.trim_end().ends_with("x86_64-unknown-linux-gnu)") || r.stdout.contains("linux")
    );
    let v = Test::new().args(&["version"]).run();
    assert_eq!(v.stdout, r.stdout);

    let h = Test::new().args(&["help", "run"]).run();
    h.expect_code(0);
    for flag in [
        "--verbose",
        "--quiet",
        "--continue-on-error",
        "--parallel-limit N",
        "--format FORMAT",
        "--plain",
    ] {
        assert!(
            h.stdout.contains(flag),
            "help run lacks {flag}:\n{}",
            h.stdout
        );
    }
    let h2 = Test::new().args(&["run", "--help"]).run();
    assert_eq!(h.stdout, h2.stdout);
    let g = Test::new().args(&["-h"]).run();
    for cmd in [
        "run TASK...",
        "list",
        "validate",
        "init",
        "version",
        "help [COMMAND]",
        "completions SHELL",
    ] {
        assert!(g.stdout.contains(cmd), "help lacks {cmd}:\n{}", g.stdout);
    }
}

#[test]
fn completions_come_from_the_flag_table() {
    for shell in ["bash", "zsh", "fish"] {
        let r = Test::new().args(&["completions", shell]).run();
        r.expect_code(0);
        for word in [
            "continue-on-error",
            "parallel-limit",
            "validate",
            "completions",
        ] {
            assert!(r.stdout.contains(word), "{shell} completion lacks {word}");
        }
    }
    let bash = Test::new().args(&["completions", "bash"]).run();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg("-c")
        .arg(&bash.stdout)
        .status()
        .unwrap();
    assert!(check.success(), "bash completion does not parse");
    Test::new().args(&["completions", "tcsh"]).run().expect(
        2,
        "",
        "
        Error: no completions for shell `tcsh`

          help: choose one of: bash, zsh, fish
        ",
    );
}

#[test]
fn init_writes_a_valid_file_and_refuses_to_overwrite() {
    let t = Test::new();
    t.clone_args(&["init"]).run().expect(
        0,
        "Wrote nexus.toml. Try: nexus list, then nexus run hello\n",
        "",
    );
    let r = t.args(&["validate"]).run();
    r.expect(
        0,
        "nexus.toml is valid: 5 tasks, 0 host groups, 0 hosts\n",
        "",
    );
    let t2 = Test::new().toml("[tasks.a]\nrun = \"true\"\n");
    t2.args(&["init"]).run().expect(
        2,
        "",
        "
        Error: nexus.toml already exists

          help: use `nexus init --force` to overwrite it
        ",
    );
}

#[test]
fn list_shows_desc_deps_and_targets() {
    Test::new()
        .toml(
            r#"
            [hosts]
            web = ["web-1.example.com", "web-2.example.com"]
            [tasks.build]
            desc = "Build it"
            run = "true"
            [tasks.deploy]
            desc = "Ship it"
            deps = ["build"]
            on = "web"
            run = "true"
            [tasks.all]
            deps = ["deploy"]
            "#,
        )
        .args(&["list"])
        .run()
        .expect(
            0,
            "
            Tasks:
              build   Build it
              deploy  Ship it  [deps: build; on: web]
              all     [deps: deploy]
            ",
            "",
        );
}

// ---------------------------------------------------------------- execution order

/// Intervals (start, end) per task from a log of `+ name` / `- name` lines.
fn overlaps(lines: &[String], a: &str, b: &str) -> bool {
    let (sa, ea) = (pos(lines, &format!("+ {a}")), pos(lines, &format!("- {a}")));
    let (sb, eb) = (pos(lines, &format!("+ {b}")), pos(lines, &format!("- {b}")));
    sa < eb && sb < ea
}

fn max_concurrency(lines: &[String]) -> usize {
    let (mut cur, mut max) = (0usize, 0usize);
    for l in lines {
        if l.starts_with("+ ") {
            cur += 1;
            max = max.max(cur);
        } else if l.starts_with("- ") {
            cur -= 1;
        }
    }
    max
}

const SPAN: &str = r#"echo "+ $NEXUS_TASK" >> log; sleep 0.3; echo "- $NEXUS_TASK" >> log"#;

#[test]
fn deps_run_before_dependents() {
    let t = Test::new()
        .toml(
            r#"
            [tasks.compile]
            run = "echo compile >> log"
            [tasks.lint]
            run = "echo lint >> log"
            [tasks.test]
            deps = ["compile", "lint"]
            run = "echo test >> log"
            [tasks.package]
            deps = ["test"]
            run = ["echo package-1 >> log", "echo package-2 >> log"]
            "#,
        )
        .args(&["run", "package", "-q"]);
    t.run().expect_code(0);
    let log = log_lines(&t.read("log"));
    assert_eq!(log.len(), 5, "{log:?}");
    assert!(pos(&log, "compile") < pos(&log, "test"));
    assert!(pos(&log, "lint") < pos(&log, "test"));
    assert!(pos(&log, "test") < pos(&log, "package-1"));
    assert!(pos(&log, "package-1") < pos(&log, "package-2"));
}

#[test]
fn independent_tasks_overlap_and_p1_serialises() {
    let toml = format!(
        "[tasks.a]\nrun = '{SPAN}'\n[tasks.b]\nrun = '{SPAN}'\n[tasks.c]\nrun = '{SPAN}'\n[tasks.all]\ndeps = [\"a\", \"b\", \"c\"]\n"
    );
    let t = Test::new().toml(&toml).args(&["run", "all", "-q"]);
    t.run().expect_code(0);
    let log = log_lines(&t.read("log"));
    assert!(
        overlaps(&log, "a", "b") && overlaps(&log, "b", "c"),
        "{log:?}"
    );
    assert_eq!(max_concurrency(&log), 3, "{log:?}");

    let t = Test::new()
        .toml(&toml)
        .args(&["run", "all", "-q", "-p", "1"]);
    t.run().expect_code(0);
    let log = log_lines(&t.read("log"));
    assert_eq!(max_concurrency(&log), 1, "{log:?}");
    assert_eq!(log.len(), 6);
}

#[test]
fn parallel_limit_from_the_file_is_honoured() {
    let mut toml = String::from("[config]\nparallel_limit = 2\n");
    for n in ["a", "b", "c", "d"] {
        toml += &format!("[tasks.{n}]\nrun = '{SPAN}'\n");
    }
    toml += "[tasks.all]\ndeps = [\"a\", \"b\", \"c\", \"d\"]\n";
    let t = Test::new().toml(&toml).args(&["run", "all", "-q"]);
    t.run().expect_code(0);
    let log = log_lines(&t.read("log"));
    assert_eq!(max_concurrency(&log), 2, "{log:?}");
}

#[test]
fn diamond_has_no_phase_barrier() {
    // top -> {slow, fast}; fast -> after_fast; bottom needs slow and after_fast.
    // after_fast must start before slow ends: no waiting for the whole phase.
    let t = Test::new()
        .toml(
            r#"
            [tasks.top]
            run = 'echo "+ top" >> log; echo "- top" >> log'
            [tasks.slow]
            deps = ["top"]
            run = 'echo "+ slow" >> log; sleep 1; echo "- slow" >> log'
            [tasks.fast]
            deps = ["top"]
            run = 'echo "+ fast" >> log; echo "- fast" >> log'
            [tasks.after_fast]
            deps = ["fast"]
            run = 'echo "+ after_fast" >> log; echo "- after_fast" >> log'
            [tasks.bottom]
            deps = ["slow", "after_fast"]
            run = 'echo "+ bottom" >> log; echo "- bottom" >> log'
            "#,
        )
        .args(&["run", "bottom", "-q"]);
    t.run().expect_code(0);
    let log = log_lines(&t.read("log"));
    assert!(pos(&log, "+ after_fast") < pos(&log, "- slow"), "{log:?}");
    assert!(pos(&log, "- slow") < pos(&log, "+ bottom"), "{log:?}");
    assert!(pos(&log, "- after_fast") < pos(&log, "+ bottom"), "{log:?}");
}

// ---------------------------------------------------------------- output

#[test]
fn normal_output_and_summary() {
    Test::new()
        .toml(
            r#"
            [tasks.build]
            run = "echo building"
            [tasks.test]
            deps = ["build"]
            run = "echo testing"
            "#,
        )
        .args(&["run", "test"])
        .run()
        .expect(
            0,
            "building\ntesting\n",
            "
            ok build X.Xs
            ok test X.Xs

            Summary:
              ok        build  X.Xs
              ok        test   X.Xs
            Completed in X.Xs: 2 succeeded
            ",
        );
}

#[test]
fn failure_skips_dependents_and_reports_the_command() {
    let t = Test::new()
        .toml(
            r#"
            [tasks.build]
            run = ["echo compiled", "echo 'error: linker failed' >&2; exit 3"]
            [tasks.lint]
            run = "sleep 0.3; echo lint >> log"
            [tasks.deploy]
            deps = ["build", "lint"]
            run = "echo deployed >> log"
            [tasks.later]
            deps = ["deploy"]
            run = "true"
            "#,
        )
        .args(&["run", "later"]);
    t.run().expect(
        1,
        "build | compiled\n",
        "
        build | error: linker failed
        FAILED build X.Xs
        Error: Command failed

          Host: local
          Task: build
          Command: echo 'error: linker failed' >&2; exit 3
          Exit code: 3

          Output:
            error: linker failed

          Previous commands in this task succeeded:
            ok echo compiled

        ok lint X.Xs

        Summary:
          FAILED    build   X.Xs
          ok        lint    X.Xs
          skipped   deploy  skipped
          skipped   later   skipped
        Failed in X.Xs: 1 succeeded, 1 failed, 2 skipped
        ",
    );
    // The running task finished (fail-fast lets it), the dependent never started.
    assert_eq!(t.read("log"), "lint\n");
}

#[test]
fn continue_on_error_runs_everything_whose_deps_succeeded() {
    let t = Test::new()
        .toml(
            r#"
            [tasks.bad]
            run = "exit 1"
            [tasks.after_bad]
            deps = ["bad"]
            run = "echo after_bad >> log"
            [tasks.good]
            run = "sleep 0.2; echo good >> log"
            [tasks.after_good]
            deps = ["good"]
            run = "echo after_good >> log"
            "#,
        )
        .args(&[
            "run",
            "after_bad",
            "after_good",
            "-q",
            "--continue-on-error",
        ]);
    t.run().expect(
        1,
        "",
        "
        FAILED bad (X.Xs)
        Error: Command failed

          Host: local
          Task: bad
          Command: exit 1
          Exit code: 1

        ok good (X.Xs)
        ok after_good (X.Xs)
        skipped after_bad
        ",
    );
    assert_eq!(t.read("log"), "good\nafter_good\n");
}

#[test]
fn command_continue_on_error_and_retries() {
    let t = Test::new()
        .toml(
            r#"
            [tasks.flaky]
            run = [
              { cmd = "echo tried >> attempts; [ $(wc -l < attempts) -ge 3 ]", retries = 3, retry_delay = "10ms" },
              { cmd = "echo optional; exit 7", continue_on_error = true },
              "echo done >> log",
            ]
            "#,
        )
        .args(&["run", "flaky", "-q"]);
    let r = t.run();
    r.expect(0, "", "warning: task `flaky` on local: `echo optional; exit 7` exited with 7; continuing (continue_on_error)\nok flaky (X.Xs)\n",
    );
    assert_eq!(t.read("attempts").lines().count(), 3);
    assert_eq!(t.read("log"), "done\n");
}

#[test]
fn retries_exhausted_fail_with_the_last_exit_code() {
    let t = Test::new()
        .toml(
            r#"
            [tasks.never]
            run = [{ cmd = "echo x >> attempts; exit 5", retries = 2, retry_delay = 1 }]
            "#,
        )
        .args(&["run", "never", "-q"]);
    t.run().expect(
        1,
        "",
        "
        FAILED never (X.Xs)
        Error: Command failed

          Host: local
          Task: never
          Command: echo x >> attempts; exit 5
          Exit code: 5

        ",
    );
    assert_eq!(t.read("attempts").lines().count(), 3);
}

#[test]
fn verbose_echoes_commands_and_output_goes_to_its_own_stream() {
    Test::new()
        .toml(
            r#"
            [tasks.hello]
            run = ["echo out-line", "echo err-line >&2"]
            "#,
        )
        .args(&["run", "hello", "-v"])
        .run()
        .expect(
            0,
            "out-line\n",
            "
            * hello
            hello | $ echo out-line
            hello | $ echo err-line >&2
            err-line
            ok hello X.Xs
            Completed in X.Xs: 1 succeeded
            ",
        );
}

#[test]
fn placeholders_env_and_dir() {
    let t = Test::new()
        .toml(
            r#"
            [tasks.show]
            dir = "sub"
            env = { GREETING = "hi {{ task }}", FROM_ENV = '{{ env("NEXUS_T_SET") }}' }
            run = 'echo "{{ host }} {{ task }} $GREETING $FROM_ENV {{ env("NEXUS_T_MISSING", "dflt") }} {{ "{{" }} $NEXUS_TASK $NEXUS_HOST" > out; pwd >> out; echo {{ run_id }} >> out; echo $NEXUS_RUN_ID >> out'
            "#,
        )
        .file("sub/.keep", "")
        .env("NEXUS_T_SET", "set-value")
        .args(&["run", "show", "-q"]);
    t.run().expect_code(0);
    let out = t.read("sub/out");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "local show hi show set-value dflt {{ show local");
    let sub = std::fs::canonicalize(t.path("sub")).unwrap();
    assert_eq!(lines[1], sub.display().to_string());
    assert_eq!(lines[2], lines[3], "{{ run_id }} and NEXUS_RUN_ID agree");
    assert_eq!(crate::common::mask(lines[2]), "RUN_ID");
}

#[test]
fn missing_dir_is_reported_with_a_suggestion() {
    let t = Test::new()
        .toml(
            r#"
            [tasks.x]
            dir = "nope"
            run = "true"
            "#,
        )
        .args(&["run", "x", "-q"]);
    let root = t.dir.path().display().to_string();
    t.run().expect(1, "", &format!(
            "FAILED x (X.Xs)\nError: Command could not start\n\n  Host: local\n  Task: x\n  Command: true\n  Reason: working directory {root}/nope does not exist\n\n  help: check `dir` and the command of task `x`\n\n"
        ),
    );
}

#[test]
fn colors_follow_the_environment() {
    let toml = "[tasks.a]\nrun = \"true\"\n";
    let plain = Test::new().toml(toml).args(&["run", "a", "-q"]).run();
    assert!(
        !plain.stderr.contains('\x1b'),
        "no color when not a terminal"
    );
    let forced = Test::new()
        .toml(toml)
        .env("FORCE_COLOR", "1")
        .args(&["run", "a", "-q"])
        .run();
    assert!(
        forced.stderr.contains("\x1b[1;32mok\x1b[0m"),
        "{:?}",
        forced.stderr
    );
}

#[test]
fn aggregate_tasks_need_no_commands() {
    let t = Test::new()
        .toml(
            r#"
            [tasks.a]
            run = "echo a >> log"
            [tasks.b]
            run = "echo b >> log"
            [tasks.all]
            deps = ["a", "b"]
            "#,
        )
        .args(&["run", "all", "-q"]);
    t.run().expect_code(0);
    let mut log = log_lines(&t.read("log"));
    log.sort();
    assert_eq!(log, vec!["a", "b"]);
}

// ---------------------------------------------------------------- timeouts, signals

#[test]
fn timeout_kills_the_whole_process_group() {
    // A unique duration marks this test's grandchild among the machine's processes.
    let marker = marker(300, 0);
    let t = Test::new()
        .toml(&format!(
            r#"
            [tasks.slow]
            run = [{{ cmd = "sleep {marker} & echo started; wait", timeout = "500ms" }}]
            [tasks.after]
            deps = ["slow"]
            run = "true"
            "#
        ))
        .args(&["run", "after"]);
    let r = t.run();
    r.expect(
        4,
        "started\n",
        &format!(
            "
            TIMEOUT slow X.Xs
            Error: Command timed out

              Host: local
              Task: slow
              Command: sleep {marker} & echo started; wait
              Timeout: 500ms (command timeout)

              Output:
                started

              help: raise the command's `timeout` in task `slow` if it needs longer


            Summary:
              TIMEOUT   slow   X.Xs
              skipped   after  skipped
            Failed in X.Xs: 0 succeeded, 1 timed out, 1 skipped
            "
        ),
    );
    let left = processes_matching(&format!("sleep {marker}"));
    assert!(left.is_empty(), "grandchild survived the timeout: {left:?}");
}

#[test]
fn task_timeout_bounds_all_commands_on_a_host() {
    // Each command has no timeout of its own; together they pass the task's.
    let t = Test::new()
        .toml(
            r#"
            [tasks.slow]
            timeout = "400ms"
            run = ["echo one >> log; sleep 0.25", "echo two >> log; sleep 0.25", "echo never >> log"]
            "#,
        )
        .args(&["run", "slow", "-q"]);
    let r = t.run();
    // The second command is cut short, unless a busy machine made the first one take
    // 400 ms already: the commands' log tells which one the report must name.
    let log = log_lines(&t.read("log"));
    let (command, previous) = match log.as_slice() {
        [a, b] if a == "one" && b == "two" => (
            "echo two >> log; sleep 0.25",
            "\n  Previous commands in this task succeeded:\n    ok echo one >> log; sleep 0.25\n",
        ),
        [a] if a == "one" => ("echo one >> log; sleep 0.25", ""),
        _ => panic!("unexpected command log {log:?}\n{}", r.show()),
    };
    r.expect(4, "", &format!(
            "TIMEOUT slow (X.Xs)\nError: Command timed out\n\n  Host: local\n  Task: slow\n  Command: {command}\n  Timeout: 400ms (task timeout)\n{previous}\n  help: raise `timeout` of task `slow` (the whole task on one host)\n\n"
        ),
    );
}

#[test]
fn sigterm_stops_everything_and_exits_130() {
    // Every command sleeps 300 s, so a nexus that exits at all has stopped them. Task a's
    // shell logs the SIGTERM it gets (the polite step before SIGKILL) and exits 143.
    let marker = marker(300, 1);
    let t = Test::new().toml(&format!(
        r#"
        [tasks.a]
        run = [{{ cmd = "trap 'echo a-got-SIGTERM >> term.log; exit 143' TERM; sleep {marker} & wait", timeout = "10m" }}]
        [tasks.b]
        run = [{{ cmd = "sleep {marker} & sleep {marker}", timeout = "10m" }}]
        [tasks.c]
        deps = ["a"]
        run = "echo c >> log"
        [tasks.all]
        deps = ["b", "c"]
        "#
    ));
    let mut cmd = t.command();
    cmd.args(["run", "all", "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Stop(cmd.spawn().unwrap());
    let sleep = format!("sleep {marker}");
    let sleeps = || {
        processes_matching(&sleep)
            .iter()
            .filter(|p| {
                p.split_once(": ")
                    .is_some_and(|(_, cmd)| cmd.starts_with("sleep "))
            })
            .count()
    };
    // All three sleeps run (so a's trap is set).
    wait_until("the three sleeps", Duration::from_secs(10), || {
        sleeps() == 3
    });
    child.signal(libc::SIGTERM);
    let r = wait_within(&mut child, &cmd, Duration::from_secs(60));
    r.expect_code(130).expect_stderr("");
    // Nothing is left behind, and nothing new started after SIGTERM.
    let left = processes_matching(&sleep);
    assert!(left.is_empty(), "processes survived SIGTERM: {left:?}");
    assert_eq!(t.read("term.log"), "a-got-SIGTERM\n");
    assert!(!t.path("log").exists(), "nothing new starts after SIGTERM");
    let lines = r.json_lines();
    let last = lines.last().unwrap();
    assert_eq!(last["event"], "run_finish");
    assert_eq!(last["status"], "interrupted");
    assert_eq!(last["exit_code"], 130);
    assert_eq!(
        last["tasks"],
        serde_json::json!({"a": "cancelled", "b": "cancelled", "c": "skipped", "all": "skipped"})
    );
}

// ---------------------------------------------------------------- JSON

fn events(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let e = l["event"].as_str().unwrap().to_string();
            match (l["task"].as_str(), l["stream"].as_str()) {
                (Some(t), Some(s)) => format!("{e} {t} {s}"),
                (Some(t), None) => format!("{e} {t}"),
                _ => e,
            }
        })
        .collect()
}

fn check_common_fields(lines: &[serde_json::Value]) {
    let run_id = lines[0]["run_id"].as_str().unwrap();
    for l in lines {
        assert_eq!(l["run_id"], run_id);
        let ts = l["ts"].as_str().unwrap();
        assert!(
            ts.len() == 24 && ts.ends_with('Z') && &ts[10..11] == "T",
            "ts {ts}"
        );
        if l["event"] != "run_start" && l["event"] != "run_finish" {
            assert!(l["task"].is_string(), "{l}");
        }
        if ["command_start", "command_finish", "output"].contains(&l["event"].as_str().unwrap()) {
            assert_eq!(l["host"], "local");
        }
    }
    assert_eq!(lines.last().unwrap()["event"], "run_finish");
}

#[test]
fn json_success_sequence() {
    let r = Test::new()
        .toml(
            r#"
            [tasks.build]
            run = "echo built"
            [tasks.test]
            deps = ["build"]
            run = ["echo tested", "echo warn >&2"]
            "#,
        )
        .args(&["run", "test", "--format", "json"])
        .run();
    r.expect_code(0);
    assert_eq!(r.stderr, "");
    let lines = r.json_lines();
    check_common_fields(&lines);
    assert_eq!(
        events(&lines),
        [
            "run_start",
            "task_start build",
            "command_start build",
            "output build stdout",
            "command_finish build",
            "task_finish build",
            "task_start test",
            "command_start test",
            "output test stdout",
            "command_finish test",
            "command_start test",
            "output test stderr",
            "command_finish test",
            "task_finish test",
            "run_finish",
        ]
    );
    assert_eq!(lines[0]["targets"], serde_json::json!(["test"]));
    assert_eq!(lines[3]["line"], "built");
    assert_eq!(lines[4]["exit_code"], 0);
    assert!(lines[4]["duration_ms"].is_u64());
    let last = lines.last().unwrap();
    assert_eq!(last["status"], "success");
    assert_eq!(last["exit_code"], 0);
    assert_eq!(
        last["tasks"],
        serde_json::json!({"build": "success", "test": "success"})
    );
    assert!(last["duration_ms"].is_u64());
}

#[test]
fn json_failure_with_skipped_dependents() {
    let r = Test::new()
        .toml(
            r#"
            [tasks.build]
            run = "exit 2"
            [tasks.deploy]
            deps = ["build"]
            run = "true"
            "#,
        )
        .args(&["run", "deploy", "--format", "json"])
        .run();
    r.expect_code(1);
    // JSON mode: the events carry the failure; stderr stays empty.
    r.expect_stderr("");
    let lines = r.json_lines();
    check_common_fields(&lines);
    assert_eq!(
        events(&lines),
        [
            "run_start",
            "task_start build",
            "command_start build",
            "command_finish build",
            "task_finish build",
            "run_finish"
        ]
    );
    assert_eq!(lines[3]["exit_code"], 2);
    assert_eq!(lines[3]["status"], "failed");
    assert_eq!(lines[4]["status"], "failed");
    let last = lines.last().unwrap();
    assert_eq!(last["status"], "failed");
    assert_eq!(
        last["tasks"],
        serde_json::json!({"build": "failed", "deploy": "skipped"})
    );
}

#[test]
fn json_continue_on_error() {
    let r = Test::new()
        .toml(
            r#"
            [tasks.bad]
            run = "exit 1"
            [tasks.good]
            run = "true"
            [tasks.after_good]
            deps = ["good"]
            run = "true"
            [tasks.after_bad]
            deps = ["bad"]
            run = "true"
            "#,
        )
        .args(&[
            "run",
            "after_good",
            "after_bad",
            "--format",
            "json",
            "--continue-on-error",
        ])
        .run();
    r.expect_code(1);
    // JSON mode: the events carry the failure; stderr stays empty.
    r.expect_stderr("");
    let lines = r.json_lines();
    check_common_fields(&lines);
    assert_eq!(
        lines.last().unwrap()["tasks"],
        serde_json::json!({"bad": "failed", "good": "success", "after_good": "success", "after_bad": "skipped"})
    );
}

#[test]
fn json_timeout() {
    let r = Test::new()
        .toml(
            r#"
            [tasks.slow]
            run = [{ cmd = "sleep 5", timeout = "200ms" }]
            "#,
        )
        .args(&["run", "slow", "--format", "json"])
        .run();
    r.expect_code(4);
    // JSON mode: the events carry the failure; stderr stays empty.
    r.expect_stderr("");
    let lines = r.json_lines();
    check_common_fields(&lines);
    let finish = lines
        .iter()
        .find(|l| l["event"] == "command_finish")
        .unwrap();
    assert_eq!(finish["status"], "timed_out");
    assert_eq!(finish["exit_code"], serde_json::Value::Null);
    assert_eq!(finish["error"], "timed out after 200ms (command timeout)");
    let last = lines.last().unwrap();
    assert_eq!(last["status"], "failed");
    assert_eq!(last["exit_code"], 4);
    assert_eq!(last["tasks"], serde_json::json!({"slow": "timed_out"}));
}

#[test]
fn json_retries_report_every_attempt() {
    let r = Test::new()
        .toml(
            r#"
            [tasks.flaky]
            run = [{ cmd = "echo x >> n; [ $(wc -l < n) -ge 2 ]", retries = 2, retry_delay = "5ms" }]
            "#,
        )
        .args(&["run", "flaky", "--format", "json"])
        .run();
    r.expect_code(0);
    let lines = r.json_lines();
    let finishes: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["event"] == "command_finish")
        .collect();
    assert_eq!(finishes.len(), 2);
    assert_eq!(finishes[0]["attempt"], 1);
    assert_eq!(finishes[0]["status"], "failed");
    assert!(finishes[0]["retry_in_ms"].as_u64().unwrap() <= 5);
    assert_eq!(finishes[1]["attempt"], 2);
    assert_eq!(finishes[1]["status"], "success");
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// The run's facts reach commands as environment variables, which a shell expands as
/// data: a branch named like a command substitution stays a name.
#[test]
fn run_facts_are_exported_and_an_evil_branch_name_stays_data() {
    let t = Test::new().toml(
        r#"
        [tasks.facts]
        run = "printf '%s|%s|%s|%s|%s\n' \"$NEXUS_GIT_BRANCH\" \"$NEXUS_GIT_SHA\" \"$NEXUS_TASK\" \"$NEXUS_HOST\" \"$NEXUS_RUN_COUNTER\""
        "#,
    );
    // Outside a repository the git variables are not set (not even inherited from a
    // nexus that started this one).
    let done = "ok facts X.Xs\nCompleted in X.Xs: 1 succeeded\n";
    t.clone_args(&["run", "facts"])
        .env("NEXUS_GIT_SHA", "inherited")
        .run()
        .expect(0, "||facts|local|1\n", done);
    let branch = "x$(touch${IFS}pwned)`touch${IFS}pwned2`";
    git(&t.path(""), &["init", "-q", "-b", branch]);
    git(&t.path(""), &["add", "nexus.toml"]);
    git(&t.path(""), &["commit", "-q", "-m", "one"]);
    let sha = String::from_utf8(
        std::process::Command::new("git")
            .arg("-C")
            .arg(t.path(""))
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    t.clone_args(&["run", "facts"]).run().expect(
        0,
        &format!("{branch}|{}|facts|local|2\n", sha.trim()),
        done,
    );
    assert!(!t.path("pwned").exists() && !t.path("pwned2").exists());
}
