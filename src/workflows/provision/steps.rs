//! The provisioning steps of a container after its clone, against PVE and SSH. Every step first looks
//! at what already exists, and a step whose answer was lost looks at PVE's state before sending
//! anything again.

use std::time::Instant;

use jobs::JobContext;
use serde_json::json;

use super::recovery::{self, LostCall, Path, Recovery};
use super::{Progress, Subject, power, ready};
use crate::domain::guest::GuestType;
use crate::domain::guest_marker::GuestMarker;
use crate::integrations::pve::WaitOptions;
use crate::integrations::pve::wire::{GuestConfig, LxcConfigUpdate, ResizeRequest, first_ipv4};
use crate::integrations::ssh::{self, EXIT_SYSTEM_ACCOUNT, FinishMode, FinishSpec, SshTarget, finish_command};
use crate::secrets::{Secret, random_password};
use crate::workflows::{Deps, StepError, timeline};

type Step = Result<(), StepError>;

/// Task polls start quick and back off to the configured poll interval, not beyond: clones of one
/// template run one after the other, so every moment a finished clone goes unnoticed delays the next.
pub(crate) fn wait_options(deps: &Deps) -> WaitOptions {
    let initial_interval = deps.timing.poll.min(WaitOptions::default().initial_interval);
    WaitOptions { deadline: deps.timing.task, initial_interval, max_interval: deps.timing.poll.max(initial_interval) }
}

