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
    r.expect_code(4).expect_stdout("");
    assert!(
        mask(&r.stderr).lines().any(|l| l == "TIMEOUT quits (X.Xs)"),
        "{}",
        r.show()
    );
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
    r.expect_code(4).expect_stdout("");
    assert!(
        mask(&r.stderr).lines().any(|l| l == "TIMEOUT stays (X.Xs)"),
        "{}",
        r.show()
    );
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
            "",
            &format!(
                "
                TIMEOUT t (X.Xs)
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
            "",
            "cancelled long (X.Xs)\n",
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
    // Only the command's output is on stdout.
    assert_eq!(
        mask(&std::fs::read_to_string(&live).unwrap()),
        format!("{started}\n")
    );
    // On stderr: the two tasks start side by side, so their first lines come in either
    // order; then the failure, its report, the cancelled task and the summary.
    assert_eq!(r.code, 3, "{}", r.show());
    let err = mask(&r.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() > 4, "{}", r.show());
    let mut first: Vec<&str> = lines[..4].to_vec();
    first.sort_unstable();
    let cmd_line = format!("echo start; sleep {sleep}; echo done > {}", f.display());
    let mut want = vec![
        format!("* remote [{h}]"),
        "* hold".into(),
        format!("remote@{h} | $ {cmd_line}"),
        format!("hold | $ test -f go || sleep {hold}"),
    ];
    want.sort();
    assert_eq!(first, want, "{}", r.show());
    let rest: String = lines[4..].iter().map(|l| format!("{l}\n")).collect();
    assert_text(
        "stderr after the task starts",
        &rest,
        &unindent(&format!(
            "
            FAILED remote X.Xs
              `- {h} UNREACHABLE X.Xs
            Error: SSH connection failed

              Host: {h}
              Task: remote
              Command: {cmd_line}
              Reason: the connection was lost while the command ran (transport read)

              Output:
                start

              help: check the host and the network; `nexus resume` runs the command again

            cancelled hold X.Xs

            Summary:
              FAILED    remote  X.Xs
              cancelled hold    X.Xs
              skipped   all     skipped
            Interrupted in X.Xs: 0 succeeded, 1 failed, 1 cancelled, 1 skipped
            "
        )),
    );
    assert!(!f.exists(), "the command finished after all");
    std::fs::write(t.path("go"), "").unwrap();
    let r = t.clone_args(&["resume", "-q"]).run();
    r.expect_code(0).expect_stdout("");
    // remote and hold run side by side: their lines come in either order.
    let mut lines: Vec<String> = mask(&r.stderr).lines().map(String::from).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "ok all (X.Xs)",
            "ok hold (X.Xs)",
            "ok remote (X.Xs)",
            "resuming run RUN_ID (all #1): nothing had finished; running remote, hold, all"
        ]
    );
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "done\n");
    assert_eq!(
        finishes(&journal, "remote"),
        [(TaskStatus::Failed, None), (TaskStatus::Success, Some(0))]
    );
}

// ---------------------------------------------------------------------------------------
// Servers that flood, trickle or stall

/// What a hostile server does with each connection, until told to stop.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// Says nothing (and reads nothing).
    Silent,
    /// CRLF lines of printable characters as fast as they go (like chargen).
    FloodLines,
    /// 100 MB without a newline, then nothing.
    FloodNoNewline,
    /// One byte (`x`, never a newline) every 250 ms.
    Trickle,
    /// A valid SSH banner, then a packet of 256 bytes, one byte every 250 ms.
    BannerThenTrickle,
    /// Closes the connection at once, before any byte (a busy sshd past MaxStartups).
    Close,
}

/// A TCP server on 127.0.0.1 behaving badly to every connection, each in a thread of its
/// own. Dropping it stops it: the threads end (every loop checks the stop flag) and are
/// joined, the sockets close.
struct Hostile {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Connections accepted so far.
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Hostile {
    fn start(how: Behaviour) -> Hostile {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (s, a) = (Arc::clone(&stop), Arc::clone(&accepted));
        let thread = std::thread::spawn(move || {
            let mut conns = Vec::new();
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((c, _)) => {
                        a.fetch_add(1, Ordering::SeqCst);
                        let s = Arc::clone(&s);
                        conns.push(std::thread::spawn(move || behave(c, how, &s)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        Hostile {
            port,
            stop,
            accepted,
            thread: Some(thread),
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The pause between two bytes of a trickle.
const TRICKLE: Duration = Duration::from_millis(250);

/// Serve one connection badly until `stop` (writes time out so that the flag is seen
/// even when the client reads nothing).
fn behave(mut c: std::net::TcpStream, how: Behaviour, stop: &std::sync::atomic::AtomicBool) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    let _ = c.set_nonblocking(false);
    let _ = c.set_write_timeout(Some(Duration::from_millis(100)));
    let running = || !stop.load(Ordering::SeqCst);
    let pause = |d: Duration| {
        let until = std::time::Instant::now() + d;
        while running() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Write all of `data` unless stopped or the client went away; false then.
    let mut send = |data: &[u8]| -> bool {
        let mut at = 0;
        while at < data.len() && running() {
            match c.write(&data[at..]) {
                Ok(n) => at += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return false,
            }
        }
        at == data.len()
    };
    match how {
        Behaviour::Close => {}
        Behaviour::Silent => pause(Duration::from_secs(600)),
        Behaviour::FloodLines => {
            let chars: Vec<u8> = (b' '..=b'~').collect();
            let mut block = Vec::new();
            for i in 0..chars.len() {
                block.extend((0..72).map(|j| chars[(i + j) % chars.len()]));
                block.extend_from_slice(b"\r\n");
            }
            while running() && send(&block) {}
        }
        Behaviour::FloodNoNewline => {
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..1600 {
                if !send(&chunk) {
                    return;
                }
            }
            pause(Duration::from_secs(600));
        }
        Behaviour::Trickle => {
            while running() && send(b"x") {
                pause(TRICKLE);
            }
        }
        Behaviour::BannerThenTrickle => {
            if !send(b"SSH-2.0-Hostile_1.0\r\n") {
                return;
            }
            // A packet of 256 bytes announced, then its bytes one at a time.
            for b in [0u8, 0, 1, 0].into_iter().chain(std::iter::repeat(b'x')) {
                if !running() || !send(&[b]) {
                    return;
                }
                pause(TRICKLE);
            }
        }
    }
}

/// A test of `body` reaching `port` (as the suite's user, the shared key, any host key
/// accepted: the hostile servers have none) with these `[config]` lines.
fn hostile_test(port: u16, config: &str, body: &str) -> Test {
    let t = Test::new();
    let kh = t.path("known_hosts");
    std::fs::write(&kh, "").unwrap();
    let config = format!("host_key_checking = \"accept-new\"\n{config}");
    isolated(t.toml(&toml(port, &kh, &config, body)))
}

/// `(it sent 12.3 MB of other data)` as `(it sent N of other data)`: how much a flood
/// gets through in the time is not fixed.
fn mask_amount(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("(it sent ") {
        let from = i + "(it sent ".len();
        out += &rest[..from];
        rest = &rest[from..];
        if let Some(j) = rest.find(" of other data)") {
            if j > 0
                && rest[..j]
                    .chars()
                    .all(|c| c.is_ascii_digit() || ". KMGB".contains(c))
            {
                out += "N";
                rest = &rest[j..];
            }
        }
    }
    out + rest
}

/// A server that floods (lines, or 100 MB without a newline) is cut off at the connect
/// timeout, with what it sent; nexus's memory stays bounded while it reads the flood.
#[test]
fn a_flooding_server_is_cut_off_at_the_connect_timeout_with_bounded_memory() {
    for how in [Behaviour::FloodLines, Behaviour::FloodNoNewline] {
        let server = Hostile::start(how);
        let t = hostile_test(
            server.port,
            "connect_timeout = \"2s\"\n",
            "[tasks.t]\non = \"web\"\ntimeout = \"5s\"\nrun = \"true\"\n",
        );
        let mut cmd = t.clone_args(&["run", "t", "-q"]).command();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = Stop(cmd.spawn().unwrap());
        let (r, peak_kib) =
            crate::common::process::wait_with_peak_rss(&mut child, &cmd, Duration::from_secs(60));
        let p = server.port;
        let r = Run {
            stderr: mask_amount(&r.stderr),
            ..r
        };
        r.expect(
            3,
            "",
            &format!(
                "
                FAILED t (X.Xs)
                Error: SSH connection failed

                  Host: {h}
                  Task: t
                  Command: true
                  Reason: the server at 127.0.0.1:{p} sent no SSH banner within 2s (it sent N of other data)

                  help: check that port {p} on 127.0.0.1 is an SSH server: its first line starts with SSH- (nc 127.0.0.1 {p})

                ",
                h = host(p)
            ),
        );
        assert!(
            peak_kib > 0 && peak_kib < 64 * 1024,
            "{how:?}: peak RSS of nexus {peak_kib} KiB"
        );
    }
}

/// The report of a run of task `t` (`true` on `web`) whose connection failed with `reason`
/// and these help lines.
fn connect_failure(port: u16, reason: &str, help: &[String]) -> String {
    let help: String = help.iter().map(|h| format!("  help: {h}\n")).collect();
    format!(
        "FAILED t (X.Xs)\nError: SSH connection failed\n\n  Host: {h}\n  Task: t\n  Command: true\n  Reason: {reason}\n\n{help}\n",
        h = host(port)
    )
}

/// The help lines for a port that may not be an SSH server.
fn not_ssh(port: u16) -> String {
    format!("check that port {port} on 127.0.0.1 is an SSH server: its first line starts with SSH- (nc 127.0.0.1 {port})")
}

fn slow(limit: &str) -> String {
    format!("if the server is only slow to answer, raise connect_timeout in [config] or ConnectTimeout in ssh_config (now {limit})")
}

/// A server that trickles bytes, says nothing, or stalls the key exchange byte by byte
/// is cut off at the connect timeout, and the error says which step it stalled (libssh2
/// alone said "SSH handshake failed: Timed out waiting on socket" for all three).
/// Silence and a stalled handshake may be a busy server and are tried 3 times; a server
/// that talks but never says SSH is not.
#[test]
fn trickling_silent_and_stalling_servers_are_cut_off_at_the_connect_timeout() {
    let run = |how: Behaviour| {
        let server = Hostile::start(how);
        let t = hostile_test(
            server.port,
            "connect_timeout = \"1s\"\n",
            "[tasks.t]\non = \"web\"\nrun = \"true\"\n",
        );
        let mut cmd = t.clone_args(&["run", "t", "-q"]).command();
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = Stop(cmd.spawn().unwrap());
        let r = wait_within(&mut child, &cmd, Duration::from_secs(60));
        (server.port, server.accepted(), r)
    };
    let (p, accepted, r) = run(Behaviour::Trickle);
    Run {
        stderr: mask_amount(&r.stderr),
        ..r
    }
    .expect(
        3,
        "",
        &connect_failure(
            p,
            &format!("the server at 127.0.0.1:{p} sent no SSH banner within 1s (it sent N of other data)"),
            &[not_ssh(p)],
        ),
    );
    assert_eq!(accepted, 1, "not tried again");
    let (p, accepted, r) = run(Behaviour::Silent);
    r.expect(
        3,
        "",
        &connect_failure(
            p,
            &format!("the server at 127.0.0.1:{p} sent no SSH banner within 1s (it sent nothing), 3 attempts"),
            &[not_ssh(p), slow("1s")],
        ),
    );
    assert_eq!(accepted, 3);
    let (p, accepted, r) = run(Behaviour::BannerThenTrickle);
    r.expect(
        3,
        "",
        &connect_failure(
            p,
            &format!("timed out after 1s during the SSH handshake with 127.0.0.1:{p}, 3 attempts"),
            &[not_ssh(p), slow("1s")],
        ),
    );
    assert_eq!(accepted, 3);
}

/// A server that closes every connection before its banner: each drop is tried again
/// (four times, apart from the three attempts: it may be a busy sshd past MaxStartups),
/// then the host fails with what happened, how often, and what to check.
#[test]
fn a_server_that_always_closes_before_its_banner_fails_after_the_drops_and_attempts() {
    let server = Hostile::start(Behaviour::Close);
    let p = server.port;
    let t = hostile_test(p, "", "[tasks.t]\non = \"web\"\nrun = \"true\"\n");
    let mut cmd = t.clone_args(&["run", "t", "-q"]).command();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Stop(cmd.spawn().unwrap());
    let r = wait_within(&mut child, &cmd, Duration::from_secs(60));
    r.expect(
        3,
        "",
        &connect_failure(
            p,
            &format!("the server at 127.0.0.1:{p} closed the connection before its SSH banner, 7 attempts"),
            &[
                not_ssh(p),
                "a busy sshd drops new connections (MaxStartups): its log says so".into(),
            ],
        ),
    );
    assert_eq!(server.accepted(), 7);
}

/// The task's timeout bounds connecting, its attempts and the waits between them: the
/// second attempt is cut off when the task's 4 s are up (attempts of 2 s and a wait of
/// 0.5 s would have run on to 7.5 s). Exit 4, saying how far connecting got.
#[test]
fn the_task_timeout_bounds_connecting_and_its_retries() {
    let server = Hostile::start(Behaviour::BannerThenTrickle);
    let p = server.port;
    let t = hostile_test(
        p,
        "connect_timeout = \"2s\"\n",
        "[tasks.t]\non = \"web\"\ntimeout = \"4s\"\nrun = \"true\"\n",
    );
    let mut cmd = t.clone_args(&["run", "t", "-q"]).command();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Stop(cmd.spawn().unwrap());
    wait_within(&mut child, &cmd, Duration::from_secs(60)).expect(
        4,
        "",
        &format!(
            "
            TIMEOUT t (X.Xs)
            Error: Command timed out

              Host: {h}
              Task: t
              Command: true
              Timeout: 4s (task timeout)
              Reason: connecting could not finish within the task's timeout: the SSH handshake with 127.0.0.1:{p} had not finished, 2 attempts

              help: raise `timeout` of task `t` (the whole task on one host)

            ",
            h = host(p)
        ),
    );
    assert_eq!(server.accepted(), 2);
}

/// An sshd whose key lookup (AuthorizedKeysCommand) sleeps `sleep` seconds: logins stall
/// in authentication, after a complete handshake.
fn stalling_auth_server(sleep: &str) -> Server {
    let bin = ["/usr/bin/sleep", "/bin/sleep"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("sleep(1)");
    // In a Match block, to override the server's AuthorizedKeysFile (sshd reads the
    // files first; with a key found there, the command would not run).
    Server::openssh_with(&format!(
        "Match all\n  AuthorizedKeysFile none\n  AuthorizedKeysCommand {bin} {sleep}\n  AuthorizedKeysCommandUser {}",
        user()
    ))
}

/// Stop the key lookups a stalled sshd left running.
fn stop_sleeps(marker: &str) {
    for p in processes_matching(&format!("sleep {marker}")) {
        if let Some(pid) = p.split(':').next().and_then(|s| s.parse::<u32>().ok()) {
            kill_all(&[pid]);
        }
    }
}

/// A login that stalls in authentication is cut off at the connect timeout too.
#[test]
fn a_login_stalled_in_authentication_is_cut_off_at_the_connect_timeout() {
    let sleep = marker(300, 47);
    let server = stalling_auth_server(&sleep);
    let t = isolated(Test::new().toml(&toml(
        server.port,
        &server.known_hosts(),
        "connect_timeout = \"1s\"\n",
        "[tasks.t]\non = \"web\"\nrun = \"true\"\n",
    )));
    let mut cmd = t.clone_args(&["run", "t", "-q"]).command();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Stop(cmd.spawn().unwrap());
    let r = wait_within(&mut child, &cmd, Duration::from_secs(60));
    stop_sleeps(&sleep);
    let p = server.port;
    r.expect(
        3,
        "",
        &connect_failure(
            p,
            &format!(
                "timed out after 1s during authentication as {u} at 127.0.0.1:{p}, 3 attempts",
                u = user()
            ),
            &[
                "sshd on 127.0.0.1 took too long to accept the login: its log says why (slow AuthorizedKeysCommand, DNS, PAM)".into(),
                slow("1s"),
            ],
        ),
    );
}

// ---------------------------------------------------------------------------------------
// Ctrl-C and SIGTERM while connecting

/// Whether a TCP connection from here to 127.0.0.1:`port` is waiting for its SYN to be
/// answered (SYN_SENT in /proc/net/tcp).
fn syn_sent_to(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[2] == want && f[3] == "02"
        })
}

/// A listener whose accept queue is full (backlog 0, one connection queued and never
/// accepted): the kernel drops further SYNs, so a connect waits for its timeout.
fn full_listener() -> (std::net::TcpListener, std::net::TcpStream, u16) {
    use std::os::fd::AsRawFd;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // SAFETY: listen(2) again on our own listening socket, to shrink its backlog.
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
    let port = l.local_addr().unwrap().port();
    let queued = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    (l, queued, port)
}

/// Run `t`'s `args` until `ready` says nexus is in the step under test, then send
/// `signal`; nexus must end (before the 5 min connect timeout could) as cancelled.
fn interrupted(t: &Test, args: &[&str], signal: i32, mut ready: impl FnMut() -> bool) -> Run {
    let mut cmd = t.clone_args(args).command();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Stop(cmd.spawn().unwrap());
    wait_until(
        "nexus to reach the step",
        Duration::from_secs(20),
        &mut ready,
    );
    child.signal(signal);
    wait_within(&mut child, &cmd, Duration::from_secs(30))
}

/// Ctrl-C and SIGTERM end a run at once whatever step of connecting it is in: the TCP
/// connect (SYNs unanswered), the wait for the banner (a server trickling bytes), the
/// handshake (a server stalling the key exchange) and authentication (an sshd whose key
/// lookup sleeps). The connect timeout is 5 minutes: only the signal ends these.
#[test]
fn ctrl_c_and_sigterm_end_a_run_in_every_step_of_connecting() {
    let body = "[tasks.t]\non = \"web\"\nrun = \"true\"\n";
    let config = "connect_timeout = \"5m\"\n";
    let sleep = marker(300, 48);
    let auth = stalling_auth_server(&sleep);
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let (_listener, _queued, port) = full_listener();
        let t = hostile_test(port, config, body);
        interrupted(&t, &["run", "t", "-q"], signal, || syn_sent_to(port)).expect(
            130,
            "",
            "cancelled t (X.Xs)\n",
        );
        for how in [Behaviour::Trickle, Behaviour::BannerThenTrickle] {
            let server = Hostile::start(how);
            let t = hostile_test(server.port, config, body);
            interrupted(&t, &["run", "t", "-q"], signal, || server.accepted() > 0).expect(
                130,
                "",
                "cancelled t (X.Xs)\n",
            );
        }
        let t = isolated(Test::new().toml(&toml(auth.port, &auth.known_hosts(), config, body)));
        interrupted(&t, &["run", "t", "-q"], signal, || {
            !processes_matching(&format!("sleep {sleep}")).is_empty()
        })
        .expect(130, "", "cancelled t (X.Xs)\n");
        stop_sleeps(&sleep);
    }
}

/// `nexus preflight` ends on Ctrl-C or SIGTERM as a run does, in its connectivity check
/// (a TCP connect that waits), in its login check (a stalled handshake), and through a
/// ProxyCommand, whose process group it ends (it is not in nexus's group, so a signal to
/// nexus alone would leave it running): exit 130, no report.
#[test]
fn ctrl_c_and_sigterm_end_preflight() {
    let body = "[tasks.t]\non = \"web\"\nrun = \"true\"\n";
    let args = ["preflight", "t", "--timeout", "5m"];
    for (signal, tag) in [(libc::SIGINT, 49), (libc::SIGTERM, 50)] {
        let (_listener, _queued, port) = full_listener();
        let t = hostile_test(port, "", body);
        interrupted(&t, &args, signal, || syn_sent_to(port)).expect(130, "", "");
        let server = Hostile::start(Behaviour::BannerThenTrickle);
        let t = hostile_test(server.port, "connect_timeout = \"5m\"\n", body);
        // The connectivity check reads the banner on one connection; the login is the
        // second.
        interrupted(&t, &args, signal, || server.accepted() > 1).expect(130, "", "");
        // Through a ProxyCommand that says nothing (the connectivity check goes to the
        // server itself).
        let sleep = marker(300, tag);
        let t = Test::new();
        let toml = format!(
            "[config]\nssh_config = \"{cfg}\"\nknown_hosts = \"{kh}\"\nhost_key_checking = \"accept-new\"\nconnect_timeout = \"5m\"\nssh_identity = \"{id}\"\n[hosts]\nweb = [\"viaproxy\"]\n{body}",
            cfg = t.path("ssh_config").display(),
            kh = t.path("known_hosts").display(),
            id = Keys::get().key("id_ed25519").display(),
        );
        let ssh_config = format!(
            "Host viaproxy\n  HostName 127.0.0.1\n  Port {p}\n  User {u}\n  ProxyCommand sleep {sleep}\n",
            p = server.port,
            u = user()
        );
        let t = isolated(t.file("ssh_config", &ssh_config).toml(&toml));
        let r = interrupted(&t, &args, signal, || {
            !processes_matching(&format!("sleep {sleep}")).is_empty()
        });
        let left = processes_matching(&format!("sleep {sleep}"));
        stop_sleeps(&sleep);
        r.expect(130, "", "");
        assert!(left.is_empty(), "the ProxyCommand survived: {left:?}");
    }
}

/// Pre-flight's `--timeout` bounds each check against a server that stalls: the
/// connectivity check shows its banner, the login check fails at the timeout (no
/// attempts beyond it).
#[test]
fn preflight_timeout_bounds_a_stalled_login() {
    let server = Hostile::start(Behaviour::BannerThenTrickle);
    let p = server.port;
    let t = hostile_test(p, "", "[tasks.t]\non = \"web\"\nrun = \"true\"\n");
    let mut cmd = t
        .clone_args(&["preflight", "t", "--timeout", "2s", "--skip-disk-check"])
        .command();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Stop(cmd.spawn().unwrap());
    let r = wait_within(&mut child, &cmd, Duration::from_secs(60));
    // The connect latency varies.
    let at = format!("(127.0.0.1:{p}, ");
    let stdout: String = r
        .stdout
        .lines()
        .map(|l| match (l.find(&at), l.find("ms, ")) {
            (Some(i), Some(j)) if i < j => format!("{}Nms{}\n", &l[..i + at.len()], &l[j + 2..]),
            _ => format!("{l}\n"),
        })
        .collect();
    Run { stdout, ..r }.expect(
        3,
        &format!(
            "
            Pre-flight checks for: t

            Configuration
              ok   nexus.toml valid
              ok   task t exists
              ok   dependencies resolved: t

            Host Connectivity [1/1]
              ok   {h}  (127.0.0.1:{p}, Nms, SSH-2.0-Hostile_1.0)

            SSH Authentication [0/1]
              FAIL {h}  timed out after 2s during the SSH handshake with 127.0.0.1:{p}

            FAIL Pre-flight checks failed (1 error)

            Errors:
              1. {h}: timed out after 2s during the SSH handshake with 127.0.0.1:{p}
                 help: {not_ssh}
                 help: if the server is only slow to answer, raise --timeout (now 2s)

            Run with --force to skip failed hosts and continue with available hosts.
            ",
            h = host(p),
            not_ssh = not_ssh(p)
        ),
        "",
    );
    assert_eq!(
        server.accepted(),
        2,
        "one connection per check, no second attempt"
    );
}

/// Ctrl-C while a remote command runs on a server that then stops answering (its
/// session process frozen with SIGSTOP): the kill of the remote group cannot get
/// through, and nexus still ends soon (the kill is bounded as a whole, not by libssh2's
/// per-call timeouts, which added up to some 7 s). The bound asserted is generous.
#[test]
fn ctrl_c_ends_a_run_whose_server_froze() {
    let server = Server::openssh();
    let sleep = marker(300, 51);
    let t = server_test(
        &server,
        &format!(
            "[tasks.t]\non = \"web\"\nrun = [{{ cmd = \"sleep {sleep}\", timeout = \"10m\" }}]\n"
        ),
    );
    let mut cmd = t.clone_args(&["run", "t", "-q"]).command();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Stop(cmd.spawn().unwrap());
    wait_until("the remote sleep", Duration::from_secs(20), || {
        !processes_matching(&format!("sleep {sleep}")).is_empty()
    });
    let session: Vec<u32> = descendants(server.pid())
        .into_iter()
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sshd")
        })
        .collect();
    assert!(!session.is_empty(), "no sshd session process");
    let frozen = Frozen::stop(session, server.pid(), &sleep);
    let started = std::time::Instant::now();
    child.signal(libc::SIGINT);
    let r = wait_within(&mut child, &cmd, Duration::from_secs(30));
    let took = started.elapsed();
    drop(frozen);
    // The kill could not get through: nexus says so, with the group to end by hand.
    r.expect_code(130).expect_stdout("");
    let pgid = r
        .stderr
        .split("(process group ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or("?")
        .to_string();
    let h = format!("{}@127.0.0.1:{}", crate::common::user(), server.port);
    assert_text(
        "stderr",
        &crate::common::mask(&r.stderr),
        &format!(
            "nexus: warn: {h}: could not end the remote command (process group {pgid}): it may still be running; `ssh {h} kill -TERM -{pgid}` ends it\ncancelled t (X.Xs)\n"
        ),
    );
    assert!(
        took < Duration::from_secs(5),
        "nexus took {took:?} to end after Ctrl-C"
    );
}

/// Processes frozen with SIGSTOP; when dropped (also when the test fails) they go on and
/// the server's sessions and the test's sleeps are killed.
struct Frozen {
    pids: Vec<u32>,
    server: u32,
    sleep: String,
}

impl Frozen {
    fn stop(pids: Vec<u32>, server: u32, sleep: &str) -> Frozen {
        for &p in &pids {
            // SAFETY: freezing processes of a server this test started, by PID.
            unsafe {
                libc::kill(p as i32, libc::SIGSTOP);
            }
        }
        Frozen {
            pids,
            server,
            sleep: sleep.to_string(),
        }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for &p in &self.pids {
            // SAFETY: as in `stop`.
            unsafe {
                libc::kill(p as i32, libc::SIGCONT);
            }
        }
        kill_all(&descendants(self.server));
        stop_sleeps(&self.sleep);
    }
}

/// A server that stops answering while a command runs (its session process frozen with
/// SIGSTOP: the TCP connection stays up, nothing comes back) is found by keepalives,
/// ServerAliveInterval × (ServerAliveCountMax + 1) after it last said anything, and is
/// an SSH error (exit 3), not a hang: there is no timeout by default (issue 11).
#[test]
fn keepalives_find_a_server_that_stopped_answering() {
    let server = Server::openssh();
    let sleep = marker(300, 52);
    let t = isolated(Test::new());
    let ssh_config = t.path("ssh_config");
    std::fs::write(
        &ssh_config,
        "Host *\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n",
    )
    .unwrap();
    let t = t.file(
        "nexus.toml",
        &format!(
            "[config]\nssh_config = \"{cfg}\"\nknown_hosts = \"{kh}\"\nssh_identity = \"{id}\"\n[hosts]\nweb = [\"{h}\"]\n[tasks.quiet]\non = \"web\"\nrun = \"sleep 4\"\n[tasks.t]\non = \"web\"\nrun = \"sleep {sleep}\"\n",
            cfg = ssh_config.display(),
            kh = server.known_hosts().display(),
            id = Keys::get().key("id_ed25519").display(),
            h = host(server.port),
        ),
    );
    // A silent command on a server that answers its keepalives runs as long as it runs.
    t.clone_args(&["run", "quiet", "-q"])
        .run()
        .expect(0, "", "ok quiet (X.Xs)\n");
    let mut cmd = t.clone_args(&["run", "t", "-q"]).command();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Stop(cmd.spawn().unwrap());
    wait_until("the remote sleep", Duration::from_secs(20), || {
        !processes_matching(&format!("sleep {sleep}")).is_empty()
    });
    let session: Vec<u32> = descendants(server.pid())
        .into_iter()
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "sshd")
        })
        .collect();
    assert!(!session.is_empty(), "no sshd session process");
    let frozen = Frozen::stop(session, server.pid(), &sleep);
    let r = wait_within(&mut child, &cmd, Duration::from_secs(60));
    drop(frozen);
    r.expect(
        3,
        "",
        &format!(
            "
            FAILED t (X.Xs)
            Error: SSH connection failed

              Host: {h}
              Task: t
              Command: sleep {sleep}
              Reason: the connection was lost: the server sent nothing for 3s (ServerAliveInterval 1, ServerAliveCountMax 2)

              help: check the host and the network; `nexus resume` runs the command again
              help: ServerAliveInterval and ServerAliveCountMax in ssh_config set how long nexus waits

            ",
            h = host(server.port),
        ),
    );
}

/// Two hosts behind one endpoint that never answers, one handshake at a time
/// (`handshakes_per_endpoint = 1`), and a task timeout shorter than the connect timeout:
/// one host holds the turn until the timeout, the other waits for it, and its report
/// says it never got one (not that the server sent no banner: it was never asked).
/// Only one connection reaches the server.
#[test]
fn a_host_that_waited_for_its_handshake_turn_says_so_at_the_timeout() {
    let server = Hostile::start(Behaviour::Silent);
    let p = server.port;
    let t = Test::new();
    let kh = t.path("known_hosts");
    std::fs::write(&kh, "").unwrap();
    let t = isolated(t.toml(&format!(
        "[config]\nhandshakes_per_endpoint = 1\nconnect_timeout = \"10s\"\nhost_key_checking = \"accept-new\"\nssh_config = \"none\"\nknown_hosts = \"{kh}\"\n\n[hosts]\nweb = [\"a@127.0.0.1:{p}\", \"b@127.0.0.1:{p}\"]\n\n[tasks.t]\non = \"web\"\ntimeout = \"2s\"\nrun = \"true\"\n",
        kh = kh.display(),
    )));
    let mut cmd = t.clone_args(&["run", "t", "-q"]).command();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = Stop(cmd.spawn().unwrap());
    let r = wait_within(&mut child, &cmd, Duration::from_secs(30));
    let report = |host: &str, reason: &str, help: &str| {
        format!(
            "Error: Command timed out\n\n  Host: {host}@127.0.0.1:{p}\n  Task: t\n  Command: true\n  Timeout: 2s (task timeout)\n  Reason: connecting could not finish within the task's timeout: {reason}\n\n  help: {help}\n  help: raise `timeout` of task `t` (the whole task on one host)\n\n"
        )
    };
    let silent = |host: &str| {
        report(
            host,
            &format!("no SSH banner had come from 127.0.0.1:{p} yet (it sent nothing)"),
            &not_ssh(p),
        )
    };
    let waited = |host: &str| {
        report(
            host,
            &format!("no turn to connect to 127.0.0.1:{p} came in time: other hosts behind it were connecting"),
            "raise handshakes_per_endpoint in [config] (and MaxStartups on that server), or the task's timeout",
        )
    };
    let head = "TIMEOUT t (X.Xs)\n";
    // Which host takes the one turn first is up to the threads.
    let a_first = format!("{head}{}{}", silent("a"), waited("b"));
    let b_first = format!("{head}{}{}", waited("a"), silent("b"));
    let got = mask(&r.stderr);
    assert_eq!(r.code, 4, "{}", r.show());
    assert!(got == a_first || got == b_first, "{}", diff(&a_first, &got));
    assert_eq!(server.accepted(), 1, "the waiting host connected anyway");
}
