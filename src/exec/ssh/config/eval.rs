//! Host and Match evaluation for one alias: which statements apply, in file order,
//! first value wins (IdentityFile accumulates), as OpenSSH's single pass does.
//! Must not: expand values or fill in defaults (resolved.rs does).

use super::directive::{Crit, CritKind, Setting, Stmt};
use super::expand::{expand_hostname, Env};
use super::MAX_IDENTITY_FILES;

/// OpenSSH `match_pattern`: `*` and `?`, case-sensitive. Greedy with one backtrack
/// point, so time stays linear-ish whatever the pattern.
pub(super) fn match_pattern(s: &[u8], p: &[u8]) -> bool {
    let (mut si, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == s[si] => {
                si += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|&c| c == b'*')
}

/// OpenSSH `match_pattern_list`: 1 positive match, 0 none, -1 a negated match.
fn match_pattern_list(s: &str, list: &str, dolower: bool) -> i32 {
    let mut got_positive = 0;
    for sub in list.split(',') {
        let (neg, sub) = match sub.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, sub),
        };
        let sub = if dolower {
            sub.to_ascii_lowercase()
        } else {
            sub.to_string()
        };
        if match_pattern(s.as_bytes(), sub.as_bytes()) {
            if neg {
                return -1;
            }
            got_positive = 1;
        }
    }
    got_positive
}

fn match_hostname(host: &str, list: &str) -> bool {
    match_pattern_list(&host.to_ascii_lowercase(), list, true) == 1
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
                    if match_pattern(alias.as_bytes(), p.as_bytes()) {
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
            CritKind::User(l) => match_pattern_list(ruser, l, false) == 1,
            CritKind::LocalUser(l) => match_pattern_list(&env.local_user, l, false) == 1,
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