pub async fn run(deps: &Deps, ctx: &JobContext, s: &Subject, p: &mut Progress) -> Step {
    let id = s.request.id;
    let db = &deps.db;
    if !p.cloned {
        super::clone::clone(deps, ctx, s, p).await?;
        timeline::note(db, id, "provision.cloned", json!({"vmid": p.vmid, "node": s.template.node})).await;
    }
    let vmid = p.vmid.expect("cloned implies a vmid");
    let node = s.template.node.as_str();
    if !p.configured {
        if let Some(r) = configure(deps, s, vmid).await? {
            recovery::note(deps, id, "provision.recovered", vmid, r).await;
        }
        p.configured = true;
        ctx.checkpoint(p).await?;
    }
    if !p.resized {
        if let Some(r) = resize(deps, s, vmid).await? {
            recovery::note(deps, id, "provision.recovered", vmid, r).await;
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
        if let Some(r) = power::start(deps, node, GuestType::Lxc, vmid).await? {
            recovery::note(deps, id, "provision.recovered", vmid, r).await;
        }
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
    ready::mark_ready(deps, s, p).await
}

/// The container's notes: the request's marker on the first line, the purpose (made inert) below.
pub(crate) fn notes(s: &Subject) -> String {
    GuestMarker::for_request(s.request.id).notes(&s.owner.username, &s.request.purpose)
}

/// Sets resources, hostname, notes and the marker tags. The PUT is synchronous and idempotent; after
/// a lost answer the config shows whether PVE applied it (all keys are written at once).
async fn configure(deps: &Deps, s: &Subject, vmid: u64) -> Result<Option<Recovery>, StepError> {
    let (r, node) = (&s.request, s.template.node.as_str());
    let marker = GuestMarker::for_request(r.id);
    let update = LxcConfigUpdate {
        cores: Some(r.cores as u32),
        memory: Some(r.memory_mib as u64),
        hostname: Some(r.hostname.clone()),
        description: Some(notes(s)),
        tags: Some(marker.tags()),
        net0: Some(match &r.bridge {
            Some(bridge) => with_bridge(&s.template.net0, bridge),
            None => s.template.net0.clone(),
        }),
        ..Default::default()
    };
    match deps.pve.lxc_update_config(node, vmid, &update).await {
        Ok(()) => Ok(None),
        Err(e) if e.outcome_unknown() => {
            let config = deps.pve.lxc_config(node, vmid).await?;
            if configured(&config, s) {
                return Ok(Some(Recovery::new(LostCall::Config, Path::Applied)));
            }
            deps.pve.lxc_update_config(node, vmid, &update).await?;
            Ok(Some(Recovery::new(LostCall::Config, Path::Resent)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether the config step's PUT is in `config`: the request's tag is only ever written by it.
fn configured(config: &GuestConfig, s: &Subject) -> bool {
    let r = &s.request;
    GuestMarker::for_request(r.id).is_carried_by(None, config.tags.as_deref())
        && config.cores == Some(r.cores as u64)
        && config.memory == Some(r.memory_mib as u64)
        && config.hostname.as_deref() == Some(r.hostname.as_str())
}

/// Grows the root disk to the requested size. After a lost answer (and with it the task's id) the
/// resize task is found among the node's running tasks, and the size in the config decides.
async fn resize(deps: &Deps, s: &Subject, vmid: u64) -> Result<Option<Recovery>, StepError> {
    let node = s.template.node.as_str();
    let wanted = s.request.disk_gib as u64;
    if wanted <= disk_gib(deps, node, vmid).await? {
        return Ok(None);
    }
    let req = ResizeRequest { disk: "rootfs".into(), size: format!("{wanted}G") };
    match deps.pve.lxc_resize(node, vmid, &req).await {
        Ok(upid) => {
            deps.pve.wait_task(&upid, wait_options(deps)).await?;
            Ok(None)
        }
        Err(e) if e.outcome_unknown() => {
            if let Some(upid) = recovery::running_task(deps, node, "resize", vmid).await? {
                deps.pve.wait_task(&upid, wait_options(deps)).await?;
            }
            if wanted <= disk_gib(deps, node, vmid).await? {
                return Ok(Some(Recovery::new(LostCall::Resize, Path::Applied)));
            }
            let upid = deps.pve.lxc_resize(node, vmid, &req).await?;
            deps.pve.wait_task(&upid, wait_options(deps)).await?;
            Ok(Some(Recovery::new(LostCall::Resize, Path::Resent)))
        }
        Err(e) => Err(e.into()),
    }
}

async fn disk_gib(deps: &Deps, node: &str, vmid: u64) -> Result<u64, StepError> {
    let config = deps.pve.lxc_config(node, vmid).await?;
    Ok(config.rootfs.as_deref().and_then(rootfs_gib).unwrap_or(0))
}

/// `net0` (a container's `name=eth0,bridge=vmbr0,…` or a VM's `virtio=…,bridge=vmbr0`) on `bridge`:
/// its `bridge=` replaced, or added when it had none.
pub(crate) fn with_bridge(net0: &str, bridge: &str) -> String {
    let mut parts: Vec<String> = net0.split(',').filter(|p| !p.trim().is_empty()).map(str::to_owned).collect();
    match parts.iter_mut().find(|p| p.trim_start().starts_with("bridge=")) {
        Some(part) => *part = format!("bridge={bridge}"),
        None => parts.push(format!("bridge={bridge}")),
    }
    parts.join(",")
}

/// The `size=` of a drive or mount point property string (`local-lvm:vm-101-disk-0,size=8G`), in
/// whole GiB (rounded up).
pub(crate) fn rootfs_gib(rootfs: &str) -> Option<u64> {
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

/// The owner's password, generated once and kept sealed in the checkpoint (saved before it is used, so
/// a resumed step hands out the same one).
pub(crate) async fn password(deps: &Deps, ctx: &JobContext, p: &mut Progress) -> Result<Secret<String>, StepError> {
    let sealed = match &p.password_sealed {
        Some(sealed) => sealed.clone(),
        None => {
            let sealed = deps.key.seal(random_password(16).expose());
            p.password_sealed = Some(sealed.clone());
            ctx.checkpoint(p).await?;
            sealed
        }
    };
    deps.key.open(&sealed).map_err(|e| StepError::Fatal(e.to_string()))
}

/// The owner's login over SSH: `pct exec` on the node, or a shell on the guest itself at its address
/// (containers, and VMs whose image trusts proxdesk's key).
pub(crate) async fn finish(deps: &Deps, ctx: &JobContext, s: &Subject, p: &mut Progress) -> Step {
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
    let password = password(deps, ctx, p).await?;
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
    if out.exit_status == EXIT_SYSTEM_ACCOUNT {
        // Trying again would meet the same account: the machine is rolled back, the request fails.
        return Err(StepError::Fatal(format!(
            "the login {:?} already exists in this template as a system account, so proxdesk did not set its \
             password (exit status {}); an admin finds what it printed in the timeline",
            spec.login_user, out.exit_status
        )));
    }
    if !out.success() {
        // The owner reads this reason; what the shell printed stays in the timeline, for admins.
        return Err(StepError::Retry(format!(
            "finishing the machine over SSH failed (exit status {}); an admin finds what it printed in the timeline",
            out.exit_status
        )));
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
        assert_eq!(super::rootfs_gib("local-lvm:base-9100-disk-0/vm-120-disk-0,iothread=1,size=2G"), Some(2));
    }

    #[test]
    fn the_chosen_bridge_replaces_the_one_in_net0() {
        assert_eq!(super::with_bridge("name=eth0,bridge=vmbr0,ip=dhcp", "vmbr1"), "name=eth0,bridge=vmbr1,ip=dhcp");
        assert_eq!(
            super::with_bridge("virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1", "lab10"),
            "virtio=BC:24:11:00:00:01,bridge=lab10,firewall=1"
        );
        assert_eq!(super::with_bridge("virtio", "vmbr1"), "virtio,bridge=vmbr1");
    }
}
