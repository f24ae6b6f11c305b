//! Recovering from answers PVE lost after acting: pveproxy's 596–599, a connection dropped after the
//! request went out, a reply that outlived the client's timeout (`PveError::outcome_unknown`). The
//! call may or may not have been carried out, so PVE's state decides, never the missing answer; and
//! each recovery is written to the request's timeline with the path it took.

use serde_json::{Value, json};

use super::steps::wait_options;
use crate::domain::guest::GuestType;
use crate::integrations::pve::wire::PowerCommand;
use crate::integrations::pve::{PveError, Upid};
use crate::workflows::{Deps, StepError, timeline};

/// The call whose answer was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LostCall {
    Clone,
    /// An ISO VM's `POST /nodes/{node}/qemu`.
    Create,
    Config,
    Resize,
    Start,
    Stop,
    Delete,
}

/// What PVE's state showed, and so what was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// Clone or create: the guest at the VMID carries the request's marker; it is the request's.
    Adopted,
    /// Clone: nothing at the VMID (never cloned, or the clone failed and PVE removed its target).
    Absent,
    /// Clone: another guest has the VMID; the request's container is cloned elsewhere.
    Foreign,
    /// Clone: the clone outlived the task deadline; it was stopped and PVE removed its target.
    Removed,
    /// PVE had carried the call out.
    Applied,
    /// PVE had not carried the call out; it was sent again.
    Resent,
    /// Delete: the guest is gone.
    Gone,
}

impl LostCall {
    pub fn as_str(self) -> &'static str {
        match self {
            LostCall::Clone => "clone",
            LostCall::Create => "create",
            LostCall::Config => "config",
            LostCall::Resize => "resize",
            LostCall::Start => "start",
            LostCall::Stop => "stop",
            LostCall::Delete => "delete",
        }
    }
}

impl Path {
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Adopted => "adopted",
            Path::Absent => "absent",
            Path::Foreign => "foreign",
            Path::Removed => "removed",
            Path::Applied => "applied",
            Path::Resent => "resent",
            Path::Gone => "gone",
        }
    }
}

/// One recovery: which call's answer was lost and the path taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovery {
    pub call: LostCall,
    pub path: Path,
}

impl Recovery {
    pub fn new(call: LostCall, path: Path) -> Self {
        Self { call, path }
    }

    /// `{"step":"clone","path":"adopted", …extra}` for the timeline.
    pub fn details(self, vmid: u64) -> Value {
        json!({"step": self.call.as_str(), "path": self.path.as_str(), "vmid": vmid})
    }
}

/// Writes `action` (`provision.recovered`, `machine.recovered`) with the recovery to request `id`'s
/// timeline.
pub(crate) async fn note(deps: &Deps, request_id: i64, action: &str, vmid: u64, r: Recovery) {
    tracing::info!(
        request = request_id,
        vmid,
        step = r.call.as_str(),
        path = r.path.as_str(),
        "recovered a lost answer"
    );
    timeline::note(&deps.db, request_id, action, r.details(vmid)).await;
}

/// The running task of type `kind` about guest `vmid` (a clone's source) on `node`: how a task whose
/// UPID went with a lost answer is found again. PVE forks the worker before it answers, so a task the
/// call started is listed once the call was carried out.
pub(crate) async fn running_task(deps: &Deps, node: &str, kind: &str, vmid: u64) -> Result<Option<Upid>, StepError> {
    let tasks = deps.pve.active_tasks(node, kind, vmid).await?;
    Ok(tasks.iter().filter(|t| t.kind == kind && t.id == vmid.to_string()).find_map(|t| t.upid.parse().ok()))
}

/// A start or stop whose answer was lost: its task is waited for if it runs, then the status decides
/// whether PVE had carried it out; if not, it is sent again (`already running` / `not running` then mean
/// the goal is reached).
pub(crate) async fn power(
    deps: &Deps,
    node: &str,
    ty: GuestType,
    vmid: u64,
    call: LostCall,
) -> Result<Recovery, StepError> {
    let (command, want_running) = match call {
        LostCall::Start => (PowerCommand::Start, true),
        LostCall::Stop => (PowerCommand::Stop, false),
        other => return Err(StepError::Fatal(format!("{} is not a power action", other.as_str()))),
    };
    if let Some(upid) = running_task(deps, node, &task_type(ty, command), vmid).await? {
        deps.pve.wait_task(&upid, wait_options(deps)).await?;
    }
    if deps.pve.guest_status(node, ty, vmid).await?.is_running() == want_running {
        return Ok(Recovery::new(call, Path::Applied));
    }
    match deps.pve.guest_power(node, ty, vmid, command).await {
        Ok(upid) => {
            deps.pve.wait_task(&upid, wait_options(deps)).await?;
        }
        Err(PveError::AlreadyRunning(_) | PveError::NotRunning(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Recovery::new(call, Path::Resent))
}

/// PVE's task type of a power command (`vzstart`, `qmstop`…) or of a delete (`vzdestroy`, `qmdestroy`).
pub(crate) fn task_type(ty: GuestType, command: PowerCommand) -> String {
    let prefix = match ty {
        GuestType::Lxc => "vz",
        GuestType::Qemu => "qm",
    };
    format!("{prefix}{}", command.as_str())
}

/// PVE's task type of a delete.
pub(crate) fn destroy_task_type(ty: GuestType) -> &'static str {
    match ty {
        GuestType::Lxc => "vzdestroy",
        GuestType::Qemu => "qmdestroy",
    }
}
