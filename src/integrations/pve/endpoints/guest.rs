//! Calls that containers and VMs share, by [`GuestType`]: the path differs (`lxc`/`qemu`), the
//! shape does not.

use reqwest::Method;

use super::{q, upid};
use crate::domain::guest::GuestType;
use crate::integrations::pve::client::Client;
use crate::integrations::pve::error::PveError;
use crate::integrations::pve::upid::Upid;
use crate::integrations::pve::wire::{ConsoleTicket, DeleteOptions, GuestConfig, GuestStatus, PowerCommand};

fn base(node: &str, ty: GuestType, vmid: u64) -> String {
    format!("/nodes/{node}/{}/{vmid}", ty.as_str())
}

impl Client {
    /// `GET /nodes/{node}/{lxc|qemu}/{vmid}/status/current`.
    pub async fn guest_status(&self, node: &str, ty: GuestType, vmid: u64) -> Result<GuestStatus, PveError> {
        self.get(&format!("{}/status/current", base(node, ty, vmid)), vec![]).await
    }

    /// `GET /nodes/{node}/{lxc|qemu}/{vmid}/config` (pending values merged in).
    pub async fn guest_config(&self, node: &str, ty: GuestType, vmid: u64) -> Result<GuestConfig, PveError> {
        self.get(&format!("{}/config", base(node, ty, vmid)), vec![]).await
    }

    /// `POST …/status/{cmd}` → `vz<cmd>` / `qm<cmd>` task. Containers have no `reset`; a QEMU start or
    /// stop is checked only inside its task (pve-qemu-day2.md §4), a container's partly at once.
    pub async fn guest_power(&self, node: &str, ty: GuestType, vmid: u64, cmd: PowerCommand) -> Result<Upid, PveError> {
        let path = format!("{}/status/{}", base(node, ty, vmid), cmd.as_str());
        upid(self.write(Method::POST, &path, vec![]).await?)
    }

    /// `DELETE /nodes/{node}/{lxc|qemu}/{vmid}` → `vzdestroy` / `qmdestroy`.
    pub async fn guest_delete(
        &self,
        node: &str,
        ty: GuestType,
        vmid: u64,
        options: DeleteOptions,
    ) -> Result<Upid, PveError> {
        let mut p = vec![];
        if options.purge {
            p.push(("purge", "1".to_owned()));
        }
        if options.destroy_unreferenced_disks {
            p.push(("destroy-unreferenced-disks", "1".to_owned()));
        }
        upid(self.write(Method::DELETE, &base(node, ty, vmid), q(&p)).await?)
    }

    /// `POST …/vncproxy` with `websocket=1`; current PVE answers a one-time VNC `password` too.
    pub async fn guest_vncproxy(&self, node: &str, ty: GuestType, vmid: u64) -> Result<ConsoleTicket, PveError> {
        let path = format!("{}/vncproxy", base(node, ty, vmid));
        self.write(Method::POST, &path, q(&[("websocket", "1".into())])).await
    }

    /// `POST …/termproxy`: a container's shell, or a VM's first serial port (`serial=serial0`).
    pub async fn guest_termproxy(&self, node: &str, ty: GuestType, vmid: u64) -> Result<ConsoleTicket, PveError> {
        let path = format!("{}/termproxy", base(node, ty, vmid));
        let p = match ty {
            GuestType::Lxc => vec![],
            GuestType::Qemu => q(&[("serial", "serial0".into())]),
        };
        self.write(Method::POST, &path, p).await
    }
}
