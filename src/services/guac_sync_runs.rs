//! The record of Guacamole sync runs the admin page shows: the last run's time, counts and errors.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, QueryOrder, QuerySelect};

use entities::guac_sync_run;

use super::ServiceError;
use crate::integrations::guacamole::sync::SyncReport;

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Stores one finished run (a dry run too).
#[tracing::instrument(skip_all)]
pub async fn record<C: ConnectionTrait>(conn: &C, report: &SyncReport) -> Result<i64, ServiceError> {
    let a = &report.applied;
    let row = guac_sync_run::ActiveModel {
        started_at: Set(report.started_at),
        finished_at: Set(report.finished_at),
        dry_run: Set(report.dry_run),
        desired: Set(count(report.desired)),
        managed: Set(count(report.managed)),
        created: Set(count(a.created)),
        updated: Set(count(a.updated)),
        deleted: Set(count(a.deleted)),
        groups_created: Set(count(a.groups_created)),
        groups_deleted: Set(count(a.groups_deleted)),
        users_created: Set(count(a.users_created)),
        grants_added: Set(count(a.grants_added)),
        grants_removed: Set(count(a.grants_removed)),
        error_count: Set(count(report.error_count())),
        diagnostics: Set(serde_json::to_string(&report.diagnostics).unwrap_or_else(|_| "[]".into())),
        failure: Set(None),
        ..Default::default()
    };
    insert(conn, row).await
}

/// Stores a run that could not happen at all (Guacamole unreachable, login refused).
#[tracing::instrument(skip_all)]
pub async fn record_failure<C: ConnectionTrait>(
    conn: &C,
    started_at: DateTime<Utc>,
    failure: &str,
) -> Result<i64, ServiceError> {
    let row = guac_sync_run::ActiveModel {
        started_at: Set(started_at),
        finished_at: Set(Utc::now()),
        dry_run: Set(false),
        desired: Set(0),
        managed: Set(0),
        created: Set(0),
        updated: Set(0),
        deleted: Set(0),
        groups_created: Set(0),
        groups_deleted: Set(0),
        users_created: Set(0),
        grants_added: Set(0),
        grants_removed: Set(0),
        error_count: Set(1),
        diagnostics: Set("[]".into()),
        failure: Set(Some(failure.to_owned())),
        ..Default::default()
    };
    insert(conn, row).await
}

async fn insert<C: ConnectionTrait>(conn: &C, row: guac_sync_run::ActiveModel) -> Result<i64, ServiceError> {
    let id = guac_sync_run::Entity::insert(row).exec(conn).await?.last_insert_id;
    // The admin home shows the last run.
    super::live::publish(super::live::Change { subject_type: "guac_sync_run".into(), subject_id: id, actor_id: None });
    Ok(id)
}

/// The most recent runs, newest first.
pub async fn recent<C: ConnectionTrait>(conn: &C, limit: u64) -> Result<Vec<guac_sync_run::Model>, ServiceError> {
    Ok(guac_sync_run::Entity::find().order_by_desc(guac_sync_run::Column::Id).limit(limit).all(conn).await?)
}

/// The most recent run, if any.
pub async fn last<C: ConnectionTrait>(conn: &C) -> Result<Option<guac_sync_run::Model>, ServiceError> {
    Ok(recent(conn, 1).await?.into_iter().next())
}
