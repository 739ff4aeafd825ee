//! Secrets: the encrypted store in `.nexus/secrets.enc` (format.rs: its text;
//! crypto.rs: the RustCrypto calls; store.rs: open, read, change, write), the master
//! key's sources (key.rs), and the masking of values in everything nexus writes
//! (redact.rs). docs/secrets.md describes the file and the guarantees.
//! Must not: print, or let a decrypted value reach a log line, an error or an argument
//! list.
//!
//! For a run that uses secrets: resolve the key once (`MasterKey::resolve`), open the
//! store once (`Store::open`), `get` each value it uses, and hand the (name, value)
//! pairs to `Redactor::new`, set as `RunInfo::redactor` before the recorder is made.

pub mod crypto;
pub mod format;
pub mod key;
pub mod redact;
pub mod store;
pub mod used;

pub use key::{KeyOptions, MasterKey, Purpose, Source};
pub use redact::{OutputFilter, Redactor};
pub use store::{store_path, Store, STORE};
