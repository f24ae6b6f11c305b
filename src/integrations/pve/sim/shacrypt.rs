//! SHA-256-crypt (`$5$`), the hash PVE stores for `cipassword` (PVE::Tools::encrypt_pw), written from
//! Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512" specification on top of `sha2`.

use sha2::{Digest, Sha256};

const ALPHABET: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DEFAULT_ROUNDS: u32 = 5000;

/// `n` bytes made by repeating `block`.
fn repeated(block: &[u8], n: usize) -> Vec<u8> {
    block.iter().copied().cycle().take(n).collect()
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The spec's algorithm; `salt` is cut to 16 bytes.
fn raw(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 32] {
    let salt = &salt[..salt.len().min(16)];
    let b = digest(&[password, salt, password]);
    let mut a = Sha256::new();
    a.update(password);
    a.update(salt);
    a.update(repeated(&b, password.len()));
    let mut n = password.len();
    while n > 0 {
        if n & 1 == 1 {
            a.update(b);
        } else {
            a.update(password);
        }
        n >>= 1;
    }
    let a: [u8; 32] = a.finalize().into();
    let dp = digest(&[&repeated(password, password.len() * password.len())]);
    let p = repeated(&dp, password.len());
    let ds = digest(&[&repeated(salt, salt.len() * (16 + a[0] as usize))]);
    let s = repeated(&ds, salt.len());
    let mut c = a;
    for i in 0..rounds {
        let mut h = Sha256::new();
        if i % 2 == 1 {
            h.update(&p);
        } else {
            h.update(c);
        }
        if i % 3 != 0 {
            h.update(&s);
        }
        if i % 7 != 0 {
            h.update(&p);
        }
        if i % 2 == 1 {
            h.update(c);
        } else {
            h.update(&p);
        }
        c = h.finalize().into();
    }
    c
}

fn encode(c: &[u8; 32]) -> String {
    const ORDER: [(usize, usize, usize); 10] = [
        (0, 10, 20),
        (21, 1, 11),
        (12, 22, 2),
        (3, 13, 23),
        (24, 4, 14),
        (15, 25, 5),
        (6, 16, 26),
        (27, 7, 17),
        (18, 28, 8),
        (9, 19, 29),
    ];
    let mut out = String::new();
    let mut push = |w: u32, n: usize| {
        let mut w = w;
        for _ in 0..n {
            out.push(ALPHABET[(w & 0x3f) as usize] as char);
            w >>= 6;
        }
    };
    for (x, y, z) in ORDER {
        push((u32::from(c[x]) << 16) | (u32::from(c[y]) << 8) | u32::from(c[z]), 4);
    }
    push((u32::from(c[31]) << 8) | u32::from(c[30]), 3);
    out
}

/// `$5$<salt>$<hash>` with the default 5000 rounds.
pub fn hash(password: &str, salt: &str) -> String {
    let salt = &salt[..salt.len().min(16)];
    format!("$5${salt}${}", encode(&raw(password.as_bytes(), salt.as_bytes(), DEFAULT_ROUNDS)))
}

/// Whether `password` hashes to `stored` (`$5$[rounds=N$]<salt>$<hash>`).
pub fn verify(password: &str, stored: &str) -> bool {
    let Some(rest) = stored.strip_prefix("$5$") else { return false };
    let (rounds, rest) = match rest.strip_prefix("rounds=").and_then(|r| r.split_once('$')) {
        Some((n, r)) => match n.parse::<u32>() {
            Ok(n) => (n.clamp(1000, 999_999_999), r),
            Err(_) => return false,
        },
        None => (DEFAULT_ROUNDS, rest),
    };
    let Some((salt, expected)) = rest.rsplit_once('$') else { return false };
    encode(&raw(password.as_bytes(), salt.as_bytes(), rounds)) == expected
}

/// A 16-character salt from the crypt alphabet.
pub(crate) fn salt(rng: &mut impl rand::Rng) -> String {
    (0..16).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
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
