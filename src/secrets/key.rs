//! The master key, from the first source that exists (docs/secrets.md, "The master
//! key"): `NEXUS_MASTER_KEY`, then a key file (`--keyfile`, `NEXUS_KEYFILE`, `[config]
//! secrets_keyfile`), then a passphrase typed on the terminal. A passphrase becomes a key
//! with the store's own Argon2id parameters, once per process. Every copy of a key or a
//! passphrase is wiped when dropped. Must not: print a key, or log one.

use std::io::{BufRead, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64ct::{Base64, Encoding};
use zeroize::Zeroizing;

use super::crypto::{self, Key};
use super::format::Kdf;
use crate::error::Error;

/// Where the master key came from (named in errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Env,
    KeyFile {
        path: PathBuf,
        /// `--keyfile`, `NEXUS_KEYFILE` or `[config] secrets_keyfile`.
        from: &'static str,
    },
    Passphrase,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Env => f.write_str("NEXUS_MASTER_KEY"),
            Source::KeyFile { path, from } => write!(f, "key file {} ({from})", path.display()),
            Source::Passphrase => f.write_str("the passphrase"),
        }
    }
}

/// Where key files may be named besides the environment.
#[derive(Debug, Clone, Default)]
pub struct KeyOptions {
    /// `--keyfile PATH`.
    pub keyfile: Option<PathBuf>,
    /// `[config] secrets_keyfile`, as written (`~` and relative paths allowed).
    pub config_keyfile: Option<String>,
    /// The project root (a relative `secrets_keyfile` is relative to it).
    pub root: PathBuf,
}

impl KeyOptions {
    /// The key file named, if any: `--keyfile`, else `NEXUS_KEYFILE`, else `[config]`.
    pub fn keyfile(&self) -> Option<(PathBuf, &'static str)> {
        if let Some(p) = &self.keyfile {
            return Some((p.clone(), "--keyfile"));
        }
        if let Some(p) = std::env::var_os("NEXUS_KEYFILE").filter(|v| !v.is_empty()) {
            return Some((PathBuf::from(p), "NEXUS_KEYFILE"));
        }
        let p = crate::userenv::expand_tilde_path(self.config_keyfile.as_deref()?);
        Some((self.root.join(p), "[config] secrets_keyfile"))
    }
}

enum Material {
    Key(Key),
    Passphrase {
        text: Zeroizing<String>,
        /// The key of the last store parameters it was derived for.
        derived: Mutex<Option<(Kdf, Key)>>,
    },
}

/// A master key, or a passphrase that becomes one for a store's parameters.
pub struct MasterKey {
    source: Source,
    material: Material,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.source)
    }
}

/// What the key is for: opening a store, or making a new one (a key file named but not
/// there yet is then created, a passphrase asked twice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Open,
    Create,
}

impl MasterKey {
    pub fn from_key(key: Key, source: Source) -> MasterKey {
        MasterKey {
            source,
            material: Material::Key(key),
        }
    }

