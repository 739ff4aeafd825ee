//! known_hosts as OpenSSH reads it: which keys a file holds for `host` or `[host]:port`,
//! plain names with the patterns `*` `?` `!`, hashed names (`|1|salt|hash`, HMAC-SHA1),
//! `@revoked` and `@cert-authority` markers, and the line of every entry, so a changed key
//! can be reported with its file:line. Parsed files are cached per run while unchanged.
//! Must not: write (connect.rs appends new keys), or implement crypto itself (HMAC-SHA1
//! comes from the RustCrypto `hmac` and `sha1` crates).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use super::base64;
use super::pattern::{match_list, ListMatch};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Names {
    /// The comma-separated name patterns, lowercased.
    Patterns(String),
    Hashed {
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// 1-based line in the file.
    line: usize,
    revoked: bool,
    names: Names,
    /// The key blob (its first field is the key type).
    key: Vec<u8>,
}

/// The entries of one known_hosts file.
#[derive(Debug, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
}

/// What the file says about the key a server presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Match,
    /// A key of the same type is known for the host, and it differs: line of the first.
    Changed {
        line: usize,
    },
    /// The key is marked `@revoked` on this line.
    Revoked {
        line: usize,
    },
    /// No key of this type is known for the host.
    Unknown,
}

/// The known_hosts name of a host: `host`, or `[host]:port` off port 22.
pub fn known_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The key type at the start of an SSH key blob (`ssh-ed25519`, `ssh-rsa`, ...).
pub fn blob_type(blob: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    std::str::from_utf8(blob.get(4..4 + len)?).ok()
}

impl KnownHosts {
    pub fn parse(text: &str) -> KnownHosts {
        let entries = text
            .lines()
            .enumerate()
            .filter_map(|(i, l)| parse_line(i + 1, l))
            .collect();
        KnownHosts { entries }
    }

    /// `path`, parsed once per run and again only when its size or mtime changed.
    /// A missing or unreadable file has no entries.
    pub fn load(path: &Path) -> Arc<KnownHosts> {
        type Cache = HashMap<PathBuf, (Option<(u64, SystemTime)>, Arc<KnownHosts>)>;
        static CACHE: Mutex<Option<Cache>> = Mutex::new(None);
        let stamp = std::fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.len(), m.modified().ok()?)));
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        let cache = cache.get_or_insert_with(HashMap::new);
        if let Some((s, kh)) = cache.get(path) {
            if *s == stamp && stamp.is_some() {
                return kh.clone();
            }
        }
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let kh = Arc::new(KnownHosts::parse(&text));
        cache.insert(path.to_path_buf(), (stamp, kh.clone()));
        kh
    }

    fn for_host<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries
            .iter()
            .filter(move |e| names_match(&e.names, name))
    }

    /// Key types known for the host (not revoked), in file order, without repeats.
    pub fn key_types(&self, host: &str, port: u16) -> Vec<String> {
        let name = known_name(host, port);
        let mut out: Vec<String> = Vec::new();
        for e in self.for_host(&name).filter(|e| !e.revoked) {
            if let Some(t) = blob_type(&e.key) {
                if !out.iter().any(|x| x == t) {
                    out.push(t.to_string());
                }
            }
        }
        out
    }

    pub fn check(&self, host: &str, port: u16, key: &[u8]) -> Verdict {
        let name = known_name(host, port);
        let kind = blob_type(key);
        let mut changed = None;
        for e in self.for_host(&name) {
            if e.revoked {
                if e.key == key {
                    return Verdict::Revoked { line: e.line };
                }
                continue;
            }
            if e.key == key {
                return Verdict::Match;
            }
            if changed.is_none() && kind.is_some() && blob_type(&e.key) == kind {
                changed = Some(e.line);
            }
        }
        match changed {
            Some(line) => Verdict::Changed { line },
            None => Verdict::Unknown,
        }
    }
}

fn parse_line(line: usize, text: &str) -> Option<Entry> {
    let mut fields = text.split_whitespace();
    let mut first = fields.next()?;
    if first.starts_with('#') {
        return None;
    }
    let mut revoked = false;
    if first.starts_with('@') {
        match first {
            "@revoked" => revoked = true,
            // Certificate authorities sign host certificates; nexus does not use them.
            _ => return None,
        }
        first = fields.next()?;
    }
    let _type_name = fields.next()?;
    let key = base64::decode(fields.next()?)?;
    let names = match first.strip_prefix("|1|") {
        Some(rest) => {
            let (salt, hash) = rest.split_once('|')?;
            Names::Hashed {
                salt: base64::decode(salt)?,
                hash: base64::decode(hash)?,
            }
        }
        None => Names::Patterns(first.to_ascii_lowercase()),
    };
    Some(Entry {
        line,
        revoked,
        names,
        key,
    })
}

