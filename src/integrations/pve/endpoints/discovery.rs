//! What a node offers new VMs: ISO images and bridges (pve-qemu-day2.md §7).

use super::q;
use crate::integrations::pve::client::Client;
use crate::integrations::pve::error::PveError;
use crate::integrations::pve::wire::{NetworkInterface, StorageContentItem};

impl Client {
    /// `GET /nodes/{node}/storage/{storage}/content?content=…` (`iso`, `vztmpl`, `images`…), sorted by volid.
    pub async fn storage_content(
        &self,
        node: &str,
        storage: &str,
        content: &str,
    ) -> Result<Vec<StorageContentItem>, PveError> {
        self.get(&format!("/nodes/{node}/storage/{storage}/content"), q(&[("content", content.to_owned())])).await
    }

    /// `GET /nodes/{node}/network`, optionally of one `type` (`any_bridge` = Linux and OVS bridges plus
    /// the SDN vnets usable on the node). Bridges the caller may not use are left out by PVE.
    pub async fn network(&self, node: &str, kind: Option<&str>) -> Result<Vec<NetworkInterface>, PveError> {
        let query = kind.map(|k| q(&[("type", k.to_owned())])).unwrap_or_default();
        self.get(&format!("/nodes/{node}/network"), query).await
    }
}
