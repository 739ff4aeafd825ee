//! Host and Match evaluation for one alias: which statements apply, in file order,
//! first value wins (IdentityFile accumulates), as OpenSSH's single pass does.
//! Must not: expand values or fill in defaults (resolved.rs does).

use std::collections::HashMap;

use super::directive::{bad_option, At, Crit, CritKind, Setting, Stmt};
use super::expand::{expand_hostname, Env};
use super::{ConfigError, MAX_IDENTITY_FILES};
use crate::exec::ssh::pattern::{match_list, matches, ListMatch};

fn match_hostname(host: &str, list: &str) -> bool {
    match_list(&host.to_ascii_lowercase(), list, true) == ListMatch::Positive
}

#[derive(Debug, Default)]
pub(super) struct State {
    /// HostName as written, and where.
    pub(super) hostname: Option<(String, At)>,
    pub(super) user: Option<String>,
    pub(super) port: Option<u16>,
    /// As written, and where (None: `-i`, which comes from no file).
    pub(super) identity_files: Vec<(String, Option<At>)>,
    pub(super) identities_only: Option<bool>,
    pub(super) strict_host_key_checking: Option<&'static str>,
    pub(super) known_hosts: Option<(Vec<String>, At)>,
    pub(super) connect_timeout: Option<u64>,
    pub(super) server_alive_interval: Option<u64>,
    pub(super) server_alive_count_max: Option<u64>,
    /// Some(None) = `ProxyJump none`.
    pub(super) jump: Option<(Option<String>, At)>,
    /// Some(None) = `ProxyCommand none`, or a ProxyJump came first.
    pub(super) proxy_command: Option<(Option<String>, At)>,
    pub(super) kex_algorithms: Option<String>,
    pub(super) host_key_algorithms: Option<String>,
    pub(super) ignore_unknown: Option<String>,
    pub(super) host_key_alias: Option<String>,
}

/// Evaluate `stmts` for `alias` into `st`. `never`: an Include inside a block that did
/// not match (its lines are checked, none applies). Err: an unknown keyword that the
/// `IgnoreUnknown` in force does not name.
pub(super) fn eval(
    stmts: &[Stmt],
    alias: &str,
    env: &Env,
    st: &mut State,
    active: &mut bool,
    never: bool,
) -> Result<(), ConfigError> {
    for s in stmts {
        match s {
            Stmt::Host(pats) => *active = !never && host_matches(pats, alias),
            Stmt::Match(crits) => {
                let v = eval_match(crits, alias, env, st);
                *active = !never && v;
            }
            Stmt::Set(setting, at) => {
                if *active {
                    apply(setting, at, st);
                }
            }
            Stmt::Include(files) => {
                let outer = *active;
                for f in files {
                    eval(f, alias, env, st, active, never || !outer)?;
                    *active = outer;
                }
            }
            Stmt::Unknown(keyword, at) => {
                let ignored = st
                    .ignore_unknown
                    .as_deref()
                    .is_some_and(|l| match_list(keyword, l, true) == ListMatch::Positive);
                if !ignored {
                    return Err(at.err(bad_option(keyword)));
                }
            }
        }
    }
    Ok(())
}

/// The top level of a file cut into blocks (each starts at a `Host` or `Match` line; the
/// first holds what comes before), and the blocks that can apply to one alias only: a
/// `Host` line of plain names (no `*`, `?` or `!`) followed only by settings matches
/// exactly those names. Resolving an alias visits the other blocks and the plain ones
/// that name it, in file order: with one block per host (10,000 hosts in one file), an
/// alias costs a lookup instead of a walk through every block.
#[derive(Debug, Default, Clone)]
pub(super) struct Index {
    /// (first, end) statement of each block.
    blocks: Vec<(usize, usize)>,
    /// Blocks visited for every alias, in order.
    always: Vec<usize>,
    /// Plain-name blocks by name, in order.
    named: HashMap<String, Vec<usize>>,
}

impl Index {
    pub(super) fn build(stmts: &[Stmt]) -> Index {
        let mut ix = Index::default();
        let mut start = 0;
        for (i, s) in stmts.iter().enumerate() {
            if i > start && matches!(s, Stmt::Host(_) | Stmt::Match(_)) {
                ix.push(stmts, start, i);
                start = i;
            }
        }
        if start < stmts.len() {
            ix.push(stmts, start, stmts.len());
        }
        ix
    }

