//! nexus: run named tasks from nexus.toml locally and over SSH as a parallel DAG.
//!
//! Data flows one way: argv -> `cli` -> config (`config::load`) -> `plan` -> `run`
//! (scheduler, units, transports in `exec`) -> events -> `output` (one consumer thread).
//! `main_with_args` is the whole program; `main.rs` only exits with its code.

pub mod cli;
pub mod config;
pub mod dryrun;
pub mod error;
pub mod exec;
pub mod output;
pub mod plan;
pub mod preflight;
pub mod run;
pub mod signals;
pub mod state;
pub mod timefmt;
pub mod userenv;

mod commands;

use std::ffi::OsString;

use error::Error;

/// Run nexus with `argv` (program name excluded) and return the process exit code.
pub fn main_with_args(argv: Vec<OsString>) -> i32 {
    match cli::parse(argv).and_then(|args| commands::dispatch(&args)) {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

/// Print an error on stderr and return its exit code.
pub fn report(e: &Error) -> i32 {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "{e}");
    e.exit_code
}
