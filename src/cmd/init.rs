//! `nexus init`: write a commented starter nexus.toml.

use std::path::PathBuf;

use super::print;
use crate::cli::args::Global;
use crate::config;
use crate::error::Error;

pub const STARTER: &str = include_str!("../../nexus.toml.example");

pub fn init(g: &Global, force: bool) -> Result<i32, Error> {
    let path = g
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::FILE_NAME));
    if path.exists() && !force {
        return Err(Error::usage(format!("{} already exists", path.display()))
            .with_help("use `nexus init --force` to overwrite it"));
    }
    std::fs::write(&path, STARTER).map_err(|e| {
        Error::io("cannot write", &path, &e)
            .with_help("check that the directory exists and is writable")
    })?;
    print(&format!(
        "Wrote {}. Try: nexus list, then nexus run hello\n",
        path.display()
    ))
}
