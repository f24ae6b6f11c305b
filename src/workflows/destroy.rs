//! The `destroy` job: stop and delete a machine's guest (a container, or a VM with its disks), then mark
//! the request `deleted`. The guest at the machine's VMID is verified first: one without the machine's
//! marker is left alone and the machine becomes `lost`; none at all means there is nothing left to delete.

use std::sync::Arc;

use jobs::{Handler, HandlerError, Job, JobContext, Outcome};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter};
use serde::Deserialize;
use serde_json::json;

use entities::{machine, request};

use super::provision::{destroy_guest, note_recovery};
use super::{Deps, StepError, timeline};
use crate::domain::bulk::Reason;
use crate::domain::lost::LostReason;
use crate::domain::request_status::{RequestEvent, RequestStatus};
use crate::services::bulk::{self, Settled};
use crate::services::lost_machines::{self, GuestCheck};
use crate::services::{self, ServiceError, addresses, requests};

#[derive(Deserialize)]
struct Payload {
    request_id: i64,
}

/// The `destroy` job handler.
pub struct Destroy {
    pub deps: Arc<Deps>,
}

#[jobs::async_trait]
impl Handler for Destroy {
    async fn run(&self, ctx: JobContext) -> Result<Outcome, HandlerError> {
        let Payload { request_id } = ctx.payload_as()?;
        let db = &self.deps.db;
        let Some(req) = request::Entity::find_by_id(request_id).one(db).await? else {
            return Ok(Outcome::failed(format!("request {request_id} no longer exists")));
        };
        if RequestStatus::parse(&req.status) != Some(RequestStatus::Deleting) {
            return Ok(Outcome::Done);
        }
        let m = machine::Entity::find().filter(machine::Column::RequestId.eq(request_id)).one(db).await?;
        if let Some((m, vmid)) = m.as_ref().and_then(|m| Some((m, m.vmid?))) {
            // Never stop or delete a guest that is not this machine's: its VMID may name another by now.
            let removed = match lost_machines::check(&self.deps.pve, m).await {
                // A VM is stopped, then deleted with its unreferenced disks; a container as before.
                Ok(GuestCheck::Ours) => match services::machines::guest_type(m) {
                    Ok(ty) => destroy_guest(&self.deps, &m.node, ty, vmid as u64).await,
                    Err(e) => Err(StepError::Fatal(e.to_string())),
                },
                Ok(GuestCheck::Gone) => Ok(vec![]),
                Ok(GuestCheck::Replaced) => {
                    let lost = lost_machines::mark_lost(db, m, LostReason::Replaced, "delete").await?;
                    bulk::settle_deletion_in(db, m.id, Settled::refused(Reason::Lost, Some(lost.to_string()))).await?;
                    return Ok(Outcome::Done);
                }
                Err(e) => Err(StepError::from(e)),
            };
            match removed {
                Ok(recovered) => {
                    for r in recovered {
                        note_recovery(&self.deps, request_id, "machine.recovered", vmid as u64, r).await;
                    }
                }
                Err(e) => {
                    let details = json!({"attempt": ctx.attempt(), "error": e.message()});
                    if matches!(e, StepError::Retry(_)) && !ctx.is_last_attempt() {
                        timeline::note(db, request_id, "machine.delete_failed", details).await;
                        return Err(e.message().to_owned().into());
                    }
                    let txn = crate::db::begin_write(db).await?;
                    give_back(&txn, request_id, e.message()).await?;
                    txn.commit().await?;
                    return Ok(Outcome::failed(e.message()));
                }
            }
        }
        let txn = crate::db::begin_write(db).await?;
        if let Some(m) = m {
            bulk::settle_deletion_in(&txn, m.id, Settled::done()).await?;
            let mut row: machine::ActiveModel = m.into();
            row.deleted_at = Set(Some(chrono::Utc::now()));
            machine::Entity::update(row).exec(&txn).await?;
        }
        // The machine's static address is free for the next one.
        addresses::release_in(&txn, request_id).await?;
        requests::transition_in(&txn, None, request_id, RequestEvent::Deleted, vec![], json!({})).await?;
        txn.commit().await?;
        Ok(Outcome::Done)
    }

    /// A deletion whose worker died on its last attempt leaves the machine with its owner, too.
    async fn on_give_up(&self, txn: &DatabaseTransaction, job: &Job) -> Result<(), HandlerError> {
        let Some(id) = job.payload.get("request_id").and_then(|v| v.as_i64()) else { return Ok(()) };
        let reason = job.last_error.clone().unwrap_or_else(|| "deletion stopped".into());
        give_back(txn, id, &reason).await
    }
}

/// Hands a machine whose deletion failed back to its owner (`ready`, with the reason), so it stays visible
/// and can be deleted again; a request that moved on meanwhile is left alone.
async fn give_back(txn: &DatabaseTransaction, request_id: i64, reason: &str) -> Result<(), HandlerError> {
    let extra = vec![(request::Column::Reason, Some(reason.to_owned()).into())];
    let details = json!({"reason": reason});
    if let Some(m) = machine::Entity::find().filter(machine::Column::RequestId.eq(request_id)).one(txn).await? {
        bulk::settle_deletion_in(txn, m.id, Settled::failed(Reason::TaskFailed, Some(reason.to_owned()))).await?;
    }
    match requests::transition_in(txn, None, request_id, RequestEvent::DeleteFailed, extra, details).await {
        Ok(_) | Err(ServiceError::IllegalTransition(_) | ServiceError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
