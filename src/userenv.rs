//! The local user: name, home directory, `~` expansion, default SSH identities.
//! `$USER` and `$HOME` win, the passwd entry of the current uid fills in for them; the
//! variables of dotenv files go into nexus's own environment (`export_dotenv`).
//! Must not: cache (tests and ssh_config resolution set `HOME` and `USER` at run time),
//! or touch files.

use std::path::{Path, PathBuf};

/// The identity files OpenSSH uses when none is configured, in its order (what
/// `ssh -G` reports).
pub const DEFAULT_IDENTITIES: [&str; 7] = [
    "~/.ssh/id_rsa",
    "~/.ssh/id_ecdsa",
    "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ed25519_sk",
    "~/.ssh/id_xmss",
    "~/.ssh/id_dsa",
];

/// The default identities nexus tries after the agent, in the documented order (docs/ssh.md): those of
/// [`DEFAULT_IDENTITIES`] whose key types libssh2 signs with.
const TRIED_DEFAULTS: [&str; 3] = ["~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa"];

/// The real uid.
pub fn uid() -> u32 {
    crate::sys::uid()
}

/// `$HOME`, else the passwd entry's directory, else `/`.
pub fn home() -> PathBuf {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => passwd_self()
            .map(|(_, dir)| PathBuf::from(dir))
            .unwrap_or_else(|| PathBuf::from("/")),
    }
}

/// `$USER`, else the passwd entry's name, else the numeric uid.
pub fn user_name() -> String {
    match std::env::var("USER") {
        Ok(u) if !u.is_empty() => u,
        _ => passwd_self()
            .map(|(name, _)| name)
            .unwrap_or_else(|| uid().to_string()),
    }
}

/// `~` → `HOME/`, `~/x` → `HOME/x`, as OpenSSH's `tilde_expand_filename`; anything
/// else (`~user` too) is returned as written.
pub fn expand_tilde(p: &str) -> String {
    let rest = match p.strip_prefix("~/") {
        Some(rest) => rest,
        None if p == "~" => "",
        None => return p.to_string(),
    };
    let home = home();
    format!("{}/{rest}", home.to_string_lossy().trim_end_matches('/'))
}

/// [`expand_tilde`] as a path.
pub fn expand_tilde_path(p: &str) -> PathBuf {
    PathBuf::from(expand_tilde(p))
}

/// The default keys nexus tries after the agent (docs/ssh.md), expanded.
pub fn default_identities() -> Vec<PathBuf> {
    TRIED_DEFAULTS
        .iter()
        .map(|p| expand_tilde_path(p))
        .collect()
}

/// Is `p` one of OpenSSH's default identity files? ssh_config reports them when none
/// is configured; nexus tries them in their own place, not as explicit identities.
pub fn is_default_identity(p: &Path) -> bool {
    DEFAULT_IDENTITIES.iter().any(|d| expand_tilde_path(d) == p)
}

/// (name, home directory) of the current uid from the passwd database.
fn passwd_self() -> Option<(String, String)> {
    crate::sys::passwd(uid())
}

/// Put the variables of the dotenv files that nexus's environment lacks into it (it
/// wins over them): then local commands inherit them and `env("X")` finds them, as if
/// they had been exported in the shell that started nexus. Called when nexus.toml is
/// loaded, before nexus starts any thread (the environment is not changed while another
/// thread could read it); a second load finds them set and changes nothing.
pub fn export_dotenv(vars: &[(String, String)]) {
    for (k, v) in vars {
        if std::env::var_os(k).is_none() {
            std::env::set_var(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tried_defaults_are_openssh_defaults() {
        for d in TRIED_DEFAULTS {
            assert!(DEFAULT_IDENTITIES.contains(&d), "{d}");
        }
        for p in default_identities() {
            assert!(is_default_identity(&p), "{}", p.display());
        }
    }

    #[test]
    fn tilde_forms() {
        let home = home();
        let home = home.to_string_lossy();
        let home = home.trim_end_matches('/');
        assert_eq!(expand_tilde("~/x/y"), format!("{home}/x/y"));
        assert_eq!(expand_tilde("~"), format!("{home}/"));
        assert_eq!(expand_tilde("~bob/x"), "~bob/x");
        assert_eq!(expand_tilde("/abs/~"), "/abs/~");
    }
}
