//! `PveConfig`: where the cluster is and how to authenticate, from the `pve_*` settings.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::secrets::Secret;

use super::tls::parse_fingerprint;

/// How the client proves who it is.
#[derive(Debug, Clone)]
pub enum PveAuth {
    /// API token (recommended): `USER@REALM!ID` and its secret.
    Token { id: String, secret: Secret<String> },
    /// Ticket login with a password; the ticket is renewed before it expires.
    Password { user: String, password: Secret<String> },
}

/// How the server certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Against the system's trusted roots (the default).
    SystemRoots,
    /// The end-entity certificate's SHA-256 must equal this (what `pvenode cert info` shows).
    Fingerprint([u8; 32]),
    /// No verification at all: explicit opt-out, logged loudly.
    Insecure,
}

/// Everything needed to build a [`super::Client`].
#[derive(Debug, Clone)]
pub struct PveConfig {
    /// `scheme://host:port/…/api2/json`, without a trailing slash.
    pub base_url: String,
    pub auth: PveAuth,
    pub tls: TlsMode,
    /// Per-call timeout.
    pub timeout: Duration,
}

/// A `pve_*` setting that cannot be used; displayed as one line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid setting {key}: {message}")]
pub struct PveConfigError {
    pub key: &'static str,
    pub message: String,
}

fn invalid(key: &'static str, message: impl Into<String>) -> PveConfigError {
    PveConfigError { key, message: message.into() }
}

impl PveConfig {
    /// A config for `url` (with or without `/api2/json`, pve-api.md intro) and `auth`, verifying TLS
    /// against the system roots, with a 30 s timeout.
    pub fn new(url: &str, auth: PveAuth) -> Result<Self, PveConfigError> {
        Ok(Self { base_url: base_url(url)?, auth, tls: TlsMode::SystemRoots, timeout: Duration::from_secs(30) })
    }

    /// [`PveConfig::from_raw`] on the settings' raw keys.
    pub fn from_settings(settings: &crate::config::Settings) -> Result<Option<Self>, PveConfigError> {
        Self::from_raw(&settings.raw)
    }

    /// Reads `pve_url`, `pve_token` or `pve_user` + `pve_password`, `pve_fingerprint`, `pve_insecure`
    /// and `pve_timeout_secs` from raw settings. `Ok(None)` when `pve_url` is not set.
    pub fn from_raw(raw: &BTreeMap<String, String>) -> Result<Option<Self>, PveConfigError> {
        let get = |k: &str| raw.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let Some(url) = get("pve_url") else { return Ok(None) };
        let auth = match (get("pve_token"), get("pve_user"), get("pve_password")) {
            (Some(token), None, None) => parse_token(token)?,
            (None, Some(user), Some(password)) => {
                if !user.contains('@') {
                    return Err(invalid("PROXDESK_PVE_USER", "must be USER@REALM (e.g. proxdesk@pve)"));
                }
                PveAuth::Password { user: user.to_owned(), password: Secret::new(password.to_owned()) }
            }
            (Some(_), _, _) => {
                return Err(invalid("PROXDESK_PVE_TOKEN", "set either a token or PVE_USER + PVE_PASSWORD, not both"));
            }
            (None, Some(_), None) => return Err(invalid("PROXDESK_PVE_PASSWORD", "required with PROXDESK_PVE_USER")),
            (None, None, Some(_)) => return Err(invalid("PROXDESK_PVE_USER", "required with PROXDESK_PVE_PASSWORD")),
            (None, None, None) => {
                return Err(invalid(
                    "PROXDESK_PVE_TOKEN",
                    "set a token (USER@REALM!ID=SECRET) or PVE_USER + PVE_PASSWORD",
                ));
            }
        };
        let insecure = match get("pve_insecure") {
            None | Some("false" | "0" | "no") => false,
            Some("true" | "1" | "yes") => true,
            Some(other) => return Err(invalid("PROXDESK_PVE_INSECURE", format!("{other:?}: expected true or false"))),
        };
        let tls = match (get("pve_fingerprint"), insecure) {
            (Some(_), true) => {
                return Err(invalid(
                    "PROXDESK_PVE_INSECURE",
                    "conflicts with PROXDESK_PVE_FINGERPRINT; pin or opt out",
                ));
            }
            (Some(fp), false) => {
                TlsMode::Fingerprint(parse_fingerprint(fp).map_err(|m| invalid("PROXDESK_PVE_FINGERPRINT", m))?)
            }
            (None, true) => TlsMode::Insecure,
            (None, false) => TlsMode::SystemRoots,
        };
        let timeout = match get("pve_timeout_secs") {
            None => Duration::from_secs(30),
            Some(v) => match v.parse::<u64>() {
                Ok(n @ 1..=600) => Duration::from_secs(n),
                _ => return Err(invalid("PROXDESK_PVE_TIMEOUT_SECS", format!("{v:?}: expected 1 to 600"))),
            },
        };
        Ok(Some(Self { base_url: base_url(url)?, auth, tls, timeout }))
    }
}

/// `USER@REALM!ID=SECRET`; the secret starts after the last `=` (pve-api.md §2.4).
fn parse_token(token: &str) -> Result<PveAuth, PveConfigError> {
    let err = || invalid("PROXDESK_PVE_TOKEN", "expected USER@REALM!ID=SECRET");
    let (id, secret) = token.rsplit_once('=').ok_or_else(err)?;
    let (user, name) = id.split_once('!').ok_or_else(err)?;
    if !user.contains('@') || name.is_empty() || secret.is_empty() {
        return Err(err());
    }
    Ok(PveAuth::Token { id: id.to_owned(), secret: Secret::new(secret.to_owned()) })
}

fn base_url(url: &str) -> Result<String, PveConfigError> {
    let parsed = url::Url::parse(url).map_err(|e| invalid("PROXDESK_PVE_URL", format!("{url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid("PROXDESK_PVE_URL", format!("{url:?}: expected https://host:8006")));
    }
    let trimmed = url.trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/api2/json").unwrap_or(trimmed);
    Ok(format!("{trimmed}/api2/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn url_with_or_without_api_suffix_gives_one_base() {
        for url in
            ["https://pve:8006", "https://pve:8006/", "https://pve:8006/api2/json", "https://pve:8006/api2/json/"]
        {
            assert_eq!(base_url(url).unwrap(), "https://pve:8006/api2/json");
        }
    }

    #[test]
    fn token_splits_at_the_last_equals_sign() {
        let cfg = PveConfig::from_raw(&raw(&[("pve_url", "https://pve:8006"), ("pve_token", "a@pve!t=x=y")]))
            .unwrap()
            .unwrap();
        let PveAuth::Token { id, secret } = cfg.auth else { panic!() };
        assert_eq!((id.as_str(), secret.expose().as_str()), ("a@pve!t=x", "y"));
        assert_eq!(cfg.tls, TlsMode::SystemRoots);
    }

    #[test]
    fn conflicting_or_missing_settings_are_refused_with_their_name() {
        let e = PveConfig::from_raw(&raw(&[("pve_url", "https://pve:8006")])).unwrap_err();
        assert_eq!(e.key, "PROXDESK_PVE_TOKEN");
        let e = PveConfig::from_raw(&raw(&[
            ("pve_url", "https://pve:8006"),
            ("pve_token", "a@pve!t=s"),
            ("pve_insecure", "true"),
            ("pve_fingerprint", "00"),
        ]))
        .unwrap_err();
        assert_eq!(e.key, "PROXDESK_PVE_INSECURE");
        assert!(PveConfig::from_raw(&raw(&[])).unwrap().is_none());
    }
}
