//! A catalog entry as an admin enters it, and the checks that need no cluster: each kind's required
//! fields, the shape of every name, the address pool. What PVE must confirm is in `verify.rs`.

use std::net::Ipv4Addr;

use crate::domain::guest::{Ipv4Pool, MachineKind};
use crate::domain::values::{Hostname, bounded_text};
use crate::domain::{FieldError, FieldErrors};

/// Default `net0` of containers: DHCP on vmbr0.
pub const DEFAULT_NET0: &str = "name=eth0,bridge=vmbr0,ip=dhcp";
pub const FINISH_MODES: [&str; 3] = ["node", "guest", "none"];
/// PVE's `ostype` enum (qemu-server `$confdesc`, pve-qemu-day2.md §1.2).
pub const OSTYPES: [&str; 13] =
    ["l26", "l24", "win11", "win10", "win8", "win7", "wvista", "w2k8", "w2k3", "w2k", "wxp", "solaris", "other"];

/// The highest per-entry snapshot limit an admin may set (PVE itself has none; each one holds disk).
pub const SNAPSHOT_LIMIT_MAX: i32 = 100;

/// A catalog entry as an admin enters it. Lists hold what the admin picked from discovery.
#[derive(Debug, Clone)]
pub struct TemplateInput {
    pub name: String,
    pub description: String,
    pub kind: MachineKind,
    /// The node of the template guest (cloned kinds); ISO entries use the first of `nodes`.
    pub node: String,
    /// The template guest's VMID (cloned kinds); unused by ISO entries.
    pub vmid: i64,
    /// ISO entries: the nodes new VMs may be placed on.
    pub nodes: Vec<String>,
    /// Storages a requester may pick (full clones' target, ISO VMs' disk); empty: the template's own.
    pub storages: Vec<String>,
    /// Bridges a requester may pick for `net0`; empty: the template's `net0` as it is.
    pub bridges: Vec<String>,
    /// ISO entries: the installer images a requester may pick (`local:iso/…`).
    pub isos: Vec<String>,
    /// ISO entries: PVE's `ostype` of new VMs.
    pub ostype: String,
    /// Cloud-init entries: static addresses `first-last/prefix`; `None` = DHCP.
    pub ip_pool: Option<String>,
    /// Cloud-init entries with a pool: the gateway.
    pub gateway: Option<String>,
    pub default_cores: i32,
    pub max_cores: i32,
    pub default_memory_mib: i32,
    pub max_memory_mib: i32,
    pub default_disk_gib: i32,
    pub max_disk_gib: i32,
    pub full_clone: bool,
    pub enabled: bool,
    /// `net0` property string of new containers (LXC entries).
    pub net0: String,
    /// `node`, `guest` or `none`.
    pub finish_mode: String,
    /// Snapshots each machine may keep; `None`: the `snapshot_limit_default` config key.
    pub snapshot_limit: Option<i32>,
    /// Lease of new machines in days; `None`: the `lease_default_days` config key.
    pub lease_days: Option<i32>,
    /// Longest lease an owner may extend to, in days; `None`: the `lease_max_days` config key.
    pub lease_max_days: Option<i32>,
    /// Names of the groups whose approvals a request needs, in order (empty: admins decide alone);
    /// `None` keeps the entry's stages as they are.
    pub approval_stages: Option<Vec<String>>,
}

impl Default for TemplateInput {
    fn default() -> Self {
        TemplateInput {
            name: String::new(),
            description: String::new(),
            kind: MachineKind::Lxc,
            node: String::new(),
            vmid: 0,
            nodes: vec![],
            storages: vec![],
            bridges: vec![],
            isos: vec![],
            ostype: "l26".into(),
            ip_pool: None,
            gateway: None,
            default_cores: 1,
            max_cores: 4,
            default_memory_mib: 1024,
            max_memory_mib: 8192,
            default_disk_gib: 8,
            max_disk_gib: 64,
            full_clone: true,
            enabled: true,
            net0: DEFAULT_NET0.into(),
            finish_mode: "node".into(),
            snapshot_limit: None,
            lease_days: None,
            lease_max_days: None,
            approval_stages: None,
        }
    }
}

/// An entry that passed every check of this module, in the shape it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidTemplate {
    pub name: String,
    pub description: String,
    pub kind: MachineKind,
    pub node: String,
    pub vmid: i64,
    /// Empty unless the entry is an ISO entry.
    pub nodes: Vec<String>,
    pub storages: Vec<String>,
    pub bridges: Vec<String>,
    pub isos: Vec<String>,
    pub ostype: String,
    pub ip_pool: Option<Ipv4Pool>,
    pub gateway: Option<Ipv4Addr>,
    pub net0: String,
    pub finish_mode: String,
    pub snapshot_limit: Option<i32>,
    pub lease_days: Option<i32>,
    pub lease_max_days: Option<i32>,
}

