//! The console of a guest a person may use in Proxmox VE: the page, the socket (session or single-use
//! URL), a real shell behind the simulator's termproxy, and what one dashboard costs PVE.

use std::collections::BTreeMap;
use std::time::Instant;

use proxdesk::integrations::pve::sim::{Endpoint, GeneratedInventory, Guest, GuestKind, SimConfig};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::console_fixtures::{Shell, connect, refused_status, shell_echoes};
use crate::pve_guests::{Fixture, fixture, fixture_on};

/// A running container 300 on pve1, for its terminal.
pub fn add_container(fx: &Fixture) {
    let config: BTreeMap<String, String> = [
        ("hostname", "lab-ct"),
        ("ostype", "debian"),
        ("cores", "1"),
        ("memory", "512"),
        ("net0", "name=eth0,bridge=vmbr0,ip=dhcp"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    fx.sim.with_state(|s| {
        let ct = Guest {
            running: true,
            started_at: Some(Instant::now()),
            ip: Some([10, 20, 0, 30].into()),
            ip_ready_at: Some(Instant::now()),
            ..Guest::new(300, GuestKind::Lxc, "pve1", config)
        };
        s.guests.insert(300, ct);
    });
}

#[tokio::test]
async fn the_console_pages_point_at_the_guests_own_sockets() {
    let fx = fixture(|a| {
        a.acl("/vms/100", "alice@pve", "PVEVMUser", true).acl("/vms/101", "alice@pve", "PVEVMUser", true);
    })
    .await;
    let html = fx.browser.get("/proxmox/100/console").await.text().await.unwrap();
    assert!(html.contains("data-ws=\"/proxmox/100/console/ws\"") || html.contains("npm ci"), "{html}");
    assert!(html.contains("href=\"/#pve-guests\""), "back to the dashboard");
    // VM 100 has no serial port: no terminal, its screen only.
    assert_eq!(fx.guest(100).await["has_terminal"], false);
    let html = fx.browser.get("/proxmox/100/terminal").await.text().await.unwrap();
    assert!(html.contains("href=\"/proxmox/100/console\"") && html.contains("id=\"console-blocked\""), "{html}");
    // A stopped guest: the page says so and offers a start only to those who may.
    let html = fx.browser.get("/proxmox/101/console").await.text().await.unwrap();
    assert!(html.contains("id=\"console-blocked\"") && html.contains("action=\"/proxmox/101/action\""), "{html}");
    assert_eq!(fx.browser.get("/proxmox/102/console").await.status(), StatusCode::FORBIDDEN);
    // Sockets keep the machines' checks: Origin, then a session.
    let ws = connect(&fx.app, "/proxmox/100/console/ws", Some(&fx.cookie), Some("http://evil.example")).await;
    assert_eq!(refused_status(ws), 403);
    let ws = connect(&fx.app, "/proxmox/100/console/ws", None, Some(&fx.app.address)).await;
    assert_eq!(refused_status(ws), 401);
}

#[tokio::test]
async fn a_containers_terminal_reaches_a_real_shell_through_the_session_and_a_single_use_url() {
    let Some(shell) = Shell::start() else { return };
    let sim = SimConfig { term_backend: Some(([127, 0, 0, 1], shell.port).into()), ..SimConfig::for_tests() };
    let fx = fixture_on(sim, |a| {
        a.pool("lab", &[300]).acl("/pool/lab", "alice@pve", "PVEVMUser", true);
    })
    .await;
    add_container(&fx);
    let ct = fx.guest(300).await;
    assert_eq!((ct["kind"].as_str(), ct["has_terminal"].as_bool()), (Some("lxc"), Some(true)));
    assert_eq!(ct["ipv4"], "10.20.0.30", "a container's address needs only VM.Audit");
    let mut ws = connect(&fx.app, "/proxmox/300/terminal/ws", Some(&fx.cookie), Some(&fx.app.address)).await.unwrap();
    shell_echoes(&mut ws, "session").await;
    ws.close(None).await.unwrap();

    let r = fx.app.post(&fx.token, "/api/v1/proxmox/guests/300/console", json!({"kind": "terminal"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let url = r.json::<Value>().await.unwrap()["url"].as_str().unwrap().to_owned();
    let path = url.split_once("/proxmox/").map(|(_, p)| format!("/proxmox/{p}")).unwrap();
    assert!(path.starts_with("/proxmox/300/terminal/ws?token="), "{path}");
    // A guest's URL opens no machine's console.
    let machine_path = path.replacen("/proxmox/300/", "/machines/300/", 1);
    assert_eq!(refused_status(connect(&fx.app, &machine_path, None, Some(&fx.app.address)).await), 401);
    let mut ws = connect(&fx.app, &path, None, Some(&fx.app.address)).await.unwrap();
    shell_echoes(&mut ws, "url").await;
    ws.close(None).await.unwrap();
    assert_eq!(refused_status(connect(&fx.app, &path, None, Some(&fx.app.address)).await), 401, "used once");

    let entries = entities::audit_entry::Entity::find().all(&fx.app.db).await.unwrap();
    let opened: Vec<_> = entries.iter().filter(|e| e.action == "pve_guest.console").collect();
    assert_eq!(opened.len(), 2);
    assert!(
        opened.iter().all(|e| e.subject_type == "pve_guest" && e.subject_id == 300 && e.actor_id == Some(fx.alice.id))
    );
}

/// PVE calls of one dashboard, by endpoint, after a warm-up that reads `/version`.
async fn dashboard_calls(fx: &Fixture) -> BTreeMap<Endpoint, u64> {
    fx.sim.calls().reset();
    assert_eq!(fx.browser.get("/").await.status(), StatusCode::OK);
    fx.sim.calls().snapshot().into_iter().filter(|(_, n)| *n > 0).collect()
}

#[tokio::test]
async fn one_dashboard_costs_one_dump_one_resource_list_and_one_check_per_guest_outside_the_dump() {
    let fx = fixture(|a| {
        a.pool("lab", &[100, 101]).acl("/pool/lab", "alice@pve", "PVEVMUser", true);
    })
    .await;
    let first = dashboard_calls(&fx).await;
    let visible = fx.vmids().await.len();
    eprintln!("dashboard, {visible} of 3 guests visible (pool): {first:?}");
    assert_eq!(first.get(&Endpoint::ClusterResources), Some(&1));
    // The dump, then only 102 (outside it): the pool members' entries in the dump are their own paths.
    assert_eq!(first.get(&Endpoint::AccessPermissions), Some(&2));
    let again = dashboard_calls(&fx).await;
    assert!(again.is_empty(), "the list is kept: {again:?}");

    let fx = fixture(|a| {
        a.acl("/storage", "alice@pve", "PVEDatastoreUser", true);
    })
    .await;
    let calls = dashboard_calls(&fx).await;
    assert_eq!(calls, BTreeMap::from([(Endpoint::AccessPermissions, 1)]), "no VM.Audit anywhere: one call");
}

#[tokio::test]
async fn calls_for_a_cluster_of_two_hundred_guests() {
    let sim = SimConfig { generated: Some(GeneratedInventory { guests: 200, seed: 7 }), ..SimConfig::for_tests() };
    let fx = fixture_on(sim, |a| {
        a.pool("lab", &[100, 101, 102, 103, 104]).acl("/pool/lab", "alice@pve", "PVEVMUser", true);
    })
    .await;
    let total = fx.sim.summary();
    let started = Instant::now();
    let calls = dashboard_calls(&fx).await;
    let took = started.elapsed();
    let visible = fx.vmids().await.len();
    let sum: u64 = calls.values().sum();
    eprintln!("dashboard: {visible} visible of {total:?}; {sum} PVE calls in {took:?}: {calls:?}");
    assert_eq!(calls.get(&Endpoint::ClusterResources), Some(&1));
    assert!(visible <= 5);
    let permissions = calls[&Endpoint::AccessPermissions];
    assert!(permissions <= 1 + 200, "one dump and at most one check per guest: {permissions}");
}
