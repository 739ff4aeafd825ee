//! SSH tests against real servers the suite starts on 127.0.0.1: OpenSSH sshd and
//! dropbear, with throwaway host and client keys, logging in as the user running the suite
//! (the only one a server started by a normal user lets in). A missing server binary
//! fails the test with the command that installs it. Two tests need root and are skipped
//! with a `SKIP` line otherwise: sudo, and dropbear (which needs a user of its own).

use std::path::Path;
use std::time::Duration;

use crate::common::sshd::{Keys, Server};
use crate::common::*;

/// A test whose nexus.toml reaches `server` as the current user with `key`.
fn ssh_test(server: &Server, key: &str, body: &str) -> Test {
    ssh_test_with(server, key, body, &server.known_hosts(), "")
}

/// `ssh_test` with another known_hosts file and more `[config]` lines.
fn ssh_test_with(server: &Server, key: &str, body: &str, kh: &Path, config: &str) -> Test {
    let keys = Keys::get();
    let toml = format!(
        "[config]\n{config}ssh_config = \"none\"\nknown_hosts = \"{kh}\"\nssh_identity = \"{id}\"\n\n[hosts]\nweb = [\"{u}@127.0.0.1:{port}\"]\n\n{body}",
        u = user(),
        kh = kh.display(),
        id = keys.key(key).display(),
        port = server.port,
    );
    isolated(Test::new().toml(&toml))
}

/// No real ~/.ssh, no agent: only what the test configures.
pub(crate) fn isolated(t: Test) -> Test {
    let home = t.path("home");
    std::fs::create_dir_all(&home).unwrap();
    t.env("HOME", home.to_str().unwrap())
        .env("SSH_AUTH_SOCK", "")
}

fn host(server: &Server) -> String {
    format!("{}@127.0.0.1:{}", user(), server.port)
}

