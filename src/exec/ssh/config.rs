//! TEMPORARY STUB (lead engineer): replaced by the real ssh_config parser; same public API.
use std::path::Path;
#[derive(Debug, Default, Clone)]
pub struct SshConfig;
#[derive(Debug)]
pub struct ConfigError(String);
impl std::fmt::Display for ConfigError { fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result { f.write_str(&self.0) } }
pub fn parse_file(_p: &Path) -> Result<SshConfig, ConfigError> { Ok(SshConfig) }
#[derive(Debug, Default, Clone)]
pub struct Overrides { pub user: Option<String>, pub port: Option<u16>, pub identity: Option<String> }
#[derive(Debug, Default, Clone)]
pub struct Fallbacks { pub user: Option<String>, pub port: Option<u16>, pub identity: Option<String> }
#[derive(Debug, Clone)]
pub struct Resolved { pub hostname: String, pub user: String, pub port: u16, pub identity_files: Vec<String>, pub identities_only: bool, pub strict_host_key_checking: String, pub user_known_hosts_files: Vec<String>, pub connect_timeout: Option<u64>, pub server_alive_interval: u64, pub proxy_jump: Option<String> }
impl SshConfig {
  pub fn resolve_with(&self, alias: &str, o: &Overrides, f: &Fallbacks) -> Resolved {
    Resolved { hostname: alias.into(), user: o.user.clone().or(f.user.clone()).unwrap_or_else(|| "root".into()), port: o.port.or(f.port).unwrap_or(22),
      identity_files: o.identity.iter().chain(f.identity.iter()).cloned().collect(), identities_only: false, strict_host_key_checking: "ask".into(), user_known_hosts_files: vec![], connect_timeout: None, server_alive_interval: 0, proxy_jump: None }
  }
}