    pub fn from_passphrase(text: Zeroizing<String>) -> MasterKey {
        MasterKey {
            source: Source::Passphrase,
            material: Material::Passphrase {
                text,
                derived: Mutex::new(None),
            },
        }
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The master key from the first source that exists, for the store at `store`.
    pub fn resolve(opts: &KeyOptions, store: &Path, purpose: Purpose) -> Result<MasterKey, Error> {
        if let Some(text) = std::env::var_os("NEXUS_MASTER_KEY").filter(|v| !v.is_empty()) {
            let text = Zeroizing::new(text.to_string_lossy().into_owned());
            let key = decode_key(&text).ok_or_else(|| {
                Error::usage(
                    "NEXUS_MASTER_KEY is not a master key: expected the base64 of 32 bytes",
                )
                .with_help("unset it to use a key file or the passphrase instead")
            })?;
            log::debug!("secrets: master key from NEXUS_MASTER_KEY");
            return Ok(MasterKey::from_key(key, Source::Env));
        }
        if let Some((path, from)) = opts.keyfile() {
            if purpose == Purpose::Create && !path.exists() {
                create_keyfile(&path)?;
                crate::error::note(format_args!(
                    "created key file {}: keep it safe, anyone who has it can read the secrets",
                    path.display()
                ));
            }
            let key = read_keyfile(&path, from)?;
            log::debug!("secrets: master key from {}", path.display());
            return Ok(MasterKey::from_key(key, Source::KeyFile { path, from }));
        }
        let Some(tty) = terminal() else {
            return Err(no_key(store));
        };
        let text = match purpose {
            Purpose::Open => ask(&tty, &format!("Passphrase for {}: ", store.display()))
                .ok_or_else(|| Error::usage("no passphrase given"))?,
            Purpose::Create => new_passphrase(&tty, store)?,
        };
        Ok(MasterKey::from_passphrase(text))
    }

    /// The 32-byte key for a store with these parameters (a passphrase is derived once
    /// per parameters and salt, and kept for the life of this value).
    pub(crate) fn key_for(&self, kdf: &Kdf) -> Result<Key, Error> {
        match &self.material {
            Material::Key(k) => Ok(k.clone()),
            Material::Passphrase { text, derived } => {
                let mut cache = derived.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((params, key)) = cache.as_ref() {
                    if params == kdf {
                        return Ok(key.clone());
                    }
                }
                log::debug!(
                    "secrets: deriving the master key (argon2id m={} t={} p={})",
                    kdf.m,
                    kdf.t,
                    kdf.p
                );
                let key = crypto::argon2id(text.as_bytes(), kdf).map_err(Error::usage)?;
                *cache = Some((kdf.clone(), key.clone()));
                Ok(key)
            }
        }
    }

    /// Whether `other` is the same key or passphrase (a rotation to it changes nothing).
    pub fn same_as(&self, other: &MasterKey) -> bool {
        match (&self.material, &other.material) {
            (Material::Key(a), Material::Key(b)) => a == b,
            (Material::Passphrase { text: a, .. }, Material::Passphrase { text: b, .. }) => a == b,
            _ => false,
        }
    }
}

/// The base64 of 32 bytes (surrounding blanks allowed).
pub fn decode_key(text: &str) -> Option<Key> {
    let mut buf = Zeroizing::new([0u8; 48]);
    let n = Base64::decode(text.trim(), &mut buf[..]).ok()?.len();
    let mut key = Zeroizing::new([0u8; 32]);
    (n == 32).then(|| {
        key.copy_from_slice(&buf[..32]);
        key
    })
}

fn read_keyfile(path: &Path, from: &str) -> Result<Key, Error> {
    use std::os::unix::fs::PermissionsExt;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => Zeroizing::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::usage(format!(
                "key file {} ({from}) does not exist",
                path.display()
            ))
            .with_help(format!(
                "point {from} at the store's key file, or make a new store with `nexus secret init --keyfile {}`",
                path.display()
            )));
        }
        Err(e) => return Err(Error::io("cannot read key file", path, &e)),
    };
    let key = decode_key(&text).ok_or_else(|| {
        Error::usage(format!(
            "key file {} ({from}) does not hold a master key: expected the base64 of 32 bytes",
            path.display()
        ))
        .with_help("`nexus secret init --keyfile NEW_PATH` writes a new key file")
    })?;
    let mode = std::fs::metadata(path).map_or(0, |m| m.permissions().mode());
    if mode & 0o077 != 0 {
        crate::error::warn(
            format_args!(
                "key file {} can be read by other users (mode {:04o})",
                path.display(),
                mode & 0o7777
            ),
            &[format!("chmod 600 {}", path.display())],
        );
    }
    Ok(key)
}

