//! A cloned VM's configuration: resources, cloud-init (the owner's login, password and key, the
//! address), the chosen bridge and the marker tags in one synchronous PUT; then its boot disk grown to
//! the requested size.

use super::Subject;
use super::qemu::Addressing;
use super::recovery::{self, LostCall, Path, Recovery};
use super::steps::{rootfs_gib, wait_options, with_bridge};
use crate::domain::guest::GuestType;
use crate::domain::guest_marker::GuestMarker;
use crate::integrations::pve::Upid;
use crate::integrations::pve::wire::{GuestConfig, QemuConfigUpdate, ResizeRequest, encode_sshkeys};
use crate::secrets::Secret;
use crate::workflows::{Deps, StepError};

/// Sets cores, memory, cloud-init's user, password, key and `ipconfig0`, `net0` on the chosen bridge
/// and the marker tags. The PUT is synchronous and writes every key at once (cloud-init keys are never
/// left pending, pve-qemu-day2.md §2.6); after a lost answer the config shows whether PVE applied it.
pub async fn configure(
    deps: &Deps,
    s: &Subject,
    vmid: u64,
    password: &Secret<String>,
    addressing: &Addressing,
) -> Result<Option<Recovery>, StepError> {
    let (r, node) = (&s.request, s.template.node.as_str());
    let current = deps.pve.guest_config(node, GuestType::Qemu, vmid).await?;
    // The clone's NIC keeps its model and its new MAC; only the bridge is the requester's.
    let net0 = r.bridge.as_deref().map(|bridge| with_bridge(current.net0.as_deref().unwrap_or("virtio"), bridge));
    let update = QemuConfigUpdate {
        cores: Some(r.cores as u32),
        memory: Some(r.memory_mib as u64),
        ciuser: Some(s.owner.username.clone()),
        cipassword: Some(password.expose().clone()),
        sshkeys: r.ssh_public_key.as_deref().map(|key| encode_sshkeys(&[key])),
        ipconfig0: Some(addressing.ipconfig0()),
        tags: Some(GuestMarker::for_request(r.id).tags()),
        net0,
        ..Default::default()
    };
    match deps.pve.qemu_update_config(node, vmid, &update).await {
        Ok(()) => Ok(None),
        Err(e) if e.outcome_unknown() => {
            let config = deps.pve.guest_config(node, GuestType::Qemu, vmid).await?;
            if configured(&config, s, addressing) {
                return Ok(Some(Recovery::new(LostCall::Config, Path::Applied)));
            }
            deps.pve.qemu_update_config(node, vmid, &update).await?;
            Ok(Some(Recovery::new(LostCall::Config, Path::Resent)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether the configure PUT is in `config`: the request's tag is only ever written by it, with the rest.
fn configured(config: &GuestConfig, s: &Subject, addressing: &Addressing) -> bool {
    let r = &s.request;
    let text = |key: &str| config.other.get(key).and_then(|v| v.as_str());
    GuestMarker::for_request(r.id).is_carried_by(None, config.tags.as_deref())
        && config.cores == Some(r.cores as u64)
        && config.memory == Some(r.memory_mib as u64)
        && text("ciuser") == Some(s.owner.username.as_str())
        && text("ipconfig0") == Some(addressing.ipconfig0().as_str())
}

/// Grows the boot disk to `wanted_gib` (absolute size) when it is smaller. Every check of a VM resize
/// runs inside its task (pve-qemu-day2.md §3.1); PVE 7 answers `null` and resizes at once. After a lost
/// answer the resize task is found among the node's running tasks, and the size in the config decides.
pub async fn resize(deps: &Deps, node: &str, vmid: u64, wanted_gib: u64) -> Result<Option<Recovery>, StepError> {
    let (disk, size) = boot_disk(deps, node, vmid).await?;
    if wanted_gib <= size {
        return Ok(None);
    }
    let req = ResizeRequest { disk: disk.clone(), size: format!("{wanted_gib}G") };
    match deps.pve.qemu_resize(node, vmid, &req).await {
        Ok(upid) => {
            wait(deps, upid).await?;
            Ok(None)
        }
        Err(e) if e.outcome_unknown() => {
            if let Some(upid) = recovery::running_task(deps, node, "resize", vmid).await? {
                deps.pve.wait_task(&upid, wait_options(deps)).await?;
            }
            if wanted_gib <= boot_disk(deps, node, vmid).await?.1 {
                return Ok(Some(Recovery::new(LostCall::Resize, Path::Applied)));
            }
            wait(deps, deps.pve.qemu_resize(node, vmid, &req).await?).await?;
            Ok(Some(Recovery::new(LostCall::Resize, Path::Resent)))
        }
        Err(e) => Err(e.into()),
    }
}

async fn wait(deps: &Deps, upid: Option<Upid>) -> Result<(), StepError> {
    if let Some(upid) = upid {
        deps.pve.wait_task(&upid, wait_options(deps)).await?;
    }
    Ok(())
}

/// The VM's boot disk and its size in GiB.
async fn boot_disk(deps: &Deps, node: &str, vmid: u64) -> Result<(String, u64), StepError> {
    let config = deps.pve.guest_config(node, GuestType::Qemu, vmid).await?;
    let key = boot_disk_key(&config).ok_or_else(|| {
        StepError::Fatal(format!("VM {vmid} has no disk to boot from (no `boot` order disk, no scsi0)"))
    })?;
    let size = config.other.get(&key).and_then(|v| v.as_str()).and_then(rootfs_gib).unwrap_or(0);
    Ok((key, size))
}

/// Disk keys in the order PVE looks for a default boot disk (pve-qemu-day2.md §1.5).
fn disk_keys() -> impl Iterator<Item = String> {
    let bus = |name: &'static str, n: u32| (0..n).map(move |i| format!("{name}{i}"));
    bus("ide", 4).chain(bus("scsi", 31)).chain(bus("virtio", 16)).chain(bus("sata", 6))
}

fn is_disk_key(key: &str) -> bool {
    ["ide", "scsi", "virtio", "sata"]
        .iter()
        .any(|bus| key.strip_prefix(bus).is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())))
}

/// The first device of `boot: order=…` that is a hard disk of the config; else the legacy `bootdisk`;
/// else the first hard disk in PVE's key order. CD-ROMs (ISOs, the cloud-init drive) never count.
fn boot_disk_key(config: &GuestConfig) -> Option<String> {
    let hard_disk = |key: &str| {
        is_disk_key(key)
            && config.other.get(key).and_then(|v| v.as_str()).is_some_and(|v| !v.split(',').any(|o| o == "media=cdrom"))
    };
    let text = |key: &str| config.other.get(key).and_then(|v| v.as_str());
    let ordered = text("boot")
        .and_then(|b| b.split(',').find_map(|part| part.strip_prefix("order=")))
        .and_then(|order| order.split(';').map(str::trim).find(|d| hard_disk(d)).map(str::to_owned));
    ordered
        .or_else(|| text("bootdisk").filter(|d| hard_disk(d)).map(str::to_owned))
        .or_else(|| disk_keys().find(|k| hard_disk(k)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config(keys: serde_json::Value) -> GuestConfig {
        let mut v = json!({"digest": "d"});
        v.as_object_mut().unwrap().extend(keys.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_boot_disk_is_the_first_hard_disk_of_the_boot_order() {
        let cloud = config(json!({"scsi0": "local-lvm:base-9100-disk-0/vm-120-disk-0,size=2G",
            "ide2": "local-lvm:vm-120-cloudinit,media=cdrom", "boot": "order=scsi0;ide2;net0"}));
        assert_eq!(boot_disk_key(&cloud).as_deref(), Some("scsi0"));
        let cd_first =
            config(json!({"ide2": "local:iso/x.iso,media=cdrom", "virtio1": "local-lvm:vm-1-disk-1,size=4G",
            "scsi0": "local-lvm:vm-1-disk-0,size=8G", "boot": "order=ide2;virtio1;scsi0"}));
        assert_eq!(boot_disk_key(&cd_first).as_deref(), Some("virtio1"));
        let legacy =
            config(json!({"sata0": "local-lvm:vm-1-disk-0,size=8G", "virtio0": "local-lvm:vm-1-disk-1,size=8G",
            "bootdisk": "virtio0", "boot": "cdn"}));
        assert_eq!(boot_disk_key(&legacy).as_deref(), Some("virtio0"));
        let no_order = config(json!({"ide2": "none,media=cdrom", "sata1": "local-lvm:vm-1-disk-0,size=8G"}));
        assert_eq!(boot_disk_key(&no_order).as_deref(), Some("sata1"));
        assert_eq!(boot_disk_key(&config(json!({"ide2": "none,media=cdrom"}))), None);
    }
}
