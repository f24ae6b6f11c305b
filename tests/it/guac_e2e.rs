//! The Guacamole sync end to end, wired as `proxdesk demo` wires it: the real server and job engine, the
//! PVE simulator (with its SSH side finishing containers) read through `PveSource`, and the Guacamole
//! simulator.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use entities::guac_sync_run;
use proxdesk::integrations::guacamole::sim::SimHandle as GuacSim;
use proxdesk::integrations::guacamole::sync::MARKER_PARAM;
use proxdesk::integrations::guacamole::wire::Connection;
use proxdesk::integrations::pve::sim::{SimConfig, SimHandle, SimSsh, SimSshConfig, SimSshHandle, Simulator};
use proxdesk::integrations::pve::wire::QemuConfigUpdate;
use proxdesk::services::guac_sync_runs;
use proxdesk::workflows::guac_sync;
use serde_json::Value;

use crate::guac_client::admin_client;
use crate::helpers::{TestApp, spawn_app_with};
use crate::provision::{TOKEN_ID, TOKEN_SECRET, approved_request, settle};

/// A QEMU VM of the simulator's default inventory: running, guest agent on, on pve1.
pub const NOTED_VM: u64 = 100;
pub const NOTES: &str = "Web server, ask Carol.\nuser:\"admin\" pass:\"pw\" protos:\"rdp,ssh\";\nBackups nightly.";

/// proxdesk with a simulated cluster (finishing over the simulated nodes' SSH) and a simulated Guacamole.
pub struct Desk {
    pub app: TestApp,
    pub pve: SimHandle,
    pub guac: GuacSim,
    _ssh: SimSshHandle,
    _keys: tempfile::TempDir,
}

pub async fn desk() -> Desk {
    desk_with(|_| {}).await
}

/// Like [`desk`], with extra settings.
pub async fn desk_with(configure: impl FnOnce(&mut proxdesk::config::RawSettings)) -> Desk {
    desk_on(SimConfig::for_tests(), configure).await
}

/// Like [`desk_with`], with the PVE simulator configured as given (the test token is added).
pub async fn desk_on(config: SimConfig, configure: impl FnOnce(&mut proxdesk::config::RawSettings)) -> Desk {
    let config = config.with_token(TOKEN_ID, TOKEN_SECRET, proxdesk::integrations::pve::sim::admin_acl());
    let pve = Simulator::start(config).await.unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("id_ed25519");
    let public = proxdesk::integrations::pve::sim::write_client_key(&key_file, "proxdesk-test").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ssh = SimSsh::start(listener, &pve, SimSshConfig::new(vec![public])).await.unwrap();
    let guac = crate::guac_client::sim().await;
    let (pve_url, guac_url, ssh_settings) = (pve.url().to_owned(), guac.url(), ssh.settings(&key_file));
    let app = spawn_app_with(|raw| {
        raw.set("pve_url", pve_url);
        raw.set("pve_token", format!("{TOKEN_ID}={TOKEN_SECRET}"));
        raw.set("provision_poll_ms", "20");
        raw.set("provision_backoff_ms", "50");
        raw.set("provision_ip_timeout_secs", "5");
        raw.set("provision_task_timeout_secs", "5");
        for (name, value) in ssh_settings {
            raw.set(&name["PROXDESK_".len()..].to_ascii_lowercase(), value);
        }
        raw.set("guac_url", guac_url);
        raw.set("guac_user", "guacadmin");
        raw.set("guac_password", "guacadmin");
        raw.set("guac_create_users", "true");
        // Only the runs a test asks for: the cron tick would otherwise land in the middle of one.
        raw.set("guac_schedule", "0 0 0 1 1 *");
        configure(raw);
    })
    .await;
    Desk { app, pve, guac, _ssh: ssh, _keys: keys }
}

impl Desk {
    /// Enqueues a sync through the job queue and waits for the worker to record its run.
    pub async fn sync(&self) -> guac_sync_run::Model {
        let before = guac_sync_runs::last(&self.app.db).await.unwrap().map_or(0, |r| r.id);
        guac_sync::enqueue_now(&self.app.db).await.unwrap();
        self.run_after(before).await
    }