#[test]
fn openssh_runs_commands_with_each_key_type() {
    let server = Server::openssh();
    for key in ["id_ed25519", "id_ecdsa", "id_rsa"] {
        let t = ssh_test(
            &server,
            key,
            r#"
[tasks.hello]
on = "web"
run = ["echo out-{{ host }} $NEXUS_TASK", "echo err-line >&2", "exit 7"]
"#,
        )
        .args(&["run", "hello", "--format", "json"]);
        let r = t.run();
        r.expect_code(1).expect_stderr("");
        let lines = r.json_lines();
        let h = host(&server);
        let outputs: Vec<(String, String)> = lines
            .iter()
            .filter(|l| l["event"] == "output")
            .map(|l| {
                (
                    l["stream"].as_str().unwrap().to_string(),
                    l["line"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            outputs,
            vec![
                ("stdout".to_string(), format!("out-{h} hello")),
                ("stderr".to_string(), "err-line".to_string())
            ],
            "key {key}"
        );
        let codes: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["event"] == "command_finish")
            .map(|l| &l["exit_code"])
            .collect();
        assert_eq!(codes, [0, 0, 7], "key {key}");
        assert!(lines
            .iter()
            .filter(|l| l["host"].is_string())
            .all(|l| l["host"] == h));
    }
}

#[test]
fn wrong_key_fails_with_exit_3_naming_host_and_identities() {
    let server = Server::openssh();
    let t = ssh_test(
        &server,
        "wrong_ed25519",
        "[tasks.t]\non = \"web\"\nrun = \"true\"\n",
    )
    .args(&["run", "t", "-q"]);
    let r = t.run();
    let home = t.path("home");
    let wrong = Keys::get().key("wrong_ed25519");
    r.expect(3, "", &format!(
            "
            FAILED t (X.Xs)
            Error: SSH connection failed

              Host: {h}
              Task: t
              Command: true
              Reason: Authentication failed for user {u}; tried: {w} (rejected), ssh-agent (SSH_AUTH_SOCK is not set), {home}/.ssh/id_ed25519 (not found), {home}/.ssh/id_ecdsa (not found), {home}/.ssh/id_rsa (not found), password (not asked: no terminal or CI is set)

              help: check that the public key is in ~{u}/.ssh/authorized_keys on 127.0.0.1
              help: name the key with -i PATH, ssh_identity in nexus.toml, or IdentityFile in ssh_config
              help: load it into ssh-agent: ssh-add PATH

            ",
            h = host(&server),
            u = user(),
            w = wrong.display(),
            home = home.display()
        ),
    );
}

#[test]
fn strict_rejects_an_unknown_host() {
    let server = Server::openssh();
    let t = ssh_test(
        &server,
        "id_ed25519",
        "[tasks.t]\non = \"web\"\nrun = \"true\"\n",
    )
    .args(&["run", "t", "-q"]);
    let kh = server.dir.path().join("known_hosts");
    std::fs::write(&kh, "").unwrap();
    t.run().expect(3, "", &format!(
            r#"
            FAILED t (X.Xs)
            Error: SSH connection failed

              Host: {h}
              Task: t
              Command: true
              Reason: host key of [127.0.0.1]:{p} is not in {kh} (host_key_checking = "strict"); its ssh-ed25519 key is {fp}

              help: add it after checking the fingerprint: ssh-keyscan -p {p} 127.0.0.1 >> {kh}
              help: or set host_key_checking = "accept-new" to trust keys on first use

            "#,
            h = host(&server),
            p = server.port,
            kh = kh.display(),
            fp = server.fingerprint(),
        ),
    );
}

/// A changed host key: exit 3, the key type and fingerprint, and the known_hosts
/// file:line it contradicts.
#[track_caller]
fn assert_changed_key(
    r: &Run,
    port: u16,
    key_type: &str,
    fingerprint: &str,
    kh: &Path,
    line: usize,
) {
    r.expect(3, "", &format!(
            "
            FAILED t (X.Xs)
            Error: SSH connection failed

              Host: {u}@127.0.0.1:{port}
              Task: t
              Command: true
              Reason: HOST KEY CHANGED for [127.0.0.1]:{port}: the server's {key_type} key is {fingerprint}, which does not match {kh}:{line}

              help: someone may be intercepting the connection (man-in-the-middle), or the host was reinstalled
              help: if the change is expected, remove the old key: ssh-keygen -R '[127.0.0.1]:{port}' -f {kh}

            ",
            u = user(),
            kh = kh.display(),
        ),
    );
}

#[test]
fn accept_new_writes_the_key_then_a_changed_key_is_refused_with_its_line() {
    let server = Server::openssh();
    let kh = server.dir.path().join("kh-new");
    let body = "[tasks.t]\non = \"web\"\nrun = \"true\"\n";
    let t = ssh_test_with(
        &server,
        "id_ed25519",
        body,
        &kh,
        "host_key_checking = \"accept-new\"\n",
    )
    .args(&["run", "t", "-q"]);
    t.run().expect(0, "", "ok t (X.Xs)\n");
    let written = std::fs::read_to_string(&kh).unwrap();
    assert_eq!(
        written,
        format!("[127.0.0.1]:{} {}\n", server.port, server.host_key)
    );
    t.run().expect(0, "", "ok t (X.Xs)\n");

    // Another key for the same host on line 2: the server's key no longer matches.
    let other = Server::openssh();
    std::fs::write(
        &kh,
        format!(
            "# comment\n[127.0.0.1]:{} {}\n",
            server.port, other.host_key
        ),
    )
    .unwrap();
    assert_changed_key(
        &t.run(),
        server.port,
        "ssh-ed25519",
        &server.fingerprint(),
        &kh,
        2,
    );
}

/// `ssh-ed25519 AAAA...` of a public key file.
fn public_key(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_revoked_host_key_is_refused_with_its_line() {
    let server = Server::openssh();
    let kh = server.dir.path().join("kh-revoked");
    std::fs::write(
        &kh,
        format!(
            "# comment\n@revoked [127.0.0.1]:{} {}\n",
            server.port, server.host_key
        ),
    )
    .unwrap();
    let body = "[tasks.t]\non = \"web\"\nrun = \"true\"\n";
    let r = ssh_test_with(&server, "id_ed25519", body, &kh, "")
        .args(&["run", "t", "-q"])
        .run();
    r.expect(3, "", &format!(
            "
            FAILED t (X.Xs)
            Error: SSH connection failed

              Host: {h}
              Task: t
              Command: true
              Reason: the ssh-ed25519 key {fp} of [127.0.0.1]:{p} is marked @revoked in {kh}:2

              help: the server still uses a key its administrators revoked: ask them which key is current

            ",
            h = host(&server),
            fp = server.fingerprint(),
            p = server.port,
            kh = kh.display(),
        ),
    );
}

#[test]
fn a_host_known_by_its_ecdsa_key_is_asked_for_that_key_and_hashed_names_match() {
    // The server has ed25519 and ECDSA host keys; known_hosts knows only the ECDSA one,
    // under a hashed name. nexus prefers ed25519 unless known_hosts says otherwise.
    let keys_dir = TempDir::new("hostkeys");
    let ecdsa = keys_dir.path().join("host_ecdsa");
    crate::common::sshd::keygen(&ecdsa, "ecdsa", None);
    let server = Server::openssh_with(&format!("HostKey {}", ecdsa.display()));
    let kh = server.dir.path().join("kh-ecdsa");
    let ecdsa_pub = public_key(&ecdsa.with_extension("pub"));
    std::fs::write(&kh, format!("[127.0.0.1]:{} {ecdsa_pub}\n", server.port)).unwrap();
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-H", "-f"])
        .arg(&kh)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let hashed = std::fs::read_to_string(&kh).unwrap();
    assert!(hashed.starts_with("|1|"), "{hashed}");

    let body = "[tasks.t]\non = \"web\"\nrun = \"true\"\n";
    let t = ssh_test_with(&server, "id_ed25519", body, &kh, "").args(&["run", "t", "-q"]);
    t.run().expect(0, "", "ok t (X.Xs)\n");

    // Another ECDSA key on line 2 for the host: a changed key, reported with its line.
    let other = keys_dir.path().join("other_ecdsa");
    crate::common::sshd::keygen(&other, "ecdsa", None);
    std::fs::write(
        &kh,
        format!(
            "# comment\n[127.0.0.1]:{} {}\n",
            server.port,
            public_key(&other.with_extension("pub"))
        ),
    )
    .unwrap();
    assert_changed_key(
        &t.run(),
        server.port,
        "ecdsa-sha2-nistp256",
        &crate::common::sshd::fingerprint(&ecdsa.with_extension("pub")),
        &kh,
        2,
    );
}

#[test]
fn key_exchange_falls_back_to_curve25519_and_follows_kexalgorithms() {
    // A server without NIST curves: nexus's default list (P-256 first) still connects.
    let server = Server::openssh_with("KexAlgorithms curve25519-sha256");
    let t = ssh_test(
        &server,
        "id_ed25519",
        "[tasks.t]\non = \"web\"\nrun = \"true\"\n",
    );
    t.clone_args(&["run", "t", "-q"])
        .run()
        .expect(0, "", "ok t (X.Xs)\n");

    // KexAlgorithms in ssh_config is what nexus offers: P-256 only fails against it.
    let keys = Keys::get();
    let cfg = |kex: &str| {
        format!(
            "Host a\n  HostName 127.0.0.1\n  Port {p}\n  User {u}\n  IdentityFile {id}\n  KexAlgorithms {kex}\n",
            p = server.port,
            u = user(),
            id = keys.key("id_ed25519").display(),
        )
    };
    let t = isolated(Test::new().file("ssh_config", &cfg("ecdh-sha2-nistp256")));
    let toml = format!(
        "[config]\nssh_config = \"{c}\"\nknown_hosts = \"{kh}\"\n[hosts]\nweb = [\"a\"]\n[tasks.t]\non = \"web\"\nrun = \"true\"\n",
        c = t.path("ssh_config").display(),
        kh = server.known_hosts().display(),
    );
    let t = t.toml(&toml);
    let host_keys = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256";
    t.clone_args(&["run", "t", "-q"]).run().expect(3, "", &format!(
            "
            FAILED t (X.Xs)
            Error: SSH connection failed

              Host: a
              Task: t
              Command: true
              Reason: SSH handshake failed: the server accepts none of the algorithms nexus offered (key exchange: ecdh-sha2-nistp256; host keys: {host_keys})

              help: compare with the server's KexAlgorithms and HostKeyAlgorithms (sshd -T | grep algorithms)
              help: KexAlgorithms and HostKeyAlgorithms in ssh_config change what nexus offers; `nexus hosts resolve HOST` shows it

            "
        ),
    );

    // `hosts resolve` shows the lists nexus offers.
    let cfg_path = t.path("ssh_config");
    let resolve = |t: &Test| {
        t.clone_args(&[
            "hosts",
            "resolve",
            "a",
            "--ssh-config",
            cfg_path.to_str().unwrap(),
        ])
        .run()
    };
    let home = t.path("home");
    let resolved = |kex: &str| {
        format!(
            "
            hostname 127.0.0.1
            user {u}
            port {p}
            identityfile {id}
            identitiesonly no
            stricthostkeychecking ask
            userknownhostsfile {home}/.ssh/known_hosts {home}/.ssh/known_hosts2
            connecttimeout none
            serveralivecountmax 3
            serveraliveinterval 15
            kexalgorithms {kex}
            hostkeyalgorithms {host_keys}
            ",
            u = user(),
            p = server.port,
            id = keys.key("id_ed25519").display(),
            home = home.display(),
        )
    };
    resolve(&t).expect(0, &resolved("ecdh-sha2-nistp256"), "");
    std::fs::write(&cfg_path, cfg("-ecdh-*")).unwrap();
    resolve(&t).expect(0, &resolved("curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,diffie-hellman-group-exchange-sha256"), "");
    t.clone_args(&["run", "t", "-q"])
        .run()
        .expect(0, "", "ok t (X.Xs)\n");

    // A list with nothing libssh2 implements is refused before connecting.
    std::fs::write(&cfg_path, cfg("sntrup761x25519-sha512@openssh.com")).unwrap();
    // What the bundled libssh2 implements (libssh2-sys, pinned by Cargo.lock).
    let implemented = "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256";
    resolve(&t).expect(
        2,
        "",
        &format!(
            "
            Error: cannot resolve a: KexAlgorithms sntrup761x25519-sha512@openssh.com in ssh_config leaves no algorithm libssh2 implements (it has: {implemented})

              help: fix the list in ssh_config, or remove it to use nexus's defaults
            "
        ),
    );
    t.clone_args(&["run", "t", "-q"]).run().expect(
        2,
        "",
        &format!(
            "
            Error: host a: KexAlgorithms sntrup761x25519-sha512@openssh.com in ssh_config leaves no algorithm libssh2 implements (it has: {implemented})

              help: fix the host string or its ssh_config entry (`nexus hosts resolve HOST` shows what nexus reads)
            "
        ),
    );
}

/// A TCP relay on 127.0.0.1 to `port` that closes its first `drop_first` connections at
/// once, before any byte (what sshd does past MaxStartups), and holds the others for
/// `delay` before passing them on (a server slow to answer). Its threads end when the
/// sockets close.
fn relay(port: u16, delay: std::time::Duration, drop_first: usize) -> u16 {
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (i, client) in listener
            .incoming()
            .take(8 + drop_first)
            .flatten()
            .enumerate()
        {
            if i < drop_first {
                drop(client);
                continue;
            }
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
                    return;
                };
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let up = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut s2);
                    let _ = s2.shutdown(std::net::Shutdown::Write);
                });
                let (mut c, mut srv) = (client, server);
                let _ = std::io::copy(&mut srv, &mut c);
                let _ = c.shutdown(std::net::Shutdown::Write);
                let _ = up.join();
            });
        }
    });
    relay_port
}

/// A server that drops connections before its banner (a busy sshd past MaxStartups):
/// tried again with backoff, not counted as an attempt, and fewer handshakes at once to
/// that endpoint from then on.
#[test]
fn a_connection_dropped_before_the_banner_is_tried_again_more_slowly() {
    let server = Server::openssh();
    let port = relay(server.port, std::time::Duration::ZERO, 3);
    let r = relayed_test(&server, port, "\"echo in\"")
        .args(&["run", "t", "--log-level", "debug"])
        .run();
    r.expect_code(0)
        .expect_stdout(&format!("t@{}@127.0.0.1:{port} | in\n", user()));
    let endpoint = format!("127.0.0.1:{port}");
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("dropped") || l.contains("handshakes at once"))
        .map(|l| l.split_once(" ssh: ").map_or(l, |(_, m)| m))
        .collect();
    let label = format!("{}@127.0.0.1:{port}", user());
    assert_eq!(
        lines,
        [
            format!("{endpoint}: 3 handshakes at once from now on (it dropped a connection at 6)"),
            format!("{label}: {endpoint} dropped the connection before its banner (1 of at most 4 times): trying again"),
            format!("{endpoint}: 2 handshakes at once from now on (it dropped a connection at 3)"),
            format!("{label}: {endpoint} dropped the connection before its banner (2 of at most 4 times): trying again"),
            format!("{label}: {endpoint} dropped the connection before its banner (3 of at most 4 times): trying again"),
        ],
        "{}",
        r.stderr
    );
}

