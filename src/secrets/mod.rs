//! Secrets in memory and at rest: a redacting wrapper, the instance key (AEAD sealing and HMAC),
//! argon2id password hashes and random tokens.

use std::fmt;
use std::path::Path;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

mod hashing;

/// A value that never shows itself in `Debug` or `Display` (logs, errors, panics).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }
    /// The secret itself; call sites are easy to grep for.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the key must be 64 hexadecimal characters (32 bytes)")]
    BadKey,
    #[error("key file {0}: {1}")]
    KeyFile(String, std::io::Error),
    #[error("sealed value is damaged or was sealed with another key")]
    Unseal,
    #[error("password hashing failed")]
    Hash,
}

/// The instance's 32-byte key: seals secrets stored in the database and signs CSRF tokens.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

impl SecretKey {
    pub fn from_hex(hex_key: &Secret<String>) -> Result<Self, SecretError> {
        let bytes = hex::decode(hex_key.expose().trim()).map_err(|_| SecretError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretError::BadKey)?;
        Ok(Self(key))
    }

    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self(key)
    }

    /// Reads the key file, or creates it (mode 0600) with a fresh key on first start.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        let file_err = |e| SecretError::KeyFile(path.display().to_string(), e);
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_hex(&Secret::new(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                write_private(path, &hex::encode(key.0)).map_err(file_err)?;
                Ok(key)
            }
            Err(e) => Err(file_err(e)),
        }
    }

    /// Encrypts `plaintext` (XChaCha20-Poly1305, random nonce) into a printable string.
    pub fn seal(&self, plaintext: &str) -> String {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext.as_bytes())
            .expect("encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("v1.{}", STANDARD_NO_PAD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<Secret<String>, SecretError> {
        let data = sealed
            .strip_prefix("v1.")
            .and_then(|b| STANDARD_NO_PAD.decode(b).ok())
            .filter(|d| d.len() > 24)
            .ok_or(SecretError::Unseal)?;
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let plain = cipher.decrypt(XNonce::from_slice(&data[..24]), &data[24..]).map_err(|_| SecretError::Unseal)?;
        String::from_utf8(plain).map(Secret::new).map_err(|_| SecretError::Unseal)
    }

    /// HMAC-SHA256 of `message` under a key derived for `purpose`, as URL-safe base64.
    pub fn sign(&self, purpose: &str, message: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(message.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Constant-time check of a value made by [`SecretKey::sign`].
    pub fn verify(&self, purpose: &str, message: &str, signature: &str) -> bool {
        let Ok(sig) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(message.as_bytes());
        mac.verify_slice(&sig).is_ok()
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// An argon2id PHC string for `password`.
pub fn hash_password(password: &Secret<String>) -> Result<String, SecretError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|_| SecretError::Hash)?;
    argon2().hash_password(password.expose().as_bytes(), &salt).map(|h| h.to_string()).map_err(|_| SecretError::Hash)
}

/// Whether `password` matches the stored PHC string.
pub fn verify_password(password: &Secret<String>, phc: &str) -> bool {
    PasswordHash::new(phc).map(|h| argon2().verify_password(password.expose().as_bytes(), &h).is_ok()).unwrap_or(false)
}

/// [`verify_password`] off the async workers, on the low-priority hashing threads ([`hashing`]).
pub async fn verify_password_async(password: &Secret<String>, phc: &str) -> bool {
    let (password, phc) = (password.clone(), phc.to_owned());
    hashing::run(move || verify_password(&password, &phc)).await.unwrap_or(false)
}

/// [`hash_password`] off the async workers, on the low-priority hashing threads ([`hashing`]).
pub async fn hash_password_async(password: &Secret<String>) -> Result<String, SecretError> {
    let password = password.clone();
    hashing::run(move || hash_password(&password)).await.unwrap_or(Err(SecretError::Hash))
}

/// A random URL-safe token of `bytes` random bytes.
pub fn random_token(bytes: usize) -> Secret<String> {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    Secret::new(URL_SAFE_NO_PAD.encode(buf))
}

/// A random password people can type: letters and digits without look-alikes.
pub fn random_password(len: usize) -> Secret<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let pw = (0..len).map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char).collect();
    Secret::new(pw)
}

/// SHA-256 as lower-case hex: how session and API tokens are stored.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_the_same_key_only() {
        let key = SecretKey::generate();
        let sealed = key.seal("hunter2");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(key.open(&sealed).unwrap().expose(), "hunter2");
        assert!(SecretKey::generate().open(&sealed).is_err());
        assert!(key.open("v1.garbage").is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("topsecret".to_string());
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(format!("{:?}", SecretKey::generate()), "SecretKey(***)");
    }

    /// A password check leaves the async thread free: a task beside it keeps running all along (on the
    /// async thread itself, it would not run once until the check was over).
    #[tokio::test(flavor = "current_thread")]
    async fn checking_a_password_leaves_the_runtime_free() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let pw = Secret::new("correct horse".to_string());
        let phc = hash_password_async(&pw).await.unwrap();
        let (turns, done) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let beside = tokio::spawn({
            let (turns, done) = (turns.clone(), done.clone());
            async move {
                while !done.load(Ordering::Relaxed) {
                    turns.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            }
        });
        tokio::task::yield_now().await;
        let before = turns.load(Ordering::Relaxed);
        assert!(verify_password_async(&pw, &phc).await);
        let during = turns.load(Ordering::Relaxed) - before;
        done.store(true, Ordering::Relaxed);
        beside.await.unwrap();
        assert!(during > 100, "the task beside ran only {during} times during a 19 MiB argon2id check");
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let pw = Secret::new("correct horse".to_string());
        let phc = hash_password(&pw).unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password(&pw, &phc));
        assert!(!verify_password(&Secret::new("wrong".into()), &phc));
    }

    #[test]
    fn signatures_verify_per_purpose() {
        let key = SecretKey::generate();
        let sig = key.sign("csrf", "abc");
        assert!(key.verify("csrf", "abc", &sig));
        assert!(!key.verify("other", "abc", &sig));
        assert!(!key.verify("csrf", "abd", &sig));
    }
}
