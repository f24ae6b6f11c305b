//! TOTP as PVE checks it (RFC 6238: HMAC-SHA-1, 30 s steps, 6 digits, one step of drift either way).

use hmac::{Hmac, Mac};
use sha1::Sha1;

const STEP: i64 = 30;

/// RFC 4648 base32 (upper or lower case, `=` padding and spaces ignored); `None` on other characters.
fn base32_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u32, Vec::new());
    for c in text.bytes().filter(|c| *c != b'=' && *c != b' ') {
        let digit = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase())? as u32;
        value = (value << 5) | digit;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((value >> bits) as u8);
            value &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The 6-digit code of the base32 `secret` at Unix time `time`; `None` for a malformed secret.
pub fn totp_code(secret: &str, time: i64) -> Option<String> {
    let key = base32_decode(secret)?;
    let counter = (time.div_euclid(STEP) as u64).to_be_bytes();
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&key).ok()?;
    mac.update(&counter);
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let word = u32::from_be_bytes([digest[offset], digest[offset + 1], digest[offset + 2], digest[offset + 3]]);
    Some(format!("{:06}", (word & 0x7fff_ffff) % 1_000_000))
}

/// Whether `code` is the code of `secret` for the step of `now` or the one before or after.
pub fn verify(secret: &str, code: &str, now: i64) -> bool {
    code.len() == 6 && [-STEP, 0, STEP].iter().any(|d| totp_code(secret, now + d).as_deref() == Some(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, secret "12345678901234567890", last six digits.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(totp_code(secret, 59).unwrap(), "287082");
        assert_eq!(totp_code(secret, 1_111_111_109).unwrap(), "081804");
        assert_eq!(totp_code(secret, 1_234_567_890).unwrap(), "005924");
        assert_eq!(totp_code(secret, 2_000_000_000).unwrap(), "279037");
        assert!(verify(secret, "081804", 1_111_111_109 + 30));
        assert!(!verify(secret, "081804", 1_111_111_109 + 90));
        assert!(totp_code("not base32!", 0).is_none());
    }
}
