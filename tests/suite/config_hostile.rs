//! nexus.toml files written to hurt: floods of errors, endless or huge files, names and
//! values that would reach a terminal or a shell, and the regression inputs fuzzing
//! found, and two quickcheck properties: any bytes as nexus.toml load or fail with exit
//! 2, never a panic, and what is printed about them is bounded and free of control
//! characters. Each test ran against the code before its fix and failed there.
//! Full-text assertions, like cli.rs.

use std::process::Stdio;
use std::time::Duration;

use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

use crate::common::*;

// ---------------------------------------------------------------- bounded output

/// One located problem as rendered, at `line` (one digit) and `col`, with no help.
fn shown(line: usize, col: usize, message: &str, text: &str, width: usize) -> String {
    format!(
        "  nexus.toml:{line}:{col}: {message}\n    |\n  {line} | {text}\n    | {}{}\n",
        " ".repeat(col - 1),
        "^".repeat(width)
    )
}

#[test]
fn a_flood_of_syntax_errors_shows_the_first_twenty_and_a_count() {
    // 5,000 stray braces on one line: 10,000 syntax errors, each of which printed the
    // whole 5 KB line (76 MB of stderr).
    let toml = format!("[tasks.a]\nrun = [\"x\"{}\n", "}".repeat(5000));
    let window = format!("run = [\"x\"{}…", "}".repeat(90));
    let mut expected = String::from("Error: Validation failed\n");
    for col in 11..=20 {
        for message in [
            "missing comma between array elements, expected `,`",
            "missing inline table opening, expected `{`",
        ] {
            expected.push('\n');
            expected += &shown(2, col, &format!("TOML syntax error: {message}"), &window, 1);
        }
    }
    expected += "\n  and 9981 more problems, not shown\n\n  help: fix the ones above, then run `nexus validate` again to see the rest\n";
    Test::new()
        .toml(&toml)
        .args(&["validate"])
        .run()
        .expect(2, "", &expected);
}

#[test]
fn a_large_file_of_syntax_errors_is_parsed_in_bounded_memory() {
    // The TOML parser kept every error it recovered from: 2 MiB of stray braces took
    // over 1 GB (16 MiB: 8 GB). Run under a 700 MB address-space limit, as `sh -c
    // 'ulimit -v'`; over 64 KiB only the first syntax error is looked for.
    let toml = format!("[tasks.a]\nrun = [\"x\"{}\n", "}".repeat(2 * 1024 * 1024));
    let t = Test::new().toml(&toml);
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        "ulimit -v 700000 && exec \"$0\" \"$@\"",
        BIN,
        "validate",
    ])
    .current_dir(t.dir.path())
    .env("NEXUS_HOME", t.path(".nexus-home"))
    .stdin(Stdio::null());
    let out = cmd.output().expect("run nexus under ulimit");
    let window = format!("run = [\"x\"{}…", "}".repeat(90));
    let first = shown(
        2,
        11,
        "TOML syntax error: missing comma between array elements, expected `,`",
        &window,
        1,
    );
    Run::from_output(&cmd, out).expect(
        2,
        "",
        &format!("Error: Validation failed\n\n{first}\n  only the first TOML syntax error is looked for in a file over 64 KiB\n\n  help: fix it, then run `nexus validate` again\n"),
    );
}

#[test]
fn a_long_line_is_shown_as_a_window_around_the_caret() {
    let env: Vec<String> = (1..=14).map(|i| format!("A{i} = \"x\"")).collect();
    let (first, last) = env.split_at(8);
    Test::new()
        .toml(&format!(
            "[tasks.a]\nrun = \"true\"\nenv = {{ {}, BAD = 1.5, {} }}\n",
            first.join(", "),
            last.join(", ")
        ))
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:3:95: `BAD` must be a string, found float
                |
              3 | …x", A6 = "x", A7 = "x", A8 = "x", BAD = 1.5, A9 = "x", A10 = "x", A11 = "x", A12 = "x", A13 = "x", A…
                |                                          ^^^
            "#,
        );
}

