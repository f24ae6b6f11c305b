//! Sending mail over SMTP (lettre on tokio, TLS through rustls with ring). Configured by the `smtp_*`
//! settings and `mail_from`; without `smtp_host`, mail is off.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{ConfigError, RawSettings};
use crate::secrets::Secret;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS, which is required (default; port 587).
    StartTls,
    /// TLS from the first byte (SMTPS; port 465).
    Tls,
    /// No TLS: only for a relay on this machine (loopback), refused for any other host.
    None,
}

impl TlsMode {
    /// The mode named by `smtp_tls`.
    pub fn parse(s: &str) -> Option<TlsMode> {
        match s {
            "starttls" => Some(TlsMode::StartTls),
            "tls" => Some(TlsMode::Tls),
            "none" => Some(TlsMode::None),
            _ => None,
        }
    }

    /// The setting's value for this mode.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::StartTls => "starttls",
            TlsMode::Tls => "tls",
            TlsMode::None => "none",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            TlsMode::StartTls => 587,
            TlsMode::Tls => 465,
            TlsMode::None => 25,
        }
    }
}

/// The SMTP settings (`PROXDESK_SMTP_*`, `PROXDESK_MAIL_FROM`).
#[derive(Clone)]
pub struct MailSettings {
    /// The SMTP server's name or address (also the name its certificate must carry).
    pub host: String,
    /// Default by mode: 587 (starttls), 465 (tls), 25 (none).
    pub port: u16,
    /// How the connection is protected.
    pub tls: TlsMode,
    /// The login, with `password`; `None`: no login.
    pub user: Option<String>,
    /// Printed as `***`.
    pub password: Option<Secret<String>>,
    /// The From address, e.g. `proxdesk <desk@example.org>`.
    pub from: String,
    /// PEM CA certificate(s) the server's certificate must chain to (and nothing else); else system roots.
    pub ca_file: Option<PathBuf>,
    /// Bound of connecting and of each SMTP command.
    pub timeout: Duration,
}

impl fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("from", &self.from)
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl MailSettings {
    /// The settings, or `None` when `smtp_host` is unset (mail off).
    pub fn from_settings(raw: &RawSettings) -> Result<Option<MailSettings>, ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: format!("PROXDESK_{}", key.to_ascii_uppercase()),
            message: message.into(),
        };
        let Some(host) = raw.get("smtp_host") else { return Ok(None) };
        let tls = match raw.get("smtp_tls") {
            None => TlsMode::StartTls,
            Some(v) => TlsMode::parse(v).ok_or_else(|| invalid("smtp_tls", "must be starttls, tls or none"))?,
        };
        if tls == TlsMode::None && !is_loopback(host) {
            return Err(invalid(
                "smtp_tls",
                "none is only allowed for a relay on loopback (127.0.0.1, ::1, localhost)",
            ));
        }
        let from = raw.get("mail_from").ok_or_else(|| invalid("mail_from", "is required when smtp_host is set"))?;
        from.parse::<Mailbox>().map_err(|e| invalid("mail_from", &format!("{from:?}: {e}")))?;
        let user = raw.get("smtp_user").map(str::to_owned);
        let password = raw.get("smtp_password").map(|p| Secret::new(p.to_owned()));
        if user.is_some() != password.is_some() {
            return Err(invalid("smtp_user", "set smtp_user and smtp_password together, or neither"));
        }
        let timeout: u64 = raw.parse("smtp_timeout_secs")?.unwrap_or(30);
        if !(1..=300).contains(&timeout) {
            return Err(invalid("smtp_timeout_secs", "must be between 1 and 300"));
        }
        Ok(Some(MailSettings {
            host: host.to_owned(),
            port: raw.parse("smtp_port")?.unwrap_or(tls.default_port()),
            tls,
            user,
            password,
            from: from.to_owned(),
            ca_file: raw.get("smtp_ca_file").map(PathBuf::from),
            timeout: Duration::from_secs(timeout),
        }))
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The settings cannot make a transport (an unreadable CA file…).
    #[error("mail settings: {0}")]
    Config(String),
    /// The recipient's address is not an address; sending again cannot help.
    #[error("not a mail address: {0}")]
    Address(String),
    /// The server refused the mail for good (a 5xx reply).
    #[error("the SMTP server refused the mail: {0}")]
    Permanent(String),
    /// Anything that may pass: no connection, a timeout, a TLS failure, a 4xx reply.
    #[error("the mail was not sent: {0}")]
    Transient(String),
}

