//! The integration suite: one test binary (linked once) with a module per area. Every
//! test runs the real `nexus` binary or the library against real processes; the SSH
//! tests start their own sshd and dropbear on 127.0.0.1 and stop them by PID.
//!
//!   cli                the binary: config errors, CLI, execution order, output, timeouts,
//!                      signals, JSON events (full-text assertions)
//!   config_hostile     nexus.toml files written to hurt: error floods, endless or huge
//!                      files, names and values meant for a terminal or a shell, fuzz
//!                      findings; properties of the loader on arbitrary bytes
//!   daily              daily use (issue 11): timeouts, default, aliases, private tasks,
//!                      [env], dotenv, shell, scripts, interactive tasks, reports
//!   hostile            servers that flood, trickle, stall or drop the connection; login
//!                      banners; the remote kill; Ctrl-C in every phase of connecting
//!   journal            the journal under races, SIGKILL, survivors, full disk
//!   output             where command output goes, grouped and quiet modes, bounded memory
//!   packaging          the man page (`nexus man` through man-db), `make install`
//!   preflight          dry-run and pre-flight checks against a real sshd
//!   properties         quickcheck properties of the plan and the scheduler
//!   schema             `nexus schema` against the loader: good configs, keys, patterns
//!   secrets            the secret store and its CLI, tampering, redaction at the recorder
//!   ssh                real OpenSSH sshd and dropbear: auth, host keys, pool, ProxyJump
//!   ssh_config_corpus  ssh_config parsing compared with `ssh -G`
//!   state              run journal, history, crash-resume
//!   uptodate           up-to-date checks: the correctness matrix of sources and outputs,
//!                      creates/unless locally and against a real sshd
//!   common             the test builder (`Test`, `Run::expect`) and the SSH servers

// A test reads like the spec it checks, expected output inline: the 80-line limit of
// `make lint` is for src/.
#![allow(clippy::too_many_lines)]

mod common;

mod artifacts;

mod cli;
mod config_hostile;
mod daily;
mod files;
mod hostile;
mod journal;
mod output;
mod packaging;
mod preflight;
mod properties;
mod rollout;
mod schema;
mod secrets;
mod ssh;
mod ssh_config_corpus;
mod state;
mod templates;
mod uptodate;
