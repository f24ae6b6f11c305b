//! The interface lists a guest reports: LXC `interfaces` (`ip --json a` in the CT, pve-api.md §6.8) and
//! the QEMU guest agent's `network-get-interfaces` (§7), shaped by OS, `docker0` and DHCP.

use std::net::Ipv4Addr;
use std::time::Instant;

use serde_json::{Value, json};

use super::guest_net::{DockerBridge, GuestOs};
use super::state::Guest;

/// The fe80:: address derived from a MAC (EUI-64), as Linux forms it.
pub(crate) fn link_local(mac: &str) -> String {
    let b: Vec<u16> = mac.split(':').filter_map(|x| u16::from_str_radix(x, 16).ok()).collect();
    if b.len() != 6 {
        return "fe80::1".into();
    }
    format!(
        "fe80::{:x}:{:x}:{:x}:{:x}",
        ((b[0] ^ 2) << 8) | b[1],
        (b[2] << 8) | 0xff,
        0xfe00 | b[3],
        (b[4] << 8) | b[5]
    )
}

/// A stable pseudo-random number per guest and purpose (Windows' random interface ids, counters).
fn mix(vmid: u64, salt: u64) -> u64 {
    let mut x = vmid.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED03);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 32)
}

/// The NIC's MAC, lower-case: LXC `hwaddr=`, QEMU `<model>=` in `net0`.
fn nic_mac(g: &Guest) -> String {
    let net0 = g.config.get("net0").map(String::as_str).unwrap_or_default();
    let mac = net0
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(_, v)| v)
        .find(|v| v.len() == 17 && v.matches(':').count() == 5);
    mac.unwrap_or("bc:24:11:00:00:01").to_lowercase()
}

/// `docker0`'s MAC: Docker's `02:42:` prefix.
fn docker_mac(g: &Guest) -> String {
    let b = mix(g.vmid, 7).to_be_bytes();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
}

/// Linux QEMU guests name their NIC `ens18` (predictable names) unless the image keeps `eth0`.
fn linux_nic_name(g: &Guest) -> &'static str {
    if g.vmid.is_multiple_of(3) { "eth0" } else { "ens18" }
}

fn stats(g: &Guest, salt: u64) -> Value {
    let up = g.started_at.map_or(0, |s| s.elapsed().as_secs()) + 1;
    let rate = mix(g.vmid, salt) % 5_000 + 100;
    json!({"rx-bytes": up * rate * 3, "rx-dropped": 0, "rx-errs": 0, "rx-packets": up * rate / 400 + 1,
           "tx-bytes": up * rate, "tx-dropped": 0, "tx-errs": 0, "tx-packets": up * rate / 900 + 1})
}

fn qga(ip: &str, v6: bool, prefix: u8) -> Value {
    json!({"ip-address": ip, "ip-address-type": if v6 { "ipv6" } else { "ipv4" }, "prefix": prefix})
}

/// The agent's `result` for a running guest whose agent answers.
pub(crate) fn agent_result(g: &Guest, now: Instant) -> Value {
    let mac = nic_mac(g);
    let nic_v4 = g.nic_ipv4(now);
    match g.os {
        GuestOs::Windows => {
            // GetAdaptersAddresses order: the NIC, then the loopback (no MAC); IPv6 first, with its
            // scope id, and a random interface id rather than EUI-64.
            let r = mix(g.vmid, 3);
            let ll = format!(
                "fe80::{:x}:{:x}:{:x}:{:x}%{}",
                (r >> 48) & 0xffff | 0x100,
                (r >> 32) & 0xffff,
                (r >> 16) & 0xffff,
                r & 0xffff,
                r % 9 + 3
            );
            let mut addrs = vec![qga(&ll, true, 64)];
            addrs.extend(nic_v4.map(|(ip, p)| qga(&ip.to_string(), false, p)));
            json!([
                {"name": "Ethernet", "hardware-address": mac, "ip-addresses": addrs, "statistics": stats(g, 1)},
                {"name": "Loopback Pseudo-Interface 1",
                 "ip-addresses": [qga("::1", true, 128), qga("127.0.0.1", false, 8)],
                 "statistics": {"rx-bytes": 0, "rx-dropped": 0, "rx-errs": 0, "rx-packets": 0,
                                "tx-bytes": 0, "tx-dropped": 0, "tx-errs": 0, "tx-packets": 0}},
            ])
        }
        GuestOs::Linux => {
            let mut addrs: Vec<Value> = nic_v4.map(|(ip, p)| qga(&ip.to_string(), false, p)).into_iter().collect();
            addrs.push(qga(&link_local(&mac), true, 64));
            let nic = json!({"name": linux_nic_name(g), "hardware-address": mac, "ip-addresses": addrs,
                             "statistics": stats(g, 1)});
            let lo = json!({"name": "lo", "hardware-address": "00:00:00:00:00:00",
                            "ip-addresses": [qga("127.0.0.1", false, 8), qga("::1", true, 128)],
                            "statistics": stats(g, 2)});
            let docker = json!({"name": "docker0", "hardware-address": docker_mac(g),
                                "ip-addresses": [qga("172.17.0.1", false, 16)], "statistics": stats(g, 4)});
            match g.docker {
                DockerBridge::Absent => json!([lo, nic]),
                DockerBridge::BeforeNic => json!([lo, docker, nic]),
                DockerBridge::AfterNic => json!([lo, nic, docker]),
            }
        }
    }
}

/// One `ip --json a` entry as PVE reshapes it: `inet`/`inet6` hold the last address of that family.
fn ip_a(name: &str, mac: &str, v4: Option<(Ipv4Addr, u8)>, v6: Option<(&str, u8)>) -> Value {
    let mut addrs = vec![];
    let mut entry = json!({"name": name, "hwaddr": mac, "hardware-address": mac});
    if let Some((ip, p)) = v4 {
        addrs.push(json!({"ip-address-type": "inet", "ip-address": ip.to_string(), "prefix": p}));
        entry["inet"] = json!(format!("{ip}/{p}"));
    }
    if let Some((ip, p)) = v6 {
        addrs.push(json!({"ip-address-type": "inet6", "ip-address": ip, "prefix": p}));
        entry["inet6"] = json!(format!("{ip}/{p}"));
    }
    entry["ip-addresses"] = json!(addrs);
    entry
}

/// LXC `interfaces` of a running CT: `lo`, `eth0` (IPv4 once leased, at once when static, never when
/// DHCP does not answer), `docker0` last (interface index order).
pub(crate) fn lxc_interfaces(g: &Guest, now: Instant) -> Value {
    let mac = nic_mac(g);
    let ll = link_local(&mac);
    let mut out = vec![
        ip_a("lo", "00:00:00:00:00:00", Some((Ipv4Addr::LOCALHOST, 8)), Some(("::1", 128))),
        ip_a("eth0", &mac, g.nic_ipv4(now), Some((&ll, 64))),
    ];
    if g.docker != DockerBridge::Absent {
        out.push(ip_a("docker0", &docker_mac(g), Some((Ipv4Addr::new(172, 17, 0, 1), 16)), None));
    }
    Value::Array(out)
}
