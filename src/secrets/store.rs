//! The store in `.nexus/secrets.enc`: opened with a master key (the key check tells a
//! wrong key from a changed file; the seal catches a removed, added or truncated entry;
//! each value's tag catches a changed or moved value, named in the error), read one
//! value at a time, changed, and written atomically (a temporary file in the same
//! directory, fsync, rename; 0600). Must not: prompt, print, or keep a decrypted value.

use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::crypto::{self, Keys};
use super::format::{self, Doc, Entry, Kdf, ParseError};
use super::key::{MasterKey, Source};
use crate::error::{did_you_mean, Error};

/// Where a project keeps its store, relative to the project root.
pub const STORE: &str = ".nexus/secrets.enc";

/// Values shorter than this are refused: masking them would hide ordinary text.
pub const MIN_VALUE: usize = 4;
/// Longest value, in bytes.
pub const MAX_VALUE: usize = 64 * 1024;

/// The store of the project rooted at `root`.
pub fn store_path(root: &Path) -> PathBuf {
    root.join(STORE)
}

/// An open store: its entries (values still encrypted) and the keys to read them.
pub struct Store {
    path: PathBuf,
    kdf: Kdf,
    keys: Keys,
    entries: Vec<Entry>,
    source: Source,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("names", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

impl Store {
    /// A new, empty store at `path` (refused when a file is there), written at once.
    pub fn create(path: &Path, key: &MasterKey) -> Result<Store, Error> {
        must_not_exist(path)?;
        let (m, t, p) = Kdf::DEFAULT;
        let salt = crypto::random().map_err(Error::usage)?;
        let kdf = Kdf { m, t, p, salt };
        let master = key.key_for(&kdf)?;
        let store = Store {
            path: path.to_path_buf(),
            keys: Keys::derive(&master, &kdf.salt),
            kdf,
            entries: Vec::new(),
            source: key.source().clone(),
        };
        store.save()?;
        Ok(store)
    }

    /// Open the store at `path` with `key`, checking the key, every entry's place in
    /// the file (the seal) and, when the seal does not match, each entry.
    pub fn open(path: &Path, key: &MasterKey) -> Result<Store, Error> {
        let text = read(path)?;
        let doc = format::parse(&text).map_err(|e| parse_error(path, e))?;
        let master = key.key_for(&doc.kdf)?;
        let keys = Keys::derive(&master, &doc.kdf.salt);
        if !keys.check_ok(&doc.check) {
            return Err(wrong_key(path, key.source()));
        }
        let sealed = &text.as_bytes()[..doc.sealed_len];
        if !keys.seal_ok(sealed, &doc.seal) {
            return Err(broken_seal(path, &keys, &doc));
        }
        let Doc { kdf, entries, .. } = doc;
        Ok(Store {
            path: path.to_path_buf(),
            kdf,
            keys,
            entries,
            source: key.source().clone(),
        })
    }

    /// The names in the store at `path`, read without a key (nothing is verified): for
    /// checks such as "is this secret known" before anything asks for a key.
    pub fn names_only(path: &Path) -> Result<Vec<String>, Error> {
        Ok(Store::listing(path)?.into_iter().map(|(n, _)| n).collect())
    }

    /// Names and dates (when each was last set) of the store at `path`, without a key.
    pub fn listing(path: &Path) -> Result<Vec<(String, String)>, Error> {
        let text = read(path)?;
        let doc = format::parse(&text).map_err(|e| parse_error(path, e))?;
        Ok(doc
            .entries
            .into_iter()
            .map(|e| (e.name, e.updated))
            .collect())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names, in the file's order (sorted when nexus wrote it).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.iter().any(|e| e.name == name)
    }

    /// The value of `name`, decrypted; wiped when the caller drops it.
    pub fn get(&self, name: &str) -> Result<Zeroizing<String>, Error> {
        let e = self.entry(name)?;
        let bytes = self
            .keys
            .decrypt(name, &e.key, &e.value)
            .ok_or_else(|| not_decrypting(&self.path, &[e]))?;
        match std::str::from_utf8(&bytes) {
            Ok(s) => Ok(Zeroizing::new(s.to_string())),
            Err(_) => Err(not_decrypting(&self.path, &[e])),
        }
    }

    /// Set `name` to `value` (a new data key each time). Not written until `save`.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), Error> {
        format::check_name(name).map_err(Error::usage)?;
        check_value(name, value)?;
        let (key, value) = self
            .keys
            .encrypt(name, value.as_bytes())
            .map_err(Error::usage)?;
        let entry = Entry {
            name: name.to_string(),
            updated: crate::timefmt::rfc3339(std::time::SystemTime::now()),
            key,
            value,
            line: 0,
        };
        match self.entries.iter_mut().find(|e| e.name == name) {
            Some(e) => *e = entry,
            None => self.entries.push(entry),
        }
        Ok(())
    }

    /// Remove `name`. Not written until `save`.
    pub fn delete(&mut self, name: &str) -> Result<(), Error> {
        self.entry(name)?;
        self.entries.retain(|e| e.name != name);
        Ok(())
    }

    /// Wrap every data key under `new` instead (values are not re-encrypted). A new salt,
    /// so a passphrase gives a new key even if it is the old one.
    pub fn rotate(&mut self, new: &MasterKey) -> Result<(), Error> {
        let (m, t, p) = Kdf::DEFAULT;
        let kdf = Kdf {
            m,
            t,
            p,
            salt: crypto::random().map_err(Error::usage)?,
        };
        let master = new.key_for(&kdf)?;
        let keys = Keys::derive(&master, &kdf.salt);
        let mut entries = self.entries.clone();
        for e in &mut entries {
            e.key = self
                .keys
                .rewrap(&keys, &e.name, &e.key)
                .ok_or_else(|| not_decrypting(&self.path, &[&*e]))?;
        }
        self.entries = entries;
        self.kdf = kdf;
        self.keys = keys;
        self.source = new.source().clone();
        Ok(())
    }

    /// Write the store (sealed) over its file, atomically.
    pub fn save(&self) -> Result<(), Error> {
        let body = format::body(&self.kdf, &self.keys.check_tag(), &self.entries);
        let seal = self.keys.seal(body.as_bytes());
        write_atomic(&self.path, (body + &format::seal_line(&seal)).as_bytes())
    }

    /// Copy the file as it is now to `secrets.enc.TIME.bak` beside it; that path.
    pub fn backup(&self) -> Result<PathBuf, Error> {
        let bytes = std::fs::read(&self.path)
            .map_err(|e| Error::io("cannot read the secret store", &self.path, &e))?;
        let stamp = crate::timefmt::compact(std::time::SystemTime::now());
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        let backup = self.path.with_file_name(format!("{name}.{stamp}.bak"));
        write_atomic(&backup, &bytes)?;
        Ok(backup)
    }

    fn entry(&self, name: &str) -> Result<&Entry, Error> {
        self.entries.iter().find(|e| e.name == name).ok_or_else(|| {
            let names = self.entries.iter().map(|e| e.name.as_str());
            let mut e = Error::usage(format!("no secret `{name}` in {}", self.path.display()));
            if let Some(h) = did_you_mean(name, names) {
                e = e.with_help(h);
            }
            e.with_help("`nexus secret list` shows the names")
        })
    }
}

/// Refuse to make a store where a file is.
pub fn must_not_exist(path: &Path) -> Result<(), Error> {
    if !path.exists() {
        return Ok(());
    }
    Err(Error::usage(format!(
        "a secret store already exists at {}",
        path.display()
    ))
    .with_help(
        "`nexus secret list` shows what it holds; `nexus secret rotate-key` changes its key",
    ))
}

/// Make the store's directory (0700) when it is missing.
pub fn ensure_dir(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = parent(path);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io("cannot create the directory", dir, &e))
}

