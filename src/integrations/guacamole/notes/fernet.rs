//! Fernet (AES-128-CBC + HMAC-SHA256, version 0x80) as the existing notes sync tool uses it: the key is
//! the URL-safe base64 of SHA-256(passphrase), and notes store the token base64-encoded once more.

use aes::Aes128;
use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE as URL_SAFE_PAD};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::secrets::Secret;

/// Accepts URL-safe base64 with or without padding, as tokens written by other tools may be either.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a Fernet value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FernetError {
    /// Not base64, too short, or not version 0x80.
    #[error("not a Fernet token")]
    Malformed,
    /// The HMAC does not match: another key, or a damaged token.
    #[error("the token does not match the notes key (wrong key or damaged value)")]
    WrongKey,
    /// The plaintext is not UTF-8.
    #[error("the decrypted password is not UTF-8 text")]
    NotText,
    /// The key is not 32 bytes of URL-safe base64.
    #[error("a Fernet key is 32 bytes of URL-safe base64")]
    BadKey,
}

/// A Fernet key: 16 bytes for signing, 16 for encryption.
#[derive(Clone)]
pub struct FernetKey {
    signing: [u8; 16],
    encryption: [u8; 16],
}

impl std::fmt::Debug for FernetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FernetKey(***)")
    }
}

impl FernetKey {
    /// The key the existing tool derives from a passphrase: SHA-256, no salt.
    pub fn from_passphrase(passphrase: &Secret<String>) -> Self {
        let digest = Sha256::digest(passphrase.expose().as_bytes());
        Self::from_bytes(&digest)
    }