    fn push(&mut self, stmts: &[Stmt], first: usize, end: usize) {
        let id = self.blocks.len();
        self.blocks.push((first, end));
        let plain = |p: &String| !p.starts_with('!') && !p.contains(['*', '?']);
        match &stmts[first] {
            Stmt::Host(pats)
                if pats.iter().all(plain)
                    && stmts[first + 1..end]
                        .iter()
                        .all(|s| matches!(s, Stmt::Set(..))) =>
            {
                for p in pats {
                    let ids = self.named.entry(p.clone()).or_default();
                    if ids.last() != Some(&id) {
                        ids.push(id);
                    }
                }
            }
            _ => self.always.push(id),
        }
    }
}

/// [`eval`] of the top level `stmts` for `alias`, visiting only the blocks `ix` cannot
/// rule out: the same result, since a skipped block would only have been inactive.
pub(super) fn eval_indexed(
    stmts: &[Stmt],
    ix: &Index,
    alias: &str,
    env: &Env,
    st: &mut State,
) -> Result<(), ConfigError> {
    let named = ix.named.get(alias).map_or(&[][..], Vec::as_slice);
    let (mut a, mut n) = (0, 0);
    let mut active = true;
    loop {
        let id = match (ix.always.get(a), named.get(n)) {
            (Some(&x), Some(&y)) if x < y => {
                a += 1;
                x
            }
            (_, Some(&y)) => {
                n += 1;
                y
            }
            (Some(&x), None) => {
                a += 1;
                x
            }
            (None, None) => return Ok(()),
        };
        let (first, end) = ix.blocks[id];
        eval(&stmts[first..end], alias, env, st, &mut active, false)?;
    }
}

/// A `Host` line: some pattern matches and no negated one does.
fn host_matches(pats: &[String], alias: &str) -> bool {
    let mut active = false;
    for p in pats {
        let (neg, p) = match p.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, p.as_str()),
        };
        if matches(p.as_bytes(), alias.as_bytes()) {
            if neg {
                return false;
            }
            active = true;
        }
    }
    active
}

fn eval_match(crits: &[Crit], alias: &str, env: &Env, st: &State) -> bool {
    // A HostName with a bad token is refused once resolution ends (resolved.rs); until
    // then Match host sees it as written.
    let host = match &st.hostname {
        Some((h, _)) => expand_hostname(h, alias).unwrap_or_else(|_| h.clone()),
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

fn apply(s: &Setting, at: &At, st: &mut State) {
    match s {
        Setting::HostName(h) => {
            st.hostname.get_or_insert_with(|| (h.clone(), at.clone()));
        }
        Setting::User(u) => {
            st.user.get_or_insert_with(|| u.clone());
        }
        Setting::Port(p) => {
            st.port.get_or_insert(*p);
        }
        Setting::IdentityFile(f) => {
            if !st.identity_files.iter().any(|(x, _)| x == f)
                && st.identity_files.len() < MAX_IDENTITY_FILES
            {
                st.identity_files.push((f.clone(), Some(at.clone())));
            }
        }
        Setting::IdentitiesOnly(b) => {
            st.identities_only.get_or_insert(*b);
        }
        Setting::StrictHostKeyChecking(w) => {
            st.strict_host_key_checking.get_or_insert(w);
        }
        Setting::UserKnownHostsFile(v) => {
            st.known_hosts
                .get_or_insert_with(|| (v.clone(), at.clone()));
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
        Setting::ServerAliveCountMax(n) => {
            st.server_alive_count_max.get_or_insert(*n);
        }
        // Whichever of ProxyJump and ProxyCommand comes first wins, `ProxyCommand none`
        // included. A `ProxyJump none` does not hold back a later ProxyCommand (ssh -G
        // 9.2 shows it applies).
        Setting::ProxyJump(j) => {
            if st.jump.is_none() && st.proxy_command.is_none() {
                st.jump = Some((j.clone(), at.clone()));
                if j.is_some() {
                    st.proxy_command = Some((None, at.clone()));
                }
            }
        }
        Setting::ProxyCommand(c) => {
            st.proxy_command
                .get_or_insert_with(|| (c.clone(), at.clone()));
        }
        Setting::KexAlgorithms(v) => {
            st.kex_algorithms.get_or_insert_with(|| v.clone());
        }
        Setting::HostKeyAlgorithms(v) => {
            st.host_key_algorithms.get_or_insert_with(|| v.clone());
        }
        Setting::IgnoreUnknown(v) => {
            st.ignore_unknown.get_or_insert_with(|| v.clone());
        }
        Setting::HostKeyAlias(v) => {
            st.host_key_alias
                .get_or_insert_with(|| v.to_ascii_lowercase());
        }
    }
}