    /// Waits for a run newer than the run `before`.
    pub async fn run_after(&self, before: i64) -> guac_sync_run::Model {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(run) = guac_sync_runs::last(&self.app.db).await.unwrap().filter(|r| r.id > before) {
                return run;
            }
            assert!(Instant::now() < until, "no sync run was recorded");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Writes a VM's Notes through PVE's API, as someone editing them in the PVE GUI does.
    pub async fn set_notes(&self, node: &str, vmid: u64, notes: &str) {
        let pve = self.app.state.pve.clone().expect("a cluster is configured");
        let update = QemuConfigUpdate { description: Some(notes.into()), ..Default::default() };
        pve.qemu_update_config(node, vmid, &update).await.unwrap();
    }

    /// Provisions a container for alice (finished over SSH); returns its machine id, vmid and password.
    pub async fn provisioned_machine(&self) -> (i64, u64, String) {
        let (token, id) = approved_request(&self.app, "node").await;
        let done = settle(&self.app, &token, id).await;
        assert_eq!(done["status"], "ready", "{done}");
        let machines: Value = self.app.get(&token, "/api/v1/machines").await.json().await.unwrap();
        let m = &machines["items"][0];
        let mid = m["id"].as_i64().unwrap();
        let detail: Value = self.app.get(&token, &format!("/api/v1/machines/{mid}")).await.json().await.unwrap();
        (mid, m["vmid"].as_u64().unwrap(), detail["password"].as_str().unwrap().to_owned())
    }

    /// The address the PVE simulator hands out for `vmid`.
    pub fn ip_of(&self, vmid: u64) -> String {
        self.pve.state().guests[&vmid].ip.expect("the guest has an address").to_string()
    }

    /// Guacamole's connections by name: (parent group id, parameters).
    pub fn connections(&self) -> BTreeMap<String, (String, BTreeMap<String, String>)> {
        let state = self.guac.state();
        state.connections.values().map(|c| (c.name.clone(), (c.parent.clone(), c.parameters.clone()))).collect()
    }
}

fn hand_made(name: &str, parent: &str) -> Connection {
    Connection {
        name: name.into(),
        parent_identifier: Some(parent.into()),
        protocol: "vnc".into(),
        parameters: Some(BTreeMap::from([("hostname".into(), "192.0.2.7".into()), ("port".into(), "5901".into())])),
        ..Connection::default()
    }
}

#[tokio::test]
async fn the_first_sync_creates_exactly_the_machines_and_the_noted_vms_connections() {
    let desk = desk().await;
    let (_, vmid, password) = desk.provisioned_machine().await;
    desk.set_notes("pve1", NOTED_VM, NOTES).await;
    let run = desk.sync().await;
    assert_eq!(run.failure, None);
    assert_eq!(run.error_count, 0, "{}", run.diagnostics);
    assert_eq!(
        (run.desired, run.created, run.updated, run.deleted, run.groups_created, run.users_created, run.grants_added),
        (3, 3, 0, 0, 1, 1, 1)
    );

    let state = desk.guac.state();
    let groups: Vec<(&str, &str)> = state.groups.values().map(|g| (g.name.as_str(), g.parent.as_str())).collect();
    assert_eq!(groups, [("web-legacy (100)", "ROOT")]);
    let group_id = state.groups.keys().next().unwrap().clone();
    let conns = desk.connections();
    let names: Vec<&str> = conns.keys().map(String::as_str).collect();
    assert_eq!(names, ["admin@web-legacy-rdp", "admin@web-legacy-ssh", "lab-1 (SSH)"]);

    let vm_ip = desk.ip_of(NOTED_VM);
    for (name, port) in [("admin@web-legacy-rdp", "3389"), ("admin@web-legacy-ssh", "22")] {
        let (parent, p) = &conns[name];
        assert_eq!(parent, &group_id, "{name} sits in the VM's group");
        let got = (p["hostname"].as_str(), p["port"].as_str(), p["username"].as_str(), p["password"].as_str());
        assert_eq!(got, (vm_ip.as_str(), port, "admin", "pw"), "{name}");
        assert!(p[MARKER_PARAM].starts_with("proxdesk/1 notes vm=100"), "{name}");
    }
    let (parent, p) = &conns["lab-1 (SSH)"];
    assert_eq!(parent, "ROOT");
    let machine_ip = desk.ip_of(vmid);
    let got = (p["hostname"].as_str(), p["port"].as_str(), p["username"].as_str(), p["password"].as_str());
    assert_eq!(got, (machine_ip.as_str(), "22", "alice", password.as_str()));

    // The owner, created without a password, reads her machine's connection and nothing else.
    let alice = &state.users["alice"];
    assert!(alice.password.is_none());
    let lab = state.connections.values().find(|c| c.name == "lab-1 (SSH)").unwrap();
    let perms: Vec<(&String, Vec<&str>)> =
        alice.perms.connection.iter().map(|(id, p)| (id, p.iter().map(String::as_str).collect())).collect();
    assert_eq!(perms, [(&lab.id, vec!["READ"])]);
    assert!(alice.perms.group.is_empty() && alice.perms.system.is_empty());
    assert!(!state.users.contains_key("chief"), "the admin owns no machine");
}

#[tokio::test]
async fn a_second_run_makes_zero_write_calls() {
    let desk = desk().await;
    desk.provisioned_machine().await;
    desk.set_notes("pve1", NOTED_VM, NOTES).await;
    assert_eq!(desk.sync().await.created, 3);
    let before = desk.connections();
    desk.guac.reset_calls();
    let run = desk.sync().await;
    assert_eq!(desk.guac.calls().writes, 0, "{:?}", desk.guac.calls());
    assert!(desk.guac.calls().total() > 0, "Guacamole was read");
    let counts = (run.created, run.updated, run.deleted, run.grants_added, run.grants_removed, run.error_count);
    assert_eq!(counts, (0, 0, 0, 0, 0, 0));
    assert_eq!(desk.connections(), before);
}

#[tokio::test]
async fn a_vm_deleted_in_pve_loses_its_connections_and_hand_made_ones_stay() {
    let desk = desk().await;
    desk.provisioned_machine().await;
    desk.set_notes("pve1", NOTED_VM, NOTES).await;
    desk.sync().await;
    let guac = admin_client(&desk.guac);
    let group_id = desk.guac.state().groups.keys().next().unwrap().clone();
    guac.create_connection(&hand_made("my desktop", "ROOT")).await.unwrap();
    guac.create_connection(&hand_made("my vnc", &group_id)).await.unwrap();

    desk.pve.with_state(|s| s.guests.remove(&NOTED_VM)).expect("VM 100 existed");
    let run = desk.sync().await;
    assert_eq!((run.deleted, run.created, run.updated, run.error_count), (2, 0, 0, 0), "{}", run.diagnostics);
    let conns = desk.connections();
    let names: Vec<&str> = conns.keys().map(String::as_str).collect();
    assert_eq!(names, ["lab-1 (SSH)", "my desktop", "my vnc"]);
    assert_eq!(conns["my vnc"].0, group_id, "a group holding a hand-made connection is kept");
    assert_eq!(conns["my desktop"].1["hostname"], "192.0.2.7", "hand-made connections are not touched");
    assert_eq!(run.groups_deleted, 0);
}

#[tokio::test]
async fn an_emptied_group_goes_with_its_vm() {
    let desk = desk().await;
    desk.set_notes("pve1", NOTED_VM, NOTES).await;
    assert_eq!(desk.sync().await.groups_created, 1);
    desk.pve.with_state(|s| s.guests.remove(&NOTED_VM));
    let run = desk.sync().await;
    assert_eq!((run.deleted, run.groups_deleted), (2, 1));
    assert!(desk.guac.state().connections.is_empty() && desk.guac.state().groups.is_empty());
}

#[tokio::test]
async fn an_ip_change_in_pve_updates_the_hostname_parameter_of_its_connections() {
    let desk = desk().await;
    let (_, vmid, _) = desk.provisioned_machine().await;
    desk.set_notes("pve1", NOTED_VM, NOTES).await;
    desk.sync().await;
    let before = desk.connections();
    let ids: Vec<String> = desk.guac.state().connections.keys().cloned().collect();

    let (vm_ip, machine_ip) = (Ipv4Addr::new(10, 10, 0, 99), Ipv4Addr::new(10, 20, 9, 9));
    desk.pve.with_state(|s| {
        s.guests.get_mut(&NOTED_VM).unwrap().ip = Some(vm_ip);
        s.guests.get_mut(&vmid).unwrap().ip = Some(machine_ip);
    });
    desk.guac.reset_calls();
    let run = desk.sync().await;
    assert_eq!((run.updated, run.created, run.deleted, run.error_count), (3, 0, 0, 0), "{}", run.diagnostics);
    let calls = desk.guac.calls();
    assert_eq!((calls.writes, calls.by_method.get("PATCH")), (1, Some(&1)), "one batch for the three: {calls:?}");
    let after = desk.connections();
    for (name, ip) in [
        ("admin@web-legacy-rdp", vm_ip.to_string()),
        ("admin@web-legacy-ssh", vm_ip.to_string()),
        ("lab-1 (SSH)", machine_ip.to_string()),
    ] {
        let mut expected = before[name].clone();
        expected.1.insert("hostname".into(), ip);
        assert_eq!(after[name], expected, "{name}: only the hostname changed");
    }
    assert_eq!(desk.guac.state().connections.keys().cloned().collect::<Vec<_>>(), ids, "updated in place");
}

/// A VM whose config PVE cannot give right now is not taken for gone: its connections stay untouched
/// and the run says why; the next run sees it again.
#[tokio::test]
async fn a_vm_pve_cannot_read_for_a_moment_keeps_its_connections() {
    use proxdesk::integrations::pve::sim::{Endpoint, Fault};
    let desk = desk().await;
    desk.set_notes("pve1", NOTED_VM, NOTES).await;
    assert_eq!(desk.sync().await.created, 2);
    let before = desk.connections();

    let busy = Fault::Status { code: 500, message: "got timeout".into() };
    desk.pve.faults().inject(Endpoint::QemuConfigGet, busy);
    let run = desk.sync().await;
    assert_eq!((run.created, run.updated, run.deleted, run.groups_deleted), (0, 0, 0, 0), "{}", run.diagnostics);
    let diagnostics: Value = serde_json::from_str(&run.diagnostics).unwrap();
    let held = diagnostics.as_array().unwrap().iter().find(|d| d["vmid"] == 100).expect("VM 100 is reported");
    assert!(held["message"].as_str().unwrap().contains("kept as they are"), "{held}");
    assert_eq!(desk.connections(), before);

    desk.pve.faults().clear();
    let run = desk.sync().await;
    assert_eq!((run.created, run.updated, run.deleted), (0, 0, 0));
    assert_eq!(desk.connections(), before);
}

/// PVE reuses the lowest free VMID: once a machine's guest is gone, its number may name another guest.
/// The machine's connection (with its owner's credentials) must not follow the number.
#[tokio::test]
async fn a_machine_whose_vmid_names_another_guest_loses_its_connection_and_the_run_says_so() {
    let desk = desk().await;
    let (mid, vmid, _) = desk.provisioned_machine().await;
    assert_eq!(desk.sync().await.created, 1);
    desk.pve.with_state(|s| {
        let g = s.guests.get_mut(&vmid).unwrap();
        g.config.insert("description".into(), "Requested by mallory (proxdesk request #999)\nlab".into());
        g.config.insert("tags".into(), "proxdesk;proxdesk-request-999".into());
    });
    let run = desk.sync().await;
    assert_eq!((run.deleted, run.created, run.error_count), (1, 0, 1), "{}", run.diagnostics);
    assert!(desk.connections().is_empty(), "no connection to the other guest");
    let diagnostics: Value = serde_json::from_str(&run.diagnostics).unwrap();
    let d = diagnostics.as_array().unwrap().iter().find(|d| d["severity"] == "error").unwrap();
    assert_eq!(d["vmid"], vmid);
    assert!(d["message"].as_str().unwrap().contains(&format!("machine {mid}")), "{d}");
}

/// A machine being deleted whose guest PVE no longer lists has no connection, though its request has
/// not reached `deleted` yet.
#[tokio::test]
async fn a_machine_whose_guest_is_gone_loses_its_connection() {
    let desk = desk().await;
    let (_, vmid, _) = desk.provisioned_machine().await;
    assert_eq!(desk.sync().await.created, 1);
    desk.pve.with_state(|s| s.guests.remove(&vmid)).expect("the guest existed");
    let run = desk.sync().await;
    assert_eq!((run.deleted, run.created, run.error_count), (1, 0, 0), "{}", run.diagnostics);
    assert!(desk.connections().is_empty());
    assert!(run.diagnostics.contains("lists no guest"), "{}", run.diagnostics);
}
