//! The guests the cluster has that proxdesk does not manage.

use std::collections::HashSet;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use entities::{machine, request};

use crate::domain::guest::GuestType;
use crate::domain::guest_marker::GuestMarker;
use crate::domain::request_status::RequestStatus;
use crate::integrations::pve::{self, wire::ClusterResource};
use crate::services::lost_machines::pve_error;
use crate::services::{Actor, ServiceError};

/// A guest proxdesk could adopt.
#[derive(Debug, Clone, PartialEq)]
pub struct UnmanagedGuest {
    pub node: String,
    pub vmid: u64,
    pub kind: GuestType,
    pub name: String,
    /// PVE's word: `running`, `stopped`…
    pub status: String,
    pub tags: Vec<String>,
    pub cores: Option<u32>,
    pub memory_mib: Option<u64>,
    pub disk_gib: Option<u64>,
    /// A lock PVE shows (`backup`, `snapshot`…): adopting waits until it is gone.
    pub lock: Option<String>,
}

impl UnmanagedGuest {
    fn from_resource(r: &ClusterResource) -> Option<UnmanagedGuest> {
        let kind = GuestType::parse(&r.kind)?;
        let (node, vmid) = (r.node.clone()?, r.vmid?);
        let tags = r
            .tags
            .as_deref()
            .unwrap_or_default()
            .split([',', ';', ' ', '\t'])
            .filter(|t| !t.trim().is_empty())
            .map(|t| t.trim().to_owned())
            .collect();
        let name = r.name.clone().unwrap_or_else(|| match kind {
            GuestType::Lxc => format!("CT{vmid}"),
            GuestType::Qemu => format!("VM {vmid}"),
        });
        Some(UnmanagedGuest {
            node,
            vmid,
            kind,
            name,
            status: r.status.clone().unwrap_or_default(),
            tags,
            cores: r.maxcpu.map(|c| c.ceil() as u32),
            memory_mib: r.maxmem.map(|b| b >> 20),
            disk_gib: r.maxdisk.map(|b| b.div_ceil(1 << 30)),
            lock: r.lock.clone(),
        })
    }
}

/// The requests whose machine is still proxdesk's (not deleted, not released).
pub(super) async fn live_requests(db: &DatabaseConnection) -> Result<HashSet<i64>, ServiceError> {
    let over = [RequestStatus::Deleted.as_str(), RequestStatus::Released.as_str()];
    Ok(request::Entity::find()
        .filter(request::Column::Status.is_not_in(over))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

/// The VMIDs of proxdesk's live machines.
pub(super) async fn live_vmids(db: &DatabaseConnection) -> Result<HashSet<u64>, ServiceError> {
    Ok(machine::Entity::find()
        .filter(machine::Column::DeletedAt.is_null())
        .all(db)
        .await?
        .into_iter()
        .filter_map(|m| m.vmid.map(|v| v as u64))
        .collect())
}

/// Every guest of the cluster (`/cluster/resources?type=vm`, one call) that is not a template, not
/// at the VMID of a live machine, and carries no tag of a live machine's request; by VMID (admin).
/// A guest whose marker is only in its notes is caught when adopting, which reads its config.
pub async fn unmanaged(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    actor: &Actor,
) -> Result<Vec<UnmanagedGuest>, ServiceError> {
    actor.require_admin()?;
    let pve = pve.ok_or_else(|| ServiceError::Unavailable("no Proxmox VE cluster is configured".into()))?;
    let resources = pve.cluster_resources(Some("vm")).await.map_err(pve_error)?;
    let (vmids, requests) = (live_vmids(db).await?, live_requests(db).await?);
    let mut guests: Vec<UnmanagedGuest> = resources
        .iter()
        .filter(|r| r.template != Some(1))
        .filter(|r| r.vmid.is_some_and(|v| !vmids.contains(&v)))
        .filter(|r| !GuestMarker::requests_carried(None, r.tags.as_deref()).iter().any(|id| requests.contains(id)))
        .filter_map(UnmanagedGuest::from_resource)
        .collect();
    guests.sort_by_key(|g| g.vmid);
    Ok(guests)
}
