//! Public key authentication with an unencrypted OpenSSH ed25519 key, signed by nexus
//! through the OpenSSL that libssh2 already links, the key decoded once per run.
//!
//! `libssh2_userauth_publickey_fromfile` decodes the private key file at every login,
//! and with OpenSSL 3 it first offers the file to OpenSSL's generic PEM decoders (which
//! refuse OpenSSH's format, at a cost of about 0.8 ms of CPU per login on the bench
//! machine) before libssh2's own parser reads it: over half of nexus's CPU for a login.
//! Here the key file is parsed once (the OpenSSH container is plain framing, RFC 4251
//! strings; nothing cryptographic is done by hand), the ed25519 key is handed to OpenSSL
//! once (`EVP_PKEY_new_raw_private_key`), and each login signs its session's data with
//! it through `libssh2_userauth_publickey`'s signing callback (`EVP_DigestSign`).
//!
//! Anything else (RSA, ECDSA, security keys, encrypted or PEM files, a file this parser
//! does not fully understand) is not handled here: the caller gives it to libssh2.
//! Must not: log or keep key material beyond the parsed key; sign with a key whose
//! private half does not match its public half.

use std::collections::HashMap;
use std::ffi::{c_int, c_void, CString};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use ssh2::Session;
use zeroize::Zeroizing;

use super::base64;

/// An ed25519 private key held by OpenSSL, and its public key blob as sent to the server
/// (`string "ssh-ed25519", string key`).
pub struct Ed25519 {
    public: Vec<u8>,
    pkey: NonNull<openssl_sys::EVP_PKEY>,
}

// SAFETY: the EVP_PKEY is never changed after it is made; OpenSSL allows one key to be
// used by many threads at once for signing (each signature has its own EVP_MD_CTX).
unsafe impl Send for Ed25519 {}
// SAFETY: as above.
unsafe impl Sync for Ed25519 {}

impl Drop for Ed25519 {
    fn drop(&mut self) {
        // SAFETY: the pointer came from EVP_PKEY_new_raw_private_key and is freed once.
        unsafe { openssl_sys::EVP_PKEY_free(self.pkey.as_ptr()) }
    }
}

/// Keys already parsed in this run, by a hash of their file's text (a file changed
/// during the run is parsed again; the text itself is not kept).
static PARSED: Mutex<Option<Parsed>> = Mutex::new(None);

/// A key file's BLAKE3 hash, and its key when it holds an ed25519 key nexus can sign with.
type Parsed = HashMap<[u8; 32], Option<Arc<Ed25519>>>;

