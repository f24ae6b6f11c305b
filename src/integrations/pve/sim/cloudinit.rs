//! Cloud-init keys as qemu-server checks and stores them (`sshkeys`, `ipconfigN`, `cipassword`), and
//! the image a VM boots with, rebuilt from its config at each start (pve-qemu-day2.md §2.2–§2.6).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::reply::ApiError;
use super::shacrypt;
use crate::domain::values::SshPublicKey;

/// What the generated cloud-init data hands the guest, as the VM last started with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudInitImage {
    /// `ciuser`.
    pub user: Option<String>,
    /// `cipassword` exactly as the generator wrote it into user-data: the stored value, a `$5$`
    /// SHA-256-crypt hash after a config update, plain text when it came with the create call.
    pub password: Option<String>,
    /// `sshkeys`, percent-decoded, one key per line, blank lines dropped.
    pub ssh_keys: Vec<String>,
    /// `ipconfig0` as configured (`ip=dhcp`, `ip=192.0.2.10/24,gw=192.0.2.1`…).
    pub ipconfig0: Option<String>,
    /// `name`, else `VM<vmid>`.
    pub hostname: String,
    pub nameserver: Option<String>,
    pub searchdomain: Option<String>,
}

impl CloudInitImage {
    /// Builds the image from the current config, failing as the generator does on `ip=manual`.
    pub(crate) fn build(vmid: u64, config: &BTreeMap<String, String>) -> Result<Self, String> {
        for (key, value) in config.iter().filter(|(k, _)| k.starts_with("ipconfig")) {
            let nic = key.replacen("ipconfig", "net", 1);
            if config.contains_key(&nic)
                && let Some(ip) = value.split(',').find_map(|kv| kv.strip_prefix("ip="))
                && ip == "manual"
            {
                return Err("not a CIDR: manual".into());
            }
        }
        let get = |k: &str| config.get(k).cloned();
        Ok(CloudInitImage {
            user: get("ciuser"),
            password: get("cipassword"),
            ssh_keys: config.get("sshkeys").map(|k| decode_keys(k)).unwrap_or_default(),
            ipconfig0: get("ipconfig0"),
            hostname: get("name").unwrap_or_else(|| format!("VM{vmid}")),
            nameserver: get("nameserver"),
            searchdomain: get("searchdomain"),
        })
    }

    /// Whether a password was set.
    pub fn password_set(&self) -> bool {
        self.password.is_some()
    }

    /// Whether the guest's password is a crypt hash rather than plain text.
    pub fn password_hashed(&self) -> bool {
        self.password.as_deref().is_some_and(looks_hashed)
    }

    /// Whether `plain` is the password the guest gets (hash verified, plain text compared).
    pub fn password_matches(&self, plain: &str) -> bool {
        match self.password.as_deref() {
            Some(h) if h.starts_with("$5$") => shacrypt::verify(plain, h),
            Some(p) => p == plain,
            None => false,
        }
    }

    /// The static IPv4 address of `ipconfig0`, if any.
    pub fn static_ipv4(&self) -> Option<(Ipv4Addr, u8)> {
        static_cidr(self.ipconfig0.as_deref()?)
    }
}

/// `ip=a.b.c.d/nn` of an ipconfig value.
pub(crate) fn static_cidr(ipconfig: &str) -> Option<(Ipv4Addr, u8)> {
    let cidr = ipconfig.split(',').find_map(|kv| kv.strip_prefix("ip="))?;
    let (addr, prefix) = cidr.split_once('/')?;
    Some((addr.parse().ok()?, prefix.parse().ok().filter(|p| *p <= 32)?))
}

/// The value already looks like a crypt hash (`$1$`, `$5$`, `$6$`, `$2a$`, `$2y$`), so PVE keeps it.
pub(crate) fn looks_hashed(v: &str) -> bool {
    let rest = ["$1$", "$5$", "$6$", "$2a$", "$2y$"].iter().find_map(|p| v.strip_prefix(p));
    rest.is_some_and(|r| r.split('$').count() >= 2 && r.split('$').all(|p| !p.is_empty()))
}

