//! Hostile and broken servers: a login environment that prints before the command, a
//! connection lost while a command runs, the kill of a remote process group, servers
//! that flood, trickle or stall at every step of connecting, and Ctrl-C or SIGTERM in
//! each of those steps. Test servers that are not sshd are threads on 127.0.0.1 started
//! and stopped by the test; sshd-based ones are `common::sshd::Server`s (stopped by PID).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::common::process::{descendants, kill_all};
use crate::common::sshd::{Keys, Server};
use crate::common::*;

/// A nexus.toml reaching `port` as the suite's user with the shared ed25519 key, known
/// hosts from `kh`, more `[config]` lines, then `body`.
fn toml(port: u16, kh: &Path, config: &str, body: &str) -> String {
    format!(
        "[config]\n{config}ssh_config = \"none\"\nknown_hosts = \"{kh}\"\nssh_identity = \"{id}\"\n\n[hosts]\nweb = [\"{u}@127.0.0.1:{port}\"]\n\n{body}",
        kh = kh.display(),
        id = Keys::get().key("id_ed25519").display(),
        u = user(),
    )
}

/// A test of `body` against `server`, with no real ~/.ssh and no agent.
fn server_test(server: &Server, body: &str) -> Test {
    isolated(Test::new().toml(&toml(server.port, &server.known_hosts(), "", body)))
}

fn isolated(t: Test) -> Test {
    let home = t.path("home");
    std::fs::create_dir_all(&home).unwrap();
    t.env("HOME", home.to_str().unwrap())
        .env("SSH_AUTH_SOCK", "")
}

fn host(port: u16) -> String {
    format!("{}@127.0.0.1:{port}", user())
}

// ---------------------------------------------------------------------------------------
// The remote kill

/// The debug lines about ending remote process groups, with the group id as N.
fn group_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(": remote process group "))
        .map(|l| {
            let (head, tail) = l.split_once(": remote process group ").unwrap();
            let rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
            format!("{head}: remote process group N{rest}")
        })
        .collect()
}

/// A command's timeout ends its remote process group with SIGTERM and stops waiting as
/// soon as no member is alive (zombies that a container's init has not reaped yet do
/// not count); only a group that outlives SIGTERM waits out the grace and gets SIGKILL.
#[test]
fn the_remote_kill_stops_waiting_once_the_group_is_gone() {
    let server = Server::openssh();
    let (quits, stays) = (marker(300, 40), marker(300, 41));
    let t = server_test(
        &server,
        &format!(
            r#"
[tasks.quits]
on = "web"
run = [{{ cmd = "sleep {quits} & sleep {quits}", timeout = "500ms" }}]

[tasks.stays]
on = "web"
run = [{{ cmd = "trap '' TERM; sleep {stays} & sleep {stays}", timeout = "500ms" }}]
"#
        ),
    );
    let h = host(server.port);
    let r = t
        .clone_args(&["run", "quits", "-q", "--log-level", "debug"])
        .run();
    r.expect_code(4).expect_stdout("TIMEOUT quits (X.Xs)\n");
    assert_eq!(
        group_lines(&r.stderr),
        [format!(
            "nexus: debug: ssh: {h}: remote process group N ended after SIGTERM"
        )],
        "{}",
        r.show()
    );
    let r = t
        .clone_args(&["run", "stays", "-q", "--log-level", "debug"])
        .run();
    r.expect_code(4).expect_stdout("TIMEOUT stays (X.Xs)\n");
    assert_eq!(
        group_lines(&r.stderr),
        [format!(
            "nexus: debug: ssh: {h}: remote process group N was still running 1s after SIGTERM; sent SIGKILL"
        )],
        "{}",
        r.show()
    );
    for m in [quits, stays] {
        let left = processes_matching(&format!("sleep {m}"));
        assert!(left.is_empty(), "remote processes survived: {left:?}");
    }
}

// ---------------------------------------------------------------------------------------
// A login environment that prints

/// An sshd whose ForceCommand runs `banner` (a shell line that prints something) and then
/// the command the client asked for, as a login script or /etc/profile might.
fn banner_server(banner: &str) -> (Server, TempDir) {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("login-banner");
    let wrapper = dir.path().join("login-wrapper");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\n{banner}\nexec sh -c \"$SSH_ORIGINAL_COMMAND\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = Server::openssh_with(&format!("ForceCommand {}", wrapper.display()));
    (server, dir)
}