#[test]
fn connecting_does_not_count_against_the_command_timeout() {
    // Connecting takes 1.5 s; the command's timeout is 1 s and the command itself is quick.
    let server = Server::openssh();
    let port = relay(server.port, std::time::Duration::from_millis(1500), 0);
    relayed_test(&server, port, "[{ cmd = \"true\", timeout = \"1s\" }]")
        .args(&["run", "t", "-q"])
        .run()
        .expect(0, "", "ok t (X.Xs)\n");
}

/// A project whose task `t` runs `run` (a TOML value) on the suite's sshd reached through
/// a relay on `port`: its host key known there, the suite's key, no ssh_config.
fn relayed_test(server: &Server, port: u16, run: &str) -> Test {
    let keys = Keys::get();
    let kh = server.dir.path().join(format!("kh-relay-{port}"));
    std::fs::write(&kh, format!("[127.0.0.1]:{port} {}\n", server.host_key)).unwrap();
    let toml = format!(
        "[config]\nssh_config = \"none\"\nknown_hosts = \"{kh}\"\nssh_identity = \"{id}\"\n\
         [hosts]\nweb = [\"{u}@127.0.0.1:{port}\"]\n\
         [tasks.t]\non = \"web\"\nrun = {run}\n",
        kh = kh.display(),
        id = keys.key("id_ed25519").display(),
        u = user(),
    );
    isolated(Test::new().toml(&toml))
}

#[test]
fn host_key_checking_off_warns_once_per_endpoint_and_key() {
    // Two aliases of one server: two sessions, one endpoint and key, so one warning.
    let server = Server::openssh();
    let keys = Keys::get();
    let ssh_config = format!(
        "Host a b\n  HostName 127.0.0.1\n  Port {p}\n  User {u}\n  IdentityFile {id}\n",
        p = server.port,
        u = user(),
        id = keys.key("id_ed25519").display(),
    );
    let t = Test::new().file("ssh_config", &ssh_config);
    let toml = format!(
        "[config]\nssh_config = \"{cfg}\"\nknown_hosts = \"{kh}\"\nhost_key_checking = \"off\"\n[hosts]\nweb = [\"a\", \"b\"]\n[tasks.t]\non = \"web\"\nrun = \"true\"\n",
        cfg = t.path("ssh_config").display(),
        kh = server.dir.path().join("known_hosts").display(),
    );
    std::fs::write(server.dir.path().join("known_hosts"), "").unwrap();
    let r = isolated(t.toml(&toml)).args(&["run", "t", "-q"]).run();
    r.expect(0, "", &format!(
            "warning: host key checking is off: accepted ssh-ed25519 key {fp} of [127.0.0.1]:{p} without checking\nok t (X.Xs)\n",
            fp = server.fingerprint(),
            p = server.port
        ),
    );
}

#[test]
fn ssh_agent_authenticates() {
    let server = Server::openssh();
    let dir = TempDir::new("agent");
    let sock = dir.path().join("agent.sock");
    let agent = Stop(
        std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("ssh-agent (openssh-client)"),
    );
    wait_until("the ssh-agent socket", Duration::from_secs(10), || {
        sock.exists()
    });
    let added = std::process::Command::new("ssh-add")
        .arg(Keys::get().key("id_ecdsa"))
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    let t = ssh_test(
        &server,
        "wrong_ed25519",
        "[tasks.t]\non = \"web\"\nrun = \"echo via-agent\"\n",
    )
    .env("SSH_AUTH_SOCK", sock.to_str().unwrap())
    .args(&["run", "t", "-v", "--plain"]);
    let r = t.run();
    drop(agent); // stopped by PID
    let h = host(&server);
    r.expect(
        0,
        &format!("t@{h} | via-agent\n"),
        &format!(
            "
            * t [{h}]
            t@{h} | $ echo via-agent
            ok t X.Xs
              `- {h} ok X.Xs
            Completed in X.Xs: 1 succeeded
            ",
        ),
    );
}

#[test]
fn pool_reuses_connections_across_commands_and_tasks() {
    let server = Server::openssh();
    let mut body = String::from("[tasks.many]\non = \"web\"\nrun = [");
    for i in 0..20 {
        body += &format!("\"echo {i}\", ");
    }
    body += "]\n[tasks.second]\non = \"web\"\ndeps = [\"many\"]\nrun = [\"true\", \"true\"]\n";
    for p in ["p1", "p2", "p3", "p4", "p5"] {
        body += &format!("[tasks.{p}]\non = \"web\"\ndeps = [\"second\"]\nrun = \"sleep 0.3\"\n");
    }
    body += "[tasks.all]\ndeps = [\"p1\", \"p2\", \"p3\", \"p4\", \"p5\"]\n";
    let t = ssh_test_with(
        &server,
        "id_ed25519",
        &body,
        &server.known_hosts(),
        "pool_size = 2\n",
    );
    let before = server.log_count("Accepted publickey");
    t.args(&["run", "all", "-q"]).run().expect_code(0);
    let opened = server.log_count("Accepted publickey") - before;
    // 20 commands and the next task share one session; five parallel tasks need more,
    // but never more than pool_size = 2.
    assert_eq!(opened, 2, "connections opened: {opened}");
}

#[test]
fn remote_timeout_kills_the_remote_process() {
    let server = Server::openssh();
    let marker = marker(300, 2);
    let t = ssh_test(
        &server,
        "id_ed25519",
        &format!("[tasks.slow]\non = \"web\"\nrun = [{{ cmd = \"sleep {marker} & sleep {marker}\", timeout = \"500ms\" }}]\n"),
    )
    .args(&["run", "slow", "-q"]);
    t.run().expect(
        4,
        "",
        &format!(
            "
            TIMEOUT slow (X.Xs)
            Error: Command timed out

              Host: {h}
              Task: slow
              Command: sleep {marker} & sleep {marker}
              Timeout: 500ms (command timeout)

              help: raise the command's `timeout` in task `slow` if it needs longer

            ",
            h = host(&server)
        ),
    );
    let left = processes_matching(&format!("sleep {marker}"));
    assert!(left.is_empty(), "remote processes survived: {left:?}");
}

#[test]
fn ctrl_c_during_a_remote_task_leaves_nothing_behind() {
    let server = Server::openssh();
    let marker = marker(300, 3);
    let t = ssh_test(
        &server,
        "id_ed25519",
        &format!("[tasks.slow]\non = \"web\"\nrun = [{{ cmd = \"sleep {marker}\", timeout = \"10m\" }}]\n"),
    );
    let mut cmd = t.command();
    cmd.args(["run", "slow", "-q"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Stop(cmd.spawn().unwrap());
    wait_until("the remote sleep", Duration::from_secs(10), || {
        !processes_matching(&format!("sleep {marker}")).is_empty()
    });
    child.signal(libc::SIGINT);
    // The sleep runs for 300 s: nexus exiting before then means it stopped it.
    wait_within(&mut child, &cmd, Duration::from_secs(60)).expect(
        130,
        "",
        "cancelled slow (X.Xs)\n",
    );
    let left = processes_matching(&format!("sleep {marker}"));
    assert!(
        left.is_empty(),
        "remote processes survived Ctrl-C: {left:?}"
    );
}

#[test]
fn sudo_runs_as_root_or_the_named_user() {
    // As anyone else, `sudo -n` would need a sudoers entry without a password for the
    // user running the suite (and `-u nobody` one for nobody); root may always use it.
    if skip_unless_root(
        "ssh::sudo_runs_as_root_or_the_named_user",
        "sudo -n as the login user",
    ) {
        return;
    }
    let server = Server::openssh();
    let t = ssh_test(
        &server,
        "id_ed25519",
        r#"
[tasks.t]
on = "web"
run = [{ cmd = "id -un", sudo = true }, { cmd = "id -un", user = "nobody" }]
"#,
    )
    .args(&["run", "t", "--format", "json"]);
    let r = t.run();
    r.expect_code(0).expect_stderr("");
    let out: Vec<String> = r
        .json_lines()
        .iter()
        .filter(|l| l["event"] == "output")
        .map(|l| l["line"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(out, ["root", "nobody"]);
}

#[test]
fn unreachable_host_reports_per_host_and_exits_3() {
    let server = Server::openssh();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let body = format!(
        r#"
[hosts.mixed]
hosts = ["{u}@127.0.0.1:{good}", "{u}@127.0.0.1:{closed}"]

[tasks.deploy]
on = "mixed"
run = "true"

[tasks.verify]
on = "mixed"
deps = ["deploy"]
run = "echo verified-{{{{ host }}}}"

[tasks.local_report]
run = "echo report >> log"
"#,
        good = server.port,
        u = user(),
    );
    let t = ssh_test(&server, "id_ed25519", &body);
    let good = format!("{}@127.0.0.1:{}", user(), server.port);
    let bad = format!("{}@127.0.0.1:{closed}", user());
    t.clone_args(&["run", "verify", "--plain"]).run().expect(
        3,
        "",
        &format!(
            "FAILED deploy X.Xs\n  |- {good} ok X.Xs\n  `- {bad} UNREACHABLE X.Xs\nError: SSH connection failed\n\n  Host: {bad}\n  Task: deploy\n  Command: true\n  Reason: Connection refused (port {closed}), 3 attempts\n\n  help: Verify the host is reachable: ping 127.0.0.1\n  help: Check if SSH is running: nc -zv 127.0.0.1 {closed}\n  help: Verify firewall rules allow port {closed}\n\n\nSummary:\n  FAILED    deploy  X.Xs\n  skipped   verify  skipped\nFailed in X.Xs: 0 succeeded, 1 failed, 1 skipped\n"
        ),
    );

    // With --continue-on-error the reachable host goes on to the next task.
    let r2 = t
        .clone_args(&[
            "run",
            "verify",
            "local_report",
            "--continue-on-error",
            "--format",
            "json",
        ])
        .run();
    r2.expect_code(3).expect_stderr("");
    let lines = r2.json_lines();
    let verify_out: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["event"] == "output" && l["task"] == "verify")
        .collect();
    assert_eq!(verify_out.len(), 1, "{}", r2.show());
    assert_eq!(verify_out[0]["host"], good.as_str());
    assert_eq!(verify_out[0]["line"], format!("verified-{good}").as_str());
    let vf = lines
        .iter()
        .find(|l| l["event"] == "task_finish" && l["task"] == "verify")
        .unwrap();
    assert_eq!(vf["status"], "success");
    assert_eq!(vf["hosts"][&good], "success");
    assert_eq!(vf["hosts"][&bad], "skipped");
    assert_eq!(t.read("log"), "report\n");
}

