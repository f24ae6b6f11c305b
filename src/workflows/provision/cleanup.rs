//! The `provision-cleanup` job: removes the guest a provisioning job left behind when it died without
//! rolling back itself, and gives its static address back. That happens when its worker crashes during the last attempt: the lease
//! expires, the queue gives up on the job, and only [`super::Provision`]'s `on_give_up` hook runs.

use std::sync::Arc;

use jobs::{Handler, HandlerError, JobContext, NewJob, Outcome};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use serde_json::json;

use entities::{machine, request, template};

use super::{Progress, teardown};
use crate::domain::guest::MachineKind;
use crate::workflows::{Deps, StepError, timeline};

/// The job kind.
pub const CLEANUP_JOB: &str = "provision-cleanup";

/// What the dead provisioning job had done, taken from its last checkpoint.
#[derive(Serialize, Deserialize)]
struct Payload {
    request_id: i64,
    node: String,
    progress: Progress,
}

/// Queues the clean-up of what provisioning job `job_id` recorded in `progress`, in the caller's
/// transaction; nothing is queued when it had not picked a VMID yet.
pub(crate) async fn enqueue_in<C: ConnectionTrait>(
    conn: &C,
    job_id: i64,
    request_id: i64,
    node: &str,
    progress: Progress,
) -> Result<(), jobs::JobError> {
    if progress.vmid.is_none() {
        return Ok(());
    }
    let payload = json!(Payload { request_id, node: node.to_owned(), progress });
    jobs::enqueue(conn, NewJob::new(CLEANUP_JOB, payload).idempotency_key(format!("{CLEANUP_JOB}:{job_id}"))).await?;
    Ok(())
}

/// The `provision-cleanup` job handler.
pub struct Cleanup {
    pub deps: Arc<Deps>,
}

#[jobs::async_trait]
impl Handler for Cleanup {
    async fn run(&self, ctx: JobContext) -> Result<Outcome, HandlerError> {
        let Payload { request_id, node, progress } = ctx.payload_as()?;
        let Some(vmid) = progress.vmid else { return Ok(Outcome::Done) };
        let db = &self.deps.db;
        // An admin's retry may have been quicker and made this very guest the request's machine.
        let adopted = machine::Entity::find()
            .filter(machine::Column::RequestId.eq(request_id))
            .filter(machine::Column::Vmid.eq(vmid as i64))
            .filter(machine::Column::DeletedAt.is_null())
            .one(db)
            .await?;
        if adopted.is_some() {
            return Ok(Outcome::Done);
        }
        // The entry's kind, and the clone's source, so a clone whose task id was lost can be found and stopped.
        let template = match request::Entity::find_by_id(request_id).one(db).await? {
            Some(r) => match r.template_id {
                Some(t) => template::Entity::find_by_id(t).one(db).await?,
                None => None,
            },
            None => None,
        };
        let kind = template.as_ref().and_then(|t| MachineKind::parse(&t.kind)).unwrap_or(MachineKind::Lxc);
        let source = template.filter(|_| kind.is_cloned()).map(|t| t.vmid as u64);
        match teardown::rollback_guest(&self.deps, request_id, &node, kind, source, &progress).await {
            Ok(()) => Ok(Outcome::Done),
            Err(e) => {
                let last = ctx.is_last_attempt() || matches!(e, StepError::Fatal(_));
                let details = json!({"vmid": vmid, "attempt": ctx.attempt(), "error": e.message()});
                let action = if last { "provision.cleanup_failed" } else { "provision.cleanup_retrying" };
                timeline::note(db, request_id, action, details).await;
                if matches!(e, StepError::Fatal(_)) {
                    Ok(Outcome::failed(e.message()))
                } else {
                    Err(e.message().to_owned().into())
                }
            }
        }
    }
}
