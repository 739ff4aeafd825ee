//! Expansion of values: `%` tokens, `~`, `${VAR}`, and the local facts they stand for
//! (the local user and home directory from `userenv`, the host name); OpenSSH's `is_addr`.
//! Must not: decide which value applies (eval.rs) or read files.

use crate::userenv;

pub(super) struct Env {
    pub(super) home: String,
    pub(super) local_user: String,
}

impl Env {
    pub(super) fn current() -> Env {
        Env {
            home: userenv::home().to_string_lossy().into_owned(),
            local_user: userenv::user_name(),
        }
    }
}

fn local_hostname() -> String {
    crate::sys::hostname()
}

/// The `%` tokens a keyword allows, as OpenSSH 9.x expands them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tokens {
    /// HostName: `%h` (the alias).
    HostName,
    /// IdentityFile, UserKnownHostsFile and most others (`DEFAULT_CLIENT_PERCENT_EXPAND_ARGS`).
    Client,
    /// ProxyCommand (sshconnect.c `expand_proxy_command`).
    ProxyCommand,
}

impl Tokens {
    fn letters(self) -> &'static str {
        match self {
            Tokens::HostName => "h",
            Tokens::Client => "CdhijkLlnpru",
            Tokens::ProxyCommand => "hknpr",
        }
    }

    /// `%C %d ... and %%`, for messages.
    fn list(self) -> String {
        let mut s: String = self.letters().chars().map(|c| format!("%{c} ")).collect();
        s.push_str("and %%");
        s
    }
}

/// OpenSSH `percent_dollar_expand`: `%X` → `lookup(X)` for the letters `tokens`
/// allows, `%%` → `%`, and with `dollar` `${VAR}` → its value. Err carries OpenSSH's
/// words for the first problem (an unknown token, a `%` at the end, an unset or
/// malformed variable) and what the keyword allows.
pub(super) fn expand(
    s: &str,
    tokens: Tokens,
    dollar: bool,
    lookup: impl Fn(char) -> String,
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        if dollar && c == '$' && rest.starts_with('{') {
            let (value, after) = env_var(&rest[1..])?;
            out.push_str(&value);
            rest = after;
            continue;
        }
        if c != '%' {
            out.push(c);
            continue;
        }
        let Some(t) = rest.chars().next() else {
            return Err("invalid format (a % ends the value: write %% for a percent sign)".into());
        };
        rest = &rest[t.len_utf8()..];
        if t == '%' {
            out.push('%');
        } else if tokens.letters().contains(t) {
            out.push_str(&lookup(t));
        } else {
            return Err(format!(
                "unknown key %{t} (this keyword expands {})",
                tokens.list()
            ));
        }
    }
    Ok(out)
}

/// `VAR}rest` after a `${`: the variable's value and the rest, or OpenSSH's complaint.
fn env_var(s: &str) -> Result<(String, &str), String> {
    let Some(end) = s.find('}') else {
        return Err(format!("environment variable '{s}' missing closing '}}'"));
    };
    let name = &s[..end];
    if name.is_empty() {
        return Err("zero-length environment variable".into());
    }
    match std::env::var(name) {
        Ok(v) => Ok((v, &s[end + 1..])),
        Err(_) => Err(format!(
            "env var ${{{name}}} has no value (set it in nexus's environment, or remove it)"
        )),
    }
}

/// HostName with `%h` (= alias) and `%%` expanded.
pub(super) fn expand_hostname(h: &str, alias: &str) -> Result<String, String> {
    expand(h, Tokens::HostName, false, |_| alias.to_string())
}

/// The values the `%` tokens of IdentityFile / UserKnownHostsFile stand for.
pub(super) struct ExpandCtx<'a> {
    pub(super) env: &'a Env,
    pub(super) hostname: &'a str,
    pub(super) port: u16,
    pub(super) ruser: &'a str,
    pub(super) alias: &'a str,
    /// HostKeyAlias, else the alias.
    pub(super) key_alias: &'a str,
    /// The last ProxyJump hop's host, or empty.
    pub(super) jump_host: &'a str,
}

impl ExpandCtx<'_> {
    /// `~`, then the client `%` tokens and `${VAR}`, as ssh expands a file name.
    pub(super) fn expand_path(&self, p: &str) -> Result<String, String> {
        let t = userenv::expand_tilde(p);
        let local = local_hostname();
        expand(&t, Tokens::Client, true, |c| match c {
            'C' => self.connection_hash(&local),
            'd' => self.env.home.clone(),
            'h' => self.hostname.to_string(),
            'i' => userenv::uid().to_string(),
            'j' => self.jump_host.to_string(),
            'k' => self.key_alias.to_string(),
            'L' => local.split('.').next().unwrap_or_default().to_string(),
            'l' => local.clone(),
            'n' => self.alias.to_string(),
            'p' => self.port.to_string(),
            'r' => self.ruser.to_string(),
            _ => self.env.local_user.clone(), // 'u'
        })
    }

    /// `%C`: SHA-1 in hex of local host, host, port, user and jump host (OpenSSH 9.6+;
    /// the same as 9.2's without a ProxyJump).
    fn connection_hash(&self, local: &str) -> String {
        use sha1::{Digest, Sha1};
        let mut h = Sha1::new();
        for part in [
            local,
            self.hostname,
            &self.port.to_string(),
            self.ruser,
            self.jump_host,
        ] {
            h.update(part.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// ProxyCommand with its tokens expanded (`%h %k %n %p %r %%`), as ssh runs it.
    pub(super) fn expand_command(&self, cmd: &str) -> Result<String, String> {
        expand(cmd, Tokens::ProxyCommand, false, |c| match c {
            'h' => self.hostname.to_string(),
            'k' => self.key_alias.to_string(),
            'n' => self.alias.to_string(),
            'p' => self.port.to_string(),
            _ => self.ruser.to_string(), // 'r'
        })
    }
}

/// OpenSSH `is_addr`: addresses are not lowercased.
pub(super) fn is_addr(name: &str) -> bool {
    if name.contains(['%', ':']) || name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return true;
    }
    crate::sys::is_numeric_address(name)
}
