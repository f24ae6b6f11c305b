//! SHA-256-crypt (`$5$`), the hash PVE stores for `cipassword` (PVE::Tools::encrypt_pw), through the
//! `sha-crypt` crate; this file only writes and reads the `$5$[rounds=N$]<salt>$<hash>` string.

use sha_crypt::{ROUNDS_DEFAULT, Sha256Params, sha256_crypt_b64};

const SALT_ALPHABET: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn crypt(password: &str, salt: &str, rounds: usize) -> Option<String> {
    let params = Sha256Params::new(rounds).ok()?;
    sha256_crypt_b64(password.as_bytes(), salt.as_bytes(), &params).ok()
}

/// `$5$<salt>$<hash>` with the default 5000 rounds; the salt is cut to 16 bytes as crypt(3) does.
pub fn hash(password: &str, salt: &str) -> String {
    let salt = &salt[..salt.len().min(16)];
    let hashed = crypt(password, salt, ROUNDS_DEFAULT).expect("the default rounds are valid");
    format!("$5${salt}${hashed}")
}

/// Whether `password` hashes to `stored` (`$5$[rounds=N$]<salt>$<hash>`).
pub fn verify(password: &str, stored: &str) -> bool {
    let Some(rest) = stored.strip_prefix("$5$") else { return false };
    let (rounds, rest) = match rest.strip_prefix("rounds=").and_then(|r| r.split_once('$')) {
        Some((n, r)) => match n.parse::<usize>() {
            Ok(n) => (n.clamp(1000, 999_999_999), r),
            Err(_) => return false,
        },
        None => (ROUNDS_DEFAULT, rest),
    };
    let Some((salt, expected)) = rest.rsplit_once('$') else { return false };
    crypt(password, &salt[..salt.len().min(16)], rounds).is_some_and(|h| h == expected)
}

/// A 16-character salt from the crypt alphabet.
pub(crate) fn salt(rng: &mut impl rand::Rng) -> String {
    (0..16).map(|_| SALT_ALPHABET[rng.random_range(0..SALT_ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_specifications_test_vector() {
        // Also what `openssl passwd -5 -salt saltstring 'Hello world!'` prints.
        let h = hash("Hello world!", "saltstring");
        assert_eq!(h, "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5");
        assert!(verify("Hello world!", &h));
        assert!(!verify("Hello world", &h));
        let rounds = "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA";
        assert!(verify("Hello world!", rounds));
    }
}
