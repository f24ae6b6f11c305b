//! The per-user cap on open console sessions, counted in the database so that it holds across
//! replicas: one `console_sessions` row per running relay, refreshed while it runs, deleted when it
//! ends. A row not refreshed for [`STALE_AFTER_SECS`] belongs to a replica that died and no longer counts.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect,
};
use serde_json::json;

use entities::{console_session, user};

use super::{Actor, ServiceError, audit};
use crate::console::ConsoleKind;
use crate::domain::console_caps::{CapReached, ConsoleCaps};

/// How often a running relay refreshes its row.
pub const HEARTBEAT_SECS: u64 = 20;
/// A row not refreshed for this long no longer counts (several missed heartbeats).
pub const STALE_AFTER_SECS: i64 = 90;

/// Whose console a session shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionSubject {
    Machine(i64),
    PveGuest(u64),
}

impl SessionSubject {
    /// The stored (and audited) subject type and id.
    pub fn parts(self) -> (&'static str, i64) {
        match self {
            SessionSubject::Machine(id) => ("machine", id),
            SessionSubject::PveGuest(vmid) => (super::pve_guests::SUBJECT, vmid as i64),
        }
    }
}

fn live_since(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::seconds(STALE_AFTER_SECS)
}

/// The person's live sessions, leaving out the one of the same console of `same`: a new session
/// takes that one over (one console, one viewer), so it frees its slot rather than needing another.
async fn count_open<C: ConnectionTrait>(
    conn: &C,
    user_id: i64,
    same: (SessionSubject, ConsoleKind),
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let ((ty, id), kind) = (same.0.parts(), same.1.as_str());
    let same_console = Condition::all()
        .add(console_session::Column::SubjectType.eq(ty))
        .add(console_session::Column::SubjectId.eq(id))
        .add(console_session::Column::Kind.eq(kind));
    console_session::Entity::find()
        .filter(console_session::Column::UserId.eq(user_id))
        .filter(console_session::Column::LastSeenAt.gt(live_since(now)))
        .filter(same_console.not())
        .count(conn)
        .await
}

/// Whether `actor` may open one more console of `subject` now, without taking the slot: for the
/// console pages and for issuing console URLs.
pub async fn room_for(
    db: &DatabaseConnection,
    caps: ConsoleCaps,
    actor: &Actor,
    subject: SessionSubject,
    kind: ConsoleKind,
) -> Result<(), ServiceError> {
    let open = count_open(db, actor.id, (subject, kind), Utc::now()).await?;
    caps.admit_session(open).map_err(ServiceError::ConsoleCap)
}

/// Takes a slot for a session of `actor` on `subject`: the new row's id, or `ConsoleCap` when the
/// person already has as many sessions as the cap allows. Two opens at the cap cannot both win.
pub async fn claim(
    db: &DatabaseConnection,
    caps: ConsoleCaps,
    actor: &Actor,
    subject: SessionSubject,
    kind: ConsoleKind,
) -> Result<i64, ServiceError> {
    let now = Utc::now();
    let txn = crate::db::begin_write(db).await?;
    // Serialises one person's claims: the user's row lock on PostgreSQL (its count then sees the
    // other claim's row); on SQLite, BEGIN IMMEDIATE already lets one writer in at a time.
    user::Entity::find_by_id(actor.id).lock_exclusive().one(&txn).await?;
    let open = count_open(&txn, actor.id, (subject, kind), now).await?;
    caps.admit_session(open).map_err(ServiceError::ConsoleCap)?;
    console_session::Entity::delete_many()
        .filter(console_session::Column::UserId.eq(actor.id))
        .filter(console_session::Column::LastSeenAt.lte(live_since(now)))
        .exec(&txn)
        .await?;
    let (subject_type, subject_id) = subject.parts();
    let row = console_session::ActiveModel {
        user_id: Set(actor.id),
        subject_type: Set(subject_type.to_owned()),
        subject_id: Set(subject_id),
        kind: Set(kind.as_str().to_owned()),
        opened_at: Set(now),
        last_seen_at: Set(now),
        ..Default::default()
    };
    let id = console_session::Entity::insert(row).exec(&txn).await?.last_insert_id;
    txn.commit().await?;
    Ok(id)
}

/// Marks session `id` as still open; `false` when its row is gone.
pub async fn heartbeat(db: &DatabaseConnection, id: i64) -> Result<bool, DbErr> {
    let done = console_session::Entity::update_many()
        .col_expr(console_session::Column::LastSeenAt, Expr::value(Utc::now()))
        .filter(console_session::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(done.rows_affected == 1)
}

/// Frees session `id`'s slot.
pub async fn release(db: &DatabaseConnection, id: i64) -> Result<(), DbErr> {
    console_session::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

/// Audits a console (`via` `session` or `url`) or a console URL (`via` `api`) refused by a cap, and
/// gives back the refusal.
pub async fn refused(
    db: &DatabaseConnection,
    actor: &Actor,
    subject: SessionSubject,
    kind: ConsoleKind,
    via: &str,
    reached: CapReached,
) -> ServiceError {
    let (subject_type, subject_id) = subject.parts();
    let (open, cap) = match reached {
        CapReached::Sessions { open, cap } => (Some(open), cap),
        CapReached::UrlsPerMinute { cap } => (None, cap),
    };
    let details = json!({"kind": kind.as_str(), "via": via, "cap": reached.name(), "limit": cap, "open": open});
    if let Err(e) = audit::record(db, Some(actor), "console.refused", subject_type, subject_id, details).await {
        tracing::error!(error = ?e, subject_type, subject_id, "console.refused not audited");
    }
    ServiceError::ConsoleCap(reached)
}

/// Checks the URL cap inside `store_token`'s transaction: how many console URLs `user_id` was issued
/// in the last minute, after taking the same per-user lock as [`claim`].
pub(crate) async fn admit_url<C: ConnectionTrait>(
    conn: &C,
    caps: ConsoleCaps,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    user::Entity::find_by_id(user_id).lock_exclusive().one(conn).await?;
    let issued = entities::console_token::Entity::find()
        .filter(entities::console_token::Column::UserId.eq(user_id))
        .filter(entities::console_token::Column::CreatedAt.gt(now - Duration::seconds(60)))
        .count(conn)
        .await?;
    caps.admit_url(issued).map_err(ServiceError::ConsoleCap)
}
