//! The clone step, for containers and cloud-init VMs alike: pick a VMID, clone the template, wait for
//! the clone; and, when the clone's answer was lost (or proxdesk crashed before saving it), find out
//! from PVE what became of it.

use std::time::{Duration, Instant};

use rand::Rng;

use jobs::JobContext;

use super::recovery::{self, LostCall, Path, Recovery};
use super::steps::wait_options;
use super::target::{self, Making, Target};
use super::{Progress, Subject};
use crate::domain::guest::GuestType;
use crate::domain::guest_marker::GuestMarker;
use crate::integrations::pve::wire::{CloneRequest, QemuCloneRequest};
use crate::integrations::pve::{PveError, Upid};
use crate::services::locks;
use crate::workflows::{Deps, StepError};

/// Allocates a VMID and clones the template. Containers are cloned one per template at a time (PVE
/// locks the source for the whole clone); VM clones of one template run side by side (a stopped source
/// is only share-locked). A clone whose answer was lost keeps its VMID: the guest found there decides
/// whether the clone is adopted or sent again.
pub async fn clone(deps: &Deps, ctx: &JobContext, s: &Subject, p: &mut Progress) -> Result<(), StepError> {
    let t = &s.template;
    let ty = s.kind.guest_type();
    let _one_clone = match ty {
        GuestType::Lxc => Some(deps.limits.templates.acquire(&format!("{}/{}", t.node, t.vmid)).await),
        GuestType::Qemu => None,
    };
    let marker = GuestMarker::for_request(s.request.id);
    let mut lost_answer: Option<String> = None;
    loop {
        if p.clone_upid.is_none()
            && let Some(vmid) = p.vmid
        {
            let found = target::settle(deps, &t.node, Making::of(ty, Some(t.vmid as u64)), marker, vmid).await?;
            if adopt_or_forget(deps, ctx, s.request.id, p, vmid, found, LostCall::Clone).await? {
                return Ok(());
            }
            // One clone per attempt: the next attempt clones afresh.
            if let Some(error) = lost_answer.take() {
                return Err(StepError::Retry(format!("{error}; no clone was made at VMID {vmid}")));
            }
        }
        if p.clone_upid.is_some() {
            break;
        }
        match send_clone(deps, ctx, s, p).await {
            Ok(Sending::Accepted(upid)) => {
                p.clone_upid = Some(upid.to_string());
                ctx.checkpoint(p).await?;
                break;
            }
            // The VMID stays in the checkpoint; the lookup above decides.
            Ok(Sending::Unknown(error)) => lost_answer = Some(error),
            Err(e) => {
                // PVE refused the clone: nothing was made at the VMID.
                p.vmid = None;
                ctx.checkpoint(p).await?;
                return Err(e);
            }
        }
    }
    wait_made(deps, ctx, p, "clone").await
}

/// After a lost answer: records what the VMID held, and either adopts the guest (`true`: the step is
/// done) or forgets the VMID so the step is taken afresh.
pub(crate) async fn adopt_or_forget(
    deps: &Deps,
    ctx: &JobContext,
    request_id: i64,
    p: &mut Progress,
    vmid: u64,
    found: Target,
    call: LostCall,
) -> Result<bool, StepError> {
    let path = match found {
        Target::Ours => Path::Adopted,
        Target::Absent => Path::Absent,
        Target::Foreign => Path::Foreign,
        Target::Removed => Path::Removed,
    };
    recovery::note(deps, request_id, "provision.recovered", vmid, Recovery::new(call, path)).await;
    if found == Target::Ours {
        p.cloned = true;
        ctx.checkpoint(p).await?;
        return Ok(true);
    }
    p.vmid = None;
    ctx.checkpoint(p).await?;
    Ok(false)
}

/// Waits for the clone or create task in the checkpoint. A task past the deadline is stopped (PVE then
/// removes its target); a failed one left nothing. Either way the next attempt starts afresh.
pub(crate) async fn wait_made(deps: &Deps, ctx: &JobContext, p: &mut Progress, what: &str) -> Result<(), StepError> {
    let upid = p.clone_upid.clone().expect("the task was sent");
    let upid: Upid = upid.parse().map_err(|_| StepError::Fatal(format!("stored task id {upid} is not a UPID")))?;
    let outcome = match deps.pve.wait_task(&upid, wait_options(deps)).await {
        Err(PveError::TaskRunning { waited, .. }) => match target::stop_task(deps, &upid).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(StepError::Retry(format!("{what} task still running after {waited:?}; stopped it"))),
        },
        Err(e @ PveError::TaskFailed { .. }) => Err(e.into()),
        Err(e) => return Err(e.into()),
        Ok(_) => Ok(()),
    };
    if let Err(e) = outcome {
        // PVE removes the target of a failed or stopped clone or create; the next attempt starts afresh.
        p.vmid = None;
        p.clone_upid = None;
        ctx.checkpoint(p).await?;
        return Err(e);
    }
    p.cloned = true;
    Ok(ctx.checkpoint(p).await?)
}

