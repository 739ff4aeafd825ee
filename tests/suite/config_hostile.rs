//! nexus.toml files written to hurt: floods of errors, endless or huge files, names and
//! values that would reach a terminal or a shell, and the regression inputs fuzzing
//! found. Each test ran against the release before the fix and failed there.
//! Full-text assertions, like cli.rs.

use std::process::Stdio;
use std::time::Duration;

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

#[test]
fn many_unset_variables_show_the_first_twenty() {
    let mut toml = String::new();
    for i in 0..30 {
        toml += &format!("[tasks.t{i:02}]\nrun = 'echo {{{{ env(\"NEXUS_HOSTILE_UNSET\") }}}}'\n");
    }
    let mut expected = String::from("Error: Validation failed\n");
    for i in 0..20 {
        let line = 2 * i + 2;
        let pad = " ".repeat(line.to_string().len());
        expected += &format!(
            "\n  nexus.toml:{line}:13: task `t{i:02}` needs environment variable `NEXUS_HOSTILE_UNSET`, which is not set\n  {pad} |\n  {line} | run = 'echo {{{{ env(\"NEXUS_HOSTILE_UNSET\") }}}}'\n  {pad} |             {}\n  {pad} = help: set it (export NEXUS_HOSTILE_UNSET=...) or give a default: {{{{ env(\"NEXUS_HOSTILE_UNSET\", \"...\") }}}}\n",
            "^".repeat(32)
        );
    }
    expected += "\n  and 10 more problems, not shown\n\n  help: fix the ones above, then run `nexus validate` again to see the rest\n";
    Test::new()
        .toml(&toml)
        .args(&["validate"])
        .run()
        .expect(2, "", &expected);
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
                = help: task `a` takes: desc, deps, on, strategy, timeout, dir, env, continue_on_error, run
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
fn a_file_over_16_mib_is_refused_before_it_is_read() {
    let line = format!("# {}\n", "x".repeat(1021));
    let mut toml = line.repeat(16 * 1024);
    toml += "[tasks.a]\nrun = \"true\"\n";
    let t = Test::new().toml(&toml);
    let size = toml.len();
    let path = t.path("nexus.toml").display().to_string();
    t.args(&["validate"]).run().expect(
        2,
        "",
        &format!(
            "Error: cannot read {path}: the file is larger than 16 MiB ({size} bytes)\n\n  help: a nexus.toml may have at most 16 MiB (16777216 bytes); check that -c or NEXUS_CONFIG names the right file\n"
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
        "no runs\n",
        &format!(
            "warning: unreadable run journal {}/20260101T000000000Z-0001.jsonl: line 1: no checksum (truncated or not a journal line)\n",
            runs.display()
        ),
    );
}
