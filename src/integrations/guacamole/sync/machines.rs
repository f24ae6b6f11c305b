//! Which guest a provisioned machine is, and which guests' addresses a sync needs at all.
//!
//! A machine's stored VMID proves nothing on its own: PVE reuses the lowest free VMID, so after the
//! guest is deleted (a deletion in progress, or done out of band) the number may name nothing or
//! someone else's guest. Only the guest on the machine's node that carries its request's marker is it.

use std::collections::BTreeSet;

use super::{ProvisionedMachine, VmInfo};
use crate::domain::guest_marker::GuestMarker;
use crate::integrations::guacamole::notes::parse;

/// What PVE lists under a machine's VMID and node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineGuest<'a> {
    /// The machine's own guest.
    Found(&'a VmInfo),
    /// Nothing: the guest is gone (deleted, or being deleted).
    Gone,
    /// A guest without the machine's marker: the VMID was given to another guest.
    Foreign(&'a VmInfo),
    /// A guest whose config could not be read this run: whose it is cannot be told.
    Unread(&'a VmInfo),
}

/// Finds a machine's guest among the listed ones, by VMID and node, and checks its marker.
pub fn machine_guest<'a>(m: &ProvisionedMachine, vms: &'a [VmInfo]) -> MachineGuest<'a> {
    let Some(vm) = vms.iter().find(|v| v.vmid == m.vmid && v.node == m.node) else {
        return MachineGuest::Gone;
    };
    if vm.unreadable.is_some() {
        return MachineGuest::Unread(vm);
    }
    if GuestMarker::for_request(m.request_id).is_carried_by(vm.notes.as_deref(), vm.tags.as_deref()) {
        MachineGuest::Found(vm)
    } else {
        MachineGuest::Foreign(vm)
    }
}

/// The VMIDs whose address the desired state will use: guests whose notes hold at least one
/// credential entry, and machines' own guests (when their password opens). Every other guest gets
/// no connection, so asking for its address (a guest agent call, up to 3 s) would be wasted.
pub fn wanted_addresses(machines: &[ProvisionedMachine], vms: &[VmInfo]) -> BTreeSet<u32> {
    let noted = vms
        .iter()
        .filter(|v| v.unreadable.is_none())
        .filter(|v| v.notes.as_deref().is_some_and(|n| !parse(n).entries.is_empty()))
        .map(|v| v.vmid);
    let machines = machines.iter().filter(|m| m.password.is_some()).filter_map(|m| match machine_guest(m, vms) {
        MachineGuest::Found(vm) => Some(vm.vmid),
        _ => None,
    });
    noted.chain(machines).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::guacamole::sync::VmKind;
    use crate::secrets::Secret;

    fn vm(vmid: u32, node: &str, notes: Option<&str>, tags: Option<&str>) -> VmInfo {
        VmInfo {
            vmid,
            node: node.into(),
            name: format!("vm{vmid}"),
            kind: VmKind::Lxc,
            notes: notes.map(Into::into),
            tags: tags.map(Into::into),
            ipv4: None,
            silent_agent: None,
            mac: None,
            unreadable: None,
        }
    }

    fn machine(request_id: i64, vmid: u32, node: &str) -> ProvisionedMachine {
        ProvisionedMachine {
            machine_id: request_id * 10,
            request_id,
            vmid,
            node: node.into(),
            hostname: "lab".into(),
            ipv4: None,
            owner_username: "alice".into(),
            login_user: "alice".into(),
            password: Some(Secret::new("pw".into())),
            address_required: false,
        }
    }

    #[test]
    fn a_machine_is_its_guest_only_on_its_node_and_with_its_marker() {
        let ours = GuestMarker::for_request(7).notes("alice", "lab");
        let vms = [
            vm(200, "pve1", Some(&ours), None),
            vm(201, "pve1", Some("Requested by bob (proxdesk request #8)"), Some("proxdesk;proxdesk-request-8")),
            vm(202, "pve2", None, Some("proxdesk;proxdesk-request-9")),
            vm(203, "pve1", Some(&ours), None),
        ];
        assert_eq!(machine_guest(&machine(7, 200, "pve1"), &vms), MachineGuest::Found(&vms[0]));
        assert_eq!(machine_guest(&machine(7, 201, "pve1"), &vms), MachineGuest::Foreign(&vms[1]));
        assert_eq!(machine_guest(&machine(9, 202, "pve2"), &vms), MachineGuest::Found(&vms[2]), "by tag");
        assert_eq!(machine_guest(&machine(9, 202, "pve1"), &vms), MachineGuest::Gone, "not on its node");
        assert_eq!(machine_guest(&machine(7, 999, "pve1"), &vms), MachineGuest::Gone);
        let mut unread = vms[3].clone();
        unread.unreadable = Some("Proxmox VE: timed out".into());
        assert_eq!(machine_guest(&machine(7, 203, "pve1"), &[unread.clone()]), MachineGuest::Unread(&unread));
    }

    #[test]
    fn only_noted_guests_and_machines_own_guests_want_an_address() {
        let vms = [
            vm(100, "pve1", Some("user:a pass:p protos:ssh;"), None),
            vm(101, "pve1", Some("user:a protos:ssh;"), None),
            vm(102, "pve1", Some("Just a description; nothing else"), None),
            vm(103, "pve1", None, Some("proxdesk-request-3")),
            vm(104, "pve1", Some("Requested by eve (proxdesk request #4)"), None),
            vm(105, "pve1", None, None),
        ];
        let mut locked_out = machine(5, 105, "pve1");
        locked_out.password = None;
        let machines = [machine(3, 103, "pve1"), machine(6, 104, "pve1"), locked_out];
        assert_eq!(wanted_addresses(&machines, &vms), BTreeSet::from([100, 103]));
    }
}
