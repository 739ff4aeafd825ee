//! The result of resolving one alias: defaults filled in, values expanded, and the
//! lines `ssh -G` would print for them. Must not: read files or decide which
//! statements apply (eval.rs).

use super::directive::{At, Stmt};
use super::eval::{eval_indexed, Index, State};
use super::expand::{expand_hostname, is_addr, Env, ExpandCtx};
use super::jump::{last_hop, Hop};
use super::{ConfigError, Fallbacks, Overrides};
use crate::userenv::{self, DEFAULT_IDENTITIES};

/// nexus's keepalive when ssh_config sets no ServerAliveInterval (seconds; OpenSSH's
/// default is 0, none): a dead connection is found within about a minute.
pub const KEEPALIVE_INTERVAL: u64 = 15;
/// ServerAliveCountMax when ssh_config sets none (OpenSSH's default too).
pub const KEEPALIVE_COUNT_MAX: u64 = 3;

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
    /// Seconds; None when ssh_config sets none (OpenSSH then sends no keepalives, nexus
    /// sends one every `KEEPALIVE_INTERVAL`).
    pub server_alive_interval: Option<u64>,
    /// Keepalives that may go unanswered; None when ssh_config sets none (3).
    pub server_alive_count_max: Option<u64>,
    /// The hops in `ssh -G`'s form; None for a direct connection (`ProxyJump none`).
    pub proxy_jump: Option<String>,
    /// ProxyCommand as written (what `ssh -G` prints); None: none, or a ProxyJump.
    pub proxy_command: Option<String>,
    /// The same with its tokens expanded: what nexus runs (`sh -c "exec ..."`).
    pub proxy_command_expanded: Option<String>,
    /// KexAlgorithms / HostKeyAlgorithms as written (`a,b`, `+a`, `-a`, `^a`); None if unset.
    pub kex_algorithms: Option<String>,
    pub host_key_algorithms: Option<String>,
}

/// Resolve `alias` over `stmts`: overrides > the file > fallbacks > OpenSSH defaults.
/// Err: what ssh refuses only for the host it resolves (an unknown keyword that the
/// `IgnoreUnknown` in force does not name, a token the keyword does not allow, a
/// ProxyJump that leads back to the host), with the file and line of the directive.
pub(super) fn resolve(
    stmts: &[Stmt],
    index: &Index,
    alias: &str,
    o: &Overrides,
    f: &Fallbacks,
) -> Result<Resolved, ConfigError> {
    let env = Env::current();
    let mut st = State {
        user: o.user.clone(),
        port: o.port,
        ..State::default()
    };
    if let Some(id) = &o.identity {
        // Like `ssh -i`: tilde-expanded before it joins the list.
        st.identity_files.push((userenv::expand_tilde(id), None));
    }
    eval_indexed(stmts, index, alias, &env, &mut st)?;

    let user = st
        .user
        .clone()
        .or_else(|| f.user.clone())
        .unwrap_or_else(|| env.local_user.clone());
    let port = st.port.or(f.port).unwrap_or(22);
    let hostname = final_hostname(&st, alias)?;
    let proxy_jump = st.jump.as_ref().and_then(|(j, _)| j.clone());
    let last_hop = proxy_jump.as_deref().and_then(last_hop);
    if let (Some(hop), Some((_, at))) = (&last_hop, &st.jump) {
        check_loop(hop, &hostname, port, &user, at)?;
    }
    let ctx = ExpandCtx {
        env: &env,
        hostname: &hostname,
        port,
        ruser: &user,
        alias,
        key_alias: st.host_key_alias.as_deref().unwrap_or(alias),
        jump_host: last_hop.as_ref().map_or("", |(_, h, _)| h.as_str()),
    };
    let identity_files = identity_files(&st, f, &ctx)?;
    let user_known_hosts_files = known_hosts_files(&st, &ctx)?;
    let (proxy_command, proxy_command_expanded) = match &st.proxy_command {
        Some((Some(cmd), at)) => {
            let expanded = ctx
                .expand_command(cmd)
                .map_err(|m| at.err(format!("ProxyCommand {cmd}: {m}")))?;
            (Some(cmd.clone()), Some(expanded))
        }
        _ => (None, None),
    };
    Ok(Resolved {
        proxy_command,
        proxy_command_expanded,
        identity_files,
        user_known_hosts_files,
        identities_only: st.identities_only.unwrap_or(false),
        strict_host_key_checking: st.strict_host_key_checking.unwrap_or("ask").to_string(),
        connect_timeout: st.connect_timeout,
        server_alive_interval: st.server_alive_interval,
        server_alive_count_max: st.server_alive_count_max,
        proxy_jump,
        kex_algorithms: st.kex_algorithms.clone(),
        host_key_algorithms: st.host_key_algorithms.clone(),
        hostname,
        user,
        port,
    })
}

