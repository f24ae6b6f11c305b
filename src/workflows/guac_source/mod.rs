//! Where the Guacamole sync gets its inputs: proxdesk's machines from the database, every VM and
//! container from Proxmox VE with its notes, and the addresses of those that will have a connection.
//!
//! Reading is in two passes because addresses are the expensive part: every guest's config is read
//! (its notes decide whether it gets connections), then only guests with a wanted connection are asked
//! for their address, and a QEMU guest agent only when the config enables it and it is not remembered
//! as silent (PVE waits 3 s for a silent agent before it answers `QEMU guest agent is not running`).

mod addresses;

use std::net::Ipv4Addr;

use futures_util::stream::{self, StreamExt};
use sea_orm::DatabaseConnection;

use super::guac_sync::SyncSource;
use crate::domain::guest::GuestType;
use crate::integrations::guacamole::sync::{
    MachineGuest, ProvisionedMachine, VmInfo, VmKind, machine_guest, wanted_addresses,
};
use crate::integrations::pve;
use crate::integrations::pve::address::AgentSetting;
use crate::integrations::pve::wire::ClusterResource;
use crate::secrets::SecretKey;
use crate::services;

pub use crate::integrations::guacamole::DEFAULT_PVE_CONCURRENCY;
pub use addresses::{AddressLookup, lookup};

/// How PVE is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSettings {
    /// PVE calls in flight at once (`PROXDESK_GUAC_PVE_CONCURRENCY`).
    pub concurrency: usize,
    /// How long a silent guest agent is left alone before it is asked again
    /// (`PROXDESK_GUAC_AGENT_RECHECK_MINS`).
    pub agent_recheck: chrono::Duration,
}

impl ReadSettings {
    /// The settings of the Guacamole integration.
    pub fn from_settings(guac: &crate::integrations::guacamole::GuacSettings) -> Self {
        ReadSettings {
            concurrency: guac.pve_concurrency,
            agent_recheck: chrono::Duration::from_std(guac.agent_recheck).unwrap_or(chrono::Duration::minutes(30)),
        }
    }
}

impl Default for ReadSettings {
    fn default() -> Self {
        Self::from_settings(&crate::integrations::guacamole::GuacSettings::new("http://unused", "", ""))
    }
}

/// The live inputs of a sync.
pub struct PveSource {
    pub db: DatabaseConnection,
    pub pve: pve::Client,
    pub key: SecretKey,
    pub read: ReadSettings,
}

#[jobs::async_trait]
impl SyncSource for PveSource {
    async fn machines(&self) -> Result<Vec<ProvisionedMachine>, String> {
        services::machines::for_guacamole(&self.db, &self.key).await.map_err(|e| e.to_string())
    }

    async fn vms(&self, machines: &[ProvisionedMachine]) -> Result<Vec<VmInfo>, String> {
        let guests = read_guests(&self.pve, self.read.concurrency).await?;
        let infos: Vec<VmInfo> = guests.iter().map(|g| g.info.clone()).collect();
        let wanted = wanted_addresses(machines, &infos);
        let silent = services::guest_agents::silent(&self.db).await.map_err(|e| format!("silent agents: {e}"))?;
        let now = chrono::Utc::now();
        let (vms, changes) = addresses::read(&self.pve, guests, &wanted, &silent, now, self.read).await;
        let listed = vms.iter().map(|v| (v.vmid, v.node.clone())).collect();
        services::guest_agents::record(&self.db, &changes, &listed).await.map_err(|e| format!("silent agents: {e}"))?;
        learn_addresses(&self.db, machines, &vms).await;
        Ok(vms)
    }
}

