//! Artifacts (docs/nexus-toml.md, "Artifacts"): staged after the producer succeeds, put
//! in place for the tasks that depend on it, locally and on the suite's sshd (hosts
//! `h1`..`hN` are aliases of it; a remote path is a path here).

use crate::common::sshd::Server;
use crate::common::*;
use crate::files::{mode, project, sha256};

fn build_task() -> &'static str {
    "[tasks.build]\nrun = \"mkdir -p dist && printf 'app v1\\\\n' > dist/app.sh && chmod 750 dist/app.sh && echo n > notes.txt\"\nartifacts = [\"dist/*.sh\", \"notes.txt\"]\n\n"
}

/// A local producer, a consumer on 3 hosts: each host gets the files at their paths with
/// their hash and mode; a second run moves nothing.
#[test]
fn a_local_artifact_reaches_three_hosts_and_moves_once() {
    let server = Server::openssh();
    let remote = TempDir::new("remote");
    for h in ["h1", "h2", "h3"] {
        std::fs::create_dir_all(remote.path().join(h)).unwrap();
    }
    let t = project(
        &server,
        "[\"h1\", \"h2\", \"h3\"]",
        &format!(
            "{}[tasks.deploy]\non = \"web\"\ndeps = [\"build\"]\ndir = \"{}/{{{{ host }}}}\"\nrun = \"test -x dist/app.sh\"\n",
            build_task(),
            remote.path().display()
        ),
    );
    let r = t.clone_args(&["run", "deploy", "-q"]).run();
    r.expect(0, "", "ok build (X.Xs)\nok deploy (X.Xs)\n");
    let staged = t.path("dist/app.sh");
    for h in ["h1", "h2", "h3"] {
        let got = remote.path().join(h).join("dist/app.sh");
        assert_eq!(sha256(&got), sha256(&staged));
        assert_eq!(mode(&got), 0o750);
        assert_eq!(
            std::fs::read_to_string(remote.path().join(h).join("notes.txt")).unwrap(),
            "n\n"
        );
    }
    let again = t.clone_args(&["run", "deploy", "--format", "json"]).run();
    again.expect_code(0);
    let placed: Vec<(bool, u64)> = again
        .json_lines()
        .iter()
        .filter(|l| l["event"] == "artifacts_placed")
        .map(|l| {
            (
                l["changed"].as_bool().unwrap(),
                l["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(placed, [(false, 0), (false, 0), (false, 0)]);
}

/// A producer on 2 hosts, a local consumer: each host's copy under `HOST/`.
#[test]
fn artifacts_of_two_hosts_arrive_here_one_folder_per_host() {
    let server = Server::openssh();
    let remote = TempDir::new("remote");
    for h in ["h1", "h2"] {
        std::fs::create_dir_all(remote.path().join(h)).unwrap();
    }
    let t = project(
        &server,
        "[\"h1\", \"h2\"]",
        &format!(
            "[tasks.build]\non = \"web\"\ndir = \"{}/{{{{ host }}}}\"\nrun = \"mkdir -p out && echo built on $NEXUS_HOST > out/r.txt\"\nartifacts = [\"out\"]\n\n[tasks.use]\ndeps = [\"build\"]\nrun = \"cat h1/out/r.txt h2/out/r.txt\"\n",
            remote.path().display()
        ),
    );
    let r = t.clone_args(&["run", "use", "-q"]).run();
    r.expect(0, "", "ok build (X.Xs)\nok use (X.Xs)\n");
    assert_eq!(t.read("h1/out/r.txt"), "built on h1\n");
    assert_eq!(t.read("h2/out/r.txt"), "built on h2\n");
}

/// `artifacts_from = []` takes none, a list takes those named; a declared artifact that
/// is missing fails its producer, naming it.
#[test]
fn artifacts_from_narrows_and_a_missing_artifact_fails_the_producer() {
    let t = Test::new().toml(
        "[tasks.a]\nrun = \"echo a > a.txt\"\nartifacts = [\"a.txt\"]\ndir = \"pa\"\n\n[tasks.b]\ndeps = [\"a\"]\nartifacts_from = []\nrun = \"echo b > b.txt\"\nartifacts = [\"b.txt\"]\ndir = \"pb\"\n\n\
         [tasks.none]\ndeps = [\"a\", \"b\"]\nartifacts_from = []\ndir = \"c1\"\nrun = \"ls\"\n\n\
         [tasks.only_b]\ndeps = [\"a\", \"b\"]\nartifacts_from = [\"b\"]\ndir = \"c2\"\nrun = \"ls\"\n\n\
         [tasks.gone]\nrun = \"true\"\nartifacts = [\"dist/app.tar.gz\"]\n",
    );
    for d in ["pa", "pb", "c1", "c2"] {
        std::fs::create_dir_all(t.path(d)).unwrap();
    }
    t.clone_args(&["run", "none", "-q"]).run().expect(
        0,
        "",
        "ok a (X.Xs)\nok b (X.Xs)\nok none (X.Xs)\n",
    );
    t.clone_args(&["run", "only_b", "-q"]).run().expect(
        0,
        "",
        "ok a (X.Xs)\nok b (X.Xs)\nok only_b (X.Xs)\n",
    );
    let listed = |d: &str| {
        let mut names: Vec<String> = std::fs::read_dir(t.path(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(listed("c1"), Vec::<String>::new());
    assert_eq!(listed("c2"), ["b.txt"]);
    assert_eq!(listed("pb"), ["b.txt"]);
    let r = t.clone_args(&["run", "gone"]).run();
    r.expect(
        1,
        "",
        "FAILED gone X.Xs\nError: Task failed\n\n  Host: local\n  Task: gone\n  \
         Reason: artifact `dist/app.tar.gz` of task `gone` does not exist on local (in the project root)\n\n  \
         help: make the task write it, or correct the path in `artifacts` (relative to the task's working directory)\n\n\n\
         Summary:\n  FAILED    gone  X.Xs\nFailed in X.Xs: 0 succeeded, 1 failed\n",
    );
}

fn run_ids(t: &Test) -> Vec<String> {
    let mut c = t.command();
    c.args(["runs", "--format", "json"]);
    let out = c.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut ids: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// `runs show` lists a run's artifacts; `runs gc` removes the staged files of the runs
/// it removes and keeps those of the runs it keeps.
#[test]
fn runs_show_lists_artifacts_and_gc_removes_only_those_of_removed_runs() {
    let t = Test::new().toml(build_task());
    t.clone_args(&["run", "build", "-q"])
        .run()
        .expect(0, "", "ok build (X.Xs)\n");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    t.clone_args(&["run", "build", "-q"])
        .run()
        .expect(0, "", "ok build (X.Xs)\n");
    let ids = run_ids(&t);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let show = t.clone_args(&["runs", "show", &ids[1]]).run();
    show.expect_code(0);
    let app = sha256(&t.path("dist/app.sh"));
    let notes = sha256(&t.path("notes.txt"));
    let section = format!(
        "\nArtifacts:\n  TASK   HOST   ARTIFACT     SIZE  SHA256\n  build  local  dist/app.sh  7     {app}\n  build  local  notes.txt    2     {notes}\n"
    );
    assert!(show.stdout.ends_with(&section), "{}", show.stdout);
    let staging = |id: &str| t.path(&format!(".nexus-home/runs/{id}.artifacts"));
    assert!(staging(&ids[0]).join("build/local/dist/app.sh").exists());
    assert!(staging(&ids[1]).join("build/local/notes.txt").exists());
    t.clone_args(&["runs", "gc", "--keep", "1"]).run().expect(
        0,
        &format!(
            "removed 1 run journals, kept the newest 1 of {}\n",
            std::fs::canonicalize(t.path(".")).unwrap().display()
        ),
        "",
    );
    assert!(!staging(&ids[0]).exists());
    assert!(staging(&ids[1]).join("build/local/dist/app.sh").exists());
}

fn kill9(pid: u32) {
    // SAFETY: killing a child process this test started.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
}

/// A nexus SIGKILLed while it puts a large artifact on a host, then `nexus resume`: the
/// producer is not run again, and the host gets the file with the producer's hash.
#[test]
fn a_killed_transfer_to_a_consumer_resumes_without_rerunning_the_producer() {
    let server = Server::openssh();
    let remote = TempDir::new("remote");
    std::fs::create_dir_all(remote.path().join("h1")).unwrap();
    let t = project(
        &server,
        "[\"h1\"]",
        &format!(
            "[tasks.build]\nrun = \"echo ran >> built.log && head -c 100000000 /dev/urandom > big.bin\"\nartifacts = [\"big.bin\"]\n\n\
             [tasks.deploy]\non = \"web\"\ndeps = [\"build\"]\ndir = \"{}/h1\"\nrun = \"true\"\n",
            remote.path().display()
        ),
    );
    let mut c = t.command();
    c.args(["run", "deploy", "-q"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    let dir = remote.path().join("h1");
    wait_until(
        "the transfer to start",
        std::time::Duration::from_secs(60),
        || {
            std::fs::read_dir(&dir).is_ok_and(|d| {
                d.filter_map(Result::ok).any(|e| {
                    e.file_name().to_string_lossy().starts_with(".nexus-part-")
                        && e.metadata().is_ok_and(|m| m.len() > 0)
                })
            })
        },
    );
    kill9(child.id());
    let _ = child.wait();
    assert!(
        !dir.join("big.bin").exists(),
        "the transfer finished before the kill"
    );
    let r = t.clone_args(&["resume", "-q"]).run();
    r.expect_code(0);
    assert_eq!(t.read("built.log"), "ran\n");
    assert_eq!(sha256(&dir.join("big.bin")), sha256(&t.path("big.bin")));
}

/// `artifacts_from` may name only the task's own `deps`.
#[test]
fn artifacts_from_must_name_a_dependency() {
    let t = Test::new().toml(
        "[tasks.a]\nrun = \"true\"\nartifacts = [\"x\"]\n\n[tasks.b]\nrun = \"true\"\nartifacts_from = [\"a\"]\n",
    );
    t.clone_args(&["validate"]).run().expect(
        2,
        "",
        "Error: Validation failed\n\n  nexus.toml:7:19: task `b`: `artifacts_from` names `a`, which is not one of its `deps`\n    |\n  \
         7 | artifacts_from = [\"a\"]\n    |                   ^^^\n    = help: add `a` to `deps`, or remove it from `artifacts_from` (a task takes artifacts from its direct dependencies only)\n",
    );
}

/// Consumers get exactly what this run staged (pinned by the hash in the journal): a
/// staged file changed before it is placed fails the consumer, naming the file, both
/// hashes and what to do — in the same run, and in `nexus resume` after a SIGKILL (the
/// producer not run again); a file planted beside them is refused too.
#[test]
fn a_staged_artifact_changed_before_it_is_placed_is_refused() {
    let staged = |id: &str| format!(".nexus-home/runs/{id}.artifacts/build/local/dist/app.sh");
    let tamper = format!(
        "if [ -e tamper ]; then printf 'evil\\\\n' > {0}; fi; if [ -e plant ]; then echo x > $(dirname {0})/planted.sh; fi; \
         if [ -e chmod ]; then chmod 644 {0}; fi; if [ -e remove ]; then rm {0}; fi",
        staged("$NEXUS_RUN_ID")
    );
    let gate = format!("gate-{}", std::process::id());
    // The killed run's gate outlives it; whatever happens here, it goes with the test.
    let _gate = KillOnDrop(gate.clone());
    let t = Test::new().toml(&format!(
        "{}[tasks.tamper]\ndeps = [\"build\"]\nartifacts_from = []\nrun = \"{tamper}\"\n\n\
         [tasks.gate]\nrun = \"while [ ! -e go ]; do sleep 0.05; done # {gate}\"\n\n\
         [tasks.use]\ndeps = [\"build\", \"tamper\", \"gate\"]\nartifacts_from = [\"build\"]\ndir = \"out\"\nrun = \"cat dist/app.sh\"\n",
        build_task(),
    ));
    std::fs::create_dir(t.path("out")).unwrap();
    // The failure report, after the lines of the tasks (run in parallel, in any order).
    let refused = |r: &Run, reason: String| {
        r.expect_code(1);
        let report = format!(
            "FAILED use (X.Xs)\nError: Task failed\n\n  Host: local\n  Task: use\n  Reason: {reason}\n\n  help: run the producer again: nexus run build\n\n"
        );
        let got = r.stderr.split_once("FAILED use (").map(|(_, rest)| rest);
        assert_text(
            &format!("`{}`'s report", r.command),
            &mask(&format!("FAILED use ({}", got.unwrap_or(&r.stderr))),
            &mask(&report),
        );
        assert!(!t.path("out/dist/app.sh").exists());
    };
    let changed = |id: &str| {
        format!(
            "artifact `dist/app.sh` of task `build` from local changed after this run staged it: SHA-256 {} (5 bytes) now, the journal has {} (7 bytes)",
            sha256(&t.path(&staged(id))),
            sha256(&t.path("dist/app.sh")),
        )
    };
    // In one run: a task between the producer and the consumer changes the staged file.
    std::fs::write(t.path("tamper"), "").unwrap();
    std::fs::write(t.path("go"), "").unwrap();
    let r = t.clone_args(&["run", "use", "-q"]).run();
    let id = run_ids(&t).pop().unwrap();
    refused(&r, changed(&id));
    // After a SIGKILL: the file changed while nexus was down; the resume refuses it.
    std::fs::remove_file(t.path("tamper")).unwrap();
    std::fs::remove_file(t.path("go")).unwrap();
    let before = run_ids(&t).len();
    let mut c = t.command();
    c.args(["run", "use", "-q"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = Stop(c.spawn().unwrap());
    // Staged and journaled (the `artifacts` record), and the gate is waiting.
    wait_until("build to stage", std::time::Duration::from_secs(30), || {
        let ids = run_ids(&t);
        ids.len() > before
            && std::fs::read_dir(t.path(".nexus-home/runs"))
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with(ids.last().unwrap().as_str()) && name.ends_with(".jsonl")
                })
                .any(|e| {
                    std::fs::read_to_string(e.path())
                        .is_ok_and(|j| j.contains("\"ev\":\"artifacts\""))
                })
    });
    child.signal(libc::SIGKILL);
    let _ = child.0.wait();
    let id = run_ids(&t).pop().unwrap();
    std::fs::write(t.path(&staged(&id)), "evil\n").unwrap();
    std::fs::write(t.path("go"), "").unwrap();
    wait_until(
        "the killed run's gate to end",
        std::time::Duration::from_secs(30),
        || processes_matching(&gate).is_empty(),
    );
    let r = t.clone_args(&["resume", "-q"]).run();
    assert!(
        r.stderr
            .starts_with(&format!("resuming run {id} (use #2): skipping build")),
        "{}",
        r.show()
    );
    refused(&r, changed(&id));
    // A file planted beside the staged ones is refused too.
    std::fs::write(t.path("plant"), "").unwrap();
    let r = t.clone_args(&["run", "use", "-q"]).run();
    let id = run_ids(&t).pop().unwrap();
    refused(
        &r,
        format!(
            "`dist/planted.sh` in the staged artifacts of task `build` from local ({}) was not staged by the task",
            t.path(&format!(".nexus-home/runs/{id}.artifacts/build/local")).display()
        ),
    );
    std::fs::remove_file(t.path("plant")).unwrap();
    // A staged file whose mode changed, or that is gone.
    std::fs::write(t.path("chmod"), "").unwrap();
    let r = t.clone_args(&["run", "use", "-q"]).run();
    refused(
        &r,
        "artifact `dist/app.sh` of task `build` from local changed after this run staged it: mode 0644 now, the journal has 0750".into(),
    );
    std::fs::remove_file(t.path("chmod")).unwrap();
    std::fs::write(t.path("remove"), "").unwrap();
    let r = t.clone_args(&["run", "use", "-q"]).run();
    let id = run_ids(&t).pop().unwrap();
    refused(
        &r,
        format!(
            "artifact `dist/app.sh` of task `build` from local, staged in {}, is gone",
            t.path(&format!(".nexus-home/runs/{id}.artifacts/build/local"))
                .display()
        ),
    );
    std::fs::remove_file(t.path("remove")).unwrap();
    // Untouched, the consumer gets the producer's file.
    t.clone_args(&["run", "use", "-q"]).run().expect_code(0);
    assert_eq!(t.read("out/dist/app.sh"), "app v1\n");
    assert!(!t.path("out/dist/planted.sh").exists());
}

/// Kills, when dropped, the processes whose command line holds its text.
struct KillOnDrop(String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill_matching(&self.0);
    }
}
