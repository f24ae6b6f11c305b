//! Guacamole's REST request and response bodies (reference §1–§8), shared by the client and the
//! simulator so both speak exactly one wire format.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Attribute and parameter maps: Guacamole sends unset attributes as JSON `null`.
pub type Attributes = BTreeMap<String, Option<String>>;

/// `POST /api/tokens` response (`APIAuthenticationResult`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthResult {
    /// 64 upper-case hex characters.
    pub auth_token: String,
    /// The user who logged in.
    pub username: String,
    /// Identifier of the provider that authenticated the user (`postgresql`, …).
    pub data_source: String,
    /// Every data source the session has.
    pub available_data_sources: Vec<String>,
}

impl AuthResult {
    /// Whether the token is one Guacamole issues (hex; letters and digits at most): it travels in a
    /// header and in the logout URL's path, where anything else would break the request or its path.
    pub fn token_is_well_formed(&self) -> bool {
        let t = self.auth_token.as_bytes();
        (1..=256).contains(&t.len()) && t.iter().all(u8::is_ascii_alphanumeric)
    }
}

/// A connection (`APIConnection`); `parameters` only on create/update bodies and echoes (§3).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// Display name, unique within its parent group.
    pub name: String,
    /// Numeric string id; absent on create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// Parent group id; `ROOT` for the root group (absent means root on input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_identifier: Option<String>,
    /// `ssh`, `rdp`, `vnc`, …
    pub protocol: String,
    /// Protocol parameters; never in GET responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BTreeMap<String, String>>,
    /// Schema attributes; unset ones are null.
    #[serde(default)]
    pub attributes: Attributes,
    /// Number of open sessions on this connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_connections: Option<u32>,
    /// Epoch milliseconds of the last use, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_active: Option<i64>,
}

/// A connection group (`APIConnectionGroup`, §4).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionGroup {
    /// Display name, unique within its parent group.
    pub name: String,
    /// Numeric string id, or `ROOT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// Parent group id (`ROOT` for top-level groups; absent for ROOT itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_identifier: Option<String>,
    /// `ORGANIZATIONAL` or `BALANCING`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Schema attributes; unset ones are null.
    #[serde(default)]
    pub attributes: Attributes,
    /// Number of open sessions inside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_connections: Option<u32>,
}

/// A user (`APIUser`, §5); `password` only on create/update bodies.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Login name.
    pub username: String,
    /// Only sent to set it; never returned by GET.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// A plain boolean: omitting it on PUT re-enables the user.
    #[serde(default)]
    pub disabled: bool,
    /// Schema attributes; unset ones are null.
    #[serde(default)]
    pub attributes: Attributes,
    /// Epoch milliseconds of the last login, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_active: Option<i64>,
}

/// A permission set (`APIPermissionSet`, §6); all seven keys are always present.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PermissionSet {
    /// Connection id → object permissions.
    pub connection_permissions: BTreeMap<String, Vec<String>>,
    /// Connection group id → object permissions.
    pub connection_group_permissions: BTreeMap<String, Vec<String>>,
    /// Sharing profile id → object permissions.
    pub sharing_profile_permissions: BTreeMap<String, Vec<String>>,
    /// Active connection id → object permissions.
    pub active_connection_permissions: BTreeMap<String, Vec<String>>,
    /// Username → object permissions.
    pub user_permissions: BTreeMap<String, Vec<String>>,
    /// User group id → object permissions.
    pub user_group_permissions: BTreeMap<String, Vec<String>>,
    /// System permissions (`ADMINISTER`, `CREATE_CONNECTION`, …).
    pub system_permissions: Vec<String>,
}

/// One JSON-patch operation: directory batches carry an object `value`, permission patches a string.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Patch<T> {
    /// `add`, `replace` or `remove`.
    pub op: String,
    /// `/` for add, `/{id}` otherwise; permission paths like `/connectionPermissions/7`.
    pub path: String,
    /// The object (directory patch) or permission type (permission patch); absent for remove.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<T>,
}

impl<T> Patch<T> {
    /// `{"op":"add","path":"/","value":…}` for a directory, or a permission add.
    pub fn add(path: impl Into<String>, value: T) -> Self {
        Patch { op: "add".into(), path: path.into(), value: Some(value) }
    }
    /// `{"op":"replace","path":"/{id}","value":…}`.
    pub fn replace(id: &str, value: T) -> Self {
        Patch { op: "replace".into(), path: format!("/{id}"), value: Some(value) }
    }
    /// `{"op":"remove","path":"/{id}"}`.
    pub fn remove(id: &str) -> Self {
        Patch { op: "remove".into(), path: format!("/{id}"), value: None }
    }
}

/// A translatable message (`{"key":…,"variables":…}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TranslatableMessage {
    /// Translation key; `APP.TEXT_UNTRANSLATED` for plain text.
    pub key: String,
    /// Substitutions; `MESSAGE` holds untranslated text.
    #[serde(default)]
    pub variables: Option<serde_json::Value>,
}

/// The outcome of one directory patch (`APIPatchOutcome` / `APIPatchError`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PatchOutcome {
    /// The operation.
    pub op: String,
    /// Identifier of the affected object; null for rolled-back adds and removes.
    pub identifier: Option<String>,
    /// The patch path.
    pub path: String,
    /// Why this patch failed, in a failed batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<TranslatableMessage>,
}

/// Response of a successful directory PATCH.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PatchResponse {
    /// One outcome per patch, in order.
    pub patches: Vec<PatchOutcome>,
}

/// Guacamole's error body (`APIError`, §8); every field is present, nulls included.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApiError {
    /// Human-readable message.
    pub message: Option<String>,
    /// The same as a translatable message.
    pub translatable_message: Option<TranslatableMessage>,
    /// Only for `STREAM_ERROR`.
    pub status_code: Option<i32>,
    /// Credentials a login expects (credential errors only).
    pub expected: Option<Vec<serde_json::Value>>,
    /// Per-patch outcomes of a failed directory PATCH.
    pub patches: Option<Vec<PatchOutcome>>,
    /// `BAD_REQUEST`, `INVALID_CREDENTIALS`, `PERMISSION_DENIED`, `NOT_FOUND`, `INTERNAL_ERROR`, …
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

impl ApiError {
    /// An error body with an untranslated message, as Guacamole builds them.
    pub fn new(kind: &str, message: &str) -> Self {
        ApiError {
            message: Some(message.to_owned()),
            translatable_message: Some(TranslatableMessage {
                key: "APP.TEXT_UNTRANSLATED".into(),
                variables: Some(serde_json::json!({ "MESSAGE": message })),
            }),
            status_code: None,
            expected: None,
            patches: None,
            kind: Some(kind.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests;