/// The lock every proxdesk process takes to pick a VMID and send a clone or create.
pub(crate) const CLONE_LOCK: &str = "pve-clone";
/// Sending a clone takes three quick calls; a crashed holder blocks the others at most this long.
pub(crate) const CLONE_LOCK_TTL: Duration = Duration::from_secs(30);

/// How sending the clone ended.
enum Sending {
    Accepted(Upid),
    /// The answer was lost: PVE may have started the clone (the error's text).
    Unknown(String),
}

/// What one try at sending the clone found.
enum Sent {
    Clone(Upid),
    /// The answer was lost: PVE may have started the clone (the error's text).
    Unknown(String),
    /// The template is locked (another container clone, a backup, an admin's command).
    TemplateLocked(String),
    /// The VMID was taken between `nextid` and the clone (by something other than proxdesk).
    VmidTaken,
}

/// Picks a VMID and sends the clone while holding [`CLONE_LOCK`], first in this process and then on
/// the database, so proxdesk processes never pick the same VMID (`nextid` reserves nothing) nor clone
/// a container template another one is cloning (PVE locks the source for the whole clone, and refuses
/// a second one). A locked template is waited for, up to the task deadline, rather than failing the
/// attempt. PVE stays the arbiter: if the lock expired under a slow holder, a clash is refused and retried.
async fn send_clone(deps: &Deps, ctx: &JobContext, s: &Subject, p: &mut Progress) -> Result<Sending, StepError> {
    let t = &s.template;
    let until = Instant::now() + deps.timing.task;
    let mut last_lock = None;
    let mut taken = 0;
    loop {
        let local = deps.limits.clone_send.lock().await;
        if let Some(held) = locks::try_acquire(&deps.db, CLONE_LOCK, CLONE_LOCK_TTL).await? {
            let sent = send_clone_locked(deps, ctx, s, p).await;
            if let Err(e) = locks::release(&deps.db, held).await {
                tracing::warn!(error = %e, "clone lock not released; it expires");
            }
            match sent? {
                Sent::Clone(upid) => return Ok(Sending::Accepted(upid)),
                Sent::Unknown(error) => return Ok(Sending::Unknown(error)),
                Sent::TemplateLocked(lock) => last_lock = Some(lock),
                Sent::VmidTaken if taken < 4 => {
                    taken += 1;
                    continue;
                }
                Sent::VmidTaken => return Err(StepError::Retry("no free VMID after 5 tries".into())),
            }
        }
        drop(local);
        if Instant::now() >= until {
            let secs = deps.timing.task.as_secs();
            let label = if s.kind.guest_type() == GuestType::Lxc { "CT" } else { "VM" };
            return Err(StepError::Retry(match last_lock {
                Some(lock) => format!("template {label} {} on {} stayed locked ({lock}) for {secs} s", t.vmid, t.node),
                None => format!("another proxdesk process held the clone lock for {secs} s"),
            }));
        }
        let pause = if last_lock.is_some() {
            deps.timing.poll
        } else {
            // Another process is sending its clone: a few milliseconds.
            Duration::from_millis(rand::rng().random_range(5..30)).min(deps.timing.poll)
        };
        tokio::time::sleep(pause).await;
    }
}

async fn send_clone_locked(deps: &Deps, ctx: &JobContext, s: &Subject, p: &mut Progress) -> Result<Sent, StepError> {
    let t = &s.template;
    let ty = s.kind.guest_type();
    if let Some(lock) = deps.pve.guest_status(&t.node, ty, t.vmid as u64).await?.lock {
        return Ok(Sent::TemplateLocked(lock));
    }
    let vmid = deps.pve.next_id().await?;
    // Saved before sending, so a crash or a lost answer finds the guest by its VMID and marker.
    p.vmid = Some(vmid);
    ctx.checkpoint(p).await?;
    // The requester's storage, else the entry's; only full clones may name one.
    let storage = s.request.storage.clone().or_else(|| t.storage.clone()).filter(|_| t.full_clone);
    let description = Some(super::steps::notes(s));
    let sent = match ty {
        GuestType::Lxc => {
            let req = CloneRequest {
                newid: vmid,
                hostname: Some(s.request.hostname.clone()),
                description,
                full: Some(t.full_clone),
                storage,
                ..Default::default()
            };
            deps.pve.lxc_clone(&t.node, t.vmid as u64, &req).await
        }
        GuestType::Qemu => {
            let req = QemuCloneRequest {
                newid: vmid,
                name: Some(s.request.hostname.clone()),
                description,
                full: Some(t.full_clone),
                storage,
                ..Default::default()
            };
            deps.pve.qemu_clone(&t.node, t.vmid as u64, &req).await
        }
    };
    match sent {
        Ok(upid) => Ok(Sent::Clone(upid)),
        Err(e) if e.outcome_unknown() => Ok(Sent::Unknown(StepError::from(e).message().to_owned())),
        Err(PveError::AlreadyExists(_)) => Ok(Sent::VmidTaken),
        Err(PveError::Locked { lock, .. }) => Ok(Sent::TemplateLocked(lock)),
        Err(e) => Err(e.into()),
    }
}
