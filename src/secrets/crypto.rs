//! The cryptography of the store, all of it from RustCrypto crates: Argon2id turns a
//! passphrase into a master key; HKDF-SHA256 derives from the master key (salted with the
//! store's salt) a wrapping key, a seal key and a key check; each value is encrypted with
//! AES-256-GCM under a data key of its own, and the data key under the wrapping key, both
//! with the secret's name as associated data; HMAC-SHA256 seals the file. Every key lives
//! in `Zeroizing` memory. Must not: hold anything home-made beyond gluing these together.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::format::{Kdf, VERSION};

pub type Key = Zeroizing<[u8; 32]>;

const NONCE: usize = 12;

/// `N` bytes from the operating system's random source.
pub fn random<const N: usize>() -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| format!("no random bytes from the system: {e}"))?;
    Ok(out)
}

/// A new random 32-byte key.
pub fn random_key() -> Result<Key, String> {
    let mut k = Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut k[..]).map_err(|e| format!("no random bytes from the system: {e}"))?;
    Ok(k)
}

/// The master key of a passphrase, with the store's parameters and salt.
pub fn argon2id(passphrase: &[u8], kdf: &Kdf) -> Result<Key, String> {
    let params = argon2::Params::new(kdf.m, kdf.t, kdf.p, Some(32))
        .map_err(|e| format!("argon2id parameters: {e}"))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    a.hash_password_into(passphrase, &kdf.salt, &mut out[..])
        .map_err(|e| format!("argon2id: {e}"))?;
    Ok(out)
}

/// The keys of one store, derived from its master key and salt.
pub struct Keys {
    wrap: Key,
    seal: Key,
    check: Key,
}

/// What the associated data of a value or a data key starts with.
fn aad(kind: &str, name: &str) -> Vec<u8> {
    format!("nexus-secrets {VERSION} {kind}\0{name}").into_bytes()
}

impl Keys {
    pub fn derive(master: &[u8; 32], salt: &[u8]) -> Keys {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(salt), master);
        let expand = |info: &str| {
            let mut k = Zeroizing::new([0u8; 32]);
            // 32 bytes is far below HKDF-SHA256's limit of 8160: this cannot fail.
            let _ = hk.expand(
                format!("nexus-secrets {VERSION} {info}").as_bytes(),
                &mut k[..],
            );
            k
        };
        Keys {
            wrap: expand("wrap"),
            seal: expand("seal"),
            check: expand("check"),
        }
    }

    fn mac(key: &[u8; 32]) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).expect("HMAC takes any key length")
    }

    /// The key check written in the header: tells a wrong key from a changed file.
    pub fn check_tag(&self) -> Vec<u8> {
        let mut m = Self::mac(&self.check);
        m.update(b"key check");
        m.finalize().into_bytes().to_vec()
    }

    pub fn check_ok(&self, tag: &[u8]) -> bool {
        let mut m = Self::mac(&self.check);
        m.update(b"key check");
        m.verify_slice(tag).is_ok()
    }

    /// The seal of the file's text before its seal line.
    pub fn seal(&self, body: &[u8]) -> Vec<u8> {
        let mut m = Self::mac(&self.seal);
        m.update(body);
        m.finalize().into_bytes().to_vec()
    }

    pub fn seal_ok(&self, body: &[u8], seal: &[u8]) -> bool {
        let mut m = Self::mac(&self.seal);
        m.update(body);
        m.verify_slice(seal).is_ok()
    }

    /// Encrypt `value` of secret `name` under a new data key: (wrapped key, value).
    pub fn encrypt(&self, name: &str, value: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
        let data_key = random_key()?;
        let value = seal_with(&data_key, &aad("value", name), value)?;
        let key = seal_with(&self.wrap, &aad("key", name), &data_key[..])?;
        Ok((key, value))
    }

    /// The value of secret `name`; None when the key, the value or the name was changed.
    pub fn decrypt(&self, name: &str, key: &[u8], value: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let data_key = open_with(&self.wrap, &aad("key", name), key)?;
        let data_key: &[u8; 32] = data_key[..].try_into().ok()?;
        open_with(data_key, &aad("value", name), value)
    }

    /// The data key of `name` wrapped under `new` instead (the value stays as it is).
    pub fn rewrap(&self, new: &Keys, name: &str, key: &[u8]) -> Option<Vec<u8>> {
        let data_key = open_with(&self.wrap, &aad("key", name), key)?;
        seal_with(&new.wrap, &aad("key", name), &data_key).ok()
    }
}

/// AES-256-GCM with a random nonce: nonce, ciphertext and tag.
fn seal_with(key: &[u8; 32], aad: &[u8], msg: &[u8]) -> Result<Vec<u8>, String> {
    let cipher = Aes256Gcm::new(key.into());
    let nonce: [u8; NONCE] = random()?;
    let ct = cipher
        .encrypt(&Nonce::from(nonce), Payload { msg, aad })
        .map_err(|_| "AES-256-GCM refused to encrypt".to_string())?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

fn open_with(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE {
        return None;
    }
    let (nonce, ct) = sealed.split_at(NONCE);
    let nonce: [u8; NONCE] = nonce.try_into().ok()?;
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_open_only_under_their_own_name_and_key() {
        let k = Keys::derive(&[1; 32], b"salt");
        let (key, value) = k.encrypt("A", b"hunter22").unwrap();
        assert_eq!(&k.decrypt("A", &key, &value).unwrap()[..], b"hunter22");
        assert!(k.decrypt("B", &key, &value).is_none());
        let other = Keys::derive(&[2; 32], b"salt");
        assert!(other.decrypt("A", &key, &value).is_none());
        let mut flipped = value.clone();
        flipped[14] ^= 1;
        assert!(k.decrypt("A", &key, &flipped).is_none());
        let moved = k.rewrap(&other, "A", &key).unwrap();
        assert_eq!(
            &other.decrypt("A", &moved, &value).unwrap()[..],
            b"hunter22"
        );
        assert!(k.check_ok(&k.check_tag()));
        assert!(!other.check_ok(&k.check_tag()));
    }
}
