//! File steps (docs/nexus-toml.md, "Files"): upload, template and download against the
//! suite's sshd (the upload basics against dropbear too), and on local tasks. The test
//! servers run on this machine as the suite's user, so a remote path is a path here: the
//! tests look at what arrived directly.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::sshd::{Keys, Server};
use crate::common::*;
use crate::ssh::isolated;

/// A project whose hosts `h1`..`hN` are aliases of `server` in its own ssh_config, with
/// `[hosts] web` listing them (as written in `hosts`, which may hold tables) and `rest`
/// appended.
pub(crate) fn project(server: &Server, hosts: &str, rest: &str) -> Test {
    let keys = Keys::get();
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
    t.toml(&format!(
        "[config]\nssh_config = \"{}\"\nknown_hosts = \"{}\"\n\n[hosts]\nweb = {hosts}\n\n{rest}",
        ssh_config.display(),
        server.known_hosts().display(),
    ))
}

pub(crate) fn sha256(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

pub(crate) fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// The tree the upload tests send: nested directories, an executable, a symlink, a file
/// `exclude` skips.
fn source_tree(t: Test) -> Test {
    let t = t
        .file("app/a.txt", "alpha\n")
        .file("app/sub/deep/b.sh", "#!/bin/sh\necho b\n")
        .file("app/skip.map", "not sent\n")
        .file("app/sub/c.txt", "gamma\n");
    std::fs::set_permissions(
        t.path("app/sub/deep/b.sh"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    std::os::unix::fs::symlink("sub/c.txt", t.path("app/link")).unwrap();
    t
}

fn upload_tree_twice_then_one_change(t: &Test, dest: &Path, unit: &str, ok: &str) {
    let run = t.clone_args(&["run", "put"]).run();
    run.expect(
        0,
        "",
        &format!(
            "{unit}: upload app/ -> {d}/: changed (4 of 4 files, 29 B moved)\n{ok}Completed in X.Xs: 1 succeeded\n",
            d = dest.display()
        ),
    );
    for (f, m) in [
        ("a.txt", 0o644),
        ("sub/deep/b.sh", 0o750),
        ("sub/c.txt", 0o644),
    ] {
        assert_eq!(
            sha256(&dest.join(f)),
            sha256(&t.path(&format!("app/{f}"))),
            "{f}"
        );
        assert_eq!(mode(&dest.join(f)), m, "{f}");
    }
    assert_eq!(
        std::fs::read_link(dest.join("link")).unwrap(),
        Path::new("sub/c.txt")
    );
    assert!(!dest.join("skip.map").exists());
    // Nothing left behind by the transfer.
    let names: Vec<String> = std::fs::read_dir(dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".nexus"))
        .collect();
    assert!(names.is_empty(), "{names:?}");

    let again = t.clone_args(&["run", "put"]).run();
    again.expect(
        0,
        "",
        &format!(
            "{unit}: upload app/ -> {d}/: unchanged (4 files)\n{ok}Completed in X.Xs: 1 succeeded\n",
            d = dest.display()
        ),
    );

    std::fs::write(t.path("app/sub/c.txt"), "gamma, edited\n").unwrap();
    let changed = t.clone_args(&["run", "put"]).run();
    changed.expect(
        0,
        "",
        &format!(
            "{unit}: upload app/ -> {d}/: changed (1 of 4 files, 14 B moved)\n{ok}Completed in X.Xs: 1 succeeded\n",
            d = dest.display()
        ),
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("sub/c.txt")).unwrap(),
        "gamma, edited\n"
    );
}

/// Upload of a tree: the remote tree matches (hashes, modes, the link, the excluded file
/// absent); a second run changes nothing and moves 0 bytes; one edited file is exactly
/// one file changed.
#[test]
fn upload_of_a_tree_sends_only_what_changed() {
    let server = Server::openssh();
    let probe = TempDir::new("dest");
    let dest = probe.path().join("srv/app");
    let t = project(
        &server,
        "[\"h1\"]",
        &format!(
            "[tasks.put]\non = \"web\"\nrun = [{{ upload = \"app/\", to = \"{}/\", exclude = [\"*.map\"] }}]\n",
            dest.display()
        ),
    );
    let t = source_tree(t);
    upload_tree_twice_then_one_change(&t, &dest, "put@h1", "ok put X.Xs\n  `- h1 ok X.Xs\n");
}

/// The same steps on a local task copy on this machine.
#[test]
fn upload_on_a_local_task_copies_here() {
    let probe = TempDir::new("dest");
    let dest = probe.path().join("out");
    let t = Test::new().toml(&format!(
        "[tasks.put]\nrun = [{{ upload = \"app/\", to = \"{}/\", exclude = [\"*.map\"] }}]\n",
        dest.display()
    ));
    let t = source_tree(t);
    upload_tree_twice_then_one_change(&t, &dest, "put", "ok put X.Xs\n");
}

/// dropbear: the same upload basics.
#[test]
fn upload_of_a_tree_through_dropbear() {
    if skip_unless_root(
        "files::upload_of_a_tree_through_dropbear",
        "creates the login user nexustest with useradd",
    ) {
        return;
    }
    let login = crate::ssh::dropbear_user();
    let server = Server::dropbear();
    // The login user writes here.
    let probe = TempDir::new("dest");
    let dest = probe.path().join("drop");
    std::fs::create_dir_all(&dest).unwrap();
    let st = std::process::Command::new("chown")
        .args(["-R", login])
        .arg(probe.path())
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::set_permissions(probe.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let toml = format!(
        "[config]\nssh_config = \"none\"\nknown_hosts = \"{kh}\"\nssh_identity = \"{id}\"\n[hosts]\ndb = [\"{login}@127.0.0.1:{port}\"]\n[tasks.put]\non = \"db\"\nrun = [{{ upload = \"app/\", to = \"{d}/\", exclude = [\"*.map\"] }}]\n",
        kh = server.known_hosts().display(),
        id = Keys::get().key("id_ed25519").display(),
        port = server.port,
        d = dest.display(),
    );
    let t = source_tree(isolated(Test::new().toml(&toml)));
    let host = format!("{login}@127.0.0.1:{}", server.port);
    let ok = format!("ok put X.Xs\n  `- {host} ok X.Xs\n");
    upload_tree_twice_then_one_change(&t, &dest, &format!("put@{host}"), &ok);
}

/// A template with group and host vars renders differently per host; the JSON `file`
/// events say what changed.
#[test]
fn a_template_renders_per_host_with_group_and_host_vars() {
    let server = Server::openssh();
    let probe = TempDir::new("dest");
    let out = probe.path();
    let t = project(
        &server,
        "{ hosts = [\"h1\", { host = \"h2\", vars = { port = 8081 } }], vars = { port = 8080, role = \"api\" } }",
        &format!(
            "[vars]\napp = \"shop\"\n\n[tasks.conf]\non = \"web\"\nrun = [{{ template = \"app.ini.j2\", to = \"{}/{{{{ host }}}}/app.ini\", vars = {{ workers = 4 }} }}]\n",
            out.display()
        ),
    )
    .file(
        "app.ini.j2",
        "{# rendered by nexus #}\n[{{ app }}]\nhost = {{ host }}\nport = {{ port }}\nrole = {{ role | upper }}\n{% for i in range(workers) %}w{{ i }} {% endfor %}\n",
    );
    let r = t.clone_args(&["run", "conf", "--format", "json"]).run();
    r.expect_code(0);
    for (h, port) in [("h1", 8080), ("h2", 8081)] {
        assert_eq!(
            std::fs::read_to_string(out.join(h).join("app.ini")).unwrap(),
            format!("\n[shop]\nhost = {h}\nport = {port}\nrole = API\nw0 w1 w2 w3 \n"),
        );
    }
    let mut files: Vec<String> = r
        .json_lines()
        .iter()
        .filter(|l| l["event"] == "file")
        .map(|l| {
            format!(
                "{} {} changed={} files={}/{} bytes={}",
                l["host"].as_str().unwrap(),
                l["step"]
                    .as_str()
                    .unwrap()
                    .replace(&out.display().to_string(), "OUT"),
                l["changed"],
                l["files"],
                l["total"],
                l["bytes"]
            )
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "h1 template app.ini.j2 -> OUT/h1/app.ini changed=true files=1/1 bytes=54",
            "h2 template app.ini.j2 -> OUT/h2/app.ini changed=true files=1/1 bytes=54",
        ]
    );
}

/// An unknown name in a template file is a load-time error at the template's own
/// file:line:column; a name only some hosts define says which host lacks it.
#[test]
fn an_undefined_variable_in_a_template_is_a_load_error_in_the_template() {
    let server = Server::openssh();
    let t = project(
        &server,
        "[\"h1\", { host = \"h2\", vars = { port = 8081 } }]",
        "[vars]\napp = \"shop\"\n\n[tasks.conf]\non = \"web\"\nrun = [{ template = \"conf/app.ini.j2\", to = \"/tmp/x\" }]\n",
    )
    .file("conf/app.ini.j2", "[{{ app }}]\nname = {{ ap }}\nport = {{ port }}\n");
    t.clone_args(&["validate"]).run().expect(
        2,
        "",
        "Error: Validation failed\n\n  \
         conf/app.ini.j2:2:11: unknown variable `ap`\n    |\n  2 | name = {{ ap }}\n    |           ^^\n    = help: did you mean `app`?\n\n  \
         conf/app.ini.j2:3:11: unknown variable `port` (not defined for host `h1`)\n    |\n  3 | port = {{ port }}\n    |           ^^^^\n    = help: `port` is in the vars of some of the task's hosts but not of `h1`: give it a default in [vars], or define it for every host\n",
    );
}

/// A failing `validate` leaves the old file in place and fails the step with the
/// validator's output.
#[test]
fn a_failing_validate_keeps_the_old_file() {
    let server = Server::openssh();
    let probe = TempDir::new("dest");
    let target = probe.path().join("app.conf");
    std::fs::write(&target, "old = 1\n").unwrap();
    let t = project(
        &server,
        "[\"h1\"]",
        &format!(
            "[tasks.conf]\non = \"web\"\nrun = [{{ template = \"app.conf.j2\", to = \"{}\", validate = \"grep -q '^listen' %s || {{ echo 'app.conf: no listen line'; exit 3; }}\" }}]\n",
            target.display()
        ),
    )
    .file("app.conf.j2", "new = 2\n");
    let r = t.clone_args(&["run", "conf"]).run();
    r.expect(
        1,
        "",
        &format!(
            "conf@h1 | app.conf: no listen line\n\
             conf@h1 | nexus: the validator exited with 3: the old file is kept\n\
             FAILED conf X.Xs\n  `- h1 FAILED X.Xs\n\
             Error: File step failed\n\n  \
             Host: h1\n  Task: conf\n  Command: template app.conf.j2 -> {to}\n  \
             Reason: the validator refused the new file: the old file is kept\n\n  \
             Output:\n    app.conf: no listen line\n    nexus: the validator exited with 3: the old file is kept\n\n\n\
             Summary:\n  FAILED    conf  X.Xs\nFailed in X.Xs: 0 succeeded, 1 failed\n",
            to = target.display()
        ),
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old = 1\n");
    let left: Vec<_> = std::fs::read_dir(probe.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

/// `download` to `logs/{{ host }}/app.log` from two hosts creates both files; a second
/// run changes nothing.
#[test]
fn download_from_two_hosts_makes_a_file_per_host() {
    let server = Server::openssh();
    let probe = TempDir::new("remote");
    let remote = probe.path().join("{{ host }}.log");
    for h in ["h1", "h2"] {
        std::fs::write(
            probe.path().join(format!("{h}.log")),
            format!("log of {h}\n"),
        )
        .unwrap();
    }
    let t = project(
        &server,
        "[\"h1\", \"h2\"]",
        &format!(
            "[tasks.logs]\non = \"web\"\nrun = [{{ download = \"{}\", to = \"logs/{{{{ host }}}}/app.log\" }}]\n",
            remote.display()
        ),
    );
    let r = t.clone_args(&["run", "logs", "--format", "json"]).run();
    r.expect_code(0);
    for h in ["h1", "h2"] {
        assert_eq!(
            t.read(&format!("logs/{h}/app.log")),
            format!("log of {h}\n")
        );
    }
    let again = t.clone_args(&["run", "logs", "--format", "json"]).run();
    again.expect_code(0);
    let changed: Vec<bool> = again
        .json_lines()
        .iter()
        .filter(|l| l["event"] == "file")
        .map(|l| l["changed"].as_bool().unwrap())
        .collect();
    assert_eq!(changed, [false, false]);
}

/// `mode`, `owner` and `group` with `sudo = true`, logged in as a user who is not root,
/// into a directory only root may write: the files arrive with the owner, group and mode
/// asked; without sudo the step fails and says why.
#[test]
fn sudo_uploads_into_a_root_directory_with_owner_group_and_mode() {
    if skip_unless_root(
        "files::sudo_uploads_into_a_root_directory_with_owner_group_and_mode",
        "creates the login user nexustest and its sudoers entry",
    ) {
        return;
    }
    let login = crate::ssh::dropbear_user();
    // useradd leaves the account locked (`!`), and OpenSSH without PAM refuses locked
    // accounts even for keys: `*` is no password, not a lock.
    let st = std::process::Command::new("usermod")
        .args(["-p", "*", login])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(
        "/etc/sudoers.d/nexustest",
        format!("{login} ALL=(ALL) NOPASSWD:ALL\n"),
    )
    .unwrap();
    std::fs::set_permissions(
        "/etc/sudoers.d/nexustest",
        std::fs::Permissions::from_mode(0o440),
    )
    .unwrap();
    // sshd reads authorized_keys as the login user, who cannot read the suite's key
    // directory: point it at the user's own copy.
    let server = Server::openssh_with(&format!(
        "Match User {login}\n  AuthorizedKeysFile /var/tmp/nexustest-home/.ssh/authorized_keys\n"
    ));
    let probe = TempDir::new("root-owned");
    let etc = probe.path().join("etc/app");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::set_permissions(probe.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let toml = format!(
        "[config]\nssh_config = \"none\"\nknown_hosts = \"{kh}\"\nssh_identity = \"{id}\"\n[hosts]\nweb = [\"{login}@127.0.0.1:{port}\"]\n\
         [tasks.put]\non = \"web\"\nrun = [{{ upload = \"conf/\", to = \"{d}/\", sudo = true, mode = \"0640\", owner = \"root\", group = \"{login}\" }}]\n\
         [tasks.plain]\non = \"web\"\nrun = [{{ upload = \"conf/\", to = \"{d}/\" }}]\n",
        kh = server.known_hosts().display(),
        id = Keys::get().key("id_ed25519").display(),
        port = server.port,
        d = etc.display(),
    );
    let t = isolated(Test::new().toml(&toml))
        .file("conf/app.ini", "secret = no\n")
        .file("conf/more/extra.ini", "x = 1\n");
    let host = format!("{login}@127.0.0.1:{}", server.port);
    t.clone_args(&["run", "put"]).run().expect(
        0,
        "",
        &format!(
            "put@{host}: upload conf/ -> {d}/: changed (2 of 2 files, 18 B moved)\nok put X.Xs\n  `- {host} ok X.Xs\nCompleted in X.Xs: 1 succeeded\n",
            d = etc.display()
        ),
    );
    use std::os::unix::fs::MetadataExt;
    let gid = {
        let out = std::process::Command::new("id")
            .args(["-g", login])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    for f in ["app.ini", "more/extra.ini"] {
        let m = std::fs::metadata(etc.join(f)).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (0, gid, 0o640),
            "{f}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(etc.join("app.ini")).unwrap(),
        "secret = no\n"
    );
    // The same again: nothing to do.
    let again = t.clone_args(&["run", "put"]).run();
    again.expect_code(0);
    assert!(
        again.stderr.contains(": unchanged (2 files)\n"),
        "{}",
        again.show()
    );
    // Without sudo the login user may not write there.
    std::fs::write(t.path("conf/app.ini"), "secret = changed\n").unwrap();
    let plain = t.clone_args(&["run", "plain"]).run();
    plain.expect_code(1);
    assert!(
        plain.stderr.contains(&format!(
            "  Reason: cannot write the files in `{d}` (exit 1): mktemp: failed to create directory via template './.nexus-stage.XXXXXX': Permission denied\n\n  \
             Output:\n    mktemp: failed to create directory via template './.nexus-stage.XXXXXX': Permission denied\n\n  \
             help: the login user may not write in `{d}`: add `sudo = true` to the step, or choose a directory it owns\n",
            d = etc.display()
        )),
        "{}",
        plain.show()
    );
    let _ = std::fs::remove_file("/etc/sudoers.d/nexustest");
}

/// SIGKILL of nexus in the middle of a 100 MB upload: the target keeps its old content;
/// the next run sends only what had not arrived and ends with the right file.
#[test]
fn an_interrupted_large_upload_keeps_the_old_file_and_continues() {
    let server = Server::openssh();
    let probe = TempDir::new("dest");
    let target = probe.path().join("big.bin");
    std::fs::write(&target, "old\n").unwrap();
    let t = project(
        &server,
        "[\"h1\"]",
        &format!(
            "[tasks.put]\non = \"web\"\nrun = [{{ upload = \"big.bin\", to = \"{}\" }}]\n",
            target.display()
        ),
    );
    // 100 MB that does not repeat within a block.
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(t.path("big.bin")).unwrap());
        for i in 0u64..(100_000_000 / 8) {
            f.write_all(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes())
                .unwrap();
        }
    }
    let c = t.clone_args(&["run", "put", "-q"]).command();
    let mut cmd = c;
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let child = Stop(cmd.spawn().unwrap());
    let part = || {
        std::fs::read_dir(probe.path())
            .unwrap()
            .filter_map(Result::ok)
            .find(|e| e.file_name().to_string_lossy().starts_with(".nexus-part-"))
            .and_then(|e| e.metadata().ok())
            .map_or(0, |m| m.len())
    };
    wait_until(
        "part of the file arrived",
        std::time::Duration::from_secs(60),
        || part() >= 2_000_000,
    );
    child.signal(9);
    drop(child);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old\n");
    let arrived = part();
    assert!(arrived > 0 && arrived < 100_000_000, "{arrived}");

    let r = t.clone_args(&["run", "put", "--format", "json"]).run();
    r.expect_code(0);
    let moved: Vec<u64> = r
        .json_lines()
        .iter()
        .filter(|l| l["event"] == "file")
        .map(|l| l["bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(moved.len(), 1);
    assert!(
        moved[0] < 100_000_000 && moved[0] > 0,
        "{moved:?} after {arrived}"
    );
    assert_eq!(sha256(&target), sha256(&t.path("big.bin")));
    assert_eq!(part(), 0, "the partial file is gone");
}

/// `run -n --diff` reads the host and prints a unified diff of the template that would
/// change; the file on the host keeps its content and its mtime.
#[test]
fn a_dry_run_with_diff_shows_the_change_and_touches_nothing() {
    let server = Server::openssh();
    let probe = TempDir::new("dest");
    let target = probe.path().join("app.ini");
    std::fs::write(&target, "[shop]\nport = 8080\nworkers = 2\n").unwrap();
    let before = std::fs::metadata(&target).unwrap().modified().unwrap();
    let t = project(
        &server,
        "[\"h1\"]",
        &format!(
            "[vars]\nport = 9090\n\n[tasks.conf]\non = \"web\"\nrun = [{{ template = \"app.ini.j2\", to = \"{}\" }}]\n",
            target.display()
        ),
    )
    .file("app.ini.j2", "[shop]\nport = {{ port }}\nworkers = 2\n");
    let r = t.clone_args(&["run", "conf", "-n", "--diff"]).run();
    r.expect_code(0);
    let section: String = r
        .stdout
        .split("\nSummary\n")
        .next()
        .unwrap()
        .split("\nFile steps")
        .nth(1)
        .unwrap_or("")
        .to_string();
    assert_text(
        "file steps of the plan",
        &section.replace(&target.display().to_string(), "TARGET"),
        " (read from the targets; nothing written)\n  conf@h1: template app.ini.j2 -> TARGET: would change 1 of 1 file (31 B to move)\n    --- TARGET (on the target)\n    +++ TARGET (new)\n    @@ -1,3 +1,3 @@\n     [shop]\n    -port = 8080\n    +port = 9090\n     workers = 2\n",
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "[shop]\nport = 8080\nworkers = 2\n"
    );
    assert_eq!(
        std::fs::metadata(&target).unwrap().modified().unwrap(),
        before
    );
    let left: Vec<_> = std::fs::read_dir(probe.path()).unwrap().collect();
    assert_eq!(left.len(), 1);
}

/// Pre-flight checks that the local sources of file steps exist.
#[test]
fn preflight_checks_that_upload_sources_exist() {
    let t = Test::new()
        .toml(
            "[tasks.put]\nrun = [{ upload = \"dist/\", to = \"/tmp/nowhere/\" }, { template = \"app.j2\", to = \"/tmp/nowhere/app\" }]\n",
        )
        .file("app.j2", "x\n");
    let r = t
        .clone_args(&["preflight", "put", "--skip-disk-check"])
        .run();
    r.expect(
        1,
        "Pre-flight checks for: put\n\nConfiguration\n  ok   nexus.toml valid\n  ok   task put exists\n  ok   dependencies resolved: put\n  \
         FAIL upload source dist/ (task put)  No such file or directory\n  ok   template app.j2 (task put)\n\n\
         FAIL Pre-flight checks failed (1 error)\n\nErrors:\n  1. upload source dist/ (task put): No such file or directory\n     \
         help: paths of upload sources are relative to the project root, the directory of nexus.toml\n\n",
        "",
    );
}

/// `secret("NAME")` in a template file: the host's file gets the value; nothing nexus
/// prints or keeps holds it (with -v, in JSON, in the journal), and `run -n --diff` does
/// not show the text of a template that uses a secret.
#[test]
fn a_template_with_a_secret_reaches_the_host_and_nothing_else() {
    let server = Server::openssh();
    let probe = TempDir::new("dest");
    let target = probe.path().join("app.ini");
    let t = project(
        &server,
        "[\"h1\"]",
        &format!(
            "[tasks.conf]\non = \"web\"\nrun = [{{ template = \"app.ini.j2\", to = \"{}\", mode = \"0600\" }}]\n",
            target.display()
        ),
    )
    .file("app.ini.j2", "user = app\ntoken = {{ secret(\"TOKEN\") }}\n");
    t.clone_args(&["secret", "init", "--keyfile", "k.key"])
        .run()
        .expect_code(0);
    let set = |value: &str| {
        use std::io::Write;
        let mut c = t
            .clone_args(&["secret", "set", "TOKEN", "--keyfile", "k.key"])
            .command();
        c.stdin(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(value.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    };
    let canary = "tmpl-canary-77f1c0";
    set(canary);
    for args in [
        &["run", "conf", "-v", "--keyfile", "k.key"][..],
        &["run", "conf", "--format", "json", "--keyfile", "k.key"],
        &["run", "conf", "--output", "grouped", "--keyfile", "k.key"],
    ] {
        let r = t.clone_args(args).run();
        r.expect_code(0);
        assert!(
            !r.stdout.contains(canary) && !r.stderr.contains(canary),
            "{}",
            r.show()
        );
    }
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        format!("user = app\ntoken = {canary}\n")
    );
    assert_eq!(mode(&target), 0o600);
    let journals = std::process::Command::new("grep")
        .args(["-r", "-l", canary])
        .arg(t.path(".nexus-home"))
        .output()
        .unwrap();
    assert!(
        journals.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&journals.stdout)
    );
    // A new value: the dry run says the file would change, and shows no text of it.
    set("tmpl-canary-second-9d2e");
    let plan = t
        .clone_args(&["run", "conf", "-n", "--diff", "--keyfile", "k.key"])
        .run();
    plan.expect_code(0);
    assert!(
        plan.stdout.contains(&format!(
            "  conf@h1: template app.ini.j2 -> {d}: would change 1 of 1 file (43 B to move)\n    {d}: not shown: the template uses a secret (43 bytes)\n",
            d = target.display()
        )),
        "{}",
        plan.show()
    );
    assert!(!plan.stdout.contains("canary"), "{}", plan.show());
}

/// A large file (64 MiB and up travels on its own) into a directory that is not there.
#[test]
fn a_large_file_goes_into_a_new_directory() {
    let probe = TempDir::new("dest");
    let dest = probe.path().join("new/dir");
    let t = Test::new().toml(&format!(
        "[tasks.put]\nrun = [{{ upload = \"big.bin\", to = \"{}/\", mode = \"0640\" }}]\n",
        dest.display()
    ));
    let f = std::fs::File::create(t.path("big.bin")).unwrap();
    f.set_len(65 * 1024 * 1024).unwrap();
    t.clone_args(&["run", "put"]).run().expect(
        0,
        "",
        &format!(
            "put: upload big.bin -> {}/: changed (1 of 1 file, 68.2 MB moved)\nok put X.Xs\nCompleted in X.Xs: 1 succeeded\n",
            dest.display()
        ),
    );
    assert_eq!(sha256(&dest.join("big.bin")), sha256(&t.path("big.bin")));
    assert_eq!(mode(&dest.join("big.bin")), 0o640);
}

/// A file step notifies its handler only when it changed something: the first run
/// restarts, an unchanged second run does not, an edited template does again.
#[test]
fn a_file_step_notifies_its_handler_only_when_it_changed() {
    let probe = TempDir::new("dest");
    let t = Test::new()
        .toml(&format!(
            "[vars]\nport = 1\n\n[tasks.conf]\nrun = [{{ template = \"app.ini.j2\", to = \"{d}/app.ini\", notify = \"restart\" }}]\n\n\
             [handlers.restart]\nrun = \"echo restarted >> {d}/restarts.log\"\n",
            d = probe.path().display()
        ))
        .file("app.ini.j2", "port = {{ port }}\n");
    let restarts = || {
        std::fs::read_to_string(probe.path().join("restarts.log"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    t.clone_args(&["run", "conf"]).run().expect_code(0);
    assert_eq!(restarts(), 1);
    t.clone_args(&["run", "conf"]).run().expect_code(0);
    assert_eq!(restarts(), 1, "an unchanged file notifies nothing");
    std::fs::write(t.path("app.ini.j2"), "port = {{ port }}\nworkers = 2\n").unwrap();
    t.clone_args(&["run", "conf"]).run().expect_code(0);
    assert_eq!(restarts(), 2);
}

/// A handler's steps may be file steps: its template file is read and rendered too.
#[test]
fn a_handler_may_render_a_template() {
    let probe = TempDir::new("dest");
    let t = Test::new()
        .toml(&format!(
            "[vars]\napp = \"shop\"\n\n[tasks.conf]\nrun = [{{ cmd = \"true\", notify = \"render\" }}]\n\n\
             [handlers.render]\nrun = [{{ template = \"h.j2\", to = \"{}/h.out\" }}]\n",
            probe.path().display()
        ))
        .file("h.j2", "{# a comment #}app = {{ app }} on {{ host }}\n");
    t.clone_args(&["run", "conf"]).run().expect_code(0);
    assert_eq!(
        std::fs::read_to_string(probe.path().join("h.out")).unwrap(),
        "app = shop on local\n"
    );
}
