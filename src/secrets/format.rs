//! The text of `.nexus/secrets.enc` (docs/secrets.md, "The file"): a header line with the
//! format version, the key derivation's parameters and salt, a key check, one line per
//! secret (name and date plain, wrapped data key and value in base64), and a seal over
//! every byte before it. One line per secret, sorted by name, so a diff shows which
//! secret changed. Must not: encrypt, decrypt or verify anything (crypto.rs does).

use base64ct::{Base64, Encoding};

pub const MAGIC: &str = "nexus-secrets";
pub const VERSION: u32 = 1;

const COMMENT: &str = "\
# nexus secret store (docs/secrets.md): names and dates are plain, each value is
# encrypted on its own. Change it with `nexus secret`; the seal line covers the rest.
";

/// Argon2id's parameters and the store's salt (also the salt of every derived key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kdf {
    /// Memory, KiB.
    pub m: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
    pub salt: [u8; 16],
}

impl Kdf {
    /// What a new store uses: 64 MiB, 3 passes, 1 lane (RFC 9106's second choice).
    pub const DEFAULT: (u32, u32, u32) = (64 * 1024, 3, 1);
    /// Largest parameters read from a file: a changed header must not make nexus
    /// allocate gigabytes or spin for minutes.
    const MAX: (u32, u32, u32) = (1024 * 1024, 64, 16);
}

/// One secret as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// When it was last set, RFC 3339 UTC.
    pub updated: String,
    /// The data key, encrypted with the store's wrapping key: nonce, ciphertext, tag.
    pub key: Vec<u8>,
    /// The value, encrypted with the data key: nonce, ciphertext, tag.
    pub value: Vec<u8>,
    /// Line in the file (1-based; 0 for an entry not read from a file).
    pub line: usize,
}

/// A parsed store.
#[derive(Debug, Clone)]
pub struct Doc {
    pub kdf: Kdf,
    pub check: Vec<u8>,
    pub entries: Vec<Entry>,
    pub seal: Vec<u8>,
    /// Bytes of the file the seal covers (everything before the seal line).
    pub sealed_len: usize,
}

/// Why a file is not a store this version can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The file ends before its seal line, or inside a line.
    Truncated,
    /// Written by a newer nexus.
    Newer(u32),
    /// A git merge left conflict markers.
    Conflict(usize),
    /// Line N is not what it should be.
    Bad(usize, String),
}

/// Parse the whole text of a store.
pub fn parse(text: &str) -> Result<Doc, ParseError> {
    let markers = ["<<<<<<<", "=======", ">>>>>>>"];
    if let Some(n) = text
        .lines()
        .position(|l| markers.iter().any(|m| l.starts_with(m)))
    {
        return Err(ParseError::Conflict(n + 1));
    }
    if !text.ends_with('\n') {
        return Err(ParseError::Truncated);
    }
    let mut lines = Lines::new(text);
    let (n, header) = lines.next_word_line().ok_or(ParseError::Truncated)?;
    let version = parse_magic(n, &header)?;
    if version > VERSION {
        return Err(ParseError::Newer(version));
    }
    let (n, kdf) = lines.next_word_line().ok_or(ParseError::Truncated)?;
    let kdf = parse_kdf(n, &kdf)?;
    let (n, check) = lines.next_word_line().ok_or(ParseError::Truncated)?;
    let check = match check.as_slice() {
        ["check", c] => b64(n, c, "the key check")?,
        _ => return Err(bad(n, "expected `check KEYCHECK`")),
    };
    let mut entries: Vec<Entry> = Vec::new();
    loop {
        let start = lines.at;
        let (n, words) = lines.next_word_line().ok_or(ParseError::Truncated)?;
        match words.as_slice() {
            ["secret", rest @ ..] => {
                let e = parse_entry(n, rest)?;
                if entries.iter().any(|x| x.name == e.name) {
                    return Err(bad(n, &format!("secret `{}` is listed twice", e.name)));
                }
                entries.push(e);
            }
            ["seal", s] => {
                let seal = b64(n, s, "the seal")?;
                if lines.next_word_line().is_some() {
                    return Err(bad(n + 1, "text after the seal line"));
                }
                return Ok(Doc {
                    kdf,
                    check,
                    entries,
                    seal,
                    sealed_len: start,
                });
            }
            _ => {
                return Err(bad(
                    n,
                    "expected `secret NAME DATE KEY VALUE` or `seal SEAL`",
                ))
            }
        }
    }
}

/// The names in a store, read without any key (nothing is verified).
pub fn names(text: &str) -> Result<Vec<String>, ParseError> {
    Ok(parse(text)?.entries.into_iter().map(|e| e.name).collect())
}

/// The text the seal covers: header, key check and entries (sorted by name).
pub fn body(kdf: &Kdf, check: &[u8], entries: &[Entry]) -> String {
    let mut s = String::from(COMMENT);
    s += &format!("{MAGIC} {VERSION}\n");
    s += &format!(
        "kdf argon2id m={} t={} p={} salt={}\n",
        kdf.m,
        kdf.t,
        kdf.p,
        Base64::encode_string(&kdf.salt)
    );
    s += &format!("check {}\n", Base64::encode_string(check));
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for e in sorted {
        s += &format!(
            "secret {} {} {} {}\n",
            e.name,
            e.updated,
            Base64::encode_string(&e.key),
            Base64::encode_string(&e.value)
        );
    }
    s
}

