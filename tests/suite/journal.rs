//! The journal under hostile conditions: processes racing for one run, commands a killed
//! nexus left running, a resume killed at any moment, a journal that cannot be written
//! (file-size limit, full disk). Each must end in a clear error and a correct exit code,
//! with no command run twice and nothing reported as done that the journal lost.

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use crate::common::*;

#[track_caller]
fn wait_for(what: &str, f: impl FnMut() -> bool) {
    wait_until(what, Duration::from_secs(20), f);
}

fn kill(pid: i32, signal: i32) {
    // SAFETY: signalling a process (or, with a negative pid, a process group) this test
    // started.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// The process group of `pid` (from /proc/PID/stat).
fn pgid_of(pid: u32) -> u32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(2).unwrap().parse().unwrap()
}

fn pids_of(needle: &str) -> Vec<u32> {
    processes_matching(needle)
        .iter()
        .filter_map(|p| p.split(':').next()?.parse().ok())
        .collect()
}

/// Stop the processes whose command line contains `needle` (a SIGKILLed nexus cannot).
/// Killed again on every look: a nexus killed while it started a command leaves a child
/// that only takes the command's name when it execs, after the first look.
fn reap(needle: &str) {
    wait_for("leftover processes to go", || kill_matching(needle) == 0);
}

/// A chain t1..t5 where t3 sleeps `sleep` seconds, or one second once the file `fast`
/// exists (so a resume's t3 is short and predictable).
fn chain(sleep: &str) -> String {
    format!(
        r#"
        [tasks.t1]
        run = "echo t1 >> marker"
        [tasks.t2]
        deps = ["t1"]
        run = "echo t2 >> marker"
        [tasks.t3]
        deps = ["t2"]
        run = "echo t3 >> marker; if [ -e fast ]; then sleep 1; else sleep {sleep}; fi"
        [tasks.t4]
        deps = ["t3"]
        run = "echo t4 >> marker"
        [tasks.t5]
        deps = ["t4"]
        run = "echo t5 >> marker"
        "#
    )
}

