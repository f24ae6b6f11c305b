//! proptest fuzz of the PVE answers proxdesk reads: JSON shaped like PVE's with random values in the
//! known keys, and the lenient number rules (pve-api.md §1).

use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::*;

/// Any JSON value, small: scalars of every kind, and shallow arrays and objects of them.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof!["\\PC{0,12}", "[0-9 .+-]{0,8}", "(NaN|inf|-inf|infinity|1e400)"].prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z-]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object holding some of `keys` (with any values) and maybe a stray key.
fn object_with(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    (prop::collection::vec((prop::sample::select(keys), any_json()), 0..keys.len() + 2), any_json()).prop_map(
        |(pairs, stray)| {
            let mut m: Map<String, Value> = pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            m.insert("x-stray".into(), stray);
            Value::Object(m)
        },
    )
}

/// Deserialising may fail, never panic; what it returns is used the way the services use it.
fn read<T: DeserializeOwned>(v: &Value) -> Option<T> {
    serde_json::from_value(v.clone()).ok()
}

const GUEST: &[&str] = &[
    "vmid",
    "status",
    "name",
    "template",
    "lock",
    "tags",
    "cpus",
    "maxmem",
    "maxdisk",
    "uptime",
    "pid",
    "qmpstatus",
    "agent",
    "id",
    "type",
    "node",
    "pool",
    "storage",
    "cpu",
    "maxcpu",
    "mem",
    "disk",
];
const CONFIG: &[&str] = &[
    "hostname",
    "name",
    "cores",
    "memory",
    "swap",
    "rootfs",
    "net0",
    "description",
    "tags",
    "onboot",
    "template",
    "lock",
    "digest",
    "agent",
    "ipconfig0",
    "serial0",
    "sshkeys",
];
const TASK: &[&str] = &["upid", "node", "type", "id", "user", "tokenid", "status", "exitstatus", "starttime", "n", "t"];
const IFACE: &[&str] = &["name", "hwaddr", "hardware-address", "inet", "inet6", "ip-addresses", "result"];
const RRD: &[&str] = &[
    "time",
    "cpu",
    "maxcpu",
    "mem",
    "maxmem",
    "disk",
    "maxdisk",
    "netin",
    "netout",
    "diskread",
    "diskwrite",
    "memhost",
    "status",
    "qmpstatus",
];
const MISC: &[&str] = &[
    "user",
    "ticket",
    "port",
    "upid",
    "cert",
    "password",
    "volid",
    "content",
    "format",
    "size",
    "approximate-size",
    "iface",
    "type",
    "active",
    "cidr",
    "name",
    "parent",
    "snaptime",
    "description",
    "vmstate",
    "snapstate",
];

/// A string of digits as PVE sends some numbers, or a JSON number; `Some(n)` when it is the id `n`.
fn number_like() -> impl Strategy<Value = (Value, Option<u64>)> {
    prop_oneof![
        any::<u64>().prop_map(|n| (json!(n), Some(n))),
        any::<i64>().prop_map(|n| (json!(n), u64::try_from(n).ok())),
        (0u64..1 << 52).prop_map(|n| (json!(n as f64), Some(n))),
        (-1e6f64..1e6).prop_map(|f| (json!(f), (f.fract() == 0.0 && f >= 0.0).then_some(f as u64))),
        any::<u64>().prop_map(|n| (json!(format!(" {n} ")), Some(n))),
        "-[1-9][0-9]{0,5}|[0-9]{1,4}\\.[1-9]|[a-z]{1,4}|".prop_map(|s| (json!(s), None)),
    ]
}

