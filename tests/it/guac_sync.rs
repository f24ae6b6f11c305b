//! The Guacamole sync end to end against the Guacamole simulator, with hand-built PVE inputs.

use std::collections::BTreeMap;

use proxdesk::domain::guest_marker::GuestMarker;
use proxdesk::integrations::guacamole::Client;
use proxdesk::integrations::guacamole::notes::FernetKey;
use proxdesk::integrations::guacamole::sim::SimHandle;
use proxdesk::integrations::guacamole::sync::{
    DesiredSettings, MARKER_PARAM, ProvisionedMachine, SyncReport, VmInfo, VmKind, run_sync,
};
use proxdesk::integrations::guacamole::wire::Connection;
use proxdesk::secrets::Secret;

use crate::guac_client::{admin_client, sim};

fn vm(vmid: u32, name: &str, notes: &str, ip: &str) -> VmInfo {
    VmInfo {
        vmid,
        node: "pve1".into(),
        name: name.into(),
        kind: VmKind::Qemu,
        notes: Some(notes.into()),
        tags: None,
        ipv4: Some(ip.into()),
        silent_agent: None,
        mac: None,
        unreadable: None,
    }
}

/// The guest PVE lists for a machine: on its node, carrying its request's marker, address unknown.
fn guest_of(m: &ProvisionedMachine) -> VmInfo {
    let notes = GuestMarker::for_request(m.request_id).notes(&m.owner_username, "course work");
    VmInfo { node: m.node.clone(), ipv4: None, ..vm(m.vmid, &m.hostname, &notes, "") }
}

fn machine(id: i64, vmid: u32, owner: &str, ip: &str) -> ProvisionedMachine {
    ProvisionedMachine {
        machine_id: id,
        request_id: id + 40,
        vmid,
        node: "pve2".into(),
        hostname: format!("lab-{id}"),
        ipv4: Some(ip.into()),
        owner_username: owner.into(),
        login_user: "student".into(),
        password: Some(Secret::new(format!("pw-{id}"))),
        address_required: false,
    }
}

fn settings() -> DesiredSettings {
    DesiredSettings { notes_key: None, host: "sync".into(), create_users: true }
}

struct World {
    machines: Vec<ProvisionedMachine>,
    vms: Vec<VmInfo>,
}

fn world() -> World {
    let machines = vec![machine(1, 300, "alice", "10.2.0.1"), machine(2, 301, "bob", "10.2.0.2")];
    let mut vms = vec![
        vm(101, "web01", "Web server.\nuser:\"admin\" pass:\"pw\" protos:\"rdp,ssh\";", "10.0.0.5"),
        vm(102, "db01", "user:dba pass:'x;y' protos:ssh ssh_port:2222;", "10.0.0.6"),
        vm(103, "plain", "no credentials here", "10.0.0.7"),
    ];
    vms.extend(machines.iter().map(guest_of));
    World { machines, vms }
}

async fn sync(client: &Client, w: &World) -> SyncReport {
    run_sync(client, &w.machines, &w.vms, &settings(), false).await.expect("sync runs")
}

fn by_name(sim: &SimHandle) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
    sim.state().connections.values().map(|c| (c.name.clone(), (c.parent.clone(), c.parameters.clone()))).collect()
}

#[tokio::test]
async fn the_first_sync_creates_exactly_the_expected_connections_groups_and_permissions() {
    let sim = sim().await;
    let client = admin_client(&sim);
    let report = sync(&client, &world()).await;
    assert_eq!(report.error_count(), 0, "{:?}", report.diagnostics);
    assert_eq!((report.applied.created, report.applied.groups_created, report.applied.users_created), (5, 1, 2));

    let state = sim.state();
    let groups: Vec<(&str, &str)> = state.groups.values().map(|g| (g.name.as_str(), g.parent.as_str())).collect();
    assert_eq!(groups, [("web01 (101)", "ROOT")]);
    let conns = by_name(&sim);
    let names: Vec<&str> = conns.keys().map(String::as_str).collect();
    assert_eq!(names, ["admin@web01-rdp", "admin@web01-ssh", "dba@db01-ssh", "lab-1 (SSH)", "lab-2 (SSH)"]);
    assert_eq!(conns["admin@web01-rdp"].0, "1", "a VM with several connections gets a group");
    assert_eq!(conns["dba@db01-ssh"].0, "ROOT");
    let db = &conns["dba@db01-ssh"].1;
    assert_eq!((db["hostname"].as_str(), db["port"].as_str(), db["password"].as_str()), ("10.0.0.6", "2222", "x;y"));
    assert!(db[MARKER_PARAM].starts_with("proxdesk/1 notes vm=102"));
    let lab1 = &conns["lab-1 (SSH)"].1;
    assert_eq!((lab1["hostname"].as_str(), lab1["username"].as_str()), ("10.2.0.1", "student"));

    let alice = &state.users["alice"].perms;
    let lab1_id = state.connections.values().find(|c| c.name == "lab-1 (SSH)").unwrap().id.clone();
    assert_eq!(alice.connection.keys().collect::<Vec<_>>(), [&lab1_id]);
    assert!(alice.connection[&lab1_id].contains("READ"));
    assert!(alice.system.is_empty());
    let calls = sim.calls();
    assert_eq!(calls.writes, 5, "users, groups, connections, and one permission patch per owner: {calls:?}");
}