/// A local user for dropbear, which reads ~/.ssh/authorized_keys of the login user.
pub(crate) fn dropbear_user() -> &'static str {
    let user = "nexustest";
    let home = "/var/tmp/nexustest-home";
    let exists = std::process::Command::new("id")
        .arg(user)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        let st = std::process::Command::new("useradd")
            .args([
                "--home-dir",
                home,
                "--create-home",
                "--shell",
                "/bin/sh",
                user,
            ])
            .status()
            .expect("useradd");
        assert!(st.success(), "useradd {user} failed");
    }
    let ssh = std::path::Path::new(home).join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::copy(
        Keys::get().dir.join("authorized_keys"),
        ssh.join("authorized_keys"),
    )
    .unwrap();
    let st = std::process::Command::new("chown")
        .args(["-R", &format!("{user}:{user}"), home])
        .status()
        .unwrap();
    assert!(st.success());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(
        ssh.join("authorized_keys"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    user
}

#[test]
fn dropbear_exec_exit_status_stderr_and_key_auth() {
    // dropbear (2022.83) reads the authorized keys only from ~/.ssh/authorized_keys of the
    // login user's passwd home. As root the test creates a user for that; as anyone else
    // the only possible login is the user running the suite, and the test will not edit
    // that user's real authorized_keys.
    if skip_unless_root(
        "ssh::dropbear_exec_exit_status_stderr_and_key_auth",
        "creates the login user nexustest with useradd",
    ) {
        return;
    }
    let user = dropbear_user();
    let server = Server::dropbear();
    let toml = format!(
        "[config]\nssh_config = \"none\"\nknown_hosts = \"{kh}\"\nssh_identity = \"{id}\"\n[hosts]\ndb = [\"{user}@127.0.0.1:{port}\"]\n[tasks.t]\non = \"db\"\nrun = [\"echo hello-$(id -un)\", \"echo to-stderr >&2\", \"exit 5\"]\n",
        kh = server.known_hosts().display(),
        id = Keys::get().key("id_ed25519").display(),
        port = server.port
    );
    let t = isolated(Test::new().toml(&toml)).args(&["run", "t", "--format", "json"]);
    let r = t.run();
    r.expect_code(1).expect_stderr("");
    let lines = r.json_lines();
    let out: Vec<(String, String)> = lines
        .iter()
        .filter(|l| l["event"] == "output")
        .map(|l| {
            (
                l["stream"].as_str().unwrap().into(),
                l["line"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        out,
        [
            ("stdout".to_string(), format!("hello-{user}")),
            ("stderr".to_string(), "to-stderr".to_string())
        ]
    );
    let codes: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["event"] == "command_finish")
        .map(|l| &l["exit_code"])
        .collect();
    assert_eq!(codes, [0, 0, 5]);

    // A key dropbear does not know is refused: exit 3.
    let toml = toml.replace("id_ed25519", "wrong_ed25519");
    let t = isolated(Test::new().toml(&toml)).args(&["run", "t", "-q"]);
    let home = t.path("home");
    t.run().expect(3, "", &format!(
            "
            FAILED t (X.Xs)
            Error: SSH connection failed

              Host: {user}@127.0.0.1:{p}
              Task: t
              Command: echo hello-$(id -un)
              Reason: Authentication failed for user {user}; tried: {w} (rejected), ssh-agent (SSH_AUTH_SOCK is not set), {home}/.ssh/id_ed25519 (not found), {home}/.ssh/id_ecdsa (not found), {home}/.ssh/id_rsa (not found), password (not asked: no terminal or CI is set)

              help: check that the public key is in ~{user}/.ssh/authorized_keys on 127.0.0.1
              help: name the key with -i PATH, ssh_identity in nexus.toml, or IdentityFile in ssh_config
              help: load it into ssh-agent: ssh-add PATH

            ",
            p = server.port,
            w = Keys::get().key("wrong_ed25519").display(),
            home = home.display(),
        ),
    );
}

#[test]
fn proxy_jump_through_a_second_sshd() {
    let jump = Server::openssh();
    let target = Server::openssh();
    let keys = Keys::get();
    let t = Test::new();
    let kh = t.path("known_hosts");
    std::fs::write(
        &kh,
        format!(
            "[127.0.0.1]:{} {}\n[127.0.0.1]:{} {}\n",
            jump.port, jump.host_key, target.port, target.host_key
        ),
    )
    .unwrap();
    let ssh_config = format!(
        "Host behind\n  HostName 127.0.0.1\n  Port {tp}\n  User {u}\n  ProxyJump {u}@127.0.0.1:{jp}\n\nHost direct\n  HostName 127.0.0.1\n  Port {tp}\n  User {u}\n  ProxyJump none\n",
        u = user(),
        tp = target.port,
        jp = jump.port
    );
    let toml = format!(
        "[config]\nssh_config = \"{cfg}\"\nknown_hosts = \"{kh}\"\nssh_identity = \"{id}\"\n[hosts]\nweb = [\"behind\"]\n[tasks.t]\non = \"web\"\nrun = [\"echo through-the-jump\", \"echo second-command\"]\n",
        cfg = t.path("ssh_config").display(),
        kh = kh.display(),
        id = keys.key("id_ed25519").display()
    );
    let t = isolated(t.file("ssh_config", &ssh_config).toml(&toml))
        .args(&["run", "t", "-v", "--plain"]);
    let jump_before = jump.log_count("Accepted publickey");
    let target_before = target.log_count("Accepted publickey");
    t.run().expect(
        0,
        "t@behind | through-the-jump\nt@behind | second-command\n",
        "
        * t [behind]
        t@behind | $ echo through-the-jump
        t@behind | $ echo second-command
        ok t X.Xs
          `- behind ok X.Xs
        Completed in X.Xs: 1 succeeded
        ",
    );
    assert_eq!(
        jump.log_count("Accepted publickey") - jump_before,
        1,
        "one login on the jump host"
    );
    assert_eq!(
        target.log_count("Accepted publickey") - target_before,
        1,
        "one login on the target"
    );

    // With the jump host down, the target is unreachable through it: exit 3, naming the hop.
    let jump_port = jump.port;
    drop(jump);
    t.run().expect(
        3,
        "",
        &format!(
            "
            * t [behind]
            t@behind | $ echo through-the-jump
            FAILED t X.Xs
              `- behind UNREACHABLE X.Xs
            Error: SSH connection failed

              Host: behind
              Task: t
              Command: echo through-the-jump
              Reason: ProxyJump hop {u}@127.0.0.1:{jump_port}: Connection refused (port {jump_port}), 3 attempts

              help: Verify the host is reachable: ping 127.0.0.1
              help: Check if SSH is running: nc -zv 127.0.0.1 {jump_port}
              help: Verify firewall rules allow port {jump_port}


            Summary:
              FAILED    t  X.Xs
            Failed in X.Xs: 0 succeeded, 1 failed
            ",
            u = user()
        ),
    );
}

#[test]
fn encrypted_key_needs_a_terminal_for_its_passphrase() {
    let server = Server::openssh();
    let t = ssh_test(
        &server,
        "enc_ed25519",
        "[tasks.t]\non = \"web\"\nrun = \"echo unlocked\"\n",
    );
    let enc = Keys::get().key("enc_ed25519");
    // No terminal: a clear error naming the key, exit 3.
    t.clone_args(&["run", "t", "-q"])
        .run()
        .expect(3, "", &format!(
                "
                FAILED t (X.Xs)
                Error: SSH connection failed

                  Host: {h}
                  Task: t
                  Command: echo unlocked
                  Reason: Authentication failed for user {u}; tried: {enc} (encrypted; no passphrase can be asked without a terminal), ssh-agent (SSH_AUTH_SOCK is not set), {home}/.ssh/id_ed25519 (not found), {home}/.ssh/id_ecdsa (not found), {home}/.ssh/id_rsa (not found), password (not asked: no terminal or CI is set)

                  help: check that the public key is in ~{u}/.ssh/authorized_keys on 127.0.0.1
                  help: name the key with -i PATH, ssh_identity in nexus.toml, or IdentityFile in ssh_config
                  help: load it into ssh-agent: ssh-add PATH

                ",
                h = host(&server),
                u = user(),
                enc = enc.display(),
                home = t.path("home").display(),
            ),
        );

    // On a terminal (script(1) gives nexus a pty), the passphrase is asked and used.
    let nexus = crate::common::BIN;
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &format!("{nexus} run t -v --plain"), "/dev/null"])
        .current_dir(t.dir.path())
        .env("HOME", t.path("home"))
        .env("SSH_AUTH_SOCK", "")
        .env_remove("CI")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Stop(c.spawn().expect("script (util-linux)"));
    // What the terminal shows, read as it comes.
    let screen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let screen = std::sync::Arc::clone(&screen);
        let mut out = child.0.stdout.take().unwrap();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let prompt = format!("Enter passphrase for key '{}': ", enc.display());
    let shown = || String::from_utf8_lossy(&screen.lock().unwrap()).replace("\r\n", "\n");
    // Answer once nexus asks (script forwards stdin to the terminal), then end stdin.
    wait_until("the passphrase prompt", Duration::from_secs(30), || {
        shown().contains(&prompt)
    });
    {
        use std::io::Write;
        let mut stdin = child.0.stdin.take().unwrap();
        writeln!(stdin, "{}", crate::common::sshd::ENC_PASSPHRASE).unwrap();
    }
    wait_until("nexus to finish", Duration::from_secs(60), || {
        matches!(child.0.try_wait(), Ok(Some(_)))
    });
    reader.join().unwrap();
    let code = child.0.wait().unwrap().code();
    let screen = shown();
    assert_eq!(screen.matches(&prompt).count(), 1, "one prompt:\n{screen}");
    assert_eq!(code, Some(0), "{screen}");
    // The prompt (on /dev/tty, from the connecting thread) may land between the lines the
    // output thread prints: the rest, without it and the empty line it leaves, is exact.
    let rest: String = mask(&screen.replace(&prompt, ""))
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    assert_text(
        "the terminal without the prompt",
        &rest,
        &format!(
            "* t [{h}]\nt@{h} | $ echo unlocked\nt@{h} | unlocked\nok t X.Xs\n  `- {h} ok X.Xs\nCompleted in X.Xs: 1 succeeded\n",
            h = host(&server)
        ),
    );
}

