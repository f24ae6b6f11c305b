//! One typed `Settings`: defaults, then `proxdesk.toml`, then `PROXDESK_*` environment variables.
//!
//! Keys in the file are the environment names without the prefix, lower-cased (`PROXDESK_LISTEN` is
//! `listen`), so the two can never drift apart. Every key is listed in `KEYS` and in the README.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::domain::proxies::TrustedProxies;
use crate::secrets::{Secret, SecretKey};

/// Every setting proxdesk reads, with its default (`None`: no default) and a one-line description.
/// `PROXDESK_*` variables that are not settings: the config file's path, and the test suite's switches
/// (external programs required; the database backend it runs on), which reach the processes it starts.
const NOT_SETTINGS: &[&str] = &["CONFIG", "REQUIRE_EXTERNAL", "TEST_DB"];

pub const KEYS: &[(&str, Option<&str>, &str)] = &[
    ("listen", Some("127.0.0.1:8080"), "address:port the web server listens on"),
    ("data_dir", None, "directory for the SQLite database and the generated secret key"),
    ("database_url", None, "sqlite:// or postgres:// URL; default: proxdesk.sqlite in data_dir"),
    ("public_url", None, "URL people use to reach proxdesk; sets links, Secure cookies, Origin checks"),
    ("secret_key", None, "64 hex characters; key for secrets at rest; generated into data_dir if unset"),
    ("session_hours", Some("12"), "lifetime of a browser session in hours"),
    (
        "trusted_proxies",
        None,
        "reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For and X-Forwarded-Proto are believed",
    ),
    ("db_pool", Some("4"), "database connections in the pool"),
    ("log", Some("info"), "log filter (tracing EnvFilter syntax)"),
    ("log_format", Some("text"), "log lines as `text` or `json` (one JSON object a line, with the request id)"),
    (
        "metrics_listen",
        None,
        "address:port of a separate listener serving /metrics without auth (for Prometheus on an internal network)",
    ),
    ("metrics_token", None, "bearer token that opens /metrics on the main listener; unset there: 404"),
    ("pve_url", None, "Proxmox VE API URL, https://host:8006 (with or without /api2/json)"),
    ("pve_token", None, "PVE API token USER@REALM!ID=SECRET (recommended); or pve_user + pve_password"),
    ("pve_user", None, "PVE user (USER@REALM) for ticket login, with pve_password"),
    ("pve_password", None, "password of pve_user"),
    ("pve_fingerprint", None, "SHA-256 fingerprint of the PVE certificate (AB:CD:..) to pin instead of system roots"),
    (
        "pve_insecure",
        Some("false"),
        "true turns off PVE certificate verification (logged loudly); prefer pve_fingerprint",
    ),
    ("pve_timeout_secs", Some("30"), "timeout of each PVE API call, in seconds"),
    (
        "machine_live_timeout_ms",
        Some("2000"),
        "bound of a machine details page's live reads (status, charts), in milliseconds; past it the page shows stored facts",
    ),
    ("guac_url", None, "Guacamole base URL, e.g. https://host/guacamole; unset: no Guacamole sync"),
    ("guac_user", None, "Guacamole account the sync logs in as"),
    ("guac_password", None, "its password"),
    ("guac_data_source", None, "Guacamole data source to write into; default: the one login returns"),
    ("guac_schedule", Some("0 */5 * * * *"), "cron schedule of the Guacamole sync (6 fields, seconds first, UTC)"),
    ("guac_create_users", Some("false"), "create missing Guacamole users for machine owners (true/false)"),
    ("guac_concurrency", Some("8"), "Guacamole calls in flight at once when the sync reads connections (1-64)"),
    (
        "guac_pve_concurrency",
        Some("16"),
        "PVE calls in flight at once when the Guacamole sync reads guests' configs and addresses (1-64)",
    ),
    (
        "guac_agent_recheck_mins",
        Some("30"),
        "minutes a silent QEMU guest agent is not asked again by the Guacamole sync (1-10080)",
    ),
    ("notes_key", None, "passphrase of encrypted passwords in Proxmox notes (Fernet, as the existing sync tool)"),
    ("console_idle_secs", Some("900"), "a console session with no traffic either way for this long is closed"),
    ("console_max_secs", Some("28800"), "maximum length of one console session, in seconds"),
    (
        "console_max_sessions_per_user",
        Some("4"),
        "console sessions one person may have open at once, across replicas (1-100)",
    ),
    (
        "console_max_urls_per_minute",
        Some("10"),
        "console URLs one person may be issued per minute through the API (1-1000)",
    ),
    (
        "static_dir",
        Some("static"),
        "directory whose vendor/ holds the console's browser libraries (filled by `npm ci`)",
    ),
    // SSH finishing (integrations::ssh::config).
    ("ssh_key_file", None, "private key proxdesk logs in to the nodes with"),
    ("ssh_user", Some("root"), "login user on the nodes"),
    ("ssh_known_hosts", None, "OpenSSH known_hosts file; host keys are always checked"),
    ("ssh_fingerprints", None, "pinned host keys, SHA256:… as ssh-keygen -lf prints them, comma-separated"),
    ("ssh_nodes", None, "node addresses, pve1=10.0.0.11:22,pve2=10.0.0.12; default: the node name, port 22"),
    ("ssh_connect_timeout_secs", Some("10"), "SSH connect timeout, in seconds"),
    ("ssh_command_timeout_secs", Some("120"), "SSH command timeout, in seconds"),
    // Jobs and provisioning (workflows).
    ("workers", Some("true"), "run job workers in this process"),
    ("provision_concurrency", Some("8"), "jobs running at once in this process"),
    (
        "snapshot_limit_default",
        Some("5"),
        "snapshots a machine may keep when its catalog entry sets no limit (0-100; 0: none allowed)",
    ),
    ("provision_per_node", Some("4"), "provisions running at once per PVE node, across all replicas"),
    ("provision_attempts", Some("5"), "attempts before a provision is rolled back and marked failed"),
    ("provision_task_timeout_secs", Some("600"), "deadline of each PVE task, in seconds"),
    ("provision_ip_timeout_secs", Some("120"), "deadline for a started guest to show an IPv4 address, in seconds"),
    ("provision_poll_ms", Some("1000"), "polling interval of provisioning, in milliseconds"),
    ("provision_backoff_ms", Some("2000"), "first retry delay of provisioning (doubles, with jitter)"),
    ("job_lease_ms", Some("30000"), "a crashed worker's jobs are taken over after this many milliseconds"),
    // Machine leases (services::leases).
    ("lease_default_days", Some("30"), "lease of a new machine whose catalog entry sets none, in days (1-3650)"),
    ("lease_max_days", Some("90"), "longest lease an owner may extend to when the entry sets none, in days from now"),
    ("lease_first_warning_hours", Some("168"), "first warning this many hours before a machine expires"),
    ("lease_second_warning_hours", Some("24"), "second warning this many hours before expiry (below the first)"),
    ("lease_grace_hours", Some("168"), "an expired (stopped) machine is deleted this many hours after its expiry"),
    ("lease_schedule", Some("0 */5 * * * *"), "cron schedule of the expiry sweep (6 fields, seconds first, UTC)"),
    // Notifications (integrations::mail, workflows::notify).
    ("smtp_host", None, "SMTP server notification mails are sent through; unset: no mail"),
    ("smtp_port", None, "its port; default: 587 for starttls, 465 for tls, 25 for none"),
    (
        "smtp_tls",
        Some("starttls"),
        "starttls (required), tls (SMTPS from the first byte), or none (loopback relay only)",
    ),
    ("smtp_user", None, "SMTP login, with smtp_password; unset: no login"),
    ("smtp_password", None, "password of smtp_user"),
    (
        "smtp_ca_file",
        None,
        "PEM CA certificate(s) the SMTP server's certificate must chain to (pinned); default: system roots",
    ),
    ("smtp_timeout_secs", Some("30"), "bound of connecting to the SMTP server and of each command, in seconds (1-300)"),
    (
        "mail_from",
        None,
        "From address of notification mails, e.g. `proxdesk <desk@example.org>`; required with smtp_host",
    ),
    ("webhook_timeout_secs", Some("10"), "bound of one webhook delivery, in seconds (1-120)"),
    (
        "webhook_hosts",
        None,
        "hosts webhooks may be sent to, comma-separated (`*.example.org` for names under it); unset: any host",
    ),
    ("notify_attempts", Some("8"), "attempts of each mail and webhook delivery before it is given up (1-50)"),
    (
        "notify_backoff_ms",
        Some("10000"),
        "first retry delay of a mail or delivery, in milliseconds (doubles with jitter, at most 1 h)",
    ),
    // Proxmox VE realm sign-in (services::realm_sign_in).
    ("pve_realm_login", Some("false"), "offer Proxmox VE realms (pam, pve, LDAP/AD realms) on the sign-in page"),
    ("pve_realms", None, "realms offered, comma-separated; default: every password realm PVE lists"),
    ("pve_default_realm", None, "realm selected by default on the sign-in page; default: PVE's default realm"),
    ("pve_admin_groups", None, "PVE groups whose members are proxdesk admins, comma-separated; unset: roles kept"),
    ("pve_realm_cache_secs", Some("300"), "seconds the realm list read from PVE is kept"),
    // Directory sign-in (integrations::ldap).
    ("ldap_url", None, "ldap:// or ldaps:// URL of the directory; unset: no directory sign-in"),
    ("ldap_starttls", Some("false"), "upgrade an ldap:// connection with StartTLS"),
    ("ldap_ca_file", None, "PEM file of the CA certificate(s) the directory's certificate must chain to (pinned)"),
    ("ldap_bind_dn", None, "service account DN proxdesk binds as to search for users"),
    ("ldap_bind_password", None, "password of the service account"),
    ("ldap_base_dn", None, "base DN of the user search"),
    (
        "ldap_user_filter",
        Some("(&(objectClass=inetOrgPerson)(uid={username}))"),
        "user search filter; {username} is the escaped name typed",
    ),
    ("ldap_group_base_dn", None, "base DN of the group search; default: ldap_base_dn"),
    (
        "ldap_group_filter",
        Some("(&(objectClass=groupOfNames)(member={dn}))"),
        "group search filter; {dn} is the escaped user DN",
    ),
    ("ldap_group_name_attr", Some("cn"), "attribute naming a group"),
    ("ldap_id_attr", Some("entryUUID"), "attribute that identifies a user for good (survives renames)"),
    ("ldap_name_attr", Some("uid"), "attribute that names the account made on a first sign-in"),
    ("ldap_display_name_attr", Some("cn"), "attribute shown as the person's name"),
    ("ldap_mail_attr", Some("mail"), "attribute holding the e-mail address"),
    (
        "ldap_email_verified",
        Some("false"),
        "treat the directory's e-mail addresses as verified (they may then link accounts)",
    ),
    ("ldap_admin_groups", None, "directory groups whose members are proxdesk admins, comma-separated"),
    ("ldap_label", Some("Directory"), "name of the directory on the sign-in page"),
    ("ldap_timeout_secs", Some("5"), "timeout of each directory operation, in seconds"),
    // OpenID Connect sign-in (integrations::oidc).
    (
        "oidc_issuer",
        None,
        "issuer URL of the OpenID provider (discovery at /.well-known/openid-configuration); unset: no SSO",
    ),
    ("oidc_client_id", None, "client id registered at the provider"),
    ("oidc_client_secret", None, "client secret registered at the provider"),
    ("oidc_scopes", Some("openid profile email"), "scopes asked for, space-separated"),
    ("oidc_groups_claim", Some("groups"), "ID-token (or userinfo) claim listing the person's groups"),
    ("oidc_admin_groups", None, "groups whose members are proxdesk admins, comma-separated"),
    ("oidc_label", Some("Single sign-on"), "text of the sign-in button"),
];