/// Start `nexus run t5` and SIGKILL it while t3 sleeps. Returns the test and the id of
/// the interrupted run; t3's sleep is left running.
fn killed_at_t3(sleep: &str) -> (Test, String) {
    let t = Test::new().toml(&chain(sleep));
    let mut c = t.command();
    c.args(["run", "t5", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = Stop(c.spawn().unwrap());
    wait_for("t3's sleep to start", || {
        !pids_of(&format!("sleep {sleep}")).is_empty()
    });
    child.signal(libc::SIGKILL);
    let _ = child.0.wait();
    let id = run_ids(&t).pop().expect("a journal");
    (t, id)
}

/// What a resume of a chain killed at t3 prints with -q.
const RESUMED_AT_T3: &str = "resuming run RUN_ID (t5 #1): skipping t1, t2 (finished); running t3, t4, t5\nok t3 (X.Xs)\nok t4 (X.Xs)\nok t5 (X.Xs)\n";

/// Ids of the runs in the test's NEXUS_HOME, oldest first.
fn run_ids(t: &Test) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(t.path(".nexus-home/runs"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let (id, _) = nexus::state::journal_name(&path)?;
            Some(id.to_string())
        })
        .collect();
    ids.sort();
    ids
}

/// The journal of run `id` (named `ID.TAG.jsonl`, TAG for the test's project).
fn journal_path(t: &Test, id: &str) -> std::path::PathBuf {
    let project = std::fs::canonicalize(t.path("")).unwrap();
    let tag = nexus::state::project_tag(&project.display().to_string());
    t.path(&format!(".nexus-home/runs/{id}.{tag}.jsonl"))
}

#[test]
fn resume_refuses_while_commands_of_the_killed_run_still_run() {
    let sleep = marker(60, 0);
    let (t, id) = killed_at_t3(&sleep);
    let sleeper = pids_of(&format!("sleep {sleep}"))[0];
    let pgid = pgid_of(sleeper);

    let r = t.clone_args(&["resume", &id, "-q"]).run();
    assert_eq!(r.code, 2, "{}", r.show());
    assert_text(
        "stderr",
        &r.stderr,
        &format!(
            "Error: run {id} cannot be resumed yet: commands the interrupted nexus started are still running\n\
             \n  Still running: task `t3` on local: `echo t3 >> marker; if [ -e fast ]; then sleep 1; else sleep {sleep}; fi` (process group {pgid})\n\
             \n  help: wait for them to finish, or stop them (kill -- -{pgid}); then run `nexus resume {id}` again\n"
        ),
    );
    assert_eq!(log_lines(&t.read("marker")), ["t1", "t2", "t3"]);

    // Stop the group as the help says; the resume then runs t3 again, and the rest.
    kill(-(pgid as i32), libc::SIGKILL);
    wait_for("the killed run's sleep to go", || {
        pids_of(&format!("sleep {sleep}")).is_empty()
    });
    std::fs::write(t.path("fast"), "").unwrap();
    t.clone_args(&["resume", &id, "-q"])
        .run()
        .expect(0, "", RESUMED_AT_T3);
    assert_eq!(
        log_lines(&t.read("marker")),
        ["t1", "t2", "t3", "t3", "t4", "t5"]
    );
}

#[test]
fn resume_while_the_run_itself_goes_on_is_refused() {
    let sleep = marker(60, 1);
    let t = Test::new().toml(&chain(&sleep));
    let mut c = t.command();
    c.args(["run", "t5", "-q"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _run = Stop(c.spawn().unwrap());
    wait_for("t3's sleep to start", || {
        !pids_of(&format!("sleep {sleep}")).is_empty()
    });
    let id = run_ids(&t).pop().unwrap();

    t.clone_args(&["resume", &id]).run().expect(
        2,
        "",
        &format!(
            "
            Error: run {id} is going on in another nexus process (it holds the run's journal)

              help: wait for it to finish; `nexus runs` shows the run as running until then
            "
        ),
    );
    // Without an id, resume looks for an interrupted run: a running one is not.
    t.clone_args(&["resume"]).run().expect(
        2,
        "",
        "
        Error: no interrupted run to resume in this project

          help: `nexus runs` lists the project's recent runs; `nexus runs --all` every project's
        ",
    );
    let runs = t.clone_args(&["runs"]).run();
    assert!(runs.stdout.contains("running"), "{}", runs.show());
    reap(&format!("sleep {sleep}"));
}

#[test]
fn concurrent_resumes_run_each_command_once() {
    let sleep = marker(60, 2);
    let (t, id) = killed_at_t3(&sleep);
    reap(&format!("sleep {sleep}"));
    std::fs::write(t.path("fast"), "").unwrap();

    // Three resumes of the same run at once: one takes it, the others are refused (or,
    // when they come after it finished, told it finished).
    let resumes: Vec<_> = (0..3)
        .map(|_| {
            let mut c = t.clone_args(&["resume", &id, "-q"]).command();
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
            let child = Stop(c.spawn().unwrap());
            (c, child)
        })
        .collect();
    let runs: Vec<Run> = resumes
        .into_iter()
        .map(|(c, mut child)| wait_within(&mut child, &c, Duration::from_secs(60)))
        .collect();

    let busy = format!(
        "Error: run {id} is going on in another nexus process (it holds the run's journal)\n\n  help: wait for it to finish; `nexus runs` shows the run as running until then\n"
    );
    let finished = format!(
        "Error: run {id} was not interrupted (it finished: success)\n\n  help: start a new run with `nexus run`\n"
    );
    let mut won = 0;
    for r in &runs {
        match r.code {
            0 => {
                won += 1;
                assert_eq!(mask(&r.stderr), RESUMED_AT_T3);
            }
            2 => assert!(
                r.stderr == busy || r.stderr == finished,
                "unexpected refusal:\n{}",
                r.show()
            ),
            _ => panic!("unexpected exit:\n{}", r.show()),
        }
    }
    assert_eq!(won, 1, "exactly one resume runs the rest");
    assert_eq!(
        log_lines(&t.read("marker")),
        ["t1", "t2", "t3", "t3", "t4", "t5"]
    );
}

#[test]
fn a_resume_killed_at_any_moment_keeps_the_valid_prefix() {
    let sleep = marker(60, 3);
    let (t, id) = killed_at_t3(&sleep);
    reap(&format!("sleep {sleep}"));
    let path = journal_path(&t, &id);
    // Resumed t3s sleep long enough to be killed too (no `fast`): a later resume must
    // find them gone (stopped here, as the refusal would ask) and run t3 again.
    let resumed_sleep = format!("sleep {sleep}");

    // A megabyte of garbage after the valid records, then resumes SIGKILLed at
    // increasing delays: while reading, repairing, or running t3.
    for (round, delay_ms) in [0u64, 2, 5, 10, 20, 40, 80, 160, 320].iter().enumerate() {
        let valid = std::fs::read(&path).unwrap();
        let valid = &valid[..=valid.iter().rposition(|&b| b == b'\n').unwrap()];
        let mut garbage = valid.to_vec();
        garbage.extend(std::iter::repeat_n(b'#', 1 << 20));
        std::fs::write(&path, &garbage).unwrap();
        let valid_len = valid.len();

        let mut c = t.clone_args(&["resume", &id, "-q"]).command();
        c.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = Stop(c.spawn().unwrap());
        std::thread::sleep(Duration::from_millis(*delay_ms));
        child.signal(libc::SIGKILL);
        let _ = child.0.wait();
        reap(&resumed_sleep);

        let after = std::fs::read(&path).unwrap();
        assert!(
            after.starts_with(&garbage[..valid_len]),
            "round {round} ({delay_ms} ms): the records before the garbage changed"
        );
    }

    std::fs::write(t.path("fast"), "").unwrap();
    let r = t.clone_args(&["resume", &id, "-q"]).run();
    assert_eq!(r.code, 0, "{}", r.show());
    assert!(mask(&r.stderr) == RESUMED_AT_T3, "{}", r.show());
    let marker = log_lines(&t.read("marker"));
    let count = |name: &str| marker.iter().filter(|l| *l == name).count();
    assert_eq!(
        (count("t1"), count("t2"), count("t4"), count("t5")),
        (1, 1, 1, 1),
        "completed tasks never run again: {marker:?}"
    );
    assert!(count("t3") >= 2, "{marker:?}");
}

const BIG_OUTPUT: &str = r#"
[tasks.a]
run = "echo a >> marker; head -c 40000 /dev/zero | tr '\\0' x"
[tasks.b]
deps = ["a"]
run = "echo b >> marker"
[tasks.c]
deps = ["b"]
run = "echo c >> marker"
"#;

fn journal_error(t: &Test, id: &str, why: &str) -> String {
    format!(
        "ok a (X.Xs)\ncancelled b (X.Xs)\nskipped c\n\
         Error: cannot write the run journal {}: {why}\n\n  \
         help: nothing more was started once the journal could not record it; free space or fix permissions there, or set NEXUS_HOME elsewhere\n  \
         help: then `nexus resume {id}` runs what the journal does not show as finished\n",
        journal_path(t, id).display()
    )
    .replace(id, "RUN_ID")
}

/// A journal write that fails stops the run: nothing after it starts, the exit code says
/// failure, and a later resume (once the journal can be written) runs the rest.
#[track_caller]
fn check_stopped_and_resumable(t: &Test, r: &Run, why: &str) {
    let id = run_ids(t).pop().unwrap();
    assert_eq!(r.code, 1, "{}", r.show());
    assert_text("stderr", &mask(&r.stderr), &journal_error(t, &id, why));
    // b could not be recorded as started, so it did not start.
    assert_eq!(log_lines(&t.read("marker")), ["a"]);
    // The failed write was cut back: the journal holds whole records, no warning.
    let runs = t.clone_args(&["runs"]).run();
    assert!(runs.stdout.contains("interrupted"), "{}", runs.show());
    assert_eq!(runs.stderr, "", "{}", runs.show());

    let r = t.clone_args(&["resume", &id, "-q"]).run();
    r.expect(
        0,
        "",
        "resuming run RUN_ID (c #1): nothing had finished; running a, b, c\nok a (X.Xs)\nok b (X.Xs)\nok c (X.Xs)\n",
    );
    let m = log_lines(&t.read("marker"));
    assert_eq!(m.last().map(String::as_str), Some("c"), "{m:?}");
    assert_eq!(m.iter().filter(|l| *l == "b").count(), 1, "{m:?}");
}

#[test]
fn a_file_size_limit_stops_the_run_at_the_first_unwritten_record() {
    let t = Test::new().toml(BIG_OUTPUT);
    let mut c = t.clone_args(&["run", "c", "-q"]).command();
    // 4 KiB: the start records fit; a's finish (with 32 KiB of its output) does not.
    // SIGXFSZ would kill a process that ignores the limit; nexus must get EFBIG.
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 4096,
                rlim_max: 4096,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = c.output().unwrap();
    let r = Run::from_output(&c, out);
    check_stopped_and_resumable(&t, &r, "File too large");

    // Too small for the first record: the run does not start and leaves no journal.
    let t = Test::new().toml(BIG_OUTPUT);
    let mut c = t.clone_args(&["run", "c", "-q"]).command();
    // SAFETY: as above.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = c.output().unwrap();
    let r = Run::from_output(&c, out);
    assert_eq!(r.code, 2, "{}", r.show());
    assert!(
        run_ids(&t).is_empty(),
        "a journal of a run that did not start"
    );
    assert_eq!(t.read("marker"), "");
    let journal = journal_path(&t, "RUN_ID");
    assert_text(
        "stderr",
        &mask(&r.stderr),
        &format!(
            "Error: cannot create the run journal {}: File too large\n\n  help: nexus keeps a journal of every run there; make it writable, or set NEXUS_HOME to a directory that is\n",
            journal.display()
        ),
    );
}

/// A tmpfs of a few pages as NEXUS_HOME, filled until two pages are left.
struct SmallDisk {
    dir: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(dir: std::path::PathBuf) -> SmallDisk {
        std::fs::create_dir_all(&dir).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
        let disk = SmallDisk { dir };
        std::fs::create_dir_all(disk.dir.join("runs")).unwrap();
        // Fill it, then free two pages (counters.json takes one): the journal's first
        // records fit, a's finish with its 32 KiB of output does not.
        let filler = disk.dir.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let page = vec![0u8; 4096];
        let mut written = 0u64;
        while std::io::Write::write_all(&mut f, &page).is_ok() {
            written += 4096;
            assert!(written < 1 << 20, "tmpfs size limit not enforced");
        }
        f.set_len(written - 2 * 4096).unwrap();
        disk
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.dir).status();
    }
}

#[test]
fn a_full_disk_stops_the_run_at_the_first_unwritten_record() {
    if skip_unless_root(
        "a_full_disk_stops_the_run_at_the_first_unwritten_record",
        "mounting a small tmpfs needs root (the file-size-limit test covers the same path)",
    ) {
        return;
    }
    let t = Test::new().toml(BIG_OUTPUT);
    let disk = SmallDisk::mount(t.path(".nexus-home"));
    let r = t.clone_args(&["run", "c", "-q"]).run();
    // Room for the resume: the filler goes.
    std::fs::remove_file(disk.dir.join("filler")).unwrap();
    check_stopped_and_resumable(&t, &r, "No space left on device");
    drop(disk);
}
