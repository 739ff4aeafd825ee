//! The result of resolving one alias: defaults filled in, values expanded, and the
//! lines `ssh -G` would print for them. Must not: read files or decide which
//! statements apply (eval.rs).

use super::directive::Stmt;
use super::eval::{eval, State};
use super::expand::{expand_hostname, is_addr, Env, ExpandCtx};
use super::{Fallbacks, Overrides};
use crate::userenv::{self, DEFAULT_IDENTITIES};

const DEFAULT_KNOWN_HOSTS: [&str; 2] = ["~/.ssh/known_hosts", "~/.ssh/known_hosts2"];

/// What one alias resolves to.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub hostname: String,
    pub user: String,
    pub port: u16,
    /// Expanded (`~`, `%` tokens, `${VAR}`); empty means `IdentityFile none`.
    pub identity_files: Vec<String>,
    pub identities_only: bool,
    /// `ssh -G`'s word: `ask`, `true` (yes), `false` (no/off), `accept-new`.
    pub strict_host_key_checking: String,
    /// Expanded files, or the single word `none`.
    pub user_known_hosts_files: Vec<String>,
    /// None = no timeout (`connecttimeout none`).
    pub connect_timeout: Option<u64>,
    pub server_alive_interval: u64,
    /// The hops in `ssh -G`'s form; None for a direct connection (`ProxyJump none`).
    pub proxy_jump: Option<String>,
    /// KexAlgorithms / HostKeyAlgorithms as written (`a,b`, `+a`, `-a`, `^a`); None if unset.
    pub kex_algorithms: Option<String>,
    pub host_key_algorithms: Option<String>,
}

/// Resolve `alias` over `stmts`: overrides > the file > fallbacks > OpenSSH defaults.
pub(super) fn resolve(stmts: &[Stmt], alias: &str, o: &Overrides, f: &Fallbacks) -> Resolved {
    let env = Env::current();
    let mut st = State {
        user: o.user.clone(),
        port: o.port,
        ..State::default()
    };
    if let Some(id) = &o.identity {
        // Like `ssh -i`: tilde-expanded before it joins the list.
        st.identity_files.push(userenv::expand_tilde(id));
    }
    let mut active = true;
    eval(stmts, alias, &env, &mut st, &mut active, false);

    let user = st
        .user
        .clone()
        .or_else(|| f.user.clone())
        .unwrap_or_else(|| env.local_user.clone());
    let port = st.port.or(f.port).unwrap_or(22);
    let raw_host = match &st.hostname {
        Some(h) => expand_hostname(h, alias),
        None => alias.to_string(),
    };
    let hostname = if is_addr(&raw_host) {
        raw_host
    } else {
        raw_host.to_ascii_lowercase()
    };

    let ctx = ExpandCtx {
        env: &env,
        hostname: &hostname,
        port,
        ruser: &user,
        alias,
    };
    let mut raw_ids = st.identity_files.clone();
    if raw_ids.is_empty() {
        match &f.identity {
            Some(id) => raw_ids.push(id.clone()),
            None => raw_ids.extend(DEFAULT_IDENTITIES.iter().map(|s| s.to_string())),
        }
    }
    let identity_files = raw_ids
        .iter()
        .filter(|p| !p.eq_ignore_ascii_case("none"))
        .map(|p| ctx.expand_path(p))
        .collect();
    let user_known_hosts_files = match &st.known_hosts {
        Some(v) => v.iter().map(|p| ctx.expand_path(p)).collect(),
        None => DEFAULT_KNOWN_HOSTS
            .iter()
            .map(|p| ctx.expand_path(p))
            .collect(),
    };
    Resolved {
        hostname,
        user,
        port,
        identity_files,
        identities_only: st.identities_only.unwrap_or(false),
        strict_host_key_checking: st.strict_host_key_checking.unwrap_or("ask").to_string(),
        user_known_hosts_files,
        connect_timeout: st.connect_timeout,
        server_alive_interval: st.server_alive_interval.unwrap_or(0),
        proxy_jump: st.jump.flatten(),
        kex_algorithms: st.kex_algorithms.clone(),
        host_key_algorithms: st.host_key_algorithms.clone(),
    }
}

impl Resolved {
    /// `keyword value` lines as `ssh -G` prints them, for the settings nexus uses.
    pub fn ssh_g_lines(&self) -> Vec<String> {
        let mut v = vec![
            format!("hostname {}", self.hostname),
            format!("user {}", self.user),
            format!("port {}", self.port),
        ];
        if self.identity_files.is_empty() {
            v.push("identityfile none".to_string());
        }
        for id in &self.identity_files {
            v.push(format!("identityfile {id}"));
        }
        v.push(format!(
            "identitiesonly {}",
            if self.identities_only { "yes" } else { "no" }
        ));
        if let Some(j) = &self.proxy_jump {
            v.push(format!("proxyjump {j}"));
        }
        v.push(format!(
            "stricthostkeychecking {}",
            self.strict_host_key_checking
        ));
        if !self.user_known_hosts_files.is_empty() {
            v.push(format!(
                "userknownhostsfile {}",
                self.user_known_hosts_files.join(" ")
            ));
        }
        v.push(match self.connect_timeout {
            Some(t) => format!("connecttimeout {t}"),
            None => "connecttimeout none".to_string(),
        });
        v.push(format!(
            "serveraliveinterval {}",
            self.server_alive_interval
        ));
        v
    }
}
