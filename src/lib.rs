//! nexus: run named tasks from nexus.toml locally and over SSH as a parallel DAG.
//!
//! Data flows one way: argv -> `cli` (typed arguments) -> `cmd` (one module per
//! command) -> config (`config::load`) -> `plan` -> `run` (scheduler, units, transports
//! in `exec`) -> events -> `run::recorder` (journal in `state`, then `output`).
//! `main_with_args` is the whole program; `main.rs` only exits with its code.

pub mod bind;
pub mod cli;
pub mod config;
pub mod dryrun;
pub mod error;
pub mod exec;
pub mod git;
pub mod glob;
pub mod logging;
pub mod output;
pub mod plan;
pub mod preflight;
pub mod run;
pub mod secrets;
pub mod signals;
pub mod state;
pub mod sys;
pub mod timefmt;
pub mod transfer;
pub mod uptodate;
pub mod userenv;

mod cmd;

use std::ffi::OsString;

use error::Error;

/// Run nexus with `argv` (program name excluded) and return the process exit code.
pub fn main_with_args(argv: Vec<OsString>) -> i32 {
    sys::survive_file_size_limit();
    let result = cli::parse(argv).and_then(|inv| {
        logging::init(inv.global.log_level.as_deref(), inv.global.log_json);
        cmd::dispatch(&inv)
    });
    match result {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

/// Print an error on stderr and return its exit code.
pub fn report(e: &Error) -> i32 {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(e.render(error::stderr_color()).as_bytes());
    e.exit_code
}
