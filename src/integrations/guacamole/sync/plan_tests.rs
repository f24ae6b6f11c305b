//! Unit tests of the pure plan.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::domain::guest_marker::GuestMarker;
use crate::integrations::guacamole::notes::Protocol;
use crate::integrations::guacamole::sync::{
    DesiredConnection, DesiredSettings, MARKER_PARAM, ProvisionedMachine, VmInfo, VmKind, desired,
};

fn vm(vmid: u32, name: &str, notes: &str, ip: Option<&str>) -> VmInfo {
    VmInfo {
        vmid,
        node: "pve1".into(),
        name: name.into(),
        kind: VmKind::Qemu,
        notes: Some(notes.into()),
        tags: None,
        ipv4: ip.map(Into::into),
        silent_agent: None,
        mac: None,
        unreadable: None,
    }
}

/// The guest of the machines on `vmid`, carrying their markers as tags.
fn guest_of(machines: &[ProvisionedMachine], vmid: u32, ip: Option<&str>) -> VmInfo {
    let tags: Vec<String> =
        machines.iter().filter(|m| m.vmid == vmid).map(|m| GuestMarker::for_request(m.request_id).tag()).collect();
    let name = machines.iter().find(|m| m.vmid == vmid).map_or("guest", |m| m.hostname.as_str());
    VmInfo { tags: Some(tags.join(";")), notes: None, ..vm(vmid, name, "", ip) }
}

fn machine(id: i64, vmid: u32, owner: &str) -> ProvisionedMachine {
    ProvisionedMachine {
        machine_id: id,
        request_id: id,
        vmid,
        node: "pve1".into(),
        hostname: format!("box{id}"),
        ipv4: Some(format!("10.1.0.{id}")),
        owner_username: owner.into(),
        login_user: owner.into(),
        password: Some(Secret::new("pw".into())),
        address_required: false,
    }
}

/// The desired state; the machines' own guests are listed too (without an address) unless `vms` has them.
fn want(machines: &[ProvisionedMachine], vms: &[VmInfo]) -> DesiredState {
    let mut vms = vms.to_vec();
    for m in machines {
        if !vms.iter().any(|v| v.vmid == m.vmid) {
            vms.push(guest_of(machines, m.vmid, None));
        }
    }
    desired(machines, &vms, &DesiredSettings { host: "sync".into(), ..DesiredSettings::default() }).0
}

/// The actual state Guacamole would hold after applying `d` perfectly, ids from 1.
fn mirror(d: &DesiredState) -> ActualState {
    let mut a = ActualState::default();
    let mut groups: BTreeMap<String, String> = BTreeMap::new();
    for c in &d.connections {
        if let Some(g) = &c.group
            && !groups.contains_key(g)
        {
            let id = (groups.len() + 1).to_string();
            groups.insert(g.clone(), id.clone());
            a.groups.push(ActualGroup { id, name: g.clone(), parent: "ROOT".into() });
        }
    }
    for (i, c) in d.connections.iter().enumerate() {
        let id = (i + 1).to_string();
        a.connections.push(actual(&id, c, c.group.as_ref().map_or("ROOT".into(), |g| groups[g].clone())));
        if let Some(o) = &c.owner {
            a.users.insert(o.clone());
            let r = a.reads.entry(o.clone()).or_default();
            r.0.insert(id.clone());
            if let Some(g) = &c.group {
                r.1.insert(groups[g].clone());
            }
        }
    }
    a
}

fn actual(id: &str, c: &DesiredConnection, parent: String) -> ActualConnection {
    ActualConnection {
        id: id.into(),
        name: c.name.clone(),
        parent,
        protocol: c.protocol.as_str().into(),
        parameters: c.parameters.clone(),
        attributes: Default::default(),
        marker: Some(c.marker.clone()),
    }
}

