//! What is at the VMID a clone (or an ISO VM's create) was sent to, when its answer was lost or the
//! process died before saving it: PVE's state decides, once any task making that guest has ended.

use std::time::Instant;

use super::recovery;
use super::steps::wait_options;
use crate::domain::guest::GuestType;
use crate::domain::guest_marker::GuestMarker;
use crate::integrations::pve::{PveError, Upid};
use crate::workflows::{Deps, StepError};

/// What is at the VMID a clone was sent to, once any clone into it has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The request's guest, unlocked: the clone (or create) completed.
    Ours,
    /// Nothing: the clone never ran, or failed and PVE removed its target.
    Absent,
    /// Another guest has the VMID.
    Foreign,
    /// The clone outlived the task deadline and was stopped; PVE removed its target.
    Removed,
}

/// How the guest being made at a VMID shows while its task runs, and how that task is found.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Making {
    /// A container clone of template `source`: target locked `create`, task `vzclone` of the source. PVE
    /// locks the template (`disk`) for the whole clone, so the one running clone of it is this one.
    LxcClone { source: Option<u64> },
    /// A VM clone of template `source`: target locked `clone`, task `qmclone` of the source. Clones of
    /// one template run side by side; the task whose log names the target is this one.
    QemuClone { source: Option<u64> },
    /// A blank VM: locked `create`, task `qmcreate` of the VMID itself.
    QemuCreate,
}

impl Making {
    pub fn of(ty: GuestType, source: Option<u64>) -> Self {
        match ty {
            GuestType::Lxc => Making::LxcClone { source },
            GuestType::Qemu => Making::QemuClone { source },
        }
    }

    fn guest_type(self) -> GuestType {
        match self {
            Making::LxcClone { .. } => GuestType::Lxc,
            Making::QemuClone { .. } | Making::QemuCreate => GuestType::Qemu,
        }
    }

    /// The lock the target carries while it is being made.
    fn lock(self) -> &'static str {
        match self {
            Making::LxcClone { .. } | Making::QemuCreate => "create",
            Making::QemuClone { .. } => "clone",
        }
    }

    /// The running task making `vmid`, if PVE lists one.
    async fn task(self, deps: &Deps, node: &str, vmid: u64) -> Result<Option<Upid>, StepError> {
        match self {
            Making::LxcClone { source: Some(source) } => recovery::running_task(deps, node, "vzclone", source).await,
            Making::QemuClone { source: Some(source) } => qemu_clone_task(deps, node, source, vmid).await,
            Making::QemuCreate => recovery::running_task(deps, node, "qmcreate", vmid).await,
            Making::LxcClone { source: None } | Making::QemuClone { source: None } => Ok(None),
        }
    }
}

/// The running `qmclone` of `source` whose target is `newid`: qemu-server's clone worker logs
/// `creating a clone of VM <source> with ID <newid>` as its first line (API2/Qemu.pm, clone_vm).
async fn qemu_clone_task(deps: &Deps, node: &str, source: u64, newid: u64) -> Result<Option<Upid>, StepError> {
    let wanted = format!("creating a clone of VM {source} with ID {newid}");
    for task in deps.pve.active_tasks(node, "qmclone", source).await? {
        let Ok(upid) = task.upid.parse::<Upid>() else { continue };
        let log = match deps.pve.task_log(&upid, 0, 5).await {
            Ok(log) => log,
            // Ended between the list and the log.
            Err(PveError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        if log.iter().any(|line| line.t.trim() == wanted) {
            return Ok(Some(upid));
        }
    }
    Ok(None)
}

/// Looks at `vmid` on `node` after a clone or create whose task id is unknown. A target still locked
/// by its making has its task found among the node's running tasks and waited for (stopped past the
/// deadline, which makes PVE remove the target). A making lock with no task running (its worker died)
/// is waited for, then reported: only an unlock on the node lifts it.
pub(crate) async fn settle(
    deps: &Deps,
    node: &str,
    making: Making,
    marker: GuestMarker,
    vmid: u64,
) -> Result<Target, StepError> {
    let ty = making.guest_type();
    let until = Instant::now() + deps.timing.task;
    let mut stopped = false;
    loop {
        let config = match deps.pve.guest_config(node, ty, vmid).await {
            Ok(c) => c,
            Err(PveError::NotFound(_)) if stopped => return Ok(Target::Removed),
            Err(PveError::NotFound(_)) => return Ok(Target::Absent),
            Err(e) => return Err(e.into()),
        };
        let making_lock = config.lock.as_deref() == Some(making.lock());
        // A VM being cloned or created has no notes yet: only its lock tells.
        if !making_lock && !marker.is_carried_by(config.description.as_deref(), config.tags.as_deref()) {
            return Ok(Target::Foreign);
        }
        let Some(lock) = config.lock else { return Ok(Target::Ours) };
        if making_lock && let Some(upid) = making.task(deps, node, vmid).await? {
            match deps.pve.wait_task(&upid, wait_options(deps)).await {
                Ok(_) | Err(PveError::TaskFailed { .. }) => {}
                Err(PveError::TaskRunning { .. }) => stopped = stop_task(deps, &upid).await?.is_err(),
                Err(e) => return Err(e.into()),
            }
            continue;
        }
        if Instant::now() >= until {
            let (label, unlock) = match ty {
                GuestType::Lxc => ("CT", "pct unlock"),
                GuestType::Qemu => ("VM", "qm unlock"),
            };
            let hint =
                if making_lock { format!("; no task runs for it: `{unlock}` it on the node") } else { String::new() };
            return Err(StepError::Retry(format!("{label} {vmid} stayed locked ({lock}){hint}")));
        }
        tokio::time::sleep(deps.timing.poll).await;
    }
}

/// Stops a clone or create task that outlived its deadline. While it runs, PVE keeps its target locked
/// and deletes nothing; a stopped worker dies in its error path, which removes the target and releases
/// the locks (pve-api.md §4.5, §6.2). Answers how the task ended: `Ok` if it finished just before the
/// stop arrived, `Err` with its exit status once it is gone.
pub(crate) async fn stop_task(deps: &Deps, upid: &Upid) -> Result<Result<(), String>, StepError> {
    deps.pve.stop_task(upid).await?;
    match deps.pve.wait_task(upid, wait_options(deps)).await {
        Ok(_) => Ok(Ok(())),
        Err(PveError::TaskFailed { exit_status, .. }) => Ok(Err(exit_status)),
        Err(e) => Err(e.into()),
    }
}
