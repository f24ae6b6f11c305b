//! The lease jobs. `lease_sweep` runs the expiry sweep as of its cron tick (one job per tick across
//! replicas); `lease_step` stops an expired machine (through the machine power service, waiting for PVE's
//! task) or deletes one whose grace period ended (through the deletion service and the `destroy` job).
//! A step repeated after a crash finds its work done (the guest already stopped, the request already
//! deleting) and changes nothing; a step whose lease was extended meanwhile does nothing.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jobs::{Handler, HandlerError, JobContext, KindOptions, Outcome, Registry, Scheduler};
use serde::Deserialize;

use super::Deps;
use super::provision::wait_options;
use crate::domain::lease::LeaseStep;
use crate::integrations::pve::PveError;
use crate::services::leases::{self, STEP_JOB, StepOutcome};
use crate::services::machines::{self, PowerAction};
use crate::services::{GuestRefusal, ServiceError};

/// The sweep's job kind.
pub const SWEEP_JOB: &str = "lease_sweep";

#[derive(Deserialize)]
struct SweepPayload {
    /// The instant the sweep is as of: its cron tick.
    at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct StepPayload {
    machine_id: i64,
    step: String,
    expires_at: DateTime<Utc>,
}

/// Registers both kinds: one sweep at a time (the next tick is its retry), steps with the workflows'
/// retries.
pub fn register(registry: &mut Registry, deps: Arc<Deps>, step_options: KindOptions) {
    let options = KindOptions { max_attempts: Some(1), concurrency: Some(1), ..KindOptions::default() };
    let (db, settings) = (deps.db.clone(), Arc::new(deps.leases.clone()));
    registry.register_fn(SWEEP_JOB, options, move |ctx| {
        let (db, settings) = (db.clone(), settings.clone());
        async move {
            let SweepPayload { at } = ctx.payload_as()?;
            match leases::sweep(&db, &settings, at).await {
                Ok(report) => {
                    tracing::info!(?report, %at, "lease sweep");
                    Ok::<_, HandlerError>(Outcome::Done)
                }
                Err(e) => Ok(Outcome::failed(e.to_string())),
            }
        }
    });
    registry.register_with(STEP_JOB, LeaseStepJob { deps }, step_options);
}

/// Enqueues a sweep on every tick of `cron`, as of that tick.
pub async fn schedule(scheduler: &Scheduler, cron: &str) -> Result<(), jobs::JobError> {
    scheduler.schedule(cron, SWEEP_JOB, |tick| serde_json::json!({ "at": tick })).await
}

/// The `lease_step` job handler.
pub struct LeaseStepJob {
    pub deps: Arc<Deps>,
}

#[jobs::async_trait]
impl Handler for LeaseStepJob {
    async fn run(&self, ctx: JobContext) -> Result<Outcome, HandlerError> {
        let StepPayload { machine_id, step, expires_at } = ctx.payload_as()?;
        let Some(step) = LeaseStep::parse(&step) else { return Ok(Outcome::failed(format!("unknown step {step:?}"))) };
        let deps = &self.deps;
        let m = match leases::run_step(&deps.db, machine_id, step, expires_at).await? {
            StepOutcome::Due(m) => *m,
            StepOutcome::Moot => return Ok(Outcome::Done),
        };
        match step {
            LeaseStep::Stop => {
                let task = match machines::power_machine(&deps.db, Some(&deps.pve), None, &m, PowerAction::Stop).await {
                    Ok(task) => task,
                    // Already off (by its owner, or by this step before a crash): nothing more to do.
                    Err(ServiceError::GuestRefused(GuestRefusal::NotRunning)) => return Ok(Outcome::Done),
                    // A lost machine is left alone; lost machines leave the sweep.
                    Err(ServiceError::MachineLost { .. } | ServiceError::NotFound) => return Ok(Outcome::Done),
                    Err(e) => return Err(e.to_string().into()),
                };
                match deps.pve.wait_task(&task, wait_options(deps)).await {
                    Ok(_) => Ok(Outcome::Done),
                    Err(PveError::TaskFailed { exit_status, .. }) => Err(format!("stop failed: {exit_status}").into()),
                    Err(e) => Err(format!("Proxmox VE: {e}").into()),
                }
            }
            LeaseStep::Delete => match machines::delete_machine(&deps.db, Some(&deps.pve), None, &m).await {
                Ok(()) => Ok(Outcome::Done),
                // Already deleting or deleted (this step before a crash, or its owner): the destroy job has it.
                Err(ServiceError::IllegalTransition(_) | ServiceError::MachineLost { .. }) => Ok(Outcome::Done),
                Err(e) => Err(e.to_string().into()),
            },
            // Warnings are the sweep's own (an audit entry and the owner's notice); no job carries them.
            LeaseStep::WarnFirst | LeaseStep::WarnSecond => Ok(Outcome::Done),
        }
    }
}
