//! A VM installed from an ISO: (placed) → created blank (`POST /nodes/{node}/qemu`: a disk on the
//! chosen storage, the ISO in its CD drive, `net0` on the chosen bridge) → started → ready: running,
//! to be installed through the console. It has no address and no password until its owner installs
//! an OS. A create whose answer was lost is decided by the config at its VMID (our marker) or by the
//! node's running `qmcreate` task.

use std::time::{Duration, Instant};

use jobs::JobContext;
use rand::Rng;
use serde_json::json;

use super::clone::{CLONE_LOCK, CLONE_LOCK_TTL, adopt_or_forget, wait_made};
use super::recovery::{self, LostCall};
use super::target::{self, Making};
use super::{Progress, Subject, power, ready, steps};
use crate::domain::guest::{GuestType, split_list};
use crate::domain::guest_marker::GuestMarker;
use crate::integrations::pve::wire::QemuCreateRequest;
use crate::integrations::pve::{PveError, Upid};
use crate::services::locks;
use crate::workflows::{Deps, StepError, timeline};

type Step = Result<(), StepError>;

/// Runs the steps on `node`, the one [`super::placement::place`] chose.
pub async fn run(deps: &Deps, ctx: &JobContext, s: &Subject, p: &mut Progress, node: &str) -> Step {
    let id = s.request.id;
    if !p.cloned {
        create(deps, ctx, s, p, node).await?;
        let details = json!({"vmid": p.vmid, "node": node, "iso": chosen(s.request.iso.as_ref(), &s.template.isos)});
        timeline::note(&deps.db, id, "provision.created", details).await;
    }
    let vmid = p.vmid.expect("created implies a vmid");
    if !p.started {
        if let Some(r) = power::start(deps, node, GuestType::Qemu, vmid).await? {
            recovery::note(deps, id, "provision.recovered", vmid, r).await;
        }
        p.started = true;
        ctx.checkpoint(p).await?;
        timeline::note(&deps.db, id, "provision.started", json!({"vmid": vmid})).await;
    }
    ready::mark_ready(deps, s, p).await
}

/// The requester's choice, else the entry's first allowed value.
fn chosen(choice: Option<&String>, allowed: &str) -> Option<String> {
    choice.cloned().or_else(|| split_list(allowed).into_iter().next())
}

/// What `POST /nodes/{node}/qemu` gets for the request (pve-qemu-day2.md §1.2–§1.4).
fn create_request(s: &Subject, vmid: u64) -> Result<QemuCreateRequest, StepError> {
    let (r, t) = (&s.request, &s.template);
    let missing = |what: &str| StepError::Fatal(format!("the catalog entry allows no {what} for a new VM"));
    let storage =
        chosen(r.storage.as_ref(), &t.storages).or_else(|| t.storage.clone()).ok_or_else(|| missing("storage"))?;
    let iso = chosen(r.iso.as_ref(), &t.isos).ok_or_else(|| missing("installer ISO"))?;
    let bridge = chosen(r.bridge.as_ref(), &t.bridges).ok_or_else(|| missing("bridge"))?;
    Ok(QemuCreateRequest {
        vmid,
        name: Some(r.hostname.clone()),
        cores: Some(r.cores as u32),
        memory: Some(r.memory_mib as u64),
        ostype: Some(t.ostype.clone()),
        scsihw: Some("virtio-scsi-single".into()),
        // A new volume is `<storage>:<GiB>`, a bare number (§1.3).
        scsi0: Some(format!("{storage}:{},iothread=1,discard=on", r.disk_gib)),
        ide2: Some(format!("{iso},media=cdrom")),
        net0: Some(format!("virtio,bridge={bridge}")),
        boot: Some("order=scsi0;ide2;net0".into()),
        agent: Some("1".into()),
        description: Some(steps::notes(s)),
        tags: Some(GuestMarker::for_request(r.id).tags()),
        ..Default::default()
    })
}