#[test]
fn an_empty_guacamole_gets_everything_and_a_mirror_needs_nothing() {
    let d = want(
        &[machine(1, 200, "alice")],
        &[
            vm(101, "web01", "user:a pass:p protos:rdp,ssh;", Some("10.0.0.5")),
            vm(102, "db", "user:b pass:q protos:ssh;", Some("10.0.0.6")),
        ],
    );
    let mut empty = ActualState::default();
    empty.users.insert("alice".into());
    let p = plan(&d, &empty);
    assert_eq!(p.counts(), PlanCounts { create: 4, groups_create: 1, grants_add: 1, ..PlanCounts::default() });
    assert_eq!(p.group_creates, ["web01 (101)"]);
    assert!(p.creates.iter().filter(|c| c.vmid == 101).all(|c| c.parent == GroupRef::New("web01 (101)".into())));
    assert!(plan(&d, &mirror(&d)).is_empty());
}

#[test]
fn drift_is_repaired_and_hand_made_connections_are_left_alone() {
    let d = want(&[], &[vm(101, "web01", "user:a pass:p protos:ssh;", Some("10.0.0.5"))]);
    let mut a = mirror(&d);
    a.connections[0].parameters.insert("hostname".into(), Secret::new("6.6.6.6".into()));
    a.connections[0].name = "renamed".into();
    let mut extra = a.connections[0].clone();
    extra.id = "9".into();
    a.connections.push(extra);
    a.connections.push(ActualConnection {
        id: "10".into(),
        name: "mine".into(),
        parent: "ROOT".into(),
        protocol: "ssh".into(),
        parameters: BTreeMap::new(),
        attributes: Default::default(),
        marker: None,
    });
    let p = plan(&d, &a);
    assert_eq!(p.updates.len(), 1);
    assert_eq!(p.updates[0].reasons, ["name", "parameter hostname"]);
    assert_eq!(p.deletes.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["9"]);
}

#[test]
fn a_vm_gone_from_pve_loses_its_connections_and_emptied_group() {
    let d = want(&[], &[vm(101, "web01", "user:a pass:p protos:rdp,ssh;", Some("10.0.0.5"))]);
    let a = mirror(&d);
    let p = plan(&want(&[], &[]), &a);
    assert_eq!(p.deletes.len(), 2);
    assert!(p.deletes.iter().all(|d| d.via_group));
    assert_eq!(p.group_deletes.len(), 1);
}

#[test]
fn an_unknown_address_keeps_the_old_hostname_and_creates_nothing() {
    let d = want(&[], &[vm(101, "web01", "user:a pass:p protos:ssh;", Some("10.0.0.5"))]);
    let a = mirror(&d);
    let unknown = want(
        &[],
        &[vm(101, "web01", "user:a pass:p protos:ssh;", None), vm(102, "x", "user:a pass:p protos:ssh;", None)],
    );
    assert!(plan(&unknown, &a).is_empty());
}

#[test]
fn a_machine_follows_the_address_pve_reports_now_and_keeps_the_recorded_one_otherwise() {
    let host = |d: &DesiredState| d.connections[0].parameters["hostname"].expose().clone();
    let recorded = want(&[machine(1, 200, "alice")], &[]);
    assert_eq!(host(&recorded), "10.1.0.1");
    let machines = [machine(1, 200, "alice")];
    let moved = want(&machines, &[guest_of(&machines, 200, Some("10.9.9.9"))]);
    assert_eq!(host(&moved), "10.9.9.9");
    let plan = plan(&moved, &mirror(&recorded));
    assert_eq!((plan.updates.len(), plan.creates.len(), plan.deletes.len()), (1, 0, 0));
    let stopped = want(&machines, &[guest_of(&machines, 200, None)]);
    assert_eq!(host(&stopped), "10.1.0.1");
}

#[test]
fn a_name_held_by_a_hand_made_connection_is_skipped_with_an_error() {
    let d = want(&[], &[vm(101, "web01", "user:a pass:p protos:ssh;", Some("10.0.0.5"))]);
    let mut a = ActualState::default();
    a.connections.push(ActualConnection {
        id: "1".into(),
        name: "a@web01-ssh".into(),
        parent: "ROOT".into(),
        protocol: "ssh".into(),
        parameters: BTreeMap::new(),
        attributes: Default::default(),
        marker: None,
    });
    let p = plan(&d, &a);
    assert!(p.is_empty());
    assert_eq!(p.diagnostics.len(), 1);
}

