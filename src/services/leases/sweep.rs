//! The expiry sweep: for every machine whose next lease step is due at `now`, one transaction moves its
//! stage forward with a conditional UPDATE, writes the audit entry and, for a stop or deletion, enqueues
//! the step's job. A machine with nothing due is read, never written; a second sweep of the same instant
//! (another replica, a repeated tick, a restart) finds the stage moved and writes nothing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr};

use entities::{machine, request};

use super::{LeaseEvent, LeaseEventKind, LeaseSettings, emit};
use crate::domain::lease::{LeaseStage, LeaseStep, next_step};
use crate::domain::request_status::RequestStatus;
use crate::services::ServiceError;

/// The job kind that stops or deletes one expired machine.
pub const STEP_JOB: &str = "lease_step";

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Machines read because their expiry is within the first warning.
    pub examined: u64,
    pub warned: u64,
    pub stopped: u64,
    pub deleted: u64,
    /// Rows written: stage updates, audit entries and jobs.
    pub writes: u64,
}

/// Sweeps every lease as of `now` (the cron tick; tests choose it).
#[tracing::instrument(skip(db, settings))]
pub async fn sweep(
    db: &DatabaseConnection,
    settings: &LeaseSettings,
    now: DateTime<Utc>,
) -> Result<SweepReport, ServiceError> {
    let t = &settings.timing;
    let horizon = now + t.first_warning.max(t.second_warning);
    let rows = machine::Entity::find()
        .filter(machine::Column::ExpiresAt.lte(horizon))
        .filter(machine::Column::DeletedAt.is_null())
        .filter(machine::Column::LostAt.is_null())
        .filter(machine::Column::LeaseStage.ne(LeaseStage::Reclaimed.as_str()))
        .all(db)
        .await?;
    let mut report = SweepReport { examined: rows.len() as u64, ..SweepReport::default() };
    let due: Vec<(machine::Model, LeaseStage, LeaseStep, DateTime<Utc>)> = rows
        .into_iter()
        .filter_map(|m| {
            let expires_at = m.expires_at?;
            let stage = LeaseStage::parse(&m.lease_stage)?;
            let step = next_step(stage, expires_at, now, t)?;
            Some((m, stage, step, expires_at))
        })
        .collect();
    if due.is_empty() {
        return Ok(report);
    }
    // Only a ready machine's lease moves on: one being made, deleted or lost is left to that.
    let mut statuses: HashMap<i64, String> = HashMap::new();
    for chunk in due.chunks(500) {
        let ids: Vec<i64> = chunk.iter().map(|(m, ..)| m.request_id).collect();
        let found: Vec<(i64, String)> = request::Entity::find()
            .select_only()
            .column(request::Column::Id)
            .column(request::Column::Status)
            .filter(request::Column::Id.is_in(ids))
            .into_tuple()
            .all(db)
            .await?;
        statuses.extend(found);
    }
    for (m, stage, step, expires_at) in due {
        let ready = statuses.get(&m.request_id).and_then(|s| RequestStatus::parse(s)) == Some(RequestStatus::Ready);
        if !ready {
            continue;
        }
        let Some(writes) = advance(db, &m, stage, step, expires_at).await? else { continue };
        report.writes += writes;
        match step {
            LeaseStep::WarnFirst | LeaseStep::WarnSecond => report.warned += 1,
            LeaseStep::Stop => report.stopped += 1,
            LeaseStep::Delete => report.deleted += 1,
        }
    }
    if report.stopped + report.deleted > 0 {
        jobs::wake();
    }
    Ok(report)
}

/// Moves one lease from `stage` to `step`'s stage, unless it changed since it was read (an extension,
/// another sweep): then nothing is written and `None` answered.
async fn advance(
    db: &DatabaseConnection,
    m: &machine::Model,
    stage: LeaseStage,
    step: LeaseStep,
    expires_at: DateTime<Utc>,
) -> Result<Option<u64>, ServiceError> {
    let txn = crate::db::begin_write(db).await?;
    let moved = machine::Entity::update_many()
        .col_expr(machine::Column::LeaseStage, Expr::value(step.stage().as_str()))
        .filter(machine::Column::Id.eq(m.id))
        .filter(machine::Column::LeaseStage.eq(stage.as_str()))
        .filter(machine::Column::ExpiresAt.eq(expires_at))
        .exec(&txn)
        .await?;
    if moved.rows_affected != 1 {
        return Ok(None);
    }
    let event = LeaseEvent {
        machine_id: m.id,
        request_id: m.request_id,
        owner_id: m.user_id,
        kind: LeaseEventKind::Step { step, expires_at },
    };
    let writes = 1 + emit(&txn, None, &event).await?;
    txn.commit().await?;
    Ok(Some(writes))
}

/// Whether a step's job still has work: the machine, if its lease is still at `step`'s stage for the
/// same expiry (an extension since then cancels the step).
#[derive(Debug)]
pub enum StepOutcome {
    Due(Box<machine::Model>),
    /// Extended, deleted or lost meanwhile: nothing to do.
    Moot,
}

/// [`StepOutcome`] of a step's job for `machine_id`.
pub async fn run_step(
    db: &DatabaseConnection,
    machine_id: i64,
    step: LeaseStep,
    expires_at: DateTime<Utc>,
) -> Result<StepOutcome, ServiceError> {
    let Some(m) = machine::Entity::find_by_id(machine_id).one(db).await? else { return Ok(StepOutcome::Moot) };
    let current = LeaseStage::parse(&m.lease_stage);
    if m.deleted_at.is_some()
        || m.lost_at.is_some()
        || m.expires_at != Some(expires_at)
        || current != Some(step.stage())
    {
        return Ok(StepOutcome::Moot);
    }
    Ok(StepOutcome::Due(Box::new(m)))
}