/// `nexus validate` warns about unset variables (they are input of a run), the first
/// twenty of them; `nexus run` refuses to start, showing the first twenty.
#[test]
fn many_unset_variables_show_the_first_twenty() {
    let mut toml = String::new();
    for i in 0..30 {
        toml += &format!("[tasks.t{i:02}]\nrun = 'echo {{{{ env(\"NEXUS_HOSTILE_UNSET\") }}}}'\n");
    }
    toml += &format!(
        "[tasks.all]\ndeps = [{}]\n",
        (0..30)
            .map(|i| format!("\"t{i:02}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let item = |i: usize, lead: &str, extra: &str| {
        let line = 2 * i + 2;
        let pad = " ".repeat(line.to_string().len());
        format!(
            "{lead}nexus.toml:{line}:16: task `t{i:02}` needs environment variable `NEXUS_HOSTILE_UNSET`, which is not set\n  {pad} |\n  {line} | run = 'echo {{{{ env(\"NEXUS_HOSTILE_UNSET\") }}}}'\n  {pad} |                {}\n  {pad} = help: set it (export NEXUS_HOSTILE_UNSET=...), put it in a dotenv file, or give a default: {{{{ env(\"NEXUS_HOSTILE_UNSET\", \"...\") }}}}\n{extra}",
            "^".repeat(26)
        )
    };
    let mut warnings = String::new();
    for i in 0..20 {
        let pad = " ".repeat((2 * i + 2).to_string().len());
        warnings += &item(
            i,
            "warning: ",
            &format!("  {pad} = help: `nexus run` refuses to start a task that needs it while it is unset\n"),
        );
    }
    warnings += "warning: and 10 more unset variables, not shown\n";
    let t = Test::new().toml(&toml);
    t.clone_args(&["validate"]).run().expect(
        0,
        "nexus.toml is valid: 31 tasks, 0 host groups, 0 hosts\n",
        &warnings,
    );
    let mut expected = String::from("Error: Cannot start the run\n");
    for i in 0..20 {
        expected += &item(i, "\n  ", "");
    }
    expected += "\n  and 10 more problems, not shown\n\n  help: fix the ones above, then run `nexus validate` again to see the rest\n";
    t.clone_args(&["run", "all"]).run().expect(2, "", &expected);
}

#[test]
fn control_characters_in_messages_are_escaped() {
    // A quoted key may hold any character; a raw ESC would reach the terminal.
    Test::new()
        .toml("[tasks.a]\nrun = \"true\"\n\"\\u001b[2J\" = 1\n")
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:3:1: unknown key `\u{1b}[2J` in task `a`
                |
              3 | "\u001b[2J" = 1
                | ^^^^^^^^^^^
                = help: task `a` takes: desc, deps, on, strategy, timeout, dir, env, args, continue_on_error, run, aliases, private, interactive, sources, outputs, creates, unless, batch, max_fail, canary, canary_wait, wait_for, rollback, run_once, force_handlers, artifacts, artifacts_from
            "#,
        );
}

#[test]
fn long_names_get_no_suggestion_and_are_shortened() {
    // Suggesting a close name compared every pair of characters in a table as large as
    // both names: 100,000-character names asked for 80 GB and aborted.
    let (a, b) = ("a".repeat(100_000), "b".repeat(100_000));
    Test::new()
        .toml(&format!(
            "[tasks.{a}]\nrun = \"true\"\n[tasks.b]\ndeps = [\"{b}\"]\n"
        ))
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            &format!(
                "Error: Validation failed\n\n  nexus.toml:4:9: task `b` depends on undefined task `{b59}…{b20}`\n    |\n  4 | deps = [\"{b91}…\n    |         {carets}\n    = help: defined tasks: {a59}…{a20}, b\n",
                b59 = "b".repeat(59),
                b20 = "b".repeat(20),
                b91 = "b".repeat(91),
                a59 = "a".repeat(59),
                a20 = "a".repeat(20),
                carets = "^".repeat(92),
            ),
        );
}