/// What an update stores for `cipassword`: a `$5$` hash unless the OS is Windows or it is one already.
pub(crate) fn stored_password(value: &str, ostype: Option<&str>, salt: &str) -> String {
    let windows = ostype.is_some_and(|o| o.starts_with('w'));
    if windows || looks_hashed(value) { value.to_owned() } else { shacrypt::hash(value, salt) }
}

/// JSONSchema's `urlencoded` format: the characters `encodeURIComponent` leaves alone, plus `%`.
pub(crate) fn check_urlencoded(v: &str) -> Result<(), String> {
    let ok = v.chars().all(|c| c.is_ascii_alphanumeric() || "-%_.!~*'()".contains(c));
    if ok { Ok(()) } else { Err(format!("invalid format - invalid urlencoded string: {v}\n")) }
}

/// URI::Escape's `uri_unescape`: `%XX` becomes the byte, everything else (`+` too) stays.
pub(crate) fn uri_unescape(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) if hex.is_some_and(|h| h.chars().all(|c| c.is_ascii_hexdigit())) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded keys, one per non-blank line (the generator's view).
pub(crate) fn decode_keys(encoded: &str) -> Vec<String> {
    uri_unescape(encoded).split('\n').map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// validate_ssh_public_keys after one more percent-decoding: each non-blank line must be a key
/// `ssh-keygen -l` accepts, else 500 `SSH public key validation error`.
pub(crate) fn validate_keys(encoded: &str) -> Result<(), ApiError> {
    for line in uri_unescape(encoded).split('\n').filter(|l| !l.trim().is_empty()) {
        SshPublicKey::parse(line).map_err(|_| ApiError::internal("SSH public key validation error"))?;
    }
    Ok(())
}

fn cidr_ok<T: std::str::FromStr>(v: &str, max: u8) -> bool {
    v.split_once('/').is_some_and(|(a, p)| a.parse::<T>().is_ok() && p.parse::<u8>().is_ok_and(|p| p > 7 && p <= max))
}

/// The `pve-qm-ipconfig` format: `[ip=dhcp|manual|<IPv4>/<len>][,gw=<IPv4>][,ip6=…][,gw6=…]`.
pub(crate) fn check_ipconfig(key: &str, v: &str) -> Result<(), String> {
    let mut seen = BTreeMap::new();
    for part in v.split(',').filter(|p| !p.trim().is_empty()) {
        let Some((k, val)) = part.split_once('=') else {
            return Err("invalid format - value without key, but schema does not define a default key\n".into());
        };
        if !["ip", "gw", "ip6", "gw6"].contains(&k) {
            return Err(format!("invalid format - invalid key in comma-separated list property: {k}\n"));
        }
        if seen.insert(k, val).is_some() {
            return Err(format!("invalid format - duplicate key in comma-separated list property: {k}\n"));
        }
    }
    let mut errors = vec![];
    let mut fail = |sub: &str, msg: String| errors.push(format!("{key}.{sub}: {msg}"));
    if let Some(ip) = seen.get("ip")
        && !matches!(*ip, "dhcp" | "manual")
        && !cidr_ok::<Ipv4Addr>(ip, 32)
    {
        fail("ip", "invalid format - value does not look like a valid ipv4 network configuration\n".into());
    }
    if let Some(ip6) = seen.get("ip6")
        && !matches!(*ip6, "auto" | "dhcp" | "manual")
        && !cidr_ok::<Ipv6Addr>(ip6, 128)
    {
        fail("ip6", "invalid format - value does not look like a valid ipv6 network configuration\n".into());
    }
    if let Some(gw) = seen.get("gw") {
        if gw.parse::<Ipv4Addr>().is_err() {
            fail("gw", "invalid format - value does not look like a valid IPv4 address\n".into());
        }
        if !seen.contains_key("ip") {
            fail("ip", format!("missing property - '{key}.gw' requires this property"));
        }
    }
    if let Some(gw6) = seen.get("gw6") {
        if gw6.parse::<Ipv6Addr>().is_err() {
            fail("gw6", "invalid format - value does not look like a valid IPv6 address\n".into());
        }
        if !seen.contains_key("ip6") {
            fail("ip6", format!("missing property - '{key}.gw6' requires this property"));
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(format!("invalid format - format error\n{}", errors.iter().map(|e| format!("{e}\n")).collect::<String>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDt8YbSbGJ6pWAJ3T3ywd2M5tnUnTjQ/g3D3SJfGzpcn alice@lab";
    const ENCODED: &str =
        "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIDt8YbSbGJ6pWAJ3T3ywd2M5tnUnTjQ%2Fg3D3SJfGzpcn%20alice%40lab";

    #[test]
    fn sshkeys_are_checked_like_pve() {
        assert!(check_urlencoded(ENCODED).is_ok());
        assert_eq!(check_urlencoded(KEY).unwrap_err(), format!("invalid format - invalid urlencoded string: {KEY}\n"));
        // `quote_plus`-style spaces and a raw `/` are refused by the schema.
        assert!(check_urlencoded(&ENCODED.replace("%20", "+")).is_err());
        assert!(check_urlencoded(&ENCODED.replace("%2F", "/")).is_err());
        assert!(validate_keys(ENCODED).is_ok());
        assert_eq!(decode_keys(&format!("{ENCODED}%0A%0A{ENCODED}")), [KEY, KEY]);
        // Encoded twice: passes the schema, fails validation after one decoding.
        let twice = ENCODED.replace('%', "%25");
        assert!(check_urlencoded(&twice).is_ok());
        assert_eq!(validate_keys(&twice).unwrap_err().message, "SSH public key validation error");
        assert_eq!(uri_unescape("a+b%2x%41"), "a+b%2xA");
    }

    #[test]
    fn ipconfig_follows_the_format() {
        for ok in ["ip=dhcp", "ip=192.0.2.10/24,gw=192.0.2.1", "ip=manual", "ip6=auto", "ip=dhcp,ip6=dhcp", ""] {
            assert!(check_ipconfig("ipconfig0", ok).is_ok(), "{ok}");
        }
        assert_eq!(
            check_ipconfig("ipconfig0", "ip=auto").unwrap_err(),
            "invalid format - format error\nipconfig0.ip: invalid format - value does not look like a valid ipv4 \
             network configuration\n\n"
        );
        assert!(check_ipconfig("ipconfig0", "ip=192.0.2.10/4").is_err());
        assert!(check_ipconfig("ipconfig0", "ip=192.0.2.10").is_err());
        assert!(check_ipconfig("ipconfig0", "gw=192.0.2.1").unwrap_err().contains("requires this property"));
        assert!(check_ipconfig("ipconfig0", "ip=dhcp,dns=1.1.1.1").unwrap_err().contains("invalid key"));
    }

    #[test]
    fn passwords_are_hashed_unless_they_already_are() {
        let stored = stored_password("s3cret", Some("l26"), "abcdefgh12345678");
        assert!(stored.starts_with("$5$abcdefgh12345678$"));
        assert_eq!(stored_password(&stored, Some("l26"), "x"), stored);
        assert_eq!(stored_password("s3cret", Some("win11"), "x"), "s3cret");
        let mut config = BTreeMap::new();
        config.insert("cipassword".to_owned(), stored);
        config.insert("sshkeys".to_owned(), ENCODED.to_owned());
        let image = CloudInitImage::build(100, &config).unwrap();
        assert!(image.password_hashed() && image.password_matches("s3cret") && !image.password_matches("nope"));
        assert_eq!((image.hostname.as_str(), image.ssh_keys.as_slice()), ("VM100", [KEY.to_owned()].as_slice()));
    }
}