#[test]
fn ssh_config_that_openssh_refuses_is_refused_with_its_line() {
    let t = isolated(Test::new().file("ssh_config", "Host never-matches\n  FrobnicateLevel 11\n"));
    let resolve = |alias: &str| {
        t.clone_args(&["hosts", "resolve", alias, "--ssh-config", "ssh_config"])
            .run()
    };
    resolve("web").expect(
        2,
        "",
        "
        Error: cannot read ssh_config: ssh_config:2: Bad configuration option: frobnicatelevel (OpenSSH 9.x has no such keyword: check its spelling, or name it in an IgnoreUnknown line before it)

          help: fix the file, or point --ssh-config at another
        ",
    );
    let t = isolated(Test::new().file(
        "ssh_config",
        "Host loop\n  ProxyJump loop\nHost pct\n  HostName %r.example\n",
    ));
    let resolve = |alias: &str| {
        t.clone_args(&["hosts", "resolve", alias, "--ssh-config", "ssh_config"])
            .run()
    };
    resolve("loop").expect(
        2,
        "",
        &format!(
            "
            Error: cannot read ssh_config: ssh_config:2: jumphost loop via loop: the last ProxyJump hop is the host itself ({u}@loop port 22); name another jump host, or ProxyJump none

              help: fix the line it names (`ssh -G HOST` shows what OpenSSH makes of it)
            ",
            u = user_name()
        ),
    );
    resolve("pct").expect(
        2,
        "",
        "
        Error: cannot read ssh_config: ssh_config:4: HostName %r.example: unknown key %r (this keyword expands %h and %%)

          help: fix the line it names (`ssh -G HOST` shows what OpenSSH makes of it)
        ",
    );
}

/// The user nexus resolves when nothing names one: `$USER`, else the passwd name.
fn user_name() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            let out = std::process::Command::new("id")
                .arg("-un")
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
}

/// A nexus.toml and ssh_config that reach `server` as `viaproxy` through `proxy_command`.
fn proxy_test(server: &Server, proxy_command: &str) -> Test {
    proxy_test_as(server, proxy_command, user())
}

/// `proxy_test`, logging in as `login`.
fn proxy_test_as(server: &Server, proxy_command: &str, login: &str) -> Test {
    let keys = Keys::get();
    let t = Test::new();
    let ssh_config = format!(
        "Host viaproxy\n  HostName 127.0.0.1\n  Port {port}\n  User {login}\n  ProxyCommand {proxy_command}\n",
        port = server.port,
    );
    let toml = format!(
        "[config]\nssh_config = \"{cfg}\"\nknown_hosts = \"{kh}\"\nssh_identity = \"{id}\"\n[hosts]\nweb = [\"viaproxy\"]\n[tasks.t]\non = \"web\"\nrun = [\"echo through-the-proxy\", \"echo second-command\"]\n",
        cfg = t.path("ssh_config").display(),
        kh = server.known_hosts().display(),
        id = keys.key("id_ed25519").display()
    );
    isolated(t.file("ssh_config", &ssh_config).toml(&toml))
}

/// Is process `pid` still there (a zombie counts as gone)?
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.split(") ").nth(1).unwrap_or_default().starts_with('Z'))
}

#[test]
fn proxy_command_carries_the_session_and_ends_with_it() {
    let server = Server::openssh();
    let probe = Test::new();
    let pids = probe.path("proxy-pids");
    // bash's /dev/tcp relay; both of its processes write their pid down.
    let relay = format!(
        "bash -c 'echo $$ >> {p}; exec 3<>/dev/tcp/%h/%p; cat <&3 & echo $! >> {p}; exec cat >&3'",
        p = pids.display()
    );
    let t = proxy_test(&server, &relay);
    let r = t
        .clone_args(&["hosts", "resolve", "viaproxy", "--ssh-config", "ssh_config"])
        .run();
    r.expect_code(0);
    assert!(
        r.stdout.contains(&format!("\nproxycommand {relay}\n")),
        "{}",
        r.stdout
    );
    let r = t.clone_args(&["run", "t", "-v", "--plain"]).run();
    r.expect_code(0);
    assert!(
        r.stdout.contains("t@viaproxy | through-the-proxy\n")
            && r.stdout.contains("t@viaproxy | second-command\n"),
        "{}",
        r.stdout
    );
    let started: Vec<u32> = std::fs::read_to_string(&pids)
        .expect("the proxy command ran")
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(
        started.len(),
        2,
        "one proxy (two processes) for both commands"
    );
    let left: Vec<u32> = started.into_iter().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "proxy processes outlived nexus: {left:?}");
}

