//! OpenSSH client configuration (`ssh_config(5)`) for nexus.
//!
//! Owns: reading an ssh_config file (and the files it `Include`s), validating the
//! directives nexus uses the way OpenSSH 9.x does, and resolving what one host alias
//! gets (`HostName`, `User`, `Port`, `IdentityFile`, `IdentitiesOnly`,
//! `StrictHostKeyChecking`, `UserKnownHostsFile`, `ConnectTimeout`,
//! `ServerAliveInterval`, `ProxyJump`, `ProxyCommand`), with host-string overrides on top and nexus
//! `[config]` fallbacks below. [`Resolved::ssh_g_lines`] prints the result in the
//! words and forms of `ssh -G`. This file holds the public entry points; the sections
//! live beside it: `lex` (splitting a line), `directive` (the parsed form and its
//! checks), `values` and `jump` (value syntax), `include` (Include and its glob),
//! `eval` (Host/Match evaluation), `expand` (tokens, `~`, `${VAR}`), `resolved` (the
//! result and its `ssh -G` lines), `keywords` (what OpenSSH knows).
//!
//! Refuses what OpenSSH 9.x refuses, in its words, with the file and line: bad values of
//! the keywords nexus uses, keywords OpenSSH does not know (unless an `IgnoreUnknown`
//! names them), `%` tokens a keyword does not allow, a ProxyJump back to the host.
//! Keywords OpenSSH knows and nexus does not use are accepted; their values are not
//! checked.
//!
//! Must not: open connections, run commands (`Match exec` never matches), touch the
//! network (`Match localnetwork` never matches), write files, or panic on anything a
//! config file contains.

mod directive;
mod eval;
mod expand;
mod include;
mod jump;
mod keywords;
mod lex;
mod resolved;
mod values;

use std::fmt;
use std::path::{Path, PathBuf};

use directive::Stmt;
pub use resolved::Resolved;

/// Maximum `Include` nesting, as OpenSSH's `READCONF_MAX_DEPTH`.
const MAX_INCLUDE_DEPTH: usize = 16;
/// Maximum identity files, as OpenSSH's `SSH_MAX_IDENTITY_FILES`.
const MAX_IDENTITY_FILES: usize = 100;
/// Maximum known-hosts files per directive, as OpenSSH's `SSH_MAX_HOSTS_FILES`.
const MAX_HOSTS_FILES: usize = 16;

/// A parsed ssh_config file, includes resolved. `Default` is an empty config.
#[derive(Debug, Default, Clone)]
pub struct SshConfig {
    stmts: Vec<Stmt>,
    index: eval::Index,
}

/// A configuration error: file, 1-based line (0 when it concerns the whole file), message.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Host-string level values (and `-u`/`-i`): they win over the file, like `ssh -l/-p/-i`.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity: Option<String>,
}

/// nexus `[config]` values: used only where the file left a value unset.
#[derive(Debug, Default, Clone)]
pub struct Fallbacks {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity: Option<String>,
}

/// Read and parse `path` (and everything it includes).
pub fn parse_file(path: &Path) -> Result<SshConfig, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    let text = String::from_utf8_lossy(&bytes);
    parse_str(&text, path)
}

/// Parse `text`; `origin` names it in messages. Relative `Include`s are looked up in
/// `~/.ssh`, as OpenSSH does for user configuration files.
pub fn parse_str(text: &str, origin: &Path) -> Result<SshConfig, ConfigError> {
    let stmts = directive::parse_text(text, origin, &mut directive::ParseCx::default())?;
    let index = eval::Index::build(&stmts);
    Ok(SshConfig { stmts, index })
}

impl SshConfig {
    /// Resolve `alias` with no overrides and no fallbacks.
    pub fn resolve(&self, alias: &str) -> Result<Resolved, ConfigError> {
        self.resolve_with(alias, &Overrides::default(), &Fallbacks::default())
    }

    /// Resolve `alias`: overrides > this file > fallbacks > OpenSSH defaults. Err: what
    /// OpenSSH refuses only for the host it resolves (see [`resolved`]), with the
    /// directive's file and line.
    pub fn resolve_with(
        &self,
        alias: &str,
        o: &Overrides,
        f: &Fallbacks,
    ) -> Result<Resolved, ConfigError> {
        resolved::resolve(&self.stmts, &self.index, alias, o, f)
    }
}

#[cfg(test)]
mod tests;
