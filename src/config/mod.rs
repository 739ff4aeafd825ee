//! nexus.toml: where it is (docs/nexus-toml.md, "Finding the file"), how it is read, and the validated model it becomes.
//! Must not: run commands or connect anywhere.

mod checks;
pub mod cycle;
pub mod dotenv;
pub mod duration;
mod files;
mod groups;
pub mod host;
pub mod keys;
mod load;
pub mod model;
mod report;
mod rollout;
mod rules;
pub mod schema;
mod steps;
mod tasks;
pub mod template;
pub mod template_files;
mod vars;

use std::ops::Range;
use std::path::{Path, PathBuf};

pub use checks::{Checks, Guard};
pub use model::*;

use crate::error::{Diagnostic, Error, Location, Locator, MAX_SHOWN};

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

/// The largest nexus.toml nexus reads, in bytes (4 MiB; docs/nexus-toml.md): some 40
/// times a generated 1,000-task file. Parsing TOML takes up to about 200 bytes of memory
/// per byte of input (a file of stray `}`), so this also bounds the memory a file can
/// make nexus use.
pub const MAX_FILE_SIZE: u64 = 4 * 1024 * 1024;

/// Read and validate the config at `path`.
pub fn load(path: &Path) -> Result<Config, Error> {
    let display = display_path(path);
    let source = read_source(path, &display)?;
    let root = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut config = parse(&display, &root, &source)?;
    config.path = path.to_path_buf();
    config.dotenv = dotenv::load(&root, &config.dotenv_files, &display, &config.source)?;
    template_files::load(&mut config, &display)?;
    Ok(config)
}

/// Validate `source`, the text of a nexus.toml; `path` names it in messages, `root` is
/// the project root. Reads nothing (host strings do read environment variables).
pub fn parse(path: &Path, root: &Path, source: &str) -> Result<Config, Error> {
    load::parse(path, root, source)
}

/// The text of the file at `path`: a regular file of at most `MAX_FILE_SIZE` bytes of
/// UTF-8. Checked before reading: a FIFO would block and a device could be endless.
fn read_source(path: &Path, display: &Path) -> Result<String, Error> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| cannot_read(path, &e))?;
    check_file(path, &meta)?;
    let file = crate::sys::open_read_nonblocking(path).map_err(|e| cannot_read(path, &e))?;
    // The file may have changed since it was looked at: check what was opened.
    let meta = file.metadata().map_err(|e| cannot_read(path, &e))?;
    check_file(path, &meta)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| cannot_read(path, &e))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(too_large(path, None));
    }
    String::from_utf8(bytes).map_err(|e| not_utf8(display, &e))
}

fn cannot_read(path: &Path, e: &std::io::Error) -> Error {
    let help = if e.kind() == std::io::ErrorKind::NotFound {
        "check the path given with -c or NEXUS_CONFIG, or create the file with `nexus init`"
    } else {
        "check the file's permissions"
    };
    Error::io("cannot read", path, e).with_help(help)
}

/// A regular file no larger than `MAX_FILE_SIZE`.
fn check_file(path: &Path, meta: &std::fs::Metadata) -> Result<(), Error> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let kind = if t.is_file() {
        if meta.len() > MAX_FILE_SIZE {
            return Err(too_large(path, Some(meta.len())));
        }
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a named pipe (FIFO)"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(Error::usage(format!(
        "cannot read {}: it is {kind}, not a regular file",
        path.display()
    ))
    .with_help("point -c or NEXUS_CONFIG at a nexus.toml file"))
}

fn too_large(path: &Path, size: Option<u64>) -> Error {
    let size = size.map_or(String::new(), |n| format!(" ({n} bytes)"));
    Error::usage(format!(
        "cannot read {}: the file is larger than 4 MiB{size}",
        path.display()
    ))
    .with_help(format!(
        "a nexus.toml may have at most 4 MiB ({MAX_FILE_SIZE} bytes); check that -c or NEXUS_CONFIG names the right file"
    ))
}

