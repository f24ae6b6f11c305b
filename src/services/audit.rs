//! The append-only audit log.

use chrono::Utc;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use entities::audit_entry;

use super::{Actor, Page, ServiceError, into_page, page_limit};

/// Appends one entry; `actor` is `None` for the system. Call inside the transaction of the change.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    actor: Option<&Actor>,
    action: &str,
    subject_type: &str,
    subject_id: i64,
    details: serde_json::Value,
) -> Result<i64, ServiceError> {
    let row = audit_entry::ActiveModel {
        at: Set(Utc::now()),
        actor_id: Set(actor.map(|a| a.id)),
        actor_name: Set(actor.map(|a| a.username.clone()).unwrap_or_else(|| "system".into())),
        action: Set(action.to_owned()),
        subject_type: Set(subject_type.to_owned()),
        subject_id: Set(subject_id),
        details: Set(details.to_string()),
        ..Default::default()
    };
    Ok(audit_entry::Entity::insert(row).exec(conn).await?.last_insert_id)
}

/// Filters of the audit list; all optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub subject_type: Option<String>,
    pub subject_id: Option<i64>,
    /// Newest first: entries with an id below this.
    pub cursor: Option<i64>,
    pub limit: Option<u64>,
}

/// Lists entries, newest first. Admins only.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    f: AuditFilter,
) -> Result<Page<audit_entry::Model>, ServiceError> {
    actor.require_admin()?;
    let limit = page_limit(f.limit);
    let mut q = audit_entry::Entity::find().order_by_desc(audit_entry::Column::Id);
    if let Some(a) = f.actor.filter(|s| !s.is_empty()) {
        q = q.filter(audit_entry::Column::ActorName.eq(a));
    }
    if let Some(a) = f.action.filter(|s| !s.is_empty()) {
        q = q.filter(audit_entry::Column::Action.starts_with(a));
    }
    if let Some(t) = f.subject_type.filter(|s| !s.is_empty()) {
        q = q.filter(audit_entry::Column::SubjectType.eq(t));
    }
    if let Some(id) = f.subject_id {
        q = q.filter(audit_entry::Column::SubjectId.eq(id));
    }
    if let Some(c) = f.cursor {
        q = q.filter(audit_entry::Column::Id.lt(c));
    }
    let rows = q.limit(limit + 1).all(conn).await?;
    Ok(into_page(rows, limit, |r| r.id))
}

/// The timeline of one subject, oldest first (no permission check: callers check the subject).
/// A request's timeline: its own entries and its machine's (power actions, consoles), oldest first.
pub async fn request_timeline<C: ConnectionTrait>(
    conn: &C,
    request_id: i64,
    machine_id: Option<i64>,
) -> Result<Vec<audit_entry::Model>, ServiceError> {
    use sea_orm::Condition;
    let mut subjects = Condition::any().add(
        Condition::all()
            .add(audit_entry::Column::SubjectType.eq("request"))
            .add(audit_entry::Column::SubjectId.eq(request_id)),
    );
    if let Some(m) = machine_id {
        subjects = subjects.add(
            Condition::all()
                .add(audit_entry::Column::SubjectType.eq("machine"))
                .add(audit_entry::Column::SubjectId.eq(m)),
        );
    }
    Ok(audit_entry::Entity::find().filter(subjects).order_by_asc(audit_entry::Column::Id).all(conn).await?)
}

pub async fn timeline<C: ConnectionTrait>(
    conn: &C,
    subject_type: &str,
    subject_id: i64,
) -> Result<Vec<audit_entry::Model>, ServiceError> {
    Ok(audit_entry::Entity::find()
        .filter(audit_entry::Column::SubjectType.eq(subject_type))
        .filter(audit_entry::Column::SubjectId.eq(subject_id))
        .order_by_asc(audit_entry::Column::Id)
        .all(conn)
        .await?)
}
