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
    let r = SshConfig::default().resolve("Web").unwrap();
    assert_eq!(r.hostname, "web");
    assert_eq!(r.port, 22);
    assert_eq!(r.user, crate::userenv::user_name());
    assert_eq!(r.identity_files.len(), 7);
    assert!(r.identity_files[0].ends_with("/.ssh/id_rsa"));
    assert_eq!(r.strict_host_key_checking, "ask");
    assert_eq!(r.connect_timeout, None);
    assert_eq!(r.server_alive_interval, None);
    assert_eq!(r.keepalive(), (15, 3));
    assert_eq!(r.proxy_jump, None);
    assert!(!r.identities_only);
    assert_eq!(r.user_known_hosts_files.len(), 2);
}

#[test]
fn first_value_wins_and_identities_accumulate() {
    let c = cfg("Host web\n  User a\n  IdentityFile /k1\nHost *\n  User b\n  Port 2200\n  IdentityFile /k2\n  IdentityFile /k1\n");
    let r = c.resolve("web").unwrap();
    assert_eq!(r.user, "a");
    assert_eq!(r.port, 2200);
    assert_eq!(r.identity_files, vec!["/k1", "/k2"]);
    assert_eq!(c.resolve("db").unwrap().user, "b");
}

#[test]
fn blocks_of_plain_names_are_visited_only_for_those_names_in_file_order() {
    // Resolution skips the blocks that name only other hosts (the index); what applies,
    // and in which order, stays that of a walk through every block.
    let c = cfg("ConnectTimeout 7\nHost a b\n  Port 1\nHost *\n  IdentityFile /k0\nHost b\n  Port 2\n  User bee\nHost A\n  Port 3\n  User upper\nMatch host c\n  Port 4\nHost !a c\n  User cee\nHost a\n  IdentityFile /k1\n  HostName h.a\nHost a a\n  Port 9\n");
    let a = c.resolve("a").unwrap();
    assert_eq!((a.port, a.hostname.as_str()), (1, "h.a"));
    assert_eq!(a.identity_files, vec!["/k0", "/k1"]);
    assert_eq!(a.user, crate::userenv::user_name());
    let b = c.resolve("b").unwrap();
    assert_eq!((b.port, b.user.as_str()), (1, "bee"));
    let upper = c.resolve("A").unwrap();
    assert_eq!((upper.port, upper.user.as_str()), (3, "upper"));
    let cc = c.resolve("c").unwrap();
    assert_eq!((cc.port, cc.user.as_str()), (4, "cee"));
    let d = c.resolve("d").unwrap();
    assert_eq!(
        (d.port, d.identity_files.clone()),
        (22, vec!["/k0".to_string()])
    );
    for r in [&a, &b, &upper, &cc, &d] {
        assert_eq!(r.connect_timeout, Some(7));
    }
    // An unknown keyword in another host's block is still refused for every host that
    // does not ignore it.
    let c = cfg("Host y\n  IgnoreUnknown frob\nHost x\n  Frob 1\n");
    assert!(c.resolve("y").is_ok());
    assert_eq!(
        c.resolve("z").unwrap_err().to_string(),
        format!("/test/config:4: {BAD_FROB}")
    );
}

#[test]
fn keyword_forms_and_quotes() {
    let c = cfg("HOST=web\n\tuser = \"bob smith\"\n  Port=2222 # comment\n# whole line\n\n  HostName \"h.example\"\n");
    let r = c.resolve("web").unwrap();
    assert_eq!(r.user, "bob smith");
    assert_eq!(r.port, 2222);
    assert_eq!(r.hostname, "h.example");
}

#[test]
fn host_patterns_and_negation() {
    let c = cfg("Host *.prod !db?.prod\n  User p\nHost w?b\n  User q\n");
    assert_eq!(c.resolve("web.prod").unwrap().user, "p");
    assert_ne!(c.resolve("db1.prod").unwrap().user, "p");
    assert_eq!(c.resolve("db10.prod").unwrap().user, "p");
    assert_eq!(c.resolve("wxb").unwrap().user, "q");
    // Host is case-sensitive against the alias as typed.
    assert_ne!(c.resolve("WXB").unwrap().user, "q");
}

#[test]
fn match_host_uses_hostname_so_far() {
    let c = cfg("Host web\n  HostName %h.example.com\nMatch host *.example.com\n  User ex\nMatch host web\n  Port 99\nMatch all\n  Port 100\n");
    let r = c.resolve("web").unwrap();
    assert_eq!(r.hostname, "web.example.com");
    assert_eq!(r.user, "ex");
    assert_eq!(r.port, 100);
    let r = c.resolve("db").unwrap();
    assert_eq!(r.port, 100);
    assert_ne!(r.user, "ex");
}

#[test]
fn match_negation_and_unsupported() {
    let c = cfg("Match !host web\n  User notweb\nMatch exec true\n  Port 5\nMatch originalhost WEB\n  Port 6\n");
    assert_eq!(c.resolve("db").unwrap().user, "notweb");
    assert_ne!(c.resolve("web").unwrap().user, "notweb");
    assert_eq!(c.resolve("web").unwrap().port, 6);
    assert_eq!(c.resolve("db").unwrap().port, 22);
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
    let r = c.resolve_with("web", &o, &f).unwrap();
    assert_eq!((r.user.as_str(), r.port), ("o", 7));
    assert_eq!(r.identity_files, vec!["/o", "/f"]);
    let r = c.resolve_with("web", &Overrides::default(), &f).unwrap();
    assert_eq!((r.user.as_str(), r.port), ("fileuser", 8));
    assert_eq!(r.identity_files, vec!["/f"]);
    let r = c.resolve_with("db", &Overrides::default(), &f).unwrap();
    assert_eq!(r.user, "fb");
    assert_eq!(r.identity_files, vec!["/fb"]);
}

