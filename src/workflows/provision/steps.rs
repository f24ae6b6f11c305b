//! The provisioning steps against PVE and SSH. Every step first looks at what already exists.

use std::time::{Duration, Instant};

use rand::Rng;

use jobs::JobContext;
use sea_orm::{ActiveValue::Set, EntityTrait, sea_query::OnConflict};
use serde_json::json;

use entities::machine;

use super::{Progress, Subject};
use crate::domain::request_status::RequestEvent;
use crate::integrations::pve::wire::{CloneRequest, LxcConfigUpdate, ResizeRequest, first_ipv4};
use crate::integrations::pve::{PveError, Upid, WaitOptions};
use crate::integrations::ssh::{self, FinishMode, FinishSpec, SshTarget, finish_command};
use crate::secrets::random_password;
use crate::services::{locks, requests};
use crate::workflows::{Deps, StepError, timeline};

type Step = Result<(), StepError>;

/// The text in every container's description that marks it as this request's.
pub fn marker(request_id: i64) -> String {
    format!("(proxdesk request #{request_id})")
}

/// Task polls start quick and back off to the configured poll interval, not beyond: clones of one
/// template run one after the other, so every moment a finished clone goes unnoticed delays the next.
fn wait_options(deps: &Deps) -> WaitOptions {
    let initial_interval = deps.timing.poll.min(WaitOptions::default().initial_interval);
    WaitOptions { deadline: deps.timing.task, initial_interval, max_interval: deps.timing.poll.max(initial_interval) }
}

pub async fn run(deps: &Deps, ctx: &JobContext, s: &Subject, p: &mut Progress) -> Step {
    let id = s.request.id;
    let db = &deps.db;
    if !p.cloned {
        clone(deps, ctx, s, p).await?;
        timeline::note(db, id, "provision.cloned", json!({"vmid": p.vmid, "node": s.template.node})).await;
    }
    let vmid = p.vmid.expect("cloned implies a vmid");
    let node = s.template.node.as_str();
    if !p.configured {
        let r = &s.request;
        let update = LxcConfigUpdate {
            cores: Some(r.cores as u32),
            memory: Some(r.memory_mib as u64),
            hostname: Some(r.hostname.clone()),
            description: Some(description(s)),
            tags: Some("proxdesk".into()),
            net0: Some(s.template.net0.clone()),
            ..Default::default()
        };
        deps.pve.lxc_update_config(node, vmid, &update).await?;
        p.configured = true;
        ctx.checkpoint(p).await?;
    }
    if !p.resized {
        let config = deps.pve.lxc_config(node, vmid).await?;
        let current = config.rootfs.as_deref().and_then(rootfs_gib).unwrap_or(0);
        if (s.request.disk_gib as u64) > current {
            let req = ResizeRequest { disk: "rootfs".into(), size: format!("{}G", s.request.disk_gib) };
            let upid = deps.pve.lxc_resize(node, vmid, &req).await?;
            deps.pve.wait_task(&upid, wait_options(deps)).await?;
        }
        p.resized = true;
        ctx.checkpoint(p).await?;
        timeline::note(
            db,
            id,
            "provision.configured",
            json!({"cores": s.request.cores, "memory_mib": s.request.memory_mib, "disk_gib": s.request.disk_gib}),
        )
        .await;
    }
    if !p.started {
        start(deps, node, vmid).await?;
        p.started = true;
        ctx.checkpoint(p).await?;
        timeline::note(db, id, "provision.started", json!({"vmid": vmid})).await;
    }
    if p.ipv4.is_none() {
        p.ipv4 = Some(discover_ipv4(deps, node, vmid).await?);
        ctx.checkpoint(p).await?;
        timeline::note(db, id, "provision.address", json!({"ipv4": p.ipv4})).await;
    }
    if !p.finished {
        finish(deps, ctx, s, p).await?;
        p.finished = true;
        ctx.checkpoint(p).await?;
    }
    mark_ready(deps, s, p).await
}

