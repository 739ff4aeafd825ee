//! `nexus validate`: load and check nexus.toml; no connections.

use std::collections::HashSet;

use super::{load, print};
use crate::cli::args::Global;
use crate::config;
use crate::error::Error;

pub fn validate(g: &Global) -> Result<i32, Error> {
    let c = load(g)?;
    let all: Vec<usize> = (0..c.tasks.len()).collect();
    let mut diags = c.unset_env(&all);
    diags.extend(c.unknown_secrets(&all));
    if !diags.is_empty() {
        return Err(Error::validation(diags));
    }
    let hosts: HashSet<_> = c.groups.iter().flat_map(|(_, h)| h).collect();
    print(&format!(
        "{} is valid: {} tasks, {} host groups, {} hosts\n",
        config::display_path(&c.path).display(),
        c.tasks.len(),
        c.groups.len(),
        hosts.len()
    ))
}
