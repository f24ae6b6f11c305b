//! The conditional updates behind leases: claim, heartbeat, checkpoint, finish. Every write to a running
//! job names its lease owner, so a worker that lost its lease changes nothing.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use crate::handler::Kind;
use crate::{Job, JobError, JobState, entity};

const QUEUED: &str = "queued";
const RUNNING: &str = "running";

/// A job a worker may claim now: due and queued, or running with an expired lease.
///
/// Times are bound as parameters from the worker's clock, never the database's, so the SQL is the
/// same on SQLite and PostgreSQL. SQLite stores them as RFC 3339 text in UTC whose order is the
/// time order (sqlx writes 0, 3, 6 or 9 fraction digits, and the `+` after them sorts before any
/// digit or `.`).
fn claimable(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(Condition::all().add(entity::Column::State.eq(QUEUED)).add(entity::Column::RunAfter.lte(now)))
        .add(Condition::all().add(entity::Column::State.eq(RUNNING)).add(entity::Column::LeaseExpiresAt.lt(now)))
}

/// Up to `limit` claimable jobs of `kinds`, oldest due first.
pub(crate) async fn candidates(
    db: &DatabaseConnection,
    kinds: &[String],
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<entity::Model>, JobError> {
    Ok(entity::Entity::find()
        .filter(entity::Column::Kind.is_in(kinds.iter().map(String::as_str)))
        .filter(claimable(now))
        .order_by_asc(entity::Column::RunAfter)
        .order_by_asc(entity::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// Claims job `id` for `owner` until `expires` with one conditional update, counting an attempt.
/// Returns the claimed job, or `None` when another worker was first.
///
/// On PostgreSQL the row is first locked with `FOR UPDATE SKIP LOCKED`, so a replica never waits on a
/// row another one is claiming at that moment: it moves on to its next candidate. The conditional update
/// alone already makes the claim exclusive (and is all SQLite, with one writer at a time, needs).
pub(crate) async fn claim(
    db: &DatabaseConnection,
    id: i64,
    owner: &str,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> Result<Option<Job>, JobError> {
    let claimed = if db.get_database_backend() == DbBackend::Postgres {
        let txn = db.begin().await?;
        let free: Option<i64> = entity::Entity::find()
            .select_only()
            .column(entity::Column::Id)
            .filter(entity::Column::Id.eq(id))
            .filter(claimable(now))
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .into_tuple()
            .one(&txn)
            .await?;
        let claimed = free.is_some() && claim_update(&txn, id, owner, now, expires).await?;
        txn.commit().await?;
        claimed
    } else {
        claim_update(db, id, owner, now, expires).await?
    };
    if !claimed {
        return Ok(None);
    }
    // Read after the claim: the checkpoint a previous holder wrote just before losing its lease counts.
    let job = crate::get(db, id).await?.ok_or(JobError::NotFound(id))?;
    Ok((job.lease_owner.as_deref() == Some(owner)).then_some(job))
}

/// The claim's conditional update; whether it took the job.
async fn claim_update<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    owner: &str,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> Result<bool, JobError> {
    let res = entity::Entity::update_many()
        .col_expr(entity::Column::State, Expr::value(RUNNING))
        .col_expr(entity::Column::LeaseOwner, Expr::value(owner))
        .col_expr(entity::Column::LeaseExpiresAt, Expr::value(expires))
        .col_expr(entity::Column::Attempts, Expr::col(entity::Column::Attempts).add(1))
        .col_expr(entity::Column::UpdatedAt, Expr::value(now))
        .filter(entity::Column::Id.eq(id))
        .filter(claimable(now))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// The lease is still ours if `id` is running under `owner`.
fn held(id: i64, owner: &str) -> Condition {
    Condition::all()
        .add(entity::Column::Id.eq(id))
        .add(entity::Column::LeaseOwner.eq(owner))
        .add(entity::Column::State.eq(RUNNING))
}

/// What a heartbeat learnt.
pub(crate) enum Beat {
    /// The lease was extended; whether cancellation was asked for.
    Held { cancel_requested: bool },
    /// The lease is no longer ours.
    Lost,
}

/// Extends the lease of `id` held by `owner` to `expires`.
pub(crate) async fn heartbeat(
    db: &DatabaseConnection,
    id: i64,
    owner: &str,
    expires: DateTime<Utc>,
) -> Result<Beat, JobError> {
    let res = entity::Entity::update_many()
        .col_expr(entity::Column::LeaseExpiresAt, Expr::value(expires))
        .filter(held(id, owner))
        .exec(db)
        .await?;
    if res.rows_affected != 1 {
        return Ok(Beat::Lost);
    }
    let flag: Option<bool> = entity::Entity::find_by_id(id)
        .select_only()
        .column(entity::Column::CancelRequested)
        .into_tuple()
        .one(db)
        .await?;
    Ok(Beat::Held { cancel_requested: flag.unwrap_or(false) })
}

/// Stores `value` as the checkpoint of `id` if `owner` still holds its lease.
pub(crate) async fn write_checkpoint<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    owner: &str,
    value: &serde_json::Value,
) -> Result<(), JobError> {
    let res = entity::Entity::update_many()
        .col_expr(entity::Column::Checkpoint, Expr::value(serde_json::to_string(value)?))
        .col_expr(entity::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(held(id, owner))
        .exec(conn)
        .await?;
    if res.rows_affected == 1 { Ok(()) } else { Err(JobError::LeaseLost(id)) }
}

/// How an attempt is settled.
#[derive(Debug)]
pub(crate) enum Finish {
    /// `succeeded`.
    Succeeded,
    /// `queued` again at `run_after`; `give_back` un-counts the attempt.
    Requeue { run_after: DateTime<Utc>, reason: String, give_back: bool },
    /// `failed`, `dead` or `cancelled`, with the kind's give-up hook in the same transaction.
    Final { state: JobState, reason: String },
}

/// Settles job `id` if `owner` still holds its lease; returns whether it did.
pub(crate) async fn finish(
    db: &DatabaseConnection,
    kind: &Kind,
    id: i64,
    owner: &str,
    finish: Finish,
) -> Result<bool, JobError> {
    let now = Utc::now();
    let update = entity::Entity::update_many()
        .col_expr(entity::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(entity::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(entity::Column::UpdatedAt, Expr::value(now))
        .filter(held(id, owner));
    match finish {
        Finish::Succeeded => {
            let res =
                update.col_expr(entity::Column::State, Expr::value(JobState::Succeeded.as_str())).exec(db).await?;
            Ok(res.rows_affected == 1)
        }
        Finish::Requeue { run_after, reason, give_back } => {
            let mut update = update
                .col_expr(entity::Column::State, Expr::value(QUEUED))
                .col_expr(entity::Column::RunAfter, Expr::value(run_after))
                .col_expr(entity::Column::LastError, Expr::value(reason));
            if give_back {
                update = update.col_expr(entity::Column::Attempts, Expr::col(entity::Column::Attempts).sub(1));
            }
            Ok(update.exec(db).await?.rows_affected == 1)
        }
        Finish::Final { state, reason } => {
            let update = update
                .col_expr(entity::Column::State, Expr::value(state.as_str()))
                .col_expr(entity::Column::LastError, Expr::value(reason));
            let txn = begin_write(db).await?;
            if update.exec(&txn).await?.rows_affected != 1 {
                txn.rollback().await?;
                return Ok(false);
            }
            give_up(kind, &txn, id).await?;
            txn.commit().await?;
            Ok(true)
        }
    }
}

/// Marks `job` (running, lease expired, no attempts left) `dead`, if nobody settled or took it first.
pub(crate) async fn bury(
    db: &DatabaseConnection,
    kind: &Kind,
    job: &entity::Model,
    now: DateTime<Utc>,
) -> Result<bool, JobError> {
    let txn = begin_write(db).await?;
    let res = entity::Entity::update_many()
        .col_expr(entity::Column::State, Expr::value(JobState::Dead.as_str()))
        .col_expr(
            entity::Column::LastError,
            Expr::value(format!("lease expired during attempt {} of {}", job.attempts, job.max_attempts)),
        )
        .col_expr(entity::Column::LeaseOwner, Expr::value(Option::<String>::None))
        .col_expr(entity::Column::LeaseExpiresAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(entity::Column::UpdatedAt, Expr::value(now))
        .filter(entity::Column::Id.eq(job.id))
        .filter(entity::Column::State.eq(RUNNING))
        .filter(entity::Column::LeaseOwner.eq(job.lease_owner.clone()))
        .filter(entity::Column::LeaseExpiresAt.lt(now))
        .exec(&txn)
        .await?;
    if res.rows_affected != 1 {
        txn.rollback().await?;
        return Ok(false);
    }
    give_up(kind, &txn, job.id).await?;
    txn.commit().await?;
    Ok(true)
}

async fn give_up(kind: &Kind, txn: &sea_orm::DatabaseTransaction, id: i64) -> Result<(), JobError> {
    let job = crate::get(txn, id).await?.ok_or(JobError::NotFound(id))?;
    kind.handler.on_give_up(txn, &job).await.map_err(|e| JobError::GiveUpHook(id, e.to_string()))
}

/// `BEGIN IMMEDIATE` on SQLite (no lock upgrade failures), an ordinary transaction elsewhere.
async fn begin_write(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, JobError> {
    Ok(db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?)
}