#[test]
fn owners_get_read_on_connections_and_groups_and_lose_it_when_ownership_moves() {
    let machines = [machine(1, 200, "alice"), machine(2, 200, "bob")];
    let d = want(&machines, &[]);
    assert!(d.connections.iter().all(|c| c.group.as_deref() == Some("box1 (200)")));
    let mut a = mirror(&d);
    let p = plan(&d, &a);
    assert!(p.is_empty());
    // Bob's READ on Alice's connection is revoked; a missing group READ is added back.
    a.reads.get_mut("bob").unwrap().0.insert("1".into());
    a.reads.get_mut("alice").unwrap().1.clear();
    let p = plan(&d, &a);
    let grants: BTreeSet<(String, bool)> = p.grants.iter().map(|g| (g.user.clone(), g.add)).collect();
    assert_eq!(grants, BTreeSet::from([("alice".to_owned(), true), ("bob".to_owned(), false)]));
}

#[test]
fn missing_owners_are_created_only_when_configured() {
    let d = want(&[machine(1, 200, "carol")], &[]);
    let p = plan(&d, &ActualState::default());
    assert!(p.user_creates.is_empty());
    assert!(p.grants.is_empty());
    let mut d2 = d.clone();
    d2.create_users = true;
    let p = plan(&d2, &ActualState::default());
    assert_eq!(p.user_creates, ["carol"]);
    assert_eq!(p.grants.len(), 1);
    assert!(p.to_table().contains("carol"));
    assert!(!p.to_table().contains("pw"));
}

#[test]
fn markers_are_parameters_and_protocol_changes_are_updates() {
    let d = want(&[], &[vm(101, "web01", "user:a pass:p protos:ssh;", Some("10.0.0.5"))]);
    assert!(d.connections[0].parameters[MARKER_PARAM].expose().starts_with("proxdesk/1 notes vm=101"));
    assert_eq!(d.connections[0].protocol, Protocol::Ssh);
    let mut a = mirror(&d);
    a.connections[0].protocol = "telnet".into();
    assert_eq!(plan(&d, &a).updates[0].reasons, ["protocol"]);
}

#[test]
fn connections_of_a_vm_or_machine_that_cannot_be_read_are_kept_untouched() {
    let notes = "user:a pass:p protos:rdp,ssh;";
    let d = want(&[machine(1, 200, "alice")], &[vm(101, "web01", notes, Some("10.0.0.5"))]);
    let a = mirror(&d);

    // PVE could not give VM 101's config, and machine 1's password no longer opens.
    let mut unreadable = vm(101, "web01", notes, None);
    unreadable.notes = None;
    unreadable.unreadable = Some("Proxmox VE: timed out".into());
    let mut locked = machine(1, 200, "alice");
    locked.password = None;
    let guest = guest_of(std::slice::from_ref(&locked), 200, None);
    let (d2, diagnostics) = desired(
        &[locked],
        &[unreadable, guest],
        &DesiredSettings { host: "sync".into(), ..DesiredSettings::default() },
    );
    assert_eq!(d2.held, [101, 200].into_iter().collect());
    assert_eq!(diagnostics.len(), 2, "{diagnostics:?}");
    assert!(diagnostics.iter().all(|d| d.severity == Severity::Warning && d.message.contains("kept as")));
    let p = plan(&d2, &a);
    assert!(p.is_empty(), "{:?}", p.counts());

    // Once readable again, the VM's connections are still exactly right.
    assert!(plan(&d, &a).is_empty());
}

fn settings() -> DesiredSettings {
    DesiredSettings { host: "sync".into(), ..DesiredSettings::default() }
}