#[test]
fn groups_that_include_one_group_many_times_expand_once() {
    // g0 includes g1 twice, g1 includes g2 twice, ...: each was expanded once per path,
    // 2^40 times.
    let mut toml = String::from("[hosts]\n");
    for i in 0..40 {
        toml += &format!("g{i} = {{ groups = [\"g{j}\", \"g{j}\"] }}\n", j = i + 1);
    }
    toml += "g40 = \"h\"\n[tasks.a]\non = \"g0\"\nrun = \"true\"\n";
    let t = Test::new().toml(&toml);
    let mut cmd = t.command();
    cmd.args(["validate"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Stop(cmd.spawn().expect("start nexus"));
    wait_within(&mut child, &cmd, Duration::from_secs(60)).expect(
        0,
        "nexus.toml is valid: 1 tasks, 41 host groups, 1 hosts\n",
        "",
    );
}

#[test]
fn a_long_chain_of_groups_is_refused_without_overflowing_the_stack() {
    // Groups were expanded recursively: 50,000 groups in a chain overflowed the stack.
    let n = 50_000;
    let mut toml = String::from("[hosts]\n");
    for i in 0..n {
        toml += &format!("g{i} = {{ groups = [\"g{}\"] }}\n", i + 1);
    }
    toml += &format!("g{n} = \"h\"\n");
    Test::new().toml(&toml).args(&["validate"]).run().expect(
        2,
        "",
        r#"
        Error: Validation failed

          nexus.toml:12:1: expanding the host groups takes more than 1000000 steps (reached at group `g10`)
             |
          12 | g10 = { groups = ["g11"] }
             | ^^^
             = help: a host counts once for each group that includes it, directly or through other groups: use fewer or shallower `groups` lists
        "#,
    );
}

// ---------------------------------------------------------------- what a config file is

#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let t = Test::new();
    let fifo = t.path("pipe.toml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo failed");
    let mut cmd = t.command();
    cmd.args(["-c", "pipe.toml", "validate"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = Stop(cmd.spawn().expect("start nexus"));
    let path = fifo.display();
    wait_within(&mut child, &cmd, Duration::from_secs(60)).expect(
        2,
        "",
        &format!(
            "Error: cannot read {path}: it is a named pipe (FIFO), not a regular file\n\n  help: point -c or NEXUS_CONFIG at a nexus.toml file\n"
        ),
    );
}

#[test]
fn a_device_is_refused_before_it_is_read() {
    // /dev/zero never ends: it was read until memory ran out.
    Test::new()
        .args(&["-c", "/dev/zero", "validate"])
        .run()
        .expect(
            2,
            "",
            "Error: cannot read /dev/zero: it is a device, not a regular file\n\n  help: point -c or NEXUS_CONFIG at a nexus.toml file\n",
        );
}

#[test]
fn a_file_over_4_mib_is_refused_before_it_is_read() {
    let line = format!("# {}\n", "x".repeat(1021));
    let mut toml = line.repeat(4 * 1024);
    toml += "[tasks.a]\nrun = \"true\"\n";
    let t = Test::new().toml(&toml);
    let size = toml.len();
    let path = t.path("nexus.toml").display().to_string();
    t.args(&["validate"]).run().expect(
        2,
        "",
        &format!(
            "Error: cannot read {path}: the file is larger than 4 MiB ({size} bytes)\n\n  help: a nexus.toml may have at most 4 MiB (4194304 bytes); check that -c or NEXUS_CONFIG names the right file\n"
        ),
    );
}

#[test]
fn a_file_that_is_not_utf8_says_where() {
    let t = Test::new();
    std::fs::write(t.path("nexus.toml"), b"[tasks.a]\nrun = \"caf\xe9\"\n").expect("write");
    t.args(&["validate"]).run().expect(
        2,
        "",
        r#"
        Error: Validation failed

          nexus.toml:2:11: the file is not UTF-8 text: byte 0xE9 is not valid here
            |
          2 | run = "caf�"
            |           ^
            = help: save the file as UTF-8 text
        "#,
    );
}

// ---------------------------------------------------------------- names and values

#[test]
fn env_names_that_are_not_names_are_refused() {
    // They were accepted: `A=B` set another variable than written, `""` and `A B`
    // failed or vanished at run time.
    Test::new()
        .toml(
            r#"
            [tasks.a]
            run = "true"
            env = { "A=B" = "1", "" = "2", "A B" = "3", "1X" = "4", OK_1 = "5" }
            "#,
        )
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:3:9: `A=B` is not a valid environment variable name
                |
              3 | env = { "A=B" = "1", "" = "2", "A B" = "3", "1X" = "4", OK_1 = "5" }
                |         ^^^^^
                = help: a name has letters, digits and `_`, and does not start with a digit (like `RUST_LOG`)

              nexus.toml:3:22: an environment variable name cannot be empty
                |
              3 | env = { "A=B" = "1", "" = "2", "A B" = "3", "1X" = "4", OK_1 = "5" }
                |                      ^^
                = help: a name has letters, digits and `_`, and does not start with a digit (like `RUST_LOG`)

              nexus.toml:3:32: `A B` is not a valid environment variable name
                |
              3 | env = { "A=B" = "1", "" = "2", "A B" = "3", "1X" = "4", OK_1 = "5" }
                |                                ^^^^^
                = help: a name has letters, digits and `_`, and does not start with a digit (like `RUST_LOG`)

              nexus.toml:3:45: `1X` is not a valid environment variable name
                |
              3 | env = { "A=B" = "1", "" = "2", "A B" = "3", "1X" = "4", OK_1 = "5" }
                |                                             ^^^^
                = help: a name has letters, digits and `_`, and does not start with a digit (like `RUST_LOG`)
            "#,
        );
}

#[test]
fn a_nul_byte_is_refused_when_the_file_is_loaded() {
    // It passed `validate` and failed when the command was started.
    Test::new()
        .toml(
            r#"
            [tasks.a]
            run = "echo a\u0000b"
            dir = "x\u0000"
            env = { A = "v\u0000" }
            "#,
        )
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:2:7: this string has a NUL byte (`\u0000`), which no command, path or environment variable can hold
                |
              2 | run = "echo a\u0000b"
                |       ^^^^^^^^^^^^^^^
                = help: remove the `\u0000`

              nexus.toml:3:7: this string has a NUL byte (`\u0000`), which no command, path or environment variable can hold
                |
              3 | dir = "x\u0000"
                |       ^^^^^^^^^
                = help: remove the `\u0000`

              nexus.toml:4:13: this string has a NUL byte (`\u0000`), which no command, path or environment variable can hold
                |
              4 | env = { A = "v\u0000" }
                |             ^^^^^^^^^
                = help: remove the `\u0000`
            "#,
        );
}

#[test]
fn user_takes_a_plain_name() {
    // A placeholder in `user` was passed to sudo as written; `ssh_user` reaches
    // ProxyCommand lines as %r.
    Test::new()
        .toml(
            r#"
            [config]
            ssh_user = "$(id)"
            [tasks.a]
            run = [
              { cmd = "true", user = "{{ env(\"U\") }}" },
              { cmd = "true", user = "app server" },
              { cmd = "true", user = "" },
              { cmd = "true", user = "-C" },
            ]
            "#,
        )
        .args(&["validate"])
        .run()
        .expect(
            2,
            "",
            r#"
            Error: Validation failed

              nexus.toml:2:12: `ssh_user` `$(id)` is not a plain user name: it has `$`
                |
              2 | ssh_user = "$(id)"
                |            ^^^^^^^
                = help: a user name has letters, digits, `.`, `_`, `-` and `@`, and does not start with `-`

              nexus.toml:5:26: `user` takes a plain user name; placeholders are not expanded there
                |
              5 |   { cmd = "true", user = "{{ env(\"U\") }}" },
                |                          ^^^^^^^^^^^^^^^^^^
                = help: write the name itself: user = "deploy"

              nexus.toml:6:26: `user` `app server` is not a plain user name: it has ` `
                |
              6 |   { cmd = "true", user = "app server" },
                |                          ^^^^^^^^^^^^
                = help: a user name has letters, digits, `.`, `_`, `-` and `@`, and does not start with `-`

              nexus.toml:7:26: `user` is empty
                |
              7 |   { cmd = "true", user = "" },
                |                          ^^
                = help: a user name has letters, digits, `.`, `_`, `-` and `@`, and does not start with `-`

              nexus.toml:8:26: `user` `-C` is not a plain user name: it starts with `-`
                |
              8 |   { cmd = "true", user = "-C" },
                |                          ^^^^
                = help: a user name has letters, digits, `.`, `_`, `-` and `@`, and does not start with `-`
            "#,
        );
}

#[test]
fn control_characters_in_names_are_refused() {
    // `nexus list` and the run output printed them as they were: a terminal escape in a
    // task name recoloured or cleared the screen.
    Test::new()
        .toml(
            r#"
            [hosts]
            "g\u0007" = "h.example.com"
            [tasks."a\u001b[31m"]
            desc = "line\nbreak"
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

              nexus.toml:2:1: host group name `g\u{7}` has a control character (`\u{7}`)
                |
              2 | "g\u0007" = "h.example.com"
                | ^^^^^^^^^
                = help: names are printed in terminals and logs: use visible characters

              nexus.toml:3:8: task name `a\u{1b}[31m` has a control character (`\u{1b}`)
                |
              3 | [tasks."a\u001b[31m"]
                |        ^^^^^^^^^^^^^
                = help: names are printed in terminals and logs: use visible characters

              nexus.toml:4:8: `desc` has a control character (`\n`)
                |
              4 | desc = "line\nbreak"
                |        ^^^^^^^^^^^^^
                = help: it is printed in terminals as one line: use visible characters
            "#,
        );
}

#[test]
fn host_strings_are_names_or_addresses_not_shell() {
    // They accepted `$()`, `;`, backticks, quotes and `%`: host strings reach
    // ProxyCommand lines (%h) and remote shells.
    Test::new()
        .toml(
            r#"
            [hosts]
            web = ["a;b", "`id`", "x'y", "h\"q", "%h.example"]
            db = ["u$x@db", "[db]:22", "ok.example.com", "[fe80::1%eth0]:22"]
            [tasks.a]
            on = ["web", "u@$(id).example"]
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

              nexus.toml:2:8: host string `a;b` has `;` in its host name; a host name, ssh_config alias or address has letters, digits, `-`, `.` and `_`
                |
              2 | web = ["a;b", "`id`", "x'y", "h\"q", "%h.example"]
                |        ^^^^^
                = help: host strings are host, user@host, user@host:port or [ipv6]:port

              nexus.toml:2:15: host string ``id`` has ``` in its host name; a host name, ssh_config alias or address has letters, digits, `-`, `.` and `_`
                |
              2 | web = ["a;b", "`id`", "x'y", "h\"q", "%h.example"]
                |               ^^^^^^
                = help: host strings are host, user@host, user@host:port or [ipv6]:port

              nexus.toml:2:23: host string `x'y` has `'` in its host name; a host name, ssh_config alias or address has letters, digits, `-`, `.` and `_`
                |
              2 | web = ["a;b", "`id`", "x'y", "h\"q", "%h.example"]
                |                       ^^^^^
                = help: host strings are host, user@host, user@host:port or [ipv6]:port

              nexus.toml:2:30: host string `h"q` has `"` in its host name; a host name, ssh_config alias or address has letters, digits, `-`, `.` and `_`
                |
              2 | web = ["a;b", "`id`", "x'y", "h\"q", "%h.example"]
                |                              ^^^^^^
                = help: host strings are host, user@host, user@host:port or [ipv6]:port

              nexus.toml:2:38: host string `%h.example` has `%` in its host name; a host name, ssh_config alias or address has letters, digits, `-`, `.` and `_`
                |
              2 | web = ["a;b", "`id`", "x'y", "h\"q", "%h.example"]
                |                                      ^^^^^^^^^^^^
                = help: host strings are host, user@host, user@host:port or [ipv6]:port

              nexus.toml:3:7: host string `u$x@db` has a user that has `$`; a user name has letters, digits, `.`, `_`, `-` and `@`, and does not start with `-`
                |
              3 | db = ["u$x@db", "[db]:22", "ok.example.com", "[fe80::1%eth0]:22"]
                |       ^^^^^^^^
                = help: host strings are host, user@host, user@host:port or [ipv6]:port

              nexus.toml:3:17: host string `[db]:22` has `db`, which is not an IPv6 address; an IPv6 address is hexadecimal digits and `:` (and an optional `%zone`)
                |
              3 | db = ["u$x@db", "[db]:22", "ok.example.com", "[fe80::1%eth0]:22"]
                |                 ^^^^^^^^^
                = help: host strings are host, user@host, user@host:port or [ipv6]:port

              nexus.toml:5:14: host string `u@$(id).example` has `$` in its host name; a host name, ssh_config alias or address has letters, digits, `-`, `.` and `_`
                |
              5 | on = ["web", "u@$(id).example"]
                |              ^^^^^^^^^^^^^^^^^
                = help: host strings are host, user@host, user@host:port or [ipv6]:port
            "#,
        );
}

#[test]
fn hosts_on_the_command_line_follow_the_same_rule() {
    let t = Test::new().toml(
        r#"
        [tasks.a]
        on = "web.example.com"
        run = "true"
        "#,
    );
    t.clone_args(&["run", "-n", "a", "-H", "web;id"]).run().expect(
        2,
        "",
        "Error: -H/--hosts: host string `web;id` has `;` in its host name; a host name, ssh_config alias or address has letters, digits, `-`, `.` and `_`\n\n  help: give host strings (user@host:port) or group names, comma-separated\n",
    );
    t.clone_args(&["run", "-n", "a", "-H", "a\u{1b}[2Jb"]).run().expect(
        2,
        "",
        "Error: -H/--hosts: host string `a\\u{1b}[2Jb` contains '\\u{1b}'\n\n  help: give host strings (user@host:port) or group names, comma-separated\n",
    );
}

// ---------------------------------------------------------------- found by fuzzing

#[test]
fn a_journal_line_with_a_multibyte_character_where_the_checksum_goes_is_a_bad_line() {
    // fuzz target `journal`: the checksum's position was sliced without checking that
    // it falls between characters, and `nexus runs` panicked.
    let t = Test::new().toml("[tasks.a]\nrun = \"true\"\n");
    let runs = t.path(".nexus-home/runs");
    std::fs::create_dir_all(&runs).expect("mkdir");
    std::fs::write(
        runs.join("20260101T000000000Z-0001.jsonl"),
        "{}abcdefg\u{e9}hijklmn\"}\n",
    )
    .expect("write journal");
    t.clone_args(&["runs"]).run().expect(
        0,
        "no runs in this project (`nexus runs --all` lists every project's)\n",
        &format!(
            "warning: unreadable run journal {}/20260101T000000000Z-0001.jsonl: line 1: no checksum (truncated or not a journal line)\n",
            runs.display()
        ),
    );
}

// ---------------------------------------------------------------- properties

/// Bytes for a nexus.toml: fragments of TOML and of nexus's keys, random bytes, and now
/// and then one fragment repeated thousands of times (floods of errors need long input).
#[derive(Clone, Debug)]
struct TomlBytes(Vec<u8>);

const FRAGMENTS: &[&str] = &[
    "[tasks.a]\n",
    "[tasks.b]\n",
    "[tasks.\"\\u001b\"]\n",
    "[hosts]\n",
    "[config]\n",
    "run = ",
    "deps = ",
    "on = ",
    "env = ",
    "dir = ",
    "user = ",
    "cmd = ",
    "desc = ",
    "timeout = ",
    "retries = ",
    "groups = ",
    "hosts = ",
    "web = ",
    "ssh_user = ",
    "parallel_limit = ",
    "version = ",
    "\"x\"",
    "\"a\"",
    "\"b\"",
    "\"web\"",
    "\"local\"",
    "\"web-1.example.com\"",
    "\"u@[::1]:22\"",
    "\"$(id)\"",
    "'{{ env(\"X\") }}'",
    "'{{ host }}'",
    "\"{{\"",
    "\"\\u0000\"",
    "\"10s\"",
    "\"5x\"",
    "0",
    "1",
    "99999",
    "true",
    "1.5",
    "[",
    "]",
    "{",
    "}",
    ",",
    "=",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "\n",
    "\r\n",
    " ",
    "\t",
    "#",
    ".",
    "é",
    "\u{1b}[31m",
    "\u{0}",
    "\u{7f}",
    "\u{202e}",
];

impl Arbitrary for TomlBytes {
    fn arbitrary(g: &mut Gen) -> Self {
        let mut out = Vec::new();
        let parts = usize::arbitrary(g) % 60;
        for _ in 0..parts {
            match u8::arbitrary(g) % 10 {
                0 => out.extend((0..u8::arbitrary(g) % 8).map(|_| u8::arbitrary(g))),
                1 => {
                    let f = g.choose(FRAGMENTS).copied().unwrap_or("}");
                    let times = 1 + usize::arbitrary(g) % 5000;
                    out.extend(f.repeat(times).into_bytes());
                }
                _ => out.extend(g.choose(FRAGMENTS).copied().unwrap_or("").bytes()),
            }
        }
        TomlBytes(out)
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().map(TomlBytes))
    }
}

/// The most any nexus.toml may make nexus print about it: 20 problems of a few KB each
/// and the count of the others.
const MAX_STDERR: usize = 100 * 1024;

/// Rendered errors: bounded, and no control characters but newlines and tabs.
fn rendered_ok(text: &str) -> Result<(), String> {
    if text.len() > MAX_STDERR {
        return Err(format!("{} bytes of errors", text.len()));
    }
    match text
        .chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t')
    {
        Some(c) => Err(format!("control character {c:?} in:\n{text}")),
        None => Ok(()),
    }
}

#[test]
fn any_bytes_load_or_fail_with_bounded_printable_errors() {
    // The library loader and the error rendering, as `nexus validate` uses them.
    fn prop(input: TomlBytes) -> TestResult {
        let text = String::from_utf8_lossy(&input.0);
        let err = match nexus::config::parse(
            std::path::Path::new("nexus.toml"),
            std::path::Path::new("."),
            &text,
        ) {
            Ok(config) => {
                let all: Vec<usize> = (0..config.tasks.len()).collect();
                let diags = config.unset_env(&all);
                if diags.is_empty() {
                    return TestResult::passed();
                }
                nexus::error::Error::validation(diags)
            }
            Err(e) => e,
        };
        if err.exit_code != 2 {
            return TestResult::error(format!("exit code {}", err.exit_code));
        }
        match rendered_ok(&err.render(false)) {
            Ok(()) => TestResult::passed(),
            Err(why) => TestResult::error(why),
        }
    }
    QuickCheck::new()
        .tests(1000)
        .quickcheck(prop as fn(TomlBytes) -> TestResult);
}

#[test]
fn any_bytes_as_nexus_toml_exit_0_or_2_with_bounded_stderr() {
    // The binary, on the bytes as written (not made UTF-8 first).
    fn prop(input: TomlBytes) -> TestResult {
        let t = Test::new().args(&["validate"]);
        std::fs::write(t.path("nexus.toml"), &input.0).expect("write nexus.toml");
        let r = t.run();
        if r.code != 0 && r.code != 2 {
            return TestResult::error(r.show());
        }
        if r.stdout.len() > 1024 || r.stderr.contains("panicked") {
            return TestResult::error(r.show());
        }
        match rendered_ok(&r.stderr) {
            Ok(()) => TestResult::passed(),
            Err(why) => TestResult::error(why),
        }
    }
    QuickCheck::new()
        .tests(60)
        .quickcheck(prop as fn(TomlBytes) -> TestResult);
}
