//! Integration tests: the real binary against nexus.toml files written per test.

mod common;

use common::*;

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
fn unknown_placeholder_points_inside_the_string() {
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

              nexus.toml:2:7: unknown placeholder `hots`
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

              nexus.toml:2:13: unknown placeholder `secret`
                |
              2 | run = 'echo {{ secret("X") }}'
                |             ^^^^^^^^^^^^^^^^^
                = help: placeholders are env("NAME"), host, task, run_id, timestamp, git_sha, git_branch
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

          nexus.toml:5:13: task `deploy` needs environment variable `NEXUS_TEST_UNSET_VAR`, which is not set
            |
          5 | run = 'echo {{ env("NEXUS_TEST_UNSET_VAR") }} {{ env("NEXUS_TEST_UNSET_OK", "fine") }}'
            |             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
            = help: set it (export NEXUS_TEST_UNSET_VAR=...) or give a default: {{ env("NEXUS_TEST_UNSET_VAR", "...") }}
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
    let r = t.args(&["list"]).run();
    r.expect_code(2);
    assert_eq!(
        r.stderr,
        format!(
            "Error: no nexus.toml in {dir} or any parent directory\n\n  create one with `nexus init`, or point at one with -c PATH or NEXUS_CONFIG\n"
        )
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
    c.args(["run", "where", "-q"]).current_dir(t.path("sub/deeper"));
    let out = c.output().unwrap();
    assert!(out.status.success(), "{out:?}");
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

          did you mean `build`?
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

              did you mean `--verbose`?

              see `nexus help run`
            ",
        );
    Test::new().args(&["rnu"]).run().expect(
        2,
        "",
        "
        Error: unknown command `rnu`

          did you mean `run`?
        ",
    );
    Test::new().args(&["list", "--continue-on-error"]).run().expect(
        2,
        "",
        "
        Error: --continue-on-error does not apply to `nexus list`

          it is a flag of: run

          see `nexus help list`
        ",
    );
    Test::new().args(&["run", "x", "-p", "0"]).run().expect(
        2,
        "",
        "
        Error: --parallel-limit needs a positive whole number, got `0`

          for example: --parallel-limit 4
        ",
    );
}

#[test]
fn version_and_help() {
    let r = Test::new().args(&["--version"]).run();
    r.expect_code(0);
    assert!(
        r.stdout.starts_with(&format!("nexus {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{}",
        r.stdout
    );
    assert!(r.stdout.trim_end().ends_with("x86_64-unknown-linux-gnu)") || r.stdout.contains("linux"));
    let v = Test::new().args(&["version"]).run();
    assert_eq!(v.stdout, r.stdout);

    let h = Test::new().args(&["help", "run"]).run();
    h.expect_code(0);
    for flag in ["--verbose", "--quiet", "--continue-on-error", "--parallel-limit N", "--format FORMAT", "--plain"] {
        assert!(h.stdout.contains(flag), "help run lacks {flag}:\n{}", h.stdout);
    }
    let h2 = Test::new().args(&["run", "--help"]).run();
    assert_eq!(h.stdout, h2.stdout);
    let g = Test::new().args(&["-h"]).run();
    for cmd in ["run TASK...", "list", "validate", "init", "version", "help [COMMAND]", "completions SHELL"] {
        assert!(g.stdout.contains(cmd), "help lacks {cmd}:\n{}", g.stdout);
    }
}

#[test]
fn completions_come_from_the_flag_table() {
    for shell in ["bash", "zsh", "fish"] {
        let r = Test::new().args(&["completions", shell]).run();
        r.expect_code(0);
        for word in ["continue-on-error", "parallel-limit", "validate", "completions"] {
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

          choose one of: bash, zsh, fish
        ",
    );
}

#[test]
fn init_writes_a_valid_file_and_refuses_to_overwrite() {
    let t = Test::new();
    let init = t.command().arg("init").output().unwrap();
    assert!(init.status.success());
    let r = t.args(&["validate"]).run();
    r.expect(0, "nexus.toml is valid: 4 tasks, 0 host groups, 0 hosts\n", "");
    let t2 = Test::new().toml("[tasks.a]\nrun = \"true\"\n");
    t2.args(&["init"]).run().expect(
        2,
        "",
        "
        Error: nexus.toml already exists

          use `nexus init --force` to overwrite it
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
