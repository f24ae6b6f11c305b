//! The caller, accounts, tokens, passwords and quotas.

use super::Text;
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
#[oai(skip_serializing_if_is_none)]
pub struct Me {
    pub id: i64,
    pub username: String,
    pub role: RoleName,
    pub language: Option<String>,
}

/// An API token (without its secret).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
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
#[oai(skip_serializing_if_is_none)]
pub struct CreateToken {
    /// Free text: not blank, no control characters but tab and newline.
    #[oai(validator(
        max_length = 64,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    ))]
    pub name: Text,
}

/// A new token; `token` is shown this once only.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct NewToken {
    pub token: String,
    #[oai(flatten)]
    pub info: Token,
}

/// An account, as admins see it.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
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
#[oai(skip_serializing_if_is_none)]
pub struct UserPage {
    pub items: Vec<User>,
    pub next_cursor: Option<i64>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CreateUser {
    /// 2–32 of `a-z 0-9 _ . -`, starting with a letter.
    #[oai(validator(pattern = r"^[a-z][a-z0-9_.-]{1,31}$"))]
    pub username: Text,
    pub role: RoleName,
    /// 10–256 characters. Leave out to have one generated (returned once).
    #[oai(nullable, validator(min_length = 10, max_length = 256))]
    pub password: Option<Text>,
}

/// A created account, with its generated password when none was given.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CreatedUser {
    #[oai(flatten)]
    pub user: User,
    pub password: Option<String>,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Password {
    pub password: String,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ChangePassword {
    pub current_password: Text,
    /// 10–256 characters.
    #[oai(validator(min_length = 10, max_length = 256))]
    pub new_password: Text,
}

/// A quota.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Quota {
    #[oai(validator(minimum(value = "0"), maximum(value = "1000000")))]
    pub max_machines: i32,
    #[oai(validator(minimum(value = "0"), maximum(value = "1000000")))]
    pub max_cores: i32,
    #[oai(validator(minimum(value = "0"), maximum(value = "1000000")))]
    pub max_memory_mib: i32,
    #[oai(validator(minimum(value = "0"), maximum(value = "1000000")))]
    pub max_disk_gib: i32,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RoleQuota {
    pub role: RoleName,
    #[oai(flatten)]
    pub quota: Quota,
}

/// A user's quota override; unset fields follow the role.
#[derive(Debug, Default, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct QuotaOverride {
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "1000000")))]
    pub max_machines: Option<i32>,
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "1000000")))]
    pub max_cores: Option<i32>,
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "1000000")))]
    pub max_memory_mib: Option<i32>,
    #[oai(nullable, validator(minimum(value = "0"), maximum(value = "1000000")))]
    pub max_disk_gib: Option<i32>,
}

/// A user's quota: the override, what applies, and what is in use.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UserQuota {
    pub overrides: QuotaOverride,
    pub effective: Quota,
    pub used_machines: i32,
    pub used_cores: i32,
    pub used_memory_mib: i32,
    pub used_disk_gib: i32,
}
