//! What runs inside a guest, apart from its config file: the QEMU guest agent, the OS, a `docker0`
//! bridge, whether DHCP answers — and the addresses a client can learn from them (pve-api.md §6.8, §7).

use std::net::Ipv4Addr;
use std::time::Instant;

use super::state::{Guest, GuestKind};

/// The QEMU guest agent inside the guest. Whether PVE talks to it at all is the `agent` config key
/// ([`Guest::agent_enabled`]); this is what happens when it does. Meaningless for containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AgentState {
    /// Answers at once.
    #[default]
    Responsive,
    /// Not installed or stopped: PVE answers `QEMU guest agent is not running` at once.
    NotRunning,
    /// Hung: PVE waits for its ping timeout (3 s), then answers `QEMU guest agent is not running`.
    Silent,
}

/// The guest's operating system; it shapes what the agent reports (`lo`/`eth0` or `Ethernet` and
/// `Loopback Pseudo-Interface 1`). Containers are always Linux.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GuestOs {
    #[default]
    Linux,
    Windows,
}

/// A Docker bridge (`docker0`, 172.17.0.1/16) inside a Linux guest, listed before or after its NIC:
/// a client taking "the first IPv4 that is not loopback" takes 172.17.0.1 when it comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DockerBridge {
    #[default]
    Absent,
    BeforeNic,
    AfterNic,
}

/// Whether a DHCP server answers the guest's NIC. One that never answers leaves the NIC with only its
/// `fe80::` address, forever. Static addresses (`ipconfig0`, LXC `ip=`) do not ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dhcp {
    #[default]
    Answers,
    NeverAnswers,
}

/// PVE's boolean spellings (`1`, `on`, `yes`, `true`).
fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "on" | "yes" | "true")
}

/// The `ip=a.b.c.d/nn` of a property string (`ip=dhcp`, `ip=manual` have none).
fn ip_in(property: &str) -> Option<(Ipv4Addr, u8)> {
    let cidr = property.split(',').find_map(|kv| kv.strip_prefix("ip="))?;
    let (addr, prefix) = cidr.split_once('/')?;
    Some((addr.parse().ok()?, prefix.parse().ok().filter(|p| *p <= 32)?))
}

impl Guest {
    /// Whether PVE opens the agent channel: the `agent` key's `enabled` part is true (`1`,
    /// `enabled=1,fstrim_cloned_disks=1`, or `1,fstrim_cloned_disks=1`, whose first item is `enabled`).
    pub fn agent_enabled(&self) -> bool {
        let Some(agent) = self.config.get("agent") else { return false };
        agent.split(',').enumerate().any(|(i, item)| match item.split_once('=') {
            Some(("enabled", v)) => truthy(v),
            None if i == 0 => truthy(item),
            _ => false,
        })
    }

    /// The static IPv4 address in the config: `ipconfig0: ip=…/nn` (QEMU cloud-init) or the `ip=…/nn`
    /// of LXC's `net0`. `None` for DHCP. A client can read it with the config even when the guest is
    /// stopped or its agent cannot answer — but whether the guest really uses it is another matter.
    pub fn static_ipv4(&self) -> Option<Ipv4Addr> {
        self.static_cidr().map(|(ip, _)| ip)
    }

    pub(crate) fn static_cidr(&self) -> Option<(Ipv4Addr, u8)> {
        let key = if self.kind == GuestKind::Lxc { "net0" } else { "ipconfig0" };
        self.config.get(key).and_then(|v| ip_in(v))
    }

    /// The IPv4 address (with prefix) on the guest's NIC at `now`: the static one while running, else
    /// the DHCP lease once it arrived (never when DHCP does not answer). Not `docker0`, not loopback.
    pub(crate) fn nic_ipv4(&self, now: Instant) -> Option<(Ipv4Addr, u8)> {
        if !self.running {
            return None;
        }
        // A cloud-init VM uses what its image says, which may lag behind a changed config.
        let image = self.cloudinit.as_ref().map(|c| c.ipconfig0.as_deref().and_then(super::cloudinit::static_cidr));
        if let Some(cidr) = image.unwrap_or_else(|| self.static_cidr()) {
            return Some(cidr);
        }
        if self.dhcp == Dhcp::NeverAnswers {
            return None;
        }
        self.ip.filter(|_| self.ip_ready_at.is_some_and(|t| now >= t)).map(|ip| (ip, 24))
    }

    /// Whether `agent/network-get-interfaces` answers with interfaces now (QEMU only).
    pub fn agent_answers(&self) -> bool {
        self.kind == GuestKind::Qemu && self.running && self.agent_enabled() && self.agent == AgentState::Responsive
    }

    /// What a correct client reading the guest's interfaces now (LXC `interfaces`, QEMU agent) would
    /// take as its address: the NIC's IPv4 — never `docker0`'s 172.17.0.1, never loopback. `None` when
    /// the guest is stopped, its agent cannot answer (absent, disabled, not running, silent), or the
    /// NIC has only its IPv6 link-local address.
    pub fn live_ipv4(&self) -> Option<Ipv4Addr> {
        if self.kind == GuestKind::Qemu && !self.agent_answers() {
            return None;
        }
        self.nic_ipv4(Instant::now()).map(|(ip, _)| ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(pairs: &[(&str, &str)]) -> Guest {
        let config = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Guest::new(100, GuestKind::Qemu, "pve1", config)
    }

    #[test]
    fn the_agent_key_is_on_when_its_enabled_part_is_true() {
        for (value, on) in [
            ("1", true),
            ("enabled=1,fstrim_cloned_disks=1", true),
            ("1,fstrim_cloned_disks=1", true),
            ("fstrim_cloned_disks=1,enabled=yes", true),
            ("0", false),
            ("enabled=0", false),
            ("0,fstrim_cloned_disks=1", false),
            ("type=virtio", false),
        ] {
            assert_eq!(vm(&[("agent", value)]).agent_enabled(), on, "{value}");
        }
        assert!(!vm(&[]).agent_enabled());
    }

    #[test]
    fn static_addresses_come_from_ipconfig0_or_lxc_net0() {
        let qemu = vm(&[("ipconfig0", "ip=10.20.30.40/24,gw=10.20.30.1")]);
        assert_eq!(qemu.static_ipv4(), Some(Ipv4Addr::new(10, 20, 30, 40)));
        assert_eq!(vm(&[("ipconfig0", "ip=dhcp")]).static_ipv4(), None);
        assert_eq!(vm(&[("net0", "virtio=BC:24:11:00:00:01,bridge=vmbr0")]).static_ipv4(), None);
        let config = [("net0".to_owned(), "name=eth0,gw=10.1.2.1,hwaddr=BC:24:11:00:00:02,ip=10.1.2.3/24".to_owned())];
        let ct = Guest::new(101, GuestKind::Lxc, "pve1", config.into_iter().collect());
        assert_eq!(ct.static_ipv4(), Some(Ipv4Addr::new(10, 1, 2, 3)));
    }
}
