//! `nexus secret init|set|get|list|delete|rotate-key`: the project's secret store
//! (docs/secrets.md). Values go to stdout only for `get`; what was done goes to stderr.
//! Must not: print a value anywhere else, or take one from an argument.

use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use zeroize::Zeroizing;

use super::load;
use crate::cli::args::{Global, SecretAction, SecretArgs};
use crate::error::{exit, note, Error};
use crate::secrets::{key, store, KeyOptions, MasterKey, Purpose, Source, Store};

pub fn secret(g: &Global, a: &SecretArgs) -> Result<i32, Error> {
    let config = load(g)?;
    let path = crate::secrets::store_path(&config.root);
    let opts = KeyOptions {
        keyfile: a.keyfile.clone(),
        config_keyfile: config.settings.secrets_keyfile.clone(),
        root: config.root.clone(),
    };
    match &a.action {
        SecretAction::Init => init(&opts, &path),
        SecretAction::Set { name, from_file } => set(&opts, &path, name, from_file.as_deref()),
        SecretAction::Get(name) => get(&opts, &path, name),
        SecretAction::List => list(&path),
        SecretAction::Delete(name) => delete(&opts, &path, name),
        SecretAction::RotateKey { new_keyfile } => rotate(&opts, &path, new_keyfile.as_deref()),
    }
}

fn init(opts: &KeyOptions, path: &Path) -> Result<i32, Error> {
    // Said before any key is asked for or created.
    store::must_not_exist(path)?;
    let key = MasterKey::resolve(opts, path, Purpose::Create)?;
    store::ensure_dir(path)?;
    let _lock = store::lock(path)?;
    Store::create(path, &key)?;
    note(format_args!(
        "created the secret store {} (master key: {})",
        path.display(),
        key.source()
    ));
    Ok(exit::SUCCESS)
}

/// An open store, the key that opened it, and (for changes) its directory's lock.
struct Opened {
    store: Store,
    key: MasterKey,
    _lock: Option<std::fs::File>,
}

fn open(opts: &KeyOptions, path: &Path, change: bool) -> Result<Opened, Error> {
    // A missing or damaged store is reported before a passphrase is asked for.
    Store::names_only(path)?;
    let lock = if change {
        Some(store::lock(path)?)
    } else {
        None
    };
    let key = MasterKey::resolve(opts, path, Purpose::Open)?;
    Ok(Opened {
        store: Store::open(path, &key)?,
        key,
        _lock: lock,
    })
}

fn set(opts: &KeyOptions, path: &Path, name: &str, from: Option<&Path>) -> Result<i32, Error> {
    crate::secrets::format::check_name(name).map_err(Error::usage)?;
    let mut o = open(opts, path, true)?;
    let value = read_value(name, from)?;
    o.store.set(name, &value)?;
    o.store.save()?;
    note(format_args!("set `{name}` in {}", path.display()));
    Ok(exit::SUCCESS)
}

/// The value to set: the file's content as it is, else stdin (one final newline
/// dropped), else typed twice on the terminal with echo off.
fn read_value(name: &str, from: Option<&Path>) -> Result<Zeroizing<String>, Error> {
    let bytes = if let Some(file) = from {
        Zeroizing::new(
            std::fs::read(file).map_err(|e| Error::io("cannot read the value from", file, &e))?,
        )
    } else if std::io::stdin().is_terminal() {
        let tty = key::terminal().ok_or_else(|| {
            Error::usage("no terminal to type the value on")
                .with_help("pipe the value in: printf %s VALUE | nexus secret set NAME")
        })?;
        return key::ask_twice(&tty, &format!("Value of {name}"));
    } else {
        let mut buf = Zeroizing::new(Vec::new());
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| Error::usage(format!("cannot read the value from stdin: {e}")))?;
        if buf.ends_with(b"\n") {
            buf.pop();
            if buf.ends_with(b"\r") {
                buf.pop();
            }
        }
        buf
    };
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_string())),
        Err(_) => Err(Error::usage(format!(
            "the value of `{name}` is not UTF-8 text; nothing was changed"
        ))
        .with_help("store binary data as base64 and decode it where it is used")),
    }
}

fn get(opts: &KeyOptions, path: &Path, name: &str) -> Result<i32, Error> {
    let mut value = open(opts, path, false)?.store.get(name)?;
    if !value.ends_with('\n') {
        value.push('\n');
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(value.as_bytes());
    let _ = out.flush();
    Ok(exit::SUCCESS)
}

fn list(path: &Path) -> Result<i32, Error> {
    let entries = Store::listing(path)?;
    if entries.is_empty() {
        note(format_args!("no secrets in {} yet", path.display()));
        return Ok(exit::SUCCESS);
    }
    let width = entries
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut text = format!("{:<width$}  UPDATED\n", "NAME");
    for (name, updated) in &entries {
        text += &format!("{name:<width$}  {updated}\n");
    }
    super::print(&text)
}

fn delete(opts: &KeyOptions, path: &Path, name: &str) -> Result<i32, Error> {
    let mut o = open(opts, path, true)?;
    o.store.delete(name)?;
    o.store.save()?;
    note(format_args!("deleted `{name}` from {}", path.display()));
    Ok(exit::SUCCESS)
}

fn rotate(opts: &KeyOptions, path: &Path, new_keyfile: Option<&Path>) -> Result<i32, Error> {
    let Opened {
        store: mut s,
        key: old,
        _lock,
    } = open(opts, path, true)?;
    let new = key::new_key(new_keyfile, path)?;
    if new.same_as(&old) {
        return Err(
            Error::usage(format!("the new master key is the old one; {} is unchanged", path.display()))
                .with_help("name a new key file with --new-keyfile PATH (created when missing), or type a new passphrase"),
        );
    }
    let backup = s.backup()?;
    s.rotate(&new)?;
    s.save()?;
    let count = match s.names().count() {
        1 => "1 secret".to_string(),
        n => format!("{n} secrets"),
    };
    note(format_args!(
        "{count} in {} now open with {}; the old store is kept as {} (it opens with the old key)",
        path.display(),
        new.source(),
        backup.display()
    ));
    if let Source::KeyFile { path: file, .. } = new.source() {
        note(format_args!(
            "use it from now on: --keyfile {f}, NEXUS_KEYFILE={f}, or secrets_keyfile in [config]",
            f = file.display()
        ));
    }
    Ok(exit::SUCCESS)
}