#[tokio::test]
async fn a_second_run_makes_zero_write_calls() {
    let sim = sim().await;
    let client = admin_client(&sim);
    let w = world();
    sync(&client, &w).await;
    sim.reset_calls();
    let report = sync(&client, &w).await;
    assert_eq!(sim.calls().writes, 0, "{:?}", sim.calls());
    assert!(report.table.contains("nothing to change"));
    assert_eq!(report.applied, Default::default());
}

#[tokio::test]
async fn drift_is_repaired_and_unmanaged_connections_stay() {
    let sim = sim().await;
    let client = admin_client(&sim);
    let w = world();
    sync(&client, &w).await;
    let before = by_name(&sim);
    let id_of = |name: &str| sim.state().connections.values().find(|c| c.name == name).unwrap().id.clone();
    // Edited by hand: another host and a new name.
    let edited = id_of("dba@db01-ssh");
    let mut params = before["dba@db01-ssh"].1.clone();
    params.insert("hostname".into(), "203.0.113.9".into());
    let c = Connection {
        name: "renamed".into(),
        parent_identifier: Some("ROOT".into()),
        protocol: "ssh".into(),
        parameters: Some(params.clone()),
        ..Connection::default()
    };
    client.update_connection(&edited, &c).await.unwrap();
    // Deleted by hand, and an extra copy of a managed one.
    client.delete_connection(&id_of("lab-2 (SSH)")).await.unwrap();
    let copy = Connection {
        name: "copy".into(),
        parent_identifier: Some("ROOT".into()),
        protocol: "ssh".into(),
        parameters: Some(params),
        ..Connection::default()
    };
    client.create_connection(&copy).await.unwrap();
    // Hand-made connections, one in proxdesk's group.
    let mine = Connection {
        name: "my own".into(),
        parent_identifier: Some("ROOT".into()),
        protocol: "vnc".into(),
        parameters: Some(BTreeMap::from([("hostname".into(), "h".into())])),
        ..Connection::default()
    };
    client.create_connection(&mine).await.unwrap();
    let mut in_group = mine.clone();
    in_group.parent_identifier = Some("1".into());
    client.create_connection(&in_group).await.unwrap();

    let report = sync(&client, &w).await;
    assert_eq!((report.applied.created, report.applied.updated, report.applied.deleted), (1, 1, 1), "{}", report.table);
    let after = by_name(&sim);
    assert_eq!(after["dba@db01-ssh"], before["dba@db01-ssh"]);
    assert_eq!(after["dba@db01-ssh"].0, "ROOT");
    assert_eq!(sim.state().connections[&edited].name, "dba@db01-ssh", "repaired in place, same identifier");
    assert!(after.contains_key("lab-2 (SSH)"));
    assert!(!after.contains_key("copy"));
    assert_eq!(after.keys().filter(|n| *n == "my own").count(), 1);
    assert_eq!(sim.state().connections.values().filter(|c| c.name == "my own").count(), 2);
    sim.reset_calls();
    sync(&client, &w).await;
    assert_eq!(sim.calls().writes, 0);
}

#[tokio::test]
async fn a_vm_deleted_in_pve_loses_its_connections_and_its_group() {
    let sim = sim().await;
    let client = admin_client(&sim);
    let mut w = world();
    sync(&client, &w).await;
    w.vms.retain(|v| v.vmid != 101);
    w.machines.retain(|m| m.vmid != 301);
    let report = sync(&client, &w).await;
    assert_eq!((report.applied.deleted, report.applied.groups_deleted), (3, 1));
    let names: Vec<String> = by_name(&sim).into_keys().collect();
    assert_eq!(names, ["dba@db01-ssh", "lab-1 (SSH)"]);
    assert!(sim.state().groups.is_empty());
    assert!(sim.state().users["bob"].perms.connection.is_empty());
}

