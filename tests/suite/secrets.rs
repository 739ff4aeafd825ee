//! The secret store (docs/secrets.md): `nexus secret` round trips with key files, the
//! environment and passphrases typed on a terminal (script(1) gives nexus a pty), a
//! property over random names and values through the library, every way a store can be
//! damaged or opened with the wrong key (full error text, exit 2, the file unchanged),
//! and redaction at the recorder: a run whose commands print a registered value leaves
//! no byte of it in the output, the journal or `nexus runs show`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus::secrets::{MasterKey, Redactor, Source, Store};
use quickcheck::{QuickCheck, TestResult};

use crate::common::{assert_text, wait_until, Stop, Test, BIN};

const TOML: &str = "[tasks.a]\nrun = \"true\"\n";

/// A project with a store made with the new key file `k.key`.
fn project() -> Test {
    let t = Test::new().toml(TOML);
    t.clone_args(&["secret", "init", "--keyfile", "k.key"])
        .run()
        .expect_code(0);
    t
}

/// `nexus secret ARGS` in `t`'s project with `stdin` as its input.
fn secret_with_stdin(t: &Test, args: &[&str], stdin: &[u8]) -> crate::common::Run {
    let mut all = vec!["secret"];
    all.extend_from_slice(args);
    let mut c = t.clone_args(&all).command();
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("run nexus");
    // nexus may exit before it reads (a refused store): a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let out = child.wait_with_output().unwrap();
    crate::common::Run::from_output(&c, out)
}

fn secret(t: &Test, args: &[&str]) -> crate::common::Run {
    let mut all = vec!["secret"];
    all.extend_from_slice(args);
    t.clone_args(&all).run()
}

