//! `DirectoryConfig`: where the directory is, how the connection is secured, how people and their groups
//! are found, from the `ldap_*` settings.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::error::LdapError;
use super::filter::FilterTemplate;
use super::tls;
use crate::config::RawSettings;
use crate::secrets::Secret;

/// How the connection to the directory is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `ldap://` without StartTLS: passwords cross the network in the clear.
    Plain,
    /// `ldap://` upgraded with the StartTLS extended operation before anything else is sent.
    StartTls,
    /// `ldaps://`: TLS from the first byte.
    Ldaps,
}

/// The account proxdesk binds as to search for people (`ldap_bind_dn`, `ldap_bind_password`).
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub dn: String,
    pub password: Secret<String>,
}

/// Which attributes say what about a person and a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// Identifies the person for good (`entryUUID`, `objectGUID`…).
    pub id: String,
    /// The account name made on a first sign-in.
    pub name: String,
    pub display_name: String,
    pub mail: String,
    /// Names a group.
    pub group_name: String,
}

/// Everything needed to build a [`super::Directory`].
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    pub url: Url,
    pub transport: Transport,
    /// Whether the server certificate must chain to `ldap_ca_file` (rather than the system roots).
    pub pinned_ca: bool,
    /// `None` for plain connections.
    pub(super) tls: Option<Arc<rustls::ClientConfig>>,
    /// `None`: anonymous search.
    pub service: Option<ServiceAccount>,
    pub base_dn: String,
    pub user_filter: FilterTemplate,
    pub group_base_dn: String,
    pub group_filter: FilterTemplate,
    pub attributes: Attributes,
    /// Limit of the connection and of each operation.
    pub timeout: Duration,
}

fn invalid(key: &'static str, message: impl Into<String>) -> LdapError {
    LdapError::Config { key, message: message.into() }
}

