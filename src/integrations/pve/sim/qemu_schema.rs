//! The QEMU config schema the simulator knows (qemu-server's `$confdesc` for the keys clients use),
//! which keys are numbers on the wire, which privilege each needs, and which apply at once to a running
//! VM (pve-qemu-day2.md §1.1, §1.2, §2.2, §2.6).

use super::drive::{is_drive_key, is_net_key};
use super::params::Ty;

const OSTYPES: &[&str] =
    &["other", "wxp", "w2k", "w2k3", "w2k8", "wvista", "win7", "win8", "win10", "win11", "l24", "l26", "solaris"];
const SCSIHW: &[&str] = &["lsi", "lsi53c810", "virtio-scsi-pci", "virtio-scsi-single", "megasas", "pvscsi"];

fn indexed(key: &str, prefix: &str, max: u32) -> bool {
    key.strip_prefix(prefix).and_then(|n| n.parse::<u32>().ok().filter(|i| *i < max && n == i.to_string())).is_some()
}

/// The type of a config key, `None` outside the schema.
pub(crate) fn config_key(key: &str) -> Option<Ty> {
    let ty = match key {
        "name" => Ty::DnsName,
        "memory" => Ty::Memory,
        "cores" | "sockets" | "vcpus" => Ty::Int(1, 8192),
        "balloon" => Ty::Int(0, i64::MAX),
        "cpuunits" => Ty::Int(1, 262_144),
        "shares" => Ty::Int(0, 50_000),
        "cpu" | "cpulimit" | "machine" | "vga" | "hotplug" | "smbios1" | "vmgenid" | "startup" | "agent" => {
            Ty::Str(512)
        }
        "ostype" => Ty::Enum(OSTYPES),
        "scsihw" => Ty::Enum(SCSIHW),
        "bios" => Ty::Enum(&["ovmf", "seabios"]),
        "boot" => Ty::Boot,
        "bootdisk" => Ty::Str(16),
        "description" => Ty::Str(8192),
        "tags" => Ty::Tags,
        "onboot" | "protection" | "template" | "numa" | "kvm" | "acpi" | "tablet" | "localtime" | "reboot"
        | "ciupgrade" => Ty::Bool,
        "citype" => Ty::Enum(&["configdrive2", "nocloud", "opennebula"]),
        "ciuser" | "cipassword" | "cicustom" | "nameserver" | "searchdomain" => Ty::Str(4096),
        "sshkeys" => Ty::Urlencoded,
        k if is_drive_key(k) => Ty::Drive,
        k if is_net_key(k) => Ty::QemuNet,
        k if indexed(k, "ipconfig", 32) => Ty::Ipconfig,
        k if indexed(k, "serial", 4) => Ty::Str(128),
        _ => return None,
    };
    Some(ty)
}

/// `POST /nodes/{node}/qemu`: config keys plus the call's own.
pub(crate) fn create_key(key: &str) -> Option<Ty> {
    match key {
        "vmid" => Some(Ty::Vmid),
        "storage" => Some(Ty::StorageId),
        "pool" => Some(Ty::Str(64)),
        "start" | "unique" | "force" | "ha-managed" | "live-restore" => Some(Ty::Bool),
        "archive" => Some(Ty::Str(255)),
        "bwlimit" => Some(Ty::Int(0, i64::MAX)),
        k => config_key(k),
    }
}

/// `PUT`/`POST …/config`: config keys plus `delete`, `revert`, `digest`, `skiplock`, `force`
/// (and `background_delay` for POST).
pub(crate) fn update_key(key: &str, post: bool) -> Option<Ty> {
    match key {
        "delete" | "revert" => Some(Ty::Str(4096)),
        "digest" => Some(Ty::Str(40)),
        "skiplock" | "force" => Some(Ty::Bool),
        "background_delay" if post => Some(Ty::Int(1, 30)),
        "template" => None,
        k => config_key(k),
    }
}

/// Keys whose schema type is integer or boolean: numbers in `GET config` (`memory` is a string).
pub(crate) fn is_number(key: &str) -> bool {
    matches!(
        key,
        "cores"
            | "sockets"
            | "vcpus"
            | "balloon"
            | "cpuunits"
            | "shares"
            | "onboot"
            | "protection"
            | "template"
            | "numa"
            | "kvm"
            | "acpi"
            | "tablet"
            | "localtime"
            | "reboot"
            | "ciupgrade"
    )
}

/// A cloud-init key (§2.2).
pub(crate) fn is_cloudinit_key(key: &str) -> bool {
    matches!(
        key,
        "ciuser" | "cipassword" | "sshkeys" | "nameserver" | "searchdomain" | "citype" | "ciupgrade" | "cicustom"
    ) || indexed(key, "ipconfig", 32)
}

/// Applied at once to a running VM ($fast_plug_option, §2.6): never left pending.
pub(crate) fn is_fast_plug(key: &str) -> bool {
    matches!(key, "description" | "name" | "onboot" | "protection" | "startup" | "tags" | "shares" | "hookscript")
        || is_cloudinit_key(key)
}

/// The privilege a key needs (check_vm_modify_config_perm, §1.1); drives are checked by kind.
pub(crate) fn privilege(key: &str) -> &'static str {
    match key {
        "cores" | "sockets" | "cpu" | "cpulimit" | "cpuunits" | "numa" | "vcpus" => "VM.Config.CPU",
        "memory" | "balloon" | "shares" => "VM.Config.Memory",
        "scsihw" | "vga" | "machine" | "tablet" | "acpi" | "kvm" | "hotplug" | "smbios1" | "bios" => "VM.Config.HWType",
        "boot" | "bootdisk" => "VM.Config.Disk",
        k if is_net_key(k) => "VM.Config.Network",
        k if is_cloudinit_key(k) => "VM.Config.Cloudinit",
        k if indexed(k, "serial", 4) => "VM.Config.HWType",
        k if is_drive_key(k) => "VM.Config.Disk",
        _ => "VM.Config.Options",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_schema() {
        assert!(matches!(config_key("scsi30"), Some(Ty::Drive)));
        assert!(config_key("scsi31").is_none());
        assert!(matches!(config_key("ipconfig31"), Some(Ty::Ipconfig)));
        assert!(config_key("hostname").is_none());
        assert!(is_fast_plug("sshkeys") && is_fast_plug("name") && !is_fast_plug("cores"));
        assert_eq!(privilege("ipconfig0"), "VM.Config.Cloudinit");
        assert!(is_number("cores") && !is_number("memory") && !is_number("agent"));
    }
}
