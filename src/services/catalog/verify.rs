//! Saving an entry asks PVE again: every node, template guest, storage, bridge and ISO the admin picked
//! must exist where the entry's machines will be made. A name PVE does not know is a field error; a
//! cluster that does not answer refuses the save as a whole (nothing is stored unchecked).

use crate::domain::guest::{GuestType, MachineKind};
use crate::domain::{FieldError, FieldErrors};
use crate::integrations::pve::{self, PveError};
use crate::services::ServiceError;

use super::discovery::{Discovery, discover};
use super::input::ValidTemplate;

fn unavailable(e: PveError) -> ServiceError {
    ServiceError::Unavailable(format!("Proxmox VE did not answer: {e}"))
}

/// The field errors of `t` against what PVE has now; `Err` when PVE could not be asked.
#[tracing::instrument(skip_all, fields(kind = %t.kind))]
pub async fn verify(pve: &pve::Client, t: &ValidTemplate) -> Result<FieldErrors, ServiceError> {
    let cluster = pve.nodes().await.map_err(unavailable)?;
    let mut errors = FieldErrors::default();
    let node_field = if t.kind.is_cloned() { "node" } else { "nodes" };
    let mut reachable = Vec::new();
    for name in t.placement() {
        match cluster.iter().find(|c| c.node == name) {
            None => errors.push(FieldError::new(node_field, "error.pve_node_missing").with("node", &name)),
            Some(c) if c.status != "online" => {
                errors.push(FieldError::new(node_field, "error.pve_node_offline").with("node", &name))
            }
            Some(_) => reachable.push(name),
        }
    }
    let found = discover(pve, &reachable).await;
    if let Some(problem) = found.nodes.iter().find_map(|n| n.problem.clone()) {
        return Err(ServiceError::Unavailable(format!("Proxmox VE did not answer: {problem}")));
    }
    if t.kind.is_cloned() {
        check_template(pve, t, &found, &mut errors).await?;
    }
    check_choices(t, &found, &mut errors);
    Ok(errors)
}

async fn check_template(
    pve: &pve::Client,
    t: &ValidTemplate,
    found: &Discovery,
    errors: &mut FieldErrors,
) -> Result<(), ServiceError> {
    let Some(offer) = found.node(&t.node) else { return Ok(()) };
    let vmid = t.vmid as u64;
    let wanted = t.kind.guest_type();
    match offer.template(vmid) {
        None => {
            errors.push(FieldError::new("vmid", "error.pve_template_missing").with("vmid", vmid).with("node", &t.node))
        }
        Some(g) if g.ty != wanted => errors.push(
            FieldError::new("vmid", "error.pve_template_wrong_type")
                .with("vmid", vmid)
                .with("type", if wanted == GuestType::Lxc { "LXC" } else { "QEMU" }),
        ),
        Some(_) if t.kind == MachineKind::QemuCloudInit => {
            let config = pve.guest_config(&t.node, GuestType::Qemu, vmid).await.map_err(unavailable)?;
            if !has_cloudinit_drive(&config.other) {
                errors.push(FieldError::new("vmid", "error.pve_template_no_cloudinit").with("vmid", vmid));
            }
        }
        Some(_) => {}
    }
    Ok(())
}

/// A cloud-init drive is a CD-ROM on an IDE, SATA or SCSI slot whose volume is `…cloudinit`
/// (pve-qemu-day2.md §2.5): `ide2: local-lvm:vm-9100-cloudinit,media=cdrom`.
fn has_cloudinit_drive(config: &std::collections::BTreeMap<String, serde_json::Value>) -> bool {
    config.iter().any(|(key, value)| {
        let slot = key.trim_end_matches(|c: char| c.is_ascii_digit());
        matches!(slot, "ide" | "sata" | "scsi")
            && key.len() > slot.len()
            && value.as_str().and_then(|v| v.split(',').next()).is_some_and(|volume| {
                // `vm-<vmid>-cloudinit`, with a `.qcow2`/`.raw` extension on file storages.
                let file = volume.rsplit(['/', ':']).next().unwrap_or(volume);
                file.split('.').next().is_some_and(|stem| stem.ends_with("-cloudinit"))
            })
    })
}

/// Each storage, bridge and ISO must be on every node machines may land on.
fn check_choices(t: &ValidTemplate, found: &Discovery, errors: &mut FieldErrors) {
    let content = if t.kind.guest_type() == GuestType::Lxc { "rootdir" } else { "images" };
    for offer in &found.nodes {
        let node = offer.node.as_str();
        for id in &t.storages {
            match offer.storage(id) {
                None => errors
                    .push(FieldError::new("storages", "error.pve_storage_missing").with("name", id).with("node", node)),
                Some(s) if !s.holds(content) => errors.push(
                    FieldError::new("storages", "error.pve_storage_content")
                        .with("name", id)
                        .with("node", node)
                        .with("content", content),
                ),
                Some(_) => {}
            }
        }
        for b in t.bridges.iter().filter(|b| !offer.bridges.iter().any(|o| &o.iface == *b)) {
            errors.push(FieldError::new("bridges", "error.pve_bridge_missing").with("name", b).with("node", node));
        }
        for iso in t.isos.iter().filter(|i| !offer.isos.iter().any(|o| &o.volid == *i)) {
            errors.push(FieldError::new("isos", "error.pve_iso_missing").with("name", iso).with("node", node));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cloudinit_drive_is_found_on_any_cdrom_slot_but_virtio() {
        let config = |k: &str, v: &str| [(k.to_owned(), json!(v))].into_iter().collect();
        assert!(has_cloudinit_drive(&config("ide2", "local-lvm:vm-9100-cloudinit,media=cdrom")));
        assert!(has_cloudinit_drive(&config("scsi1", "local:9100/vm-9100-cloudinit.qcow2,media=cdrom")));
        assert!(!has_cloudinit_drive(&config("ide2", "local:iso/debian.iso,media=cdrom")));
        assert!(!has_cloudinit_drive(&config("virtio1", "local-lvm:vm-9100-cloudinit")));
        assert!(!has_cloudinit_drive(&config("ide", "local-lvm:vm-9100-cloudinit")));
    }
}
