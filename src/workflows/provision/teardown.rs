//! Removing a guest: the rollback of a failed provisioning, and the deletion of a machine. Nothing is
//! stopped or deleted that does not carry the request's marker; answers lost on the way are recovered
//! from PVE's state (a `destroyed` lock is waited for, the guest's absence decides). A rolled-back
//! request gives its static address back once its guest is gone.

use std::time::Instant;

use serde_json::json;

use super::recovery::{self, LostCall, Path, Recovery};
use super::steps::wait_options;
use super::target::{self, Making, Target};
use super::{Progress, Subject};
use crate::domain::guest::{GuestType, MachineKind};
use crate::domain::guest_marker::GuestMarker;
use crate::integrations::pve::wire::{DeleteOptions, GuestStatus, PowerCommand};
use crate::integrations::pve::{PveError, Upid};
use crate::services::addresses;
use crate::workflows::{Deps, StepError, timeline};

/// Stops and destroys the guest if it exists and is this request's; a clone or create still running
/// is stopped first (its worker then removes the target itself). Then the static address goes back.
pub async fn rollback(deps: &Deps, s: &Subject, p: &Progress) -> Result<(), StepError> {
    let source = s.kind.is_cloned().then_some(s.template.vmid as u64);
    rollback_guest(deps, s.request.id, p.node_or(&s.template.node), s.kind, source, p).await
}

/// [`rollback`] from what a job's checkpoint recorded, for clean-up outside the provisioning job.
/// `source` (the clone's template VMID) lets a clone whose task id was lost be found and stopped.
pub async fn rollback_guest(
    deps: &Deps,
    request_id: i64,
    node: &str,
    kind: MachineKind,
    source: Option<u64>,
    p: &Progress,
) -> Result<(), StepError> {
    remove_guest(deps, request_id, node, kind, source, p).await?;
    if let Some(ip) = addresses::release(&deps.db, request_id).await? {
        tracing::info!(request = request_id, %ip, "static address released");
    }
    Ok(())
}

async fn remove_guest(
    deps: &Deps,
    request_id: i64,
    node: &str,
    kind: MachineKind,
    source: Option<u64>,
    p: &Progress,
) -> Result<(), StepError> {
    let Some(vmid) = p.vmid else { return Ok(()) };
    let ty = kind.guest_type();
    let marker = GuestMarker::for_request(request_id);
    if !p.cloned {
        match p.clone_upid.as_deref().and_then(|u| u.parse::<Upid>().ok()) {
            // However it ends, what is left of the target (if anything) is looked at next; a task PVE no
            // longer knows leaves a locked target that `destroy_guest` names.
            Some(upid) => {
                if let Err(e) = target::stop_task(deps, &upid).await {
                    tracing::warn!(request = request_id, vmid, error = %e.message(), "stopping the task failed");
                }
            }
            // The answer was lost (or never saved): wait for the task, stop it past the deadline.
            None => {
                let making = if kind.is_cloned() { Making::of(ty, source) } else { Making::QemuCreate };
                let found = target::settle(deps, node, making, marker, vmid).await?;
                if found != Target::Ours {
                    let path = if found == Target::Removed { Path::Removed } else { Path::Absent };
                    let call = if kind.is_cloned() { LostCall::Clone } else { LostCall::Create };
                    recovery::note(deps, request_id, "provision.recovered", vmid, Recovery::new(call, path)).await;
                    return Ok(());
                }
            }
        }
    }
    match deps.pve.guest_config(node, ty, vmid).await {
        Ok(c) if marker.is_carried_by(c.description.as_deref(), c.tags.as_deref()) => {}
        Ok(_) | Err(PveError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    for r in destroy_guest(deps, node, ty, vmid).await? {
        recovery::note(deps, request_id, "provision.recovered", vmid, r).await;
    }
    timeline::note(&deps.db, request_id, "provision.rolled_back", json!({"vmid": vmid})).await;
    Ok(())
}

/// Stop (when running), then delete with purge (and, for a VM, its unreferenced disks); a guest that
/// is already gone is fine. The caller has checked that the guest is the one it means. Answers the
/// lost answers it recovered from.
pub async fn destroy_guest(deps: &Deps, node: &str, ty: GuestType, vmid: u64) -> Result<Vec<Recovery>, StepError> {
    let mut recovered = vec![];
    let Some(status) = unlocked_status(deps, node, ty, vmid).await? else { return Ok(recovered) };
    if status.is_running() {
        match deps.pve.guest_power(node, ty, vmid, PowerCommand::Stop).await {
            Ok(upid) => {
                deps.pve.wait_task(&upid, wait_options(deps)).await?;
            }
            Err(PveError::NotRunning(_)) => {}
            Err(e) if e.outcome_unknown() => {
                recovered.push(recovery::power(deps, node, ty, vmid, LostCall::Stop).await?)
            }
            Err(e) => return Err(e.into()),
        }
    }
    match delete(deps, node, ty, vmid).await {
        Ok(upid) => {
            deps.pve.wait_task(&upid, wait_options(deps)).await?;
        }
        Err(PveError::NotFound(_)) => {}
        Err(e) if e.outcome_unknown() => recovered.push(recover_delete(deps, node, ty, vmid).await?),
        Err(e) => return Err(e.into()),
    }
    Ok(recovered)
}

/// `DELETE` with `purge`; a VM also loses the volumes named for it that its config no longer lists
/// (pve-qemu-day2.md §5), so nothing of it is left on the storages.
async fn delete(deps: &Deps, node: &str, ty: GuestType, vmid: u64) -> Result<Upid, PveError> {
    let options = DeleteOptions { purge: true, destroy_unreferenced_disks: ty == GuestType::Qemu };
    deps.pve.guest_delete(node, ty, vmid, options).await
}

/// The guest's status once no lock is on it (a `destroyed` lock ends with the guest gone), or `None`
/// when it is gone.
async fn unlocked_status(deps: &Deps, node: &str, ty: GuestType, vmid: u64) -> Result<Option<GuestStatus>, StepError> {
    let until = Instant::now() + deps.timing.task;
    loop {
        let status = match deps.pve.guest_status(node, ty, vmid).await {
            Ok(s) => s,
            Err(PveError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(lock) = &status.lock else { return Ok(Some(status)) };
        if Instant::now() > until {
            let label = if ty == GuestType::Lxc { "CT" } else { "VM" };
            return Err(StepError::Retry(format!("{label} {vmid} stayed locked ({lock})")));
        }
        tokio::time::sleep(deps.timing.poll).await;
    }
}

/// A delete whose answer was lost: its task is waited for if it runs, and the guest's absence decides;
/// a guest still there and unlocked was not deleted, and is deleted now.
async fn recover_delete(deps: &Deps, node: &str, ty: GuestType, vmid: u64) -> Result<Recovery, StepError> {
    if let Some(upid) = recovery::running_task(deps, node, recovery::destroy_task_type(ty), vmid).await? {
        deps.pve.wait_task(&upid, wait_options(deps)).await?;
    }
    if unlocked_status(deps, node, ty, vmid).await?.is_none() {
        return Ok(Recovery::new(LostCall::Delete, Path::Gone));
    }
    match delete(deps, node, ty, vmid).await {
        Ok(upid) => {
            deps.pve.wait_task(&upid, wait_options(deps)).await?;
        }
        Err(PveError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Recovery::new(LostCall::Delete, Path::Resent))
}
