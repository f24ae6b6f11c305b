//! The QEMU write side (pve-qemu-day2.md §1–§3).

use reqwest::Method;

use super::upid;
use crate::integrations::pve::client::{Client, params};
use crate::integrations::pve::error::PveError;
use crate::integrations::pve::upid::Upid;
use crate::integrations::pve::wire::{GuestStatus, QemuCloneRequest, QemuCreateRequest, ResizeRequest};

impl Client {
    /// `GET /nodes/{node}/qemu`.
    pub async fn qemu_list(&self, node: &str) -> Result<Vec<GuestStatus>, PveError> {
        self.get(&format!("/nodes/{node}/qemu"), vec![]).await
    }

    /// `POST /nodes/{node}/qemu` → the `qmcreate` task. The VM exists at once, locked `create`, and is
    /// removed again if the task fails.
    pub async fn qemu_create(&self, node: &str, req: &QemuCreateRequest) -> Result<Upid, PveError> {
        upid(self.write(Method::POST, &format!("/nodes/{node}/qemu"), params(req)?).await?)
    }

    /// `POST /nodes/{node}/qemu/{vmid}/clone` → the `qmclone` task. A stopped template is only
    /// share-locked, so clones of one template run side by side.
    pub async fn qemu_clone(&self, node: &str, vmid: u64, req: &QemuCloneRequest) -> Result<Upid, PveError> {
        upid(self.write(Method::POST, &format!("/nodes/{node}/qemu/{vmid}/clone"), params(req)?).await?)
    }

    /// `PUT /nodes/{node}/qemu/{vmid}/resize` → the `resize` task on PVE 8 and later, `None` on PVE 7
    /// (synchronous `null`). Every check runs inside the task (pve-qemu-day2.md §3.1).
    pub async fn qemu_resize(&self, node: &str, vmid: u64, req: &ResizeRequest) -> Result<Option<Upid>, PveError> {
        let answer: Option<String> =
            self.write(Method::PUT, &format!("/nodes/{node}/qemu/{vmid}/resize"), params(req)?).await?;
        answer.map(upid).transpose()
    }
}
