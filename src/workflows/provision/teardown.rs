//! Removing a container: the rollback of a failed provisioning, and the deletion of a machine. Nothing
//! is stopped or deleted that does not carry the request's marker; answers lost on the way are
//! recovered from PVE's state (a `destroyed` lock is waited for, the guest's absence decides).

use std::time::Instant;

use serde_json::json;

use super::clone::{Target, settle_target, stop_clone};
use super::recovery::{self, LostCall, Path, Recovery};
use super::steps::wait_options;
use super::{Progress, Subject};
use crate::domain::guest_marker::GuestMarker;
use crate::integrations::pve::{PveError, Upid};
use crate::workflows::{Deps, StepError, timeline};

/// Stops and destroys the container if it exists and is this request's; a clone still running is
/// stopped first (its worker then removes the target itself).
pub async fn rollback(deps: &Deps, s: &Subject, p: &Progress) -> Result<(), StepError> {
    rollback_container(deps, s.request.id, &s.template.node, Some(s.template.vmid as u64), p).await
}

/// [`rollback`] from what a job's checkpoint recorded, for clean-up outside the provisioning job.
/// `template` (the clone's source VMID) lets a clone whose task id was lost be found and stopped.
pub async fn rollback_container(
    deps: &Deps,
    request_id: i64,
    node: &str,
    template: Option<u64>,
    p: &Progress,
) -> Result<(), StepError> {
    let Some(vmid) = p.vmid else { return Ok(()) };
    let marker = GuestMarker::for_request(request_id);
    if !p.cloned {
        match p.clone_upid.as_deref().and_then(|u| u.parse::<Upid>().ok()) {
            // However it ends, what is left of the target (if anything) is looked at next; a task PVE no
            // longer knows leaves a locked target that `destroy_container` names.
            Some(upid) => {
                if let Err(e) = stop_clone(deps, &upid).await {
                    tracing::warn!(request = request_id, vmid, error = %e.message(), "stopping the clone task failed");
                }
            }
            // The clone's answer was lost (or never saved): wait for the clone, stop it past the deadline.
            None => {
                let found = settle_target(deps, node, template, marker, vmid).await?;
                if found != Target::Ours {
                    let path = if found == Target::Removed { Path::Removed } else { Path::Absent };
                    let r = Recovery::new(LostCall::Clone, path);
                    recovery::note(deps, request_id, "provision.recovered", vmid, r).await;
                    return Ok(());
                }
            }
        }
    }
    match deps.pve.lxc_config(node, vmid).await {
        Ok(c) if marker.is_carried_by(c.description.as_deref(), c.tags.as_deref()) => {}
        Ok(_) | Err(PveError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    for r in destroy_container(deps, node, vmid).await? {
        recovery::note(deps, request_id, "provision.recovered", vmid, r).await;
    }
    timeline::note(&deps.db, request_id, "provision.rolled_back", json!({"vmid": vmid})).await;
    Ok(())
}

/// Stop (when running), then delete with purge; a container that is already gone is fine. The caller
/// has checked that the container is the one it means. Answers the lost answers it recovered from.
pub async fn destroy_container(deps: &Deps, node: &str, vmid: u64) -> Result<Vec<Recovery>, StepError> {
    let mut recovered = vec![];
    let Some(status) = unlocked_status(deps, node, vmid).await? else { return Ok(recovered) };
    if status.is_running() {
        match deps.pve.lxc_stop(node, vmid).await {
            Ok(upid) => {
                deps.pve.wait_task(&upid, wait_options(deps)).await?;
            }
            Err(PveError::NotRunning(_)) => {}
            Err(e) if e.outcome_unknown() => recovered.push(recovery::power(deps, node, vmid, LostCall::Stop).await?),
            Err(e) => return Err(e.into()),
        }
    }
    match deps.pve.lxc_delete(node, vmid, true).await {
        Ok(upid) => {
            deps.pve.wait_task(&upid, wait_options(deps)).await?;
        }
        Err(PveError::NotFound(_)) => {}
        Err(e) if e.outcome_unknown() => recovered.push(recover_delete(deps, node, vmid).await?),
        Err(e) => return Err(e.into()),
    }
    Ok(recovered)
}

/// The container's status once no lock is on it (a `destroyed` lock ends with the guest gone), or
/// `None` when it is gone.
async fn unlocked_status(
    deps: &Deps,
    node: &str,
    vmid: u64,
) -> Result<Option<crate::integrations::pve::wire::GuestStatus>, StepError> {
    let until = Instant::now() + deps.timing.task;
    loop {
        let status = match deps.pve.lxc_status(node, vmid).await {
            Ok(s) => s,
            Err(PveError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(lock) = &status.lock else { return Ok(Some(status)) };
        if Instant::now() > until {
            return Err(StepError::Retry(format!("CT {vmid} stayed locked ({lock})")));
        }
        tokio::time::sleep(deps.timing.poll).await;
    }
}

/// A delete whose answer was lost: its task is waited for if it runs, and the guest's absence decides;
/// a guest still there and unlocked was not deleted, and is deleted now.
async fn recover_delete(deps: &Deps, node: &str, vmid: u64) -> Result<Recovery, StepError> {
    if let Some(upid) = recovery::running_task(deps, node, "vzdestroy", vmid).await? {
        deps.pve.wait_task(&upid, wait_options(deps)).await?;
    }
    if unlocked_status(deps, node, vmid).await?.is_none() {
        return Ok(Recovery::new(LostCall::Delete, Path::Gone));
    }
    match deps.pve.lxc_delete(node, vmid, true).await {
        Ok(upid) => {
            deps.pve.wait_task(&upid, wait_options(deps)).await?;
        }
        Err(PveError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Recovery::new(LostCall::Delete, Path::Resent))
}