/// RFC 3339 times (`2026-01-02T03:04:05.678Z`) as `DATE`.
fn dates(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let date = b.len() >= i + 20
            && b[i..i + 4].iter().all(u8::is_ascii_digit)
            && b[i + 4] == b'-'
            && b[i + 10] == b'T';
        if date {
            let end = text[i..].find('Z').map_or(b.len(), |z| i + z + 1);
            out.push_str("DATE");
            i = end;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

fn store(t: &Test) -> std::path::PathBuf {
    t.path(".nexus/secrets.enc")
}

#[test]
fn init_set_get_list_delete_with_a_key_file() {
    let t = Test::new().toml(TOML);
    let dir = t.dir.path().display().to_string();
    secret(&t, &["init", "--keyfile", "k.key"]).expect(
        0,
        "",
        &format!(
            "
            created key file k.key: keep it safe, anyone who has it can read the secrets
            created the secret store {dir}/.nexus/secrets.enc (master key: key file k.key (--keyfile))
            "
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    for f in ["k.key", ".nexus/secrets.enc"] {
        let mode = std::fs::metadata(t.path(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    secret(&t, &["init", "--keyfile", "k.key"]).expect(
        2,
        "",
        &format!(
            "
            Error: a secret store already exists at {dir}/.nexus/secrets.enc

              help: `nexus secret list` shows what it holds; `nexus secret rotate-key` changes its key
            "
        ),
    );
    // stdin: one final newline is dropped; a file: taken as it is.
    secret_with_stdin(
        &t,
        &["set", "DB_PASSWORD", "--keyfile", "k.key"],
        b"hunter22\n",
    )
    .expect(
        0,
        "",
        &format!("set `DB_PASSWORD` in {dir}/.nexus/secrets.enc\n"),
    );
    let pem = "-----BEGIN KEY-----\nabcdefgh\n-----END KEY-----\n";
    std::fs::write(t.path("tls.pem"), pem).unwrap();
    secret(
        &t,
        &[
            "set",
            "tls.key",
            "--from-file",
            "tls.pem",
            "--keyfile",
            "k.key",
        ],
    )
    .expect_code(0);
    secret(&t, &["get", "DB_PASSWORD", "--keyfile", "k.key"]).expect(0, "hunter22\n", "");
    secret(&t, &["get", "tls.key", "--keyfile", "k.key"]).expect(0, pem, "");
    // list needs no key and shows no value.
    let list = secret(&t, &["list"]);
    list.expect_code(0);
    assert_text(
        "list",
        &dates(&list.stdout),
        "NAME         UPDATED\nDB_PASSWORD  DATE\ntls.key      DATE\n",
    );
    let text = std::fs::read_to_string(store(&t)).unwrap();
    assert!(!text.contains("hunter22") && !text.contains("abcdefgh"));
    assert!(text.contains("\nsecret DB_PASSWORD ") && text.contains("\nsecret tls.key "));
    secret(&t, &["delete", "DB_PASSWORD", "--keyfile", "k.key"]).expect(
        0,
        "",
        &format!("deleted `DB_PASSWORD` from {dir}/.nexus/secrets.enc\n"),
    );
    secret(&t, &["get", "DB_PASSWORD", "--keyfile", "k.key"]).expect(
        2,
        "",
        &format!(
            "
            Error: no secret `DB_PASSWORD` in {dir}/.nexus/secrets.enc

              help: `nexus secret list` shows the names
            "
        ),
    );
    secret(&t, &["get", "tls.kye", "--keyfile", "k.key"]).expect(
        2,
        "",
        &format!(
            "
            Error: no secret `tls.kye` in {dir}/.nexus/secrets.enc

              help: did you mean `tls.key`?
              help: `nexus secret list` shows the names
            "
        ),
    );
}

#[test]
fn the_key_comes_from_the_environment_a_key_file_or_the_config() {
    let t = project();
    let key = std::fs::read_to_string(t.path("k.key")).unwrap();
    secret_with_stdin(&t, &["set", "A", "--keyfile", "k.key"], b"value-a").expect_code(0);
    // NEXUS_MASTER_KEY comes first, even before --keyfile.
    secret(
        &t.clone_args(&[]).env("NEXUS_MASTER_KEY", key.trim()),
        &["get", "A"],
    )
    .expect(0, "value-a\n", "");
    std::fs::write(
        t.path("other.key"),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    )
    .unwrap();
    // Readable by others whatever the umask: nexus warns.
    use std::os::unix::fs::PermissionsExt;
    let others = std::fs::Permissions::from_mode(0o644);
    std::fs::set_permissions(t.path("other.key"), others).unwrap();
    let dir = t.dir.path().display().to_string();
    secret(
        &t.clone_args(&[]).env("NEXUS_MASTER_KEY", key.trim()),
        &["get", "A", "--keyfile", "other.key"],
    )
    .expect(0, "value-a\n", "");
    // NEXUS_KEYFILE, and [config] secrets_keyfile (relative to the project root).
    secret(
        &t.clone_args(&[]).env("NEXUS_KEYFILE", "k.key"),
        &["get", "A"],
    )
    .expect(0, "value-a\n", "");
    let c = t.clone_args(&[]).file(
        "nexus.toml",
        "[config]\nsecrets_keyfile = \"k.key\"\n[tasks.a]\nrun = \"true\"\n",
    );
    std::fs::create_dir_all(t.path("sub")).unwrap();
    let mut cmd = c.clone_args(&["secret", "get", "A"]).command();
    cmd.current_dir(t.path("sub"));
    let out = cmd.output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "value-a\n");
    // --keyfile wins over NEXUS_KEYFILE and the config.
    secret(
        &t.clone_args(&[]).env("NEXUS_KEYFILE", "k.key"),
        &["get", "A", "--keyfile", "other.key"],
    )
    .expect(
        2,
        "",
        &format!(
            "
            warning: key file other.key can be read by other users (mode 0644)
              help: chmod 600 other.key
            Error: key file other.key (--keyfile) does not open the secret store {dir}/.nexus/secrets.enc: it was made with another key

              help: use the key the store was made with, or the one `nexus secret rotate-key` last gave it
            "
        ),
    );
    secret(
        &t.clone_args(&[]).env("NEXUS_MASTER_KEY", "c2hvcnQ="),
        &["get", "A"],
    )
    .expect(
        2,
        "",
        "
        Error: NEXUS_MASTER_KEY is not a master key: expected the base64 of 32 bytes

          help: unset it to use a key file or the passphrase instead
        ",
    );
}

#[test]
fn without_a_key_or_a_terminal_nothing_is_asked() {
    let t = Test::new().toml("[config]\n[tasks.a]\nrun = \"true\"\n");
    let dir = t.dir.path().display().to_string();
    let run = secret(&t.clone_args(&[]).env("CI", "true"), &["init"]);
    run.expect(
        2,
        "",
        &format!(
            "
            Error: no master key for the secret store {dir}/.nexus/secrets.enc: NEXUS_MASTER_KEY is not set, no key file is named, and CI is set, so no passphrase is asked

              help: set NEXUS_MASTER_KEY to the base64 of the 32-byte master key
              help: or name a key file: --keyfile PATH, NEXUS_KEYFILE=PATH, or `secrets_keyfile` in [config]
              help: or run nexus on a terminal to type the store's passphrase
            "
        ),
    );
    assert!(!store(&t).exists());
    let t = project();
    secret(&t.clone_args(&[]).env("CI", "1"), &["get", "A"]).expect_code(2);
}

#[test]
fn values_too_short_to_mask_and_bad_names_are_refused() {
    let t = project();
    let before = std::fs::read(store(&t)).unwrap();
    secret_with_stdin(&t, &["set", "PIN", "--keyfile", "k.key"], b"123\n").expect(
        2,
        "",
        "
        Error: the value of `PIN` is shorter than 4 characters; nothing was changed

          help: nexus replaces every secret's value with [secret NAME] in what it prints: a value this short would hide ordinary text
        ",
    );
    secret_with_stdin(&t, &["set", "2fa", "--keyfile", "k.key"], b"1234\n").expect(
        2,
        "",
        "Error: `2fa` is not a secret name: use letters, digits, `_`, `-` and `.`, starting with a letter or `_`\n",
    );
    secret(&t, &["set"]).expect(
        2,
        "",
        "
        Error: `nexus secret set` needs a NAME

          help: `nexus secret list` shows the names
        ",
    );
    secret(&t, &["sett", "X"]).expect(
        2,
        "",
        "
        Error: unknown secret subcommand `sett`

          help: did you mean `set`?
          help: usage: nexus secret init | set NAME | get NAME | list | delete NAME | rotate-key
        ",
    );
    assert_eq!(std::fs::read(store(&t)).unwrap(), before);
}

#[test]
fn rotate_key_rewraps_every_value_and_keeps_the_old_file() {
    let t = project();
    let dir = t.dir.path().display().to_string();
    for (n, v) in [("A", "alpha-1"), ("B", "bravo-2"), ("C", "multi\nline\n")] {
        secret_with_stdin(&t, &["set", n, "--keyfile", "k.key"], v.as_bytes()).expect_code(0);
    }
    let before = std::fs::read_to_string(store(&t)).unwrap();
    let run = secret(
        &t,
        &[
            "rotate-key",
            "--keyfile",
            "k.key",
            "--new-keyfile",
            "new.key",
        ],
    );
    run.expect_code(0);
    let backup = std::fs::read_dir(t.path(".nexus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".bak"))
        .expect("a backup");
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), before);
    assert_text(
        "rotate-key",
        &run.stderr,
        &format!(
            "created key file new.key: keep it safe, anyone who has it can read the secrets\n\
             3 secrets in {dir}/.nexus/secrets.enc now open with key file new.key (--new-keyfile); the old store is kept as {} (it opens with the old key)\n\
             use it from now on: --keyfile new.key, NEXUS_KEYFILE=new.key, or secrets_keyfile in [config]\n",
            backup.display()
        ),
    );
    for (n, v) in [
        ("A", "alpha-1\n"),
        ("B", "bravo-2\n"),
        ("C", "multi\nline\n"),
    ] {
        secret(&t, &["get", n, "--keyfile", "new.key"]).expect(0, v, "");
    }
    secret(&t, &["get", "A", "--keyfile", "k.key"]).expect(
        2,
        "",
        &format!(
            "
            Error: key file k.key (--keyfile) does not open the secret store {dir}/.nexus/secrets.enc: it was made with another key

              help: use the key the store was made with, or the one `nexus secret rotate-key` last gave it
            "
        ),
    );
    // The backup still opens with the old key.
    let old = Test::new().toml(TOML);
    std::fs::create_dir_all(old.path(".nexus")).unwrap();
    std::fs::copy(&backup, old.path(".nexus/secrets.enc")).unwrap();
    std::fs::copy(t.path("k.key"), old.path("k.key")).unwrap();
    secret(&old, &["get", "B", "--keyfile", "k.key"]).expect(0, "bravo-2\n", "");
    // To the same key: refused; without a new key and a terminal: refused.
    secret(&t, &["rotate-key", "--keyfile", "new.key", "--new-keyfile", "new.key"]).expect(
        2,
        "",
        &format!(
            "
            Error: the new master key is the old one; {dir}/.nexus/secrets.enc is unchanged

              help: name a new key file with --new-keyfile PATH (created when missing), or type a new passphrase
            "
        ),
    );
    let ci = t.clone_args(&[]).env("CI", "1");
    secret(&ci, &["rotate-key", "--keyfile", "new.key"]).expect(
        2,
        "",
        &format!(
            "
            Error: no new master key for the secret store {dir}/.nexus/secrets.enc: no --new-keyfile, and no terminal to ask for a new passphrase

              help: name the new key file: nexus secret rotate-key --new-keyfile PATH (a new random key is written there when PATH does not exist)
            "
        ),
    );
}

/// The store's lines; `f` changes them; written back.
fn edit(t: &Test, f: impl FnOnce(&mut Vec<String>)) {
    let text = std::fs::read_to_string(store(t)).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    f(&mut lines);
    std::fs::write(store(t), lines.join("\n") + "\n").unwrap();
}

/// A project with secrets A (line 6) and B (line 7).
fn two_secrets() -> Test {
    let t = project();
    secret_with_stdin(&t, &["set", "A", "--keyfile", "k.key"], b"alpha-1").expect_code(0);
    secret_with_stdin(&t, &["set", "B", "--keyfile", "k.key"], b"bravo-2").expect_code(0);
    t
}

/// `get A` and `set A` fail with `message` (and help), and the file is unchanged.
#[track_caller]
fn refused(t: &Test, message: &str, help: &[&str]) {
    let mut want = format!("Error: {message}\n");
    if !help.is_empty() {
        want.push('\n');
    }
    for h in help {
        want += &format!("  help: {h}\n");
    }
    let before = std::fs::read(store(t)).unwrap();
    secret(t, &["get", "A", "--keyfile", "k.key"]).expect(2, "", &want);
    secret_with_stdin(t, &["set", "A", "--keyfile", "k.key"], b"new-value").expect(2, "", &want);
    assert_eq!(
        std::fs::read(store(t)).unwrap(),
        before,
        "the store changed"
    );
}

const RESTORE: &str =
    "restore it from version control (`git checkout -- .nexus/secrets.enc`) or from a backup";

#[test]
fn a_flipped_byte_in_a_value_names_the_secret() {
    use base64ct::{Base64, Encoding};
    let t = two_secrets();
    edit(&t, |lines| {
        let words: Vec<String> = lines[6].split(' ').map(str::to_string).collect();
        let mut value = Base64::decode_vec(&words[4]).unwrap();
        value[20] ^= 0x01;
        lines[6] = format!(
            "{} {} {} {} {}",
            words[0],
            words[1],
            words[2],
            words[3],
            Base64::encode_string(&value)
        );
    });
    let file = store(&t).display().to_string();
    refused(
        &t,
        &format!(
            "secret `B` in {file} (line 7) does not decrypt: changed, or moved from another name"
        ),
        &[RESTORE, "or set it again: nexus secret set B"],
    );
}

#[test]
fn values_swapped_between_names_do_not_decrypt() {
    let t = two_secrets();
    edit(&t, |lines| {
        let a: Vec<String> = lines[5].split(' ').map(str::to_string).collect();
        let b: Vec<String> = lines[6].split(' ').map(str::to_string).collect();
        lines[5] = format!("secret A {} {} {}", a[2], b[3], b[4]);
        lines[6] = format!("secret B {} {} {}", b[2], a[3], a[4]);
    });
    let file = store(&t).display().to_string();
    refused(
        &t,
        &format!("secrets `A`, `B` in {file} (line 6, 7) do not decrypt: changed, or moved from another name"),
        &[RESTORE, "or set it again: nexus secret set A"],
    );
}

#[test]
fn a_truncated_store_or_a_removed_entry_is_refused() {
    let t = two_secrets();
    let file = store(&t).display().to_string();
    let whole = std::fs::read(store(&t)).unwrap();
    for cut in [whole.len() - 1, whole.len() - 20, whole.len() / 2, 10] {
        std::fs::write(store(&t), &whole[..cut]).unwrap();
        refused(
            &t,
            &format!("the secret store {file} is truncated: it ends before its seal line"),
            &[RESTORE],
        );
    }
    std::fs::write(store(&t), &whole).unwrap();
    edit(&t, |lines| {
        lines.pop();
    });
    refused(
        &t,
        &format!("the secret store {file} is truncated: it ends before its seal line"),
        &[RESTORE],
    );
    std::fs::write(store(&t), &whole).unwrap();
    edit(&t, |lines| {
        lines.remove(6);
    });
    refused(
        &t,
        &format!("the secret store {file} was changed outside nexus: its seal does not match (a secret was removed, added, renamed or redated)"),
        &[RESTORE],
    );
    std::fs::write(store(&t), &whole).unwrap();
    edit(&t, |lines| lines[2] = "nexus-secrets 2".into());
    refused(
        &t,
        &format!("the secret store {file} is in format 2; this nexus reads format 1"),
        &["upgrade nexus"],
    );
    std::fs::write(store(&t), &whole).unwrap();
    edit(&t, |lines| lines[5] = "secret A".into());
    refused(
        &t,
        &format!(
            "the secret store {file} is damaged: line 6: expected `secret NAME DATE KEY VALUE`"
        ),
        &[RESTORE],
    );
    std::fs::write(store(&t), &whole).unwrap();
    edit(&t, |lines| lines.insert(5, "<<<<<<< HEAD".into()));
    refused(
        &t,
        &format!("the secret store {file} has git conflict markers (line 6)"),
        &["take one side's file (`git checkout --ours .nexus/secrets.enc`, or --theirs), then set the other side's secrets again with `nexus secret set`"],
    );
}

#[test]
fn a_wrong_key_is_told_from_a_changed_file() {
    let t = two_secrets();
    std::fs::write(
        t.path("k.key"),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    )
    .unwrap();
    let file = store(&t).display().to_string();
    refused(
        &t,
        &format!("key file k.key (--keyfile) does not open the secret store {file}: it was made with another key"),
        &["use the key the store was made with, or the one `nexus secret rotate-key` last gave it"],
    );
    std::fs::write(t.path("k.key"), "not a key\n").unwrap();
    refused(
        &t,
        "key file k.key (--keyfile) does not hold a master key: expected the base64 of 32 bytes",
        &["`nexus secret init --keyfile NEW_PATH` writes a new key file"],
    );
    std::fs::remove_file(t.path("k.key")).unwrap();
    refused(
        &t,
        "key file k.key (--keyfile) does not exist",
        &["point --keyfile at the store's key file, or make a new store with `nexus secret init --keyfile k.key`"],
    );
}

/// nexus on a terminal: `script` gives it a pty; prompts are answered as they appear.
struct Terminal {
    child: Stop,
    screen: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    stdin: Option<std::process::ChildStdin>,
}

impl Terminal {
    fn start(t: &Test, args: &str) -> Terminal {
        let mut c = std::process::Command::new("script");
        c.args(["-qec", &format!("{BIN} {args}"), "/dev/null"])
            .current_dir(t.dir.path())
            .env("NEXUS_HOME", t.path(".nexus-home"))
            .env_remove("CI")
            .env("NO_COLOR", "1")
            .env_remove("NEXUS_MASTER_KEY")
            .env_remove("NEXUS_KEYFILE")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = Stop(c.spawn().expect("script (util-linux)"));
        let screen = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let screen = Arc::clone(&screen);
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
        let stdin = child.0.stdin.take();
        Terminal {
            child,
            screen,
            reader: Some(reader),
            stdin,
        }
    }

    fn shown(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).replace("\r\n", "\n")
    }

    /// Wait for the `n`th `prompt`, then type `answer`.
    fn answer(&mut self, prompt: &str, n: usize, answer: &str) {
        wait_until(prompt, Duration::from_secs(60), || {
            self.shown().matches(prompt).count() >= n
        });
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{answer}").unwrap();
        stdin.flush().unwrap();
    }

    /// Wait for the end: exit code and the whole screen.
    fn finish(mut self) -> (i32, String) {
        drop(self.stdin.take());
        wait_until("nexus to finish", Duration::from_secs(120), || {
            matches!(self.child.0.try_wait(), Ok(Some(_)))
        });
        self.reader.take().unwrap().join().unwrap();
        let code = self.child.0.wait().unwrap().code().unwrap_or(-1);
        (code, self.shown())
    }
}

#[test]
fn a_passphrase_and_values_typed_on_a_terminal() {
    let t = Test::new().toml(TOML);
    let file = store(&t).display().to_string();
    let new = format!("New passphrase for {file}: ");
    let again = format!("New passphrase for {file} again: ");
    let mut term = Terminal::start(&t, "secret init");
    term.answer(&new, 1, "correct horse");
    term.answer(&again, 1, "correct horse");
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    assert_text(
        "init on a terminal",
        &screen,
        &format!("{new}\n{again}\ncreated the secret store {file} (master key: the passphrase)\n"),
    );
    // The store holds Argon2id's parameters and salt.
    let text = std::fs::read_to_string(store(&t)).unwrap();
    assert!(
        text.contains("\nkdf argon2id m=65536 t=3 p=1 salt="),
        "{text}"
    );

    let ask = format!("Passphrase for {file}: ");
    let mut term = Terminal::start(&t, "secret set DB --log-level debug --log-format json");
    term.answer(&ask, 1, "correct horse");
    term.answer("Value of DB: ", 1, "typed-value");
    term.answer("Value of DB again: ", 1, "typed-value");
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(!screen.contains("typed-value"), "echoed:\n{screen}");
    assert!(!screen.contains("correct horse"), "echoed:\n{screen}");
    // One key derivation for the whole process.
    assert_eq!(
        screen.matches("deriving the master key").count(),
        1,
        "{screen}"
    );

    let mut term = Terminal::start(&t, "secret get DB");
    term.answer(&ask, 1, "correct horse");
    let (code, screen) = term.finish();
    assert_eq!((code, screen), (0, format!("{ask}\ntyped-value\n")));

    let mut term = Terminal::start(&t, "secret get DB");
    term.answer(&ask, 1, "wrong horse");
    let (code, screen) = term.finish();
    assert_text(
        "a wrong passphrase",
        &screen,
        &format!(
            "{ask}\nError: the passphrase does not open the secret store {file}: it was made with another key\n\n  help: type the passphrase the store was made with\n"
        ),
    );
    assert_eq!(code, 2);

    // Two different values typed: nothing changes.
    let before = std::fs::read(store(&t)).unwrap();
    let mut term = Terminal::start(&t, "secret set DB");
    term.answer(&ask, 1, "correct horse");
    term.answer("Value of DB: ", 1, "one-value");
    term.answer("Value of DB again: ", 1, "another-value");
    let (code, screen) = term.finish();
    assert_eq!(code, 2, "{screen}");
    assert!(screen.ends_with("Error: the two entries differ; nothing was changed\n\n  help: type the same text twice\n"), "{screen}");
    assert_eq!(std::fs::read(store(&t)).unwrap(), before);
}

#[test]
fn rotate_key_to_a_new_passphrase() {
    let t = project();
    secret_with_stdin(&t, &["set", "A", "--keyfile", "k.key"], b"alpha-1").expect_code(0);
    let file = store(&t).display().to_string();
    let mut term = Terminal::start(&t, "secret rotate-key --keyfile k.key");
    term.answer(
        &format!("New passphrase for {file}: "),
        1,
        "a new passphrase",
    );
    term.answer(
        &format!("New passphrase for {file} again: "),
        1,
        "a new passphrase",
    );
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    let mut term = Terminal::start(&t, "secret get A");
    term.answer(&format!("Passphrase for {file}: "), 1, "a new passphrase");
    let (code, screen) = term.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.ends_with("\nalpha-1\n"), "{screen}");
    secret(&t, &["get", "A", "--keyfile", "k.key"]).expect_code(2);
}

/// Random names and values go in through the library and come back out unchanged,
/// after a save and a fresh open.
#[test]
fn any_names_and_values_round_trip() {
    fn prop(pairs: Vec<(String, String)>) -> TestResult {
        let pairs: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(n, v)| {
                let name: String = n
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || "_-.".contains(*c))
                    .collect();
                (format!("s{name}"), format!("{v}{v}xyzw"))
            })
            .collect();
        let dir = crate::common::TempDir::new("secrets-prop");
        let path = dir.path().join(".nexus/secrets.enc");
        let key = MasterKey::from_key(zeroize::Zeroizing::new([9u8; 32]), Source::Env);
        let mut s = Store::create(&path, &key).unwrap();
        let mut want = std::collections::BTreeMap::new();
        for (n, v) in &pairs {
            s.set(n, v).unwrap();
            want.insert(n.clone(), v.clone());
        }
        s.save().unwrap();
        let s = Store::open(&path, &key).unwrap();
        let names: Vec<&str> = s.names().collect();
        if names != want.keys().map(String::as_str).collect::<Vec<_>>() {
            return TestResult::error(format!("names {names:?}"));
        }
        for (n, v) in &want {
            if *s.get(n).unwrap() != *v {
                return TestResult::error(format!("value of {n}"));
            }
        }
        let listed = Store::names_only(&path).unwrap();
        TestResult::from_bool(listed.len() == want.len())
    }
    QuickCheck::new()
        .tests(40)
        .quickcheck(prop as fn(Vec<(String, String)>) -> TestResult);
}

/// What a run showed: every event and every output chunk, as the renderers get them.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<(Vec<String>, Vec<u8>)>>);

impl nexus::run::recorder::Render for Seen {
    fn event(&mut self, ev: &nexus::run::event::Stamped) {
        self.0.lock().unwrap().0.push(format!("{:?}", ev.event));
    }

    fn output(
        &mut self,
        _at: std::time::SystemTime,
        _task: &nexus::run::event::Name,
        _host: &nexus::run::event::Name,
        _stream: nexus::exec::Stream,
        data: &[u8],
    ) {
        self.0.lock().unwrap().1.extend_from_slice(data);
    }
}

const CANARY: &str = "s3cr3t-Zq9-value";
const PEM: &str = "-----BEGIN TEST-----\nline-one-abc\nline-two-def\n-----END TEST-----";

/// Run `toml`'s task `leak` with the two canaries registered on the recorder, journaled
/// under `home`: (run id, its journal, what the renderer saw).
fn run_with_secrets(dir: &Path, home: &Path, toml: &str) -> (String, PathBuf, Seen) {
    use nexus::run::recorder::Recorder;
    use nexus::run::scheduler::{execute, Ctx, Options};
    use nexus::state::journal::Journal;
    use nexus::state::record::RunHeader;
    std::fs::write(dir.join("nexus.toml"), toml).unwrap();
    let config = nexus::config::load(&dir.join("nexus.toml")).unwrap();
    let plan = nexus::plan::plan(&config, &["leak".to_string()]).unwrap();
    let mut info = nexus::run::RunInfo::new(&config.root);
    info.redactor = Arc::new(Redactor::new([("CANARY", CANARY), ("PEM", PEM)]));
    let project = dir.display().to_string();
    let path = nexus::state::journal_path(home, &info.run_id, &project);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let header = RunHeader {
        run_id: info.run_id.clone(),
        targets: vec!["leak".into()],
        config: dir.join("nexus.toml").display().to_string(),
        project,
        plan: vec!["leak".into()],
        pid: std::process::id(),
        ..RunHeader::default()
    };
    let seen = Seen::default();
    let recorder = Recorder::new(
        Some(Journal::create(&path, &header).unwrap()),
        Box::new(seen.clone()),
    )
    .with_redactor(Arc::clone(&info.redactor));
    let opts = Options {
        parallel_limit: 4,
        max_connections: 4,
        continue_on_error: true,
        hosts_override: None,
        stdout_is_data: false,
    };
    execute(Ctx {
        config: &config,
        plan: &plan,
        run: &info,
        opts: &opts,
        recorder: &recorder,
    });
    drop(recorder);
    (info.run_id.clone(), path, seen)
}

/// Pieces of a value that must not be seen: the value, each half, each line.
fn pieces(value: &str) -> Vec<String> {
    let mut p = vec![value.to_string()];
    let mid = value.len() / 2;
    p.push(value[..mid].to_string());
    p.push(value[mid..].to_string());
    p.extend(value.lines().filter(|l| l.len() >= 4).map(str::to_string));
    p
}

#[track_caller]
fn no_piece(what: &str, text: &str, pieces: &[String]) {
    for p in pieces {
        assert!(!text.contains(p.as_str()), "{what} shows `{p}`:\n{text}");
    }
}

#[test]
fn the_recorder_masks_registered_values_in_output_events_journal_and_runs_show() {
    let t = Test::new().toml(TOML);
    let home = t.path(".nexus-home");
    // The value printed in two pieces with a pause between (two reads), on stderr, in a
    // failing command, as the lines of a multi-line value with CRLF endings, and in the
    // command line itself.
    let toml = format!(
        r#"
[tasks.leak]
env = {{ TOKEN = "{CANARY}" }}
continue_on_error = true
run = [
  "printf 'start s3cr3t-Z'; sleep 0.2; printf 'q9-value end\n'",
  "echo \"$TOKEN\" >&2",
  "printf -- '-----BEGIN TEST-----\r\nline-one-abc\r\nline-two-def\r\n'",
  "echo {CANARY}; echo failing {CANARY} >&2; exit 3",
]
"#
    );
    let (id, journal, seen) = run_with_secrets(t.dir.path(), &home, &toml);
    let (events, output) = seen.0.lock().unwrap().clone();
    let output = String::from_utf8_lossy(&output).into_owned();
    let mut secret = pieces(CANARY);
    secret.extend(pieces(PEM).into_iter().skip(3));
    no_piece("the live output", &output, &secret);
    assert!(output.contains("start [secret CANARY] end\n"), "{output}");
    assert!(
        output.contains("[secret PEM]\r\n[secret PEM]\r\n[secret PEM]\r\n"),
        "{output}"
    );
    assert!(output.contains("failing [secret CANARY]\n"), "{output}");
    let events = events.join("\n");
    no_piece("the events", &events, &pieces(CANARY)[..1]);
    no_piece("the events", &events, &pieces(PEM)[3..]);
    assert!(
        events.contains("line: \"echo [secret CANARY]; echo failing [secret CANARY] >&2; exit 3\""),
        "{events}"
    );
    // The journal and `runs show`, read back by the binary.
    let journal = std::fs::read_to_string(journal).unwrap();
    no_piece("the journal", &journal, &pieces(CANARY)[..1]);
    no_piece("the journal", &journal, &pieces(PEM)[3..]);
    assert!(journal.contains("failing [secret CANARY]"), "{journal}");
    let show = t.clone_args(&["runs", "show", &id]).run();
    show.expect_code(0);
    no_piece("runs show", &show.stdout, &pieces(CANARY)[..1]);
    assert!(
        show.stdout.contains("failing [secret CANARY]"),
        "{}",
        show.stdout
    );
}

/// `secret("NAME")` in a command and an env value: the command gets the value (one
/// shell word with `quote`, multi-line too); while it runs no process's argument list
/// holds it; the live output, `-v`'s echo, the dry-run plan, the journal and `nexus runs
/// show` show `[secret TOKEN]` instead; without a key nothing runs.
#[test]
fn secrets_reach_commands_masked_everywhere_and_never_in_an_argument_list() {
    let t = project();
    let canary = "canary-5e2d77a1";
    let value = format!("{canary} $(touch pwned) 'q'\nsecond line");
    secret_with_stdin(
        &t,
        &["set", "TOKEN", "--keyfile", "k.key"],
        value.as_bytes(),
    )
    .expect_code(0);
    let sleep = crate::common::marker(3, 6);
    std::fs::write(
        t.path("nexus.toml"),
        format!(
            "[tasks.a]\nenv = {{ FROM_ENV = '{{{{ secret(\"TOKEN\") }}}}' }}\nrun = [\"\"\"printf '%s' {{{{ secret(\"TOKEN\") | quote }}}} > out; printf '%s' \"$FROM_ENV\" > env-out; echo see {{{{ secret('TOKEN') | quote }}}}; sleep {sleep}; true\"\"\"]\n"
        ),
    )
    .unwrap();
    let mut c = t
        .clone_args(&["run", "a", "-v", "--keyfile", "k.key"])
        .command();
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = Stop(c.spawn().unwrap());
    wait_until("the command to run", Duration::from_secs(20), || {
        t.path("out").exists()
            && !crate::common::processes_matching(&format!("sleep {sleep}")).is_empty()
    });
    let seen = crate::common::all_cmdlines();
    assert!(
        !seen.contains(canary),
        "the value is in an argument list:\n{seen}"
    );
    let r = crate::common::wait_within(&mut child, &c, Duration::from_secs(30));
    r.expect_code(0);
    assert_eq!(t.read("out"), value);
    assert_eq!(t.read("env-out"), value);
    assert!(!t.path("pwned").exists());
    assert!(r.stdout.contains("see [secret TOKEN]\n"), "{}", r.show());
    assert!(
        !r.stdout.contains(canary) && !r.stderr.contains(canary),
        "{}",
        r.show()
    );
    let journals = t.path(".nexus-home");
    let dump = std::process::Command::new("grep")
        .args(["-r", "-l", canary])
        .arg(&journals)
        .output()
        .unwrap();
    assert!(
        dump.stdout.is_empty(),
        "the value is in {}",
        String::from_utf8_lossy(&dump.stdout)
    );
    let id = std::fs::read_dir(t.path(".nexus-home/runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".jsonl"))
        .and_then(|n| n.split('.').next().map(str::to_string))
        .unwrap();
    let show = t.clone_args(&["runs", "show", &id]).run();
    show.expect_code(0);
    assert!(!show.stdout.contains(canary), "{}", show.show());
    let plan = t
        .clone_args(&["run", "a", "-n", "--keyfile", "k.key"])
        .run();
    plan.expect_code(0);
    assert!(
        plan.stdout.contains("[secret TOKEN]") && !plan.stdout.contains(canary),
        "{}",
        plan.show()
    );
    // No key: refused before any command.
    std::fs::remove_file(t.path("out")).unwrap();
    let no_key = t.clone_args(&["run", "a"]).env("CI", "true").run();
    no_key.expect_code(2);
    assert!(
        no_key
            .stderr
            .starts_with("Error: no master key for the secret store "),
        "{}",
        no_key.show()
    );
    assert!(!t.path("out").exists());
}

/// `{ secret = "NAME", to = "PATH" }` writes the value to a file (mode 0600 unless `mode`
/// says otherwise) by a rename, with nothing of it shown; an unknown name is refused at
/// load time, before any command.
#[test]
fn a_secret_step_writes_the_value_to_a_file() {
    let t = two_secrets();
    std::fs::write(
        t.path("nexus.toml"),
        "[tasks.a]\nrun = [\n  { secret = \"A\", to = \"conf/{{ task }}.key\" },\n  { secret = \"B\", to = \"conf/b.key\", mode = \"0640\" },\n]\n",
    )
    .unwrap();
    std::fs::create_dir(t.path("conf")).unwrap();
    let r = t
        .clone_args(&["run", "a", "-v", "--keyfile", "k.key"])
        .run();
    r.expect_code(0);
    assert!(
        !r.stderr.contains("alpha-1") && !r.stderr.contains("bravo-2"),
        "{}",
        r.show()
    );
    assert_eq!(t.read("conf/a.key"), "alpha-1");
    assert_eq!(t.read("conf/b.key"), "bravo-2");
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(t.path(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode("conf/a.key"), mode("conf/b.key")), (0o600, 0o640));
    let leftovers: Vec<_> = std::fs::read_dir(t.path("conf"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    std::fs::write(
        t.path("nexus.toml"),
        "[tasks.a]\nrun = [\"touch ran\", { secret = \"C\", to = \"c.key\", mode = \"999\" }]\n",
    )
    .unwrap();
    t.clone_args(&["run", "a", "--keyfile", "k.key"])
        .run()
        .expect(
            2,
            "",
            r#"
        Error: Validation failed

          nexus.toml:2:58: `mode` `999` is not a file mode
            |
          2 | run = ["touch ran", { secret = "C", to = "c.key", mode = "999" }]
            |                                                          ^^^^^
            = help: write the permission bits in octal, as chmod takes them: mode = "0640"
        "#,
        );
    std::fs::write(
        t.path("nexus.toml"),
        "[tasks.a]\nrun = [\"touch ran\", { secret = \"C\", to = \"c.key\" }]\n",
    )
    .unwrap();
    let r = t.clone_args(&["run", "a", "--keyfile", "k.key"]).run();
    r.expect_code(2);
    assert!(
        r.stderr
            .contains("task `a` uses secret `C`, which is not in .nexus/secrets.enc"),
        "{}",
        r.show()
    );
    assert!(!t.path("ran").exists());
}
