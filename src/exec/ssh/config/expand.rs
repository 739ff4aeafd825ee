//! Expansion of values: `%` tokens, `~`, `${VAR}`, and the local facts they stand for
//! (the local user and home directory from `userenv`, the host name); OpenSSH's `is_addr`.
//! Must not: decide which value applies (eval.rs) or read files.

use std::ffi::CString;

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
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its whole length.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// `%h` (= alias) and `%%` in HostName.
pub(super) fn expand_hostname(h: &str, alias: &str) -> String {
    percent_expand(h, |c| (c == 'h').then(|| alias.to_string()))
}

/// `%X` → `lookup(X)`, `%%` → `%`; unknown tokens are left as written.
fn percent_expand(s: &str, lookup: impl Fn(char) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.peek().copied() {
            Some('%') => {
                it.next();
                out.push('%');
            }
            Some(t) => match lookup(t) {
                Some(v) => {
                    it.next();
                    out.push_str(&v);
                }
                None => out.push('%'),
            },
            None => out.push('%'),
        }
    }
    out
}

/// `${VAR}` → its value when set; otherwise left as written.
fn dollar_expand(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) => match std::env::var(&after[..j]) {
                Ok(v) if !after[..j].is_empty() => {
                    out.push_str(&v);
                    rest = &after[j + 1..];
                }
                _ => {
                    out.push_str("${");
                    rest = after;
                }
            },
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The values the `%` tokens of IdentityFile / UserKnownHostsFile stand for.
pub(super) struct ExpandCtx<'a> {
    pub(super) env: &'a Env,
    pub(super) hostname: &'a str,
    pub(super) port: u16,
    pub(super) ruser: &'a str,
    pub(super) alias: &'a str,
}

impl ExpandCtx<'_> {
    pub(super) fn expand_path(&self, p: &str) -> String {
        let t = userenv::expand_tilde(p);
        let t = percent_expand(&t, |c| match c {
            'h' => Some(self.hostname.to_string()),
            'p' => Some(self.port.to_string()),
            'r' => Some(self.ruser.to_string()),
            'u' => Some(self.env.local_user.clone()),
            'n' => Some(self.alias.to_string()),
            'd' => Some(self.env.home.clone()),
            'i' => Some(userenv::uid().to_string()),
            'l' => Some(local_hostname()),
            'L' => {
                let h = local_hostname();
                Some(h.split('.').next().unwrap_or_default().to_string())
            }
            _ => None,
        });
        dollar_expand(&t)
    }
}

/// OpenSSH `is_addr`: addresses are not lowercased.
pub(super) fn is_addr(name: &str) -> bool {
    if name.contains(['%', ':']) || name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return true;
    }
    let Ok(c) = CString::new(name) else {
        return false;
    };
    let Ok(port) = CString::new("22") else {
        return false;
    };
    // SAFETY: hints is a valid zeroed addrinfo; res is freed when set.
    unsafe {
        let mut hints: libc::addrinfo = std::mem::zeroed();
        hints.ai_family = libc::AF_UNSPEC;
        hints.ai_socktype = libc::SOCK_STREAM;
        hints.ai_flags = libc::AI_NUMERICHOST | libc::AI_NUMERICSERV;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        if libc::getaddrinfo(c.as_ptr(), port.as_ptr(), &hints, &mut res) != 0 {
            return false;
        }
        if res.is_null() {
            return false;
        }
        let single = (*res).ai_next.is_null();
        libc::freeaddrinfo(res);
        single
    }
}