#[test]
fn a_proxy_command_that_fails_is_a_connection_error_naming_it() {
    let server = Server::openssh();
    let t = proxy_test(&server, "nexus-no-such-proxy %h %p").args(&["run", "t", "-q"]);
    let port = server.port;
    t.run().expect(3, "", &format!(
            "
            FAILED t (X.Xs)
            Error: SSH connection failed

              Host: viaproxy
              Task: t
              Command: echo through-the-proxy
              Reason: ProxyCommand `nexus-no-such-proxy 127.0.0.1 {port}` exited with status 127 before the SSH session was set up: /bin/sh: 1: exec: nexus-no-such-proxy: not found

              help: run it by hand: sh -c 'nexus-no-such-proxy 127.0.0.1 {port}' should connect to 127.0.0.1 port {port} and print the server's SSH banner
              help: fix ProxyCommand in ssh_config, or set ProxyCommand none for a direct connection

            "
        ),
    );
}

/// An unencrypted ed25519 key is signed with by nexus itself (decoded once per run, not
/// at every login); ECDSA and RSA keys are left to libssh2. Both log in.
#[test]
fn ed25519_keys_are_signed_by_nexus_and_other_keys_by_libssh2() {
    let server = Server::openssh();
    let keys = Keys::get();
    for (key, by_nexus) in [("id_ed25519", true), ("id_ecdsa", false), ("id_rsa", false)] {
        let path = keys.key(key).display().to_string();
        let t = ssh_test(&server, key, "[tasks.a]\non = \"web\"\nrun = \"true\"\n").args(&[
            "run",
            "a",
            "--log-level",
            "debug",
        ]);
        let r = t.run();
        r.expect_code(0);
        let signing = format!(
            "nexus: debug: ssh: signing with {path} in nexus (ed25519, decoded once per run)"
        );
        let auth = format!(
            "nexus: debug: ssh: {h}: authenticated as {u} with key: {path}",
            h = host(&server),
            u = user()
        );
        let lines: Vec<&str> = r.stderr.lines().collect();
        let count = |want: &str| lines.iter().filter(|l| **l == want).count();
        assert_eq!(
            count(&signing),
            usize::from(by_nexus),
            "{key}:\n{}",
            r.stderr
        );
        assert_eq!(count(&auth), 1, "{key}:\n{}", r.stderr);
    }
}

/// A KEY.pub that names another key (here one the server accepts) fails that key, as
/// with ssh ("private key contents do not match public"), whoever signs.
#[test]
fn an_ed25519_key_whose_pub_file_names_another_key_is_rejected() {
    let server = Server::openssh();
    let keys = Keys::get();
    let t = Test::new();
    let dir = t.path("keys");
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("k");
    std::fs::copy(keys.key("id_ed25519"), &key).unwrap();
    std::fs::copy(keys.key("id_ecdsa.pub"), dir.join("k.pub")).unwrap();
    let toml = format!(
        "[config]\nssh_config = \"none\"\nknown_hosts = \"{kh}\"\nssh_identity = \"{id}\"\n\n[hosts]\nweb = [\"{u}@127.0.0.1:{port}\"]\n\n[tasks.t]\non = \"web\"\nrun = \"true\"\n",
        u = user(),
        kh = server.known_hosts().display(),
        id = key.display(),
        port = server.port,
    );
    let t = isolated(t.toml(&toml)).args(&["run", "t", "-q", "--log-level", "debug"]);
    let r = t.run();
    r.expect_code(3);
    let home = t.path("home");
    let tried = format!(
        "Reason: Authentication failed for user {u}; tried: {k} (rejected), ssh-agent (SSH_AUTH_SOCK is not set), {home}/.ssh/id_ed25519 (not found), {home}/.ssh/id_ecdsa (not found), {home}/.ssh/id_rsa (not found), password (not asked: no terminal or CI is set)",
        u = user(),
        k = key.display(),
        home = home.display()
    );
    assert!(
        r.stderr.lines().any(|l| l.trim() == tried),
        "no `{tried}` in:\n{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("in nexus (ed25519"),
        "signed by nexus:\n{}",
        r.stderr
    );
}

/// `--log-level debug` (or `log_level = "debug"`) says how each connection authenticated
/// and when a pooled connection was reused.
#[test]
fn debug_log_names_the_auth_method_and_pool_reuse() {
    let server = Server::openssh();
    let keys = Keys::get();
    let body = r#"
[tasks.a]
on = "web"
run = "true"

[tasks.b]
deps = ["a"]
on = "web"
run = "true"
"#;
    let h = host(&server);
    let auth = format!(
        "nexus: debug: ssh: {h}: authenticated as {u} with key: {}",
        keys.key("id_ed25519").display(),
        u = user()
    );
    let check = |r: &Run| {
        r.expect_code(0);
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert!(
            lines.contains(&auth.as_str()),
            "no `{auth}` in:\n{}",
            r.stderr
        );
        let reuse = format!("nexus: debug: ssh: {h}: reusing a pooled connection (idle ");
        assert_eq!(
            lines.iter().filter(|l| l.starts_with(&reuse)).count(),
            1,
            "one reuse expected in:\n{}",
            r.stderr
        );
    };
    let t = ssh_test(&server, "id_ed25519", body).args(&["run", "b", "--log-level", "debug"]);
    check(&t.run());
    let t = ssh_test_with(
        &server,
        "id_ed25519",
        body,
        &server.known_hosts(),
        "log_level = \"debug\"\n",
    )
    .args(&["run", "b"]);
    check(&t.run());
}

/// A login that fails over a ProxyCommand is reported as the login failure: the command
/// ending afterwards (its stdin closed) is not the cause.
#[test]
fn a_failed_login_over_a_proxy_command_is_not_blamed_on_the_command() {
    let server = Server::openssh();
    let relay = "bash -c 'exec 3<>/dev/tcp/%h/%p; cat <&3 & exec cat >&3'";
    let t = proxy_test_as(&server, relay, "nexus-no-such-user");
    let r = t.clone_args(&["run", "t", "-q"]).run();
    r.expect_code(3);
    assert!(
        r.stderr
            .contains("  Reason: Authentication failed for user nexus-no-such-user; tried: "),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("ProxyCommand"), "{}", r.stderr);
}

/// Task `env` values reach remote commands — in the login shell, on a PTY, through sudo —
/// without appearing in any process's argument list while the command runs (they travel
/// on the channel's stdin), and whole, whatever shell syntax and newlines they hold. The
/// command ends in `; true` so that the shell cannot exec its last command in place and
/// stays to be looked at.
#[test]
fn task_env_reaches_remote_commands_but_no_argument_list() {
    let server = Server::openssh();
    let canary = "canary-7f3e9a1b";
    let value = format!("{canary} $(touch pwned) 'q' \"dq\" `id`\nsecond line");
    let sleep = marker(3, 4);
    // A directory of this run's own: fixed names in the shared /tmp would meet files
    // another user's run of the suite left there.
    let outdir = TempDir::new("env-out");
    let task = |name: &str, opts: &str| {
        format!(
            "[tasks.{name}]\non = \"web\"\nenv = {{ TOKEN = {value:?} }}\nrun = [{{ cmd = \"printf '%s' \\\"$TOKEN\\\" > {dir}/{name}.out; sleep {sleep}; true\"{opts} }}]\n",
            dir = outdir.0.display(),
        )
    };
    let mut body = task("plain", "");
    let root = is_root();
    // An sshd that does not run as root cannot hand out a PTY (it cannot give the
    // terminal to the login user): the PTY part needs root, as sudo does.
    if root {
        body += &task("pty", ", pty = true");
    } else {
        note("SKIP ssh::task_env_reaches_remote_commands_but_no_argument_list (pty part): needs root (an sshd not running as root refuses PTYs)");
    }

    if root {
        body += &task("sudo", ", sudo = true");
    } else {
        note("SKIP ssh::task_env_reaches_remote_commands_but_no_argument_list (sudo part): needs root (sudo -n as the login user)");
    }
    let t = ssh_test(&server, "id_ed25519", &body);
    let mut names = vec!["plain"];
    if root {
        names.extend(["pty", "sudo"]);
    }
    for name in names {
        let out = outdir.0.join(format!("{name}.out"));
        run_watching_cmdlines(&t, &["run", name, "-v"], &out, &sleep, canary);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), value, "{name}");
        assert!(!t.path("pwned").exists() && !server_home_has("pwned"));
        let _ = std::fs::remove_file(&out);
    }
}

