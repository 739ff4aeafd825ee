//! Templates (Jinja2 through minijinja) and task parameters: `[vars]`, filters and loops,
//! `quote`, shell syntax passing through, unknown names at load time with their location,
//! parameters bound from the command line as just binds them.

use crate::common::*;

fn ok_lines(tasks: &[&str]) -> String {
    let mut s: String = tasks.iter().map(|t| format!("ok {t} X.Xs\n")).collect();
    s += &format!("Completed in X.Xs: {} succeeded\n", tasks.len());
    s
}

#[test]
fn vars_filters_loops_and_shell_syntax() {
    Test::new()
        .toml(
            r#"
            [vars]
            app = "shop"
            port = 8080
            regions = ["eu", "us"]
            db = { name = "main", size = 3 }

            [tasks.t]
            run = '''
            word=abc
            echo "{{ app | upper }}:{{ port + 1 }} ${#word} {# not a comment #}"
            echo {% for r in regions %}{{ r }}-{{ loop.index }} {% endfor %}{{ db.name }}/{{ db["size"] }}
            echo {{ "{{" }} {{ task }}@{{ host }}
            '''
            "#,
        )
        .args(&["run", "t"])
        .run()
        .expect(
            0,
            "SHOP:8081 3 {# not a comment #}\neu-1 us-2 main/3\n{{ t@local\n",
            &ok_lines(&["t"]),
        );
}

#[test]
fn quote_keeps_hostile_values_one_word() {
    let t = Test::new()
        .toml(
            r#"
            [tasks.greet]
            args = ["who"]
            run = "printf '<%s>\n' {{ who | quote }}"
            "#,
        )
        .args(&[
            "run",
            "greet",
            "it's $(touch pwned); `id` && echo \"x\" | cat",
        ]);
    t.run().expect(
        0,
        "<it's $(touch pwned); `id` && echo \"x\" | cat>\n",
        &ok_lines(&["greet"]),
    );
    assert!(!t.path("pwned").exists());
}

#[test]
fn unknown_names_are_load_errors_at_their_place() {
    Test::new()
        .toml(
            r#"
            [vars]
            app = "shop"

            [tasks.deploy]
            args = ["version"]
            run = 'echo {{ ap }} {{ versoin }} {{ nothing_like_it }}'
            "#,
        )
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:6:16: unknown variable `ap`
                |
              6 | run = 'echo {{ ap }} {{ versoin }} {{ nothing_like_it }}'
                |                ^^
                = help: did you mean `app`?

              nexus.toml:6:25: unknown variable `versoin`
                |
              6 | run = 'echo {{ ap }} {{ versoin }} {{ nothing_like_it }}'
                |                         ^^^^^^^
                = help: did you mean `version`?

              nexus.toml:6:39: unknown variable `nothing_like_it`
                |
              6 | run = 'echo {{ ap }} {{ versoin }} {{ nothing_like_it }}'
                |                                       ^^^^^^^^^^^^^^^
                = help: task `deploy` can use host, task, run_id, timestamp, git_sha, git_branch, `[vars]` and its `args`
            "#,
        );
}

#[test]
fn template_syntax_errors_and_shadowing_vars_are_refused() {
    Test::new()
        .toml(
            r#"
            [vars]
            host = "x"

            [tasks.t]
            run = 'echo {% if %}'
            "#,
        )
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:2:1: variable `host` would hide nexus's own `host`
                |
              2 | host = "x"
                | ^^^^
                = help: choose another name

              nexus.toml:5:19: invalid template: unexpected end of block
                |
              5 | run = 'echo {% if %}'
                |                   ^^
                = help: templates use Jinja2 syntax; write `{{ "{{" }}` for a literal `{{`
            "#,
        );
}

fn params_toml() -> &'static str {
    r#"
    [tasks.deploy]
    args = ["version", "channel=stable", "*rest"]
    run = "echo deploy {{ version }} {{ channel }} [{{ rest }}] {{ rest | length }}"

    [tasks.greet]
    args = ["who"]
    run = "echo hello {{ who }}"

    [tasks.each]
    args = ["+files"]
    run = "for f in {{ files | quote }}; do echo \"<$f>\"; done"

    [tasks.build]
    args = ["profile=debug"]
    run = "echo build {{ profile }}"

    [tasks.ship]
    deps = ["build"]
    run = "echo ship"
    "#
}

