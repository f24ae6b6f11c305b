//! The append-only audit log.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use entities::audit_entry;

use super::{Actor, Page, ServiceError, into_page, page_limit};

/// Who made a change: a person, proxdesk itself (jobs, sweeps), or an automatic approval rule.
#[derive(Debug, Clone, Copy)]
pub enum By<'a> {
    Person(&'a Actor),
    System,
    Policy,
}

impl<'a> From<Option<&'a Actor>> for By<'a> {
    fn from(actor: Option<&'a Actor>) -> Self {
        actor.map_or(By::System, By::Person)
    }
}

impl By<'_> {
    fn actor_id(self) -> Option<i64> {
        match self {
            By::Person(a) => Some(a.id),
            By::System | By::Policy => None,
        }
    }

    /// The name the log shows.
    fn name(self) -> String {
        match self {
            By::Person(a) => a.username.clone(),
            By::System => "system".into(),
            By::Policy => "policy".into(),
        }
    }
}

/// Appends one entry; `actor` is `None` for the system. Call inside the transaction of the change.
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    actor: Option<&Actor>,
    action: &str,
    subject_type: &str,
    subject_id: i64,
    details: serde_json::Value,
) -> Result<i64, ServiceError> {
    record_by(conn, actor.into(), action, subject_type, subject_id, details).await
}

