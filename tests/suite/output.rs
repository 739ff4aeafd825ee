//! What a run shows: command output on stdout and stderr as make and just show it, raw
//! for one task alone and `task | ` prefixed when tasks overlap, nexus's own lines on
//! stderr, `--output grouped` blocks, `-q`; and memory that stays bounded whatever a
//! command prints, in every mode.

use crate::common::rusage::run_peak_rss;
use crate::common::*;

/// Peak RSS allowed while a command floods output (the issue's limit is 64 MB; the
/// debug build's baseline is about 11 MB).
const MAX_RSS_KB: u64 = 64 * 1024;

#[test]
fn one_task_alone_prints_its_output_raw_and_nexus_lines_go_to_stderr() {
    let t = Test::new().toml(
        r#"
        [tasks.version]
        run = "printf '1.4.2\n'"
        [tasks.noisy]
        run = ["echo to-out", "echo to-err >&2", "printf 'no newline'"]
        "#,
    );
    // What `V=$(nexus run version)` captures is exactly what the command printed.
    t.clone_args(&["run", "version"]).run().expect(
        0,
        "1.4.2\n",
        "ok version X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
    t.clone_args(&["run", "noisy", "-q"])
        .run()
        .expect(0, "", "ok noisy (X.Xs)\n");
    t.clone_args(&["run", "noisy"]).run().expect(
        0,
        "to-out\nno newline",
        "to-err\nok noisy X.Xs\nCompleted in X.Xs: 1 succeeded\n",
    );
}

#[test]
fn overlapping_tasks_get_prefixes_and_grouped_prints_blocks() {
    // a and b overlap: each waits until the other has started before printing.
    let t = Test::new().toml(
        r#"
        [tasks.a]
        run = "touch a.started; while [ ! -e b.started ]; do sleep 0.01; done; echo a1; echo a-err >&2; sleep 0.1; echo a2"
        [tasks.b]
        run = "touch b.started; while [ ! -e a.started ]; do sleep 0.01; done; echo b1; sleep 0.1; echo b2"
        [tasks.both]
        deps = ["a", "b"]
        "#,
    );
    let r = t.clone_args(&["run", "both", "--output", "stream"]).run();
    r.expect_code(0);
    let mut out = log_lines(&r.stdout);
    out.sort();
    assert_eq!(
        out,
        ["a | a1", "a | a2", "b | b1", "b | b2"],
        "{}",
        r.show()
    );
    assert!(r.stderr.contains("a | a-err\n"), "{}", r.show());

    for f in ["a.started", "b.started"] {
        std::fs::remove_file(t.path(f)).unwrap();
    }
    let r = t.clone_args(&["run", "both", "--output", "grouped"]).run();
    r.expect_code(0);
    let out = log_lines(&r.stdout);
    let blocks = [
        ["a | a1", "a | a2", "b | b1", "b | b2"],
        ["b | b1", "b | b2", "a | a1", "a | a2"],
    ];
    assert!(
        blocks.iter().any(|b| out == b),
        "each task's output is one block:\n{}",
        r.show()
    );
}

#[test]
fn quiet_shows_output_only_for_a_failure() {
    let t = Test::new().toml(
        r#"
        [tasks.good]
        run = "echo fine"
        [tasks.bad]
        deps = ["good"]
        run = "echo the-reason; for i in $(seq 1 30); do echo noise-$i >&2; done; exit 2"
        "#,
    );
    let noise: String = (11..=30).map(|i| format!("    noise-{i}\n")).collect();
    t.clone_args(&["run", "bad", "-q"]).run().expect(
        1,
        "",
        &format!(
            "ok good (X.Xs)\nFAILED bad (X.Xs)\nError: Command failed\n\n  Host: local\n  Task: bad\n  Command: echo the-reason; for i in $(seq 1 30); do echo noise-$i >&2; done; exit 2\n  Exit code: 2\n\n  Output (last 20 lines):\n{noise}\n  Last lines on stdout:\n    the-reason\n\n  help: more of its output: nexus runs show RUN_ID\n\n"
        ),
    );
}

#[test]
fn a_failing_command_that_says_why_on_stdout_shows_it_in_the_report() {
    let t = Test::new().toml(
        r#"
        [tasks.test]
        run = "echo 'assertion failed: left == right'; for i in $(seq 1 5); do echo warn-$i >&2; done; exit 101"
        "#,
    );
    let r = t.clone_args(&["run", "test", "-q"]).run();
    r.expect(
        1,
        "",
        "FAILED test (X.Xs)\nError: Command failed\n\n  Host: local\n  Task: test\n  Command: echo 'assertion failed: left == right'; for i in $(seq 1 5); do echo warn-$i >&2; done; exit 101\n  Exit code: 101\n\n  Output:\n    assertion failed: left == right\n    warn-1\n    warn-2\n    warn-3\n    warn-4\n    warn-5\n\n",
    );
}

/// A command printing a lot, in every output mode: nexus's memory stays bounded (it
/// grew with the output before: 5.1 GB for 100 MB).
#[test]
fn memory_stays_bounded_whatever_a_command_prints() {
    let t = Test::new().toml(
        r#"
        [tasks.flood]
        run = "yes 'the quick brown fox jumps over the lazy dog, again and again, line after line.' | head -c 100000000"
        [tasks.longline]
        run = "head -c 50000000 /dev/zero | tr '\\0' 'x'"
        [tasks.json]
        run = "yes 'the quick brown fox jumps over the lazy dog, again and again, line after line.' | head -c 20000000"
        "#,
    );
    let cases: [(&str, &[&str]); 6] = [
        ("flood", &[]),
        ("flood", &["-v"]),
        ("flood", &["--output", "grouped"]),
        ("flood", &["-q"]),
        ("longline", &[]),
        ("json", &["--format", "json"]),
    ];
    for (task, extra) in cases {
        let mut c = t.command();
        c.args(["run", task]).args(extra);
        let (code, err, rss) = run_peak_rss(c);
        assert_eq!(code, 0, "{task} {extra:?}: {err}");
        assert!(
            rss < MAX_RSS_KB,
            "{task} {extra:?}: peak RSS {rss} KB (limit {MAX_RSS_KB} KB); stderr:\n{err}"
        );
    }
}

/// `--output grouped` with two tasks printing at once: the one held back goes through a
/// temporary file past 256 KiB, memory stays bounded, and both blocks arrive whole.
#[test]
fn grouped_output_held_back_stays_bounded_and_whole() {
    let t = Test::new().toml(
        r#"
        [tasks.a]
        run = "touch a.started; while [ ! -e b.started ]; do sleep 0.01; done; seq 1 400000 | sed 's/^/a-/'"
        [tasks.b]
        run = "touch b.started; while [ ! -e a.started ]; do sleep 0.01; done; seq 1 400000 | sed 's/^/b-/'"
        [tasks.both]
        deps = ["a", "b"]
        "#,
    );
    let mut c = t.command();
    c.args(["run", "both", "--output", "grouped"]);
    let (code, err, rss) = run_peak_rss(c);
    assert_eq!(code, 0, "{err}");
    assert!(rss < MAX_RSS_KB, "peak RSS {rss} KB");
    for f in ["a.started", "b.started"] {
        std::fs::remove_file(t.path(f)).unwrap();
    }
    let r = t.clone_args(&["run", "both", "--output", "grouped"]).run();
    r.expect_code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 800_000);
    let first = lines[0].split(" | ").next().unwrap_or("").to_string();
    let second = if first == "a" { "b" } else { "a" };
    for (i, l) in lines.iter().enumerate() {
        let (task, n) = if i < 400_000 {
            (first.as_str(), i + 1)
        } else {
            (second, i - 400_000 + 1)
        };
        assert_eq!(*l, format!("{task} | {task}-{n}"), "line {i}");
    }
}