/// HostName with `%h` expanded (or the alias), lowercased unless it is an address.
fn final_hostname(st: &State, alias: &str) -> Result<String, ConfigError> {
    let raw = match &st.hostname {
        Some((h, at)) => {
            expand_hostname(h, alias).map_err(|m| at.err(format!("HostName {h}: {m}")))?
        }
        None => alias.to_string(),
    };
    Ok(if is_addr(&raw) {
        raw
    } else {
        raw.to_ascii_lowercase()
    })
}

/// OpenSSH refuses a ProxyJump whose last hop is the host itself (same host, port and
/// user): ssh would connect to itself through itself, forever.
fn check_loop(
    hop: &Hop,
    hostname: &str,
    port: u16,
    user: &str,
    at: &At,
) -> Result<(), ConfigError> {
    let (hop_user, hop_host, hop_port) = hop;
    if hop_host == hostname
        && hop_port.unwrap_or(22) == port
        && hop_user.as_deref().unwrap_or(user) == user
    {
        return Err(at.err(format!(
            "jumphost loop via {hop_host}: the last ProxyJump hop is the host itself ({user}@{hostname} port {port}); name another jump host, or ProxyJump none"
        )));
    }
    Ok(())
}

/// IdentityFile values expanded; `-i`, nexus's `ssh_identity` and OpenSSH's defaults
/// (which come from no ssh_config line) keep a token they cannot expand as written.
fn identity_files(
    st: &State,
    f: &Fallbacks,
    ctx: &ExpandCtx<'_>,
) -> Result<Vec<String>, ConfigError> {
    let mut raw: Vec<(String, Option<At>)> = st.identity_files.clone();
    if raw.is_empty() {
        match &f.identity {
            Some(id) => raw.push((id.clone(), None)),
            None => raw.extend(DEFAULT_IDENTITIES.iter().map(|s| (s.to_string(), None))),
        }
    }
    raw.iter()
        .filter(|(p, _)| !p.eq_ignore_ascii_case("none"))
        .map(|(p, at)| match at {
            Some(at) => ctx
                .expand_path(p)
                .map_err(|m| at.err(format!("IdentityFile {p}: {m}"))),
            None => Ok(ctx
                .expand_path(p)
                .unwrap_or_else(|_| userenv::expand_tilde(p))),
        })
        .collect()
}

fn known_hosts_files(st: &State, ctx: &ExpandCtx<'_>) -> Result<Vec<String>, ConfigError> {
    match &st.known_hosts {
        Some((v, at)) => v
            .iter()
            .map(|p| {
                ctx.expand_path(p)
                    .map_err(|m| at.err(format!("UserKnownHostsFile {p}: {m}")))
            })
            .collect(),
        None => Ok(DEFAULT_KNOWN_HOSTS
            .iter()
            .map(|p| {
                ctx.expand_path(p)
                    .unwrap_or_else(|_| userenv::expand_tilde(p))
            })
            .collect()),
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
        if let Some(c) = &self.proxy_command {
            v.push(format!("proxycommand {c}"));
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
            "serveralivecountmax {}",
            self.server_alive_count_max.unwrap_or(KEEPALIVE_COUNT_MAX)
        ));
        v.push(format!(
            "serveraliveinterval {}",
            self.server_alive_interval.unwrap_or(0)
        ));
        v
    }

    /// The keepalive nexus uses: (ServerAliveInterval, ServerAliveCountMax), ssh_config's
    /// values, else 15 s and 3. An interval of 0 sends none.
    pub fn keepalive(&self) -> (u64, u64) {
        (
            self.server_alive_interval.unwrap_or(KEEPALIVE_INTERVAL),
            self.server_alive_count_max.unwrap_or(KEEPALIVE_COUNT_MAX),
        )
    }

    /// `ssh_g_lines` with what nexus uses where it differs from OpenSSH: the keepalive
    /// interval when ssh_config sets none (`nexus hosts resolve`).
    pub fn nexus_lines(&self) -> Vec<String> {
        let interval = self.keepalive().0;
        self.ssh_g_lines()
            .into_iter()
            .map(|l| {
                if l.starts_with("serveraliveinterval ") {
                    format!("serveraliveinterval {interval}")
                } else {
                    l
                }
            })
            .collect()
    }
}
