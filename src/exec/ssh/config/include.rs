//! `Include`: the files a pattern names (`glob(3)` for `*`, `?` and `[...]`, sorted),
//! relative names under `~/.ssh`, OpenSSH's owner and permission checks, and the
//! nesting limit. Must not: evaluate the included statements (eval.rs does).

use std::path::{Path, PathBuf};

use super::directive::{err, parse_text, At, ParseCx, Stmt};
use super::{ConfigError, MAX_INCLUDE_DEPTH};
use crate::exec::ssh::pattern::glob_component;
use crate::userenv;

pub(super) fn parse_include(
    args: &[String],
    at: &At,
    cx: &mut ParseCx,
) -> Result<Vec<Vec<Stmt>>, ConfigError> {
    let (file, n) = (at.file.as_path(), at.line);
    let home = userenv::home();
    let home = home.to_string_lossy();
    let mut files = Vec::new();
    for a in args {
        if a.is_empty() {
            return Err(err(file, n, "keyword include empty argument"));
        }
        let pattern = if a.starts_with('/') {
            a.clone()
        } else if a.starts_with('~') {
            userenv::expand_tilde(a)
        } else {
            format!("{}/.ssh/{}", home.trim_end_matches('/'), a)
        };
        for path in glob(&pattern) {
            if cx.depth + 1 > MAX_INCLUDE_DEPTH {
                return Err(err(file, n, "Too many recursive configuration includes"));
            }
            cx.depth += 1;
            let read = read_included(&path, file, n, cx);
            cx.depth -= 1;
            files.push(read?);
        }
    }
    Ok(files)
}

fn read_included(
    path: &Path,
    parent: &Path,
    n: usize,
    cx: &mut ParseCx,
) -> Result<Vec<Stmt>, ConfigError> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(err(
                parent,
                n,
                format!("Can't open user config file {}: {e}", path.display()),
            ))
        }
    };
    let uid = userenv::uid();
    // OpenSSH refuses included files owned by someone else or writable by others.
    // Group-writable files are accepted, as Debian's OpenSSH does for the usual
    // one-user groups (upstream refuses them too).
    if (meta.uid() != 0 && meta.uid() != uid) || meta.mode() & 0o002 != 0 {
        return Err(err(
            parent,
            n,
            format!("Bad owner or permissions on {}", path.display()),
        ));
    }
    if meta.is_dir() {
        return Ok(Vec::new());
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(err(
                parent,
                n,
                format!("Can't open user config file {}: {e}", path.display()),
            ))
        }
    };
    parse_text(&String::from_utf8_lossy(&bytes), path, cx)
}

fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// `glob(3)` for `*`, `?` and `[...]`: existing paths, sorted bytewise.
fn glob(pattern: &str) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut cands: Vec<PathBuf> = vec![if pattern.starts_with('/') {
        PathBuf::from("/")
    } else {
        PathBuf::from(".")
    }];
    let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    for comp in comps {
        let mut next = Vec::new();
        for base in &cands {
            if has_magic(comp) {
                let Ok(rd) = std::fs::read_dir(base) else {
                    continue;
                };
                for ent in rd.flatten() {
                    let name = ent.file_name();
                    let Some(name) = name.to_str() else {
                        continue;
                    };
                    if name.starts_with('.') && !comp.starts_with('.') {
                        continue;
                    }
                    if glob_component(comp.as_bytes(), name.as_bytes()) {
                        next.push(base.join(name));
                    }
                }
            } else {
                next.push(base.join(comp));
            }
        }
        cands = next;
    }
    let mut out: Vec<PathBuf> = cands
        .into_iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect();
    out.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    out
}
