//! Host strings (docs/nexus-toml.md): `host`, `user@host`, `user@host:port`, `[ipv6]:port`,
//! `user@[ipv6]:port`. Parsing only; ssh_config and defaults are applied by the SSH layer.

use std::fmt;

use crate::error::printable;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostSpec {
    pub user: Option<String>,
    /// Host name, address or ssh_config alias (no brackets for IPv6).
    pub host: String,
    pub port: Option<u16>,
}

impl HostSpec {
    /// The name shown in output and used as `{{ host }}`: the string minus nothing, as written.
    pub fn label(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for HostSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        let v6 = self.host.contains(':');
        match (self.port, v6) {
            (Some(p), true) => write!(f, "[{}]:{p}", self.host),
            (Some(p), false) => write!(f, "{}:{p}", self.host),
            (None, _) => write!(f, "{}", self.host),
        }
    }
}

/// Parse a host string; the error is a sentence for a diagnostic (control characters
/// in it escaped). Besides the form, the characters: a host is a host name or ssh_config
/// alias (`HOST_CHARS`), an IPv4 address, or an IPv6 address (with a `%zone`); a user is
/// a plain user name (`user_problem`). Nothing else gets through (no shell or ssh_config
/// `%` syntax: host strings reach ProxyCommand lines and remote shells).
pub fn parse(text: &str) -> Result<HostSpec, String> {
    let shown = printable(text);
    if text.is_empty() {
        return Err("empty host string".to_string());
    }
    if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("host string `{shown}` contains {:?}", c));
    }
    let (user, rest) = match text.rfind('@') {
        Some(i) => {
            let u = &text[..i];
            if u.is_empty() {
                return Err(format!(
                    "host string `{shown}` has an empty user before `@`"
                ));
            }
            if let Some(problem) = user_problem(u) {
                return Err(format!(
                    "host string `{shown}` has a user that {problem}; a user name has {USER_CHARS}"
                ));
            }
            (Some(u.to_string()), &text[i + 1..])
        }
        None => (None, text),
    };
    let (host, port) = if let Some(after) = rest.strip_prefix('[') {
        let close = after
            .find(']')
            .ok_or_else(|| format!("host string `{shown}` has `[` without `]`"))?;
        let host = &after[..close];
        let tail = &after[close + 1..];
        let port = match tail {
            "" => None,
            t => match t.strip_prefix(':') {
                Some(p) => Some(parse_port(text, p)?),
                None => return Err(format!("host string `{shown}` has `{t}` after `]`")),
            },
        };
        (host, port)
    } else if rest.matches(':').count() > 1 {
        // A bare IPv6 address: no port possible without brackets.
        (rest, None)
    } else if let Some((h, p)) = rest.split_once(':') {
        (h, Some(parse_port(text, p)?))
    } else {
        (rest, None)
    };
    if host.is_empty() {
        return Err(format!("host string `{shown}` has no host name"));
    }
    if host.starts_with('-') {
        return Err(format!("host name `{host}` may not start with `-`"));
    }
    if let Some(problem) = host_problem(host, rest.starts_with('[')) {
        return Err(format!("host string `{shown}` has {problem}"));
    }
    Ok(HostSpec {
        user,
        host: host.to_string(),
        port,
    })
}

/// What a host name, ssh_config alias or IPv4 address is made of.
pub const HOST_CHARS: &str = "letters, digits, `-`, `.` and `_`";

/// What a user name is made of (`user_problem`).
pub const USER_CHARS: &str = "letters, digits, `.`, `_`, `-` and `@`, and does not start with `-`";

/// Why `host` (without user, port or brackets) is not a host name, ssh_config alias or
/// address, as "… ; a host name has …"; None when it is one.
fn host_problem(host: &str, bracketed: bool) -> Option<String> {
    if bracketed || host.contains(':') {
        let (addr, zone) = match host.split_once('%') {
            Some((a, z)) => (a, Some(z)),
            None => (host, None),
        };
        let zone_ok = zone.is_none_or(|z| {
            !z.is_empty()
                && z.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        });
        if addr.parse::<std::net::Ipv6Addr>().is_ok() && zone_ok {
            return None;
        }
        return Some(format!(
            "`{}`, which is not an IPv6 address; an IPv6 address is hexadecimal digits and `:` (and an optional `%zone`)",
            printable(host)
        ));
    }
    let bad = host
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "-._".contains(c)))?;
    Some(format!(
        "`{bad}` in its host name; a host name, ssh_config alias or address has {HOST_CHARS}"
    ))
}

/// Why `user` is not a plain user name ("starts with `-`", "has `$`"); None when it is
/// one.
pub fn user_problem(user: &str) -> Option<String> {
    if user.starts_with('-') {
        return Some("starts with `-`".to_string());
    }
    let bad = user
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || "._-@".contains(c)))?;
    Some(format!("has `{}`", printable(&bad.to_string())))
}

fn parse_port(text: &str, p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!(
            "host string `{}` has port `{}`; a port is a number from 1 to 65535",
            printable(text),
            printable(p)
        )),
        Ok(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(user: Option<&str>, host: &str, port: Option<u16>) -> HostSpec {
        HostSpec {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn forms() {
        assert_eq!(parse("web-1"), Ok(hs(None, "web-1", None)));
        assert_eq!(
            parse("deploy@web-2:2222"),
            Ok(hs(Some("deploy"), "web-2", Some(2222)))
        );
        assert_eq!(
            parse("[2001:db8::7]:22"),
            Ok(hs(None, "2001:db8::7", Some(22)))
        );
        assert_eq!(parse("u@[::1]"), Ok(hs(Some("u"), "::1", None)));
        assert_eq!(parse("::1"), Ok(hs(None, "::1", None)));
    }

    #[test]
    fn errors() {
        assert!(parse("web:0").is_err());
        assert!(parse("web:http").is_err());
        assert!(parse("@web").is_err());
        assert!(parse("[::1").is_err());
        assert!(parse("a b").is_err());
    }

    #[test]
    fn only_names_and_addresses() {
        for ok in [
            "web_1.example.com",
            "10.0.0.5:22",
            "a.b@web",
            "u@[fe80::1%eth0]:22",
            "::ffff:10.0.0.1",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "$(id)",
            "a;b",
            "`id`",
            "a'b",
            "a\"b",
            "a|b",
            "a&b",
            "a>b",
            "%h",
            "*.example",
            "u$x@web",
            "-u@web",
            "[web]:22",
            "[::1%]:22",
            "[::1%a;b]",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse("web;reboot"),
            Err("host string `web;reboot` has `;` in its host name; a host name, ssh_config alias or address has letters, digits, `-`, `.` and `_`".to_string())
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "web-1",
            "deploy@web-2:2222",
            "[2001:db8::7]:22",
            "u@[::1]:9",
        ] {
            assert_eq!(parse(s).unwrap().to_string(), s);
        }
    }
}
