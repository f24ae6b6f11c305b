//! Snapshots of containers and VMs (pve-qemu-day2.md §6): the list, and create/rollback/delete as
//! tasks (`vz…`/`qm…`) the caller waits on with [`Client::wait_task`].

use reqwest::Method;

use super::{enc, q, upid};
use crate::domain::guest::GuestType;
use crate::integrations::pve::client::Client;
use crate::integrations::pve::error::PveError;
use crate::integrations::pve::upid::Upid;
use crate::integrations::pve::wire::SnapshotEntry;

fn base(node: &str, ty: GuestType, vmid: u64) -> String {
    format!("/nodes/{node}/{}/{vmid}/snapshot", ty.as_str())
}

impl Client {
    /// `GET …/snapshot`: flat, `current` last.
    pub async fn snapshot_list(&self, node: &str, ty: GuestType, vmid: u64) -> Result<Vec<SnapshotEntry>, PveError> {
        self.get(&base(node, ty, vmid), vec![]).await
    }

    /// `POST …/snapshot` → `vzsnapshot` / `qmsnapshot`. `with_ram` is sent for QEMU only (LXC has no
    /// `vmstate` and refuses unknown parameters).
    pub async fn snapshot_create(
        &self,
        node: &str,
        ty: GuestType,
        vmid: u64,
        name: &str,
        description: &str,
        with_ram: bool,
    ) -> Result<Upid, PveError> {
        let mut p = vec![("snapname", name.to_owned())];
        if !description.is_empty() {
            p.push(("description", description.to_owned()));
        }
        if ty == GuestType::Qemu && with_ram {
            p.push(("vmstate", "1".to_owned()));
        }
        upid(self.write(Method::POST, &base(node, ty, vmid), q(&p)).await?)
    }

    /// `POST …/snapshot/{snap}/rollback` → `vzrollback` / `qmrollback`; a running guest is stopped hard.
    pub async fn snapshot_rollback(&self, node: &str, ty: GuestType, vmid: u64, name: &str) -> Result<Upid, PveError> {
        let path = format!("{}/{}/rollback", base(node, ty, vmid), enc(name));
        upid(self.write(Method::POST, &path, vec![]).await?)
    }

    /// `DELETE …/snapshot/{snap}` → `vzdelsnapshot` / `qmdelsnapshot`; children are re-parented.
    pub async fn snapshot_delete(&self, node: &str, ty: GuestType, vmid: u64, name: &str) -> Result<Upid, PveError> {
        let path = format!("{}/{}", base(node, ty, vmid), enc(name));
        upid(self.write(Method::DELETE, &path, vec![]).await?)
    }
}
