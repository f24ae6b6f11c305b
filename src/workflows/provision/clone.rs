//! The clone step: pick a VMID, clone the template, wait for the clone; and, when the clone's answer
//! was lost (or proxdesk crashed before saving it), find out from PVE what became of it.

use std::time::{Duration, Instant};

use rand::Rng;

use jobs::JobContext;

use super::recovery::{self, LostCall, Path, Recovery};
use super::steps::wait_options;
use super::{Progress, Subject};
use crate::domain::guest_marker::GuestMarker;
use crate::integrations::pve::wire::CloneRequest;
use crate::integrations::pve::{PveError, Upid};
use crate::services::locks;
use crate::workflows::{Deps, StepError};

/// Allocates a VMID and clones the template, one clone per template at a time. A clone whose answer
/// was lost keeps its VMID: the guest found there decides whether the clone is adopted or sent again.
pub async fn clone(deps: &Deps, ctx: &JobContext, s: &Subject, p: &mut Progress) -> Result<(), StepError> {
    let t = &s.template;
    let _one_clone = deps.limits.templates.acquire(&format!("{}/{}", t.node, t.vmid)).await;
    let marker = GuestMarker::for_request(s.request.id);
    let mut lost_answer: Option<String> = None;
    loop {
        if p.clone_upid.is_none()
            && let Some(vmid) = p.vmid
        {
            let found = settle_target(deps, &t.node, Some(t.vmid as u64), marker, vmid).await?;
            let path = match found {
                Target::Ours => Path::Adopted,
                Target::Absent => Path::Absent,
                Target::Foreign => Path::Foreign,
                Target::Removed => Path::Removed,
            };
            recovery::note(deps, s.request.id, "provision.recovered", vmid, Recovery::new(LostCall::Clone, path)).await;
            if found == Target::Ours {
                p.cloned = true;
                return Ok(ctx.checkpoint(p).await?);
            }
            p.vmid = None;
            ctx.checkpoint(p).await?;
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
    let upid = p.clone_upid.clone().expect("the clone was sent");
    let upid: Upid = upid.parse().map_err(|_| StepError::Fatal(format!("stored task id {upid} is not a UPID")))?;
    let outcome = match deps.pve.wait_task(&upid, wait_options(deps)).await {
        Err(PveError::TaskRunning { waited, .. }) => match stop_clone(deps, &upid).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(StepError::Retry(format!("clone task still running after {waited:?}; stopped it"))),
        },
        Err(e @ PveError::TaskFailed { .. }) => Err(e.into()),
        Err(e) => return Err(e.into()),
        Ok(_) => Ok(()),
    };
    if let Err(e) = outcome {
        // PVE removes the target of a failed or stopped clone; the next attempt starts afresh.
        p.vmid = None;
        p.clone_upid = None;
        ctx.checkpoint(p).await?;
        return Err(e);
    }
    p.cloned = true;
    Ok(ctx.checkpoint(p).await?)
}

/// What is at the VMID a clone was sent to, once any clone into it has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The request's container, unlocked: the clone completed.
    Ours,
    /// Nothing: the clone never ran, or failed and PVE removed its target.
    Absent,
    /// Another guest has the VMID.
    Foreign,
    /// The clone outlived the task deadline and was stopped; PVE removed its target.
    Removed,
}

