//! What nexus will use to reach one host: host string > ssh_config > nexus.toml
//! `[config]` > defaults (docs/ssh.md), with per-run overrides from `-u` and `-i` on top.
//! Must not: open connections.

use std::path::PathBuf;
use std::time::Duration;

use super::algorithms::{effective, Kind};
use super::config::{Fallbacks, Overrides, Resolved, SshConfig};
use crate::config::host::HostSpec;
use crate::config::{HostKeyChecking, Settings};
use crate::userenv::{expand_tilde_path, home, is_default_identity};

/// Per-run overrides from the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOverrides {
    pub user: Option<String>,
    pub identity: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// The host as written in nexus.toml (label in output).
    pub label: String,
    pub hostname: String,
    pub port: u16,
    pub user: String,
    /// Identity files named explicitly (-i, host string level, ssh_identity, IdentityFile).
    pub identities: Vec<PathBuf>,
    pub identities_only: bool,
    pub host_key_checking: HostKeyChecking,
    pub known_hosts: PathBuf,
    pub connect_timeout: Duration,
    /// ServerAliveInterval in seconds (0: no keepalives) and ServerAliveCountMax.
    pub keepalive: u32,
    pub keepalive_count_max: u32,
    /// ProxyJump hops as written (`user@host:port,...`); None for a direct connection.
    pub proxy_jump: Option<String>,
    /// The hops, resolved like any host (their own ProxyJump is not followed; the
    /// first one's ProxyCommand is, as ssh's `-W` to it would).
    pub jumps: Vec<SshTarget>,
    /// ProxyCommand with its tokens expanded; None: direct (or through `jumps`).
    pub proxy_command: Option<String>,
    /// Key exchange methods offered, in order (`a,b,c`).
    pub kex: String,
    /// Host key algorithms from ssh_config's HostKeyAlgorithms; None: known_hosts decides
    /// the order (connect.rs).
    pub host_key_algorithms: Option<String>,
}

/// Load the ssh_config named by the settings (None when "none" or absent on disk).
pub fn load_ssh_config(settings: &Settings) -> Result<Option<SshConfig>, String> {
    let Some(path) = &settings.ssh_config else {
        return Ok(None);
    };
    let path = expand_tilde_path(path);
    if !path.exists() {
        return Ok(None);
    }
    super::config::parse_file(&path)
        .map(Some)
        .map_err(|e| e.to_string())
}

pub fn resolve(
    spec: &HostSpec,
    settings: &Settings,
    ssh_config: Option<&SshConfig>,
    run: &RunOverrides,
) -> Result<SshTarget, String> {
    let overrides = Overrides {
        user: run.user.clone().or_else(|| spec.user.clone()),
        port: spec.port,
        identity: run.identity.clone(),
    };
    let fallbacks = Fallbacks {
        user: settings.ssh_user.clone(),
        port: Some(settings.ssh_port),
        identity: settings.ssh_identity.clone(),
    };
    let r: Resolved = match ssh_config {
        Some(c) => c.resolve_with(&spec.host, &overrides, &fallbacks),
        None => SshConfig::default().resolve_with(&spec.host, &overrides, &fallbacks),
    }
    .map_err(|e| e.to_string())?;
    let host_key_checking = match r.strict_host_key_checking.as_str() {
        "true" | "yes" => HostKeyChecking::Strict,
        "accept-new" => HostKeyChecking::AcceptNew,
        "false" | "no" | "off" => HostKeyChecking::Off,
        _ => settings.host_key_checking,
    };
    // ssh_config's UserKnownHostsFile wins over [config] (docs/ssh.md, precedence); an unset
    // one shows up as OpenSSH's default pair.
    let ssh_default = [
        home().join(".ssh/known_hosts"),
        home().join(".ssh/known_hosts2"),
    ];
    let from_ssh_config = r
        .user_known_hosts_files
        .iter()
        .map(|p| expand_tilde_path(p))
        .ne(ssh_default.iter().cloned());
    let known_hosts = match &settings.known_hosts {
        Some(k) if !from_ssh_config => expand_tilde_path(k),
        _ => r
            .user_known_hosts_files
            .first()
            .map(|p| {
                if p == "none" {
                    PathBuf::from("/dev/null")
                } else {
                    expand_tilde_path(p)
                }
            })
            .unwrap_or_else(|| home().join(".ssh/known_hosts")),
    };
    let identities = r
        .identity_files
        .iter()
        .map(|p| expand_tilde_path(p))
        .filter(|p| !is_default_identity(p))
        .collect();
    Ok(SshTarget {
        label: spec.label(),
        hostname: r.hostname.clone(),
        port: r.port,
        user: r.user.clone(),
        identities,
        identities_only: r.identities_only,
        host_key_checking,
        known_hosts,
        connect_timeout: r
            .connect_timeout
            .map(Duration::from_secs)
            .unwrap_or(settings.connect_timeout),
        keepalive: r.keepalive().0.min(u64::from(u32::MAX)) as u32,
        keepalive_count_max: r.keepalive().1.min(u64::from(u32::MAX)) as u32,
        proxy_jump: r.proxy_jump.clone().filter(|p| p != "none"),
        jumps: Vec::new(),
        proxy_command: r.proxy_command_expanded.clone(),
        kex: effective(Kind::Kex, r.kex_algorithms.as_deref())
            .map_err(|e| format!("host {}: {e}", spec.label()))?,
        host_key_algorithms: match &r.host_key_algorithms {
            Some(s) => Some(
                effective(Kind::HostKey, Some(s))
                    .map_err(|e| format!("host {}: {e}", spec.label()))?,
            ),
            None => None,
        },
    })
}

/// `resolve`, then the ProxyJump hops (one or more hops, or `none`).
pub fn resolve_with_jumps(
    spec: &HostSpec,
    settings: &Settings,
    ssh_config: Option<&SshConfig>,
    run: &RunOverrides,
) -> Result<SshTarget, String> {
    let mut t = resolve(spec, settings, ssh_config, run)?;
    if let Some(hops) = t.proxy_jump.clone() {
        for hop in hops.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            let hop_spec = crate::config::host::parse(hop.trim_start_matches("ssh://"))
                .map_err(|e| format!("ProxyJump of {}: {e}", t.label))?;
            // -u applies to the target, not to the hops.
            let hop_run = RunOverrides {
                user: None,
                identity: run.identity.clone(),
            };
            let mut h = resolve(&hop_spec, settings, ssh_config, &hop_run)?;
            h.proxy_jump = None;
            if !t.jumps.is_empty() {
                // Reached through the hop before it, not through its own command.
                h.proxy_command = None;
            }
            t.jumps.push(h);
        }
    }
    Ok(t)
}
