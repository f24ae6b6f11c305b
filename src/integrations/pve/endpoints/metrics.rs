//! Live usage and RRD history of a guest (pve-qemu-day2.md §8).

use super::q;
use crate::domain::guest::GuestType;
use crate::integrations::pve::client::Client;
use crate::integrations::pve::error::PveError;
use crate::integrations::pve::wire::{GuestUsage, RrdPoint, Timeframe};

impl Client {
    /// `GET …/{lxc|qemu}/{vmid}/status/current`, read for its counters.
    pub async fn guest_usage(&self, node: &str, ty: GuestType, vmid: u64) -> Result<GuestUsage, PveError> {
        self.get(&format!("/nodes/{node}/{}/{vmid}/status/current", ty.as_str()), vec![]).await
    }

    /// `GET …/{lxc|qemu}/{vmid}/rrddata?timeframe=…&cf=AVERAGE`: rows oldest first, with gaps where
    /// nothing was recorded. The spacing is not assumed: PVE 8 and 9 differ, and an upgraded cluster mixes
    /// both in one answer.
    pub async fn guest_rrddata(
        &self,
        node: &str,
        ty: GuestType,
        vmid: u64,
        timeframe: Timeframe,
    ) -> Result<Vec<RrdPoint>, PveError> {
        let path = format!("/nodes/{node}/{}/{vmid}/rrddata", ty.as_str());
        self.get(&path, q(&[("timeframe", timeframe.as_str().to_owned()), ("cf", "AVERAGE".to_owned())])).await
    }
}