/// Why the configuration could not be loaded; displayed as one line at start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
    #[error("invalid setting {key}: {message}")]
    Invalid { key: String, message: String },
    #[error("secret key: {0}")]
    SecretKey(String),
}

/// The typed configuration of one proxdesk process.
#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub public_url: String,
    pub secret_key: SecretKey,
    pub session_hours: i64,
    pub db_pool: u32,
    pub log: String,
    /// Reverse proxies whose forwarding headers are believed (`domain::proxies`).
    pub trusted_proxies: TrustedProxies,
    /// Raw values of keys this module does not type itself (integrations read theirs from here).
    pub raw: BTreeMap<String, String>,
}

/// The raw key → value map, before typing. Later sources override earlier ones.
#[derive(Clone, Default)]
pub struct RawSettings(pub BTreeMap<String, String>);

/// Whether `key`'s value is a secret: printed as `***`, never in clear, wherever settings are shown.
pub fn is_secret(key: &str) -> bool {
    matches!(key, "secret_key" | "notes_key")
        || key.ends_with("_token")
        || key.ends_with("_password")
        || key.ends_with("_secret")
}

/// `value` as it may be shown: a secret's is hidden, a URL's password too (`database_url`).
fn shown(key: &str, value: &str) -> String {
    if is_secret(key) {
        return "***".into();
    }
    match url::Url::parse(value) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => value.to_owned(),
    }
}