#[test]
fn parameters_bind_like_just() {
    let t = Test::new().toml(params_toml());
    t.clone_args(&["run", "deploy", "1.4.2"]).run().expect(
        0,
        "deploy 1.4.2 stable [] 0\n",
        &ok_lines(&["deploy"]),
    );
    t.clone_args(&[
        "run", "deploy", "1.4.2", "beta", "a", "b", "--", "-x", "--y",
    ])
    .run()
    .expect(
        0,
        "deploy 1.4.2 beta [a b -x --y] 4\n",
        &ok_lines(&["deploy"]),
    );
    t.clone_args(&["run", "each", "--", "a b", "c"])
        .run()
        .expect(0, "<a b>\n<c>\n", &ok_lines(&["each"]));
    // Several targets, each with its arguments; a dependency gets its default.
    let r = t
        .clone_args(&["run", "greet", "ann", "ship", "-p", "1"])
        .run();
    r.expect_code(0);
    let mut lines: Vec<&str> = r.stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["build debug", "hello ann", "ship"], "{}", r.show());
}

#[test]
fn missing_and_extra_arguments_are_usage_errors() {
    let t = Test::new().toml(params_toml());
    t.clone_args(&["run", "deploy"]).run().expect(
        2,
        "",
        "Error: task `deploy` needs argument `version`\n\n  help: usage: nexus run deploy VERSION [CHANNEL=stable] [REST]...\n",
    );
    t.clone_args(&["run", "each"]).run().expect(
        2,
        "",
        "Error: task `each` needs at least one argument for `files`\n\n  help: usage: nexus run each FILES...\n",
    );
    t.clone_args(&["run", "greet", "ann", "bob"]).run().expect(
        2,
        "",
        "Error: task `greet` got an extra argument `bob` (and there is no task of that name)\n\n  help: usage: nexus run greet WHO\n",
    );
    t.clone_args(&["run", "greet", "ann", "--", "x"]).run().expect(
        2,
        "",
        "Error: the words after `--` (x) have no parameter to go to\n\n  help: usage: nexus run greet WHO\n  help: `--` passes words to the last task's `*name` or `+name` parameter\n",
    );
}

#[test]
fn a_required_parameter_of_a_dependency_is_an_error() {
    Test::new()
        .toml(
            r#"
            [tasks.tag]
            args = ["version"]
            run = "echo tag {{ version }}"
            [tasks.release]
            deps = ["tag"]
            run = "echo release"
            "#,
        )
        .args(&["run", "release"])
        .run()
        .expect(
            2,
            "",
            "Error: task `tag` needs argument `version`\n\n  help: usage: nexus run tag VERSION\n  help: `tag` runs as a dependency here; name it on the command line with its arguments, or give the parameter a default\n",
        );
}

#[test]
fn bad_parameter_declarations_are_refused() {
    Test::new()
        .toml(
            r#"
            [tasks.t]
            args = ["a=1", "b", "*c", "d", "a", "9x"]
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

              nexus.toml:2:16: required parameter `b` comes after a parameter with a default
                |
              2 | args = ["a=1", "b", "*c", "d", "a", "9x"]
                |                ^^^
                = help: order: required parameters, then `name=default` ones, then one `*name` or `+name`

              nexus.toml:2:27: parameter `d` comes after the variadic parameter `c`
                |
              2 | args = ["a=1", "b", "*c", "d", "a", "9x"]
                |                           ^^^
                = help: order: required parameters, then `name=default` ones, then one `*name` or `+name`

              nexus.toml:2:32: parameter `a` is declared twice
                |
              2 | args = ["a=1", "b", "*c", "d", "a", "9x"]
                |                                ^^^
                = help: order: required parameters, then `name=default` ones, then one `*name` or `+name`

              nexus.toml:2:37: `9x` is not a valid variable name
                |
              2 | args = ["a=1", "b", "*c", "d", "a", "9x"]
                |                                     ^^^^
                = help: a name has letters, digits and `_`, and does not start with a digit (like `app_port`)
            "#,
        );
}

#[test]
fn resume_keeps_the_arguments_of_the_interrupted_run() {
    let t = Test::new().toml(
        r#"
        [tasks.one]
        args = ["v"]
        run = ["echo one {{ v }} >> log", "test -e go || { kill -TERM $PPID; sleep 5; }", "echo two {{ v }} >> log"]
        "#,
    );
    // The second command stops nexus (SIGTERM) the first time: the run is interrupted.
    t.clone_args(&["run", "one", "x y", "-q"])
        .run()
        .expect_code(130);
    std::fs::write(t.path("go"), "").unwrap();
    let r = t.clone_args(&["resume", "-q"]).run();
    r.expect_code(0);
    assert_eq!(t.read("log"), "one x y\ntwo x y\n", "{}", r.show());
}
