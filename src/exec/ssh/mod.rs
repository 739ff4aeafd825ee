//! SSH transport: ssh_config reading, target resolution, connecting (directly, through
//! ProxyJump hops or a ProxyCommand; host keys, auth), the per-host session pool, and
//! running one command remotely.

pub mod algorithms;
pub mod banner;
pub mod base64;
pub mod budget;
pub mod config;
pub mod connect;
pub mod known_hosts;
pub mod pace;
pub mod pattern;
pub mod pool;
pub mod proxy;
pub mod remote;
pub mod target;
pub mod userkey;
pub mod watchdog;

use std::collections::HashMap;

use crate::config::host::HostSpec;
use crate::config::Settings;

/// Everything a run needs to reach its remote hosts, prepared before the first command.
pub struct SshContext {
    pub pool: pool::Pool,
    targets: HashMap<HostSpec, target::SshTarget>,
}

impl SshContext {
    /// Resolve every host of the run once (ssh_config is read once). Errors are
    /// (what happened, what to try).
    pub fn prepare<'a>(
        hosts: impl IntoIterator<Item = &'a HostSpec>,
        settings: &Settings,
        overrides: &target::RunOverrides,
    ) -> Result<SshContext, (String, &'static str)> {
        let ssh_config = target::load_ssh_config(settings).map_err(|e| {
            (
                format!("cannot read ssh_config: {e}"),
                "fix the file, or set ssh_config = \"none\" in [config]",
            )
        })?;
        let mut targets = HashMap::new();
        for h in hosts {
            let t = target::resolve_with_jumps(h, settings, ssh_config.as_ref(), overrides)
                .map_err(|e| {
                    (
                        e,
                        "fix the host string or its ssh_config entry (`nexus hosts resolve HOST` shows what nexus reads)",
                    )
                })?;
            targets.insert(h.clone(), t);
        }
        pace::set_limit(settings.handshakes_per_endpoint);
        Ok(SshContext {
            pool: pool::Pool::new(settings.pool_size, settings.max_connections),
            targets,
        })
    }

    pub fn target(&self, spec: &HostSpec) -> Option<(&pool::Pool, &target::SshTarget)> {
        self.targets.get(spec).map(|t| (&self.pool, t))
    }

    /// The host shown as `label` in output and the journal.
    pub fn by_label(&self, label: &str) -> Option<(&pool::Pool, &target::SshTarget)> {
        self.targets
            .values()
            .find(|t| t.label == label)
            .map(|t| (&self.pool, t))
    }
}