/// Sends plain-text mails from the configured sender.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `settings`; `hello_name` is the name it greets the server with (the desk's host).
    /// Nothing is sent until the first mail.
    pub fn new(settings: &MailSettings, hello_name: &str) -> Result<Mailer, MailError> {
        crate::integrations::install_tls_provider();
        let from: Mailbox = settings.from.parse().map_err(|e| MailError::Config(format!("mail_from: {e}")))?;
        let tls = match settings.tls {
            TlsMode::None => Tls::None,
            mode => {
                let mut params = TlsParameters::builder(settings.host.clone());
                if let Some(path) = &settings.ca_file {
                    let pem = std::fs::read(path)
                        .map_err(|e| MailError::Config(format!("smtp_ca_file {}: {e}", path.display())))?;
                    let cert = Certificate::from_pem(&pem)
                        .map_err(|e| MailError::Config(format!("smtp_ca_file {}: {e}", path.display())))?;
                    // Pinned: the server must chain to this CA, not to any system root.
                    params = params.certificate_store(CertificateStore::None).add_root_certificate(cert);
                }
                let params = params.build_rustls().map_err(|e| MailError::Config(e.to_string()))?;
                if mode == TlsMode::Tls { Tls::Wrapper(params) } else { Tls::Required(params) }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.clone())
            .port(settings.port)
            .tls(tls)
            .timeout(Some(settings.timeout))
            .hello_name(ClientId::Domain(hello_name.to_owned()));
        if let (Some(user), Some(password)) = (&settings.user, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().clone()));
        }
        Ok(Mailer { transport: builder.build(), from })
    }

    /// Sends one plain-text mail to `to`.
    pub async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), MailError> {
        let to: Mailbox = to.parse().map_err(|_| MailError::Address(to.to_owned()))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| MailError::Permanent(e.to_string()))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Permanent(e.to_string())),
            Err(e) => Err(MailError::Transient(e.to_string())),
        }
    }

    /// Connects and greets the server (with TLS and login as configured), sending nothing: for `check`.
    pub async fn test_connection(&self) -> Result<bool, MailError> {
        self.transport.test_connection().await.map_err(|e| MailError::Transient(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawSettings {
        let mut raw = RawSettings::default();
        for (k, v) in pairs {
            raw.set(k, *v);
        }
        raw
    }

    #[test]
    fn no_host_means_no_mail() {
        assert!(MailSettings::from_settings(&raw(&[("mail_from", "desk@example.org")])).unwrap().is_none());
    }

    #[test]
    fn starttls_on_587_is_the_default_and_the_password_is_never_printed() {
        let s = MailSettings::from_settings(&raw(&[
            ("smtp_host", "smtp.example.org"),
            ("mail_from", "proxdesk <desk@example.org>"),
            ("smtp_user", "desk"),
            ("smtp_password", "SMTP-PASSWORD-1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((s.tls, s.port), (TlsMode::StartTls, 587));
        assert!(!format!("{s:?}").contains("SMTP-PASSWORD-1"), "{s:?}");
    }

    #[test]
    fn plain_smtp_is_refused_beyond_loopback() {
        let err = MailSettings::from_settings(&raw(&[
            ("smtp_host", "smtp.example.org"),
            ("smtp_tls", "none"),
            ("mail_from", "desk@example.org"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("PROXDESK_SMTP_TLS"), "{err}");
        for host in ["127.0.0.1", "localhost", "::1"] {
            let s = MailSettings::from_settings(&raw(&[
                ("smtp_host", host),
                ("smtp_tls", "none"),
                ("mail_from", "desk@example.org"),
            ]))
            .unwrap()
            .unwrap();
            assert_eq!((s.tls, s.port), (TlsMode::None, 25), "{host}");
        }
    }

    #[test]
    fn a_sender_that_is_no_address_and_a_user_without_password_are_refused() {
        let bad_from = raw(&[("smtp_host", "smtp.example.org"), ("mail_from", "not an address")]);
        assert!(MailSettings::from_settings(&bad_from).unwrap_err().to_string().contains("PROXDESK_MAIL_FROM"));
        let no_from = raw(&[("smtp_host", "smtp.example.org")]);
        assert!(MailSettings::from_settings(&no_from).is_err());
        let half = raw(&[("smtp_host", "smtp.example.org"), ("mail_from", "d@example.org"), ("smtp_user", "u")]);
        assert!(MailSettings::from_settings(&half).unwrap_err().to_string().contains("PROXDESK_SMTP_USER"));
        let mode = raw(&[("smtp_host", "smtp.example.org"), ("mail_from", "d@example.org"), ("smtp_tls", "ssl")]);
        assert!(MailSettings::from_settings(&mode).is_err());
    }
}
