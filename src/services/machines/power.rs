//! Power actions on a machine: start, shut down, power off, reboot, reset.

use sea_orm::DatabaseConnection;
use serde_json::json;

use super::{get, guest_type};
use crate::domain::guest::GuestType;
use crate::integrations::pve;
use crate::integrations::pve::Upid;
use crate::integrations::pve::wire::PowerCommand;
use crate::services::lost_machines;
use crate::services::{Actor, GuestRefusal, ServiceError, audit};

/// Power actions owners may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    Start,
    Shutdown,
    /// A hard stop (PVE `status/stop`), shown as "Power off".
    Stop,
    Reboot,
    /// A hard reset (QEMU `status/reset`); containers have no such call.
    Reset,
}

impl PowerAction {
    pub fn parse(s: &str) -> Option<PowerAction> {
        match s {
            "start" => Some(PowerAction::Start),
            "shutdown" => Some(PowerAction::Shutdown),
            "stop" => Some(PowerAction::Stop),
            "reboot" => Some(PowerAction::Reboot),
            "reset" => Some(PowerAction::Reset),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::Start => "start",
            PowerAction::Shutdown => "shutdown",
            PowerAction::Stop => "stop",
            PowerAction::Reboot => "reboot",
            PowerAction::Reset => "reset",
        }
    }

    pub(crate) fn command(self) -> PowerCommand {
        match self {
            PowerAction::Start => PowerCommand::Start,
            PowerAction::Shutdown => PowerCommand::Shutdown,
            PowerAction::Stop => PowerCommand::Stop,
            PowerAction::Reboot => PowerCommand::Reboot,
            PowerAction::Reset => PowerCommand::Reset,
        }
    }

    /// Whether the action makes sense for a guest that is (or is not) running. QEMU checks a start only
    /// inside its task and takes a shutdown of a stopped VM as done (pve-qemu-day2.md §4), so the state
    /// is read first and both kinds are refused alike. LXC's `vm_stop` dies "CT {vmid} not running"
    /// while QEMU's stop of a stopped VM is a no-op task, and QEMU's reset dies "VM {vmid} not running"
    /// (qemu-server `vm_reset`), so a power off or reset of a stopped guest is refused the same way.
    pub(crate) fn refusal(self, running: bool) -> Option<GuestRefusal> {
        match (self, running) {
            (PowerAction::Start, true) => Some(GuestRefusal::AlreadyRunning),
            (PowerAction::Shutdown | PowerAction::Stop | PowerAction::Reboot | PowerAction::Reset, false) => {
                Some(GuestRefusal::NotRunning)
            }
            _ => None,
        }
    }
}

/// Starts, shuts down, powers off, reboots or resets a machine (owner or admin), once its guest is verified to be the
/// machine's (a machine whose guest is not becomes lost). PVE runs it as a task; this returns once
/// PVE accepted it. A start of a running guest, or a shutdown or reboot of a stopped one, is refused
/// with the same [`GuestRefusal`] for containers and VMs.
pub async fn power(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    actor: &Actor,
    id: i64,
    action: PowerAction,
) -> Result<(), ServiceError> {
    power_task(db, pve, actor, id, action).await.map(|_| ())
}

/// [`power`], answering PVE's task so the caller can wait for its end (bulk runs report it).
pub async fn power_task(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    actor: &Actor,
    id: i64,
    action: PowerAction,
) -> Result<Upid, ServiceError> {
    let m = get(db, actor, id).await?;
    power_machine(db, pve, Some(actor), &m, action).await
}

/// [`power_task`] on a machine already read and allowed; `actor` `None` is proxdesk itself (the stop of
/// an expired lease), audited as the system.
pub async fn power_machine(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    actor: Option<&Actor>,
    m: &entities::machine::Model,
    action: PowerAction,
) -> Result<Upid, ServiceError> {
    let id = m.id;
    if m.deleted_at.is_some() {
        return Err(ServiceError::Conflict("the machine was deleted".into()));
    }
    let (Some(pve), Some(vmid)) = (pve, m.vmid) else {
        return Err(ServiceError::Conflict("no Proxmox VE cluster is configured".into()));
    };
    let ty = guest_type(m)?;
    // PVE has no `status/reset` for containers (pve-api.md: LXC status calls are start, stop, shutdown,
    // reboot, suspend, resume); refuse before asking rather than pass on a 501.
    if action == PowerAction::Reset && ty != GuestType::Qemu {
        return Err(ServiceError::GuestRefused(GuestRefusal::VmOnly));
    }
    lost_machines::verify(db, pve, m, action.as_str()).await?;
    let vmid = vmid as u64;
    let status = pve.guest_status(&m.node, ty, vmid).await.map_err(lost_machines::pve_error)?;
    // QEMU checks the lock only inside the task; a hibernated VM (`suspended`) resumes on start. `skiplock`
    // is root-only (pve-qemu-day2.md §4), so a locked guest is refused rather than forced.
    if let Some(lock) = status.lock.clone().filter(|l| !(l == "suspended" && action == PowerAction::Start)) {
        return Err(ServiceError::GuestRefused(GuestRefusal::Locked(lock)));
    }
    if let Some(why) = action.refusal(status.is_running()) {
        return Err(ServiceError::GuestRefused(why));
    }
    let upid = pve.guest_power(&m.node, ty, vmid, action.command()).await.map_err(lost_machines::pve_error)?;
    let action_name = format!("machine.{}", action.as_str());
    audit::record(db, actor, &action_name, "machine", id, json!({"vmid": vmid, "node": m.node})).await?;
    Ok(upid)
}
