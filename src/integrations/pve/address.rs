//! Which IPv4 address of a guest a person would connect to, and what a guest's config says about its
//! network before anyone asks the guest: whether the QEMU guest agent is on, and a static address.

use std::net::Ipv4Addr;

use super::wire::{GuestConfig, Interface};

/// Interface names of container and VM bridges inside a guest (Docker, libvirt, Hyper-V): their
/// addresses are only reachable from the guest itself.
const BRIDGE_PREFIXES: &[&str] = &["docker", "br-", "veth", "virbr", "vEthernet"];

/// Docker's default bridge network, also found on interfaces with other names (`--bridge`, Podman).
fn is_docker_default(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    (a, b) == (172, 17)
}

/// Whether an address can reach the guest from outside: not loopback, link-local (169.254/16, what a
/// guest without a DHCP lease gives itself), unspecified, or Docker's default bridge.
pub fn is_reachable(ip: Ipv4Addr) -> bool {
    !(ip.is_loopback() || ip.is_link_local() || ip.is_unspecified() || ip.is_broadcast() || is_docker_default(ip))
}

fn is_bridge(name: &str) -> bool {
    name == "lo" || BRIDGE_PREFIXES.iter().any(|p| name.starts_with(p))
}

impl Interface {
    /// Every IPv4 address of the interface, from `ip-addresses` (LXC `inet`, agent `ipv4`) or else the
    /// legacy `inet` key (older servers, pve-api.md §0).
    pub fn ipv4_addresses(&self) -> Vec<Ipv4Addr> {
        let listed: Vec<Ipv4Addr> = self
            .ip_addresses
            .iter()
            .filter(|a| a.kind == "inet" || a.kind == "ipv4")
            .filter_map(|a| a.address.parse().ok())
            .collect();
        if !listed.is_empty() {
            return listed;
        }
        self.inet.as_deref().and_then(|i| i.split('/').next()?.parse().ok()).into_iter().collect()
    }

    /// The first IPv4 address, reachable or not.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        self.ipv4_addresses().into_iter().next()
    }
}

/// The address a person would pick from a guest's interfaces: the first reachable IPv4 address of the
/// first interface that is not loopback or a Docker/libvirt bridge, in the order the guest lists them.
pub fn first_ipv4(interfaces: &[Interface]) -> Option<Ipv4Addr> {
    interfaces.iter().filter(|i| !is_bridge(&i.name)).flat_map(Interface::ipv4_addresses).find(|ip| is_reachable(*ip))
}

/// What a QEMU config says about the guest agent (pve-api.md §7, §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentSetting {
    /// No `agent` key: PVE answers `No QEMU guest agent configured` without asking the guest.
    Absent,
    /// `agent: 0` or a property string whose `enabled` part is false.
    Disabled,
    /// The agent is enabled: PVE will ask it (and wait up to 3 s when it is silent).
    Enabled,
}

impl AgentSetting {
    /// Whether PVE would ask the guest.
    pub fn is_enabled(self) -> bool {
        self == AgentSetting::Enabled
    }

    /// Reads the `agent` value: `"1"`, `"0"`, or a property string such as `enabled=1,fstrim_cloned_disks=1`
    /// whose default key is `enabled` (`"1,type=virtio"`); QEMU's config GET sends it as a string, a
    /// number is accepted too.
    pub fn parse(value: Option<&serde_json::Value>) -> AgentSetting {
        let text = match value {
            None | Some(serde_json::Value::Null) => return AgentSetting::Absent,
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Bool(b)) => u8::from(*b).to_string(),
            Some(other) => other.to_string(),
        };
        let enabled = text.split(',').map(str::trim).find_map(|part| match part.split_once('=') {
            Some((key, value)) => (key.trim() == "enabled").then_some(value.trim()),
            None => Some(part),
        });
        match enabled.map(str::to_ascii_lowercase).as_deref() {
            Some("1" | "yes" | "on" | "true") => AgentSetting::Enabled,
            // `enabled` defaults to 0 in qemu-server's schema.
            _ => AgentSetting::Disabled,
        }
    }
}