fn description(s: &Subject) -> String {
    format!("Requested by {} {}\n{}", s.owner.username, marker(s.request.id), s.request.purpose)
}

/// Allocates a VMID and clones the template, one clone per template at a time.
async fn clone(deps: &Deps, ctx: &JobContext, s: &Subject, p: &mut Progress) -> Step {
    let t = &s.template;
    let _one_clone = deps.limits.templates.acquire(&format!("{}/{}", t.node, t.vmid)).await;
    if p.clone_upid.is_none()
        && let Some(vmid) = p.vmid
    {
        // A crash between sending the clone and saving its task: is that container ours?
        match deps.pve.lxc_config(&t.node, vmid).await {
            Ok(config) if config.description.as_deref().is_some_and(|d| d.contains(&marker(s.request.id))) => {
                wait_unlocked(deps, &t.node, vmid).await?;
                p.cloned = true;
                return Ok(ctx.checkpoint(p).await?);
            }
            Ok(_) => p.vmid = None,
            Err(PveError::NotFound(_)) => p.vmid = None,
            Err(e) => return Err(e.into()),
        }
    }
    if p.clone_upid.is_none() {
        match send_clone(deps, ctx, s, p).await {
            Ok(upid) => {
                p.clone_upid = Some(upid.to_string());
                ctx.checkpoint(p).await?;
            }
            Err(e) => {
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

/// Stops a clone task that outlived its deadline. While it runs, PVE keeps the template locked (`disk`)
/// and the target locked (`create`) and deletes neither; a stopped clone dies in its error path, which
/// removes the target and releases both locks (pve-api.md §4.5, §6.2). Answers how the task ended:
/// `Ok` if it finished just before the stop arrived, `Err` with its exit status once it is gone.
async fn stop_clone(deps: &Deps, upid: &Upid) -> Result<Result<(), String>, StepError> {
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

/// What one try at sending the clone found.
enum Sent {
    Clone(Upid),
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
async fn send_clone(deps: &Deps, ctx: &JobContext, s: &Subject, p: &mut Progress) -> Result<Upid, StepError> {
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
                Sent::Clone(upid) => return Ok(upid),
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
    // Saved before sending, so a crash in between finds the container by its marker.
    p.vmid = Some(vmid);
    ctx.checkpoint(p).await?;
    let req = CloneRequest {
        newid: vmid,
        hostname: Some(s.request.hostname.clone()),
        description: Some(description(s)),
        full: Some(t.full_clone),
        storage: t.storage.clone().filter(|_| t.full_clone),
        ..Default::default()
    };
    match deps.pve.lxc_clone(&t.node, t.vmid as u64, &req).await {
        Ok(upid) => Ok(Sent::Clone(upid)),
        Err(PveError::AlreadyExists(_)) => Ok(Sent::VmidTaken),
        Err(PveError::Locked { lock, .. }) => Ok(Sent::TemplateLocked(lock)),
        Err(e) => Err(e.into()),
    }
}

async fn wait_unlocked(deps: &Deps, node: &str, vmid: u64) -> Step {
    let until = Instant::now() + deps.timing.task;
    loop {
        let Some(lock) = deps.pve.lxc_status(node, vmid).await?.lock else { return Ok(()) };
        if Instant::now() > until {
            return Err(StepError::Retry(format!("CT {vmid} stayed locked ({lock})")));
        }
        tokio::time::sleep(deps.timing.poll).await;
    }
}

/// `16G`-style size of a `rootfs` property string, in GiB.
fn rootfs_gib(rootfs: &str) -> Option<u64> {
    let size = rootfs.split(',').find_map(|p| p.strip_prefix("size="))?;
    let (num, unit) = size.split_at(size.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(size.len()));
    let n: f64 = num.parse().ok()?;
    let gib = match unit {
        "T" => n * 1024.0,
        "G" | "" => n,
        "M" => n / 1024.0,
        "K" => n / (1024.0 * 1024.0),
        _ => return None,
    };
    Some(gib.ceil() as u64)
}

async fn start(deps: &Deps, node: &str, vmid: u64) -> Step {
    if !deps.pve.lxc_status(node, vmid).await?.is_running() {
        match deps.pve.lxc_start(node, vmid).await {
            Ok(upid) => {
                deps.pve.wait_task(&upid, wait_options(deps)).await?;
            }
            // Starting a running CT is an error in PVE; for us it is the goal reached.
            Err(PveError::AlreadyRunning(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let until = Instant::now() + deps.timing.task;
    while !deps.pve.lxc_status(node, vmid).await?.is_running() {
        if Instant::now() > until {
            return Err(StepError::Retry(format!("CT {vmid} did not reach running")));
        }
        tokio::time::sleep(deps.timing.poll).await;
    }
    Ok(())
}

async fn discover_ipv4(deps: &Deps, node: &str, vmid: u64) -> Result<String, StepError> {
    let until = Instant::now() + deps.timing.ip;
    loop {
        if let Some(ifaces) = deps.pve.lxc_interfaces(node, vmid).await?
            && let Some(ip) = first_ipv4(&ifaces)
        {
            return Ok(ip.to_string());
        }
        if Instant::now() > until {
            return Err(StepError::Retry(format!(
                "CT {vmid} had no IPv4 address after {} s",
                deps.timing.ip.as_secs()
            )));
        }
        tokio::time::sleep(deps.timing.poll).await;
    }
}

/// The owner's login over SSH, with the password generated once and kept sealed in the checkpoint.
async fn finish(deps: &Deps, ctx: &JobContext, s: &Subject, p: &mut Progress) -> Step {
    let mode = match s.template.finish_mode.as_str() {
        "none" => return Ok(()),
        "guest" => FinishMode::Guest,
        _ => FinishMode::ViaNode,
    };
    let Some(ssh_config) = &deps.ssh else {
        return Err(StepError::Fatal(
            "this template is finished over SSH, but PROXDESK_SSH_KEY_FILE is not set".into(),
        ));
    };
    let sealed = match &p.password_sealed {
        Some(sealed) => sealed.clone(),
        None => {
            let sealed = deps.key.seal(random_password(16).expose());
            p.password_sealed = Some(sealed.clone());
            ctx.checkpoint(p).await?;
            sealed
        }
    };
    let password = deps.key.open(&sealed).map_err(|e| StepError::Fatal(e.to_string()))?;
    let vmid = p.vmid.expect("cloned");
    let target = match mode {
        FinishMode::ViaNode => ssh_config.target_for_node(&s.template.node),
        FinishMode::Guest => SshTarget { host: p.ipv4.clone().unwrap_or_default(), port: 22 },
    };
    let spec = FinishSpec {
        vmid: vmid as i64,
        login_user: s.owner.username.clone(),
        hostname: s.request.hostname.clone(),
        ssh_public_key: s.request.ssh_public_key.clone(),
    };
    let command = finish_command(mode, "pct", &spec);
    let stdin = format!("{}\n", password.expose());
    let out = ssh::run(ssh_config, &target, &command, Some(stdin.as_bytes())).await?;
    let stderr: String = out.stderr.chars().take(2000).collect();
    let details = json!({"target": target.to_string(), "exit_status": out.exit_status, "stderr": stderr});
    timeline::note(&deps.db, s.request.id, "provision.finished", details).await;
    if !out.success() {
        return Err(StepError::Retry(format!("finishing over SSH exited with {}: {}", out.exit_status, stderr.trim())));
    }
    Ok(())
}

/// Records the machine with its credentials and marks the request ready, in one transaction.
async fn mark_ready(deps: &Deps, s: &Subject, p: &Progress) -> Step {
    let finished = s.template.finish_mode != "none";
    let txn = crate::db::begin_write(&deps.db).await?;
    let row = machine::ActiveModel {
        request_id: Set(s.request.id),
        user_id: Set(s.request.user_id),
        node: Set(s.template.node.clone()),
        vmid: Set(p.vmid.map(|v| v as i64)),
        hostname: Set(s.request.hostname.clone()),
        ipv4: Set(p.ipv4.clone()),
        login_user: Set(finished.then(|| s.owner.username.clone())),
        password_sealed: Set(if finished { p.password_sealed.clone() } else { None }),
        created_at: Set(chrono::Utc::now()),
        deleted_at: Set(None),
        ..Default::default()
    };
    let update =
        [machine::Column::Vmid, machine::Column::Ipv4, machine::Column::LoginUser, machine::Column::PasswordSealed];
    machine::Entity::insert(row)
        .on_conflict(OnConflict::column(machine::Column::RequestId).update_columns(update).to_owned())
        .exec(&txn)
        .await?;
    let details = json!({"vmid": p.vmid, "ipv4": p.ipv4});
    requests::transition_in(&txn, None, s.request.id, RequestEvent::ProvisioningSucceeded, vec![], details).await?;
    txn.commit().await?;
    Ok(())
}

/// Stops and destroys the container if it exists and is this request's; a clone still running is
/// stopped first (its worker then removes the target itself).
pub async fn rollback(deps: &Deps, s: &Subject, p: &Progress) -> Step {
    rollback_container(deps, s.request.id, &s.template.node, p).await
}

/// [`rollback`] from what a job's checkpoint recorded, for clean-up outside the provisioning job.
pub async fn rollback_container(deps: &Deps, request_id: i64, node: &str, p: &Progress) -> Step {
    let Some(vmid) = p.vmid else { return Ok(()) };
    if !p.cloned
        && let Some(upid) = p.clone_upid.as_deref().and_then(|u| u.parse::<Upid>().ok())
    {
        // However it ends, what is left of the target (if anything) is looked at next; a task PVE no
        // longer knows leaves a locked target that `destroy_container` names.
        if let Err(e) = stop_clone(deps, &upid).await {
            tracing::warn!(request = request_id, vmid, error = %e.message(), "stopping the clone task failed");
        }
    }
    match deps.pve.lxc_config(node, vmid).await {
        Ok(c) if c.description.as_deref().is_some_and(|d| d.contains(&marker(request_id))) => {}
        Ok(_) | Err(PveError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    destroy_container(deps, node, vmid).await?;
    timeline::note(&deps.db, request_id, "provision.rolled_back", json!({"vmid": vmid})).await;
    Ok(())
}

/// Stop (when running), then delete with purge; a container that is already gone is fine.
pub async fn destroy_container(deps: &Deps, node: &str, vmid: u64) -> Step {
    let status = match deps.pve.lxc_status(node, vmid).await {
        Ok(s) => s,
        Err(PveError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if status.lock.is_some() {
        wait_unlocked(deps, node, vmid).await?;
    }
    if status.is_running() {
        let upid = deps.pve.lxc_stop(node, vmid).await?;
        deps.pve.wait_task(&upid, wait_options(deps)).await?;
    }
    match deps.pve.lxc_delete(node, vmid, true).await {
        Ok(upid) => {
            deps.pve.wait_task(&upid, wait_options(deps)).await?;
        }
        Err(PveError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rootfs_sizes_parse_to_whole_gib() {
        assert_eq!(super::rootfs_gib("local-lvm:vm-101-disk-0,size=8G"), Some(8));
        assert_eq!(super::rootfs_gib("local:101/vm-101-disk-0.raw,size=512M"), Some(1));
        assert_eq!(super::rootfs_gib("local-lvm:vm-1,size=1T"), Some(1024));
        assert_eq!(super::rootfs_gib("local-lvm:vm-1"), None);
    }
}