#[test]
fn a_machine_whose_guest_is_gone_loses_its_connection() {
    let machines = [machine(1, 200, "alice")];
    let before = want(&machines, &[guest_of(&machines, 200, Some("10.0.0.9"))]);
    // Being deleted: PVE no longer lists the guest, though the request has not reached `deleted`.
    let (d, diagnostics) = desired(&machines, &[], &settings());
    assert!(d.connections.is_empty() && d.held.is_empty());
    assert_eq!(diagnostics.len(), 1);
    assert!(diagnostics[0].message.contains("lists no guest 200"), "{}", diagnostics[0].message);
    let p = plan(&d, &mirror(&before));
    assert_eq!((p.deletes.len(), p.creates.len()), (1, 0));
    // Listed on another node is not the machine's guest either.
    let mut elsewhere = guest_of(&machines, 200, Some("10.0.0.9"));
    elsewhere.node = "pve2".into();
    assert!(desired(&machines, &[elsewhere], &settings()).0.connections.is_empty());
}

#[test]
fn a_machine_whose_vmid_names_another_guest_gets_no_connection_to_it() {
    let machines = [machine(1, 200, "alice")];
    let before = want(&machines, &[guest_of(&machines, 200, Some("10.0.0.9"))]);
    // VMID 200 was freed and given to bob's new guest, whose notes ask for a connection of their own.
    let mut other =
        vm(200, "bobs-box", "Requested by bob (proxdesk request #2)\nuser:bob pass:b protos:ssh;", Some("10.0.0.50"));
    other.tags = Some("proxdesk;proxdesk-request-2".into());
    let (d, diagnostics) = desired(&machines, &[other], &settings());
    let owners: Vec<Option<&str>> = d.connections.iter().map(|c| c.owner.as_deref()).collect();
    assert_eq!(owners, [None], "only the guest's own notes connection, nothing with alice's credentials");
    assert!(d.connections.iter().all(|c| c.parameters["username"].expose() == "bob"));
    let foreign: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
    assert_eq!(foreign.len(), 1, "{diagnostics:?}");
    assert!(foreign[0].message.contains("machine 1") && foreign[0].message.contains("request 1"));
    let p = plan(&d, &mirror(&before));
    assert_eq!(p.deletes.len(), 1, "alice's connection to VMID 200 goes");
}

#[test]
fn a_silent_agent_is_reported_once_and_its_connections_keep_their_address() {
    use crate::integrations::guacamole::sync::AgentSilence;
    let notes = "user:a pass:p protos:ssh;";
    let before = want(&[], &[vm(101, "web01", notes, Some("10.0.0.5"))]);
    let now = chrono::Utc::now();
    let mut silent = vm(101, "web01", notes, None);
    silent.silent_agent = Some(AgentSilence::Remembered { since: now, recheck_at: now });
    let (d, diagnostics) = desired(&[], &[silent.clone()], &settings());
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert!(diagnostics[0].message.contains("guest agent") && diagnostics[0].message.contains("kept as they are"));
    assert!(plan(&d, &mirror(&before)).is_empty(), "the old address stays");
    silent.ipv4 = Some("10.7.0.9".into());
    let (d, diagnostics) = desired(&[], &[silent], &settings());
    assert!(diagnostics[0].message.contains("static address 10.7.0.9"), "{}", diagnostics[0].message);
    assert_eq!(d.connections[0].parameters["hostname"].expose(), "10.7.0.9");
}

#[test]
fn a_machine_installed_from_an_iso_has_a_connection_only_once_its_address_is_known() {
    let iso = ProvisionedMachine {
        ipv4: None,
        password: Some(Secret::new(String::new())),
        address_required: true,
        ..machine(7, 207, "alice")
    };
    let machines = [iso];
    assert!(want(&machines, &[]).connections.is_empty(), "no address: no connection to nowhere");
    let listed = [guest_of(&machines, 207, Some("10.30.1.9"))];
    let d = want(&machines, &listed);
    assert_eq!(d.connections.len(), 1);
    let p = &d.connections[0].parameters;
    assert_eq!(p["hostname"].expose(), "10.30.1.9");
    assert_eq!(p["username"].expose(), "alice");
    assert!(!p.contains_key("password"), "no password proxdesk never knew: Guacamole asks");
    // A container without an address keeps its connection (its address comes with the next run).
    let lxc = [ProvisionedMachine { ipv4: None, ..machine(8, 208, "bob") }];
    assert_eq!(want(&lxc, &[]).connections.len(), 1);
}