#[test]
fn tokens_expand() {
    let c = cfg("Host web\n  HostName real.%h\n  User u1\n  Port 2022\n  IdentityFile /k/%h-%p-%r-%n-%%\n  UserKnownHostsFile /kh/%h /kh2\n");
    let r = c.resolve("web").unwrap();
    assert_eq!(r.identity_files, vec!["/k/real.web-2022-u1-web-%"]);
    assert_eq!(r.user_known_hosts_files, vec!["/kh/real.web", "/kh2"]);
    assert!(r
        .ssh_g_lines()
        .contains(&"userknownhostsfile /kh/real.web /kh2".to_string()));
}

#[test]
fn values_in_ssh_g_words() {
    let c = cfg("Host a\n StrictHostKeyChecking no\n ConnectTimeout 1m\n ServerAliveInterval 1h1s\n IdentitiesOnly yes\n ProxyJump u@j1:2200,ssh://v@j2:23\n IdentityFile none\nHost b\n StrictHostKeyChecking YES\n ProxyJump none\n ConnectTimeout none\nHost b\n ConnectTimeout 3\n");
    let g = c.resolve("a").unwrap().ssh_g_lines();
    for want in [
        "stricthostkeychecking false",
        "connecttimeout 60",
        "serveraliveinterval 3601",
        "serveralivecountmax 3",
        "identitiesonly yes",
        "proxyjump u@j1:2200,v@j2:23",
        "identityfile none",
    ] {
        assert!(g.contains(&want.to_string()), "{want} not in {g:?}");
    }
    let r = c.resolve("b").unwrap();
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

const BAD_FROB: &str = "Bad configuration option: frob (OpenSSH 9.x has no such keyword: check its spelling, or name it in an IgnoreUnknown line before it)";

#[test]
fn unknown_keywords_are_refused_unless_an_ignoreunknown_names_them() {
    // Refused even in a block that does not match, with OpenSSH's words and file:line.
    assert_eq!(
        perr("Host other\n  Frob 11\n"),
        format!("/test/config:2: {BAD_FROB}")
    );
    // Keywords OpenSSH 9.x knows and nexus does not use are accepted, values unchecked.
    let c = cfg("Host x\n  ForwardAgent yes\n  Tag t\n  GSSAPIAuthentication yes\n  User u\n");
    assert_eq!(c.resolve("x").unwrap().user, "u");
    // An IgnoreUnknown in force names it (patterns, any case): accepted.
    let c = cfg("IgnoreUnknown Other,FR*\nHost x\n  Frob 11\n  User u\n");
    assert_eq!(c.resolve("x").unwrap().user, "u");
    // One after it does not count.
    assert_eq!(
        perr("Host x\n  Frob 1\nIgnoreUnknown frob\n"),
        format!("/test/config:2: {BAD_FROB}")
    );
    // One in a block that matches some hosts: those accept it, the others refuse it.
    let c = cfg("Host web\n  IgnoreUnknown frob\nHost *\n  Frob 1\n");
    assert!(c.resolve("web").is_ok());
    assert_eq!(
        c.resolve("db").unwrap_err().to_string(),
        format!("/test/config:4: {BAD_FROB}")
    );
}

#[test]
fn tokens_a_keyword_does_not_allow_are_refused_for_the_host() {
    let c = cfg("Host web\n  HostName %r.example\nHost other\n  HostName %q\n");
    assert_eq!(
        c.resolve("web").unwrap_err().to_string(),
        "/test/config:2: HostName %r.example: unknown key %r (this keyword expands %h and %%)"
    );
    // A line that does not apply to the host is not expanded, so not refused (as ssh).
    assert!(c.resolve("db").is_ok());
    let e = |text: &str| cfg(text).resolve("x").unwrap_err().to_string();
    assert_eq!(
        e("IdentityFile ~/%q\n"),
        "/test/config:1: IdentityFile ~/%q: unknown key %q (this keyword expands %C %d %h %i %j %k %L %l %n %p %r %u and %%)"
    );
    assert_eq!(
        e("\nUserKnownHostsFile /kh/${NEXUS_TEST_UNSET_VAR}\n"),
        "/test/config:2: UserKnownHostsFile /kh/${NEXUS_TEST_UNSET_VAR}: env var ${NEXUS_TEST_UNSET_VAR} has no value (set it in nexus's environment, or remove it)"
    );
    assert_eq!(
        e("HostName a%\n"),
        "/test/config:1: HostName a%: invalid format (a % ends the value: write %% for a percent sign)"
    );
}

#[test]
fn a_proxyjump_back_to_the_host_is_refused() {
    let c = cfg("Host x\n  User root\n  ProxyJump a,root@x:22\nHost y\n  ProxyJump y:2222\n");
    assert_eq!(
        c.resolve("x").unwrap_err().to_string(),
        "/test/config:3: jumphost loop via x: the last ProxyJump hop is the host itself (root@x port 22); name another jump host, or ProxyJump none"
    );
    // Another port is another endpoint.
    assert!(c.resolve("y").is_ok());
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
    let r = c.resolve("web").unwrap();
    assert_eq!((r.user.as_str(), r.port), ("from-a", 2002));
    let r = c.resolve("db").unwrap();
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
    assert_eq!(c.resolve("x").unwrap().port, 22);
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
