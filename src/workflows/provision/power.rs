//! Starting the new guest, container or VM, and waiting until it runs.

use std::time::Instant;

use super::recovery::{self, LostCall, Recovery};
use super::steps::wait_options;
use crate::domain::guest::GuestType;
use crate::integrations::pve::PveError;
use crate::integrations::pve::wire::PowerCommand;
use crate::workflows::{Deps, StepError};

/// Starts the guest and waits until it runs. A start whose answer was lost is not simply sent again:
/// the status, then a running `vzstart`/`qmstart` task, show whether PVE took it. A VM's start is
/// checked only inside its task (a missing bridge, a lock: pve-qemu-day2.md §4), so its failures come
/// as a failed task.
pub async fn start(deps: &Deps, node: &str, ty: GuestType, vmid: u64) -> Result<Option<Recovery>, StepError> {
    let mut recovered = None;
    if !deps.pve.guest_status(node, ty, vmid).await?.is_running() {
        match deps.pve.guest_power(node, ty, vmid, PowerCommand::Start).await {
            Ok(upid) => {
                deps.pve.wait_task(&upid, wait_options(deps)).await?;
            }
            // Starting a running CT is an error in PVE; for us it is the goal reached.
            Err(PveError::AlreadyRunning(_)) => {}
            Err(e) if e.outcome_unknown() => {
                recovered = Some(recovery::power(deps, node, ty, vmid, LostCall::Start).await?)
            }
            Err(e) => return Err(e.into()),
        }
    }
    let until = Instant::now() + deps.timing.task;
    while !deps.pve.guest_status(node, ty, vmid).await?.is_running() {
        if Instant::now() > until {
            let label = if ty == GuestType::Lxc { "CT" } else { "VM" };
            return Err(StepError::Retry(format!("{label} {vmid} did not reach running")));
        }
        tokio::time::sleep(deps.timing.poll).await;
    }
    Ok(recovered)
}