/// Allocates a VMID and creates the VM. The VM exists at once, locked `create`, and its task writes
/// the final config (or removes it again on failure). A create whose answer was lost keeps its VMID:
/// the VM found there decides whether it is adopted or created again.
async fn create(deps: &Deps, ctx: &JobContext, s: &Subject, p: &mut Progress, node: &str) -> Step {
    let marker = GuestMarker::for_request(s.request.id);
    let mut lost_answer: Option<String> = None;
    loop {
        if p.clone_upid.is_none()
            && let Some(vmid) = p.vmid
        {
            let found = target::settle(deps, node, Making::QemuCreate, marker, vmid).await?;
            if adopt_or_forget(deps, ctx, s.request.id, p, vmid, found, LostCall::Create).await? {
                return Ok(());
            }
            if let Some(error) = lost_answer.take() {
                return Err(StepError::Retry(format!("{error}; no VM was created at VMID {vmid}")));
            }
        }
        if p.clone_upid.is_some() {
            break;
        }
        match send_create(deps, ctx, s, p, node).await {
            Ok(Ok(upid)) => {
                p.clone_upid = Some(upid.to_string());
                ctx.checkpoint(p).await?;
                break;
            }
            Ok(Err(error)) => lost_answer = Some(error),
            Err(e) => {
                p.vmid = None;
                ctx.checkpoint(p).await?;
                return Err(e);
            }
        }
    }
    wait_made(deps, ctx, p, "create").await
}

/// Picks a VMID and sends the create under the clone lock (VMIDs are picked one process at a time, as
/// for clones). `Ok(Ok(upid))`: accepted; `Ok(Err(text))`: the answer was lost and PVE may have created
/// the VM; `Err`: refused, nothing was made.
async fn send_create(
    deps: &Deps,
    ctx: &JobContext,
    s: &Subject,
    p: &mut Progress,
    node: &str,
) -> Result<Result<Upid, String>, StepError> {
    let until = Instant::now() + deps.timing.task;
    let mut taken = 0;
    loop {
        let local = deps.limits.clone_send.lock().await;
        if let Some(held) = locks::try_acquire(&deps.db, CLONE_LOCK, CLONE_LOCK_TTL).await? {
            let sent = send_create_locked(deps, ctx, s, p, node).await;
            if let Err(e) = locks::release(&deps.db, held).await {
                tracing::warn!(error = %e, "clone lock not released; it expires");
            }
            match sent? {
                // The VMID was taken between `nextid` and the create (by something other than proxdesk).
                Err(PveError::AlreadyExists(_)) if taken < 4 => {
                    taken += 1;
                    continue;
                }
                Err(PveError::AlreadyExists(_)) => return Err(StepError::Retry("no free VMID after 5 tries".into())),
                Err(e) if e.outcome_unknown() => return Ok(Err(StepError::from(e).message().to_owned())),
                Err(e) => return Err(e.into()),
                Ok(upid) => return Ok(Ok(upid)),
            }
        }
        drop(local);
        if Instant::now() >= until {
            let secs = deps.timing.task.as_secs();
            return Err(StepError::Retry(format!("another proxdesk process held the clone lock for {secs} s")));
        }
        let pause = Duration::from_millis(rand::rng().random_range(5..30)).min(deps.timing.poll);
        tokio::time::sleep(pause).await;
    }
}

async fn send_create_locked(
    deps: &Deps,
    ctx: &JobContext,
    s: &Subject,
    p: &mut Progress,
    node: &str,
) -> Result<Result<Upid, PveError>, StepError> {
    let vmid = deps.pve.next_id().await?;
    let req = create_request(s, vmid)?;
    // Saved before sending, so a crash or a lost answer finds the VM by its VMID and marker.
    p.vmid = Some(vmid);
    ctx.checkpoint(p).await?;
    Ok(deps.pve.qemu_create(node, &req).await)
}