proptest! {
    /// A vmid, port or size is the whole non-negative number sent, as a number or a string; anything
    /// else (negative, fractional, text) is refused rather than read as 0 or truncated.
    #[test]
    fn fuzz_lenient_numbers_are_exact_or_refused((value, want) in number_like()) {
        let got = read::<GuestStatus>(&json!({"vmid": value, "status": "running"})).map(|g| g.vmid);
        prop_assert_eq!(got, want, "{}", value);
        let got = read::<ClusterResource>(&json!({"id": "qemu/1", "type": "qemu", "maxmem": value})).map(|r| r.maxmem);
        prop_assert_eq!(got, want.map(Some), "{}", value);
    }

    #[test]
    fn fuzz_guest_answers_never_panic(v in object_with(GUEST)) {
        if let Some(g) = read::<GuestStatus>(&v) {
            let _ = (g.is_running(), g.is_template());
        }
        let _ = read::<ClusterResource>(&v);
        let _ = read::<Vec<GuestStatus>>(&Value::Array(vec![v.clone(), v]));
    }

    /// Config values (`net0`, `rootfs`, `serial0`, `agent`, `ipconfig0`…) of any shape: the readers of
    /// the agent setting and of a static address never panic and only give reachable addresses.
    #[test]
    fn fuzz_guest_config_never_panics(v in object_with(CONFIG), digest in "[0-9a-f]{0,40}") {
        let mut v = v;
        v["digest"] = json!(digest);
        if let Some(c) = read::<GuestConfig>(&v) {
            let _ = c.agent();
            if let Some(ip) = c.static_ipv4() {
                prop_assert!(crate::integrations::pve::address::is_reachable(ip));
            }
            if let Some(keys) = c.other.get("sshkeys").and_then(Value::as_str) {
                prop_assert!(decode_sshkeys(keys).iter().all(|k| !k.trim().is_empty()));
            }
        }
    }

    #[test]
    fn fuzz_task_answers_never_panic(v in object_with(TASK)) {
        let _ = read::<TaskStatus>(&v);
        let _ = read::<TaskListEntry>(&v);
        let _ = read::<Vec<TaskLogLine>>(&Value::Array(vec![v]));
    }

    /// Interfaces with random addresses: the address picked is always one the guest listed and reachable.
    #[test]
    fn fuzz_interfaces_never_panic(v in object_with(IFACE), addrs in prop::collection::vec(
        (prop_oneof![Just("ipv4".to_owned()), Just("inet".to_owned()), Just("ipv6".to_owned()), "[a-z]{0,4}"], prop_oneof![
            any::<[u8; 4]>().prop_map(|o| std::net::Ipv4Addr::from(o).to_string()), "[0-9./a-f:]{0,18}"]),
        0..4,
    )) {
        let mut with_addrs = v.clone();
        with_addrs["ip-addresses"] = addrs.iter().map(|(k, a)| json!({"ip-address-type": k, "ip-address": a})).collect();
        with_addrs["name"] = json!("eth0");
        for candidate in [v, with_addrs] {
            let _ = read::<AgentInterfaces>(&candidate);
            if let Some(i) = read::<Interface>(&candidate) {
                let all = i.ipv4_addresses();
                if let Some(ip) = first_ipv4(std::slice::from_ref(&i)) {
                    prop_assert!(all.contains(&ip) && crate::integrations::pve::address::is_reachable(ip));
                }
            }
        }
    }

    /// RRD rows and live usage: every counter read is a finite number (no `NaN` from `"NaN"`).
    #[test]
    fn fuzz_rrd_rows_hold_finite_numbers(v in object_with(RRD), time in any::<u32>(), key in prop::sample::select(RRD), odd in "(NaN|inf|-inf|infinity|1e400)") {
        let mut v = v;
        v[key] = json!(odd);
        v["time"] = json!(time);
        if let Some(p) = read::<RrdPoint>(&v) {
            let all = [p.cpu, p.maxcpu, p.mem, p.maxmem, p.disk, p.maxdisk, p.netin, p.netout, p.diskread, p.diskwrite, p.memhost];
            prop_assert!(all.iter().flatten().all(|n| n.is_finite()), "{:?}", p);
        }
        if let Some(u) = read::<GuestUsage>(&v) {
            prop_assert!([u.cpu, u.mem, u.netin, u.uptime].iter().flatten().all(|n| n.is_finite()), "{:?}", u);
        }
    }

    #[test]
    fn fuzz_other_answers_never_panic(v in object_with(MISC)) {
        let _ = read::<ConsoleTicket>(&v);
        if let Some(item) = read::<StorageContentItem>(&v) {
            let _ = (item.file_name(), item.bytes());
        }
        let _ = read::<NetworkInterface>(&v);
        let _ = read::<SnapshotEntry>(&v);
        let _ = read::<Version>(&v);
        let _ = read::<Node>(&v);
        let _ = read::<Storage>(&v);
        let _ = read::<TicketAnswer>(&v);
        let _ = read::<Permissions>(&v);
    }

    /// `sshkeys`: what proxdesk encodes decodes back to the same keys, and any stored text decodes.
    #[test]
    fn fuzz_sshkeys_round_trip(keys in prop::collection::vec("[ -~]{0,30}", 0..4), stored in "\\PC{0,40}") {
        let want: Vec<String> = keys.iter().map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()).collect();
        prop_assert_eq!(decode_sshkeys(&encode_sshkeys(&keys)), want);
        let _ = decode_sshkeys(&stored);
    }
}
