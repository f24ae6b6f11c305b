//! Signing in against the directory proxdesk binds to itself (LDAP / Active Directory).

use sea_orm::DatabaseConnection;

use crate::config::RawSettings;
use crate::secrets::Secret;
use crate::services::ServiceError;
use crate::services::auth::NewSession;

/// Directory sign-in, when `ldap_url` is set.
pub struct DirectorySignIn {
    label: String,
}

impl DirectorySignIn {
    pub fn from_settings(_raw: &RawSettings) -> Result<Option<Self>, String> {
        Ok(None)
    }

    /// The directory's name on the sign-in page (`ldap_label`).
    pub fn label(&self) -> &str {
        &self.label
    }

    pub async fn sign_in(
        &self,
        _db: &DatabaseConnection,
        _username: &str,
        _password: &Secret<String>,
        _client_addr: &str,
        _session_hours: i64,
    ) -> Result<NewSession, ServiceError> {
        Err(ServiceError::NotFound)
    }
}
