//! Progress entries on a request's timeline (audit entries by the system).

use serde_json::Value;

use crate::services::audit;

/// Records `action` (e.g. `provision.cloned`) on request `id`. A failure to record is logged, not fatal:
/// the timeline informs people, the job's checkpoint is what drives the work.
pub async fn note(db: &sea_orm::DatabaseConnection, id: i64, action: &str, details: Value) {
    if let Err(e) = audit::record(db, None, action, "request", id, details).await {
        tracing::warn!(request = id, action, error = %e, "timeline entry not recorded");
    }
}
