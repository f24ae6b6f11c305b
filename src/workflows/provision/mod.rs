//! The provisioning workflow: approved request → running, finished machine → `ready`. A catalog
//! entry's kind picks the steps: a container cloned from an LXC template ([`steps`]), a VM cloned from
//! a cloud-init template ([`qemu`]), or a blank VM booting an installer ISO ([`qemu_create`]).
//!
//! Each step is checkpointed in the job, so a crash resumes at the step it was in, and each step is
//! idempotent (it checks what PVE already has before acting). A permanent failure, or the last failed
//! attempt, rolls back what was created and marks the request `failed` with the reason.

mod cleanup;
mod clone;
mod placement;
mod power;
mod progress;
mod qemu;
mod qemu_config;
mod qemu_create;
mod ready;
mod recovery;
mod steps;
mod target;
mod teardown;

/// Shared with the destroy workflow.
pub(crate) use recovery::note as note_recovery;
pub(crate) use steps::wait_options;
pub(crate) use teardown::destroy_guest;

pub use cleanup::{CLEANUP_JOB, Cleanup};

use std::sync::Arc;

use jobs::{Handler, HandlerError, Job, JobContext, Outcome, StopReason};
use sea_orm::{DatabaseTransaction, EntityTrait};
use serde::Deserialize;
use serde_json::json;

use entities::{request, template, user};

use super::{Deps, StepError, timeline};
use crate::domain::guest::MachineKind;
use crate::domain::request_status::{RequestEvent, RequestStatus};
use crate::services::{addresses, requests};

pub use progress::Progress;

#[derive(Deserialize)]
struct Payload {
    request_id: i64,
}

/// Everything a step needs about the request.
pub(crate) struct Subject {
    pub request: request::Model,
    pub template: template::Model,
    pub owner: user::Model,
    /// The catalog entry's kind, parsed.
    pub kind: MachineKind,
}

/// The `provision` job handler.
pub struct Provision {
    pub deps: Arc<Deps>,
}

#[jobs::async_trait]
impl Handler for Provision {
    async fn run(&self, ctx: JobContext) -> Result<Outcome, HandlerError> {
        let Payload { request_id } = ctx.payload_as()?;
        let db = &self.deps.db;
        let Some(req) = request::Entity::find_by_id(request_id).one(db).await? else {
            return Ok(Outcome::failed(format!("request {request_id} no longer exists")));
        };
        match RequestStatus::parse(&req.status) {
            Some(RequestStatus::Approved) => {
                requests::transition(db, None, request_id, RequestEvent::StartProvisioning, vec![], json!({})).await?;
            }
            Some(RequestStatus::Provisioning) => {}
            // Cancelled, retried elsewhere or already finished: nothing left to do.
            _ => return Ok(Outcome::Done),
        }
        let subject = match load(db, req).await {
            Ok(s) => s,
            Err(e) => return self.give_up(&ctx, request_id, None, &Progress::default(), e).await,
        };
        let mut progress: Progress = ctx.checkpoint_as()?.unwrap_or_default();
        if let Err(e) = crate::domain::login_name::check(&subject.owner.username) {
            // Finishing would set the password of that system account in the guest. Refused before
            // anything is made; what an older attempt made (a checkpoint from before) is rolled back.
            let reason = format!(
                "the owner's account name {:?} is a system account's name inside machines (finishing would set that \
                 account's password), so no machine is made for it; nothing was created",
                subject.owner.username
            );
            tracing::warn!(request = request_id, error = %e, "provisioning refused");
            return self.give_up(&ctx, request_id, Some(&subject), &progress, StepError::Fatal(reason)).await;
        }
        let result = tokio::select! {
            r = run_kind(&self.deps, &ctx, &subject, &mut progress) => r,
            reason = ctx.stopped() => match reason {
                // The checkpoint holds our progress; another worker (or this one after restart) resumes.
                StopReason::Shutdown => return Ok(Outcome::RetryLater { after: None, reason: "shutting down".into() }),
                StopReason::LeaseLost => return Err("lease lost".into()),
                StopReason::Cancelled => Err(StepError::Fatal("cancelled".into())),
            },
        };
        match result {
            Ok(()) => Ok(Outcome::Done),
            Err(StepError::Retry(message)) if !ctx.is_last_attempt() => {
                let details = json!({"attempt": ctx.attempt(), "of": ctx.max_attempts(), "error": message});
                timeline::note(db, request_id, "provision.retrying", details).await;
                Err(message.into())
            }
            Err(e) => self.give_up(&ctx, request_id, Some(&subject), &progress, e).await,
        }
    }

