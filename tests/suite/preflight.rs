//! Dry-run and pre-flight checks against a real sshd: nothing runs, the plan is complete,
//! unreachable and wrongly-keyed hosts are reported with the REQ-0174/0175 layout.

use crate::common::sshd::{Keys, Server};
use crate::common::*;

/// Latencies and the server banner vary; everything else is compared exactly.
fn normalize(s: &str) -> String {
    let mut out = String::new();
    for line in mask(s).lines() {
        let mut l = line.to_string();
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
        "Host good good2\n  HostName 127.0.0.1\n  Port {p}\n  User root\n  IdentityFile {good}\n  IdentitiesOnly yes\n\nHost badkey\n  HostName 127.0.0.1\n  Port {p}\n  User root\n  IdentityFile {bad}\n  IdentitiesOnly yes\n\nHost down\n  HostName 127.0.0.1\n  Port {closed}\n  User root\n",
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
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stderr, "");
    let keys = Keys::get();
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
  ok   good  (key: {good} as root)
  ok   good2  (key: {good} as root)
  FAIL badkey  Authentication failed for user root; tried: {bad} (rejected), password (not asked: no terminal or CI is set)
  skip down  (skipped - host unreachable)

Sudo Access [2/2]
  ok   good  (NOPASSWD confirmed)
  ok   good2  (NOPASSWD confirmed)
  skip badkey  (skipped - authentication failed)
  skip down  (skipped - host unreachable)

FAIL Pre-flight checks failed (2 errors)

Errors:
  1. down: Connection refused (127.0.0.1:{closed})
     -> Verify SSH is running: nc -zv 127.0.0.1 {closed}
     -> Check the host name and port of `down` (nexus hosts resolve down)
     -> Check firewalls between here and the host

  2. badkey: Authentication failed for user root; tried: {bad} (rejected), password (not asked: no terminal or CI is set)
     -> check that the public key is in ~root/.ssh/authorized_keys on 127.0.0.1
     -> name the key with -i PATH, ssh_identity in nexus.toml, or IdentityFile in ssh_config
     -> load it into ssh-agent: ssh-add PATH

Run with --force to skip failed hosts and continue with available hosts.
"#,
        good = keys.key("id_ed25519").display(),
        bad = keys.key("wrong_ed25519").display(),
    );
    let _ = home;
    assert_eq!(normalize(&r.stdout), want);

    // quiet: the failures only.
    let q = f
        .test
        .clone_args(&["preflight", "deploy", "--format", "quiet", "--plain"])
        .run();
    assert_eq!(q.code, 3);
    let errors_part =
        &want[want.find("\nErrors:").unwrap()..want.find("Run with --force").unwrap()];
    assert_eq!(normalize(&q.stdout), errors_part);

    // json: one document.
    let j = f
        .test
        .clone_args(&["preflight", "deploy", "--format", "json"])
        .run();
    assert_eq!(j.code, 3);
    let doc: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(doc["passed"], false);
    assert_eq!(doc["exit_code"], 3);
    let errs: Vec<&str> = doc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(errs, ["down", "badkey"]);

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
        ])
        .run();
    assert_eq!(s.code, 0, "{}", s.stdout);
    assert!(
        normalize(&s.stdout).ends_with("ok All pre-flight checks passed (3 checks in X.Xs)\n"),
        "{}",
        s.stdout
    );
}

#[test]
fn dry_run_prints_the_plan_and_changes_nothing() {
    let f = fleet(TASKS);
    let t = &f.test;
    let r = t
        .clone_args(&["run", "deploy", "-n", "--plain", "-H", "good,good2"])
        .run();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let out = normalize(&r.stdout);
    assert!(
        out.starts_with("DRY RUN: no command will be executed\n\nPre-flight checks for: deploy\n"),
        "{out}"
    );
    let plan_part = &out[out.find("Execution plan").unwrap()..];
    assert_eq!(
        plan_part,
        "Execution plan

  Phase 1:
    * build [local]
      `- touch local-marker

  Phase 2:
    * deploy [good, good2]
      |- touch /tmp/nexus-remote-marker-{{ host }}  [sudo]
      `- echo deploy done  [retries:2] [timeout:5s]

Summary
  Tasks:     2 tasks, 2 phases
  Hosts:     2 unique remote hosts
  Commands:  5 commands in all (per host)
  Estimated: none (no previous successful runs of these targets)

Run without --dry-run to execute.
"
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
    assert_eq!(j.code, 3, "badkey and down fail pre-flight: {}", j.stdout);
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
    assert_eq!(doc["preflight"]["errors"].as_array().unwrap().len(), 2);
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
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .ends_with("nexus: --force: continuing without down, badkey\n"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("  1. down: Connection refused"),
        "{}",
        r.stderr
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
