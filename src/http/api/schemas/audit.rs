//! The audit log.

use chrono::{DateTime, Utc};
use poem_openapi::Object;

/// One audit log entry.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject_type: String,
    pub subject_id: i64,
    pub details: serde_json::Value,
}

impl From<entities::audit_entry::Model> for AuditEntry {
    fn from(e: entities::audit_entry::Model) -> Self {
        AuditEntry {
            id: e.id,
            at: e.at,
            actor: e.actor_name,
            action: e.action,
            subject_type: e.subject_type,
            subject_id: e.subject_id,
            details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<i64>,
}