/// Hold the store's directory locked while a command reads and rewrites the store, so
/// two `nexus secret set` at once do not lose one of the values.
pub fn lock(path: &Path) -> Result<std::fs::File, Error> {
    let dir = parent(path);
    let f = std::fs::File::open(dir).map_err(|e| Error::io("cannot open", dir, &e))?;
    crate::sys::lock_exclusive(&f).map_err(|e| Error::io("cannot lock", dir, &e))?;
    Ok(f)
}

fn check_value(name: &str, value: &str) -> Result<(), Error> {
    if value.chars().count() < MIN_VALUE {
        return Err(Error::usage(format!(
            "the value of `{name}` is shorter than {MIN_VALUE} characters; nothing was changed"
        ))
        .with_help("nexus replaces every secret's value with [secret NAME] in what it prints: a value this short would hide ordinary text"));
    }
    if value.len() > MAX_VALUE {
        return Err(Error::usage(format!(
            "the value of `{name}` is longer than {} KiB; nothing was changed",
            MAX_VALUE / 1024
        ))
        .with_help("keep large files encrypted elsewhere and store their key here"));
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn read(path: &Path) -> Result<String, Error> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| parse_error(path, ParseError::Bad(0, "it is not UTF-8 text".to_string()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::usage(format!(
            "no secret store at {}",
            path.display()
        ))
        .with_help("create one with `nexus secret init`")),
        Err(e) => Err(Error::io("cannot read the secret store", path, &e)),
    }
}

const RESTORE: &str =
    "restore it from version control (`git checkout -- .nexus/secrets.enc`) or from a backup";

fn parse_error(path: &Path, e: ParseError) -> Error {
    let p = path.display();
    match e {
        ParseError::Truncated => Error::usage(format!(
            "the secret store {p} is truncated: it ends before its seal line"
        ))
        .with_help(RESTORE),
        ParseError::Newer(v) => Error::usage(format!(
            "the secret store {p} is in format {v}; this nexus reads format {}",
            format::VERSION
        ))
        .with_help("upgrade nexus"),
        ParseError::Conflict(n) => Error::usage(format!(
            "the secret store {p} has git conflict markers (line {n})"
        ))
        .with_help("take one side's file (`git checkout --ours .nexus/secrets.enc`, or --theirs), then set the other side's secrets again with `nexus secret set`"),
        ParseError::Bad(0, what) => {
            Error::usage(format!("the secret store {p} is damaged: {what}")).with_help(RESTORE)
        }
        ParseError::Bad(n, what) => {
            Error::usage(format!("the secret store {p} is damaged: line {n}: {what}"))
                .with_help(RESTORE)
        }
    }
}

fn wrong_key(path: &Path, source: &Source) -> Error {
    let e = Error::usage(format!(
        "{source} does not open the secret store {}: it was made with another key",
        path.display()
    ));
    match source {
        Source::Passphrase => e.with_help("type the passphrase the store was made with"),
        _ => e.with_help(
            "use the key the store was made with, or the one `nexus secret rotate-key` last gave it",
        ),
    }
}

fn not_decrypting(path: &Path, bad: &[&Entry]) -> Error {
    let names: Vec<String> = bad.iter().map(|e| format!("`{}`", e.name)).collect();
    let lines: Vec<String> = bad.iter().map(|e| e.line.to_string()).collect();
    let (what, verb) = if bad.len() == 1 {
        ("secret", "does")
    } else {
        ("secrets", "do")
    };
    Error::usage(format!(
        "{what} {} in {} (line {}) {verb} not decrypt: changed, or moved from another name",
        names.join(", "),
        path.display(),
        lines.join(", ")
    ))
    .with_help(RESTORE)
    .with_help(format!("or set it again: nexus secret set {}", bad[0].name))
}

/// The seal does not match: name the entries that do not decrypt, else the list.
fn broken_seal(path: &Path, keys: &Keys, doc: &Doc) -> Error {
    let bad: Vec<&Entry> = doc
        .entries
        .iter()
        .filter(|e| keys.decrypt(&e.name, &e.key, &e.value).is_none())
        .collect();
    if !bad.is_empty() {
        return not_decrypting(path, &bad);
    }
    Error::usage(format!(
        "the secret store {} was changed outside nexus: its seal does not match (a secret was removed, added, renamed or redated)",
        path.display()
    ))
    .with_help(RESTORE)
}

/// Write `bytes` to `path` through a temporary file in the same directory: fsync,
/// rename, fsync the directory. The file is 0600; the directory is made 0700 if missing.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    ensure_dir(path)?;
    let dir = parent(path);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path))
        .and_then(|()| std::fs::File::open(dir)?.sync_all());
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("cannot write", path, &e)
    })
}
