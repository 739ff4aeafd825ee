//! Dry-run and pre-flight checks against a real sshd: nothing runs, the plan is complete,
//! unreachable and wrongly-keyed hosts are reported in the documented layout.

use crate::common::sshd::{Keys, Server};
use crate::common::*;

/// Latencies and the server banner vary; everything else is compared exactly.
fn normalize(s: &str) -> String {
    let mut out = String::new();
    for line in mask(s).lines() {
        let mut l = line.to_string();
        if let (Some(i), Some(j)) = (l.find("  ("), l.find(" free)")) {
            if l.contains("state directory") && i < j {
                l.replace_range(i + 3..j, "SIZE");
            }
        }
        if let Some(i) = l.find("SSH-2.0-") {
            let end = l[i..].find(')').map_or(l.len(), |j| i + j);
            l.replace_range(i..end, "SSH-2.0-BANNER");
        }
        // "12ms" -> "Nms"
        let b = l.as_bytes();
        let mut o = String::new();
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
                let mut j = i;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                if l[j..].starts_with("ms") {
                    o.push_str("Nms");
                    i = j + 2;
                    continue;
                }
            }
            o.push(b[i] as char);
            i += 1;
        }
        out += &o;
        out.push('\n');
    }
    out
}

/// Why `sudo -n true` fails for the user running the suite on this machine (the last
/// line sudo printed), or None when it works (always as root). The test servers log that
/// user in on this machine, so nexus's remote sudo check gets the same answer.
fn sudo_refusal() -> Option<String> {
    let out = std::process::Command::new("sudo")
        .args(["-n", "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("sudo (install it: make deps)");
    if out.status.success() {
        return None;
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Some(err.lines().last().unwrap_or("").trim().to_string())
}

/// The Sudo Access group for hosts good and good2, and the error entries (numbered from
/// `first`) a refusing sudo adds to the list.
fn sudo_report(first: usize) -> (String, String) {
    let u = user();
    match sudo_refusal() {
        None => (
            "Sudo Access [2/2]\n  ok   good  (NOPASSWD confirmed)\n  ok   good2  (NOPASSWD confirmed)\n".to_string(),
            String::new(),
        ),
        Some(why) => (
            format!("Sudo Access [0/2]\n  FAIL good  \"{why}\"\n  FAIL good2  \"{why}\"\n"),
            ["good", "good2"]
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    format!(
                        "\n  {n}. {h}: sudo not available: \"{why}\"\n     help: allow it without a password: echo \"{u} ALL=(ALL) NOPASSWD:ALL\" > /etc/sudoers.d/{u}\n     help: or use --skip-sudo-check if sudo is not required\n",
                        n = first + i
                    )
                })
                .collect(),
        ),
    }
}

struct Fleet {
    server: Server,
    closed: u16,
    test: Test,
}

/// Hosts `good` and `good2` (working), `badkey` (wrong key), `down` (closed port).
fn fleet(extra_tasks: &str) -> Fleet {
    let server = Server::openssh();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let keys = Keys::get();
    let t = Test::new();
    let ssh_config = format!(
        "Host good good2\n  HostName 127.0.0.1\n  Port {p}\n  User {u}\n  IdentityFile {good}\n  IdentitiesOnly yes\n\nHost badkey\n  HostName 127.0.0.1\n  Port {p}\n  User {u}\n  IdentityFile {bad}\n  IdentitiesOnly yes\n\nHost down\n  HostName 127.0.0.1\n  Port {closed}\n  User {u}\n",
        u = user(),
        p = server.port,
        good = keys.key("id_ed25519").display(),
        bad = keys.key("wrong_ed25519").display(),
    );
    let toml = format!(
        "[config]\nssh_config = \"{cfg}\"\nknown_hosts = \"{kh}\"\nconnect_timeout = \"2s\"\n\n[hosts]\nweb = [\"good\", \"good2\", \"badkey\", \"down\"]\n\n{extra_tasks}",
        cfg = t.path("ssh_config").display(),
        kh = server.known_hosts().display(),
    );
    let t = t.file("ssh_config", &ssh_config).toml(&toml);
    let home = t.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let test = t
        .env("HOME", home.to_str().unwrap())
        .env("SSH_AUTH_SOCK", "");
    Fleet {
        server,
        closed,
        test,
    }
}

const TASKS: &str = r#"
[tasks.build]
run = "touch local-marker"

[tasks.deploy]
deps = ["build"]
on = "web"
run = [
  { cmd = "touch /tmp/nexus-remote-marker-{{ host }}", sudo = true },
  { cmd = "echo {{ task }} done", retries = 2, timeout = "5s" },
]
"#;

#[test]
fn preflight_reports_unreachable_and_rejected_hosts() {
    let f = fleet(TASKS);
    let r = f.test.clone_args(&["preflight", "deploy", "--plain"]).run();
    r.expect_code(3).expect_stderr("");
    let keys = Keys::get();
    // Sudo works as root; as another user it depends on this machine's sudoers.
    let (sudo_group, sudo_errors) = sudo_report(3);
    let n_errors = if sudo_errors.is_empty() { 2 } else { 4 };
    let p = f.server.port;
    let closed = f.closed;
    let home = f.test.path("home");
    let want = format!(
        r#"Pre-flight checks for: deploy

Configuration
  ok   nexus.toml valid
  ok   task deploy exists
  ok   dependencies resolved: build -> deploy

Host Connectivity [3/4]
  ok   good  (127.0.0.1:{p}, Nms, SSH-2.0-BANNER)
  ok   good2  (127.0.0.1:{p}, Nms, SSH-2.0-BANNER)
  ok   badkey  (127.0.0.1:{p}, Nms, SSH-2.0-BANNER)
  FAIL down  Connection refused (127.0.0.1:{closed})

SSH Authentication [2/3]
  ok   good  (key: {good} as {u})
  ok   good2  (key: {good} as {u})
  FAIL badkey  Authentication failed for user {u}; tried: {bad} (rejected), password (not asked: no terminal or CI is set)
  skip down  (skipped - host unreachable)

{sudo_group}  skip badkey  (skipped - authentication failed)
  skip down  (skipped - host unreachable)

Disk Space [1/1]
  ok   state directory {state}  (SIZE free)

FAIL Pre-flight checks failed ({n_errors} errors)

Errors:
  1. down: Connection refused (127.0.0.1:{closed})
     help: Verify SSH is running: nc -zv 127.0.0.1 {closed}
     help: Check the host name and port of `down` (nexus hosts resolve down)
     help: Check firewalls between here and the host

  2. badkey: Authentication failed for user {u}; tried: {bad} (rejected), password (not asked: no terminal or CI is set)
     help: check that the public key is in ~{u}/.ssh/authorized_keys on 127.0.0.1
     help: name the key with -i PATH, ssh_identity in nexus.toml, or IdentityFile in ssh_config
     help: load it into ssh-agent: ssh-add PATH
{sudo_errors}
Run with --force to skip failed hosts and continue with available hosts.
"#,
        good = keys.key("id_ed25519").display(),
        bad = keys.key("wrong_ed25519").display(),
        u = user(),
        state = f.test.path(".nexus-home").display(),
    );
    let _ = home;
    assert_text("preflight's report", &normalize(&r.stdout), &want);

    // quiet: the failures only.
    let q = f
        .test
        .clone_args(&["preflight", "deploy", "--format", "quiet", "--plain"])
        .run();
    q.expect_code(3).expect_stderr("");
    let errors_part =
        &want[want.find("\nErrors:").unwrap()..want.find("Run with --force").unwrap()];
    assert_text("the quiet report", &normalize(&q.stdout), errors_part);

    // json: one document.
    let j = f
        .test
        .clone_args(&["preflight", "deploy", "--format", "json"])
        .run();
    j.expect_code(3).expect_stderr("");
    let doc: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(doc["passed"], false);
    assert_eq!(doc["exit_code"], 3);
    let errs: Vec<&str> = doc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    if sudo_errors.is_empty() {
        assert_eq!(errs, ["down", "badkey"]);
    } else {
        assert_eq!(errs, ["down", "badkey", "good", "good2"]);
    }

    // Skipping connectivity and auth leaves nothing to fail on those hosts.
    let s = f
        .test
        .clone_args(&[
            "preflight",
            "deploy",
            "--plain",
            "--skip-connectivity",
            "--skip-auth",
            "--skip-sudo-check",
            "--skip-disk-check",
        ])
        .run();
    s.expect_code(0).expect_stderr("");
    assert_text(
        "the report",
        &normalize(&s.stdout),
        "Pre-flight checks for: deploy

Configuration
  ok   nexus.toml valid
  ok   task deploy exists
  ok   dependencies resolved: build -> deploy

ok All pre-flight checks passed (3 checks in X.Xs)
",
    );
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let f = fleet(TASKS);
    let t = &f.test;
    let r = t
        .clone_args(&["run", "deploy", "-n", "--plain", "-H", "good,good2"])
        .run();
    // Its exit code is the pre-flight's: 1 when sudo is refused.
    let (sudo_group, sudo_errors) = sudo_report(1);
    r.expect_code(if sudo_errors.is_empty() { 0 } else { 1 })
        .expect_stderr("");
    let verdict = if sudo_errors.is_empty() {
        "ok All pre-flight checks passed (10 checks in X.Xs)\n".to_string()
    } else {
        format!("FAIL Pre-flight checks failed (2 errors)\n\nErrors:{sudo_errors}\n")
    };
    assert_text(
        "the dry run",
        &normalize(&r.stdout),
        &format!(
            "DRY RUN: no command will be executed

Pre-flight checks for: deploy

Configuration
  ok   nexus.toml valid
  ok   task deploy exists
  ok   dependencies resolved: build -> deploy

Host Connectivity [2/2]
  ok   good  (127.0.0.1:{p}, Nms, SSH-2.0-BANNER)
  ok   good2  (127.0.0.1:{p}, Nms, SSH-2.0-BANNER)

SSH Authentication [2/2]
  ok   good  (key: {key} as {u})
  ok   good2  (key: {key} as {u})

{sudo_group}
Disk Space [1/1]
  ok   state directory {state}  (SIZE free)

{verdict}
Execution plan

  Phase 1:
    * build [local]
      `- touch local-marker

  Phase 2:
    * deploy [good, good2]
      |- touch /tmp/nexus-remote-marker-{{{{ host }}}}  [sudo]
      `- echo deploy done  [retries:2] [timeout:5s]

Summary
  Tasks:     2 tasks, 2 phases
  Hosts:     2 unique remote hosts
  Commands:  5 commands in all (per host)
  Estimated: none (no previous successful runs of these targets)

Run without --dry-run to execute.
",
            p = f.server.port,
            key = Keys::get().key("id_ed25519").display(),
            u = user(),
            state = t.path(".nexus-home").display(),
        ),
    );
    assert!(
        !t.path("local-marker").exists(),
        "dry run created a local file"
    );
    for h in ["good", "good2"] {
        let p = format!("/tmp/nexus-remote-marker-{h}");
        assert!(!std::path::Path::new(&p).exists(), "dry run created {p}");
    }
    // No run was recorded either.
    assert!(!t.path(".nexus-home/runs").exists());

    let j = t
        .clone_args(&["run", "deploy", "--dry-run", "--format", "json"])
        .run();
    // badkey and down fail pre-flight.
    j.expect_code(3).expect_stderr("");
    let doc: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(doc["dry_run"], true);
    let phases = doc["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2);
    assert_eq!(phases[0]["tasks"][0]["task"], "build");
    assert_eq!(
        phases[0]["tasks"][0]["targets"],
        serde_json::json!(["local"])
    );
    let deploy = &phases[1]["tasks"][0];
    assert_eq!(
        deploy["targets"],
        serde_json::json!(["good", "good2", "badkey", "down"])
    );
    assert_eq!(
        deploy["commands"][0]["command"],
        "touch /tmp/nexus-remote-marker-{{ host }}"
    );
    assert_eq!(
        deploy["commands"][0]["annotations"],
        serde_json::json!(["sudo"])
    );
    assert_eq!(doc["summary"]["commands"], 9);
    assert_eq!(
        doc["preflight"]["errors"].as_array().unwrap().len(),
        if sudo_errors.is_empty() { 2 } else { 4 }
    );
    assert!(!t.path("local-marker").exists());
}

#[test]
fn force_runs_on_the_reachable_hosts_and_reports_the_others() {
    let f = fleet(
        r#"
[tasks.hello]
on = "web"
run = "echo hello from {{ host }}"
"#,
    );
    let r = f
        .test
        .clone_args(&["run", "hello", "--force", "--format", "json", "--plain"])
        .run();
    r.expect_code(0);
    // Latencies and ports vary: compared after normalize() and with the ports spelled out.
    assert_text(
        "stderr",
        &normalize(&r.stderr),
        &format!(
            "
Errors:
  1. down: Connection refused (127.0.0.1:{closed})
     help: Verify SSH is running: nc -zv 127.0.0.1 {closed}
     help: Check the host name and port of `down` (nexus hosts resolve down)
     help: Check firewalls between here and the host

  2. badkey: Authentication failed for user {u}; tried: {bad} (rejected), password (not asked: no terminal or CI is set)
     help: check that the public key is in ~{u}/.ssh/authorized_keys on 127.0.0.1
     help: name the key with -i PATH, ssh_identity in nexus.toml, or IdentityFile in ssh_config
     help: load it into ssh-agent: ssh-add PATH

warning: --force: continuing without down, badkey
",
            closed = f.closed,
            u = user(),
            bad = Keys::get().key("wrong_ed25519").display(),
        ),
    );
    let lines = r.json_lines();
    let fin = lines.iter().find(|l| l["event"] == "task_finish").unwrap();
    assert_eq!(
        fin["hosts"],
        serde_json::json!({"good": "success", "good2": "success", "badkey": "skipped", "down": "skipped"})
    );
    let said: Vec<&str> = lines
        .iter()
        .filter(|l| l["event"] == "output")
        .map(|l| l["line"].as_str().unwrap())
        .collect();
    assert_eq!(said.len(), 2);
    assert!(said.contains(&"hello from good") && said.contains(&"hello from good2"));
}
