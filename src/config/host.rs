//! Host strings (docs/nexus-toml.md): `host`, `user@host`, `user@host:port`, `[ipv6]:port`,
//! `user@[ipv6]:port`. Parsing only; ssh_config and defaults are applied by the SSH layer.

use std::fmt;

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

/// Parse a host string; the error is a sentence for a diagnostic.
pub fn parse(text: &str) -> Result<HostSpec, String> {
    if text.is_empty() {
        return Err("empty host string".to_string());
    }
    if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("host string `{text}` contains {:?}", c));
    }
    let (user, rest) = match text.rfind('@') {
        Some(i) => {
            let u = &text[..i];
            if u.is_empty() {
                return Err(format!("host string `{text}` has an empty user before `@`"));
            }
            (Some(u.to_string()), &text[i + 1..])
        }
        None => (None, text),
    };
    let (host, port) = if let Some(after) = rest.strip_prefix('[') {
        let close = after
            .find(']')
            .ok_or_else(|| format!("host string `{text}` has `[` without `]`"))?;
        let host = &after[..close];
        let tail = &after[close + 1..];
        let port = match tail {
            "" => None,
            t => match t.strip_prefix(':') {
                Some(p) => Some(parse_port(text, p)?),
                None => return Err(format!("host string `{text}` has `{t}` after `]`")),
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
        return Err(format!("host string `{text}` has no host name"));
    }
    if host.starts_with('-') {
        return Err(format!("host name `{host}` may not start with `-`"));
    }
    Ok(HostSpec {
        user,
        host: host.to_string(),
        port,
    })
}

fn parse_port(text: &str, p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!(
            "host string `{text}` has port `{p}`; a port is a number from 1 to 65535"
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