/// Keeps the address found for a machine that had none (a VM installed from an ISO, once its OS answers
/// through the guest agent): its page shows it, and its connection stays while the VM is off. A failure
/// is only logged: the next run finds the address again.
async fn learn_addresses(db: &DatabaseConnection, machines: &[ProvisionedMachine], vms: &[VmInfo]) {
    for m in machines.iter().filter(|m| m.ipv4.is_none()) {
        let MachineGuest::Found(vm) = machine_guest(m, vms) else { continue };
        let Some(ip) = vm.ipv4.as_deref().and_then(|ip| ip.parse::<Ipv4Addr>().ok()) else { continue };
        match services::machines::learn_address(db, m.machine_id, ip).await {
            Ok(true) => tracing::info!(machine = m.machine_id, %ip, "address of machine found"),
            Ok(false) => {}
            Err(e) => tracing::warn!(machine = m.machine_id, error = %e, "address of machine not recorded"),
        }
    }
}

/// A guest as its listing and config describe it, before any address is asked for.
#[derive(Debug, Clone)]
pub struct ListedGuest {
    /// Name, notes, tags, MAC; no address yet.
    pub info: VmInfo,
    /// Whether `/cluster/resources` lists it as running.
    pub running: bool,
    /// The guest agent setting of its config (QEMU).
    pub agent: AgentSetting,
    /// The static address its config gives it (`ipconfig0`, or a container's `net0`).
    pub static_ipv4: Option<Ipv4Addr>,
}

/// Every VM and container of the cluster (templates left out) with its notes, without addresses, in the
/// order PVE lists them: what the notes migration needs.
pub async fn read_vms(pve: &pve::Client, concurrency: usize) -> Result<Vec<VmInfo>, String> {
    Ok(read_guests(pve, concurrency).await?.into_iter().map(|g| g.info).collect())
}

/// Every guest's listing and config, `concurrency` calls at a time, in the order PVE lists them.
pub async fn read_guests(pve: &pve::Client, concurrency: usize) -> Result<Vec<ListedGuest>, String> {
    let resources = pve.cluster_resources(Some("vm")).await.map_err(|e| format!("Proxmox VE: {e}"))?;
    let listed = resources.into_iter().filter(|r| r.template != Some(1)).filter_map(|r| {
        let (vmid, node) = (r.vmid?, r.node.clone()?);
        Some((vmid, node, r))
    });
    // Unordered, so one slow answer does not hold the slots of those finished behind it.
    let mut read: Vec<(usize, ListedGuest)> = stream::iter(listed.enumerate())
        .map(|(i, (vmid, node, r))| async move { (i, read_guest(pve, vmid, node, r).await) })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    read.sort_by_key(|(i, _)| *i);
    Ok(read.into_iter().map(|(_, g)| g).collect())
}

async fn read_guest(pve: &pve::Client, vmid: u64, node: String, r: ClusterResource) -> ListedGuest {
    let kind = if r.kind == "lxc" { VmKind::Lxc } else { VmKind::Qemu };
    let running = r.status.as_deref() == Some("running");
    let ty = match kind {
        VmKind::Lxc => GuestType::Lxc,
        VmKind::Qemu => GuestType::Qemu,
    };
    let config = pve.guest_config(&node, ty, vmid).await;
    let mut info = VmInfo {
        vmid: vmid as u32,
        name: r.name.clone().unwrap_or_default(),
        node,
        kind,
        notes: None,
        tags: None,
        ipv4: None,
        silent_agent: None,
        mac: None,
        unreadable: None,
    };
    // A VM that cannot be read right now keeps its connections rather than failing the run.
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            info.unreadable = Some(format!("Proxmox VE: {e}"));
            return ListedGuest { info, running, agent: AgentSetting::Absent, static_ipv4: None };
        }
    };
    if info.name.is_empty() {
        info.name = config.hostname.clone().or(config.name.clone()).unwrap_or_default();
    }
    info.notes = config.description.clone();
    info.tags = config.tags.clone();
    info.mac = config.net0.as_deref().and_then(mac_of);
    let agent = if kind == VmKind::Qemu { config.agent() } else { AgentSetting::Absent };
    ListedGuest { info, running, agent, static_ipv4: config.static_ipv4() }
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
