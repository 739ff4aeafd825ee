//! What a package ships besides the binary: the manual page of `nexus man`, rendered by
//! man-db without warnings, with every flag of `--help` on it.

use std::process::{Command, Stdio};

use crate::common::*;

/// `nexus man`, rendered by `man -l` at 80 columns: (stdout, stderr).
fn rendered_man_page() -> (String, String) {
    let t = Test::new().args(&["man"]);
    let run = t.run();
    run.expect_code(0).expect_stderr("");
    let page = t.path("nexus.1");
    std::fs::write(&page, &run.stdout).expect("write the page");
    let out = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(&page)
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8")
        .env_remove("MANPAGER")
        .env_remove("PAGER")
        .stdin(Stdio::null())
        .output()
        .expect("run man (man-db: scripts/ensure-deps.sh installs it)");
    assert!(out.status.success(), "man -l failed: {out:?}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_man_page_renders_without_warnings() {
    let (text, warnings) = rendered_man_page();
    assert_text("what man --warnings printed on stderr", &warnings, "");
    assert!(text.starts_with("NEXUS(1)"), "{text}");
    for section in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "COMMANDS",
        "OPTIONS",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "SEE ALSO",
    ] {
        assert!(
            text.lines().any(|l| l == section),
            "no section {section}:\n{text}"
        );
    }
}

/// The flags as `--help` shows them (`-c, --config PATH`), of the general help and of
/// every command's.
fn help_flags() -> Vec<String> {
    let general = Test::new().args(&["help"]).run().stdout.clone();
    let mut pages = vec![general.clone()];
    let commands = general
        .split("Commands:\n")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .expect("a Commands: list");
    for line in commands.lines() {
        let name = line.split_whitespace().next().expect("a command name");
        pages.push(Test::new().args(&["help", name]).run().stdout.clone());
    }
    let mut flags: Vec<String> = Vec::new();
    for page in pages {
        for line in page.lines() {
            let left = line.trim_start();
            if !left.starts_with('-') {
                continue;
            }
            let left = left.split("  ").next().unwrap_or(left).to_string();
            if !flags.contains(&left) {
                flags.push(left);
            }
        }
    }
    flags
}

#[test]
fn every_flag_of_help_is_on_the_man_page() {
    let (text, _) = rendered_man_page();
    let flags = help_flags();
    assert!(flags.len() >= 30, "the help lists the flags: {flags:?}");
    let missing: Vec<&String> = flags
        .iter()
        .filter(|f| !text.contains(f.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "not on the man page: {missing:?}\n{text}"
    );
    for c in ["nexus run TASK...", "nexus schema", "nexus man"] {
        assert!(text.contains(c), "no `{c}` on the man page");
    }
    // The exit codes and environment come from docs/output.md and docs/environment.md.
    for line in [
        "       130    interrupted (Ctrl-C, SIGTERM)",
        "       NEXUS_HOME",
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?}:\n{text}");
    }
}