impl fmt::Debug for RawSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter().map(|(k, v)| (k, shown(k, v)))).finish()
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &shown("database_url", &self.database_url))
            .field("public_url", &self.public_url)
            .field("secret_key", &self.secret_key)
            .field("session_hours", &self.session_hours)
            .field("db_pool", &self.db_pool)
            .field("log", &self.log)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("raw", &RawSettings(self.raw.clone()))
            .finish()
    }
}

impl RawSettings {
    /// Defaults, then the TOML file (`PROXDESK_CONFIG` or `./proxdesk.toml` when it exists), then the
    /// environment.
    pub fn load() -> Result<Self, ConfigError> {
        let mut raw = Self::defaults();
        let path = std::env::var("PROXDESK_CONFIG").ok();
        let explicit = path.is_some();
        let path = PathBuf::from(path.unwrap_or_else(|| "proxdesk.toml".into()));
        if explicit || path.exists() {
            raw.merge_file(&path)?;
        }
        raw.merge_env(std::env::vars());
        Ok(raw)
    }

    pub fn defaults() -> Self {
        let map = KEYS.iter().filter_map(|(k, d, _)| d.map(|d| (k.to_string(), d.to_string()))).collect();
        Self(map)
    }

    pub fn merge_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let err = |message: String| ConfigError::File { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        self.merge_toml(&text).map_err(err)
    }

