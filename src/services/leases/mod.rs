//! Machine leases: the expiry a new machine gets, its extension by the owner (within the catalog entry's
//! policy) or an admin (beyond it, or no expiry), and the sweep that warns, stops and deletes
//! (`sweep`). Every lease change is audited and emitted as a [`LeaseEvent`] through [`emit`], which also
//! records the owner's notifications (warnings and the stop).

mod sweep;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::json;

use entities::{machine, request, template};

use super::{Actor, ServiceError, audit};
use crate::config::{ConfigError, RawSettings};
use crate::domain::FieldError;
use crate::domain::lease::{LeaseChange, LeasePolicy, LeaseRefusal, LeaseStage, LeaseStep, LeaseTiming, new_expiry};
use crate::domain::notification::EventKind;
use crate::domain::request_status::RequestStatus;

pub use sweep::{STEP_JOB, StepOutcome, SweepReport, run_step, sweep};

/// The lease settings (`PROXDESK_LEASE_*`).
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// Lease of a new machine whose catalog entry sets none, in days.
    pub default_days: u32,
    /// Longest lease an owner may set when the entry sets none, in days.
    pub max_days: u32,
    /// When the warnings fall and how long the grace period lasts.
    pub timing: LeaseTiming,
    /// Cron schedule of the sweep (6 fields, seconds first, UTC).
    pub schedule: String,
}

impl LeaseSettings {
    pub fn from_settings(raw: &RawSettings) -> Result<LeaseSettings, ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: format!("PROXDESK_{}", key.to_ascii_uppercase()),
            message: message.into(),
        };
        let days = |key: &str, default: u32| -> Result<u32, ConfigError> {
            let n = raw.parse(key)?.unwrap_or(default);
            if !(1..=crate::domain::lease::LEASE_DAYS_LIMIT).contains(&n) {
                return Err(invalid(key, "must be between 1 and 3650"));
            }
            Ok(n)
        };
        let hours = |key: &str, default: i64| -> Result<Duration, ConfigError> {
            let n: i64 = raw.parse(key)?.unwrap_or(default);
            if !(0..=24 * 365).contains(&n) {
                return Err(invalid(key, "must be between 0 and 8760"));
            }
            Ok(Duration::hours(n))
        };
        let default_days = days("lease_default_days", 30)?;
        let max_days = days("lease_max_days", 90)?;
        let timing = LeaseTiming {
            first_warning: hours("lease_first_warning_hours", 168)?,
            second_warning: hours("lease_second_warning_hours", 24)?,
            grace: hours("lease_grace_hours", 168)?,
        };
        if timing.second_warning >= timing.first_warning {
            return Err(invalid("lease_second_warning_hours", "must be shorter than lease_first_warning_hours"));
        }
        let schedule = raw.get("lease_schedule").unwrap_or("0 */5 * * * *").to_owned();
        Ok(LeaseSettings { default_days, max_days, timing, schedule })
    }

    /// The policy of machines made from `entry` (`None`: no entry, as an adopted guest).
    pub fn policy(&self, entry: Option<&template::Model>) -> LeasePolicy {
        let own = |v: Option<i32>| v.and_then(|n| u32::try_from(n).ok()).filter(|n| *n > 0);
        let default_days = entry.and_then(|t| own(t.lease_days)).unwrap_or(self.default_days);
        let max_days = entry.and_then(|t| own(t.lease_max_days)).unwrap_or(self.max_days).max(default_days);
        LeasePolicy { default_days, max_days }
    }

    /// The expiry of a machine made from `entry` now.
    pub fn initial_expiry(&self, entry: &template::Model, now: DateTime<Utc>) -> DateTime<Utc> {
        now.trunc_subsecs(0) + Duration::days(i64::from(self.policy(Some(entry)).default_days))
    }
}

/// What happened to a lease: audited, and handed to [`emit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseEvent {
    pub machine_id: i64,
    pub request_id: i64,
    pub owner_id: i64,
    pub kind: LeaseEventKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseEventKind {
    /// A warning (`step` is `WarnFirst` or `WarnSecond`) or the stop or deletion of an expired machine.
    Step { step: LeaseStep, expires_at: DateTime<Utc> },
    /// An owner or admin set a new expiry (`None`: no expiry).
    Extended { from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>> },
}

impl LeaseEventKind {
    /// The audit action.
    pub fn action(&self) -> &'static str {
        match self {
            LeaseEventKind::Step { step: LeaseStep::WarnFirst | LeaseStep::WarnSecond, .. } => "lease.warned",
            LeaseEventKind::Step { step: LeaseStep::Stop, .. } => "lease.expired",
            LeaseEventKind::Step { step: LeaseStep::Delete, .. } => "lease.reclaimed",
            LeaseEventKind::Extended { .. } => "lease.extended",
        }
    }
}

