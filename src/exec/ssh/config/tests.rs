//! Unit tests of the ssh_config reader (the corpus test in tests/ checks it against
//! `ssh -G`).

use std::path::Path;

use super::expand::is_addr;
use super::lex::argv_split;
use super::values::{a2port, convtime};
use super::*;

fn cfg(text: &str) -> SshConfig {
    match parse_str(text, Path::new("/test/config")) {
        Ok(c) => c,
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn perr(text: &str) -> String {
    match parse_str(text, Path::new("/test/config")) {
        Ok(_) => panic!("expected an error for {text:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_config_gives_defaults() {
    let r = SshConfig::default().resolve("Web");
    assert_eq!(r.hostname, "web");
    assert_eq!(r.port, 22);
    assert_eq!(r.user, crate::userenv::user_name());
    assert_eq!(r.identity_files.len(), 7);
    assert!(r.identity_files[0].ends_with("/.ssh/id_rsa"));
    assert_eq!(r.strict_host_key_checking, "ask");
    assert_eq!(r.connect_timeout, None);
    assert_eq!(r.server_alive_interval, 0);
    assert_eq!(r.proxy_jump, None);
    assert!(!r.identities_only);
    assert_eq!(r.user_known_hosts_files.len(), 2);
}

#[test]
fn first_value_wins_and_identities_accumulate() {
    let c = cfg("Host web\n  User a\n  IdentityFile /k1\nHost *\n  User b\n  Port 2200\n  IdentityFile /k2\n  IdentityFile /k1\n");
    let r = c.resolve("web");
    assert_eq!(r.user, "a");
    assert_eq!(r.port, 2200);
    assert_eq!(r.identity_files, vec!["/k1", "/k2"]);
    assert_eq!(c.resolve("db").user, "b");
}

#[test]
fn keyword_forms_and_quotes() {
    let c = cfg("HOST=web\n\tuser = \"bob smith\"\n  Port=2222 # comment\n# whole line\n\n  HostName \"h.example\"\n");
    let r = c.resolve("web");
    assert_eq!(r.user, "bob smith");
    assert_eq!(r.port, 2222);
    assert_eq!(r.hostname, "h.example");
}

#[test]
fn host_patterns_and_negation() {
    let c = cfg("Host *.prod !db?.prod\n  User p\nHost w?b\n  User q\n");
    assert_eq!(c.resolve("web.prod").user, "p");
    assert_ne!(c.resolve("db1.prod").user, "p");
    assert_eq!(c.resolve("db10.prod").user, "p");
    assert_eq!(c.resolve("wxb").user, "q");
    // Host is case-sensitive against the alias as typed.
    assert_ne!(c.resolve("WXB").user, "q");
}

#[test]
fn match_host_uses_hostname_so_far() {
    let c = cfg("Host web\n  HostName %h.example.com\nMatch host *.example.com\n  User ex\nMatch host web\n  Port 99\nMatch all\n  Port 100\n");
    let r = c.resolve("web");
    assert_eq!(r.hostname, "web.example.com");
    assert_eq!(r.user, "ex");
    assert_eq!(r.port, 100);
    let r = c.resolve("db");
    assert_eq!(r.port, 100);
    assert_ne!(r.user, "ex");
}

#[test]
fn match_negation_and_unsupported() {
    let c = cfg("Match !host web\n  User notweb\nMatch exec true\n  Port 5\nMatch originalhost WEB\n  Port 6\n");
    assert_eq!(c.resolve("db").user, "notweb");
    assert_ne!(c.resolve("web").user, "notweb");
    assert_eq!(c.resolve("web").port, 6);
    assert_eq!(c.resolve("db").port, 22);
}

#[test]
fn overrides_and_fallbacks() {
    let c = cfg("Host web\n  User fileuser\n  IdentityFile /f\n");
    let o = Overrides {
        user: Some("o".into()),
        port: Some(7),
        identity: Some("/o".into()),
    };
    let f = Fallbacks {
        user: Some("fb".into()),
        port: Some(8),
        identity: Some("/fb".into()),
    };
    let r = c.resolve_with("web", &o, &f);
    assert_eq!((r.user.as_str(), r.port), ("o", 7));
    assert_eq!(r.identity_files, vec!["/o", "/f"]);
    let r = c.resolve_with("web", &Overrides::default(), &f);
    assert_eq!((r.user.as_str(), r.port), ("fileuser", 8));
    assert_eq!(r.identity_files, vec!["/f"]);
    let r = c.resolve_with("db", &Overrides::default(), &f);
    assert_eq!(r.user, "fb");
    assert_eq!(r.identity_files, vec!["/fb"]);
}

#[test]
fn tokens_expand() {
    let c = cfg("Host web\n  HostName real.%h\n  User u1\n  Port 2022\n  IdentityFile /k/%h-%p-%r-%n-%%-%Z\n  UserKnownHostsFile /kh/%h /kh2\n");
    let r = c.resolve("web");
    assert_eq!(r.identity_files, vec!["/k/real.web-2022-u1-web-%-%Z"]);
    assert_eq!(r.user_known_hosts_files, vec!["/kh/real.web", "/kh2"]);
    assert!(r
        .ssh_g_lines()
        .contains(&"userknownhostsfile /kh/real.web /kh2".to_string()));
}

#[test]
fn values_in_ssh_g_words() {
    let c = cfg("Host a\n StrictHostKeyChecking no\n ConnectTimeout 1m\n ServerAliveInterval 1h1s\n IdentitiesOnly yes\n ProxyJump u@j1:2200,ssh://v@j2:23\n IdentityFile none\nHost b\n StrictHostKeyChecking YES\n ProxyJump none\n ConnectTimeout none\nHost b\n ConnectTimeout 3\n");
    let g = c.resolve("a").ssh_g_lines();
    for want in [
        "stricthostkeychecking false",
        "connecttimeout 60",
        "serveraliveinterval 3601",
        "identitiesonly yes",
        "proxyjump u@j1:2200,v@j2:23",
        "identityfile none",
    ] {
        assert!(g.contains(&want.to_string()), "{want} not in {g:?}");
    }
    let r = c.resolve("b");
    assert_eq!(r.strict_host_key_checking, "true");
    assert_eq!(r.proxy_jump, None);
    assert_eq!(r.connect_timeout, Some(3));
}

#[test]
fn errors_name_file_and_line() {
    assert_eq!(
        perr("Host x\n  Port abc\n"),
        "/test/config:2: Bad port 'abc'."
    );
    assert!(perr("User\n").starts_with("/test/config:1:"));
    assert!(perr("User a b\n").contains("extra arguments"));
    assert!(perr("StrictHostKeyChecking maybe\n").contains("unsupported option"));
    assert!(perr("ConnectTimeout 5x\n").contains("invalid time value"));
    assert!(perr("Match\n").contains("no argument after keyword"));
    assert!(perr("Match all host x\n").contains("cannot be combined"));
    assert!(perr("Match host\n").contains("Missing Match criteria"));
    assert!(perr("Match foo bar\n").contains("Unsupported Match attribute"));
    assert!(perr("ProxyJump a:b\n").contains("Invalid ProxyJump"));
    assert!(perr("Port\n").contains("no argument after keyword \"port\""));
    assert!(perr("UserKnownHostsFile none /x\n").contains("must appear alone"));
    assert!(perr("User \"abc\n").contains("quotes"));
}

#[test]
fn unknown_keywords_are_ignored() {
    let c = cfg("Host x\n  FrobnicateLevel 11\n  ForwardAgent yes\n  User u\n");
    assert_eq!(c.resolve("x").user, "u");
}

#[test]
fn include_relative_glob_conditional_and_depth() {
    let dir = std::env::temp_dir().join(format!("nexus-sshcfg-unit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("d")).expect("mkdir");
    let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).expect("write");
    w("d/b.conf", "Host *\n  Port 2002\n");
    w("d/a.conf", "User from-a\nHost other\n  User nope\n");
    w(
        "loop.conf",
        &format!("Include {}/loop.conf\n", dir.display()),
    );
    let text = format!(
        "Host web\n  Include {d}/d/*.conf\nHost *\n  User outer\n",
        d = dir.display()
    );
    let c = cfg(&text);
    let r = c.resolve("web");
    assert_eq!((r.user.as_str(), r.port), ("from-a", 2002));
    let r = c.resolve("db");
    assert_eq!((r.user.as_str(), r.port), ("outer", 22));
    let e = perr(&format!("Include {}/loop.conf\n", dir.display()));
    assert!(e.contains("Too many recursive"), "{e}");
    {
        use std::os::unix::fs::PermissionsExt;
        w("open.conf", "User x\n");
        let perm = std::fs::Permissions::from_mode(0o666);
        std::fs::set_permissions(dir.join("open.conf"), perm).expect("chmod");
        let e = perr(&format!("\nInclude {}/open.conf\n", dir.display()));
        assert!(e.contains(":2: Bad owner or permissions"), "{e}");
    }
    // An include that matches nothing is not an error.
    let c = cfg(&format!("Include {}/nothing-*.conf\n", dir.display()));
    assert_eq!(c.resolve("x").port, 22);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn helpers() {
    assert_eq!(convtime("1w1d1h1m1s"), Some(694861));
    assert_eq!(convtime("-1"), None);
    assert_eq!(convtime(""), None);
    assert_eq!(a2port("65535"), Some(65535));
    assert_eq!(a2port("65536"), None);
    assert_eq!(a2port("0"), None);
    assert!(is_addr("10.0.0.1") && is_addr("fe80::1") && !is_addr("Web"));
    assert_eq!(
        argv_split("a \"b c\" 'd' e\\ f #x"),
        Some(vec!["a".into(), "b c".into(), "d".into(), "e f".into()])
    );
}
