//! `nexus validate`: load and check nexus.toml; no connections.

use std::collections::HashSet;

use super::{load, print};
use crate::cli::args::Global;
use crate::config;
use crate::error::Error;

pub fn validate(g: &Global) -> Result<i32, Error> {
    let c = load(g)?;
    // An unset variable is input of a run, not a fault of the file: a warning here
    // (`nexus run` still refuses to start a task that needs it).
    let all: Vec<usize> = (0..c.tasks.len()).collect();
    let secrets = c.unknown_secrets(&all);
    if !secrets.is_empty() {
        return Err(Error::validation(secrets));
    }
    let diags = c.unset_env(&all);
    let color = crate::error::stderr_color();
    let mut text: String = diags
        .iter()
        .take(crate::error::MAX_SHOWN)
        .map(|d| {
            let d = d
                .clone()
                .help("`nexus run` refuses to start a task that needs it while it is unset");
            crate::error::warning_text(&d, color)
        })
        .collect();
    if diags.len() > crate::error::MAX_SHOWN {
        text += &format!(
            "warning: and {} more unset variables, not shown\n",
            diags.len() - crate::error::MAX_SHOWN
        );
    }
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), text.as_bytes());
    let hosts: HashSet<_> = c.groups.iter().flat_map(|(_, h)| h).collect();
    print(&format!(
        "{} is valid: {} tasks, {} host groups, {} hosts\n",
        config::display_path(&c.path).display(),
        c.tasks.len(),
        c.groups.len(),
        hosts.len()
    ))
}