impl DirectoryConfig {
    /// Reads and checks every connection and search setting; `Ok(None)` when `ldap_url` is not set.
    pub fn from_settings(raw: &RawSettings) -> Result<Option<Self>, LdapError> {
        let get = |k: &str| raw.get(k).map(str::trim).filter(|v| !v.is_empty());
        let Some(url_text) = get("ldap_url") else { return Ok(None) };
        let url = Url::parse(url_text).map_err(|e| invalid("PROXDESK_LDAP_URL", format!("{url_text:?}: {e}")))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("PROXDESK_LDAP_URL", "must name a host (ldap://host or ldaps://host:636)"));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(invalid(
                "PROXDESK_LDAP_URL",
                "only scheme, host and port; put the base DN in PROXDESK_LDAP_BASE_DN",
            ));
        }
        let starttls = parse_bool(raw, "ldap_starttls", "PROXDESK_LDAP_STARTTLS")?;
        let transport = match (url.scheme(), starttls) {
            ("ldap", false) => Transport::Plain,
            ("ldap", true) => Transport::StartTls,
            ("ldaps", false) => Transport::Ldaps,
            ("ldaps", true) => {
                return Err(invalid("PROXDESK_LDAP_STARTTLS", "is for ldap:// URLs; ldaps:// is TLS from the start"));
            }
            (other, _) => {
                return Err(invalid("PROXDESK_LDAP_URL", format!("scheme {other}: must be ldap:// or ldaps://")));
            }
        };
        let ca = match get("ldap_ca_file") {
            Some(path) => {
                if transport == Transport::Plain {
                    return Err(invalid(
                        "PROXDESK_LDAP_CA_FILE",
                        "is only used over TLS: use an ldaps:// URL or PROXDESK_LDAP_STARTTLS=true",
                    ));
                }
                Some(tls::read_ca_file(Path::new(path)).map_err(|m| invalid("PROXDESK_LDAP_CA_FILE", m))?)
            }
            None => None,
        };
        let tls = match transport {
            Transport::Plain => None,
            _ => Some(tls::client_config(ca.as_deref()).map_err(|m| invalid("PROXDESK_LDAP_CA_FILE", m))?),
        };
        let service = match (get("ldap_bind_dn"), raw.get("ldap_bind_password")) {
            (Some(dn), Some(password)) => {
                Some(ServiceAccount { dn: dn.to_owned(), password: Secret::new(password.to_owned()) })
            }
            (None, None) => None,
            // A DN with an empty password is an unauthenticated bind (RFC 4513 §5.1.2): refused by
            // careful servers, silently anonymous on others.
            (Some(_), None) => {
                return Err(invalid("PROXDESK_LDAP_BIND_PASSWORD", "is required with PROXDESK_LDAP_BIND_DN"));
            }
            (None, Some(_)) => {
                return Err(invalid("PROXDESK_LDAP_BIND_DN", "is required with PROXDESK_LDAP_BIND_PASSWORD"));
            }
        };
        let base_dn = get("ldap_base_dn")
            .ok_or_else(|| invalid("PROXDESK_LDAP_BASE_DN", "is required with PROXDESK_LDAP_URL"))?
            .to_owned();
        let group_base_dn = get("ldap_group_base_dn").map_or_else(|| base_dn.clone(), str::to_owned);
        let user_filter = FilterTemplate::parse(
            "PROXDESK_LDAP_USER_FILTER",
            get("ldap_user_filter").unwrap_or("(&(objectClass=inetOrgPerson)(uid={username}))"),
            "{username}",
        )?;
        let group_filter = FilterTemplate::parse(
            "PROXDESK_LDAP_GROUP_FILTER",
            get("ldap_group_filter").unwrap_or("(&(objectClass=groupOfNames)(member={dn}))"),
            "{dn}",
        )?;
        let attr = |key: &'static str, env: &'static str, default: &str| -> Result<String, LdapError> {
            let value = get(key).unwrap_or(default);
            // An attribute description (RFC 4512 §2.5): a name or OID, options after `;`.
            if value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ';')) {
                Ok(value.to_owned())
            } else {
                Err(invalid(env, format!("{value:?} is not an attribute name")))
            }
        };
        let attributes = Attributes {
            id: attr("ldap_id_attr", "PROXDESK_LDAP_ID_ATTR", "entryUUID")?,
            name: attr("ldap_name_attr", "PROXDESK_LDAP_NAME_ATTR", "uid")?,
            display_name: attr("ldap_display_name_attr", "PROXDESK_LDAP_DISPLAY_NAME_ATTR", "cn")?,
            mail: attr("ldap_mail_attr", "PROXDESK_LDAP_MAIL_ATTR", "mail")?,
            group_name: attr("ldap_group_name_attr", "PROXDESK_LDAP_GROUP_NAME_ATTR", "cn")?,
        };
        let secs: u64 = raw
            .parse("ldap_timeout_secs")
            .map_err(|e| invalid("PROXDESK_LDAP_TIMEOUT_SECS", e.to_string()))?
            .unwrap_or(5);
        if !(1..=300).contains(&secs) {
            return Err(invalid("PROXDESK_LDAP_TIMEOUT_SECS", "must be between 1 and 300 seconds"));
        }
        Ok(Some(Self {
            url,
            transport,
            pinned_ca: ca.is_some(),
            tls,
            service,
            base_dn,
            user_filter,
            group_base_dn,
            group_filter,
            attributes,
            timeout: Duration::from_secs(secs),
        }))
    }

    /// `host`, or `host:port` when the port is not the scheme's default (389, 636): the issuer of the
    /// identities this directory vouches for, so switching between StartTLS and LDAPS keeps them.
    pub fn server_name(&self) -> String {
        let host = self.url.host_str().unwrap_or_default();
        let default_port = if self.url.scheme() == "ldaps" { 636 } else { 389 };
        match self.url.port() {
            Some(port) if port != default_port => format!("{host}:{port}"),
            _ => host.to_owned(),
        }
    }

    /// Whether the directory is on this machine (plain LDAP to it does not cross the network).
    pub fn is_loopback(&self) -> bool {
        // `ldap:` is not a special scheme to the URL parser: an IP address comes back as a domain.
        let host = self.url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        match host.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => host.eq_ignore_ascii_case("localhost"),
        }
    }
}

