//! Daily use as a make/just replacement (issue 11): no timeout unless one is configured
//! (`[config] timeout` and `task_timeout`, `run --timeout`), a bare `nexus` and the
//! `nexus TASK` shorthand, `default`, aliases, private tasks, `[env]`, dotenv files,
//! `[config] shell`, `#!` scripts, interactive tasks, `nexus list` and `nexus validate`
//! for all of these, and the failure report and journal of a command that prints a lot.

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
