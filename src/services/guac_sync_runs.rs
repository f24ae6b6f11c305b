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

/// Whether a run changed anything in Guacamole or had problems; quiet runs are summarised, not listed.
pub fn is_notable(r: &guac_sync_run::Model) -> bool {
    let changes = r.created
        + r.updated
        + r.deleted
        + r.groups_created
        + r.groups_deleted
        + r.users_created
        + r.grants_added
        + r.grants_removed;
    changes > 0 || r.error_count > 0 || r.failure.is_some()
}

/// One line of the sync history: a notable run, or a stretch of consecutive quiet runs.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryLine {
    Run(guac_sync_run::Model),
    Quiet { runs: usize, from: DateTime<Utc>, to: DateTime<Utc> },
}

/// Folds `runs` (newest first) into history lines, consecutive quiet runs becoming one line.
pub fn history(runs: Vec<guac_sync_run::Model>) -> Vec<HistoryLine> {
    let mut out: Vec<HistoryLine> = Vec::new();
    for r in runs {
        if is_notable(&r) {
            out.push(HistoryLine::Run(r));
            continue;
        }
        match out.last_mut() {
            // Newest first: an older quiet run pushes the stretch's start back.
            Some(HistoryLine::Quiet { runs, from, .. }) => {
                *runs += 1;
                *from = r.started_at;
            }
            _ => out.push(HistoryLine::Quiet { runs: 1, from: r.started_at, to: r.started_at }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: i64, minute: u32, created: i32, failure: Option<&str>) -> guac_sync_run::Model {
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, 1, 10, minute, 0).unwrap();
        guac_sync_run::Model {
            id,
            started_at: at,
            finished_at: at,
            dry_run: false,
            desired: 2,
            managed: 2,
            created,
            updated: 0,
            deleted: 0,
            groups_created: 0,
            groups_deleted: 0,
            users_created: 0,
            grants_added: 0,
            grants_removed: 0,
            error_count: i32::from(failure.is_some()),
            diagnostics: "[]".into(),
            failure: failure.map(str::to_owned),
        }
    }

    #[test]
    fn quiet_runs_between_notable_ones_fold_into_one_line() {
        let runs = vec![run(6, 50, 0, None), run(5, 40, 0, None), run(4, 30, 1, None), run(3, 20, 0, None)];
        let mut more = vec![run(2, 10, 0, None), run(1, 5, 0, Some("unreachable"))];
        let lines = history(runs.into_iter().chain(more.drain(..)).collect());
        let at = |m| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, 1, 10, m, 0).unwrap();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], HistoryLine::Quiet { runs: 2, from: at(40), to: at(50) });
        assert!(matches!(&lines[1], HistoryLine::Run(r) if r.id == 4));
        assert_eq!(lines[2], HistoryLine::Quiet { runs: 2, from: at(10), to: at(20) });
        assert!(matches!(&lines[3], HistoryLine::Run(r) if r.id == 1));
    }
}
