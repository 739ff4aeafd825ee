//! ProxyJump values: validated hop by hop as OpenSSH 9.2 does, and re-assembled in the
//! form `ssh -G` prints. Must not: resolve the hops (target.rs does).

use super::values::a2port;

/// Validate a ProxyJump value as OpenSSH 9.2 does and return the form `ssh -G`
/// prints (None for `none`). None overall when invalid. Observed behaviour: only the
/// exact word `none` means none; otherwise the value ends at `#` and at the first
/// blank; every comma-separated hop must parse; the last hop is re-assembled.
pub(super) fn parse_jump(raw: &str) -> Option<Option<String>> {
    if raw.eq_ignore_ascii_case("none") {
        return Some(None);
    }
    let mut cleaned = match raw.find('#') {
        Some(i) => &raw[..i],
        None => raw,
    };
    cleaned = cleaned.trim_end_matches([' ', '\t', '\r', '\n']);
    if let Some(i) = cleaned.find([' ', '\t']) {
        cleaned = &cleaned[..i];
    }
    let mut hops = cleaned.rsplit(',');
    let (user, host, port) = parse_hop(hops.next()?)?;
    for hop in hops {
        parse_hop(hop)?;
    }
    let mut out = String::new();
    if let Some(idx) = cleaned.rfind(',') {
        if idx > 0 {
            out.push_str(&cleaned[..idx]);
            out.push(',');
        }
    }
    if let Some(u) = user {
        out.push_str(&u);
        out.push('@');
    }
    if host.contains(':') {
        out.push_str(&format!("[{host}]"));
    } else {
        out.push_str(&host);
    }
    if let Some(p) = port {
        out.push_str(&format!(":{p}"));
    }
    Some(Some(out))
}

/// (user, host, port) of one hop.
pub(super) type Hop = (Option<String>, String, Option<u16>);

/// The last hop of a ProxyJump value in `ssh -G`'s form (the one ssh connects to the
/// host through).
pub(super) fn last_hop(spec: &str) -> Option<Hop> {
    parse_hop(spec.rsplit(',').next()?)
}

/// One hop: `ssh://[user@]host[:port]` or `[user@]host[:port]` (`[v6]` allowed).
fn parse_hop(hop: &str) -> Option<Hop> {
    if let Some(uri) = hop.strip_prefix("ssh://") {
        let uri = uri.strip_suffix('/').unwrap_or(uri);
        if uri.contains('/') {
            return None;
        }
        let (user, hp) = match uri.rfind('@') {
            Some(i) => (Some(uri[..i].to_string()), &uri[i + 1..]),
            None => (None, uri),
        };
        if user
            .as_deref()
            .is_some_and(|u| u.is_empty() || u.contains(';'))
        {
            return None;
        }
        let (host, port) = hpdelim(hp)?;
        if host.is_empty() {
            return None;
        }
        return Some((user, host, port));
    }
    let (user, hp) = match hop.rfind('@') {
        Some(i) => (Some(hop[..i].to_string()), &hop[i + 1..]),
        None => (None, hop),
    };
    if user.as_deref().is_some_and(str::is_empty) {
        return None;
    }
    let (host, port) = hpdelim(hp)?;
    if host.is_empty() {
        return None;
    }
    Some((user, host, port))
}

/// host[:port] or [host]:port; a port must be valid if present.
fn hpdelim(s: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(r) = s.strip_prefix('[') {
        let close = r.find(']')?;
        let after = &r[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return None,
        };
        (r[..close].to_string(), port)
    } else {
        match s.find(':') {
            Some(i) => (s[..i].to_string(), Some(&s[i + 1..])),
            None => (s.to_string(), None),
        }
    };
    let port = match port {
        Some("") | None => None,
        Some(p) => Some(a2port(p)?),
    };
    Some((host, port))
}
