//! `nexus hosts resolve HOST`: the SSH settings nexus would use, in `ssh -G` form
//! (host string > ssh_config > nexus.toml [config] > defaults).

use std::path::PathBuf;

use super::{config_path, load, print};
use crate::cli::args::Global;
use crate::config;
use crate::error::Error;
use crate::exec::ssh::algorithms::{effective, Kind};
use crate::exec::ssh::config as sshc;

pub fn resolve(g: &Global, host: &str, ssh_config: &Option<Option<PathBuf>>) -> Result<i32, Error> {
    let spec = config::host::parse(host).map_err(|m| {
        Error::usage(m).with_help("give a host string: host, user@host, user@host:port")
    })?;
    // nexus.toml is optional here: its [config] only fills in what ssh_config leaves open.
    let settings = match config_path(g) {
        Ok(p) if p.is_file() => load(g)?.settings,
        _ => config::Settings::default(),
    };
    let parsed = match ssh_config {
        Some(Some(path)) => Some(sshc::parse_file(path).map_err(|e| {
            Error::usage(format!("cannot read ssh_config: {e}"))
                .with_help("fix the file, or point --ssh-config at another")
        })?),
        Some(None) => None,
        None => crate::exec::ssh::target::load_ssh_config(&settings).map_err(|e| {
            Error::usage(format!("cannot read ssh_config: {e}"))
                .with_help("fix the file, or set ssh_config = \"none\" in [config]")
        })?,
    };
    let overrides = sshc::Overrides {
        user: spec.user.clone(),
        port: spec.port,
        identity: None,
    };
    let fallbacks = sshc::Fallbacks {
        user: settings.ssh_user.clone(),
        port: (settings.ssh_port != 22).then_some(settings.ssh_port),
        identity: settings.ssh_identity.clone(),
    };
    let resolved = parsed
        .unwrap_or_default()
        .resolve_with(&spec.host, &overrides, &fallbacks)
        .map_err(|e| {
            Error::usage(format!("cannot read ssh_config: {e}"))
                .with_help("fix the line it names (`ssh -G HOST` shows what OpenSSH makes of it)")
        })?;
    // What nexus offers in the handshake, in ssh -G's words (a HostKeyAlgorithms left unset
    // is reordered per host at connect time by what known_hosts holds, as ssh does).
    let algorithms = |kind, list: &Option<String>| {
        effective(kind, list.as_deref()).map_err(|e| {
            Error::usage(format!("cannot resolve {host}: {e}"))
                .with_help("fix the list in ssh_config, or remove it to use nexus's defaults")
        })
    };
    let mut lines = resolved.nexus_lines();
    lines.push(format!(
        "kexalgorithms {}",
        algorithms(Kind::Kex, &resolved.kex_algorithms)?
    ));
    lines.push(format!(
        "hostkeyalgorithms {}",
        algorithms(Kind::HostKey, &resolved.host_key_algorithms)?
    ));
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    print(&text)
}