fn names_match(names: &Names, name: &str) -> bool {
    match names {
        Names::Hashed { salt, hash } => hashed_name_matches(salt, hash, name),
        // A negated pattern that matches rules the line out (OpenSSH match_hostname).
        Names::Patterns(list) => {
            match_list(&name.to_ascii_lowercase(), list, false) == ListMatch::Positive
        }
    }
}

/// Is `name` the name hashed into `|1|salt|hash` (HMAC-SHA1 keyed with the salt, as
/// `ssh-keygen -H` writes it)? The comparison is constant-time.
fn hashed_name_matches(salt: &[u8], hash: &[u8], name: &str) -> bool {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use sha1::Digest;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn sha1(data: &[u8]) -> Vec<u8> {
        Sha1::digest(data).to_vec()
    }

    fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(msg);
        mac.finalize().into_bytes().to_vec()
    }

    #[test]
    fn sha1_and_hmac_match_the_published_vectors() {
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(hex(&sha1(long)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
        // RFC 2202 test cases 1, 2 and 6 (a key longer than the block is hashed first).
        assert_eq!(
            hex(&hmac_sha1(&[0x0b; 20], b"Hi There")),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        assert_eq!(
            hex(&hmac_sha1(b"Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex(&hmac_sha1(
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
        // The hashed-name check itself: right name, wrong name, truncated hash.
        let salt = [3u8; 20];
        let hash = hmac_sha1(&salt, b"web1");
        assert!(hashed_name_matches(&salt, &hash, "web1"));
        assert!(!hashed_name_matches(&salt, &hash, "web2"));
        assert!(!hashed_name_matches(&salt, &hash[..19], "web1"));
    }

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const ED2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIBfLv5ZzQvwQf4nbGwc1oJmE7KwTjCjCTy4lZv2D0nLV";
    const EC: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHLeJa+U7vT+2wPJDwqLkYgSA1iQe1p8Q0S5i0Yl6C8k3dSb9wXQJ0Jb7o1t7S3cE5h0WqE0pX7l6bqXn1zQ2q0=";

    #[test]
    fn entries_match_by_name_port_pattern_and_hash() {
        // |1|salt|hash of "[127.0.0.1]:2222", made with `ssh-keygen -H`'s scheme.
        let salt = [7u8; 20];
        let hash = hmac_sha1(&salt, b"[127.0.0.1]:2222");
        let hashed = format!("|1|{}|{}", base64::encode(&salt), base64::encode(&hash));
        let text = format!(
            "# comment\n\
             web1,web2 ssh-ed25519 {ED}\n\
             *.example.com,!bad.example.com ecdsa-sha2-nistp256 {EC}\n\
             {hashed} ssh-ed25519 {ED2}\n\
             @revoked web3 ssh-ed25519 {ED}\n\
             @cert-authority * ssh-ed25519 {ED2}\n\
             garbage\n"
        );
        let kh = KnownHosts::parse(&text);
        let ed = base64::decode(ED).unwrap();
        let ed2 = base64::decode(ED2).unwrap();
        let ec = base64::decode(EC).unwrap();
        assert_eq!(kh.check("web2", 22, &ed), Verdict::Match);
        assert_eq!(kh.check("WEB1", 22, &ed), Verdict::Match);
        assert_eq!(kh.check("web1", 2222, &ed), Verdict::Unknown);
        assert_eq!(kh.check("web1", 22, &ed2), Verdict::Changed { line: 2 });
        assert_eq!(kh.check("web1", 22, &ec), Verdict::Unknown);
        assert_eq!(kh.check("a.example.com", 22, &ec), Verdict::Match);
        assert_eq!(kh.check("bad.example.com", 22, &ec), Verdict::Unknown);
        assert_eq!(kh.check("127.0.0.1", 2222, &ed2), Verdict::Match);
        assert_eq!(
            kh.check("127.0.0.1", 2222, &ed),
            Verdict::Changed { line: 4 }
        );
        assert_eq!(kh.check("127.0.0.1", 22, &ed2), Verdict::Unknown);
        assert_eq!(kh.check("web3", 22, &ed), Verdict::Revoked { line: 5 });
        assert_eq!(kh.key_types("a.example.com", 22), ["ecdsa-sha2-nistp256"]);
        assert_eq!(kh.key_types("web1", 22), ["ssh-ed25519"]);
        assert!(kh.key_types("web3", 22).is_empty());
        assert_eq!(blob_type(&ec), Some("ecdsa-sha2-nistp256"));
    }
}
