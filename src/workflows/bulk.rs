//! The `bulk_item` job: one machine of a bulk run. A power action is asked of PVE and waited for, so the
//! item ends with PVE's own result; a delete hands the machine to the `destroy` job, which settles the
//! item when the guest is gone (or not). Runs as the run's user with their rights as they are now, and
//! under the same per-node limit as provisioning, so a bulk run never floods one node.

use std::sync::Arc;

use jobs::{Handler, HandlerError, Job, JobContext, Outcome};
use serde::Deserialize;

use super::Deps;
use super::provision::wait_options;
use crate::domain::bulk::{BulkAction, Reason};
use crate::integrations::pve::PveError;
use crate::services::bulk::{self, Settled, Work};
use crate::services::machines::PowerAction;
use crate::services::{GuestRefusal, ServiceError, machines};

#[derive(Deserialize)]
struct Payload {
    item_id: i64,
}

/// The `bulk_item` job handler.
pub struct BulkItem {
    pub deps: Arc<Deps>,
}

/// How one attempt ended.
enum Ended {
    Settled(Settled),
    /// Handed to the destroy job, which settles the item.
    HandedOff,
    /// Worth another attempt (PVE unreachable, a database hiccup).
    Transient(String),
}

#[jobs::async_trait]
impl Handler for BulkItem {
    async fn run(&self, ctx: JobContext) -> Result<Outcome, HandlerError> {
        let Payload { item_id } = ctx.payload_as()?;
        let db = &self.deps.db;
        let Some(work) = bulk::take(db, item_id).await? else { return Ok(Outcome::Done) };
        let node = machines::get(db, &work.actor, work.item.machine_id).await.map(|m| m.node).unwrap_or_default();
        let _node = self.deps.limits.nodes.acquire(&node).await;
        let ended = match work.action {
            BulkAction::Delete => self.delete(&work).await,
            BulkAction::Start => self.power(&work, PowerAction::Start).await,
            BulkAction::Shutdown => self.power(&work, PowerAction::Shutdown).await,
            BulkAction::Stop => self.power(&work, PowerAction::Stop).await,
            BulkAction::Reboot => self.power(&work, PowerAction::Reboot).await,
        };
        match ended {
            Ended::HandedOff => Ok(Outcome::Done),
            Ended::Settled(end) => {
                bulk::settle(db, &work.item, end).await?;
                Ok(Outcome::Done)
            }
            Ended::Transient(why) if !ctx.is_last_attempt() => Err(why.into()),
            Ended::Transient(why) => {
                bulk::settle(db, &work.item, Settled::failed(Reason::Unreachable, Some(why.clone()))).await?;
                Ok(Outcome::failed(why))
            }
        }
    }

    /// A worker that died on the last attempt leaves the item failed, not running for ever.
    async fn on_give_up(&self, _txn: &sea_orm::DatabaseTransaction, job: &Job) -> Result<(), HandlerError> {
        let Some(id) = job.payload.get("item_id").and_then(|v| v.as_i64()) else { return Ok(()) };
        let why = job.last_error.clone().unwrap_or_else(|| "the job stopped".into());
        if let Some(work) = bulk::take(&self.deps.db, id).await? {
            bulk::settle(&self.deps.db, &work.item, Settled::failed(Reason::Unreachable, Some(why))).await?;
        }
        Ok(())
    }
}

impl BulkItem {
    async fn delete(&self, work: &Work) -> Ended {
        let deps = &self.deps;
        match machines::delete(&deps.db, Some(&deps.pve), &work.actor, work.item.machine_id).await {
            Ok(()) => Ended::HandedOff,
            // A retry after the deletion was already under way: the destroy job settles it.
            Err(ServiceError::IllegalTransition(_)) if work.resumed => Ended::HandedOff,
            Err(e) => classify(e),
        }
    }

    async fn power(&self, work: &Work, action: PowerAction) -> Ended {
        let deps = &self.deps;
        let id = work.item.machine_id;
        let task = match machines::power_task(&deps.db, Some(&deps.pve), &work.actor, id, action).await {
            Ok(task) => task,
            // An earlier attempt's task got through before its worker stopped: the guest is where it was sent.
            Err(ServiceError::GuestRefused(GuestRefusal::NotRunning))
                if work.resumed && matches!(action, PowerAction::Stop | PowerAction::Shutdown) =>
            {
                return Ended::Settled(Settled::done());
            }
            Err(ServiceError::GuestRefused(GuestRefusal::AlreadyRunning))
                if work.resumed && action == PowerAction::Start =>
            {
                return Ended::Settled(Settled::done());
            }
            Err(e) => return classify(e),
        };
        match deps.pve.wait_task(&task, wait_options(deps)).await {
            Ok(_) => Ended::Settled(Settled::done()),
            // The task ran and PVE says why it failed: its own words.
            Err(PveError::TaskFailed { exit_status, .. }) => {
                Ended::Settled(Settled::failed(Reason::TaskFailed, Some(exit_status)))
            }
            Err(PveError::TaskRunning { waited, .. }) => {
                Ended::Settled(Settled::failed(Reason::TimedOut, Some(format!("{} s", waited.as_secs()))))
            }
            Err(e) => Ended::Transient(format!("Proxmox VE: {e}")),
        }
    }
}

/// Refused: not attempted, for a reason of proxdesk's or the guest's state. Failed: PVE said no in its
/// own words. Transient: nobody has answered yet.
fn classify(e: ServiceError) -> Ended {
    let refused = |reason, message| Ended::Settled(Settled::refused(reason, message));
    match e {
        ServiceError::GuestRefused(GuestRefusal::Other(said)) => {
            Ended::Settled(Settled::failed(Reason::Refused, Some(said)))
        }
        ServiceError::GuestRefused(GuestRefusal::NotRunning) => refused(Reason::NotRunning, None),
        ServiceError::GuestRefused(GuestRefusal::AlreadyRunning) => refused(Reason::AlreadyRunning, None),
        ServiceError::GuestRefused(GuestRefusal::Locked(lock)) => refused(Reason::Locked, Some(lock)),
        ServiceError::GuestRefused(GuestRefusal::VmOnly) => refused(Reason::NotNow, None),
        ServiceError::NotFound | ServiceError::Forbidden => refused(Reason::NotFound, None),
        ServiceError::MachineLost { .. } => refused(Reason::Lost, Some(e.to_string())),
        ServiceError::Conflict(why) => refused(Reason::NotNow, Some(why)),
        ServiceError::IllegalTransition(t) => refused(Reason::NotNow, Some(t.to_string())),
        ServiceError::Invalid(_) => refused(Reason::NotNow, None),
        e => Ended::Transient(e.to_string()),
    }
}
