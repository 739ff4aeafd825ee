//! What a package ships besides the binary: the manual page of `nexus man` (rendered by
//! man-db without warnings, every flag of `--help` on it), and `make install`, which puts
//! the binary, the page and the three completion scripts where docs/install.md says.

use std::path::{Path, PathBuf};
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

/// The files docs/install.md says `make install` installs, under `prefix`.
fn documented_files(prefix: &str) -> Vec<String> {
    let md = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/install.md"))
        .expect("docs/install.md");
    md.lines()
        .filter(|l| l.starts_with('|'))
        .filter_map(|l| l.split("`$(PREFIX)").nth(1))
        .filter_map(|rest| rest.split('`').next())
        .map(|path| format!("{prefix}{path}"))
        .collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn make(target: &str, destdir: &Path) -> std::process::Output {
    Command::new("make")
        .args([
            "-s",
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            target,
            "PREFIX=/usr",
        ])
        .arg(format!("DESTDIR={}", destdir.display()))
        .arg(format!("INSTALL_BIN={BIN}"))
        .stdin(Stdio::null())
        .output()
        .expect("run make")
}

#[test]
fn make_install_puts_the_files_where_the_docs_say() {
    let dest = TempDir::new("install");
    let out = make("install", dest.path());
    assert!(out.status.success(), "make install: {out:?}");
    let expected = documented_files("/usr");
    assert_eq!(
        expected.len(),
        5,
        "the table of docs/install.md: {expected:?}"
    );
    let want: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = expected
            .iter()
            .map(|p| dest.path().join(p.trim_start_matches('/')))
            .collect();
        v.sort();
        v
    };
    assert_eq!(files_under(dest.path()), want, "what make install wrote");
    let generated = |args: &[&str]| Test::new().args(args).run().stdout.clone();
    let read = |p: &str| std::fs::read_to_string(dest.path().join(p)).expect(p);
    assert_eq!(read("usr/share/man/man1/nexus.1"), generated(&["man"]));
    assert_eq!(
        read("usr/share/bash-completion/completions/nexus"),
        generated(&["completions", "bash"])
    );
    assert_eq!(
        read("usr/share/zsh/site-functions/_nexus"),
        generated(&["completions", "zsh"])
    );
    assert_eq!(
        read("usr/share/fish/vendor_completions.d/nexus.fish"),
        generated(&["completions", "fish"])
    );
    let installed = dest.path().join("usr/bin/nexus");
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777
    };
    assert_eq!(mode(&installed), 0o755);
    assert_eq!(mode(&dest.path().join("usr/share/man/man1/nexus.1")), 0o644);
    assert_eq!(std::fs::read(&installed).ok(), std::fs::read(BIN).ok());

    let out = make("uninstall", dest.path());
    assert!(out.status.success(), "make uninstall: {out:?}");
    assert_eq!(
        files_under(dest.path()),
        Vec::<PathBuf>::new(),
        "left after uninstall"
    );
}
