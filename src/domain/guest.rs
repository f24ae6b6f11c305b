//! What kind of guest a catalog entry makes, and the small values its provisioning needs: comma lists
//! of allowed choices and a pool of static IPv4 addresses.

use std::fmt;
use std::net::Ipv4Addr;

/// The two kinds of Proxmox guest; `as_str` is the PVE path segment (`/nodes/{n}/lxc/…`, `/qemu/…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuestType {
    Lxc,
    Qemu,
}

impl GuestType {
    pub fn as_str(self) -> &'static str {
        match self {
            GuestType::Lxc => "lxc",
            GuestType::Qemu => "qemu",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "lxc" => Some(GuestType::Lxc),
            "qemu" => Some(GuestType::Qemu),
            _ => None,
        }
    }
}

impl fmt::Display for GuestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a catalog entry makes a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MachineKind {
    /// Clone an LXC template, finish it over SSH.
    Lxc,
    /// Clone a QEMU template that has a cloud-init drive, and hand it the owner's login through cloud-init.
    QemuCloudInit,
    /// Create a blank QEMU VM that boots an installer ISO; the owner installs through the console.
    QemuIso,
}

impl MachineKind {
    pub const ALL: [MachineKind; 3] = [MachineKind::Lxc, MachineKind::QemuCloudInit, MachineKind::QemuIso];

    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            MachineKind::Lxc => "lxc",
            MachineKind::QemuCloudInit => "qemu-cloudinit",
            MachineKind::QemuIso => "qemu-iso",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    pub fn guest_type(self) -> GuestType {
        match self {
            MachineKind::Lxc => GuestType::Lxc,
            MachineKind::QemuCloudInit | MachineKind::QemuIso => GuestType::Qemu,
        }
    }

    /// Whether machines of this kind are cloned from a template guest (`node` + `vmid` of the entry).
    pub fn is_cloned(self) -> bool {
        self != MachineKind::QemuIso
    }
}

impl fmt::Display for MachineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A comma list column (`local-lvm,ceph`) as its items, blanks dropped.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The column text of a list.
pub fn join_list<S: AsRef<str>>(items: &[S]) -> String {
    items.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(",")
}

/// A range of static IPv4 addresses for new machines: `192.0.2.100-192.0.2.199/24`, with the gateway
/// kept apart (the prefix and gateway go into cloud-init's `ipconfig0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Pool {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Pool {
    /// Parses `first-last/prefix`; both ends in one network of that prefix, `first <= last`.
    pub fn parse(text: &str) -> Option<Self> {
        let (range, prefix) = text.trim().split_once('/')?;
        let prefix: u8 = prefix.parse().ok().filter(|p| (8..=30).contains(p))?;
        let (first, last) = range.split_once('-')?;
        let first: Ipv4Addr = first.trim().parse().ok()?;
        let last: Ipv4Addr = last.trim().parse().ok()?;
        let mask = u32::MAX << (32 - prefix);
        if u32::from(first) > u32::from(last) || u32::from(first) & mask != u32::from(last) & mask {
            return None;
        }
        Some(Ipv4Pool { first, last, prefix })
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (u32::from(self.first)..=u32::from(self.last)).contains(&u32::from(ip))
    }

    /// Whether `gateway` lies in the pool's network (it may not be one of the pool's addresses).
    pub fn same_network(&self, gateway: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(gateway) & mask == u32::from(self.first) & mask && !self.contains(gateway)
    }

    /// Every address of the pool, in order.
    pub fn iter(&self) -> impl Iterator<Item = Ipv4Addr> + use<> {
        (u32::from(self.first)..=u32::from(self.last)).map(Ipv4Addr::from)
    }

    pub fn len(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Display for Ipv4Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}/{}", self.first, self.last, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_column_text() {
        for k in MachineKind::ALL {
            assert_eq!(MachineKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(MachineKind::parse("qemu"), None);
        assert_eq!(MachineKind::QemuIso.guest_type(), GuestType::Qemu);
        assert!(!MachineKind::QemuIso.is_cloned());
        assert_eq!(GuestType::parse("qemu"), Some(GuestType::Qemu));
    }

    #[test]
    fn lists_drop_blanks_and_join_back() {
        assert_eq!(split_list(" local-lvm, ,ceph,"), vec!["local-lvm", "ceph"]);
        assert!(split_list("").is_empty());
        assert_eq!(join_list(&["a", "b"]), "a,b");
    }

    #[test]
    fn pools_parse_only_one_network_in_order() {
        let p = Ipv4Pool::parse("192.0.2.100-192.0.2.102/24").unwrap();
        assert_eq!(p.iter().map(|a| a.to_string()).collect::<Vec<_>>(), ["192.0.2.100", "192.0.2.101", "192.0.2.102"]);
        assert_eq!(p.len(), 3);
        assert!(p.same_network("192.0.2.1".parse().unwrap()));
        assert!(!p.same_network("192.0.2.101".parse().unwrap()));
        assert!(!p.same_network("198.51.100.1".parse().unwrap()));
        assert_eq!(p.to_string(), "192.0.2.100-192.0.2.102/24");
        for bad in
            ["192.0.2.9-192.0.2.1/24", "192.0.2.1-192.0.3.1/24", "192.0.2.1/24", "a-b/24", "192.0.2.1-192.0.2.2/31"]
        {
            assert_eq!(Ipv4Pool::parse(bad), None, "{bad}");
        }
    }
}