/// What the login prints comes out as the command's output; nexus's process-group marker
/// never does, with or without a newline after the banner.
#[test]
fn a_login_banner_is_output_and_the_group_marker_never_is() {
    for (banner, first) in [
        (
            "echo 'Welcome to the test host'",
            "Welcome to the test host\n",
        ),
        ("printf 'No newline here: '", "No newline here: "),
    ] {
        let (server, _dir) = banner_server(banner);
        let t = server_test(
            &server,
            "[tasks.t]\non = \"web\"\nrun = \"echo hello; echo to-stderr >&2\"\n",
        );
        let r = t.clone_args(&["run", "t", "--format", "json"]).run();
        r.expect_code(0).expect_stderr("");
        let mut out = String::new();
        let mut err = String::new();
        for l in r.json_lines() {
            if l["event"] == "output" {
                let line = format!("{}\n", l["line"].as_str().unwrap());
                match l["stream"].as_str() {
                    Some("stdout") => out += &line,
                    _ => err += &line,
                }
            }
        }
        assert_text("stdout of the command", &out, &format!("{first}hello\n"));
        assert_text("stderr of the command", &err, "to-stderr\n");
    }
}

/// Behind a login that prints first, a command's timeout and Ctrl-C still end the remote
/// process (its process group is found after the banner).
#[test]
fn behind_a_login_banner_timeout_and_ctrl_c_end_the_remote_process() {
    for (tag, banner) in [
        (43, "echo 'Welcome to the test host'"),
        (44, "printf 'No newline here: '"),
    ] {
        let (server, _dir) = banner_server(banner);
        let sleep = marker(300, tag);
        let t = server_test(
            &server,
            &format!(
                "[tasks.t]\non = \"web\"\nrun = [{{ cmd = \"sleep {sleep}\", timeout = \"1s\" }}]\n[tasks.long]\non = \"web\"\nrun = [{{ cmd = \"sleep {sleep}\", timeout = \"10m\" }}]\n"
            ),
        );
        let shown = banner.split('\'').nth(1).unwrap();
        t.clone_args(&["run", "t", "-q"]).run().expect(
            4,
            "TIMEOUT t (X.Xs)\n",
            &format!(
                "
                Error: Command timed out

                  Host: {h}
                  Task: t
                  Command: sleep {sleep}
                  Timeout: 1s (command timeout)

                  Output:
                    {shown}

                  help: raise the command's `timeout` in task `t` if it needs longer

                ",
                h = host(server.port)
            ),
        );
        let left = processes_matching(&format!("sleep {sleep}"));
        assert!(left.is_empty(), "the remote sleep survived: {left:?}");

        let mut cmd = t.clone_args(&["run", "long", "-q"]).command();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = Stop(cmd.spawn().unwrap());
        wait_until("the remote sleep", Duration::from_secs(15), || {
            !processes_matching(&format!("sleep {sleep}")).is_empty()
        });
        child.signal(libc::SIGINT);
        // The sleep runs for 300 s: nexus ending before then means it stopped it.
        wait_within(&mut child, &cmd, Duration::from_secs(60)).expect(
            130,
            "cancelled long (X.Xs)\n",
            "",
        );
        let left = processes_matching(&format!("sleep {sleep}"));
        assert!(
            left.is_empty(),
            "the remote sleep survived Ctrl-C: {left:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// A connection lost while a command runs

/// The journal of the only run of `t`.
fn only_journal(t: &Test) -> Option<std::path::PathBuf> {
    let dir = t.path(".nexus-home/runs");
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert!(found.len() <= 1, "more than one journal: {found:?}");
    found.pop()
}

/// The `command_finish` records of task `task`: (status, exit code).
fn finishes(path: &Path, task: &str) -> Vec<(nexus::run::event::TaskStatus, Option<i32>)> {
    use nexus::state::record::Record;
    let Ok(read) = nexus::state::journal::read(path) else {
        return vec![];
    };
    read.records()
        .filter_map(|r| match r {
            Record::CommandFinish {
                task: t,
                status,
                exit_code,
                ..
            } if t == task => Some((*status, *exit_code)),
            _ => None,
        })
        .collect()
}

/// The session serving a command dies (its sshd process and everything under it are
/// killed): the command failed with a lost connection (exit 3), not success, and its
/// journal record says so, so that `nexus resume` runs it again.
#[test]
fn a_lost_connection_fails_the_command_and_resume_runs_it_again() {
    use nexus::run::event::TaskStatus;
    let server = Server::openssh();
    let (sleep, hold) = (marker(4, 45), marker(300, 46));
    let out = TempDir::new("lost-connection");
    let f = out.path().join("F");
    let t = server_test(
        &server,
        &format!(
            r#"
[tasks.remote]
on = "web"
run = [{{ cmd = "echo start; sleep {sleep}; echo done > {f}", timeout = "1m" }}]

[tasks.hold]
run = [{{ cmd = "test -f go || sleep {hold}", timeout = "10m" }}]

[tasks.all]
deps = ["remote", "hold"]
"#,
            f = f.display()
        ),
    );
    let h = host(server.port);
    // stdout to a file, read while the run goes on: nexus has the command's first line
    // before the connection is cut.
    let live = t.path("stdout");
    let mut cmd = t.clone_args(&["run", "all", "-v", "--plain"]).command();
    cmd.stdout(std::fs::File::create(&live).unwrap())
        .stderr(Stdio::piped());
    let mut child = Stop(cmd.spawn().unwrap());
    let started = format!("remote@{h} | start");
    wait_until(
        "nexus to show the command's first line",
        Duration::from_secs(15),
        || std::fs::read_to_string(&live).is_ok_and(|s| s.lines().any(|l| l == started)),
    );
    // The sshd process serving the session, its shell and the sleep: the connection
    // drops without an exit status.
    kill_all(&descendants(server.pid()));
    wait_until(
        "the journal to record the remote command",
        Duration::from_secs(15),
        || only_journal(&t).is_some_and(|p| !finishes(&p, "remote").is_empty()),
    );
    let journal = only_journal(&t).unwrap();
    assert_eq!(finishes(&journal, "remote"), [(TaskStatus::Failed, None)]);
    // The local task keeps the run going until now: interrupt it, so it can be resumed.
    child.signal(libc::SIGINT);
    let r = wait_within(&mut child, &cmd, Duration::from_secs(60));
    for m in [&hold, &sleep] {
        let left = processes_matching(&format!("sleep {m}"));
        assert!(left.is_empty(), "left running: {left:?}");
    }
    // The two tasks start side by side: their first lines come in either order.
    let mut shown: Vec<String> = mask(&std::fs::read_to_string(&live).unwrap())
        .lines()
        .map(String::from)
        .collect();
    shown.sort();
    let cmd_line = format!("echo start; sleep {sleep}; echo done > {}", f.display());
    let mut want: Vec<String> = [
        format!("* remote [{h}]"),
        "* hold".into(),
        format!("remote@{h} | $ {cmd_line}"),
        format!("hold | $ test -f go || sleep {hold}"),
        format!("remote@{h} | start"),
        "FAILED remote X.Xs".into(),
        format!("  `- {h} UNREACHABLE X.Xs"),
        "cancelled hold X.Xs".into(),
        String::new(),
        "Summary:".into(),
        "  FAILED    remote  X.Xs".into(),
        "  cancelled hold    X.Xs".into(),
        "  skipped   all     skipped".into(),
        "Interrupted in X.Xs: 0 succeeded, 1 failed, 1 cancelled, 1 skipped".into(),
    ]
    .to_vec();
    want.sort();
    assert_eq!(shown, want);
    r.expect(
        3,
        "",
        &format!(
            "
            Error: SSH connection failed

              Host: {h}
              Task: remote
              Command: echo start; sleep {sleep}; echo done > {f}
              Reason: the connection was lost while the command ran (transport read)

              Output:
                start

              help: check the host and the network; `nexus resume` runs the command again

            ",
            f = f.display()
        ),
    );
    assert!(!f.exists(), "the command finished after all");
    std::fs::write(t.path("go"), "").unwrap();
    let r = t.clone_args(&["resume", "-q"]).run();
    r.expect_code(0).expect_stderr("");
    // remote and hold run side by side: their lines come in either order.
    let mut lines: Vec<String> = mask(&r.stdout).lines().map(String::from).collect();
    lines.sort();
    assert_eq!(
        lines,
        ["ok all (X.Xs)", "ok hold (X.Xs)", "ok remote (X.Xs)"]
    );
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "done\n");
    assert_eq!(
        finishes(&journal, "remote"),
        [(TaskStatus::Failed, None), (TaskStatus::Success, Some(0))]
    );
}