    /// The settings of a `proxdesk.toml`'s text; a value that is no string, whole number or boolean is
    /// refused (and nothing of the file is taken).
    fn merge_toml(&mut self, text: &str) -> Result<(), String> {
        let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut values = Vec::with_capacity(table.len());
        for (key, value) in table {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => return Err(format!("{key}: expected a string, number or boolean, got {}", other.type_str())),
            };
            values.push((key, value));
        }
        self.0.extend(values);
        Ok(())
    }

    pub fn merge_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) {
        for (name, value) in vars {
            // Keys are lower-cased, so `PROXDESK_config` would otherwise pass for a setting named `config`.
            if let Some(key) = name.strip_prefix("PROXDESK_")
                && !NOT_SETTINGS.iter().any(|n| key.eq_ignore_ascii_case(n))
            {
                self.0.insert(key.to_ascii_lowercase(), value);
            }
        }
    }

    /// Keys set in the file or environment that proxdesk does not know (a typo, or a setting of another
    /// version): logged as warnings at start, never fatal.
    pub fn unknown_keys(&self) -> Vec<String> {
        self.0.keys().filter(|k| !KEYS.iter().any(|(known, _, _)| known == k)).cloned().collect()
    }

    /// The PVE and Guacamole URLs that would carry tokens and passwords in clear: `http://` to a host
    /// other than this machine (loopback is left alone: a local TLS terminator, or the simulator).
    pub fn plain_http_urls(&self) -> Vec<(&'static str, String)> {
        ["pve_url", "guac_url"]
            .into_iter()
            .filter_map(|key| {
                let url = url::Url::parse(self.get(key)?).ok()?;
                let local = match url.host()? {
                    url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
                    url::Host::Ipv4(ip) => ip.is_loopback(),
                    url::Host::Ipv6(ip) => ip.is_loopback(),
                };
                (url.scheme() == "http" && !local).then(|| (key, url.to_string()))
            })
            .collect()
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// Parses `key` with `FromStr`, naming the environment variable in the error.
    pub fn parse<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        self.get(key)
            .map(|v| {
                v.parse::<T>().map_err(|e| ConfigError::Invalid {
                    key: format!("PROXDESK_{}", key.to_ascii_uppercase()),
                    message: format!("{v:?}: {e}"),
                })
            })
            .transpose()
    }

    /// Types the settings. Creates `data_dir` and, when no key is configured, the secret key file in it.
    pub fn into_settings(self) -> Result<Settings, ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: format!("PROXDESK_{}", key.to_ascii_uppercase()),
            message: message.into(),
        };
        let listen: SocketAddr = self.parse("listen")?.expect("has a default");
        let data_dir = match self.get("data_dir") {
            Some(d) => PathBuf::from(d),
            None => PathBuf::from("proxdesk-data"),
        };
        std::fs::create_dir_all(&data_dir).map_err(|e| invalid("data_dir", &format!("{}: {e}", data_dir.display())))?;
        let database_url = match self.get("database_url") {
            Some(url) => url.to_owned(),
            None => format!("sqlite://{}?mode=rwc", data_dir.join("proxdesk.sqlite").display()),
        };
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("postgres")) {
            return Err(invalid("database_url", "must start with sqlite: or postgres://"));
        }
        let public_url = match self.get("public_url") {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{listen}"),
        };
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(invalid("public_url", "must start with http:// or https://"));
        }
        let secret_key = match self.get("secret_key") {
            Some(hex) => {
                SecretKey::from_hex(&Secret::new(hex.to_owned())).map_err(|e| invalid("secret_key", &e.to_string()))?
            }
            None => SecretKey::load_or_create(&data_dir.join("secret.key"))
                .map_err(|e| ConfigError::SecretKey(e.to_string()))?,
        };
        let session_hours: i64 = self.parse("session_hours")?.expect("has a default");
        if !(1..=24 * 90).contains(&session_hours) {
            return Err(invalid("session_hours", "must be between 1 and 2160"));
        }
        let db_pool: u32 = self.parse("db_pool")?.expect("has a default");
        if !(1..=64).contains(&db_pool) {
            return Err(invalid("db_pool", "must be between 1 and 64"));
        }
        let trusted_proxies = self.parse("trusted_proxies")?.unwrap_or_default();
        Ok(Settings {
            listen,
            data_dir,
            database_url,
            public_url,
            secret_key,
            session_hours,
            db_pool,
            log: self.get("log").unwrap_or("info").to_owned(),
            trusted_proxies,
            raw: self.0,
        })
    }
}