/// The last line: the seal of `body`.
pub fn seal_line(seal: &[u8]) -> String {
    format!("seal {}\n", Base64::encode_string(seal))
}

/// A secret's name: letters, digits, `_`, `-` and `.`, starting with a letter or `_`, at
/// most 128 characters. Err says what is wrong.
pub fn check_name(name: &str) -> Result<(), String> {
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if name.is_empty() {
        Err("a secret's name cannot be empty".into())
    } else if name.len() > 128 {
        Err(format!(
            "secret name `{name}` is longer than 128 characters"
        ))
    } else if !first_ok || !rest_ok {
        Err(format!("`{name}` is not a secret name: use letters, digits, `_`, `-` and `.`, starting with a letter or `_`"))
    } else {
        Ok(())
    }
}

/// Lines with their 1-based numbers and byte offsets; comments and blank lines skipped.
struct Lines<'a> {
    text: &'a str,
    /// Byte offset of the next line.
    at: usize,
    line: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        Lines {
            text,
            at: 0,
            line: 0,
        }
    }

    /// The next line that is not a comment or blank, split in words.
    fn next_word_line(&mut self) -> Option<(usize, Vec<&'a str>)> {
        while self.at < self.text.len() {
            let rest = &self.text[self.at..];
            let len = rest.find('\n').map_or(rest.len(), |i| i + 1);
            let line = rest[..len].trim_end_matches('\n');
            self.at += len;
            self.line += 1;
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            return Some((self.line, line.split(' ').collect()));
        }
        None
    }
}

fn bad(line: usize, what: &str) -> ParseError {
    ParseError::Bad(line, what.to_string())
}

fn parse_magic(n: usize, words: &[&str]) -> Result<u32, ParseError> {
    match words {
        [MAGIC, v] => v
            .parse::<u32>()
            .map_err(|_| bad(n, &format!("`{v}` is not a format version"))),
        _ => Err(bad(
            n,
            "not a nexus secret store (no `nexus-secrets 1` line)",
        )),
    }
}

fn parse_kdf(n: usize, words: &[&str]) -> Result<Kdf, ParseError> {
    let expected = "expected `kdf argon2id m=KIB t=PASSES p=LANES salt=SALT`";
    let ["kdf", "argon2id", m, t, p, salt] = words else {
        return Err(bad(n, expected));
    };
    let num = |w: &str, key: &str, max: u32| -> Result<u32, ParseError> {
        w.strip_prefix(key)
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|v| (1..=max).contains(v))
            .ok_or_else(|| bad(n, &format!("{expected} (argon2id's {key} out of range)")))
    };
    let (max_m, max_t, max_p) = Kdf::MAX;
    let kdf_salt = salt.strip_prefix("salt=").ok_or_else(|| bad(n, expected))?;
    let salt: [u8; 16] = b64(n, kdf_salt, "the salt")?
        .try_into()
        .map_err(|_| bad(n, "the salt is not 16 bytes"))?;
    Ok(Kdf {
        m: num(m, "m=", max_m)?,
        t: num(t, "t=", max_t)?,
        p: num(p, "p=", max_p)?,
        salt,
    })
}

fn parse_entry(n: usize, words: &[&str]) -> Result<Entry, ParseError> {
    let [name, updated, key, value] = words else {
        return Err(bad(n, "expected `secret NAME DATE KEY VALUE`"));
    };
    check_name(name).map_err(|m| bad(n, &m))?;
    Ok(Entry {
        name: name.to_string(),
        updated: updated.to_string(),
        key: b64(n, key, &format!("the key of `{name}`"))?,
        value: b64(n, value, &format!("the value of `{name}`"))?,
        line: n,
    })
}

fn b64(n: usize, text: &str, what: &str) -> Result<Vec<u8>, ParseError> {
    Base64::decode_vec(text).map_err(|_| bad(n, &format!("{what} is not base64")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> String {
        let kdf = Kdf {
            m: 8,
            t: 1,
            p: 1,
            salt: [7; 16],
        };
        let e = Entry {
            name: "DB".into(),
            updated: "2025-01-01T00:00:00Z".into(),
            key: vec![1; 60],
            value: vec![2; 40],
            line: 0,
        };
        body(&kdf, &[3; 32], &[e]) + &seal_line(&[4; 32])
    }

    #[test]
    fn a_written_store_reads_back() {
        let text = doc();
        let d = parse(&text).unwrap();
        assert_eq!(d.entries[0].name, "DB");
        assert_eq!(d.entries[0].line, 6);
        assert_eq!(d.seal, vec![4; 32]);
        assert_eq!(&text[d.sealed_len..], seal_line(&[4; 32]));
        assert_eq!(d.kdf.m, 8);
    }

    #[test]
    fn truncation_anywhere_is_seen() {
        let text = doc();
        for cut in 0..text.len() {
            assert!(parse(&text[..cut]).is_err(), "cut at {cut} parsed");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("DB_PASSWORD").is_ok());
        assert!(check_name("api.key-2").is_ok());
        assert!(check_name("2fa").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("").is_err());
    }
}