/// The ed25519 key in a key file's `text`, parsed once per run; None when the file is
/// anything else (the caller then uses libssh2's own key handling).
pub fn ed25519(text: &str) -> Option<Arc<Ed25519>> {
    let id = *blake3::hash(text.as_bytes()).as_bytes();
    let mut guard = PARSED.lock().unwrap_or_else(|e| e.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    map.entry(id)
        .or_insert_with(|| {
            let (public, secret) = parse(text)?;
            Ed25519::new(public, &secret).map(Arc::new)
        })
        .clone()
}

impl Ed25519 {
    fn new(public: Vec<u8>, seed: &[u8; 32]) -> Option<Ed25519> {
        // SAFETY: `seed` is 32 readable bytes, as an ed25519 private key must be; a null
        // engine selects the default provider. OpenSSL copies the bytes.
        let pkey = unsafe {
            openssl_sys::EVP_PKEY_new_raw_private_key(
                openssl_sys::EVP_PKEY_ED25519,
                std::ptr::null_mut(),
                seed.as_ptr(),
                seed.len(),
            )
        };
        Some(Ed25519 {
            public,
            pkey: NonNull::new(pkey)?,
        })
    }

    /// Whether a `KEY.pub` file's text (`ssh-ed25519 BASE64 [comment]`) names this key.
    pub fn matches_public_file(&self, text: &str) -> bool {
        let mut fields = text.split_whitespace();
        fields.next() == Some("ssh-ed25519")
            && fields
                .next()
                .and_then(base64::decode)
                .is_some_and(|blob| blob == self.public)
    }

    /// The 64-byte ed25519 signature of `data`.
    fn sign(&self, data: &[u8]) -> Option<[u8; 64]> {
        let mut sig = [0u8; 64];
        let mut len = sig.len();
        // SAFETY: the context is created, used and freed here; the key outlives the call;
        // `sig` has room for the `len` bytes OpenSSL is told it may write.
        let ok = unsafe {
            let ctx = openssl_sys::EVP_MD_CTX_new();
            if ctx.is_null() {
                return None;
            }
            let ok = openssl_sys::EVP_DigestSignInit(
                ctx,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null_mut(),
                self.pkey.as_ptr(),
            ) == 1
                && openssl_sys::EVP_DigestSign(
                    ctx,
                    sig.as_mut_ptr(),
                    &mut len,
                    data.as_ptr(),
                    data.len(),
                ) == 1;
            openssl_sys::EVP_MD_CTX_free(ctx);
            ok
        };
        (ok && len == sig.len()).then_some(sig)
    }
}

extern "C" {
    // libssh2's public API (libssh2.h) since 1.2; the libssh2-sys crate does not declare it.
    fn libssh2_userauth_publickey(
        session: *mut libssh2_sys::LIBSSH2_SESSION,
        username: *const std::ffi::c_char,
        pubkeydata: *const u8,
        pubkeydata_len: usize,
        sign_callback: SignFn,
        abstract_: *mut *mut c_void,
    ) -> c_int;
}

type SignFn = extern "C" fn(
    *mut libssh2_sys::LIBSSH2_SESSION,
    *mut *mut u8,
    *mut usize,
    *const u8,
    usize,
    *mut *mut c_void,
) -> c_int;

/// libssh2's signing callback: `abstract_` points at the `Ed25519` key; the signature is
/// returned in memory from malloc, which libssh2 frees with its default allocator
/// (ssh2 creates sessions without a custom one).
extern "C" fn sign_callback(
    _session: *mut libssh2_sys::LIBSSH2_SESSION,
    sig: *mut *mut u8,
    sig_len: *mut usize,
    data: *const u8,
    data_len: usize,
    abstract_: *mut *mut c_void,
) -> c_int {
    // SAFETY: libssh2 passes back the `abstract_` given to libssh2_userauth_publickey
    // (a pointer to a live `Ed25519`, borrowed for that call), `data_len` readable bytes
    // at `data`, and two out-pointers it owns.
    unsafe {
        let key = &*((*abstract_).cast::<Ed25519>());
        let Some(signature) = key.sign(std::slice::from_raw_parts(data, data_len)) else {
            return -1;
        };
        let out = libc::malloc(signature.len()).cast::<u8>();
        if out.is_null() {
            return -1;
        }
        std::ptr::copy_nonoverlapping(signature.as_ptr(), out, signature.len());
        *sig = out;
        *sig_len = signature.len();
    }
    0
}

/// Log in as `user` with `key`. Err carries libssh2's error (a rejected key included).
pub fn authenticate(session: &Session, user: &str, key: &Ed25519) -> Result<(), ssh2::Error> {
    let user = CString::new(user).map_err(|_| {
        ssh2::Error::new(
            ssh2::ErrorCode::Session(libssh2_sys::LIBSSH2_ERROR_INVAL),
            "user name contains a NUL byte",
        )
    })?;
    let mut abstract_ = std::ptr::from_ref(key).cast_mut().cast::<c_void>();
    let rc = {
        let mut raw = session.raw();
        // SAFETY: the session is locked for the call; `user` and the key blob outlive it;
        // `abstract_` points at `key`, which outlives it, and is only read by the callback.
        unsafe {
            libssh2_userauth_publickey(
                &mut *raw,
                user.as_ptr(),
                key.public.as_ptr(),
                key.public.len(),
                sign_callback,
                &mut abstract_,
            )
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(ssh2::Error::last_session_error(session).unwrap_or_else(|| {
            ssh2::Error::new(
                ssh2::ErrorCode::Session(rc),
                "public key authentication failed",
            )
        }))
    }
}

/// The public key blob and the 32-byte private seed of an unencrypted
/// `openssh-key-v1` file holding one ssh-ed25519 key (PROTOCOL.key in OpenSSH's
/// sources); None for anything else.
fn parse(text: &str) -> Option<(Vec<u8>, Zeroizing<[u8; 32]>)> {
    const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
    const END: &str = "-----END OPENSSH PRIVATE KEY-----";
    let mut lines = text.lines().map(str::trim).skip_while(|l| l.is_empty());
    if lines.next()? != BEGIN {
        return None;
    }
    let body: Zeroizing<String> =
        Zeroizing::new(lines.by_ref().take_while(|l| *l != END).collect::<String>());
    let raw = Zeroizing::new(base64::decode(&body)?);
    let mut r = Reader(raw.strip_prefix(b"openssh-key-v1\0")?);
    if r.string()? != b"none" || r.string()? != b"none" || !r.string()?.is_empty() {
        return None; // encrypted (a cipher, a KDF and its options)
    }
    if r.u32()? != 1 {
        return None;
    }
    let public = r.string()?;
    let mut private = Reader(r.string()?);
    if !r.0.is_empty() {
        return None;
    }
    let check = private.u32()?;
    if private.u32()? != check || private.string()? != b"ssh-ed25519" {
        return None;
    }
    let key = private.string()?;
    let pair = private.string()?; // seed || public key
    private.string()?; // comment
                       // What is left is padding: 1, 2, 3, ... up to the cipher's block size.
    let padding_ok = private.0.len() < 8
        && private
            .0
            .iter()
            .enumerate()
            .all(|(i, &b)| usize::from(b) == i + 1);
    let mut pub_reader = Reader(public);
    let public_ok = pub_reader.string()? == b"ssh-ed25519"
        && pub_reader.string()? == key
        && pub_reader.0.is_empty();
    if !padding_ok || !public_ok || key.len() != 32 || pair.len() != 64 || pair[32..] != *key {
        return None;
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&pair[..32]);
    Some((public.to_vec(), seed))
}

/// RFC 4251 framing: big-endian u32, and strings as a u32 length then the bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*head))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u32()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Throwaway keys made for these tests by ssh-keygen (-N '' or -N pw, -C test).
    const ED25519: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACDx9cc6bp4O9Gu1OhWPC9BVW9awqJbQkvzR7dRl1/ylKAAAAIheH4K+Xh+C\nvgAAAAtzc2gtZWQyNTUxOQAAACDx9cc6bp4O9Gu1OhWPC9BVW9awqJbQkvzR7dRl1/ylKA\nAAAEAODEmV/k++2+zQX+XyQxnO4dtssMncw2ZN4Vi0L73BDfH1xzpung70a7U6FY8L0FVb\n1rColtCS/NHt1GXX/KUoAAAABHRlc3QB\n-----END OPENSSH PRIVATE KEY-----";
    const ED25519_PUB: &str =
        "AAAAC3NzaC1lZDI1NTE5AAAAIPH1xzpung70a7U6FY8L0FVb1rColtCS/NHt1GXX/KUo";
    const ED25519_ENCRYPTED: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABDLe/+KfC\noc8+j/9St1MGytAAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIP9XX5kJ2+hFqe2j\nwL9VMJ69S+s6jrvxbK8NvdZCi20iAAAAkA1tfvVv44Mjf0n6J8kwV/5+AwkfnTLjDZ6xp9\nX4pan8pTQKNctaQU1R01JUyXEtM8fU/DlnUD4A5QBZDtfEGyEuYIpYC167U6e78s6d2rwK\nMivCwz5K6fM1gecQqWbWpcIoZcMjxpVIjy/RDJFK+VV3eQ1sg/OX1SlTqtjL5B9CqZv7oS\nbJNpAfh61eYQBz7Q==\n-----END OPENSSH PRIVATE KEY-----";
    const ECDSA: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAaAAAABNlY2RzYS\n1zaGEyLW5pc3RwMjU2AAAACG5pc3RwMjU2AAAAQQSkWUA+v1HX7XPGFGPAiT2VaSBF08tq\nL9yFqTU6Ool5MNmDzio9z2oKOJBTV7tSLimRcXVGVx0pnm9Bh8+nBEkwAAAAoFviajBb4m\nowAAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBKRZQD6/Udftc8YU\nY8CJPZVpIEXTy2ov3IWpNTo6iXkw2YPOKj3Pago4kFNXu1IuKZFxdUZXHSmeb0GHz6cEST\nAAAAAhAODUjLWQ4nJ+o6jiknzqEYpKwYV6FfNjvLdOXf87uv71AAAABHRlc3QBAgM=\n-----END OPENSSH PRIVATE KEY-----";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn string(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&u32::try_from(s.len()).unwrap().to_be_bytes());
        out.extend_from_slice(s);
    }

    /// The decoded body of an unencrypted openssh-key-v1 file for (seed, public).
    fn container(seed: &[u8], public: &[u8], check: [u32; 2]) -> Vec<u8> {
        let mut blob = Vec::new();
        string(&mut blob, b"ssh-ed25519");
        string(&mut blob, public);
        let mut private = Vec::new();
        private.extend_from_slice(&check[0].to_be_bytes());
        private.extend_from_slice(&check[1].to_be_bytes());
        string(&mut private, b"ssh-ed25519");
        string(&mut private, public);
        string(&mut private, &[seed, public].concat());
        string(&mut private, b"comment");
        let mut pad = 1;
        while private.len() % 8 != 0 {
            private.push(pad);
            pad += 1;
        }
        let mut out = b"openssh-key-v1\0".to_vec();
        for s in [&b"none"[..], b"none", b""] {
            string(&mut out, s);
        }
        out.extend_from_slice(&1u32.to_be_bytes());
        string(&mut out, &blob);
        string(&mut out, &private);
        out
    }

    fn armor(body: &[u8]) -> String {
        let b64 = base64::encode(body);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(70)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn an_ssh_keygen_ed25519_key_parses_to_its_public_key() {
        let (public, _) = parse(ED25519).expect("parsed");
        assert_eq!(public, base64::decode(ED25519_PUB).unwrap());
        let key = ed25519(ED25519).unwrap();
        assert!(key.matches_public_file(&format!("ssh-ed25519 {ED25519_PUB} test\n")));
        let other = base64::encode(&container(&[1; 32], &[2; 32], [7, 7])[..20]);
        for text in [
            "",
            "ssh-ed25519",
            &format!("ssh-rsa {ED25519_PUB}"),
            &format!("ssh-ed25519 {other}"),
        ] {
            assert!(!key.matches_public_file(text), "{text:?}");
        }
    }

    /// RFC 8032, section 7.1, tests 1 and 2: the signature is OpenSSL's ed25519 of the
    /// seed that was parsed, not of some other bytes of the file.
    #[test]
    fn signatures_are_those_of_rfc_8032() {
        let cases = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
        ];
        for (seed, public, message, signature) in cases {
            let text = armor(&container(&hex(seed), &hex(public), [7, 7]));
            let key = ed25519(&text).expect("an ed25519 key");
            assert_eq!(key.sign(&hex(message)).unwrap().to_vec(), hex(signature));
            assert!(Arc::ptr_eq(&key, &ed25519(&text).unwrap()), "parsed once");
        }
    }

    #[test]
    fn other_files_are_left_to_libssh2() {
        let seed = [1u8; 32];
        let public = [2u8; 32];
        let good = container(&seed, &public, [7, 7]);
        assert!(parse(&armor(&good)).is_some());
        let refused = [
            ("encrypted", ED25519_ENCRYPTED.to_string()),
            ("ecdsa", ECDSA.to_string()),
            (
                "check words differ",
                armor(&container(&seed, &public, [7, 8])),
            ),
            ("PEM", ED25519.replace("OPENSSH PRIVATE", "PRIVATE")),
            ("not base64", ED25519.replace('b', "*")),
            ("trailing bytes", armor(&[good.clone(), vec![0]].concat())),
            ("empty", String::new()),
        ];
        for (what, text) in refused {
            assert!(parse(&text).is_none(), "{what} was parsed");
        }
        // The pair's second half must be the public key.
        let mut wrong = good.clone();
        let pair = [&seed[..], &public[..]].concat();
        let at = good.windows(64).position(|w| w == pair).unwrap() + 32;
        wrong[at] ^= 1;
        assert!(parse(&armor(&wrong)).is_none(), "mismatched public half");
        // Every truncation is refused, none panics.
        for n in 0..good.len() {
            assert!(parse(&armor(&good[..n])).is_none(), "cut at {n}");
        }
    }
}
