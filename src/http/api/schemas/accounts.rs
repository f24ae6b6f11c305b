//! The caller, accounts, tokens, passwords and quotas.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum RoleName {
    User,
    Admin,
}

/// The caller.
#[derive(Debug, Object)]
pub struct Me {
    pub id: i64,
    pub username: String,
    pub role: RoleName,
    pub language: Option<String>,
}

/// An API token (without its secret).
#[derive(Debug, Object)]
pub struct Token {
    pub id: i64,
    pub name: String,
    /// First characters, to tell tokens apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<entities::api_token::Model> for Token {
    fn from(t: entities::api_token::Model) -> Self {
        Token { id: t.id, name: t.name, prefix: t.prefix, created_at: t.created_at, last_used_at: t.last_used_at }
    }
}

#[derive(Debug, Object)]
pub struct CreateToken {
    pub name: String,
}

/// A new token; `token` is shown this once only.
#[derive(Debug, Object)]
pub struct NewToken {
    pub token: String,
    #[oai(flatten)]
    pub info: Token,
}

/// An account, as admins see it.
#[derive(Debug, Object)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl From<entities::user::Model> for User {
    fn from(u: entities::user::Model) -> Self {
        User { id: u.id, username: u.username, role: u.role, disabled: u.disabled, created_at: u.created_at }
    }
}

#[derive(Debug, Object)]
pub struct UserPage {
    pub items: Vec<User>,
    pub next_cursor: Option<i64>,
}

#[derive(Debug, Object)]
pub struct CreateUser {
    pub username: String,
    pub role: RoleName,
    /// Leave out to have one generated (returned once).
    pub password: Option<String>,
}

/// A created account, with its generated password when none was given.
#[derive(Debug, Object)]
pub struct CreatedUser {
    #[oai(flatten)]
    pub user: User,
    pub password: Option<String>,
}

#[derive(Debug, Object)]
pub struct Password {
    pub password: String,
}

#[derive(Debug, Object)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

/// A quota.
#[derive(Debug, Object)]
pub struct Quota {
    pub max_machines: i32,
    pub max_cores: i32,
    pub max_memory_mib: i32,
    pub max_disk_gib: i32,
}

#[derive(Debug, Object)]
pub struct RoleQuota {
    pub role: RoleName,
    #[oai(flatten)]
    pub quota: Quota,
}

/// A user's quota override; unset fields follow the role.
#[derive(Debug, Default, Object)]
pub struct QuotaOverride {
    pub max_machines: Option<i32>,
    pub max_cores: Option<i32>,
    pub max_memory_mib: Option<i32>,
    pub max_disk_gib: Option<i32>,
}

/// A user's quota: the override, what applies, and what is in use.
#[derive(Debug, Object)]
pub struct UserQuota {
    pub overrides: QuotaOverride,
    pub effective: Quota,
    pub used_machines: i32,
    pub used_cores: i32,
    pub used_memory_mib: i32,
    pub used_disk_gib: i32,
}
