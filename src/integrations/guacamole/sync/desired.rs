//! The desired state: one SSH connection per provisioned machine (owned by its requester) and the
//! connections noted VMs ask for, grouped per VM where a VM has several.

use std::collections::{BTreeMap, BTreeSet};

use super::machines::{MachineGuest, machine_guest};
use super::{AgentSilence, DesiredConnection, DesiredState, Diagnostic, MARKER_PARAM, ProvisionedMachine, VmInfo};
use crate::integrations::guacamole::notes::{FernetKey, Protocol, Severity, VmContext, note_connections};
use crate::secrets::Secret;

/// What the desired state depends on besides the inputs.
#[derive(Debug, Clone, Default)]
pub struct DesiredSettings {
    /// Key of encrypted notes passwords (`PROXDESK_NOTES_KEY`).
    pub notes_key: Option<FernetKey>,
    /// Short host name of the machine running the sync (`{hostname}` in name templates).
    pub host: String,
    /// Whether missing owners become Guacamole users.
    pub create_users: bool,
}

impl DesiredSettings {
    /// Settings from the Guacamole settings and this machine's host name.
    pub fn from_settings(settings: &crate::integrations::guacamole::GuacSettings) -> Self {
        DesiredSettings {
            notes_key: settings.notes_key.as_ref().map(FernetKey::from_passphrase),
            host: short_hostname(),
            create_users: settings.create_users,
        }
    }
}

/// This machine's host name up to the first dot.
pub fn short_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().split('.').next().unwrap_or_default().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "proxdesk".into())
}

/// The VM a marker names (`vm=<id>`), for markers made by [`marker`].
pub(crate) fn marker_vmid(marker: &str) -> Option<u32> {
    marker.split(' ').find_map(|part| part.strip_prefix("vm="))?.parse().ok()
}

fn marker(source: &str, vmid: u32, protocol: Protocol, user: &str) -> String {
    // The user goes last, so any character in it keeps the marker unambiguous.
    format!("proxdesk/1 {source} vm={vmid} proto={} user={user}", protocol.as_str())
}

fn params(
    host: Option<&str>,
    port: u16,
    user: &str,
    password: &Secret<String>,
    marker: &str,
) -> BTreeMap<String, Secret<String>> {
    let mut p = BTreeMap::new();
    if let Some(h) = host {
        p.insert("hostname".to_owned(), Secret::new(h.to_owned()));
    }
    p.insert("port".into(), Secret::new(port.to_string()));
    p.insert("username".into(), Secret::new(user.to_owned()));
    // Guacamole stores only non-empty values (§3): an empty password would read back as absent.
    if !password.expose().is_empty() {
        p.insert("password".into(), password.clone());
    }
    p.insert(MARKER_PARAM.into(), Secret::new(marker.to_owned()));
    p
}

