//! Adopting guests the cluster already has, end to end with the PVE and Guacamole simulators: an LXC
//! container and a QEMU VM made outside proxdesk become ordinary machines of an owner (marker in
//! their notes and tags, the old notes kept below), live through the lifecycle (power, snapshot,
//! console, Guacamole), and leave again: released (the guest untouched in PVE, unmanaged again) or
//! deleted (the guest destroyed, as it carries the marker). Refusals are in `adoption_refusals`.

use std::collections::BTreeMap;
use std::time::Instant;

use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::{Guest, GuestKind, SimConfig, SimHandle};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::console_fixtures::{connect, other_session, refused_status, refused_with};
use crate::guac_e2e::desk_on;
use crate::helpers::TestApp;
use crate::qemu_lifecycle::wait_power;

/// The VMID of the container seeded outside proxdesk.
pub const CT: u64 = 300;
/// A QEMU VM of the simulator's default inventory: running, with a guest agent and an address.
pub const VM: u64 = 100;
pub const VM_NOTES: &str = "Owner: alice\nPurpose: legacy web\n\nguac: rdp 3389";

/// Seeds a running container `vmid` on pve2 the way someone would make it in PVE's own UI.
pub fn seed_container(sim: &SimHandle, vmid: u64, hostname: &str) {
    let config: BTreeMap<String, String> = [
        ("arch", "amd64"),
        ("cores", "1"),
        ("memory", "512"),
        ("swap", "512"),
        ("hostname", hostname),
        ("ostype", "debian"),
        ("unprivileged", "1"),
        ("tags", "lab;web"),
        ("description", "Built by hand for the lab\nask Carol first"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain([
        ("rootfs".to_owned(), format!("local-lvm:vm-{vmid}-disk-0,size=8G")),
        ("net0".to_owned(), "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:01,ip=dhcp,type=veth".to_owned()),
    ])
    .collect();
    let guest = Guest {
        running: true,
        started_at: Some(Instant::now()),
        ip: Some(std::net::Ipv4Addr::new(10, 10, 0, 77)),
        ip_ready_at: Some(Instant::now()),
        ..Guest::new(vmid, GuestKind::Lxc, "pve2", config)
    };
    sim.with_state(|st| st.guests.insert(vmid, guest));
}

pub async fn unmanaged(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let r = app.get(token, "/api/v1/admin/guests/unmanaged").await;
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

pub fn vmids(list: &Value) -> Vec<u64> {
    list.as_array().map(|a| a.iter().filter_map(|g| g["vmid"].as_u64()).collect()).unwrap_or_default()
}

pub async fn adopt(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    let r = app.post(token, "/api/v1/admin/machines/adopt", body).await;
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn power(app: &TestApp, token: &str, machine: i64, action: &str) -> StatusCode {
    app.post(token, &format!("/api/v1/machines/{machine}/{action}"), json!({})).await.status()
}

#[tokio::test]
async fn adopted_guests_live_the_whole_lifecycle_then_one_is_released_untouched_and_one_deleted() {
    let desk = desk_on(SimConfig::for_tests(), |_| {}).await;
    let (app, sim) = (&desk.app, &desk.pve);
    seed_container(sim, CT, "lab-ct");
    let (root, _) = app.user("chief", Role::Admin).await;
    let root = app.token(&root).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let alice = app.token(&alice).await;
    let (bob, _) = app.user("bob", Role::User).await;
    let bob = app.token(&bob).await;

    // The cluster's guests that are not proxdesk's: no templates (9000–9002, 9100).
    let (s, list) = unmanaged(app, &root).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(vmids(&list), [VM, 101, 102, CT]);
    let ct = list.as_array().unwrap().iter().find(|g| g["vmid"] == CT).unwrap().clone();
    assert_eq!(
        (ct["kind"].as_str(), ct["node"].as_str(), ct["name"].as_str()),
        (Some("lxc"), Some("pve2"), Some("lab-ct"))
    );
    assert_eq!(
        (ct["status"].as_str(), ct["cores"].as_u64(), ct["memory_mib"].as_u64()),
        (Some("running"), Some(1), Some(512))
    );
    assert_eq!(ct["tags"], json!(["lab", "web"]));

    // Adopt the container for alice, under a container entry of the catalog; the VM without one.
    let entry = app.template("containers").await;
    let (s, m) = adopt(
        app,
        &root,
        json!({"node": "pve2", "vmid": CT, "kind": "lxc", "owner": "alice",
        "template_id": entry}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let ct_machine = m["id"].as_i64().unwrap();
    assert_eq!(
        (m["hostname"].as_str(), m["vmid"].as_i64(), m["ipv4"].as_str()),
        (Some("lab-ct"), Some(CT as i64), Some("10.10.0.77"))
    );
    let (s, m) = adopt(
        app,
        &root,
        json!({"node": "pve1", "vmid": VM, "kind": "qemu", "owner": "alice",
        "hostname": "legacy"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let vm_machine = m["id"].as_i64().unwrap();
    assert_eq!((m["hostname"].as_str(), m["kind"].as_str()), (Some("legacy"), Some("qemu")));
    assert!(m["ipv4"].as_str().is_some(), "the guest agent's address: {m}");

    // The marker is in PVE: first line of the notes, the old notes below; tags kept, proxdesk's added.
    let ct_request = request_of(app, ct_machine).await;
    let vm_request = request_of(app, vm_machine).await;
    let pve = app.state.pve.clone().unwrap();
    let ty = proxdesk::domain::guest::GuestType::Lxc;
    let c = pve.guest_config("pve2", ty, CT).await.unwrap();
    assert_eq!(
        c.description.as_deref(),
        Some(
            format!("Adopted for alice (proxdesk request #{ct_request})\nBuilt by hand for the lab\nask Carol first\n")
                .as_str()
        )
    );
    // PVE sorts tags when it writes them (pve-api.md §9).
    assert_eq!(c.tags.as_deref(), Some(format!("lab;proxdesk;proxdesk-request-{ct_request};web").as_str()));
    let c = pve.guest_config("pve1", proxdesk::domain::guest::GuestType::Qemu, VM).await.unwrap();
    assert_eq!(c.description, Some(format!("Adopted for alice (proxdesk request #{vm_request})\n{VM_NOTES}")));
    assert_eq!(c.tags.as_deref(), Some(format!("proxdesk;proxdesk-request-{vm_request}").as_str()));
    let (_, list) = unmanaged(app, &root).await;
    assert_eq!(vmids(&list), [101, 102], "adopted guests are managed now");

    // The owner sees them as ordinary machines; the request says where it came from.
    let mine: Value = app.get(&alice, "/api/v1/machines").await.json().await.unwrap();
    let ids: Vec<i64> = mine["items"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [vm_machine, ct_machine]);
    let r: Value = app.get(&alice, &format!("/api/v1/requests/{ct_request}")).await.json().await.unwrap();
    assert_eq!(
        (r["status"].as_str(), r["origin"].as_str(), r["template_id"].as_i64()),
        (Some("ready"), Some("adopted"), Some(entry))
    );
    let r: Value = app.get(&alice, &format!("/api/v1/requests/{vm_request}")).await.json().await.unwrap();
    assert!(r["template_id"].is_null(), "{r}");
    let timeline: Vec<String> =
        r["timeline"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect();
    assert!(timeline.contains(&"machine.adopt".to_owned()), "{timeline:?}");
    let page = app.browser();
    page.login("alice", "alice-password-123").await;
    let html = page.get(&format!("/requests/{vm_request}")).await.text().await.unwrap();
    assert!(html.contains("legacy"), "the owner's request page shows the machine");

    // Power: the container stops and starts; the VM shuts down.
    assert_eq!(power(app, &alice, ct_machine, "stop").await, StatusCode::ACCEPTED);
    wait_power(sim, CT, false).await;
    assert_eq!(power(app, &alice, ct_machine, "start").await, StatusCode::ACCEPTED);
    wait_power(sim, CT, true).await;

    // A snapshot, within the default limit (the VM has no catalog entry).
    let r = app.post(&alice, &format!("/api/v1/machines/{vm_machine}/snapshots"), json!({"name": "before"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let tree: Value = app.get(&alice, &format!("/api/v1/machines/{vm_machine}/snapshots")).await.json().await.unwrap();
    assert_eq!((tree["count"].clone(), tree["limit"].clone()), (json!(1), json!(5)), "{tree}");

    // Console: a URL for the owner that gets past authorization (the simulator has no VNC behind it);
    // nothing for anyone else, through the API, the page or the websocket.
    let r = app.post(&alice, &format!("/api/v1/machines/{ct_machine}/console"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let url: Value = r.json().await.unwrap();
    let path = url["url"].as_str().unwrap().split_once(&app.address.replacen("http://", "", 1)).unwrap().1.to_owned();
    assert_eq!(refused_with(connect(app, &path, None, None).await).await.0, 4020, "authorized, then upstream");
    let ws = format!("/machines/{ct_machine}/console/ws");
    let origin = Some(app.address.as_str());
    let mallory = other_session(app, "mallory").await;
    assert_eq!(refused_status(connect(app, &ws, Some(&mallory), origin).await), 404, "another user's machine");
    for machine in [ct_machine, vm_machine] {
        assert_eq!(
            app.post(&bob, &format!("/api/v1/machines/{machine}/console"), json!({})).await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(app.get(&bob, &format!("/api/v1/machines/{machine}")).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(power(app, &bob, machine, "stop").await, StatusCode::NOT_FOUND);
        let r = app.post(&bob, &format!("/api/v1/machines/{machine}/snapshots"), json!({"name": "mine"})).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }

    // Guacamole: each adopted machine gets its owner's connection (proxdesk knows no password for them).
    let run = desk.sync().await;
    assert_eq!(run.failure.as_deref(), None, "{}", run.diagnostics);
    let conns = desk.connections();
    let ct_conn = conns.get("lab-ct (SSH)").unwrap_or_else(|| panic!("{:?}", conns.keys().collect::<Vec<_>>()));
    assert_eq!((ct_conn.1["hostname"].as_str(), ct_conn.1["username"].as_str()), ("10.10.0.77", "alice"));
    assert!(!ct_conn.1.contains_key("password"), "Guacamole asks for it");
    assert!(conns.contains_key("legacy (SSH)"), "{:?}", conns.keys().collect::<Vec<_>>());

    // Release the container: the guest stays exactly as it is in PVE (running, its disk), the machine
    // leaves the owner's list, its console and Guacamole connection; the guest is unmanaged again.
    let before = sim.state().guests[&CT].clone();
    let r = app.post(&alice, &format!("/api/v1/machines/{ct_machine}/console"), json!({})).await;
    let issued: Value = r.json().await.unwrap();
    let issued =
        issued["url"].as_str().unwrap().split_once(&app.address.replacen("http://", "", 1)).unwrap().1.to_owned();
    let r = app.post(&bob, &format!("/api/v1/admin/machines/{ct_machine}/release"), json!({})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "not for users");
    let r = app.post(&root, &format!("/api/v1/admin/machines/{ct_machine}/release"), json!({})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let after = sim.state().guests[&CT].clone();
    assert!(after.running, "not stopped");
    assert_eq!(after.config, before.config, "not a byte changed in its config (marker kept)");
    let r: Value = app.get(&root, &format!("/api/v1/requests/{ct_request}")).await.json().await.unwrap();
    assert_eq!(r["status"], "released");
    let mine: Value = app.get(&alice, "/api/v1/machines").await.json().await.unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    // Consoles: no new URL, and neither the URL issued before nor the owner's session opens one.
    let r = app.post(&alice, &format!("/api/v1/machines/{ct_machine}/console"), json!({})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(console_refused(connect(app, &issued, None, None).await).await, "the URL issued before");
    assert!(console_refused(connect(app, &ws, Some(&alice_session_of(app).await), origin).await).await);
    let (_, list) = unmanaged(app, &root).await;
    assert_eq!(vmids(&list), [101, 102, CT], "unmanaged again");
    let run = desk.sync().await;
    assert_eq!(run.failure.as_deref(), None, "{}", run.diagnostics);
    assert!(!desk.connections().contains_key("lab-ct (SSH)"), "its connection is gone");

    // It can be adopted again (its old marker names a request that is over): the new marker on top.
    let (s, m) = adopt(app, &root, json!({"node": "pve2", "vmid": CT, "kind": "lxc", "owner": "bob"})).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let again = request_of(app, m["id"].as_i64().unwrap()).await;
    let c = pve.guest_config("pve2", ty, CT).await.unwrap();
    assert!(
        c.description.unwrap().starts_with(&format!("Adopted for bob (proxdesk request #{again})\nAdopted for alice"))
    );
    assert_eq!(
        c.tags.as_deref(),
        Some(format!("lab;proxdesk;proxdesk-request-{again};web").as_str()),
        "the stale tag went"
    );

    // The VM is deleted like any machine: it carries the marker, so the destroy job destroys it.
    let r =
        app.api.delete(app.url(&format!("/api/v1/machines/{vm_machine}"))).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let done = crate::provision::settle(app, &alice, vm_request).await;
    assert_eq!(done["status"], "deleted", "{done}");
    assert!(!sim.state().guests.contains_key(&VM), "the guest was destroyed");

    let actions: Vec<String> = proxdesk::services::audit::request_timeline(&app.db, ct_request, Some(ct_machine))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    let wanted = ["machine.adopt", "machine.start", "request.released", "machine.release"];
    assert!(wanted.iter().all(|a| actions.iter().any(|x| x == a)), "{actions:?}");
}

async fn alice_session_of(app: &TestApp) -> String {
    let s = proxdesk::services::auth::login(
        &app.db,
        "alice",
        &proxdesk::secrets::Secret::new("alice-password-123".into()),
        "t",
        1,
    )
    .await
    .unwrap();
    s.token.expose().clone()
}

/// The request of machine `id`.
pub async fn request_of(app: &TestApp, id: i64) -> i64 {
    use sea_orm::EntityTrait;
    entities::machine::Entity::find_by_id(id).one(&app.db).await.unwrap().expect("the machine").request_id
}

/// Whether a console websocket was refused: at the upgrade, or closed at once with an error code.
async fn console_refused(r: Result<crate::console_fixtures::Ws, tokio_tungstenite::tungstenite::Error>) -> bool {
    match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16() >= 400,
        Err(e) => panic!("expected a refusal, got {e:?}"),
        Ok(ws) => refused_with(Ok(ws)).await.0 >= 4000,
    }
}
