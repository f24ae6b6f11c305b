//! Signing in against the directory proxdesk binds to itself (LDAP / Active Directory): the directory
//! checks the password (bind–search–bind), then the person signs in as the account linked to their
//! directory entry, with the role the directory groups give.

use sea_orm::DatabaseConnection;

use crate::config::RawSettings;
use crate::domain::identity::{IdentityProvider, RoleMapping, VerifiedIdentity};
use crate::integrations::ldap::{Directory, DirectoryConfig, DirectoryUser, LdapError, Transport};
use crate::secrets::Secret;
use crate::services::auth::NewSession;
use crate::services::{ServiceError, identities, throttle};

/// Longest name and password accepted: beyond, nothing is sent to the directory.
pub const MAX_NAME_CHARS: usize = 128;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Directory sign-in, when `ldap_url` is set.
pub struct DirectorySignIn {
    label: String,
    directory: Directory,
    /// Whether the directory's `mail` values are trusted to link accounts (`ldap_email_verified`).
    email_verified: bool,
    mapping: RoleMapping,
}

impl DirectorySignIn {
    /// From the `ldap_*` settings; `Ok(None)` when `ldap_url` is not set. An unusable setting is an error
    /// naming it. Warns when passwords would cross the network in the clear.
    pub fn from_settings(raw: &RawSettings) -> Result<Option<Self>, String> {
        let Some(config) = DirectoryConfig::from_settings(raw).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let email_verified = raw.parse::<bool>("ldap_email_verified").map_err(|e| e.to_string())?.unwrap_or(false);
        let mapping = RoleMapping::from_list(raw.get("ldap_admin_groups").unwrap_or(""));
        let label = raw.get("ldap_label").unwrap_or("Directory").trim().to_owned();
        match config.transport {
            Transport::Plain if !config.is_loopback() => tracing::warn!(
                url = %config.url,
                "PROXDESK_LDAP_URL is plain ldap:// without StartTLS: passwords cross the network in the clear. \
                 Use ldaps:// or PROXDESK_LDAP_STARTTLS=true with PROXDESK_LDAP_CA_FILE"
            ),
            Transport::StartTls | Transport::Ldaps if !config.pinned_ca => tracing::info!(
                url = %config.url,
                "the directory's certificate is checked against the system's trusted roots (no PROXDESK_LDAP_CA_FILE)"
            ),
            _ => {}
        }
        Ok(Some(Self { label, directory: Directory::new(config), email_verified, mapping }))
    }

    /// The directory's name on the sign-in page (`ldap_label`).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Checks `password` with the directory and opens a session for the account linked to the entry
    /// found. Unknown names, wrong passwords and filters matching several entries are all
    /// `Unauthenticated` (and count against the throttle); a directory that does not answer, or refuses
    /// proxdesk's own service account, is `Unavailable`.
    #[tracing::instrument(skip(self, db, password))]
    pub async fn sign_in(
        &self,
        db: &DatabaseConnection,
        username: &str,
        password: &Secret<String>,
        client_addr: &str,
        session_hours: i64,
    ) -> Result<NewSession, ServiceError> {
        let name = username.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || password.expose().len() > MAX_PASSWORD_BYTES {
            return Err(ServiceError::Unauthenticated);
        }
        let account = format!("{name}@ldap");
        let attempt = throttle::attempt(db, &account, client_addr).await?;
        let user = match self.directory.authenticate(name, password).await {
            Ok(user) => user,
            Err(LdapError::Refused(why)) => {
                tracing::info!(username = %name, reason = why.as_str(), "directory sign-in refused");
                crate::metrics::sign_in_failed(crate::metrics::labels::SignInMethod::Ldap);
                return Err(ServiceError::Unauthenticated);
            }
            Err(e @ (LdapError::ServiceAccountRefused { .. } | LdapError::MissingAttribute { .. })) => {
                tracing::error!(error = %e, "directory sign-in cannot work: check the PROXDESK_LDAP_* settings");
                // Not the person's doing: it does not count against them.
                attempt.give_back(db).await?;
                return Err(ServiceError::Unavailable(e.to_string()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "directory sign-in failed");
                attempt.give_back(db).await?;
                return Err(ServiceError::Unavailable(e.to_string()));
            }
        };
        attempt.succeeded(db).await?;
        let who = self.identity(name, user);
        identities::sign_in(db, &who, &self.mapping, session_hours).await
    }

    /// What the directory vouched for, as proxdesk's identities know it.
    fn identity(&self, typed: &str, user: DirectoryUser) -> VerifiedIdentity {
        VerifiedIdentity {
            provider: IdentityProvider::Ldap,
            issuer: self.directory.config().server_name(),
            subject: user.id,
            preferred_username: user.name.unwrap_or_else(|| typed.to_owned()),
            display_name: user.display_name,
            email_verified: self.email_verified && user.mail.is_some(),
            email: user.mail,
            groups: user.groups,
        }
    }
}