/// Whether the login user's home (where remote commands start) holds `name`.
fn server_home_has(name: &str) -> bool {
    let (_, home) = nexus::sys::passwd(nexus::sys::uid()).expect("the login user");
    std::path::Path::new(&home).join(name).exists()
}

/// Locally, sudo starts commands from a clean environment: task `env` goes in on the
/// shell's stdin, so the command has it and no argument list shows it.
#[test]
fn task_env_reaches_local_sudo_commands_but_no_argument_list() {
    if skip_unless_root(
        "ssh::task_env_reaches_local_sudo_commands_but_no_argument_list",
        "sudo -n as the user running the suite",
    ) {
        return;
    }
    let canary = "canary-0b5d21c4";
    let value = format!("{canary} $(touch pwned)\nsecond line");
    let sleep = marker(3, 5);
    let t = Test::new().toml(&format!(
        "[tasks.t]\nenv = {{ TOKEN = {value:?} }}\nrun = [{{ cmd = \"printf '%s' \\\"$TOKEN\\\" > out; sleep {sleep}; true\", sudo = true }}]\n"
    ));
    let mut c = t.clone_args(&["run", "t"]).command();
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Stop(c.spawn().unwrap());
    wait_until("the command to run", Duration::from_secs(20), || {
        t.path("out").exists() && !processes_matching(&format!("sleep {sleep}")).is_empty()
    });
    let seen = all_cmdlines();
    assert!(!seen.contains(canary), "the value is in an argument list");
    let r = wait_within(&mut child, &c, Duration::from_secs(30));
    assert_eq!(r.code, 0, "{}", r.show());
    assert_eq!(t.read("out"), value);
    assert!(!t.path("pwned").exists());
}

/// `secret("NAME")` in a remote command (plain, on a PTY, through sudo): the line travels
/// on the channel's stdin, so neither the local nor the remote argument lists (all on
/// this machine) ever hold the value, and nothing nexus prints or journals shows it.
#[test]
fn secrets_reach_remote_commands_but_no_argument_list() {
    let server = Server::openssh();
    let canary = "canary-91c0d3e5";
    let value = format!("{canary} $(touch pwned) 'q'\nsecond line");
    let sleep = marker(3, 7);
    let outdir = TempDir::new("secret-out");
    let task = |name: &str, opts: &str| {
        format!(
            "[tasks.{name}]\non = \"web\"\nrun = [{{ cmd = \"\"\"printf '%s' {{{{ secret('TOKEN') | quote }}}} > {dir}/{name}.out; sleep {sleep}; true\"\"\"{opts} }}]\n",
            dir = outdir.0.display(),
        )
    };
    let mut body = task("plain", "");
    let root = is_root();
    // An sshd that does not run as root cannot hand out a PTY (it cannot give the
    // terminal to the login user): the PTY part needs root, as sudo does.
    if root {
        body += &task("pty", ", pty = true");
    } else {
        note("SKIP ssh::secrets_reach_remote_commands_but_no_argument_list (pty part): needs root (an sshd not running as root refuses PTYs)");
    }

    if root {
        body += &task("sudo", ", sudo = true");
    } else {
        note("SKIP ssh::secrets_reach_remote_commands_but_no_argument_list (sudo part): needs root (sudo -n as the login user)");
    }
    let t = ssh_test(&server, "id_ed25519", &body);
    store_token(&t, &value);
    let mut names = vec!["plain"];
    if root {
        names.extend(["pty", "sudo"]);
    }
    for name in names {
        let out = outdir.0.join(format!("{name}.out"));
        let args = ["run", name, "-v", "--keyfile", "k.key"];
        let r = run_watching_cmdlines(&t, &args, &out, &sleep, canary);
        assert!(r.stderr.contains("[secret TOKEN]"), "{name}: {}", r.show());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), value, "{name}");
        assert!(!t.path("pwned").exists() && !server_home_has("pwned"));
    }
}

/// One canary secret everywhere a value can go — echoed by a command, in a task `env`,
/// in a secret step, in a failing command's output — on a local task and on the suite's
/// sshd, in every output mode and in dry-run: no line of the value appears in stdout,
/// stderr, the journals or `nexus runs show`. The secret file on the host has the value,
/// mode 0600 and (as root) the owner asked for.
#[test]
fn a_canary_secret_leaks_nowhere_in_any_mode() {
    let server = Server::openssh();
    let canary = "canary-44b1e0f2";
    let value = format!("{canary} first\nsecond-{canary}");
    let outdir = TempDir::new("canary-out");
    let root = is_root();
    let owner = if root {
        ", owner = \"nobody\", sudo = true"
    } else {
        ""
    };
    let task = |name: &str, on: &str| {
        format!(
            "[tasks.{name}]\non = \"{on}\"\nenv = {{ TOKEN = '{{{{ secret(\"TOKEN\") }}}}' }}\nrun = [\n  \"echo {{{{ secret('TOKEN') | quote }}}}\",\n  'printf \"%s\\n\" \"$TOKEN\" >&2',\n  {{ secret = \"TOKEN\", to = \"{dir}/{name}.key\"{owner} }},\n  {{ cmd = \"echo {{{{ secret('TOKEN') | quote }}}}; exit 3\", continue_on_error = true }},\n]\n",
            dir = outdir.0.display(),
        )
    };
    let body = task("here", "local") + &task("there", "web");
    let t = ssh_test(&server, "id_ed25519", &body);
    store_token(&t, &value);
    let leaks = |what: &str, text: &str| {
        for needle in [canary, "first\n", "second-"] {
            assert!(
                !text.contains(needle),
                "{what}: `{needle}` is shown:\n{text}"
            );
        }
    };
    let modes: [&[&str]; 5] = [
        &["-v"],
        &["--output", "grouped"],
        &["--format", "json"],
        &["-q"],
        &["-n"],
    ];
    for mode in modes {
        let mut args = vec!["run", "here", "there", "--keyfile", "k.key"];
        args.extend_from_slice(mode);
        let r = t.clone_args(&args).run();
        assert_eq!(r.code, 0, "{mode:?}: {}", r.show());
        leaks(&format!("{mode:?} stdout"), &r.stdout);
        leaks(&format!("{mode:?} stderr"), &r.stderr);
        if mode != ["-n"] {
            assert!(
                (r.stdout.clone() + &r.stderr).contains("[secret TOKEN]"),
                "{mode:?}: {}",
                r.show()
            );
        }
    }
    let runs = t.path(".nexus-home/runs");
    for e in std::fs::read_dir(&runs).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let text = String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned();
        leaks(&format!("journal {name}"), &text);
        if let Some(id) = name
            .strip_suffix(".jsonl")
            .and_then(|n| n.split('.').next())
        {
            let show = t.clone_args(&["runs", "show", id]).run();
            leaks(&format!("runs show {id}"), &(show.stdout + &show.stderr));
        }
    }
    for name in ["here", "there"] {
        let key = outdir.0.join(format!("{name}.key"));
        assert_eq!(std::fs::read_to_string(&key).unwrap(), value, "{name}");
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(&key).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
        if root {
            let id = std::process::Command::new("id")
                .args(["-u", "nobody"])
                .output()
                .unwrap();
            let nobody: u32 = String::from_utf8_lossy(&id.stdout).trim().parse().unwrap();
            assert_eq!(meta.uid(), nobody, "{name}");
        }
    }
}

/// `n` host aliases (`h1`…) for one sshd, in an ssh_config of the test's own, and a
/// project whose group `web` holds them all.
fn fleet_test(server: &Server, n: usize, config: &str) -> (Test, Vec<String>) {
    let keys = Keys::get();
    let names: Vec<String> = (1..=n).map(|i| format!("h{i}")).collect();
    let t = isolated(Test::new());
    let ssh_config = t.path("ssh_config");
    std::fs::write(
        &ssh_config,
        format!(
            "Host h*\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentityFile {}\n",
            server.port,
            user(),
            keys.key("id_ed25519").display()
        ),
    )
    .unwrap();
    let list = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let t = t.toml(&format!(
        "[config]\n{config}ssh_config = \"{}\"\nknown_hosts = \"{}\"\n\n[hosts]\nweb = [{list}]\n\n[tasks.t]\non = \"web\"\nrun = \"true\"\n",
        ssh_config.display(),
        server.known_hosts().display(),
    ));
    (t, names)
}

