//! Host and Match evaluation for one alias: which statements apply, in file order,
//! first value wins (IdentityFile accumulates), as OpenSSH's single pass does.
//! Must not: expand values or fill in defaults (resolved.rs does).

use super::directive::{Crit, CritKind, Setting, Stmt};
use super::expand::{expand_hostname, Env};
use super::MAX_IDENTITY_FILES;
use crate::exec::ssh::pattern::{match_list, matches, ListMatch};

fn match_hostname(host: &str, list: &str) -> bool {
    match_list(&host.to_ascii_lowercase(), list, true) == ListMatch::Positive
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) hostname: Option<String>,
    pub(super) user: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) identity_files: Vec<String>,
    pub(super) identities_only: Option<bool>,
    pub(super) strict_host_key_checking: Option<&'static str>,
    pub(super) known_hosts: Option<Vec<String>>,
    pub(super) connect_timeout: Option<u64>,
    pub(super) server_alive_interval: Option<u64>,
    /// Some(None) = `ProxyJump none`.
    pub(super) jump: Option<Option<String>>,
    pub(super) proxy_command: bool,
    pub(super) kex_algorithms: Option<String>,
    pub(super) host_key_algorithms: Option<String>,
}

pub(super) fn eval(
    stmts: &[Stmt],
    alias: &str,
    env: &Env,
    st: &mut State,
    active: &mut bool,
    never: bool,
) {
    for s in stmts {
        match s {
            Stmt::Host(pats) => {
                *active = false;
                if never {
                    continue;
                }
                for p in pats {
                    let (neg, p) = match p.strip_prefix('!') {
                        Some(r) => (true, r),
                        None => (false, p.as_str()),
                    };
                    if matches(p.as_bytes(), alias.as_bytes()) {
                        if neg {
                            *active = false;
                            break;
                        }
                        *active = true;
                    }
                }
            }
            Stmt::Match(crits) => {
                let v = eval_match(crits, alias, env, st);
                *active = !never && v;
            }
            Stmt::Set(setting) => {
                if *active {
                    apply(setting, st);
                }
            }
            Stmt::Include(files) => {
                let outer = *active;
                for f in files {
                    eval(f, alias, env, st, active, never || !outer);
                    *active = outer;
                }
            }
        }
    }
}

fn eval_match(crits: &[Crit], alias: &str, env: &Env, st: &State) -> bool {
    let host = match &st.hostname {
        Some(h) => expand_hostname(h, alias),
        None => alias.to_string(),
    };
    let ruser = st.user.as_deref().unwrap_or(&env.local_user);
    let mut result = true;
    for c in crits {
        let r = match &c.kind {
            CritKind::All => {
                return result && !c.negate;
            }
            CritKind::Host(l) => match_hostname(&host, l),
            CritKind::OriginalHost(l) => match_hostname(alias, l),
            CritKind::User(l) => match_list(ruser, l, false) == ListMatch::Positive,
            CritKind::LocalUser(l) => match_list(&env.local_user, l, false) == ListMatch::Positive,
            CritKind::PostCanon => false,
            CritKind::Unsupported => return false,
        };
        if r == c.negate {
            result = false;
        }
    }
    result
}

fn apply(s: &Setting, st: &mut State) {
    match s {
        Setting::HostName(h) => {
            st.hostname.get_or_insert_with(|| h.clone());
        }
        Setting::User(u) => {
            st.user.get_or_insert_with(|| u.clone());
        }
        Setting::Port(p) => {
            st.port.get_or_insert(*p);
        }
        Setting::IdentityFile(f) => {
            if !st.identity_files.iter().any(|x| x == f)
                && st.identity_files.len() < MAX_IDENTITY_FILES
            {
                st.identity_files.push(f.clone());
            }
        }
        Setting::IdentitiesOnly(b) => {
            st.identities_only.get_or_insert(*b);
        }
        Setting::StrictHostKeyChecking(w) => {
            st.strict_host_key_checking.get_or_insert(w);
        }
        Setting::UserKnownHostsFile(v) => {
            st.known_hosts.get_or_insert_with(|| v.clone());
        }
        Setting::ConnectTimeout(t) => {
            if st.connect_timeout.is_none() {
                st.connect_timeout = *t;
            }
        }
        Setting::ServerAliveInterval(t) => {
            if st.server_alive_interval.is_none() {
                st.server_alive_interval = *t;
            }
        }
        Setting::ProxyJump(j) => {
            if st.jump.is_none() && !st.proxy_command {
                st.jump = Some(j.clone());
            }
        }
        Setting::ProxyCommand => {
            if st.jump.is_none() {
                st.proxy_command = true;
            }
        }
        Setting::KexAlgorithms(v) => {
            st.kex_algorithms.get_or_insert_with(|| v.clone());
        }
        Setting::HostKeyAlgorithms(v) => {
            st.host_key_algorithms.get_or_insert_with(|| v.clone());
        }
    }
}