/// The `ip=` of a network property string (`ipconfig0` of cloud-init, `net0` of a container), when it
/// is a static IPv4 address: `ip=10.1.2.3/24,gw=10.1.2.1`. `dhcp`, `manual` and IPv6 give `None`.
pub fn static_ipv4_of(property: &str) -> Option<Ipv4Addr> {
    let ip = property.split(',').find_map(|p| p.trim().strip_prefix("ip="))?;
    let ip: Ipv4Addr = ip.split('/').next()?.trim().parse().ok()?;
    is_reachable(ip).then_some(ip)
}

impl GuestConfig {
    /// The guest agent setting (QEMU; containers have none).
    pub fn agent(&self) -> AgentSetting {
        AgentSetting::parse(self.other.get("agent"))
    }

    /// The static IPv4 address the config gives the guest: cloud-init's `ipconfig0` (QEMU) or the `ip=`
    /// of `net0` (LXC), whichever is present.
    pub fn static_ipv4(&self) -> Option<Ipv4Addr> {
        let ipconfig0 = self.other.get("ipconfig0").and_then(|v| v.as_str());
        ipconfig0.and_then(static_ipv4_of).or_else(|| self.net0.as_deref().and_then(static_ipv4_of))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn iface(name: &str, ips: &[&str]) -> Interface {
        let addrs: Vec<serde_json::Value> =
            ips.iter().map(|ip| json!({"ip-address-type": "ipv4", "ip-address": ip, "prefix": 24})).collect();
        serde_json::from_value(json!({"name": name, "ip-addresses": addrs})).unwrap()
    }

    #[test]
    fn the_address_chosen_skips_loopback_link_local_and_docker_bridges() {
        let ip = |s: &str| Some(s.parse::<Ipv4Addr>().unwrap());
        let cases: Vec<(Vec<Interface>, Option<Ipv4Addr>)> = vec![
            (vec![iface("lo", &["127.0.0.1"]), iface("eth0", &["10.0.0.5"])], ip("10.0.0.5")),
            (vec![iface("docker0", &["172.17.0.1"]), iface("ens18", &["192.168.1.20"])], ip("192.168.1.20")),
            (
                vec![iface("br-3f2a", &["172.18.0.1"]), iface("veth12", &["10.9.9.9"]), iface("eth0", &["10.0.0.7"])],
                ip("10.0.0.7"),
            ),
            (vec![iface("eth1", &["172.17.0.4"]), iface("eth0", &["10.0.0.8"])], ip("10.0.0.8")),
            // A guest that never got a lease: only its self-assigned address, nothing to connect to.
            (vec![iface("Loopback Pseudo-Interface 1", &["127.0.0.1"]), iface("Ethernet", &["169.254.12.7"])], None),
            (vec![iface("Ethernet", &["169.254.12.7", "10.1.2.3"])], ip("10.1.2.3")),
            (vec![iface("virbr0", &["192.168.122.1"]), iface("enp1s0", &["10.2.0.4"])], ip("10.2.0.4")),
            (vec![iface("eth0", &[])], None),
            (vec![], None),
        ];
        for (interfaces, want) in cases {
            let names: Vec<&str> = interfaces.iter().map(|i| i.name.as_str()).collect();
            assert_eq!(first_ipv4(&interfaces), want, "{names:?}");
        }
        let legacy: Interface = serde_json::from_value(json!({"name": "eth0", "inet": "10.0.0.9/24"})).unwrap();
        assert_eq!(first_ipv4(&[legacy]), ip("10.0.0.9"), "older servers: only `inet`");
    }

    #[test]
    fn the_agent_setting_follows_qemu_server_typing() {
        use AgentSetting::*;
        let cases = [
            (None, Absent),
            (Some(json!("1")), Enabled),
            (Some(json!("0")), Disabled),
            (Some(json!(1)), Enabled),
            (Some(json!("enabled=1,fstrim_cloned_disks=1")), Enabled),
            (Some(json!("enabled=0,fstrim_cloned_disks=1")), Disabled),
            (Some(json!("fstrim_cloned_disks=1")), Disabled),
            (Some(json!("1,type=isa")), Enabled),
            (Some(json!("type=virtio,enabled=yes")), Enabled),
            (Some(json!("")), Disabled),
        ];
        for (value, want) in cases {
            assert_eq!(AgentSetting::parse(value.as_ref()), want, "{value:?}");
        }
    }

    #[test]
    fn static_addresses_come_from_ipconfig0_or_a_containers_net0() {
        let ip = |s: &str| Some(s.parse::<Ipv4Addr>().unwrap());
        assert_eq!(static_ipv4_of("ip=10.1.2.3/24,gw=10.1.2.1"), ip("10.1.2.3"));
        assert_eq!(static_ipv4_of("gw=10.1.2.1,ip=10.1.2.4/24"), ip("10.1.2.4"));
        assert_eq!(static_ipv4_of("ip=dhcp"), None);
        assert_eq!(static_ipv4_of("ip6=dhcp"), None);
        assert_eq!(static_ipv4_of("ip=dhcp,ip6=2001:db8::5/64"), None);
        assert_eq!(
            static_ipv4_of("name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:CC,ip=10.0.0.5/24,type=veth"),
            ip("10.0.0.5")
        );
        assert_eq!(static_ipv4_of("name=eth0,bridge=vmbr0,ip=manual,type=veth"), None);
        assert_eq!(static_ipv4_of("virtio=BC:24:11:00:11:22,bridge=vmbr0"), None);

        let config = |extra: serde_json::Value| -> GuestConfig {
            let mut v = json!({"digest": "d", "net0": "virtio=BC:24:11:00:11:22,bridge=vmbr0"});
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            serde_json::from_value(v).unwrap()
        };
        assert_eq!(config(json!({"ipconfig0": "ip=10.7.0.9/16,gw=10.7.0.1"})).static_ipv4(), ip("10.7.0.9"));
        assert_eq!(config(json!({"ipconfig0": "ip=dhcp"})).static_ipv4(), None);
        assert_eq!(config(json!({})).static_ipv4(), None);
        assert_eq!(config(json!({"agent": "enabled=1"})).agent(), AgentSetting::Enabled);
        assert_eq!(config(json!({})).agent(), AgentSetting::Absent);
    }

    use proptest::prelude::*;

    proptest! {
        /// Any `agent` value: a setting, never a panic; a plain `1`/`0` is read as such.
        #[test]
        fn fuzz_agent_setting_never_panics(text in "[a-z0-9=, ]{0,24}|\\PC{0,12}", flag in any::<bool>(), n in any::<i64>()) {
            for value in [json!(text), json!(flag), json!(n), json!([text.clone()]), json!({"enabled": text})] {
                let _ = AgentSetting::parse(Some(&value));
            }
            let plain = json!(if flag { "1" } else { "0" });
            prop_assert_eq!(AgentSetting::parse(Some(&plain)).is_enabled(), flag);
        }

        /// A static `ip=` written the way PVE stores it reads back, wherever it sits among the other
        /// parts, when it is reachable; other text never panics.
        #[test]
        fn fuzz_static_ipv4_round_trips(
            octets in any::<[u8; 4]>(), prefix in 0u8..=32, before in any::<bool>(), noise in "\\PC{0,30}",
        ) {
            let ip = Ipv4Addr::from(octets);
            let property = if before {
                format!("ip={ip}/{prefix},gw=10.0.0.1,bridge=vmbr0")
            } else {
                format!("name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:CC,ip={ip}/{prefix},type=veth")
            };
            prop_assert_eq!(static_ipv4_of(&property), is_reachable(ip).then_some(ip));
            if let Some(found) = static_ipv4_of(&noise) {
                prop_assert!(is_reachable(found));
            }
        }
    }
}
