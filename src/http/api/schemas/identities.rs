//! Outside identities linked to accounts, and the sign-in policy.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};

use super::Text;
use crate::domain::identity::IdentityProvider;

/// Where an identity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum IdentityProviderName {
    /// A Proxmox VE realm user (`alice@pve`).
    Pve,
    /// A directory entry.
    Ldap,
    /// An OpenID Connect subject.
    Oidc,
}

impl From<IdentityProviderName> for IdentityProvider {
    fn from(p: IdentityProviderName) -> Self {
        match p {
            IdentityProviderName::Pve => IdentityProvider::Pve,
            IdentityProviderName::Ldap => IdentityProvider::Ldap,
            IdentityProviderName::Oidc => IdentityProvider::Oidc,
        }
    }
}

/// An outside identity an account signs in with.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Identity {
    pub id: i64,
    pub user_id: i64,
    pub provider: IdentityProviderName,
    /// The PVE realm, the directory's host, or the OpenID issuer URL.
    pub issuer: String,
    /// The identity's key at its issuer.
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

impl From<entities::identity::Model> for Identity {
    fn from(i: entities::identity::Model) -> Self {
        Identity {
            id: i.id,
            user_id: i.user_id,
            provider: match IdentityProvider::parse(&i.provider) {
                Some(IdentityProvider::Ldap) => IdentityProviderName::Ldap,
                Some(IdentityProvider::Oidc) => IdentityProviderName::Oidc,
                _ => IdentityProviderName::Pve,
            },
            issuer: i.issuer,
            subject: i.subject,
            email: i.email,
            email_verified: i.email_verified,
            display_name: i.display_name,
            created_at: i.created_at,
            last_sign_in_at: i.last_sign_in_at,
        }
    }
}

/// An identity to link to an account; one linked elsewhere moves to it.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct LinkIdentity {
    pub provider: IdentityProviderName,
    #[oai(validator(min_length = 1, max_length = 255))]
    pub issuer: Text,
    #[oai(validator(min_length = 1, max_length = 255))]
    pub subject: Text,
}

/// Who may sign in with a proxdesk password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum PasswordSignInMode {
    /// Every local account.
    Everyone,
    /// Only `break_glass_admin`; everyone else signs in through a provider.
    BreakGlassOnly,
}

/// The sign-in policy.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SignInPolicy {
    pub password_sign_in: PasswordSignInMode,
    /// An enabled local admin with a password (required with `break_glass_only`).
    #[oai(nullable, validator(max_length = 64))]
    pub break_glass_admin: Option<Text>,
}