#[tokio::test]
async fn an_ip_change_updates_the_hostname_parameter_only() {
    let sim = sim().await;
    let client = admin_client(&sim);
    let mut w = world();
    sync(&client, &w).await;
    let ids: Vec<String> = sim.state().connections.keys().cloned().collect();
    w.vms[1].ipv4 = Some("10.0.0.66".into());
    w.machines[0].ipv4 = None;
    sim.reset_calls();
    let report = sync(&client, &w).await;
    assert_eq!((report.applied.updated, report.applied.created, report.applied.deleted), (1, 0, 0), "{}", report.table);
    assert!(report.table.contains("parameter hostname"));
    assert_eq!(sim.calls().writes, 1);
    assert_eq!(by_name(&sim)["dba@db01-ssh"].1["hostname"], "10.0.0.66");
    assert_eq!(by_name(&sim)["lab-1 (SSH)"].1["hostname"], "10.2.0.1", "an unknown address keeps the old one");
    assert_eq!(sim.state().connections.keys().cloned().collect::<Vec<_>>(), ids);
}

#[tokio::test]
async fn owners_get_read_on_their_connection_and_its_group() {
    let sim = sim().await;
    let client = admin_client(&sim);
    let mut w = world();
    // The machine's VM also carries notes: two connections, so a group.
    let lab1 = w.vms.iter_mut().find(|v| v.vmid == 300).unwrap();
    lab1.notes = Some(format!("{}\nuser:x pass:y protos:rdp;", lab1.notes.as_deref().unwrap()));
    lab1.ipv4 = Some("10.2.0.1".into());
    sync(&client, &w).await;
    let state = sim.state();
    let group = state.groups.values().find(|g| g.name == "lab-1 (300)").expect("a group for VM 300");
    let p = &state.users["alice"].perms;
    assert_eq!(p.connection.len(), 1, "READ on her machine's connection, not on the noted one");
    assert!(p.group[&group.id].contains("READ"), "and on its group, so the home screen shows it");
    assert!(state.users["bob"].perms.group.is_empty());
    assert!(state.users["alice"].password.is_none(), "created without a password");
    // Alice's own view through the API: exactly her connection.
    sim.with_state(|s| s.users.get_mut("alice").unwrap().password = Some("pw".into()));
    let alice = Client::new(&proxdesk::integrations::guacamole::GuacSettings::new(&sim.url(), "alice", "pw")).unwrap();
    let visible: Vec<String> = alice.connections().await.unwrap().into_values().map(|c| c.name).collect();
    assert_eq!(visible, ["lab-1 (SSH)"]);
}

#[tokio::test]
async fn bad_notes_and_a_wrong_key_are_reported_per_entry_and_the_rest_syncs() {
    let sim = sim().await;
    let client = admin_client(&sim);
    let key = FernetKey::from_passphrase(&Secret::new("right".into()));
    let enc = key.encrypt_note_password(&Secret::new("s3cret".into()));
    let notes = format!(
        "user:a encrypted_password:\"{enc}\" protos:ssh;\nuser:b pass:\"open protos:ssh;\nuser:c pass:p protos:ssh port:x;\nuser:d pass:p protos:vnc;"
    );
    let vms = vec![vm(101, "v", &notes, "10.0.0.5")];
    let mut s = settings();
    s.notes_key = Some(FernetKey::from_passphrase(&Secret::new("wrong".into())));
    let report = run_sync(&client, &[], &vms, &s, false).await.unwrap();
    assert_eq!(report.applied.created, 1);
    assert_eq!(report.error_count(), 3, "{:?}", report.diagnostics);
    let lines: Vec<Option<usize>> = report.diagnostics.iter().map(|d| d.line).collect();
    assert_eq!(lines, [Some(1), Some(2), Some(3)]);
    s.notes_key = Some(key);
    let report = run_sync(&client, &[], &vms, &s, false).await.unwrap();
    assert_eq!(report.applied.created, 1);
    assert_eq!(by_name(&sim)["a@v-ssh"].1["password"], "s3cret");
}

#[tokio::test]
async fn one_connection_guacamole_refuses_does_not_hold_back_the_others() {
    let sim = sim().await;
    let client = admin_client(&sim);
    let long = "x".repeat(5000);
    let vms = vec![
        vm(101, "v", &format!("user:a pass:{long} protos:ssh;"), "10.0.0.5"),
        vm(102, "w", "user:b pass:p protos:ssh;", "10.0.0.6"),
    ];
    let report = run_sync(&client, &[], &vms, &settings(), false).await.unwrap();
    assert_eq!(report.applied.created, 1);
    assert_eq!(report.applied.errors.len(), 1);
    assert!(report.applied.errors[0].message.contains("a@v-ssh"));
}

#[tokio::test]
async fn a_dry_run_prints_the_plan_and_writes_nothing() {
    let sim = sim().await;
    let client = admin_client(&sim);
    let report = run_sync(&client, &world().machines, &world().vms, &settings(), true).await.unwrap();
    assert_eq!(sim.calls().writes, 0);
    assert_eq!(report.planned.create, 5);
    assert!(report.table.starts_with("ACTION"));
    assert!(!report.table.contains("pw-1") && !report.table.contains("x;y"));
}