/// Write a new random key to `path` (0600, never over an existing file).
fn create_keyfile(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("cannot create the directory", dir, &e))?;
    }
    let key = crypto::random_key().map_err(Error::usage)?;
    let text = Zeroizing::new(format!("{}\n", Base64::encode_string(&key[..])));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("cannot create key file", path, &e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io("cannot write key file", path, &e))
}

fn no_key(store: &Path) -> Error {
    let why = if ci() {
        "CI is set, so no passphrase is asked"
    } else {
        "there is no terminal to ask for the passphrase"
    };
    Error::usage(format!(
        "no master key for the secret store {}: NEXUS_MASTER_KEY is not set, no key file is named, and {why}",
        store.display()
    ))
    .with_help("set NEXUS_MASTER_KEY to the base64 of the 32-byte master key")
    .with_help("or name a key file: --keyfile PATH, NEXUS_KEYFILE=PATH, or `secrets_keyfile` in [config]")
    .with_help("or run nexus on a terminal to type the store's passphrase")
}

fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// The terminal to ask on: /dev/tty, unless CI is set.
pub fn terminal() -> Option<std::fs::File> {
    if ci() {
        return None;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()
}

/// Ask on the terminal with echo off; the answer without its newline. None at the end
/// of input.
pub fn ask(tty: &std::fs::File, prompt: &str) -> Option<Zeroizing<String>> {
    let fd = tty.as_raw_fd();
    let old = crate::sys::echo_off(fd);
    let mut out = tty;
    let _ = out.write_all(prompt.as_bytes());
    let _ = out.flush();
    let mut line = Zeroizing::new(String::new());
    let read = std::io::BufReader::new(tty).read_line(&mut line);
    if let Some(old) = old {
        crate::sys::restore_echo(fd, &old);
    }
    if read.ok()? == 0 {
        return None;
    }
    let len = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(len);
    Some(line)
}

/// Ask twice for something new; the two answers must agree.
pub fn ask_twice(tty: &std::fs::File, what: &str) -> Result<Zeroizing<String>, Error> {
    let first = ask(tty, &format!("{what}: ")).ok_or_else(|| Error::usage("nothing was typed"))?;
    let again =
        ask(tty, &format!("{what} again: ")).ok_or_else(|| Error::usage("nothing was typed"))?;
    if first != again {
        return Err(Error::usage("the two entries differ; nothing was changed")
            .with_help("type the same text twice"));
    }
    Ok(first)
}

fn new_passphrase(tty: &std::fs::File, store: &Path) -> Result<Zeroizing<String>, Error> {
    let text = ask_twice(tty, &format!("New passphrase for {}", store.display()))?;
    if text.chars().count() < 8 {
        return Err(Error::usage(
            "the passphrase is shorter than 8 characters; nothing was changed",
        )
        .with_help("choose a longer passphrase, or use a key file (--keyfile PATH)"));
    }
    Ok(text)
}

/// The new master key of `rotate-key`: the key file `new_keyfile` (created with a new
/// random key when missing), else a new passphrase asked twice on the terminal.
pub fn new_key(new_keyfile: Option<&Path>, store: &Path) -> Result<MasterKey, Error> {
    if let Some(path) = new_keyfile {
        if !path.exists() {
            create_keyfile(path)?;
            crate::error::note(format_args!(
                "created key file {}: keep it safe, anyone who has it can read the secrets",
                path.display()
            ));
        }
        let key = read_keyfile(path, "--new-keyfile")?;
        let source = Source::KeyFile {
            path: path.to_path_buf(),
            from: "--new-keyfile",
        };
        return Ok(MasterKey::from_key(key, source));
    }
    let Some(tty) = terminal() else {
        return Err(Error::usage(format!(
            "no new master key for the secret store {}: no --new-keyfile, and no terminal to ask for a new passphrase",
            store.display()
        ))
        .with_help("name the new key file: nexus secret rotate-key --new-keyfile PATH (a new random key is written there when PATH does not exist)"));
    };
    Ok(MasterKey::from_passphrase(new_passphrase(&tty, store)?))
}