    /// A key in Fernet's own format (URL-safe base64 of 32 bytes).
    pub fn from_base64(key: &str) -> Result<Self, FernetError> {
        let bytes = LENIENT.decode(key.trim()).map_err(|_| FernetError::BadKey)?;
        if bytes.len() != 32 {
            return Err(FernetError::BadKey);
        }
        Ok(Self::from_bytes(&bytes))
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        let mut signing = [0u8; 16];
        let mut encryption = [0u8; 16];
        signing.copy_from_slice(&bytes[..16]);
        encryption.copy_from_slice(&bytes[16..32]);
        FernetKey { signing, encryption }
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.signing).expect("any key length")
    }

    /// A Fernet token of `plaintext` with a random IV and the current time.
    pub fn encrypt(&self, plaintext: &[u8]) -> String {
        let mut iv = [0u8; 16];
        rand::rng().fill_bytes(&mut iv);
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        self.encrypt_with(plaintext, iv, now)
    }

    fn encrypt_with(&self, plaintext: &[u8], iv: [u8; 16], timestamp: u64) -> String {
        let cipher = cbc::Encryptor::<Aes128>::new(&self.encryption.into(), &iv.into());
        let ciphertext = cipher.encrypt_padded_vec_mut::<Pkcs7>(plaintext);
        let mut token = Vec::with_capacity(57 + ciphertext.len());
        token.push(0x80);
        token.extend_from_slice(&timestamp.to_be_bytes());
        token.extend_from_slice(&iv);
        token.extend_from_slice(&ciphertext);
        let mut mac = self.mac();
        mac.update(&token);
        token.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_PAD.encode(token)
    }

    /// Opens a Fernet token (no time-to-live check: notes passwords do not expire).
    pub fn decrypt(&self, token: &str) -> Result<Vec<u8>, FernetError> {
        let data = LENIENT.decode(token.trim()).map_err(|_| FernetError::Malformed)?;
        // version (1) + timestamp (8) + IV (16) + at least one block (16) + HMAC (32)
        if data.len() < 73 || data[0] != 0x80 || (data.len() - 57) % 16 != 0 {
            return Err(FernetError::Malformed);
        }
        let (signed, tag) = data.split_at(data.len() - 32);
        let mut mac = self.mac();
        mac.update(signed);
        mac.verify_slice(tag).map_err(|_| FernetError::WrongKey)?;
        let iv: [u8; 16] = signed[9..25].try_into().expect("length checked");
        let cipher = cbc::Decryptor::<Aes128>::new(&self.encryption.into(), &iv.into());
        cipher.decrypt_padded_vec_mut::<Pkcs7>(&signed[25..]).map_err(|_| FernetError::WrongKey)
    }

    /// The value of `encrypted_password:"…"`: the token base64-encoded once more (starts `Z0FBQUFB`).
    pub fn encrypt_note_password(&self, password: &Secret<String>) -> String {
        URL_SAFE_PAD.encode(self.encrypt(password.expose().as_bytes()))
    }

    /// Opens an `encrypted_password` value.
    pub fn decrypt_note_password(&self, value: &str) -> Result<Secret<String>, FernetError> {
        let inner = LENIENT.decode(value.trim()).map_err(|_| FernetError::Malformed)?;
        let token = String::from_utf8(inner).map_err(|_| FernetError::Malformed)?;
        let plain = self.decrypt(&token)?;
        String::from_utf8(plain).map(Secret::new).map_err(|_| FernetError::NotText)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made once with Python `cryptography` 48.0.0:
    //   key = urlsafe_b64encode(sha256(b"correct horse battery staple").digest())
    //   urlsafe_b64encode(Fernet(key).encrypt(password.encode()))
    const PASSPHRASE: &str = "correct horse battery staple";
    const PYTHON_KEY: &str = "xLvLH77JnWW_WdhcjLYu4tuWPw_hBvSD2a-nO9Tjmoo=";
    const VECTORS: &[(&str, &str)] = &[
        (
            "s3cret!",
            "Z0FBQUFBQnJCUWk3NXp2bERwcmpfVmxGTGxpZEJLOHlYaVhDLUpRNGRaby1WWFhmYk53NnoxdjhJdjR6S3RwbjZYRlVaRGJxTUs0cHlxVHVlUU9RQV9BRFdIOXNEdzRPT3c9PQ==",
        ),
        (
            "pässwörd;\"quoted\"",
            "Z0FBQUFBQnJCUWk3elU2b3VfeEJvVDBaZlVGODNicHNZQUN6ZWxCQ2dlQTBVS1p4YVFaQ1h1Zy1EbWFkdWRPOEdzamFoYlRMZG40Y29uQWxVVnBSWFliV29maGM3NE03d3BFR2ZianRaa2daOHdfNS14RTlUMEk9",
        ),
        (
            "",
            "Z0FBQUFBQnJCUWk3Qnp2WFBsRjFkb0ZLWUNleTFnUFIzd2F5Zl9VdmZlWnFBa3pQbHhZcnFTZmZnQ2dLdjFsQWpiX3RuYUh0VHlWSE5qamoyVGp1U1gtOG9BUXhVVzJza1E9PQ==",
        ),
    ];

    fn key() -> FernetKey {
        FernetKey::from_passphrase(&Secret::new(PASSPHRASE.into()))
    }

    #[test]
    fn passphrase_derivation_matches_python() {
        let ours = key();
        let theirs = FernetKey::from_base64(PYTHON_KEY).unwrap();
        assert_eq!(ours.signing, theirs.signing);
        assert_eq!(ours.encryption, theirs.encryption);
    }

    #[test]
    fn tokens_made_by_python_cryptography_decrypt() {
        for (plain, stored) in VECTORS {
            assert!(stored.starts_with("Z0FBQUFB"));
            assert_eq!(key().decrypt_note_password(stored).unwrap().expose(), plain);
            // Without padding too, as some tools strip it.
            let bare = stored.trim_end_matches('=');
            assert_eq!(key().decrypt_note_password(bare).unwrap().expose(), plain);
        }
    }

    #[test]
    fn a_wrong_key_or_damaged_token_is_an_error_not_a_panic() {
        let other = FernetKey::from_passphrase(&Secret::new("another".into()));
        assert_eq!(other.decrypt_note_password(VECTORS[0].1).unwrap_err(), FernetError::WrongKey);
        for junk in ["", "Z0FBQUFB", "not base64!", "gAAAAA", &"A".repeat(200)] {
            assert!(key().decrypt_note_password(junk).is_err());
            assert!(key().decrypt(junk).is_err());
        }
        let mut damaged = key().encrypt(b"x").into_bytes();
        let i = damaged.len() / 2;
        damaged[i] = if damaged[i] == b'A' { b'B' } else { b'A' };
        assert!(key().decrypt(std::str::from_utf8(&damaged).unwrap()).is_err());
    }

    #[test]
    fn our_tokens_round_trip_and_have_the_fernet_layout() {
        let token = key().encrypt_with(b"hello", [7; 16], 1_700_000_000);
        assert!(token.starts_with("gAAAAA"));
        assert_eq!(key().decrypt(&token).unwrap(), b"hello");
        let stored = key().encrypt_note_password(&Secret::new("pw".into()));
        assert!(stored.starts_with("Z0FBQUFB"));
        assert_eq!(key().decrypt_note_password(&stored).unwrap().expose(), "pw");
    }
}
