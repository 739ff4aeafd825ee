//! nexus.toml: where it is (docs/nexus-toml.md, "Finding the file"), how it is read, and the validated model it becomes.
//! Must not: run commands or connect anywhere.

pub mod cycle;
pub mod duration;
mod groups;
pub mod host;
pub mod keys;
mod load;
pub mod model;
mod tasks;
pub mod template;

use std::path::{Path, PathBuf};

pub use model::*;

use crate::error::{Diagnostic, Error, Location};

pub const FILE_NAME: &str = "nexus.toml";

/// The config file to use: `explicit` (from -c or NEXUS_CONFIG), else nexus.toml in `cwd`
/// or its nearest parent.
pub fn find(explicit: Option<&Path>, cwd: &Path) -> Result<PathBuf, Error> {
    if let Some(p) = explicit {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        };
        if p.is_dir() {
            return Ok(p.join(FILE_NAME));
        }
        return Ok(p);
    }
    let mut dir = Some(cwd);
    while let Some(d) = dir {
        let candidate = d.join(FILE_NAME);
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent();
    }
    Err(Error::usage(format!(
        "no {FILE_NAME} in {} or any parent directory",
        cwd.display()
    ))
    .with_help("create one with `nexus init`, or point at one with -c PATH or NEXUS_CONFIG"))
}

/// Read and validate the config at `path`.
pub fn load(path: &Path) -> Result<Config, Error> {
    let source = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            let help = if e.kind() == std::io::ErrorKind::NotFound {
                "check the path given with -c or NEXUS_CONFIG, or create the file with `nexus init`"
            } else {
                "check the file's permissions and that it is UTF-8 text"
            };
            return Err(Error::io("cannot read", path, &e).with_help(help));
        }
    };
    let root = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let display = display_path(path);
    let mut config = load::parse(&display, &root, &source)?;
    config.path = path.to_path_buf();
    Ok(config)
}

/// How a config path appears in messages: relative to the current directory when inside it.
pub fn display_path(path: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| path.to_path_buf())
}

impl Config {
    /// Required `env("X")` placeholders that are unset, in the given tasks: one diagnostic each.
    pub fn unset_env(&self, tasks: &[usize]) -> Vec<Diagnostic> {
        let file = display_path(&self.path);
        let mut out = Vec::new();
        for &i in tasks {
            let t = &self.tasks[i];
            let templates = t
                .commands
                .iter()
                .map(|c| &c.template)
                .chain(t.dir.iter())
                .chain(t.env.iter().map(|(_, v)| v));
            for tpl in templates {
                for (name, inner) in tpl.value.unset_env() {
                    let loc = Location::from_span(&file, &self.source, tpl.file_span(inner));
                    out.push(
                        Diagnostic::new(format!(
                            "task `{}` needs environment variable `{name}`, which is not set",
                            t.name
                        ))
                        .at(loc)
                        .help(format!(
                            "set it (export {name}=...) or give a default: {{{{ env(\"{name}\", \"...\") }}}}"
                        )),
                    );
                }
            }
        }
        out
    }
}