    /// A job that died without reaching `run`'s own clean-up (e.g. a crash on its last attempt) still
    /// leaves its request visibly failed and retryable, and what it created is removed by a
    /// [`CLEANUP_JOB`] queued in the same transaction.
    async fn on_give_up(&self, txn: &DatabaseTransaction, job: &Job) -> Result<(), HandlerError> {
        let Some(id) = job.payload.get("request_id").and_then(|v| v.as_i64()) else { return Ok(()) };
        let reason = job.last_error.clone().unwrap_or_else(|| "provisioning stopped".into());
        let failed = match fail_in(txn, id, &reason).await {
            Ok(request) => request,
            // Already failed by `run` (which rolled back), or moved on meanwhile.
            Err(crate::services::ServiceError::IllegalTransition(_) | crate::services::ServiceError::Conflict(_)) => {
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let progress: Progress =
            job.checkpoint.clone().and_then(|c| serde_json::from_value(c).ok()).unwrap_or_default();
        if progress.vmid.is_none() {
            // Nothing was made on the cluster: only the static address (if any) goes back, now.
            addresses::release_in(txn, id).await?;
            return Ok(());
        }
        let Some(template_id) = failed.template_id else { return Ok(()) };
        let Some(template) = template::Entity::find_by_id(template_id).one(txn).await? else { return Ok(()) };
        let node = progress.node_or(&template.node).to_owned();
        cleanup::enqueue_in(txn, job.id, id, &node, progress).await?;
        Ok(())
    }
}

impl Provision {
    /// Rolls back what exists, marks the request failed, and ends the job as failed.
    async fn give_up(
        &self,
        ctx: &JobContext,
        request_id: i64,
        subject: Option<&Subject>,
        progress: &Progress,
        error: StepError,
    ) -> Result<Outcome, HandlerError> {
        let mut reason = error.message().to_owned();
        if let Some(subject) = subject
            && let Err(e) = teardown::rollback(&self.deps, subject, progress).await
        {
            reason = format!("{reason}; clean-up failed: {}", e.message());
        }
        let db = &self.deps.db;
        let txn = crate::db::begin_write(db).await?;
        match fail_in(&txn, request_id, &reason).await {
            Ok(_) => txn.commit().await?,
            Err(e) => tracing::warn!(request = request_id, error = %e, "request not marked failed"),
        }
        tracing::warn!(request = request_id, job = ctx.id(), %reason, "provisioning failed");
        Ok(Outcome::failed(reason))
    }
}

async fn fail_in<C: sea_orm::ConnectionTrait>(
    conn: &C,
    request_id: i64,
    reason: &str,
) -> Result<request::Model, crate::services::ServiceError> {
    let extra = vec![(request::Column::Reason, Some(reason.to_owned()).into())];
    requests::transition_in(conn, None, request_id, RequestEvent::ProvisioningFailed, extra, json!({"reason": reason}))
        .await
}

/// The steps of the entry's kind, each kind under the per-node limit of the node it works on (for an
/// ISO VM, the node chosen for it).
async fn run_kind(deps: &Deps, ctx: &JobContext, s: &Subject, p: &mut Progress) -> Result<(), StepError> {
    match s.kind {
        MachineKind::Lxc => {
            let _node = deps.limits.nodes.acquire(&s.template.node).await;
            steps::run(deps, ctx, s, p).await
        }
        MachineKind::QemuCloudInit => {
            let _node = deps.limits.nodes.acquire(&s.template.node).await;
            qemu::run(deps, ctx, s, p).await
        }
        MachineKind::QemuIso => {
            let node = placement::place(deps, ctx, s, p).await?;
            let _node = deps.limits.nodes.acquire(&node).await;
            qemu_create::run(deps, ctx, s, p, &node).await
        }
    }
}

async fn load(db: &sea_orm::DatabaseConnection, request: request::Model) -> Result<Subject, StepError> {
    // An adopted machine is never provisioned: its request starts `ready`, and has no entry to clone.
    if request.origin == crate::domain::request_origin::RequestOrigin::Adopted.as_str() {
        return Err(StepError::Fatal("an adopted machine is not provisioned".into()));
    }
    let template_id = request
        .template_id
        .ok_or_else(|| StepError::Fatal("the request has no catalog entry to provision from".into()))?;
    let template = template::Entity::find_by_id(template_id)
        .one(db)
        .await?
        .ok_or_else(|| StepError::Fatal("the request's template was removed from the catalog".into()))?;
    let owner = user::Entity::find_by_id(request.user_id)
        .one(db)
        .await?
        .ok_or_else(|| StepError::Fatal("the requester's account no longer exists".into()))?;
    let kind = MachineKind::parse(&template.kind)
        .ok_or_else(|| StepError::Fatal(format!("the catalog entry's kind {:?} is unknown", template.kind)))?;
    Ok(Subject { request, template, owner, kind })
}
