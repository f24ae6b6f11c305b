//! Guests a person may use in Proxmox VE through their own PVE permissions.

use poem_openapi::Object;

use super::{GuestKindName, PowerActionName};

/// A guest of the cluster that the caller's Proxmox VE user may see (`VM.Audit`).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PveGuest {
    pub vmid: u64,
    pub name: String,
    pub node: String,
    /// A container or a virtual machine.
    pub kind: GuestKindName,
    /// `running`, `stopped`… as Proxmox VE reports it.
    pub status: String,
    /// Present only when Proxmox VE would let the caller read it (a container: `VM.Audit`; a VM's
    /// guest agent: `VM.GuestAgent.Audit` on PVE 9, `VM.Monitor` on PVE 8) and the guest told it.
    pub ipv4: Option<String>,
    /// Holds `VM.PowerMgmt`: may start, shut down and reboot it.
    pub may_power: bool,
    /// Holds `VM.Console`: may open its console.
    pub may_console: bool,
    /// Has a terminal: a container always, a VM with a serial port on a socket.
    pub has_terminal: bool,
}

/// The caller's guests in Proxmox VE (empty without a Proxmox VE identity).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PveGuestList {
    pub items: Vec<PveGuest>,
}

/// A power action on a guest.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PveGuestPower {
    /// `start`, `shutdown` or `reboot`.
    pub action: PowerActionName,
}