/// Builds the desired state. Problems (bad notes entries, duplicates) become diagnostics; they never
/// stop the others.
pub fn desired(
    machines: &[ProvisionedMachine],
    vms: &[VmInfo],
    settings: &DesiredSettings,
) -> (DesiredState, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let mut wanted: Vec<DesiredConnection> = Vec::new();
    let mut vm_names: BTreeMap<u32, String> = BTreeMap::new();
    // The address PVE reports now wins over the one recorded at provisioning: DHCP leases change.
    let live_ip: BTreeMap<u32, &str> = vms.iter().filter_map(|v| Some((v.vmid, v.ipv4.as_deref()?))).collect();
    let mut held = std::collections::BTreeSet::new();
    for m in machines {
        match machine_guest(m, vms) {
            MachineGuest::Found(_) => {}
            // The guest's own VM entry holds it and says why.
            MachineGuest::Unread(_) => continue,
            MachineGuest::Gone => {
                let message = format!(
                    "machine {}: Proxmox VE lists no guest {} on node {} any more; it has no connection",
                    m.machine_id, m.vmid, m.node
                );
                diagnostics.push(Diagnostic::about(Some(m.vmid), Severity::Warning, message));
                continue;
            }
            MachineGuest::Foreign(vm) => {
                let message = format!(
                    "machine {}: guest {} ({}) does not carry the marker of request {}: the VMID now names \
                     another guest, so the machine has no connection",
                    m.machine_id, vm.vmid, vm.name, m.request_id
                );
                diagnostics.push(Diagnostic::about(Some(m.vmid), Severity::Error, message));
                continue;
            }
        }
        vm_names.entry(m.vmid).or_insert_with(|| m.hostname.clone());
        let Some(password) = &m.password else {
            held.insert(m.vmid);
            let message = format!(
                "machine {}: its stored password does not open with this instance's key; its connection is kept as it is",
                m.machine_id
            );
            diagnostics.push(Diagnostic::about(Some(m.vmid), Severity::Warning, message));
            continue;
        };
        let mk = marker(&format!("machine={}", m.machine_id), m.vmid, Protocol::Ssh, &m.login_user);
        let ip = live_ip.get(&m.vmid).copied().or(m.ipv4.as_deref());
        if ip.is_none() && m.address_required {
            continue;
        }
        wanted.push(DesiredConnection {
            parameters: params(ip, 22, &m.login_user, password, &mk),
            marker: mk,
            vmid: m.vmid,
            name: format!("{} (SSH)", m.hostname),
            protocol: Protocol::Ssh,
            group: None,
            owner: Some(m.owner_username.clone()),
        });
    }
    for vm in vms {
        vm_names.insert(vm.vmid, vm.name.clone());
        if let Some(why) = &vm.unreadable {
            held.insert(vm.vmid);
            diagnostics.push(Diagnostic::about(
                Some(vm.vmid),
                Severity::Warning,
                format!("config not readable ({why}); its connections are kept as they are"),
            ));
            continue;
        }
        let Some(notes) = vm.notes.as_deref() else {
            continue;
        };
        let ctx = VmContext {
            name: &vm.name,
            vmid: vm.vmid,
            node: &vm.node,
            ip: vm.ipv4.as_deref(),
            mac: vm.mac.as_deref(),
            host: &settings.host,
        };
        let (conns, diags) = note_connections(notes, &ctx, settings.notes_key.as_ref());
        diagnostics.extend(diags.into_iter().map(|d| Diagnostic {
            vmid: Some(vm.vmid),
            line: Some(d.line),
            column: Some(d.column),
            severity: d.severity,
            message: d.message,
        }));
        for c in conns {
            let mk = marker("notes", vm.vmid, c.protocol, &c.username);
            let mut p = params(vm.ipv4.as_deref(), c.port, &c.username, &c.password, &mk);
            p.extend(c.parameters.into_iter().map(|(k, v)| (k, Secret::new(v))));
            wanted.push(DesiredConnection {
                parameters: p,
                marker: mk,
                vmid: vm.vmid,
                name: c.name,
                protocol: c.protocol,
                group: None,
                owner: None,
            });
        }
    }
    let mut per_vm: BTreeMap<u32, usize> = BTreeMap::new();
    let mut seen_markers = BTreeSet::new();
    wanted.retain(|c| {
        let fresh = seen_markers.insert(c.marker.clone());
        if !fresh {
            diagnostics.push(Diagnostic::about(
                Some(c.vmid),
                Severity::Warning,
                format!(
                    "{} for user {:?} appears twice; the first entry is used",
                    c.protocol.as_str(),
                    user_of(&c.marker)
                ),
            ));
        }
        fresh
    });
    for c in &wanted {
        *per_vm.entry(c.vmid).or_default() += 1;
    }
    for c in &mut wanted {
        if per_vm[&c.vmid] > 1 {
            c.group = Some(format!("{} ({})", vm_names[&c.vmid], c.vmid));
        }
    }
    let mut names = BTreeSet::new();
    wanted.retain(|c| {
        let fresh = names.insert((c.group.clone(), c.name.clone()));
        if !fresh {
            diagnostics.push(Diagnostic::about(
                Some(c.vmid),
                Severity::Error,
                format!("connection name {:?} is used twice in one group; the later one is skipped", c.name),
            ));
        }
        fresh
    });
    let unknown: BTreeSet<u32> =
        wanted.iter().filter(|c| !c.parameters.contains_key("hostname")).map(|c| c.vmid).collect();
    let with_connections: BTreeSet<u32> = wanted.iter().map(|c| c.vmid).collect();
    for vm in vms.iter().filter(|v| with_connections.contains(&v.vmid)) {
        if let Some(silence) = vm.silent_agent {
            diagnostics.push(Diagnostic::about(Some(vm.vmid), Severity::Warning, silent_agent_message(vm, silence)));
        }
    }
    let silent: BTreeSet<u32> = vms.iter().filter(|v| v.silent_agent.is_some()).map(|v| v.vmid).collect();
    for vmid in unknown.difference(&silent) {
        diagnostics.push(Diagnostic::about(
            Some(*vmid),
            Severity::Warning,
            "no IPv4 address known; its connections are left as they are".into(),
        ));
    }
    (DesiredState { connections: wanted, create_users: settings.create_users, held }, diagnostics)
}

fn silent_agent_message(vm: &VmInfo, silence: AgentSilence) -> String {
    let when = match silence {
        AgentSilence::NotAnswering => "its QEMU guest agent is not running".to_owned(),
        AgentSilence::Remembered { since, recheck_at } => format!(
            "its QEMU guest agent has not answered since {}; not asked again before {}",
            since.format("%Y-%m-%d %H:%M UTC"),
            recheck_at.format("%H:%M UTC")
        ),
    };
    match &vm.ipv4 {
        Some(ip) => format!("{when}; its static address {ip} from its config is used"),
        None => format!("{when}; its address is unknown, so its connections are kept as they are"),
    }
}

fn user_of(marker: &str) -> &str {
    marker.split_once(" user=").map_or("", |(_, u)| u)
}
