//! Newtypes for user input: each `parse` is the only way in, so the rest of the code never sees raw text.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::FieldError;

/// An RFC 1123 host name label: 1–63 of `a-z 0-9 -`, not starting or ending with `-`. Stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hostname(String);

impl Hostname {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim().to_ascii_lowercase();
        let err = || FieldError::new("hostname", "error.hostname_invalid");
        if s.is_empty() || s.len() > 63 || s.starts_with('-') || s.ends_with('-') {
            return Err(err());
        }
        if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(err());
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An OpenSSH public key line (`type base64 [comment]`) whose blob really is a key of that type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshPublicKey(String);

const SSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

impl SshPublicKey {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let err = || FieldError::new("ssh_public_key", "error.ssh_key_invalid");
        let line = raw.trim();
        if line.len() > 16 * 1024 || line.contains(['\n', '\r', '\0']) {
            return Err(err());
        }
        let mut parts = line.split_whitespace();
        let (Some(kind), Some(blob)) = (parts.next(), parts.next()) else {
            return Err(err());
        };
        if !SSH_KEY_TYPES.contains(&kind) {
            return Err(err());
        }
        let bytes = STANDARD.decode(blob).map_err(|_| err())?;
        // The blob starts with the key type as an SSH string: u32 length, then the name.
        let declared = bytes
            .get(..4)
            .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
            .and_then(|n| bytes.get(4..4 + n))
            .ok_or_else(err)?;
        if declared != kind.as_bytes() || bytes.len() < 4 + kind.len() + 16 {
            return Err(err());
        }
        let comment: Vec<&str> = parts.collect();
        let comment = comment.join(" ");
        if !comment.chars().all(|c| !c.is_control()) {
            return Err(err());
        }
        let normal = if comment.is_empty() { format!("{kind} {blob}") } else { format!("{kind} {blob} {comment}") };
        Ok(Self(normal))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A login name for proxdesk accounts: 2–32 of `a-z 0-9 _ . -`, starting with a letter, and not a
/// system account's name (`login_name::check`), since it becomes the owner's login in their guests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        let ok = (2..=32).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'));
        if !ok {
            return Err(FieldError::new("username", "error.username_invalid"));
        }
        super::login_name::check(s).map_err(|e| e.field_error("username"))?;
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: at least 10 characters, at most 256.
pub fn check_new_password(field: &'static str, raw: &str) -> Result<(), FieldError> {
    let n = raw.chars().count();
    if n < 10 {
        return Err(FieldError::new(field, "error.password_short").with("min", 10));
    }
    if n > 256 {
        return Err(FieldError::new(field, "error.password_long").with("max", 256));
    }
    Ok(())
}

/// Free text with a length bound and no control characters but newlines and tabs.
pub fn bounded_text(field: &'static str, raw: &str, min: usize, max: usize) -> Result<String, FieldError> {
    let s = raw.trim();
    let n = s.chars().count();
    if n < min {
        return Err(FieldError::new(field, "error.required"));
    }
    if n > max {
        return Err(FieldError::new(field, "error.too_long").with("max", max));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
        return Err(FieldError::new(field, "error.control_chars"));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDt8YbSbGJ6pWAJ3T3ywd2M5tnUnTjQ/g3D3SJfGzpcn alice@lab";

    #[test]
    fn hostnames_follow_rfc1123_labels() {
        for ok in ["a", "web-1", "LAB42", "x".repeat(63).as_str()] {
            assert!(Hostname::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(Hostname::parse("LAB42").unwrap().as_str(), "lab42");
        for bad in ["", "-a", "a-", "a_b", "a.b", "x".repeat(64).as_str(), "a;rm -rf /", "é"] {
            assert!(Hostname::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ssh_keys_must_decode_to_their_declared_type() {
        assert_eq!(SshPublicKey::parse(ED25519).unwrap().as_str(), ED25519);
        for bad in [
            "",
            "ssh-ed25519",
            "ssh-dss AAAAB3NzaC1kc3MAAACBAP",
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIDt8YbSbGJ6pWAJ3T3ywd2M5tnUnTjQ/g3D3SJfGzpcn",
            "ssh-ed25519 not-base64!",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDt8YbSbGJ6pWAJ3T3ywd2M5tnUnTjQ/g3D3SJfGzpcn a\nb",
        ] {
            assert!(SshPublicKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn usernames_and_passwords() {
        assert!(Username::parse("alice").is_ok());
        assert!(Username::parse("a").is_err());
        assert!(Username::parse("Alice").is_err());
        assert!(Username::parse("al ice").is_err());
        assert_eq!(Username::parse("www-data").unwrap_err().code, "error.username_reserved");
        assert_eq!(Username::parse("Root").unwrap_err().code, "error.username_invalid");
        assert!(check_new_password("password", "short").is_err());
        assert!(check_new_password("password", "long enough pw").is_ok());
    }
}