impl Settings {
    /// Whether cookies must carry `Secure` (proxdesk is reached over https).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// `scheme://host[:port]` of the public URL, compared with browsers' `Origin` header.
    pub fn public_origin(&self) -> &str {
        let after_scheme = self.public_url.find("://").map(|i| i + 3).unwrap_or(0);
        match self.public_url[after_scheme..].find('/') {
            Some(i) => &self.public_url[..after_scheme + i],
            None => &self.public_url,
        }
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_to_another_host_is_pointed_out() {
        let mut raw = RawSettings::defaults();
        raw.set("pve_url", "http://pve1.example:8006");
        raw.set("guac_url", "https://guac.example/guacamole");
        assert_eq!(raw.plain_http_urls(), [("pve_url", "http://pve1.example:8006/".to_owned())]);
        raw.set("guac_url", "HTTP://10.0.0.5/guacamole");
        raw.set("pve_url", "http://127.0.0.1:8006");
        assert_eq!(raw.plain_http_urls(), [("guac_url", "http://10.0.0.5/guacamole".to_owned())]);
        raw.set("guac_url", "http://localhost:8080/guacamole");
        assert!(raw.plain_http_urls().is_empty(), "loopback is this machine");
    }

    #[test]
    fn settings_never_print_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let mut raw = RawSettings::defaults();
        raw.set("data_dir", dir.path().display().to_string());
        let secrets = [
            ("pve_token", "proxdesk@pve!t=TOKEN-SECRET-1"),
            ("pve_password", "PVE-PASSWORD-2"),
            ("guac_password", "GUAC-PASSWORD-3"),
            ("ldap_bind_password", "LDAP-PASSWORD-4"),
            ("oidc_client_secret", "OIDC-SECRET-5"),
            ("notes_key", "NOTES-KEY-6"),
            ("database_url", "postgres://proxdesk:DB-PASSWORD-7@127.0.0.1/proxdesk"),
        ];
        for (k, v) in secrets {
            raw.set(k, v);
        }
        let settings = raw.clone().into_settings().unwrap();
        for shown in [format!("{raw:?}"), format!("{settings:?}"), format!("{settings:#?}")] {
            for (key, value) in secrets {
                let secret = value.rsplit(['=', ':']).next().unwrap().split('@').next().unwrap();
                assert!(!shown.contains(secret), "{key} printed in clear: {shown}");
            }
            assert!(shown.contains("127.0.0.1") && shown.contains("pve_token"), "the rest is shown: {shown}");
        }
    }

    #[test]
    fn unknown_keys_are_reported_and_known_ones_are_not() {
        let mut raw = RawSettings::defaults();
        raw.merge_env([
            ("PROXDESK_LISTEN".to_owned(), "127.0.0.1:1".to_owned()),
            ("PROXDESK_PVE_TIMEOUT".to_owned(), "5".to_owned()),
            ("PROXDESK_REQUIRE_EXTERNAL".to_owned(), "1".to_owned()),
            ("PROXDESK_TEST_DB".to_owned(), "postgres".to_owned()),
            ("OTHER".to_owned(), "x".to_owned()),
        ]);
        assert_eq!(raw.unknown_keys(), ["pve_timeout"]);
    }

    #[test]
    fn every_setting_is_documented_in_the_readme() {
        let readme = include_str!("../README.md");
        let missing: Vec<String> = KEYS
            .iter()
            .map(|(k, _, _)| format!("PROXDESK_{}", k.to_ascii_uppercase()))
            .filter(|name| !readme.contains(&format!("`{name}`")) && !readme.contains(&format!("`{name}`,")))
            .collect();
        assert!(missing.is_empty(), "settings missing from the README: {missing:?}");
    }
}