/// Looks at `vmid` on `node` after a clone whose task id is unknown. A target carrying `marker` and
/// locked `create` is still being cloned: its task is found among the node's running `vzclone` tasks
/// of `template` and waited for (stopped past the deadline, which makes PVE remove the target). PVE
/// locks the template (`disk`) for a whole clone, and only that clone's worker unlocks it, so the one
/// running clone of the template is the one making this target. A `create` lock with no clone running
/// (its worker died) is waited for, then reported: only `pct unlock` on the node lifts it.
pub(crate) async fn settle_target(
    deps: &Deps,
    node: &str,
    template: Option<u64>,
    marker: GuestMarker,
    vmid: u64,
) -> Result<Target, StepError> {
    let until = Instant::now() + deps.timing.task;
    let mut stopped = false;
    loop {
        let config = match deps.pve.lxc_config(node, vmid).await {
            Ok(c) => c,
            Err(PveError::NotFound(_)) if stopped => return Ok(Target::Removed),
            Err(PveError::NotFound(_)) => return Ok(Target::Absent),
            Err(e) => return Err(e.into()),
        };
        if !marker.is_carried_by(config.description.as_deref(), config.tags.as_deref()) {
            return Ok(Target::Foreign);
        }
        let Some(lock) = config.lock else { return Ok(Target::Ours) };
        if lock == "create"
            && let Some(template) = template
            && let Some(upid) = recovery::running_task(deps, node, "vzclone", template).await?
        {
            match deps.pve.wait_task(&upid, wait_options(deps)).await {
                Ok(_) | Err(PveError::TaskFailed { .. }) => {}
                Err(PveError::TaskRunning { .. }) => stopped = stop_clone(deps, &upid).await?.is_err(),
                Err(e) => return Err(e.into()),
            }
            continue;
        }
        if Instant::now() >= until {
            let hint = if lock == "create" { "; no clone task runs for it: `pct unlock` it on the node" } else { "" };
            return Err(StepError::Retry(format!("CT {vmid} stayed locked ({lock}){hint}")));
        }
        tokio::time::sleep(deps.timing.poll).await;
    }
}

/// Stops a clone task that outlived its deadline. While it runs, PVE keeps the template locked (`disk`)
/// and the target locked (`create`) and deletes neither; a stopped clone dies in its error path, which
/// removes the target and releases both locks (pve-api.md §4.5, §6.2). Answers how the task ended:
/// `Ok` if it finished just before the stop arrived, `Err` with its exit status once it is gone.
pub(crate) async fn stop_clone(deps: &Deps, upid: &Upid) -> Result<Result<(), String>, StepError> {
    deps.pve.stop_task(upid).await?;
    match deps.pve.wait_task(upid, wait_options(deps)).await {
        Ok(_) => Ok(Ok(())),
        Err(PveError::TaskFailed { exit_status, .. }) => Ok(Err(exit_status)),
        Err(e) => Err(e.into()),
    }
}

/// The lock every proxdesk process takes to pick a VMID and send a clone.
const CLONE_LOCK: &str = "pve-clone";
/// Sending a clone takes three quick calls; a crashed holder blocks the others at most this long.
const CLONE_LOCK_TTL: Duration = Duration::from_secs(30);

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
    /// The template is locked (another clone, a backup, an admin's `pct` command).
    TemplateLocked(String),
    /// The VMID was taken between `nextid` and the clone (by something other than proxdesk).
    VmidTaken,
}

/// Picks a VMID and sends the clone while holding [`CLONE_LOCK`], first in this process and then on
/// the database, so proxdesk processes neither pick the same VMID (`nextid` reserves nothing) nor clone
/// a template another one is cloning (PVE locks the source for the whole clone, and refuses a second
/// one). A locked template is waited for, up to the task deadline, rather than failing the attempt.
/// PVE stays the arbiter: if the lock expired under a slow holder, a clash is refused and retried.
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
            return Err(StepError::Retry(match last_lock {
                Some(lock) => format!("template CT {} on {} stayed locked ({lock}) for {secs} s", t.vmid, t.node),
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
    if let Some(lock) = deps.pve.lxc_status(&t.node, t.vmid as u64).await?.lock {
        return Ok(Sent::TemplateLocked(lock));
    }
    let vmid = deps.pve.next_id().await?;
    // Saved before sending, so a crash or a lost answer finds the container by its marker.
    p.vmid = Some(vmid);
    ctx.checkpoint(p).await?;
    let req = CloneRequest {
        newid: vmid,
        hostname: Some(s.request.hostname.clone()),
        description: Some(super::steps::notes(s)),
        full: Some(t.full_clone),
        storage: t.storage.clone().filter(|_| t.full_clone),
        ..Default::default()
    };
    match deps.pve.lxc_clone(&t.node, t.vmid as u64, &req).await {
        Ok(upid) => Ok(Sent::Clone(upid)),
        Err(e) if e.outcome_unknown() => Ok(Sent::Unknown(StepError::from(e).message().to_owned())),
        Err(PveError::AlreadyExists(_)) => Ok(Sent::VmidTaken),
        Err(PveError::Locked { lock, .. }) => Ok(Sent::TemplateLocked(lock)),
        Err(e) => Err(e.into()),
    }
}