/// Invalid UTF-8: where the first bad byte is.
fn not_utf8(display: &Path, e: &std::string::FromUtf8Error) -> Error {
    let at = e.utf8_error().valid_up_to();
    let byte = e.as_bytes().get(at).copied().unwrap_or(0);
    let text = String::from_utf8_lossy(e.as_bytes());
    let loc = Location::from_span(display, &text, at..at + 1);
    Error::validation(vec![Diagnostic::new(format!(
        "the file is not UTF-8 text: byte 0x{byte:02X} is not valid here"
    ))
    .at(loc)
    .help("save the file as UTF-8 text")])
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
    /// `secret("NAME")` uses in the given tasks whose name is not in the project's store
    /// (read without a key: names are plain), in file order; a store that cannot be read
    /// is one diagnostic.
    pub fn unknown_secrets(&self, tasks: &[usize]) -> Vec<Diagnostic> {
        let mut found: Vec<(Range<usize>, &str, String)> = Vec::new();
        for (who, tpl) in self.run_templates(tasks) {
            for (name, inner) in tpl.value.secrets() {
                found.push((tpl.file_span(inner), name, who.clone()));
            }
        }
        if found.is_empty() {
            return Vec::new();
        }
        let store = crate::secrets::store_path(&self.root);
        let shown = display_path(&store);
        let names = if store.exists() {
            match crate::secrets::Store::names_only(&store) {
                Ok(n) => Some(n),
                Err(e) => return e.diagnostics,
            }
        } else {
            None
        };
        found.sort_by_key(|(span, _, _)| span.start);
        let file = display_path(&self.path);
        let mut locator = Locator::new(&file, &self.source);
        let mut out = Vec::new();
        for (span, name, task) in found {
            let (message, help) = match &names {
                None => (
                    format!("{task} uses secret `{name}`, but {} does not exist", shown.display()),
                    format!("create the store with `nexus secret init`, then `nexus secret set {name}`"),
                ),
                Some(n) if n.iter().any(|x| x == name) => continue,
                Some(n) => (
                    format!("{task} uses secret `{name}`, which is not in {}", shown.display()),
                    crate::error::did_you_mean(name, n.iter().map(String::as_str)).unwrap_or_else(|| {
                        format!("add it with `nexus secret set {name}`; `nexus secret list` shows the names")
                    }),
                ),
            };
            let d = Diagnostic::new(message);
            out.push(if out.len() >= MAX_SHOWN {
                d
            } else {
                d.at(locator.locate(span)).help(help)
            });
        }
        out
    }

    /// Required `env("X")` placeholders that are unset (in the process environment and
    /// the dotenv files), in the given tasks and in `[env]` when one of them runs
    /// commands: one diagnostic each, in file order; only the first `MAX_SHOWN` are
    /// located (the others are only counted by `Error::validation`).
    pub fn unset_env(&self, tasks: &[usize]) -> Vec<Diagnostic> {
        let file = display_path(&self.path);
        let mut found: Vec<(Range<usize>, String, String)> = Vec::new();
        for (who, tpl) in self.run_templates(tasks) {
            for (name, inner) in tpl.value.unset_env() {
                if self.dotenv_var(name).is_none() {
                    found.push((tpl.file_span(inner), name.to_string(), who.clone()));
                }
            }
        }
        found.sort_by_key(|(span, _, _)| span.start);
        let mut locator = Locator::new(&file, &self.source);
        found
            .into_iter()
            .enumerate()
            .map(|(n, (span, name, who))| {
                let d = Diagnostic::new(format!(
                    "{who} needs environment variable `{name}`, which is not set"
                ));
                if n >= MAX_SHOWN {
                    return d;
                }
                d.at(locator.locate(span)).help(format!(
                    "set it (export {name}=...), put it in a dotenv file, or give a default: {{{{ env(\"{name}\", \"...\") }}}}"
                ))
            })
            .collect()
    }
}
