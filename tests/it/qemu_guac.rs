//! Guacamole connections of QEMU machines, through the job queue, the PVE simulator (its guest agents)
//! and the Guacamole simulator: a cloud-init VM gets its owner's SSH connection like a container; a VM
//! being installed from an ISO gets none until its OS answers through the guest agent, then one.

use std::collections::BTreeMap;

use proxdesk::integrations::guacamole::sync::MARKER_PARAM;
use proxdesk::integrations::pve::sim::{GuestKind, SimConfig};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;

use crate::guac_e2e::{Desk, desk_on};
use crate::qemu_lifecycle::{People, VmOf};

/// The machines' own connections (`"<hostname> (SSH)"`), by name.
fn machine_connections(desk: &Desk) -> BTreeMap<String, BTreeMap<String, String>> {
    desk.connections().into_iter().filter(|(n, _)| n.ends_with("(SSH)")).map(|(n, (_, p))| (n, p)).collect()
}

#[tokio::test]
async fn a_cloud_init_vm_gets_its_owners_ssh_connection_like_a_container() {
    let desk = desk_on(SimConfig::for_tests(), |_| {}).await;
    let people = People::on(&desk.app).await;
    let vm = people.vm(&desk.app, VmOf::CloudInit, "lab-vm").await;
    let detail: Value =
        desk.app.get(&people.alice, &format!("/api/v1/machines/{}", vm.machine)).await.json().await.unwrap();
    let run = desk.sync().await;
    assert_eq!((run.failure.as_deref(), run.error_count), (None, 0), "{}", run.diagnostics);

    let conns = machine_connections(&desk);
    let names: Vec<&str> = conns.keys().map(String::as_str).collect();
    assert_eq!(names, ["lab-vm (SSH)"]);
    let p = &conns["lab-vm (SSH)"];
    let ip = desk.ip_of(vm.vmid);
    let got =
        (p["hostname"].as_str(), p["port"].as_str(), p["username"].as_str(), p.get("password").map(String::as_str));
    assert_eq!(got, (ip.as_str(), "22", "alice", detail["password"].as_str()), "cloud-init's login is the owner");
    assert!(p[MARKER_PARAM].contains(&format!("machine={}", vm.machine)), "{}", p[MARKER_PARAM]);
    let state = desk.guac.state();
    let conn = state.connections.values().find(|c| c.name == "lab-vm (SSH)").unwrap();
    assert_eq!(state.users["alice"].perms.connection.get(&conn.id).map(|p| p.len()), Some(1), "alice may read it");
}

#[tokio::test]
async fn an_iso_vm_gets_no_connection_until_its_installed_os_answers_then_one() {
    let sim = SimConfig { agent_timeout: std::time::Duration::from_millis(100), ..SimConfig::for_tests() };
    let desk = desk_on(sim, |_| {}).await;
    let people = People::on(&desk.app).await;
    let vm = people.vm(&desk.app, VmOf::Iso, "installing").await;

    // No OS yet: its agent does not answer, so there is no address and no connection to nowhere.
    let run = desk.sync().await;
    assert_eq!((run.failure.as_deref(), run.error_count), (None, 0), "{}", run.diagnostics);
    assert!(machine_connections(&desk).is_empty(), "{:?}", desk.connections());
    let silent = entities::silent_guest_agent::Entity::find().all(&desk.app.db).await.unwrap();
    assert!(silent.iter().any(|s| s.vmid as u64 == vm.vmid), "the silent agent is remembered");

    // The owner installs the OS (guest agent, DHCP lease); the agent is asked again once the recheck
    // interval has passed.
    assert!(desk.pve.install_os(vm.vmid));
    let past = chrono::Utc::now() - chrono::Duration::hours(2);
    entities::silent_guest_agent::Entity::update_many()
        .col_expr(entities::silent_guest_agent::Column::CheckedAt, Expr::value(past))
        .filter(entities::silent_guest_agent::Column::Vmid.eq(vm.vmid as i64))
        .exec(&desk.app.db)
        .await
        .unwrap();
    let run = desk.sync().await;
    assert_eq!((run.failure.as_deref(), run.created), (None, 1), "{}", run.diagnostics);
    let conns = machine_connections(&desk);
    let p = conns.get("installing (SSH)").expect("one connection now");
    let ip = desk.ip_of(vm.vmid);
    assert_eq!((p["hostname"].as_str(), p["port"].as_str(), p["username"].as_str()), (ip.as_str(), "22", "alice"));
    assert!(!p.contains_key("password"), "proxdesk never knew the password: Guacamole asks for it");

    // The address is kept on the machine: its page shows it, and the connection stays while it is off.
    let detail: Value =
        desk.app.get(&people.alice, &format!("/api/v1/machines/{}", vm.machine)).await.json().await.unwrap();
    assert_eq!(detail["ipv4"].as_str(), Some(ip.as_str()), "{detail}");
    let b = desk.app.logged_in("alice", "alice-password-123").await;
    let html = b.get(&format!("/requests/{}", vm.request)).await.text().await.unwrap();
    assert!(html.contains(&ip), "the address is on the machine card");
    desk.pve.with_state(|s| s.guest_mut("pve1", GuestKind::Qemu, vm.vmid).unwrap().running = false);
    let run = desk.sync().await;
    assert_eq!((run.created, run.updated, run.deleted), (0, 0, 0), "{}", run.diagnostics);
    assert_eq!(machine_connections(&desk).len(), 1);
    let found = entities::audit_entry::Entity::find()
        .filter(entities::audit_entry::Column::Action.eq("machine.address_found"))
        .all(&desk.app.db)
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "recorded once");
}
