//! Key exchange and host key algorithm lists: nexus's defaults, and ssh_config's
//! KexAlgorithms / HostKeyAlgorithms in OpenSSH's forms (`a,b` replaces the list, `+a`
//! appends, `-a` removes, `^a` puts first; `*` and `?` match names), kept to what
//! libssh2 implements. Must not: open connections.

use std::sync::OnceLock;

use ssh2::{MethodType, Session};

/// Key exchange, cheapest for the server first. OpenSSH computes curve25519 with its own
/// portable C code and ECDH P-256 with OpenSSL's assembly: measured on the bench fleet
/// (OpenSSH 9.2, 100 logins), P-256 costs sshd about 2 ms less CPU per login (1.46 s
/// against 1.66 s in all). Both are in OpenSSH's default list; a server that refuses
/// NIST curves negotiates curve25519, the next entry.
pub const KEX: &str = "ecdh-sha2-nistp256,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,diffie-hellman-group-exchange-sha256";

/// Host key algorithms when known_hosts has nothing to say about the host.
pub const HOST_KEYS: &str = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Kex,
    HostKey,
}

impl Kind {
    fn keyword(self) -> &'static str {
        match self {
            Kind::Kex => "KexAlgorithms",
            Kind::HostKey => "HostKeyAlgorithms",
        }
    }

    fn default_list(self) -> &'static str {
        match self {
            Kind::Kex => KEX,
            Kind::HostKey => HOST_KEYS,
        }
    }

    fn supported(self) -> &'static [String] {
        static KEX_SUPPORTED: OnceLock<Vec<String>> = OnceLock::new();
        static HOST_KEY_SUPPORTED: OnceLock<Vec<String>> = OnceLock::new();
        let (cell, method) = match self {
            Kind::Kex => (&KEX_SUPPORTED, MethodType::Kex),
            Kind::HostKey => (&HOST_KEY_SUPPORTED, MethodType::HostKey),
        };
        cell.get_or_init(|| {
            Session::new()
                .ok()
                .and_then(|s| s.supported_algs(method).ok())
                .map(|v| {
                    v.into_iter()
                        // Extensions libssh2 announces by itself, not key exchange methods.
                        .filter(|a| !matches!(*a, "ext-info-c" | "kex-strict-c-v00@openssh.com"))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        })
    }
}

/// The list nexus offers for `spec` (None: the default), as `a,b,c`. An error says why
/// nothing is left.
pub fn effective(kind: Kind, spec: Option<&str>) -> Result<String, String> {
    let supported = kind.supported();
    let Some(spec) = spec else {
        let list = kind.default_list().split(',');
        return Ok(list
            .filter(|a| supported.is_empty() || supported.iter().any(|s| s == a))
            .collect::<Vec<_>>()
            .join(","));
    };
    let list: Vec<String> = apply(kind.default_list(), spec, supported)
        .into_iter()
        .filter(|a| supported.contains(a))
        .collect();
    if list.is_empty() {
        return Err(format!(
            "{} {spec} in ssh_config leaves no algorithm libssh2 implements (it has: {})",
            kind.keyword(),
            supported.join(",")
        ));
    }
    Ok(list.join(","))
}

/// OpenSSH's list forms over `default`; names in a replacing list may be patterns,
/// matched against `all`.
fn apply(default: &str, spec: &str, all: &[String]) -> Vec<String> {
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    let matching = |pats: &[String], name: &str| {
        pats.iter()
            .any(|p| crate::exec::ssh::pattern::matches(p.as_bytes(), name.as_bytes()))
    };
    let default = split(default);
    if let Some(rest) = spec.strip_prefix('+') {
        let mut out = default;
        for a in split(rest) {
            if !out.contains(&a) {
                out.push(a);
            }
        }
        out
    } else if let Some(rest) = spec.strip_prefix('-') {
        let pats = split(rest);
        default
            .into_iter()
            .filter(|a| !matching(&pats, a))
            .collect()
    } else if let Some(rest) = spec.strip_prefix('^') {
        let first = split(rest);
        let rest: Vec<String> = default.into_iter().filter(|a| !first.contains(a)).collect();
        first.into_iter().chain(rest).collect()
    } else {
        let mut out: Vec<String> = Vec::new();
        for p in split(spec) {
            for a in all.iter().filter(|a| matching(std::slice::from_ref(&p), a)) {
                if !out.contains(a) {
                    out.push(a.clone());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<String> {
        ["a", "b", "c", "x-1", "x-2"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn openssh_list_forms() {
        let d = "a,b,c";
        assert_eq!(apply(d, "c,a", &all()), ["c", "a"]);
        assert_eq!(apply(d, "x-*", &all()), ["x-1", "x-2"]);
        assert_eq!(apply(d, "+x-2,a", &all()), ["a", "b", "c", "x-2"]);
        assert_eq!(apply(d, "-b", &all()), ["a", "c"]);
        assert_eq!(apply(d, "-?", &all()), Vec::<String>::new());
        assert_eq!(apply(d, "^c,x-1", &all()), ["c", "x-1", "a", "b"]);
    }

    #[test]
    fn effective_lists_keep_to_what_libssh2_implements() {
        assert_eq!(effective(Kind::Kex, None).unwrap(), KEX);
        // This libssh2 has no SHA-1 `ssh-rsa` host keys: the default drops it.
        assert_eq!(
            effective(Kind::HostKey, None).unwrap(),
            "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256"
        );
        assert_eq!(
            effective(Kind::Kex, Some("-ecdh-*")).unwrap(),
            "curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,diffie-hellman-group-exchange-sha256"
        );
        assert_eq!(
            effective(
                Kind::Kex,
                Some("sntrup761x25519-sha512@openssh.com,curve25519-sha256")
            )
            .unwrap(),
            "curve25519-sha256"
        );
        assert_eq!(
            effective(Kind::HostKey, Some("^rsa-sha2-512")).unwrap(),
            "rsa-sha2-512,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-256"
        );
        let e = effective(Kind::Kex, Some("sntrup761x25519-sha512@openssh.com")).unwrap_err();
        assert!(
            e.starts_with("KexAlgorithms sntrup761x25519-sha512@openssh.com in ssh_config leaves no algorithm libssh2 implements (it has: "),
            "{e}"
        );
    }
}