impl ValidTemplate {
    /// The nodes machines of this entry may land on: the template's, or the ISO entry's list.
    pub fn placement(&self) -> Vec<String> {
        if self.kind.is_cloned() { vec![self.node.clone()] } else { self.nodes.clone() }
    }
}

fn storage_id(s: &str) -> bool {
    s.len() <= 100
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A Linux interface name (bridges, SDN vnets): at most 15 bytes.
fn bridge_name(s: &str) -> bool {
    (1..=15).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `<storage>:iso/<file>.iso|.img`, without anything that would break the comma list it is stored in.
fn iso_volid(s: &str) -> bool {
    let Some((storage, path)) = s.split_once(':') else { return false };
    let Some(file) = path.strip_prefix("iso/") else { return false };
    let lower = file.to_ascii_lowercase();
    storage_id(storage)
        && !file.is_empty()
        && file.len() <= 255
        && (lower.ends_with(".iso") || lower.ends_with(".img"))
        && !file.contains(['/', ',', '\\'])
        && !file.starts_with('.')
        && !file.chars().any(char::is_control)
}

/// Trims, drops blanks and repeats (first one wins), and records one error for the first bad item.
fn list(
    errors: &mut FieldErrors,
    field: &'static str,
    code: &'static str,
    items: &[String],
    ok: fn(&str) -> bool,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        if !ok(item) {
            errors.push(FieldError::new(field, code).with("name", item));
            return out;
        }
        if !out.iter().any(|o| o == item) {
            out.push(item.to_owned());
        }
    }
    out
}

fn node_name(errors: &mut FieldErrors, field: &'static str, raw: &str) -> Option<String> {
    errors.take(
        Hostname::parse(raw).map(|h| h.as_str().to_owned()).map_err(|_| FieldError::new(field, "error.node_invalid")),
    )
}

/// Every problem of `input` that can be seen without asking PVE, all at once.
pub fn validate(input: &TemplateInput) -> Result<ValidTemplate, FieldErrors> {
    let mut errors = FieldErrors::default();
    let kind = input.kind;
    let name = errors.take(bounded_text("name", &input.name, 1, 100));
    let description = errors.take(bounded_text("description", &input.description, 0, 2000));
    for (field, default, max) in [
        ("default_cores", input.default_cores, input.max_cores),
        ("default_memory_mib", input.default_memory_mib, input.max_memory_mib),
        ("default_disk_gib", input.default_disk_gib, input.max_disk_gib),
    ] {
        if default < 1 {
            errors.push(FieldError::new(field, "error.at_least").with("min", 1));
        } else if default > max {
            errors.push(FieldError::new(field, "error.default_above_max"));
        }
    }
    let storages = list(&mut errors, "storages", "error.storage_invalid", &input.storages, storage_id);
    let bridges = list(&mut errors, "bridges", "error.bridge_invalid", &input.bridges, bridge_name);
    let isos = list(&mut errors, "isos", "error.iso_invalid", &input.isos, iso_volid);
    let mut nodes = Vec::new();
    for raw in input.nodes.iter().filter(|n| !n.trim().is_empty()) {
        match node_name(&mut errors, "nodes", raw) {
            Some(n) if !nodes.contains(&n) => nodes.push(n),
            Some(_) => {}
            None => break,
        }
    }
    let finish = input.finish_mode.as_str();
    if !FINISH_MODES.contains(&finish) {
        errors.push(FieldError::new("finish_mode", "error.choice_invalid"));
    } else if kind != MachineKind::Lxc && finish == "node" {
        // `pct exec` reaches into containers only.
        errors.push(FieldError::new("finish_mode", "error.finish_node_lxc_only"));
    } else if kind == MachineKind::QemuIso && finish != "none" {
        // The VM boots an installer: there is no system to log into until the owner installs one.
        errors.push(FieldError::new("finish_mode", "error.finish_iso_none"));
    }
    let not_for_kind = |errors: &mut FieldErrors, field: &'static str| {
        errors.push(FieldError::new(field, "error.not_for_kind").with("kind", kind.as_str()));
    };

    let mut vmid = 0;
    let node;
    if kind.is_cloned() {
        node = node_name(&mut errors, "node", &input.node);
        vmid = input.vmid;
        if !(100..=999_999_999).contains(&vmid) {
            errors.push(FieldError::new("vmid", "error.vmid_range"));
        }
        // A cloned entry's machines stay on the template's node.
        if !(nodes.is_empty() || node.as_ref().is_some_and(|n| nodes == [n.clone()])) {
            not_for_kind(&mut errors, "nodes");
        }
        nodes.clear();
        if !isos.is_empty() {
            not_for_kind(&mut errors, "isos");
        }
        // PVE's clone takes a target storage for full clones only.
        if !input.full_clone && !storages.is_empty() {
            errors.push(FieldError::new("storages", "error.storages_need_full_clone"));
        }
    } else {
        for (field, empty) in [
            ("nodes", nodes.is_empty()),
            ("storages", storages.is_empty()),
            ("bridges", bridges.is_empty()),
            ("isos", isos.is_empty()),
        ] {
            if empty && !errors.0.iter().any(|e| e.field == field) {
                errors.push(FieldError::new(field, "error.choose_at_least_one"));
            }
        }
        node = nodes.first().cloned();
    }
    let ostype = input.ostype.trim().to_owned();
    if kind == MachineKind::QemuIso && !OSTYPES.contains(&ostype.as_str()) {
        errors.push(FieldError::new("ostype", "error.choice_invalid"));
    }

    let net0 = input.net0.trim().to_owned();
    if kind == MachineKind::Lxc && (net0.is_empty() || net0.contains(['\n', '\r']) || !net0.contains("name=")) {
        errors.push(FieldError::new("net0", "error.net0_invalid"));
    }

    if input.snapshot_limit.is_some_and(|n| !(0..=SNAPSHOT_LIMIT_MAX).contains(&n)) {
        errors.push(FieldError::new("snapshot_limit", "error.snapshot_limit_range").with("max", SNAPSHOT_LIMIT_MAX));
    }

    let lease_max = crate::domain::lease::LEASE_DAYS_LIMIT as i32;
    for (field, days) in [("lease_days", input.lease_days), ("lease_max_days", input.lease_max_days)] {
        if days.is_some_and(|n| !(1..=lease_max).contains(&n)) {
            errors.push(FieldError::new(field, "error.lease_days").with("max", lease_max));
        }
    }
    if let (Some(d), Some(m)) = (input.lease_days, input.lease_max_days)
        && m < d
    {
        errors.push(FieldError::new("lease_max_days", "error.lease_max_below_default"));
    }

    let raw_pool = input.ip_pool.as_deref().map(str::trim).filter(|p| !p.is_empty());
    let raw_gateway = input.gateway.as_deref().map(str::trim).filter(|g| !g.is_empty());
    let (mut ip_pool, mut gateway) = (None, None);
    if kind == MachineKind::QemuCloudInit {
        if let Some(raw) = raw_pool {
            ip_pool = errors.take(Ipv4Pool::parse(raw).ok_or(FieldError::new("ip_pool", "error.ip_pool_invalid")));
        }
        if let Some(raw) = raw_gateway {
            match (raw.parse::<Ipv4Addr>(), raw_pool, ip_pool) {
                (Err(_), ..) => errors.push(FieldError::new("gateway", "error.gateway_invalid")),
                (Ok(_), None, _) => errors.push(FieldError::new("gateway", "error.gateway_needs_pool")),
                (Ok(gw), Some(_), Some(pool)) if !pool.same_network(gw) => {
                    errors.push(FieldError::new("gateway", "error.gateway_outside_pool").with("pool", pool))
                }
                (Ok(gw), ..) => gateway = Some(gw),
            }
        }
    } else {
        if raw_pool.is_some() {
            not_for_kind(&mut errors, "ip_pool");
        }
        if raw_gateway.is_some() {
            not_for_kind(&mut errors, "gateway");
        }
    }
    errors.into_result()?;
    Ok(ValidTemplate {
        name: name.unwrap_or_default(),
        description: description.unwrap_or_default(),
        kind,
        node: node.unwrap_or_default(),
        vmid,
        nodes,
        storages,
        bridges,
        isos,
        ostype: if kind == MachineKind::QemuIso { ostype } else { "l26".into() },
        ip_pool,
        gateway,
        // Only containers take `net0` from the entry; VMs keep their template's, or get one on a bridge.
        net0: if kind == MachineKind::Lxc { net0 } else { String::new() },
        finish_mode: input.finish_mode.clone(),
        snapshot_limit: input.snapshot_limit,
        lease_days: input.lease_days,
        lease_max_days: input.lease_max_days,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(r: Result<ValidTemplate, FieldErrors>) -> Vec<(&'static str, &'static str)> {
        r.err().map(|e| e.0.into_iter().map(|e| (e.field, e.code)).collect()).unwrap_or_default()
    }

    fn lxc() -> TemplateInput {
        TemplateInput { name: "Debian".into(), node: "pve1".into(), vmid: 9000, ..Default::default() }
    }

    fn iso() -> TemplateInput {
        TemplateInput {
            name: "Installer".into(),
            kind: MachineKind::QemuIso,
            nodes: vec!["pve1".into(), "pve2".into()],
            storages: vec!["local-lvm".into()],
            bridges: vec!["vmbr0".into()],
            isos: vec!["local:iso/debian-12.iso".into()],
            finish_mode: "none".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_container_entry_is_checked_as_before() {
        let v = validate(&lxc()).unwrap();
        assert_eq!((v.node.as_str(), v.vmid, v.net0.as_str()), ("pve1", 9000, DEFAULT_NET0));
        let bad = TemplateInput { vmid: 5, net0: "bridge=vmbr0".into(), ..lxc() };
        assert_eq!(codes(validate(&bad)), [("vmid", "error.vmid_range"), ("net0", "error.net0_invalid")]);
        let iso_on_lxc = TemplateInput { isos: vec!["local:iso/a.iso".into()], ip_pool: Some("x".into()), ..lxc() };
        assert_eq!(codes(validate(&iso_on_lxc)), [("isos", "error.not_for_kind"), ("ip_pool", "error.not_for_kind")]);
    }

    #[test]
    fn an_iso_entry_needs_a_choice_of_each_and_no_template() {
        let v = validate(&iso()).unwrap();
        assert_eq!((v.node.as_str(), v.vmid, v.ostype.as_str()), ("pve1", 0, "l26"));
        assert_eq!(v.placement(), ["pve1", "pve2"]);
        let empty = TemplateInput { nodes: vec![], storages: vec![], bridges: vec![" ".into()], isos: vec![], ..iso() };
        assert_eq!(
            codes(validate(&empty)),
            [
                ("nodes", "error.choose_at_least_one"),
                ("storages", "error.choose_at_least_one"),
                ("bridges", "error.choose_at_least_one"),
                ("isos", "error.choose_at_least_one")
            ]
        );
        let wrong = TemplateInput { ostype: "linux".into(), finish_mode: "guest".into(), ..iso() };
        assert_eq!(
            codes(validate(&wrong)),
            [("finish_mode", "error.finish_iso_none"), ("ostype", "error.choice_invalid")]
        );
    }

    #[test]
    fn names_that_would_break_a_comma_list_or_a_path_are_refused() {
        for (field, bad) in [
            ("isos", TemplateInput { isos: vec!["local:iso/a,b.iso".into()], ..iso() }),
            ("isos", TemplateInput { isos: vec!["local:iso/../etc/passwd.iso".into()], ..iso() }),
            ("isos", TemplateInput { isos: vec!["local:vztmpl/debian.tar.zst".into()], ..iso() }),
            ("storages", TemplateInput { storages: vec!["local lvm".into()], ..iso() }),
            ("bridges", TemplateInput { bridges: vec!["a-bridge-name-too-long".into()], ..iso() }),
            ("nodes", TemplateInput { nodes: vec!["pve 1".into()], ..iso() }),
        ] {
            assert_eq!(codes(validate(&bad)).first().map(|c| c.0), Some(field), "{bad:?}");
        }
        let repeated = TemplateInput { bridges: vec!["vmbr0".into(), "vmbr1".into(), "vmbr0".into()], ..iso() };
        assert_eq!(validate(&repeated).unwrap().bridges, ["vmbr0", "vmbr1"]);
    }

    #[test]
    fn cloud_init_pools_and_gateways_must_agree() {
        let ci = |pool: Option<&str>, gw: Option<&str>| TemplateInput {
            kind: MachineKind::QemuCloudInit,
            vmid: 9100,
            finish_mode: "none".into(),
            ip_pool: pool.map(Into::into),
            gateway: gw.map(Into::into),
            ..lxc()
        };
        let v = validate(&ci(Some("192.0.2.100-192.0.2.150/24"), Some("192.0.2.1"))).unwrap();
        assert_eq!(v.ip_pool.unwrap().to_string(), "192.0.2.100-192.0.2.150/24");
        assert_eq!(v.net0, "");
        assert!(validate(&ci(None, None)).unwrap().ip_pool.is_none());
        assert_eq!(codes(validate(&ci(Some("192.0.2.100/24"), None))), [("ip_pool", "error.ip_pool_invalid")]);
        assert_eq!(codes(validate(&ci(None, Some("192.0.2.1")))), [("gateway", "error.gateway_needs_pool")]);
        assert_eq!(
            codes(validate(&ci(Some("192.0.2.100-192.0.2.150/24"), Some("198.51.100.1")))),
            [("gateway", "error.gateway_outside_pool")]
        );
        assert_eq!(
            codes(validate(&ci(Some("192.0.2.100-192.0.2.150/24"), Some("192.0.2.300")))),
            [("gateway", "error.gateway_invalid")]
        );
        let node_finish = TemplateInput { finish_mode: "node".into(), ..ci(None, None) };
        assert_eq!(codes(validate(&node_finish)), [("finish_mode", "error.finish_node_lxc_only")]);
        let linked = TemplateInput { full_clone: false, storages: vec!["local-lvm".into()], ..ci(None, None) };
        assert_eq!(codes(validate(&linked)), [("storages", "error.storages_need_full_clone")]);
    }
}