/// Records `event` in the caller's transaction: its audit entry, and for a stop or deletion the job
/// that carries it out (one per machine, step and expiry, however often it is emitted), and for a
/// warning or a stop the owner's notification. Answers the rows it wrote.
pub async fn emit<C: ConnectionTrait>(txn: &C, actor: Option<&Actor>, event: &LeaseEvent) -> Result<u64, ServiceError> {
    let details = match event.kind {
        LeaseEventKind::Step { step, expires_at } => {
            json!({"step": step.as_str(), "expires_at": expires_at, "request_id": event.request_id})
        }
        LeaseEventKind::Extended { from, to } => json!({"from": from, "to": to, "request_id": event.request_id}),
    };
    audit::record(txn, actor, event.kind.action(), "machine", event.machine_id, details).await?;
    let mut writes = 1;
    if let LeaseEventKind::Step { step: step @ (LeaseStep::Stop | LeaseStep::Delete), expires_at } = event.kind {
        let key = format!("lease:{}:{}:{}", event.machine_id, step.as_str(), expires_at.timestamp());
        let payload = json!({"machine_id": event.machine_id, "step": step.as_str(), "expires_at": expires_at});
        jobs::enqueue(txn, jobs::NewJob::new(STEP_JOB, payload).idempotency_key(key)).await?;
        writes += 1;
    }
    // The owner hears of warnings and of the stop; the deletion is told when the machine is deleted.
    let told = match event.kind {
        LeaseEventKind::Step { step: LeaseStep::WarnFirst | LeaseStep::WarnSecond, expires_at } => {
            Some((EventKind::LeaseWarning, expires_at))
        }
        LeaseEventKind::Step { step: LeaseStep::Stop, expires_at } => Some((EventKind::LeaseExpired, expires_at)),
        _ => None,
    };
    if let (Some((kind, expires_at)), LeaseEventKind::Step { step, .. }) = (told, event.kind) {
        let key = format!("lease:{}:{}:{}", event.machine_id, step.as_str(), expires_at.timestamp());
        let machine = Some(event.machine_id);
        super::notifications::record(txn, kind, &key, event.request_id, machine, None, Some(expires_at)).await?;
        writes += 1;
    }
    Ok(writes)
}

/// The lease policy of `m`: its request's catalog entry's, or the configured defaults.
pub async fn policy_of(
    db: &DatabaseConnection,
    settings: &LeaseSettings,
    m: &machine::Model,
) -> Result<LeasePolicy, ServiceError> {
    let entry = match request::Entity::find_by_id(m.request_id).one(db).await?.and_then(|r| r.template_id) {
        Some(id) => template::Entity::find_by_id(id).one(db).await?,
        None => None,
    };
    Ok(settings.policy(entry.as_ref()))
}

/// Sets a machine's expiry (owner within the entry's policy, admin beyond it or to no expiry) as asked
/// at `now`, and resets its lease: the warnings come again before the new expiry. A stopped expired
/// machine can be extended until its grace period ends; it stays stopped until its owner starts it.
#[tracing::instrument(skip(db, settings, actor), fields(actor = actor.id))]
pub async fn extend(
    db: &DatabaseConnection,
    settings: &LeaseSettings,
    actor: &Actor,
    machine_id: i64,
    change: LeaseChange,
    now: DateTime<Utc>,
) -> Result<machine::Model, ServiceError> {
    let m = super::machines::get(db, actor, machine_id).await?;
    if m.deleted_at.is_some() || m.lost_at.is_some() {
        return Err(ServiceError::Conflict("the machine is deleted or lost".into()));
    }
    let req = request::Entity::find_by_id(m.request_id).one(db).await?.ok_or(ServiceError::NotFound)?;
    let stage = LeaseStage::parse(&m.lease_stage).unwrap_or(LeaseStage::Active);
    if RequestStatus::parse(&req.status) != Some(RequestStatus::Ready) || stage == LeaseStage::Reclaimed {
        return Err(ServiceError::Conflict("the machine is being deleted".into()));
    }
    let policy = policy_of(db, settings, &m).await?;
    let to = match new_expiry(change, &policy, now.trunc_subsecs(0), actor.is_admin()) {
        Ok(to) => to,
        Err(LeaseRefusal::NoExpiryAdminOnly) => return Err(ServiceError::Forbidden),
        Err(r) => return Err(ServiceError::from(FieldError::from(r))),
    };
    let txn = crate::db::begin_write(db).await?;
    // One conditional UPDATE: a sweep step or another extension in between makes this one lose.
    let mut update = machine::Entity::update_many()
        .col_expr(machine::Column::ExpiresAt, Expr::value(to))
        .col_expr(machine::Column::LeaseStage, Expr::value(LeaseStage::Active.as_str()))
        .filter(machine::Column::Id.eq(m.id))
        .filter(machine::Column::LeaseStage.eq(m.lease_stage.clone()));
    update = match m.expires_at {
        Some(at) => update.filter(machine::Column::ExpiresAt.eq(at)),
        None => update.filter(machine::Column::ExpiresAt.is_null()),
    };
    if update.exec(&txn).await?.rows_affected != 1 {
        return Err(ServiceError::Conflict("the lease was changed meanwhile; try again".into()));
    }
    let event = LeaseEvent {
        machine_id: m.id,
        request_id: m.request_id,
        owner_id: m.user_id,
        kind: LeaseEventKind::Extended { from: m.expires_at, to },
    };
    emit(&txn, Some(actor), &event).await?;
    let updated = machine::Entity::find_by_id(m.id).one(&txn).await?.ok_or(ServiceError::NotFound)?;
    txn.commit().await?;
    Ok(updated)
}
