//! Daily use as a make/just replacement (issue 11): no timeout unless one is configured
//! (`[config] timeout` and `task_timeout`, `run --timeout`), a bare `nexus` and the
//! `nexus TASK` shorthand, `default`, aliases, private tasks, `[env]`, dotenv files,
//! `[config] shell`, `#!` scripts, interactive tasks, `nexus list` and `nexus validate`
//! for all of these, and the failure report and journal of a command that prints a lot.

use std::os::unix::process::CommandExt;
use std::time::Duration;

use crate::common::*;

// ---------------------------------------------------------------- timeouts

#[test]
fn config_timeout_is_the_default_of_every_command() {
    let t = Test::new().toml(
        r#"
        [config]
        timeout = "1s"
        [tasks.slow]
        run = "sleep 5"
        "#,
    );
    t.clone_args(&["run", "slow"]).run().expect(
        4,
        "",
        "
        TIMEOUT slow X.Xs
        Error: Command timed out

          Host: local
          Task: slow
          Command: sleep 5
          Timeout: 1s ([config] timeout)

          help: raise `timeout` in [config] (every command's default), give the command its own `timeout` in task `slow`, or run with --timeout DURATION


        Summary:
          TIMEOUT   slow  X.Xs
        Failed in X.Xs: 0 succeeded, 1 timed out
        ",
    );
}

#[test]
fn run_timeout_overrides_the_config_but_not_a_steps_own() {
    let t = Test::new().toml(
        r#"
        [config]
        timeout = "1s"
        [tasks.two]
        run = "sleep 2"
        [tasks.own]
        run = [{ cmd = "sleep 2", timeout = "1s" }]
        "#,
    );
    t.clone_args(&["run", "two", "--timeout", "3s"])
        .run()
        .expect(0, "", "ok two X.Xs\nCompleted in X.Xs: 1 succeeded\n");
    t.clone_args(&["run", "two", "--timeout", "500ms", "-q"])
        .run()
        .expect(
            4,
            "",
            "
            TIMEOUT two (X.Xs)
            Error: Command timed out

              Host: local
              Task: two
              Command: sleep 2
              Timeout: 500ms (--timeout)

              help: run with a longer --timeout, or give the command its own `timeout` in task `two`

            ",
        );
    t.clone_args(&["run", "own", "--timeout", "10s", "-q"])
        .run()
        .expect(
            4,
            "",
            "
            TIMEOUT own (X.Xs)
            Error: Command timed out

              Host: local
              Task: own
              Command: sleep 2
              Timeout: 1s (command timeout)

              help: raise the command's `timeout` in task `own` if it needs longer

            ",
        );
    t.clone_args(&["run", "two", "--timeout", "soon"])
        .run()
        .expect(
            2,
            "",
            "
        Error: --timeout: `soon` is not a duration

          help: for example: --timeout 5s
        ",
        );
}

#[test]
fn config_task_timeout_bounds_a_task_without_its_own() {
    let t = Test::new().toml(
        r#"
        [config]
        task_timeout = "1500ms"
        [tasks.steps]
        run = ["sleep 1", "sleep 1"]
        [tasks.own]
        timeout = "5s"
        run = ["sleep 1", "sleep 1"]
        "#,
    );
    t.clone_args(&["run", "steps", "-q"]).run().expect(
        4,
        "",
        "
        TIMEOUT steps (X.Xs)
        Error: Command timed out

          Host: local
          Task: steps
          Command: sleep 1
          Timeout: 1.5s ([config] task_timeout)

          Previous commands in this task succeeded:
            ok sleep 1

          help: raise `task_timeout` in [config], or give task `steps` a `timeout` of its own (the whole task on one host)

        ",
    );
    t.clone_args(&["run", "own", "-q"])
        .run()
        .expect(0, "", "ok own (X.Xs)\n");
}

// ---------------------------------------------------------------- default, shorthand

#[test]
fn a_bare_nexus_runs_the_default_task_or_lists_the_tasks() {
    let t = Test::new().toml(
        r#"
        default = "b"
        [tasks.build]
        desc = "Build it"
        aliases = ["b"]
        run = "echo built"
        [tasks.test]
        run = "echo tested"
        "#,
    );
    t.clone_args(&[]).run().expect(
        0,
        "built\n",
        "ok build X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    // run's flags apply to the default task.
    t.clone_args(&["-q"])
        .run()
        .expect(0, "", "ok build (X.Xs)\n");
    let t = Test::new().toml(
        r#"
        [tasks.build]
        desc = "Build it"
        run = "echo built"
        [tasks.test]
        run = "echo tested"
        "#,
    );
    t.clone_args(&[]).run().expect(
        0,
        "
        Tasks:
          build  Build it
          test
        ",
        "",
    );
    t.clone_args(&["--names"]).run().expect(
        2,
        "",
        "
        Error: --names needs a command

          help: it is a flag of: list
          help: see `nexus help`
        ",
    );
    // No nexus.toml: the help, and what to do.
    let help = Test::new().args(&["help"]).run().stdout;
    Test::new().run().expect(
        2,
        "",
        &format!(
            "{help}Error: no command given, and no nexus.toml here or in a parent directory\n\n  help: `nexus init` writes a starter nexus.toml; then `nexus` lists its tasks\n"
        ),
    );
}

#[test]
fn nexus_task_is_nexus_run_task_unless_it_is_a_command() {
    let t = Test::new().toml(
        r#"
        [tasks.build]
        run = "echo built"
        [tasks.list]
        run = "echo the task called list"
        "#,
    );
    t.clone_args(&["build", "-q"])
        .run()
        .expect(0, "", "ok build (X.Xs)\n");
    t.clone_args(&["build"]).run().expect(
        0,
        "built\n",
        "ok build X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    // A command name stays the command; `nexus run list` runs the task.
    t.clone_args(&["list"])
        .run()
        .expect(0, "Tasks:\n  build\n  list\n", "");
    t.clone_args(&["run", "list"]).run().expect(
        0,
        "the task called list\n",
        "ok list X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    t.clone_args(&["biuld"]).run().expect(
        2,
        "",
        "
        Error: `biuld` is neither a command nor a task

          help: did you mean `build`?
        ",
    );
    t.clone_args(&["valdiate"]).run().expect(
        2,
        "",
        "
        Error: `valdiate` is neither a command nor a task

          help: did you mean `validate`?
        ",
    );
    t.clone_args(&["zzz"]).run().expect(
        2,
        "",
        "
        Error: `zzz` is neither a command nor a task

          help: `nexus list` shows the tasks, `nexus help` the commands
        ",
    );
    t.clone_args(&["build", "--names"]).run().expect(
        2,
        "",
        "
        Error: --names does not apply to `nexus build`

          help: it is a flag of: list
          help: see `nexus help run`
        ",
    );
}

// ---------------------------------------------------------------- aliases, private

#[test]
fn an_alias_runs_its_task_and_names_it_in_history() {
    let t = Test::new().toml(
        r#"
        default = "d"
        [tasks.deploy]
        desc = "Ship it"
        aliases = ["d", "ship"]
        run = "echo shipped"
        "#,
    );
    t.clone_args(&["run", "d", "-q"])
        .run()
        .expect(0, "", "ok deploy (X.Xs)\n");
    t.clone_args(&["ship", "-q"])
        .run()
        .expect(0, "", "ok deploy (X.Xs)\n");
    t.clone_args(&["run", "shp"]).run().expect(
        2,
        "",
        "
        Error: unknown task `shp`

          help: did you mean `ship`?
        ",
    );
    let runs: serde_json::Value =
        serde_json::from_str(&t.clone_args(&["runs", "--format", "json"]).run().stdout).unwrap();
    let targets: Vec<&serde_json::Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["targets"])
        .collect();
    assert_eq!(
        targets,
        [
            &serde_json::json!(["deploy"]),
            &serde_json::json!(["deploy"])
        ]
    );
    t.clone_args(&["list"]).run().expect(
        0,
        "
        Tasks:
          deploy  Ship it  (default)  [aliases: d, ship]
        ",
        "",
    );
}

#[test]
fn alias_clashes_are_load_errors_with_their_place() {
    Test::new()
        .toml(
            r#"
            [tasks.build]
            aliases = ["b", "test", "build"]
            run = "true"
            [tasks.test]
            aliases = ["b", ""]
            run = "true"
            [tasks.lint]
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

              nexus.toml:2:17: alias `test` of task `build` is the name of another task
                |
              2 | aliases = ["b", "test", "build"]
                |                 ^^^^^^
                = help: a name runs one task: rename the alias or the task

              nexus.toml:2:25: task `build` has its own name as an alias
                |
              2 | aliases = ["b", "test", "build"]
                |                         ^^^^^^^
                = help: a name runs one task: rename the alias or the task

              nexus.toml:5:12: alias `b` is given to both `build` and `test`
                |
              5 | aliases = ["b", ""]
                |            ^^^
                = help: a name runs one task: keep the alias on one of them

              nexus.toml:5:17: an alias cannot be empty
                |
              5 | aliases = ["b", ""]
                |                 ^^
                = help: remove it, or write the name

              nexus.toml:8:9: task `lint` depends on undefined task `b`
                |
              8 | deps = ["b"]
                |         ^^^
                = help: defined tasks: build, test, lint
            "#,
        );
}

#[test]
fn private_tasks_are_left_out_of_the_list_but_run() {
    let t = Test::new().toml(
        r#"
        [tasks._setup]
        run = "echo setting up"
        [tasks.helper]
        private = true
        run = "echo helping"
        [tasks.build]
        desc = "Build it"
        deps = ["_setup", "helper"]
        run = "echo built"
        "#,
    );
    t.clone_args(&["list"]).run().expect(
        0,
        "
        Tasks:
          build  Build it  [deps: _setup, helper]
        ",
        "",
    );
    t.clone_args(&["list", "--names"])
        .run()
        .expect(0, "build\n", "");
    let json: serde_json::Value =
        serde_json::from_str(&t.clone_args(&["list", "--format", "json"]).run().stdout).unwrap();
    let private: Vec<(&str, bool)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["private"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        private,
        [("_setup", true), ("helper", true), ("build", false)]
    );
    t.clone_args(&["_setup", "-q"])
        .run()
        .expect(0, "", "ok _setup (X.Xs)\n");
    t.clone_args(&["run", "helper"]).run().expect(
        0,
        "helping\n",
        "ok helper X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    Test::new()
        .toml("[tasks._only]\nrun = \"true\"\n")
        .args(&["list"])
        .run()
        .expect(0, "nexus.toml defines no public tasks\n", "");
}

// ---------------------------------------------------------------- [env], dotenv

#[test]
fn global_env_reaches_every_task_and_a_tasks_env_wins() {
    let t = Test::new().toml(
        r#"
        [env]
        LEVEL = "global"
        GREETING = "hello from {{ task }}"
        COUNT = 3
        [tasks.a]
        run = "echo $LEVEL / $GREETING / $COUNT"
        [tasks.b]
        env = { LEVEL = "task" }
        run = "echo $LEVEL / $GREETING"
        "#,
    );
    t.clone_args(&["run", "a"]).run().expect(
        0,
        "global / hello from a / 3\n",
        "ok a X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    t.clone_args(&["run", "b"]).run().expect(
        0,
        "task / hello from b\n",
        "ok b X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
}

#[test]
fn dotenv_files_are_loaded_and_skipped_when_absent() {
    let t = Test::new()
        .toml(
            r#"
            dotenv = [".env", ".env.local", "missing.env"]
            [env]
            FROM_ENV_TABLE = '{{ env("DB_HOST") }}:{{ env("DB_PORT", "5432") }}'
            [tasks.show]
            run = "echo $DB_HOST $DB_PORT $QUOTED / $OVERRIDDEN / $FROM_ENV_TABLE / $SHELL_WINS"
            [tasks.task_wins]
            env = { DB_HOST = "from-task" }
            run = "echo $DB_HOST"
            "#,
        )
        .file(
            ".env",
            "
            # the team's defaults
            DB_HOST=db.local
            export DB_PORT=6543
            QUOTED='single $quoted' # a comment
            OVERRIDDEN=from-.env
            SHELL_WINS=from-.env
            ",
        )
        .file(".env.local", "OVERRIDDEN=\"from .env.local\"\n")
        .env("SHELL_WINS", "from-the-environment");
    t.clone_args(&["run", "show"]).run().expect(
        0,
        "db.local 6543 single $quoted / from .env.local / db.local:6543 / from-the-environment\n",
        "ok show X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    t.clone_args(&["run", "task_wins"]).run().expect(
        0,
        "from-task\n",
        "ok task_wins X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    // Without the files: an unset required variable stops the run before any command.
    std::fs::remove_file(t.path(".env")).unwrap();
    t.clone_args(&["run", "show"]).run().expect(
        2,
        "",
        r#"
        Error: Cannot start the run

          nexus.toml:3:22: [env] needs environment variable `DB_HOST`, which is not set
            |
          3 | FROM_ENV_TABLE = '{{ env("DB_HOST") }}:{{ env("DB_PORT", "5432") }}'
            |                      ^^^^^^^^^^^^^^
            = help: set it (export DB_HOST=...), put it in a dotenv file, or give a default: {{ env("DB_HOST", "...") }}
        "#,
    );
}

#[test]
fn a_malformed_dotenv_line_is_an_error_with_its_place() {
    let t = Test::new()
        .toml(
            r#"
            dotenv = ".env"
            [tasks.a]
            run = "echo $A"
            "#,
        )
        .file(".env", "A=1\nB='unclosed\n");
    let expected = "
        Error: Validation failed

          .env:2:3: the value's ' is not closed on its line
            |
          2 | B='unclosed
            |   ^^^^^^^^^
            = help: close it with '; a value ends on its line (write a newline as \\n in double quotes)
        ";
    t.clone_args(&["validate"]).run().expect(2, "", expected);
    t.clone_args(&["run", "a"]).run().expect(2, "", expected);
    std::fs::write(t.path(".env"), "A=1\nexport\n").unwrap();
    t.clone_args(&["validate"]).run().expect(
        2,
        "",
        "
        Error: Validation failed

          .env:2:1: expected `NAME=value`
            |
          2 | export
            | ^^^^^^
            = help: write one variable per line as NAME=value; comments start with #
        ",
    );
}

// ---------------------------------------------------------------- shell, scripts

#[test]
fn config_shell_runs_every_local_command() {
    let t = Test::new().toml(
        r#"
        [config]
        shell = ["bash", "-euo", "pipefail", "-c"]
        [tasks.pipe]
        run = "false | true"
        [tasks.bashism]
        run = "shopt -s extglob"
        "#,
    );
    t.clone_args(&["run", "pipe", "-q"]).run().expect(
        1,
        "",
        "
        FAILED pipe (X.Xs)
        Error: Command failed

          Host: local
          Task: pipe
          Command: false | true
          Exit code: 1

        ",
    );
    // A line without shell syntax runs in the configured shell too (under sh -c alone,
    // it would be exec'd directly).
    t.clone_args(&["run", "bashism", "-q"])
        .run()
        .expect(0, "", "ok bashism (X.Xs)\n");
    Test::new()
        .toml("[tasks.pipe]\nrun = \"false | true\"\n")
        .args(&["run", "pipe", "-q"])
        .run()
        .expect(0, "", "ok pipe (X.Xs)\n");
    Test::new()
        .toml("[config]\nshell = \"bash -c\"\n[tasks.a]\nrun = \"true\"\n")
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:2:9: `shell` must be a list of strings, found string
                |
              2 | shell = "bash -c"
                |         ^^^^^^^^^
                = help: give the program and its arguments apart; the command line goes last: shell = ["bash", "-euo", "pipefail", "-c"]
            "#,
        );
}

#[test]
fn a_shebang_command_runs_as_a_script_from_a_private_file() {
    let t = Test::new().toml(
        r##"
        [env]
        WHO = "world"
        [tasks.py]
        run = """#!/usr/bin/env python3
        import os, stat, sys
        here = os.path.dirname(os.path.abspath(__file__))
        print("hello", os.environ["WHO"], "from", "{{ task }}", sys.version_info[0])
        print(oct(stat.S_IMODE(os.stat(here).st_mode)), oct(stat.S_IMODE(os.stat(__file__).st_mode)))
        print(here, file=sys.stderr)
        sys.exit(int(os.environ.get("CODE", "0")))
        """
        [tasks.nope]
        run = "#!/nonexistent/interpreter\nwhatever"
        "##,
    );
    let tmp = t.path("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let t = t.env("TMPDIR", tmp.to_str().unwrap());
    let r = t.clone_args(&["run", "py"]).run();
    let script_dir = r.stderr.lines().next().unwrap_or_default().to_string();
    r.expect(
        0,
        "hello world from py 3\n0o700 0o700\n",
        &format!("{script_dir}\nok py X.Xs\nCompleted in X.Xs: 1 succeeded\n"),
    );
    assert!(
        script_dir.starts_with(t.path("tmp/nexus-script.").to_str().unwrap()),
        "{script_dir}"
    );
    let left: Vec<_> = std::fs::read_dir(t.path("tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert!(
        left.is_empty(),
        "the script's directory is removed: {left:?}"
    );
    let r = t.clone_args(&["run", "py", "-q"]).env("CODE", "3").run();
    r.expect_code(1);
    assert!(
        r.stderr.contains("  Exit code: 3\n"),
        "the script's exit code: {}",
        r.show()
    );
    t.clone_args(&["run", "nope", "-q"]).run().expect(
        1,
        "",
        "
        FAILED nope (X.Xs)
        Error: Command could not start

          Host: local
          Task: nope
          Command: #!/nonexistent/interpreter … (1 more line)
          Reason: cannot run the script: its interpreter `/nonexistent/interpreter` was not found

          help: check the script's first line (#!/usr/bin/env python3, say)
          help: check `dir` and the command of task `nope`

        ",
    );
}

// ---------------------------------------------------------------- interactive

/// nexus with `input` on its stdin.
fn run_with_stdin(t: &Test, args: &[&str], input: &str) -> Run {
    use std::io::Write;
    let mut command = t.clone_args(args).command();
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("run nexus");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("wait for nexus");
    Run::from_output(&command, out)
}

#[test]
fn an_interactive_task_reads_nexuss_stdin_and_its_output_is_not_captured() {
    let t = Test::new().toml(
        r#"
        [tasks.ask]
        interactive = true
        run = "read answer; echo \"you said $answer\"; echo to-stderr >&2"
        [tasks.plain]
        run = "cat; echo plain-done"
        "#,
    );
    run_with_stdin(&t, &["run", "ask"], "yes\n").expect(
        0,
        "you said yes\n",
        "to-stderr\nok ask X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    // Other commands read /dev/null.
    run_with_stdin(&t, &["run", "plain"], "not for you\n").expect(
        0,
        "plain-done\n",
        "ok plain X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    // -q hides captured output; an interactive command's is the terminal's.
    run_with_stdin(&t, &["run", "ask", "-q"], "no\n").expect(
        0,
        "you said no\n",
        "to-stderr\nok ask (X.Xs)\n",
    );
    // With JSON events on stdout, the command's stdout goes to stderr.
    let r = run_with_stdin(&t, &["run", "ask", "--format", "json"], "json\n");
    r.expect_code(0);
    assert_eq!(r.stderr, "you said json\nto-stderr\n", "{}", r.show());
    let outputs = r
        .json_lines()
        .iter()
        .filter(|e| e["event"] == "output")
        .count();
    assert_eq!(outputs, 0, "nothing captured: {}", r.show());
    // The journal has the command, not its output.
    let runs: serde_json::Value =
        serde_json::from_str(&t.clone_args(&["runs", "--format", "json"]).run().stdout).unwrap();
    let id = runs[0]["id"].as_str().unwrap().to_string();
    let shown = t.clone_args(&["runs", "show", &id]).run();
    assert!(
        shown
            .stdout
            .ends_with("    [local] #0 attempt 1 success (exit 0)\n  ask success\n"),
        "{}",
        shown.show()
    );
}

#[test]
fn an_interactive_task_runs_alone() {
    // `i` is interactive: it waits for `x`, which started first, and `y`, ready after it
    // in the plan, waits for it.
    let step = |name: &str| format!("echo +{name} >> log; sleep 0.3; echo -{name} >> log");
    let t = Test::new().toml(&format!(
        r#"
        [tasks.x]
        run = "{x}"
        [tasks.i]
        interactive = true
        run = "{i}"
        [tasks.y]
        run = "{y}"
        [tasks.all]
        deps = ["x", "i", "y"]
        "#,
        x = step("x"),
        i = step("i"),
        y = step("y"),
    ));
    t.clone_args(&["run", "all", "-q"]).run().expect(
        0,
        "",
        "ok x (X.Xs)\nok i (X.Xs)\nok y (X.Xs)\nok all (X.Xs)\n",
    );
    let log = log_lines(&t.read("log"));
    let (start, end) = (pos(&log, "+i"), pos(&log, "-i"));
    assert_eq!(end, start + 1, "nothing ran beside `i`: {log:?}");
}

#[test]
fn an_interactive_task_is_local_and_uses_no_sudo_option() {
    Test::new()
        .toml(
            r#"
            [hosts]
            web = ["web-1.example.com"]
            [tasks.console]
            on = "web"
            interactive = true
            run = [{ cmd = "systemctl edit app", sudo = true }]
            "#,
        )
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:5:15: task `console` is interactive and runs on remote hosts
                |
              5 | interactive = true
                |               ^^^^
                = help: interactive tasks run on this machine only: remove `on`, or `interactive`

              nexus.toml:5:15: task `console` is interactive and has a command with `sudo` or `user`
                |
              5 | interactive = true
                |               ^^^^
                = help: write sudo in the command itself (cmd = "sudo ..."): an interactive command can answer sudo's password prompt
            "#,
        );
}

// ---------------------------------------------------------------- validate

#[test]
fn validate_warns_about_an_unset_variable_and_run_refuses() {
    let t = Test::new().toml(
        r#"
        [tasks.build]
        run = "echo build >> log"
        [tasks.deploy]
        deps = ["build"]
        run = 'echo {{ env("NEXUS_DAILY_UNSET_TOKEN") }}'
        "#,
    );
    t.clone_args(&["validate"]).run().expect(
        0,
        "nexus.toml is valid: 2 tasks, 0 host groups, 0 hosts\n",
        r#"
        warning: nexus.toml:5:16: task `deploy` needs environment variable `NEXUS_DAILY_UNSET_TOKEN`, which is not set
            |
          5 | run = 'echo {{ env("NEXUS_DAILY_UNSET_TOKEN") }}'
            |                ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
            = help: set it (export NEXUS_DAILY_UNSET_TOKEN=...), put it in a dotenv file, or give a default: {{ env("NEXUS_DAILY_UNSET_TOKEN", "...") }}
            = help: `nexus run` refuses to start a task that needs it while it is unset
        "#,
    );
    t.clone_args(&["run", "deploy"]).run().expect(
        2,
        "",
        r#"
        Error: Cannot start the run

          nexus.toml:5:16: task `deploy` needs environment variable `NEXUS_DAILY_UNSET_TOKEN`, which is not set
            |
          5 | run = 'echo {{ env("NEXUS_DAILY_UNSET_TOKEN") }}'
            |                ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
            = help: set it (export NEXUS_DAILY_UNSET_TOKEN=...), put it in a dotenv file, or give a default: {{ env("NEXUS_DAILY_UNSET_TOKEN", "...") }}
        "#,
    );
    assert!(!t.path("log").exists(), "no command ran");
    // A run that does not need it goes ahead.
    t.clone_args(&["run", "build", "-q"])
        .run()
        .expect(0, "", "ok build (X.Xs)\n");
}

/// nexus on a terminal (`script` gives it a pty), with `keys` typed once `after` shows
/// on the screen: the exit code and the screen.
fn on_a_terminal(t: &Test, args: &str, after: &str, keys: &[u8]) -> (i32, String) {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &format!("{BIN} {args}"), "/dev/null"])
        .current_dir(t.dir.path())
        .env("NEXUS_HOME", t.path(".nexus-home"))
        .env("NO_COLOR", "1")
        .env_remove("CI")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Stop(c.spawn().expect("script (util-linux)"));
    let screen = Arc::new(Mutex::new(Vec::new()));
    let mut out = child.0.stdout.take().unwrap();
    let reader = {
        let screen = Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let shown = || String::from_utf8_lossy(&screen.lock().unwrap()).replace("\r\n", "\n");
    let mut stdin = child.0.stdin.take().unwrap();
    if !keys.is_empty() {
        wait_until(after, Duration::from_secs(30), || shown().contains(after));
        stdin.write_all(keys).unwrap();
        stdin.flush().unwrap();
    }
    wait_until("nexus to finish", Duration::from_secs(60), || {
        matches!(child.0.try_wait(), Ok(Some(_)))
    });
    drop(stdin);
    reader.join().unwrap();
    let code = child.0.wait().unwrap().code().unwrap_or(-1);
    (code, shown())
}

/// On a terminal, an interactive command is the terminal's foreground (it may read it,
/// Ctrl-C goes to it), and nexus takes the terminal back after it.
#[test]
fn an_interactive_command_has_the_terminal_and_gives_it_back() {
    let fg = "python3 -c 'import os; print(\"foreground\", os.getpgrp() == os.tcgetpgrp(0))'";
    let t = Test::new().toml(&format!(
        r#"
        [tasks.a]
        interactive = true
        run = "{fg}"
        [tasks.b]
        deps = ["a"]
        interactive = true
        run = "{fg}"
        [tasks.wait]
        interactive = true
        run = "echo ready; sleep 30"
        "#,
        fg = fg.replace('"', "\\\""),
    ));
    let (code, screen) = on_a_terminal(&t, "run b --plain", "", b"");
    assert_eq!(code, 0, "{screen}");
    assert_text(
        "the screen",
        &mask(&screen),
        "foreground True\nok a X.Xs\nforeground True\nok b X.Xs\n\nSummary:\n  ok        a  X.Xs\n  ok        b  X.Xs\nCompleted in X.Xs: 2 succeeded\n",
    );
    // Ctrl-C on the terminal reaches the command, and ends the run as it would have.
    let (code, screen) = on_a_terminal(&t, "run wait --plain", "ready", b"\x03");
    assert_eq!(code, 130, "{screen}");
    assert_text(
        "the screen",
        &mask(&screen),
        "ready\n^Ccancelled wait X.Xs\n\nSummary:\n  cancelled wait  X.Xs\nInterrupted in X.Xs: 0 succeeded, 1 cancelled\n",
    );
}

// ---------------------------------------------------------------- failure reports, journal

/// Issue 11, "must show" 3: a failing command prints the reason on stdout and 30 lines
/// of noise on stderr: the report shows the reason. After the noise (as `cargo test`
/// prints a failed assertion after compiling), it is among the last 20 lines, in the
/// order they came (nexus 0.1 showed the last 10 lines of stderr only); before it,
/// stderr fills the last 20 lines and the report shows stdout's last lines apart.
#[test]
fn a_failure_report_shows_the_reason_printed_on_stdout_among_stderr_noise() {
    let t = Test::new().toml(
        r#"
        [tasks.after]
        run = "for i in $(seq 1 30); do echo compiling-$i >&2; done; sleep 0.5; echo 'assertion failed: left == right'; sleep 0.5; echo 'error: test failed' >&2; exit 101"
        [tasks.before]
        run = "echo 'assertion failed: left == right'; for i in $(seq 1 30); do echo noise-$i >&2; done; exit 101"
        "#,
    );
    let lines = |name: &str, range: std::ops::RangeInclusive<u32>| -> String {
        range.map(|i| format!("    {name}-{i}\n")).collect()
    };
    t.clone_args(&["run", "after", "-q"]).run().expect(
        1,
        "",
        &format!(
            "FAILED after (X.Xs)\nError: Command failed\n\n  Host: local\n  Task: after\n  Command: for i in $(seq 1 30); do echo compiling-$i >&2; done; sleep 0.5; echo 'assertion failed: left == right'; sleep 0.5; echo 'error: test failed' >&2; exit 101\n  Exit code: 101\n\n  Output (last 20 lines):\n{}    assertion failed: left == right\n    error: test failed\n\n  help: more of its output: nexus runs show RUN_ID\n\n",
            lines("compiling", 13..=30)
        ),
    );
    t.clone_args(&["run", "before", "-q"]).run().expect(
        1,
        "",
        &format!(
            "FAILED before (X.Xs)\nError: Command failed\n\n  Host: local\n  Task: before\n  Command: echo 'assertion failed: left == right'; for i in $(seq 1 30); do echo noise-$i >&2; done; exit 101\n  Exit code: 101\n\n  Output (last 20 lines):\n{}\n  Last lines on stdout:\n    assertion failed: left == right\n\n  help: more of its output: nexus runs show RUN_ID\n\n",
            lines("noise", 11..=30)
        ),
    );
}

/// Issue 11, "must show" 3: a command printing 1 MiB: `nexus runs show` shows the head
/// of its output, a marker with the lines and bytes left out, and the tail.
#[test]
fn runs_show_keeps_the_head_and_tail_of_a_megabyte_with_a_marker() {
    // 131072 lines of 8 bytes: 1 MiB. The journal keeps the first 32 KiB (4096 lines)
    // and the last 32 KiB less its first line, which may have lost its start (4095).
    let t = Test::new().toml(
        r#"
        [tasks.flood]
        run = "seq -f '%07g' 1 131072"
        "#,
    );
    t.clone_args(&["run", "flood", "-q"])
        .run()
        .expect(0, "", "ok flood (X.Xs)\n");
    let runs: serde_json::Value =
        serde_json::from_str(&t.clone_args(&["runs", "--format", "json"]).run().stdout).unwrap();
    let run = &runs[0];
    let id = run["id"].as_str().unwrap();
    let mut expected = format!(
        "Run {id} (flood #1)\n  started:  {}\n  status:   success\n  duration: X.Xs\n  journal:  {}\n\nTasks:\n    [local] #0 attempt 1 success (exit 0)\n",
        run["started"].as_str().unwrap(),
        run["journal"].as_str().unwrap()
    );
    let line = |n: u32| format!("      | {n:07}\n");
    for n in 1..=4096 {
        expected += &line(n);
    }
    let omitted = 131_072 - 4096 - 4095;
    expected += &format!(
        "      … {omitted} lines ({} bytes) not kept …\n",
        omitted * 8
    );
    for n in 4096 + omitted + 1..=131_072 {
        expected += &line(n);
    }
    expected += "  flood success\n";
    let shown = t.clone_args(&["runs", "show", id]).run();
    shown.expect_code(0);
    assert_text("runs show", &mask(&shown.stdout), &mask(&expected));
    assert_eq!(shown.stderr, "", "{}", shown.show());
}

/// Under sudo (a clean environment), a `#!` script and a command under `[config] shell`
/// still get the task's env, through the shell's stdin.
#[test]
fn sudo_commands_keep_the_shell_scripts_and_env() {
    if skip_unless_root(
        "daily::sudo_commands_keep_the_shell_scripts_and_env",
        "sudo -n as the user running the suite",
    ) {
        return;
    }
    let t = Test::new().toml(
        r##"
        [config]
        shell = ["bash", "-euo", "pipefail", "-c"]
        [env]
        TOKEN = "it's a token"
        [tasks.script]
        run = [{ cmd = "#!/bin/sh\necho \"$(id -u) $TOKEN $0\" | sed 's|/tmp/.*/|/TMP/|'", sudo = true }]
        [tasks.pipe]
        run = [{ cmd = "echo \"$TOKEN $BASH_VERSINFO\" | sed 's/ [0-9]*$/ bash/'; false | true", sudo = true }]
        "##,
    );
    t.clone_args(&["run", "script"]).run().expect(
        0,
        "0 it's a token /TMP/script\n",
        "ok script X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    let r = t.clone_args(&["run", "pipe", "-q"]).run();
    r.expect_code(1);
    assert!(
        r.stderr.contains("    it's a token bash\n"),
        "the output, then the failing pipe: {}",
        r.show()
    );
}

/// bash completion offers task names where a command goes (`nexus TASK`), not private
/// ones.
#[test]
fn completion_offers_tasks_where_a_command_goes() {
    let t = Test::new().toml(
        r#"
        [tasks.build]
        run = "true"
        [tasks.bump]
        run = "true"
        [tasks._bundle]
        run = "true"
        "#,
    );
    let script = t.clone_args(&["completions", "bash"]).run().stdout;
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{script}\nCOMP_WORDS=(nexus bu); COMP_CWORD=1; _nexus; echo \"${{COMPREPLY[@]}}\""
        ))
        .current_dir(t.dir.path())
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
        )
        .env_remove("NEXUS_CONFIG")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "build bump\n",
        "{out:?}"
    );
}

// ---------------------------------------------------------------- with templates and parameters

/// An alias takes its task's parameters; `nexus list` shows them before the description.
#[test]
fn an_alias_takes_its_tasks_parameters_and_list_shows_them() {
    let t = Test::new().toml(
        r#"
        [tasks.deploy]
        desc = "Ship it"
        aliases = ["d"]
        args = ["version", "channel=stable"]
        run = "echo deploying {{ version }} to {{ channel }}"
        [tasks.build]
        run = "true"
        "#,
    );
    t.clone_args(&["d", "1.4.2"]).run().expect(
        0,
        "deploying 1.4.2 to stable\n",
        "ok deploy X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    t.clone_args(&["run", "d", "1.4.3", "beta"]).run().expect(
        0,
        "deploying 1.4.3 to beta\n",
        "ok deploy X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    t.clone_args(&["list"]).run().expect(
        0,
        "
        Tasks:
          deploy VERSION [CHANNEL=stable]  Ship it  [aliases: d]
          build
        ",
        "",
    );
    let json: serde_json::Value =
        serde_json::from_str(&t.clone_args(&["list", "--format", "json"]).run().stdout).unwrap();
    assert_eq!(
        json[0]["args"],
        serde_json::json!(["version", "channel=stable"])
    );
}

/// `[env]` is rendered for every task: it may use the built-ins and `[vars]`, not one
/// task's parameters (an error at load time, at the name).
#[test]
fn global_env_uses_vars_and_no_task_parameters() {
    let t = Test::new().toml(
        r#"
        [vars]
        app = "shop"
        [env]
        APP_TAG = "{{ app }}-{{ task }}"
        [tasks.show]
        run = "echo $APP_TAG"
        "#,
    );
    t.clone_args(&["run", "show"]).run().expect(
        0,
        "shop-show\n",
        "ok show X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    Test::new()
        .toml(
            r#"
            [env]
            VERSION = "{{ version }}"
            [tasks.deploy]
            args = ["version"]
            run = "echo $VERSION"
            "#,
        )
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:2:15: unknown variable `version`
                |
              2 | VERSION = "{{ version }}"
                |               ^^^^^^^
                = help: `[env]` is for every task: it can use host, task, run_id, timestamp, git_sha, git_branch and `[vars]` (a task's `args` only in its own `env`)
            "#,
        );
}

/// An interactive command that holds a secret: its stdin is the terminal's, so the line
/// goes to the shell in a private file it sources, never in an argument list.
#[test]
fn an_interactive_command_keeps_a_secret_out_of_argument_lists() {
    let canary = "canary-3a9f17c2";
    let sleep = marker(3, 8);
    let t = Test::new().toml(&format!(
        r#"
        [tasks.ask]
        interactive = true
        run = "read answer; test {{{{ secret('TOKEN') | quote }}}} = \"$answer\" && sleep {sleep} && echo same"
        "#
    ));
    store_secret(&t, "TOKEN", canary);
    let mut c = t
        .clone_args(&["run", "ask", "--keyfile", "k.key"])
        .command();
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Stop(c.spawn().unwrap());
    let mut stdin = child.0.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, format!("{canary}\n").as_bytes()).unwrap();
    drop(stdin);
    wait_until("the command to run", Duration::from_secs(20), || {
        !processes_matching(&format!("sleep {sleep}")).is_empty()
    });
    let seen = processes_matching(canary);
    assert!(
        seen.is_empty(),
        "the secret is in an argument list: {seen:?}"
    );
    let r = wait_within(&mut child, &c, Duration::from_secs(30));
    r.expect(0, "same\n", "ok ask X.Xs\nCompleted in X.Xs: 1 succeeded\n");
}

/// A store with the key file `k.key` holding secret `name`.
fn store_secret(t: &Test, name: &str, value: &str) {
    t.clone_args(&["secret", "init", "--keyfile", "k.key"])
        .run()
        .expect_code(0);
    let mut set = t
        .clone_args(&["secret", "set", name, "--keyfile", "k.key"])
        .command();
    set.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = set.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), value.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
}

/// Under `[config] shell`, a command holding a secret still never reaches an argument
/// list: `sh -s` reads it and execs the shell, which finds the line in its environment.
#[test]
fn a_secret_under_the_configured_shell_stays_out_of_argument_lists() {
    let canary = "canary-d41e9b07";
    let sleep = marker(3, 9);
    let t = Test::new().toml(&format!(
        r#"
        [config]
        shell = ["bash", "-euo", "pipefail", "-c"]
        [tasks.check]
        run = "test {{{{ secret('TOKEN') | quote }}}} = {canary} && echo \"$BASH_VERSINFO\" | sed 's/[0-9]*/bash/'; sleep {sleep}; false | true"
        "#
    ));
    store_secret(&t, "TOKEN", canary);
    let mut c = t
        .clone_args(&["run", "check", "--keyfile", "k.key", "-q"])
        .command();
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Stop(c.spawn().unwrap());
    wait_until("the command to run", Duration::from_secs(20), || {
        !processes_matching(&format!("sleep {sleep}")).is_empty()
    });
    let seen = processes_matching(canary);
    assert!(
        seen.is_empty(),
        "the secret is in an argument list: {seen:?}"
    );
    let r = wait_within(&mut child, &c, Duration::from_secs(30));
    // bash ran it (it printed), with pipefail (the pipe failed the command).
    r.expect_code(1);
    assert!(r.stderr.contains("    bash\n"), "{}", r.show());
}

// ---------------------------------------------------------------- signals of a command

/// What `cat /proc/self/status` printed for `task`: (blocked, ignored) signal masks, the
/// ignored ones without glibc's two internal real-time signals (32 and 33, which its
/// posix_spawn sets to ignored in every child).
fn signal_masks(r: &Run, task: &str) -> (u64, u64) {
    let field = |name: &str| {
        let prefix = format!("{task} | {name}:\t");
        let line = r.stdout.lines().find_map(|l| l.strip_prefix(&prefix));
        let hex = line.unwrap_or_else(|| panic!("no {name} line for {task}\n{}", r.show()));
        u64::from_str_radix(hex, 16).unwrap()
    };
    (field("SigBlk"), field("SigIgn") & !(0b11 << 31))
}

/// A command starts with no signal blocked and every signal at its default action
/// (nexus catches SIGINT and SIGTERM and ignores SIGPIPE for itself), but a signal nexus
/// was started with ignored stays ignored, as `nohup nexus ...` needs. Tasks `a` and `c`
/// (another directory) are started by nexus's own posix_spawn, task `b` (its own PATH)
/// by std's `Command`: the same.
#[test]
fn a_command_gets_default_signals_except_those_ignored_for_nexus() {
    const STATUS: &str = r#"
        [tasks.a]
        run = "cat /proc/self/status"

        [tasks.b]
        run = "cat /proc/self/status"
        env = { PATH = "/usr/bin:/bin" }

        [tasks.c]
        run = "cat /proc/self/status"
        dir = "sub"
    "#;
    for hup_ignored in [false, true] {
        let t = Test::new().toml(STATUS).file("sub/.keep", "");
        let mut c = t.clone_args(&["run", "a", "b", "c"]).command();
        // SAFETY: signal(2) is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            c.pre_exec(move || {
                // Whatever the test runner was started with, nexus starts from defaults.
                for sig in 1..32 {
                    if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                        libc::signal(sig, libc::SIG_DFL);
                    }
                }
                if hup_ignored {
                    libc::signal(libc::SIGHUP, libc::SIG_IGN);
                }
                Ok(())
            });
        }
        let out = c.output().unwrap();
        let r = Run::from_output(&c, out);
        r.expect_code(0);
        let want = if hup_ignored {
            1 << (libc::SIGHUP - 1)
        } else {
            0
        };
        for task in ["a", "b"] {
            assert_eq!(
                signal_masks(&r, task),
                (0, want),
                "task {task}\n{}",
                r.show()
            );
        }
    }
}