/// [`record`] naming who made the change. Every state change passes here, so it also tells live pages
/// to look again.
pub async fn record_by<C: ConnectionTrait>(
    conn: &C,
    by: By<'_>,
    action: &str,
    subject_type: &str,
    subject_id: i64,
    details: serde_json::Value,
) -> Result<i64, ServiceError> {
    let row = audit_entry::ActiveModel {
        at: Set(Utc::now()),
        actor_id: Set(by.actor_id()),
        actor_name: Set(by.name()),
        action: Set(action.to_owned()),
        subject_type: Set(subject_type.to_owned()),
        subject_id: Set(subject_id),
        details: Set(details.to_string()),
        ..Default::default()
    };
    let id = audit_entry::Entity::insert(row).exec(conn).await?.last_insert_id;
    // Live pages look again (and again shortly after, should this transaction not be committed yet).
    super::live::publish(super::live::Change {
        subject_type: subject_type.to_owned(),
        subject_id,
        actor_id: by.actor_id(),
    });
    Ok(id)
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
    /// For [`browse`]: entries with an id above this (the page before, going back to newer ones).
    pub after: Option<i64>,
    /// Entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Entries before this time.
    pub before: Option<DateTime<Utc>>,
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
    if let Some(a) = f.actor.as_deref().filter(|s| !s.is_empty()) {
        q = q.filter(audit_entry::Column::ActorName.eq(super::search_term(a)));
    }
    if let Some(a) = f.action.as_deref().filter(|s| !s.is_empty()) {
        q = q.filter(audit_entry::Column::Action.starts_with(super::search_term(a)));
    }
    if let Some(t) = f.subject_type.as_deref().filter(|s| !s.is_empty()) {
        q = q.filter(audit_entry::Column::SubjectType.eq(super::search_term(t)));
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

/// A page of the audit log, newest first, with cursors both ways.
#[derive(Debug, Clone)]
pub struct Browse {
    pub items: Vec<audit_entry::Model>,
    /// Pass as `cursor` for the older entries.
    pub older: Option<i64>,
    /// Pass as `after` for the newer entries.
    pub newer: Option<i64>,
}

/// Lists entries newest first like [`list`], walking back (`cursor`) or forward (`after`). Admins only.
pub async fn browse<C: ConnectionTrait>(conn: &C, actor: &Actor, f: AuditFilter) -> Result<Browse, ServiceError> {
    actor.require_admin()?;
    let limit = page_limit(f.limit);
    let mut q = audit_entry::Entity::find();
    if let Some(a) = f.actor.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        q = q.filter(audit_entry::Column::ActorName.eq(super::search_term(a)));
    }
    if let Some(a) = f.action.as_deref().filter(|s| !s.is_empty()) {
        q = q.filter(audit_entry::Column::Action.starts_with(super::search_term(a)));
    }
    if let Some(t) = f.subject_type.as_deref().filter(|s| !s.is_empty()) {
        q = q.filter(audit_entry::Column::SubjectType.eq(super::search_term(t)));
    }
    if let Some(id) = f.subject_id {
        q = q.filter(audit_entry::Column::SubjectId.eq(id));
    }
    if let Some(t) = f.since {
        q = q.filter(audit_entry::Column::At.gte(t));
    }
    if let Some(t) = f.before {
        q = q.filter(audit_entry::Column::At.lt(t));
    }
    if let Some(after) = f.after {
        // Forward: the `limit` entries just above `after`, read upwards, then shown newest first.
        let mut rows = q
            .filter(audit_entry::Column::Id.gt(after))
            .order_by_asc(audit_entry::Column::Id)
            .limit(limit + 1)
            .all(conn)
            .await?;
        let more_newer = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        rows.reverse();
        let newer = if more_newer { rows.first().map(|r| r.id) } else { None };
        let older = rows.last().map(|r| r.id);
        return Ok(Browse { items: rows, older, newer });
    }
    let came_back = f.cursor.is_some();
    if let Some(c) = f.cursor {
        q = q.filter(audit_entry::Column::Id.lt(c));
    }
    let rows = q.order_by_desc(audit_entry::Column::Id).limit(limit + 1).all(conn).await?;
    let page = into_page(rows, limit, |r| r.id);
    let newer = if came_back { page.items.first().map(|r| r.id).or(f.cursor.map(|c| c - 1)) } else { None };
    Ok(Browse { items: page.items, older: page.next_cursor, newer })
}

/// Every action proxdesk writes to the audit log, grouped by subject; the audit page offers them as a
/// filter and shows each in words (`audit.<action>` in every catalog).
pub const ACTIONS: &[&str] = &[
    "request.created",
    "request.approved",
    "request.rejected",
    "request.cancelled",
    "request.provisioning",
    "request.ready",
    "request.failed",
    "request.retried",
    "request.deleting",
    "request.deleted",
    "request.delete_failed",
    "request.lost",
    "request.readopted",
    "request.released",
    "request.stage_approved",
    "provision.cloned",
    "provision.configured",
    "provision.started",
    "provision.address",
    "provision.finished",
    "provision.retrying",
    "provision.rolled_back",
    "provision.cleanup_retrying",
    "provision.cleanup_failed",
    "provision.recovered",
    "provision.placed",
    "provision.created",
    "address.leased",
    "address.released",
    "machine.start",
    "machine.shutdown",
    "machine.reboot",
    "machine.stop",
    "machine.bulk",
    "machine.reset",
    "machine.delete_failed",
    "machine.recovered",
    "machine.readopt_failed",
    "machine.adopt",
    "machine.release",
    "machine.snapshot_create",
    "machine.snapshot_rollback",
    "machine.snapshot_delete",
    "console.opened",
    "console.closed",
    "console.url_issued",
    "console.refused",
    "user.created",
    "user.disabled",
    "user.enabled",
    "user.password_reset",
    "user.password_changed",
    "token.created",
    "token.revoked",
    "template.created",
    "template.updated",
    "quota.role_set",
    "quota.user_set",
    "guac.sync_requested",
    "user.signed_in",
    "user.role_changed",
    "identity.linked",
    "identity.unlinked",
    "sign_in.policy_changed",
    "pve_guest.start",
    "pve_guest.shutdown",
    "pve_guest.reboot",
    "pve_guest.stop",
    "pve_guest.reset",
    "pve_guest.console",
    "lease.warned",
    "lease.expired",
    "lease.reclaimed",
    "lease.extended",
    "approval_rule.created",
    "approval_rule.updated",
    "approval_rule.deleted",
    "group.created",
    "group.updated",
    "group.deleted",
    "group.member_added",
    "group.member_removed",
];

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

/// Details of the provisioning's own steps that only admins see: where the node is reached over SSH and
/// what the guest's shell printed say more about the infrastructure than an owner needs.
const ADMIN_ONLY_DETAILS: &[&str] = &["target", "stderr"];

/// [`timeline`] as `actor` may read it: an owner gets the entries without [`ADMIN_ONLY_DETAILS`].
pub async fn timeline_for<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    subject_type: &str,
    subject_id: i64,
) -> Result<Vec<audit_entry::Model>, ServiceError> {
    let mut entries = timeline(conn, subject_type, subject_id).await?;
    if !actor.is_admin() {
        for e in &mut entries {
            if let Ok(serde_json::Value::Object(mut details)) = serde_json::from_str(&e.details) {
                let removed = ADMIN_ONLY_DETAILS.iter().filter(|k| details.remove(**k).is_some()).count();
                if removed > 0 {
                    e.details = serde_json::Value::Object(details).to_string();
                }
            }
        }
    }
    Ok(entries)
}

/// The request of each of `machine_ids` (a machine's page is its request's), for linking audit subjects.
pub async fn machine_requests<C: ConnectionTrait>(
    conn: &C,
    machine_ids: Vec<i64>,
) -> Result<std::collections::HashMap<i64, i64>, ServiceError> {
    use entities::machine;
    if machine_ids.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(i64, i64)> = machine::Entity::find()
        .select_only()
        .columns([machine::Column::Id, machine::Column::RequestId])
        .filter(machine::Column::Id.is_in(machine_ids))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().collect())
}
