//! `nexus help`, `nexus version`, `nexus completions`, `nexus schema`, `nexus man`, and a
//! bare `nexus`.

use std::io::Write;

use super::print;
use crate::cli::help;
use crate::error::Error;

/// A bare `nexus` where no nexus.toml is found: the help, and what to do.
pub fn missing() -> Result<i32, Error> {
    let _ = write!(std::io::stderr(), "{}", help::general());
    Err(
        Error::usage("no command given, and no nexus.toml here or in a parent directory")
            .with_help("`nexus init` writes a starter nexus.toml; then `nexus` lists its tasks"),
    )
}

pub fn help(command: Option<&str>) -> Result<i32, Error> {
    print(
        &command
            .and_then(help::command)
            .unwrap_or_else(help::general),
    )
}

pub fn version() -> Result<i32, Error> {
    print(&format!(
        "nexus {} (commit {}, {})\n",
        env!("CARGO_PKG_VERSION"),
        option_env!("NEXUS_BUILD_COMMIT").unwrap_or("unknown"),
        option_env!("NEXUS_TARGET").unwrap_or("unknown target"),
    ))
}

pub fn completions(shell: &str) -> Result<i32, Error> {
    print(&help::completions(shell).unwrap_or_default())
}

pub fn schema() -> Result<i32, Error> {
    print(&crate::config::schema::text())
}

pub fn man() -> Result<i32, Error> {
    print(&crate::cli::man::page())
}
