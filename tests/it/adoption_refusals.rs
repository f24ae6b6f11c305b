//! What adopting a guest refuses, and that a refusal leaves nothing behind (no request, no machine,
//! the guest's notes as they were): users, a guest that already is a machine, one that vanished, a
//! template, a locked one, one whose config changed meanwhile (digest), the wrong catalog kind, and the
//! owner's quota (the page warns, then the admin may go beyond it).

use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::{Endpoint, Fault, SimConfig};
use reqwest::StatusCode;
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::adoption::{CT, VM, VM_NOTES, adopt, seed_container, unmanaged};
use crate::console_fixtures::app_on;
use crate::helpers::TestApp;

async fn rows(app: &TestApp) -> (u64, u64) {
    let requests = entities::request::Entity::find().count(&app.db).await.unwrap();
    let machines = entities::machine::Entity::find().count(&app.db).await.unwrap();
    (requests, machines)
}

fn problem(body: &Value) -> &str {
    body["type"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn adopting_is_for_admins_and_refuses_managed_vanished_template_locked_and_changed_guests() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    seed_container(&sim, CT, "lab-ct");
    let (root, _) = app.user("chief", Role::Admin).await;
    let root = app.token(&root).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let alice = app.token(&alice).await;

    // Users: neither the list nor the adoption (the API says 403; the page is in ADMIN_PAGES).
    assert_eq!(unmanaged(&app, &alice).await.0, StatusCode::FORBIDDEN);
    let body = json!({"node": "pve1", "vmid": VM, "kind": "qemu", "owner": "alice"});
    assert_eq!(adopt(&app, &alice, body.clone()).await.0, StatusCode::FORBIDDEN);
    let b = app.logged_in("alice", "alice-password-123").await;
    assert_eq!(b.get("/admin/machines/adopt").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(rows(&app).await, (0, 0));

    // A guest that already is a machine: 409, whoever it would go to.
    let (s, m) = adopt(&app, &root, body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let (s, p) = adopt(&app, &root, json!({"node": "pve1", "vmid": VM, "kind": "qemu", "owner": "chief"})).await;
    assert_eq!((s, problem(&p)), (StatusCode::CONFLICT, "/problems/guest-managed"), "{p}");
    assert_eq!(rows(&app).await, (1, 1));

    // Listed, then gone before the admin adopts it.
    let (_, list) = unmanaged(&app, &root).await;
    assert!(crate::adoption::vmids(&list).contains(&101));
    sim.with_state(|st| st.guests.remove(&101));
    let (s, p) = adopt(&app, &root, json!({"node": "pve2", "vmid": 101, "kind": "qemu", "owner": "alice"})).await;
    assert_eq!((s, problem(&p)), (StatusCode::CONFLICT, "/problems/guest-gone"), "{p}");
    assert!(p["detail"].as_str().unwrap().contains("no longer exists"), "{p}");
    assert_eq!(rows(&app).await, (1, 1), "nothing left behind");

    // A template, even asked for by number.
    let (s, p) = adopt(&app, &root, json!({"node": "pve1", "vmid": 9000, "kind": "lxc", "owner": "alice"})).await;
    assert_eq!((s, problem(&p)), (StatusCode::CONFLICT, "/problems/guest-template"), "{p}");

    // The wrong kind for the guest is PVE's "does not exist" at the other path; a catalog entry of the
    // other kind is a field error.
    let (s, p) = adopt(&app, &root, json!({"node": "pve2", "vmid": CT, "kind": "qemu", "owner": "alice"})).await;
    assert_eq!((s, problem(&p)), (StatusCode::CONFLICT, "/problems/guest-gone"), "{p}");
    let vm_entry = app.template_at("vms", "pve1", 9100, "none").await;
    crate::provision_qemu::make_cloudinit(&app.db, vm_entry, None, "").await;
    let (s, p) = adopt(
        &app,
        &root,
        json!({"node": "pve2", "vmid": CT, "kind": "lxc", "owner": "alice",
        "template_id": vm_entry}),
    )
    .await;
    assert_eq!((s, p["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("template_id")), "{p}");
    let (s, p) = adopt(&app, &root, json!({"node": "pve2", "vmid": CT, "kind": "lxc", "owner": "nobody"})).await;
    assert_eq!((s, p["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("owner")), "{p}");

    // Locked by a backup running in PVE: the lock is named.
    sim.with_state(|st| st.guests.get_mut(&CT).unwrap().config.insert("lock".into(), "backup".into()));
    let (s, p) = adopt(&app, &root, json!({"node": "pve2", "vmid": CT, "kind": "lxc", "owner": "alice"})).await;
    assert_eq!((s, problem(&p)), (StatusCode::CONFLICT, "/problems/machine-busy"), "{p}");
    assert!(p["detail"].as_str().unwrap().contains("backup"), "{p}");
    sim.with_state(|st| st.guests.get_mut(&CT).unwrap().config.remove("lock"));
    assert_eq!(rows(&app).await, (1, 1));

    // Someone edits the notes in PVE while the marker is on its way: PVE refuses the stale digest, the
    // adoption is undone and their notes stay.
    sim.faults().inject_times(Endpoint::LxcConfigPut, Fault::Latency(std::time::Duration::from_secs(2)), 1);
    let put_before = sim.calls().get(Endpoint::LxcConfigPut);
    let adopting = {
        let (url, root) = (app.url("/api/v1/admin/machines/adopt"), root.clone());
        let client = app.api.clone();
        tokio::spawn(async move {
            let body = json!({"node": "pve2", "vmid": CT, "kind": "lxc", "owner": "alice"});
            let r = client.post(url).bearer_auth(root).json(&body).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        })
    };
    while sim.calls().get(Endpoint::LxcConfigPut) == put_before {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    sim.with_state(|st| st.guests.get_mut(&CT).unwrap().config.insert("description".into(), "edited meanwhile".into()));
    let (s, p) = adopting.await.unwrap();
    assert_eq!((s, problem(&p)), (StatusCode::CONFLICT, "/problems/guest-changed"), "{p}");
    assert_eq!(rows(&app).await, (1, 1), "the rows were rolled back");
    let config = sim.state().guests[&CT].config.clone();
    assert_eq!(config.get("description").map(String::as_str), Some("edited meanwhile"));
    assert_eq!(config.get("tags").map(String::as_str), Some("lab;web"));

    // PVE writes the marker, then its answer is lost (pveproxy's 596): 503, no rows, the notes put back.
    let fault = Fault::AppliedThenStatus { code: 596, message: "Broken pipe".into() };
    sim.faults().inject_times(Endpoint::LxcConfigPut, fault, 1);
    let (s, p) = adopt(&app, &root, json!({"node": "pve2", "vmid": CT, "kind": "lxc", "owner": "alice"})).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{p}");
    assert_eq!(rows(&app).await, (1, 1));
    let config = sim.state().guests[&CT].config.clone();
    assert_eq!(config.get("description").map(String::as_str), Some("edited meanwhile"), "the marker was taken back");
    assert_eq!(config.get("tags").map(String::as_str), Some("lab;web"));

    // The first adoption's marker is intact; the VM's notes were kept under it.
    let notes = sim.state().guests[&VM].config["description"].clone();
    assert!(notes.ends_with(VM_NOTES), "{notes}");
}

#[tokio::test]
async fn the_adopt_page_keeps_what_was_typed_and_warns_before_going_beyond_the_quota() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    seed_container(&sim, CT, "lab-ct");
    let (root, _) = app.user("chief", Role::Admin).await;
    app.user("alice", Role::User).await;
    let quota =
        proxdesk::domain::quota::Quota { max_machines: 5, max_cores: 8, max_memory_mib: 256, max_disk_gib: 100 };
    proxdesk::services::quotas::set_role_quota(&app.db, &root, Role::User, quota).await.unwrap();
    let b = app.logged_in("chief", "chief-password-123").await;
    let html = b.get("/admin/machines/adopt").await.text().await.unwrap();
    assert!(html.contains("lab-ct") && html.contains("id=\"adopt-300\""), "one form per guest");
    assert!(!html.contains("id=\"adopt-9000\""), "no templates");

    let base = [("node", "pve2"), ("vmid", "300"), ("kind", "lxc")];
    let typed: Vec<(&str, &str)> =
        base.iter().copied().chain([("owner", "nobody"), ("hostname", "kept-name")]).collect();
    let r = b.post_form("/admin/machines/adopt", "/admin/machines/adopt", &typed).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("value=\"nobody\"") && html.contains("value=\"kept-name\""), "what was typed is kept");
    assert!(html.contains(&proxdesk::http::i18n::t("en", "error.adopt_owner_unknown")));

    // 512 MiB is over alice's 256: the page says so and offers to go beyond; nothing is adopted yet.
    let form: Vec<(&str, &str)> = base.iter().copied().chain([("owner", "alice")]).collect();
    let r = b.post_form("/admin/machines/adopt", "/admin/machines/adopt", &form).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let html = r.text().await.unwrap();
    assert!(html.contains("name=\"beyond_quota\""), "the box to adopt anyway");
    assert!(html.contains("value=\"alice\""));
    assert_eq!(entities::machine::Entity::find().count(&app.db).await.unwrap(), 0);
    let form: Vec<(&str, &str)> = form.into_iter().chain([("beyond_quota", "yes")]).collect();
    let r = b.post_form("/admin/machines/adopt", "/admin/machines/adopt", &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    assert_eq!(entities::machine::Entity::find().count(&app.db).await.unwrap(), 1);
    let html = b.get("/admin/machines/adopt").await.text().await.unwrap();
    assert!(!html.contains("id=\"adopt-300\""), "adopted: no longer listed");

    // The machine's actions offer admins (only) to release it, after a confirmation saying what stays.
    let m = entities::machine::Entity::find().one(&app.db).await.unwrap().unwrap();
    let (page, action) = (format!("/requests/{}", m.request_id), format!("/admin/machines/{}/release", m.id));
    assert!(b.get(&page).await.text().await.unwrap().contains(&format!("action=\"{action}\"")));
    let owner = app.logged_in("alice", "alice-password-123").await;
    let html = owner.get(&page).await.text().await.unwrap();
    assert!(html.contains("lab-ct") && !html.contains(&action), "the owner has no release button");
    assert_eq!(owner.post_form(&page, &action, &[]).await.status(), StatusCode::FORBIDDEN);
    let r = b.post_form(&page, &action, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("name=\"confirmed\""), "asked first");
    assert!(html.contains("The guest stays in Proxmox VE exactly as it is (not stopped, not deleted"), "what stays");
    let running = sim.state().guests[&CT].running;
    let r = b.post_form(&page, &action, &[("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let request = entities::request::Entity::find_by_id(m.request_id).one(&app.db).await.unwrap().unwrap();
    assert_eq!(request.status, "released");
    assert_eq!(sim.state().guests[&CT].running, running, "the guest is left as it was");
}
