//! Where the Guacamole sync gets its inputs: proxdesk's machines from the database, every VM and
//! container (with notes and address) from Proxmox VE.

use futures_util::stream::{self, StreamExt};
use sea_orm::DatabaseConnection;

use super::guac_sync::SyncSource;
use crate::integrations::guacamole::sync::{ProvisionedMachine, VmInfo, VmKind};
use crate::integrations::pve;
use crate::integrations::pve::wire::{ClusterResource, first_ipv4};
use crate::secrets::SecretKey;
use crate::services;

/// The live inputs of a sync.
pub struct PveSource {
    pub db: DatabaseConnection,
    pub pve: pve::Client,
    pub key: SecretKey,
}

#[jobs::async_trait]
impl SyncSource for PveSource {
    async fn machines(&self) -> Result<Vec<ProvisionedMachine>, String> {
        services::machines::for_guacamole(&self.db, &self.key).await.map_err(|e| e.to_string())
    }

    async fn vms(&self) -> Result<Vec<VmInfo>, String> {
        read_vms(&self.pve).await
    }
}

/// How many VMs are read from PVE at once: a sync of thousands of VMs is otherwise bound by round trips.
const READ_CONCURRENCY: usize = 8;

/// Every VM and container of the cluster (templates left out) with its notes, first IPv4 address and MAC,
/// in the order PVE lists them.
pub async fn read_vms(pve: &pve::Client) -> Result<Vec<VmInfo>, String> {
    let resources = pve.cluster_resources(Some("vm")).await.map_err(|e| format!("Proxmox VE: {e}"))?;
    let listed = resources.into_iter().filter(|r| r.template != Some(1)).filter_map(|r| {
        let (vmid, node) = (r.vmid?, r.node.clone()?);
        Some((vmid, node, r))
    });
    Ok(stream::iter(listed)
        .map(|(vmid, node, r)| read_vm(pve, vmid, node, r))
        .buffered(READ_CONCURRENCY)
        .collect()
        .await)
}

async fn read_vm(pve: &pve::Client, vmid: u64, node: String, r: ClusterResource) -> VmInfo {
    let kind = if r.kind == "lxc" { VmKind::Lxc } else { VmKind::Qemu };
    let running = r.status.as_deref() == Some("running");
    let config = match kind {
        VmKind::Lxc => pve.lxc_config(&node, vmid).await,
        VmKind::Qemu => pve.qemu_config(&node, vmid).await,
    };
    // A VM that cannot be read right now keeps its connections rather than failing the run.
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            return VmInfo {
                vmid: vmid as u32,
                name: r.name.clone().unwrap_or_default(),
                node,
                kind,
                notes: None,
                ipv4: None,
                mac: None,
                unreadable: Some(format!("Proxmox VE: {e}")),
            };
        }
    };
    let ipv4 = match (kind, running) {
        (VmKind::Lxc, true) => pve.lxc_interfaces(&node, vmid).await.ok().flatten(),
        (VmKind::Qemu, true) => pve.qemu_agent_interfaces(&node, vmid).await.ok(),
        _ => None,
    }
    .and_then(|ifaces| first_ipv4(&ifaces))
    .map(|ip| ip.to_string());
    VmInfo {
        vmid: vmid as u32,
        name: r.name.clone().or(config.hostname.clone()).or(config.name.clone()).unwrap_or_default(),
        node,
        kind,
        notes: config.description.clone(),
        ipv4,
        mac: config.net0.as_deref().and_then(mac_of),
        unreadable: None,
    }
}

/// The MAC in a `net0` property string: `hwaddr=…` (LXC) or `<model>=…` (QEMU).
fn mac_of(net0: &str) -> Option<String> {
    net0.split(',')
        .filter_map(|p| p.split_once('='))
        .map(|(_, v)| v)
        .find(|v| {
            v.len() == 17
                && v.split(':').count() == 6
                && v.split(':').all(|h| h.len() == 2 && h.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #[test]
    fn macs_come_from_either_net0_style() {
        assert_eq!(
            super::mac_of("name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:CC,ip=dhcp").as_deref(),
            Some("BC:24:11:AA:BB:CC")
        );
        assert_eq!(super::mac_of("virtio=BC:24:11:00:11:22,bridge=vmbr0").as_deref(), Some("BC:24:11:00:11:22"));
        assert_eq!(super::mac_of("name=eth0,bridge=vmbr0"), None);
    }
}