/// With every connection allowed open and more hosts to go, the idle connection of a host
/// that is done is closed at once to make room: 40 hosts through `max_connections = 8`
/// finish without waiting for the 60 s idle close, and the debug log says why each
/// connection was closed.
#[test]
fn hosts_past_max_connections_do_not_wait_for_idle_connections() {
    let server = Server::openssh();
    let (t, _) = fleet_test(&server, 40, "max_connections = 8\n");
    let mut c = t
        .clone_args(&["run", "t", "-q", "--log-level", "debug"])
        .command();
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Stop(c.spawn().unwrap());
    // Far below the 60 s idle timer that used to free the slots.
    let r = wait_within(&mut child, &c, Duration::from_secs(30));
    assert_eq!(r.code, 0, "{}", r.show());
    let made_room = r
        .stderr
        .lines()
        .filter(|l| l.contains("to make room for h") && l.contains("(max_connections = 8 reached)"))
        .count();
    assert_eq!(made_room, 32, "{}", r.stderr);
    assert!(!r.stderr.contains("idle for 60s"), "{}", r.stderr);
    // 40 hosts: counts, not a line per host (-v has them).
    let r = t.clone_args(&["run", "t", "--plain"]).run();
    r.expect_code(0);
    assert!(
        mask(&r.stderr).starts_with("ok t X.Xs\n  40 hosts: 40 ok\n"),
        "{}",
        r.show()
    );
    let v = t.clone_args(&["run", "t", "--plain", "-v"]).run();
    assert_eq!(v.stderr.matches(" ok ").count(), 40, "{}", v.show());
}

/// 200 hosts behind one sshd that drops unauthenticated connections past 10 (OpenSSH's
/// default MaxStartups 10:30:60): handshakes are paced per endpoint, so every host is
/// reached and the task succeeds everywhere.
#[test]
fn many_hosts_behind_one_server_are_paced_below_its_max_startups() {
    let server = Server::openssh_with("MaxStartups 10:30:60\n");
    let (t, _) = fleet_test(&server, 200, "max_connections = 1000\n");
    let mut c = t
        .clone_args(&["run", "t", "-q", "--format", "json"])
        .command();
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Stop(c.spawn().unwrap());
    let r = wait_within(&mut child, &c, Duration::from_secs(120));
    assert_eq!(r.code, 0, "{}", r.show());
    let ok = r
        .json_lines()
        .iter()
        .filter(|e| e["event"] == "command_finish" && e["exit_code"] == 0)
        .count();
    assert_eq!(ok, 200, "{}", r.stderr);
    // Pacing keeps sshd below MaxStartups nearly always; a drop now and then (sshd's
    // listener hears of logins late on a loaded machine) is tried again and slows the
    // endpoint, so only a few ever happen (with pacing off, 200 hosts fail).
    let drops = server.log_count("drop connection #");
    eprintln!("sshd dropped {drops} of the 200 logins");
    assert!(drops <= 4, "sshd dropped {drops} connections");
}

/// A `#!` command on a host: the script goes to the login shell on the channel's stdin
/// (never in an argument list), is written to a private temporary file there, run with
/// its interpreter, and removed; `[env]` reaches it like a task's `env`.
#[test]
fn remote_scripts_run_from_a_private_file_with_the_global_env() {
    let server = Server::openssh();
    let canary = "canary-5e1d0c77";
    let sleep = marker(3, 6);
    let mut body = format!(
        r##"[env]
GREETING = "hello from {{{{ host }}}}"
[tasks.py]
on = "web"
run = """#!/usr/bin/env python3
import os, stat, sys
here = os.path.dirname(os.path.abspath(__file__))
print(os.environ["GREETING"], os.environ["NEXUS_TASK"], oct(stat.S_IMODE(os.stat(here).st_mode)))
print(here, file=sys.stderr)
"""
[tasks.slow]
on = "web"
run = """#!/bin/sh
# {canary}
sleep {sleep}
echo slept
"""
"##
    );
    if is_root() {
        body +=
            "[tasks.root]\non = \"web\"\nrun = [{ cmd = \"#!/bin/sh\\nid -u\", sudo = true }]\n";
    } else {
        note("SKIP ssh::remote_scripts_run_from_a_private_file_with_the_global_env (sudo part): needs root (sudo -n as the login user)");
    }
    let t = ssh_test(&server, "id_ed25519", &body);
    let h = host(&server);
    let r = t.clone_args(&["run", "py"]).run();
    r.expect_code(0);
    assert_eq!(
        r.stdout,
        format!("py@{h} | hello from {h} py 0o700\n"),
        "{}",
        r.show()
    );
    let dir = r
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix(&format!("py@{h} | ")))
        .unwrap_or_else(|| panic!("no directory on stderr: {}", r.show()))
        .to_string();
    assert!(dir.contains("/nexus-script."), "{dir}");
    assert!(!Path::new(&dir).exists(), "{dir} is left behind");

    let mut c = t.clone_args(&["run", "slow"]).command();
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Stop(c.spawn().unwrap());
    wait_until("the script to run", Duration::from_secs(20), || {
        !processes_matching(&format!("sleep {sleep}")).is_empty()
    });
    let seen = all_cmdlines();
    assert!(
        !seen.contains(canary),
        "the script is in an argument list:\n{}",
        seen.lines()
            .filter(|l| l.contains(canary))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let r = wait_within(&mut child, &c, Duration::from_secs(30));
    r.expect_code(0);
    assert_eq!(r.stdout, format!("slow@{h} | slept\n"), "{}", r.show());
    if is_root() {
        let r = t.clone_args(&["run", "root"]).run();
        r.expect_code(0);
        assert_eq!(r.stdout, format!("root@{h} | 0\n"), "{}", r.show());
    }
}

/// A secret store in `t`'s project (key file `k.key`) holding `TOKEN` = `value`, set
/// from stdin.
fn store_token(t: &Test, value: &str) {
    t.clone_args(&["secret", "init", "--keyfile", "k.key"])
        .run()
        .expect_code(0);
    let mut set = t
        .clone_args(&["secret", "set", "TOKEN", "--keyfile", "k.key"])
        .command();
    set.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = set.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), value.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
}

/// Run nexus with `args` until its command has written `out` and sleeps `sleep`; then no
/// process's argument list may hold `canary`, and neither may what nexus printed. The
/// run must succeed.
fn run_watching_cmdlines(
    t: &Test,
    args: &[&str],
    out: &Path,
    sleep: &str,
    canary: &str,
) -> crate::common::Run {
    let name = args[1];
    let mut c = t.clone_args(args).command();
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Stop(c.spawn().unwrap());
    wait_until("the command to run", Duration::from_secs(20), || {
        out.exists() && !processes_matching(&format!("sleep {sleep}")).is_empty()
    });
    let seen = all_cmdlines();
    assert!(
        !seen.contains(canary),
        "{name}: the value is in an argument list:\n{}",
        seen.lines()
            .filter(|l| l.contains(canary))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let r = wait_within(&mut child, &c, Duration::from_secs(30));
    assert_eq!(r.code, 0, "{name}: {}", r.show());
    assert!(
        !r.stdout.contains(canary) && !r.stderr.contains(canary),
        "{name}: the value was shown: {}",
        r.show()
    );
    r
}

/// A run that may need more descriptors than nexus may open says so before it starts,
/// with the numbers and the way out, and opens fewer connections at a time instead of
/// failing hosts with "Too many open files": 60 hosts (4 connections each allowed) under
/// `ulimit -n 100` all succeed.
#[test]
fn a_descriptor_limit_below_what_the_run_may_need_is_a_warning() {
    let server = Server::openssh();
    let (t, _) = fleet_test(&server, 60, "");
    let inner = t.clone_args(&["run", "t", "-q"]).command();
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg("ulimit -n 100 && exec \"$0\" \"$@\"")
        .arg(inner.get_program())
        .args(inner.get_args())
        .current_dir(inner.get_current_dir().unwrap());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Stop(c.spawn().unwrap());
    let r = wait_within(&mut child, &c, Duration::from_secs(60));
    r.expect(
        0,
        "",
        "warning: this run may open 240 SSH connections at once, but nexus may only open 100 files (hard limit 100): it opens at most 12 at a time\n  help: raise the limit to 784 (`ulimit -n 784` as root, or LimitNOFILE for a service) to reach more hosts at once\nok t (X.Xs)\n",
    );
}
