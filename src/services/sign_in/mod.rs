//! Signing in, whichever way: a local password, a Proxmox VE realm, the directory, or OpenID Connect.
//! Each outside provider checks the person its own way and ends in `identities::sign_in`, so accounts,
//! roles, sessions and audit work the same for all of them.

pub mod directory;
pub mod openid;
pub mod pve_realm;

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use super::ServiceError;
use super::auth::{self, NewSession};
use crate::config::RawSettings;
use crate::integrations::pve;
use crate::secrets::{Secret, SecretKey};

/// The outside providers configured in this process (each `None` when its settings are absent).
#[derive(Default)]
pub struct Providers {
    pub pve: Option<pve_realm::RealmSignIn>,
    pub directory: Option<directory::DirectorySignIn>,
    pub openid: Option<openid::OpenIdSignIn>,
}

impl Providers {
    /// From the `pve_realm_*`, `ldap_*` and `oidc_*` settings. An unusable setting is an error naming it.
    pub fn from_settings(raw: &RawSettings, public_url: &str, pve: Option<&pve::Client>) -> Result<Arc<Self>, String> {
        Ok(Arc::new(Self {
            pve: pve_realm::RealmSignIn::from_settings(raw, pve)?,
            directory: directory::DirectorySignIn::from_settings(raw)?,
            openid: openid::OpenIdSignIn::from_settings(raw, public_url)?,
        }))
    }
}

/// Which password check a sign-in form asks for: its `method` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordMethod {
    /// A local proxdesk account (`local`).
    Local,
    /// A Proxmox VE realm (`pve:<realm>`).
    PveRealm(String),
    /// The directory (`ldap`).
    Directory,
}

impl PasswordMethod {
    /// The form value; unknown values are `None` (the page says so and keeps what was typed).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "" | "local" => Some(Self::Local),
            "ldap" => Some(Self::Directory),
            v => v.strip_prefix("pve:").filter(|r| !r.is_empty()).map(|r| Self::PveRealm(r.to_owned())),
        }
    }

    pub fn form_value(&self) -> String {
        match self {
            Self::Local => "local".into(),
            Self::PveRealm(r) => format!("pve:{r}"),
            Self::Directory => "ldap".into(),
        }
    }
}

/// One entry of the sign-in page's "Sign in with" list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MethodChoice {
    /// The form value (`PasswordMethod::form_value`).
    pub value: String,
    /// What the person reads: `None` for the local accounts (the page words it in their language).
    pub label: Option<String>,
    /// Pre-selected (the default realm).
    pub default: bool,
}

/// What a password sign-in came to.
pub enum Outcome {
    Signed(NewSession),
    /// The Proxmox VE account has a second factor: the page asks for it, carrying `pending` (an opaque
    /// single-use token naming the half-done sign-in) to `pve_realm::RealmSignIn::second_factor`.
    SecondFactor {
        pending: Secret<String>,
    },
}

impl Providers {
    /// The password methods to offer: local accounts first, then the PVE realms (PVE's order, default
    /// realm marked), then the directory. PVE being down leaves its realms out rather than failing.
    pub async fn password_methods(&self) -> Vec<MethodChoice> {
        let mut out = vec![MethodChoice { value: PasswordMethod::Local.form_value(), label: None, default: false }];
        if let Some(pve) = &self.pve {
            out.extend(pve.choices().await);
        }
        if let Some(dir) = &self.directory {
            out.push(MethodChoice {
                value: PasswordMethod::Directory.form_value(),
                label: Some(dir.label().to_owned()),
                default: false,
            });
        }
        out
    }

    /// Checks a password the way `method` says and opens a session (or asks for a second factor).
    #[allow(clippy::too_many_arguments)]
    #[tracing::instrument(skip(self, db, key, password))]
    pub async fn with_password(
        &self,
        db: &DatabaseConnection,
        key: &SecretKey,
        method: &PasswordMethod,
        username: &str,
        password: &Secret<String>,
        client_addr: &str,
        session_hours: i64,
    ) -> Result<Outcome, ServiceError> {
        match method {
            PasswordMethod::Local => {
                auth::login(db, username, password, client_addr, session_hours).await.map(Outcome::Signed)
            }
            PasswordMethod::PveRealm(realm) => {
                let pve = self.pve.as_ref().ok_or(ServiceError::NotFound)?;
                pve.sign_in(db, key, realm, username, password, client_addr, session_hours).await
            }
            PasswordMethod::Directory => {
                let dir = self.directory.as_ref().ok_or(ServiceError::NotFound)?;
                dir.sign_in(db, username, password, client_addr, session_hours).await.map(Outcome::Signed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PasswordMethod;

    #[test]
    fn methods_round_trip_through_their_form_value() {
        for m in [PasswordMethod::Local, PasswordMethod::Directory, PasswordMethod::PveRealm("corp".into())] {
            assert_eq!(PasswordMethod::parse(&m.form_value()), Some(m));
        }
        assert_eq!(PasswordMethod::parse(""), Some(PasswordMethod::Local));
        assert_eq!(PasswordMethod::parse("pve:"), None);
        assert_eq!(PasswordMethod::parse("saml"), None);
    }
}