fn parse_bool(raw: &RawSettings, key: &str, env: &'static str) -> Result<bool, LdapError> {
    Ok(raw.parse::<bool>(key).map_err(|e| invalid(env, e.to_string()))?.unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawSettings {
        let mut raw = RawSettings::defaults();
        raw.set("ldap_base_dn", "dc=example,dc=org");
        for (k, v) in pairs {
            raw.set(k, *v);
        }
        raw
    }

    fn key_of(r: Result<Option<DirectoryConfig>, LdapError>) -> &'static str {
        match r {
            Err(LdapError::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn no_url_means_no_directory() {
        assert!(DirectoryConfig::from_settings(&RawSettings::defaults()).unwrap().is_none());
    }

    #[test]
    fn plain_starttls_and_ldaps_are_told_apart() {
        let plain = DirectoryConfig::from_settings(&raw(&[("ldap_url", "ldap://dir.example.org")])).unwrap().unwrap();
        assert_eq!(plain.transport, Transport::Plain);
        assert!(plain.tls.is_none());
        assert_eq!(plain.server_name(), "dir.example.org");
        assert!(!plain.is_loopback());
        let start =
            DirectoryConfig::from_settings(&raw(&[("ldap_url", "ldap://127.0.0.1:1389"), ("ldap_starttls", "true")]))
                .unwrap()
                .unwrap();
        assert_eq!(start.transport, Transport::StartTls);
        assert!(start.tls.is_some() && !start.pinned_ca);
        assert_eq!(start.server_name(), "127.0.0.1:1389");
        assert!(start.is_loopback());
        for url in ["ldap://[::1]", "ldap://LocalHost:389"] {
            assert!(
                DirectoryConfig::from_settings(&raw(&[("ldap_url", url)])).unwrap().unwrap().is_loopback(),
                "{url}"
            );
        }
        let ldaps = DirectoryConfig::from_settings(&raw(&[("ldap_url", "ldaps://dir:636/")])).unwrap().unwrap();
        assert_eq!((ldaps.transport, ldaps.server_name()), (Transport::Ldaps, "dir".to_owned()));
    }

    #[test]
    fn each_unusable_setting_is_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("ldap_url", "http://dir")], "PROXDESK_LDAP_URL"),
            (&[("ldap_url", "ldap://dir/dc=example")], "PROXDESK_LDAP_URL"),
            (&[("ldap_url", "ldaps://dir"), ("ldap_starttls", "true")], "PROXDESK_LDAP_STARTTLS"),
            (&[("ldap_url", "ldap://dir"), ("ldap_starttls", "yes please")], "PROXDESK_LDAP_STARTTLS"),
            (&[("ldap_url", "ldaps://dir"), ("ldap_ca_file", "/nonexistent/ca.pem")], "PROXDESK_LDAP_CA_FILE"),
            (&[("ldap_url", "ldap://dir"), ("ldap_ca_file", "/etc/hostname")], "PROXDESK_LDAP_CA_FILE"),
            (&[("ldap_url", "ldap://dir"), ("ldap_bind_dn", "cn=svc")], "PROXDESK_LDAP_BIND_PASSWORD"),
            (&[("ldap_url", "ldap://dir"), ("ldap_bind_password", "x")], "PROXDESK_LDAP_BIND_DN"),
            (&[("ldap_url", "ldap://dir"), ("ldap_user_filter", "(uid=alice)")], "PROXDESK_LDAP_USER_FILTER"),
            (&[("ldap_url", "ldap://dir"), ("ldap_group_filter", "(member={username})")], "PROXDESK_LDAP_GROUP_FILTER"),
            (&[("ldap_url", "ldap://dir"), ("ldap_id_attr", "uid)(x")], "PROXDESK_LDAP_ID_ATTR"),
            (&[("ldap_url", "ldap://dir"), ("ldap_timeout_secs", "0")], "PROXDESK_LDAP_TIMEOUT_SECS"),
        ];
        for (pairs, key) in cases {
            assert_eq!(key_of(DirectoryConfig::from_settings(&raw(pairs))), *key, "{pairs:?}");
        }
        let mut no_base = RawSettings::defaults();
        no_base.set("ldap_url", "ldap://dir");
        assert_eq!(key_of(DirectoryConfig::from_settings(&no_base)), "PROXDESK_LDAP_BASE_DN");
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "no certificate here\n").unwrap();
        let r = DirectoryConfig::from_settings(&raw(&[
            ("ldap_url", "ldaps://dir"),
            ("ldap_ca_file", path.to_str().unwrap()),
        ]));
        match r {
            Err(LdapError::Config { key, message }) => {
                assert_eq!(key, "PROXDESK_LDAP_CA_FILE");
                assert!(message.contains("no certificate"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
