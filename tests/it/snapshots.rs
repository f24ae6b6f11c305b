//! Snapshots of ready machines end to end, through the API and the pages, with the PVE simulator:
//! taking, the tree with `current`, rollback (config back, a running guest stopped), delete with
//! re-parenting, the catalog entry's limit, a lock held by another snapshot task, ownership, CSRF and
//! the timeline.

use std::time::Duration;

use proxdesk::domain::roles::Role;
use proxdesk::http::i18n::t;
use proxdesk::integrations::pve::sim::{Endpoint, Fault, SimConfig, SimHandle};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::console_fixtures::{app_on, ready_machine};
use crate::helpers::TestApp;
use crate::qemu_lifecycle::{People, VmOf};

async fn list(app: &TestApp, token: &str, machine: i64) -> (StatusCode, Value) {
    let r = app.get(token, &format!("/api/v1/machines/{machine}/snapshots")).await;
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn take(app: &TestApp, token: &str, machine: i64, body: Value) -> (StatusCode, Value) {
    let r = app.post(token, &format!("/api/v1/machines/{machine}/snapshots"), body).await;
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn delete(app: &TestApp, token: &str, machine: i64, name: &str) -> (StatusCode, Value) {
    let url = app.url(&format!("/api/v1/machines/{machine}/snapshots/{name}"));
    let r = app.api.delete(url).bearer_auth(token).send().await.unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

fn vmid_of(sim: &SimHandle, hostname_key: &str, hostname: &str) -> u64 {
    let state = sim.state();
    state.guests.values().find(|g| g.config.get(hostname_key).map(String::as_str) == Some(hostname)).unwrap().vmid
}

#[tokio::test]
async fn a_container_is_snapshotted_rolled_back_and_pruned_through_the_api() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let (machine, alice, _) = ready_machine(&app).await;
    let vmid = vmid_of(&sim, "hostname", "lab-1");
    assert!(sim.state().guests[&vmid].running);

    let (s, body) = take(&app, &alice, machine, json!({"name": "base", "description": "fresh"})).await;
    assert_eq!((s, body["outcome"].as_str()), (StatusCode::OK, Some("done")), "{body}");
    sim.with_state(|st| st.guests.get_mut(&vmid).unwrap().config.insert("memory".into(), "4096".into()));
    let (s, _) = take(&app, &alice, machine, json!({"name": "second"})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, tree) = list(&app, &alice, machine).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!((tree["count"].clone(), tree["limit"].clone()), (json!(2), json!(5)), "the default limit: {tree}");
    assert_eq!(tree["roots"][0]["name"], "base");
    assert_eq!(tree["roots"][0]["description"], "fresh");
    assert_eq!(tree["roots"][0]["children"][0]["name"], "second");
    assert_eq!(tree["roots"][0]["children"][0]["current"], true, "the present state hangs under the newest");
    assert_eq!(tree["current_parent"], "second");

    // Rollback: the running container is stopped hard, its config is the snapshot's again.
    let url = format!("/api/v1/machines/{machine}/snapshots/base/rollback");
    let r = app.post(&alice, &url, json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let g = sim.state().guests[&vmid].clone();
    assert!(!g.running, "stopped by the rollback");
    assert_ne!(g.config.get("memory").map(String::as_str), Some("4096"), "the config is back");
    assert_eq!(g.config.get("parent").map(String::as_str), Some("base"));
    let rollbacks = sim.state().tasks.keys().filter(|u| u.contains(&format!(":vzrollback:{vmid}:"))).count();
    assert_eq!(rollbacks, 1, "PVE's task type");

    // Deleting `base` re-parents `second`; the present state now descends from none.
    let (s, _) = delete(&app, &alice, machine, "base").await;
    assert_eq!(s, StatusCode::OK);
    let (_, tree) = list(&app, &alice, machine).await;
    assert_eq!(tree["roots"].as_array().unwrap().len(), 1, "{tree}");
    assert_eq!(tree["roots"][0]["name"], "second");
    assert!(tree["current_parent"].is_null(), "{tree}");
    let (s, _) = delete(&app, &alice, machine, "base").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Bad names never reach PVE: 422 naming the field.
    for bad in ["1st", "current", "has space", "x"] {
        let (s, body) = take(&app, &alice, machine, json!({"name": bad})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["errors"][0]["field"], "snapshot_name", "{body}");
    }
    let (s, body) = take(&app, &alice, machine, json!({"name": "second"})).await;
    assert_eq!(
        (s, body["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("error.snapshot_name_taken"))
    );

    // Roll back to the newest (the only one left).
    let r = app.post(&alice, &format!("/api/v1/machines/{machine}/snapshots/rollback-newest"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);

    // Someone else's machine does not exist for them.
    let (bob, _) = app.user("bob", Role::User).await;
    let bob = app.token(&bob).await;
    assert_eq!(list(&app, &bob, machine).await.0, StatusCode::NOT_FOUND);
    assert_eq!(take(&app, &bob, machine, json!({"name": "mine"})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(delete(&app, &bob, machine, "second").await.0, StatusCode::NOT_FOUND);

    let rows = proxdesk::services::audit::timeline(&app.db, "machine", machine).await.unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    for a in ["machine.snapshot_create", "machine.snapshot_rollback", "machine.snapshot_delete"] {
        assert!(actions.contains(&a), "{a} audited: {actions:?}");
    }
    assert!(
        rows.iter().all(|r| !r.action.starts_with("machine.snapshot") || r.details.contains("\"outcome\":\"done\""))
    );
}

#[tokio::test]
async fn a_snapshot_task_holding_the_lock_refuses_another_and_the_limit_is_the_entrys() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let (machine, alice, _) = ready_machine(&app).await;
    let vmid = vmid_of(&sim, "hostname", "lab-1");

    // Someone snapshots the container in PVE itself and the task hangs, holding `lock: snapshot`.
    sim.faults().inject_times(Endpoint::LxcSnapshotCreate, Fault::TaskHang, 1);
    let pve = app.state.pve.clone().unwrap();
    let ty = proxdesk::domain::guest::GuestType::Lxc;
    pve.snapshot_create("pve1", ty, vmid, "outside", "", false).await.unwrap();
    for _ in 0..100 {
        if sim.state().guests[&vmid].lock() == Some("snapshot") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (s, problem) = take(&app, &alice, machine, json!({"name": "mine"})).await;
    assert_eq!((s, problem["type"].as_str()), (StatusCode::CONFLICT, Some("/problems/machine-busy")), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("snapshot"), "the lock is named: {problem}");
    sim.with_state(|st| {
        let g = st.guests.get_mut(&vmid).unwrap();
        g.config.remove("lock");
        g.snapshots.clear();
    });

    // The admin limits the entry to one snapshot per machine.
    let (ops, _) = app.user("ops", Role::Admin).await;
    let ops = app.token(&ops).await;
    let templates: Value = app.get(&ops, "/api/v1/templates").await.json().await.unwrap();
    let tpl = templates[0]["id"].as_i64().unwrap();
    let body = json!({"name": "Debian", "node": "pve1", "vmid": 9000, "default_cores": 1, "max_cores": 4,
        "default_memory_mib": 1024, "max_memory_mib": 4096, "default_disk_gib": 8, "max_disk_gib": 32,
        "finish_mode": "none", "snapshot_limit": 1});
    let r = app.api.put(app.url(&format!("/api/v1/admin/templates/{tpl}"))).bearer_auth(&ops).json(&body).send();
    assert_eq!(r.await.unwrap().status(), StatusCode::OK);
    assert_eq!(take(&app, &alice, machine, json!({"name": "one"})).await.0, StatusCode::OK);
    let (s, problem) = take(&app, &alice, machine, json!({"name": "two"})).await;
    assert_eq!((s, problem["type"].as_str()), (StatusCode::CONFLICT, Some("/problems/snapshot-limit")), "{problem}");
    assert_eq!(sim.state().guests[&vmid].snapshots.len(), 1, "nothing was asked of PVE");
    let mut bad = body.clone();
    bad["snapshot_limit"] = json!(101);
    let r = app.api.put(app.url(&format!("/api/v1/admin/templates/{tpl}"))).bearer_auth(&ops).json(&bad).send();
    // Over the declared `maximum`: refused by the framework.
    assert_eq!(r.await.unwrap().status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_vm_keeps_its_memory_in_a_snapshot_and_the_pages_drive_it_all() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let people = People::on(&app).await;
    let vm = people.vm(&app, VmOf::CloudInit, "snap-vm").await;
    let (s, body) = take(&app, &people.alice, vm.machine, json!({"name": "live", "with_ram": true})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(sim.state().guests[&vm.vmid].snapshots["live"].vmstate, "RAM saved from the running VM");
    let tasks = sim.state().tasks.keys().filter(|u| u.contains(&format!(":qmsnapshot:{}:", vm.vmid))).count();
    assert_eq!(tasks, 1);

    let b = app.logged_in("alice", "alice-password-123").await;
    let page = format!("/machines/{}", vm.machine);
    let html = b.get(&page).await.text().await.unwrap();
    assert!(html.contains(&t("en", "snapshot.title")) && html.contains("live"), "the details page's card lists it");
    assert!(html.contains(&t("en", "snapshot.you_are_here")), "current is marked");

    // Take through the form; a bad name re-shows the form with what was typed.
    let action = format!("/machines/{}/snapshots", vm.machine);
    let r = b.post_form(&page, &action, &[("snapshot_name", "9lives"), ("snapshot_description", "typed text")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("9lives") && html.contains("typed text"), "what was typed is kept");
    assert!(html.contains(&t("en", "error.snapshot_name_invalid")));
    let r = b.post_form(&page, &action, &[("snapshot_name", "cold"), ("snapshot_description", "")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], format!("/machines/{}?done=snapshot_taken", vm.machine).as_str());

    // Rollback without JavaScript asks first; confirmed, the running VM is stopped and restored.
    let rollback = format!("/machines/{}/snapshots/cold/rollback", vm.machine);
    let r = b.post_form(&page, &rollback, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains(&t("en", "snapshot.rollback_confirm").replace("{name}", "cold")));
    let r = b.post_form(&page, &rollback, &[("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(!sim.state().guests[&vm.vmid].running, "a snapshot without RAM leaves the VM stopped");
    // A snapshot with RAM resumes the VM.
    let r =
        b.post_form(&page, &format!("/machines/{}/snapshots/live/rollback", vm.machine), &[("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(sim.state().guests[&vm.vmid].running);

    // Delete through the form, confirmed.
    let r =
        b.post_form(&page, &format!("/machines/{}/snapshots/live/delete", vm.machine), &[("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(!sim.state().guests[&vm.vmid].snapshots.contains_key("live"));

    // No CSRF token, no action.
    let fields = vec![("snapshot_name".to_owned(), "nocsrf".to_owned())];
    assert_eq!(b.post_raw(&action, &fields).await.status(), StatusCode::FORBIDDEN);
    assert!(!sim.state().guests[&vm.vmid].snapshots.contains_key("nocsrf"));

    // Another user gets 404 from the pages too.
    let (_, pw) = app.user("bob", Role::User).await;
    let bob = app.logged_in("bob", &pw).await;
    let r =
        bob.post_form("/", &format!("/machines/{}/snapshots/cold/delete", vm.machine), &[("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(sim.state().guests[&vm.vmid].snapshots.contains_key("cold"));

    // The timeline of the details page shows every snapshot action.
    let html = b.get(&page).await.text().await.unwrap();
    for key in ["audit.machine.snapshot_create", "audit.machine.snapshot_rollback", "audit.machine.snapshot_delete"] {
        assert!(html.contains(&t("en", key)), "{key} on the timeline");
    }
}
