//! Bulk actions through the server, the job engine and the PVE simulator: a run where some machines
//! are done, some refused (stopped already, locked, someone else's, unknown) and one fails with PVE's
//! reason, each on its own; a reply lost after PVE acted; the list's checkboxes, the confirmation before
//! a power off or delete, the run's page, CSRF and ownership, and a bulk delete of a container and a VM.

use std::time::{Duration, Instant};

use proxdesk::domain::roles::Role;
use proxdesk::http::i18n::t;
use proxdesk::integrations::pve::sim::{Endpoint, Fault, SimConfig, SimHandle};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::console_fixtures::app_on;
use crate::helpers::TestApp;
use crate::provision::{app_with_cluster, approved_request, settle};
use crate::qemu_lifecycle::{People, Vm, VmOf};

/// Submits `hostname` with `token`, approves it with `admin`, waits until it is ready; its machine id and VMID.
async fn ready(app: &TestApp, token: &str, admin: &str, template: i64, hostname: &str) -> (i64, u64) {
    let id = app.submit_ok(token, template, hostname).await;
    let r = app.post(admin, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(settle(app, token, id).await["status"], "ready");
    let m = proxdesk::services::machines::of_request(&app.db, id).await.unwrap().unwrap();
    (m.id, m.vmid.unwrap() as u64)
}

/// Reads run `id` with `token` until every item settled.
async fn finished(app: &TestApp, token: &str, id: i64) -> Value {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let run: Value = app.get(token, &format!("/api/v1/machines/bulk/{id}")).await.json().await.unwrap();
        if run["finished"] == true {
            return run;
        }
        assert!(Instant::now() < until, "bulk run {id} never finished: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The item of `machine` in `run`.
fn item(run: &Value, machine: i64) -> &Value {
    run["items"].as_array().unwrap().iter().find(|i| i["machine_id"] == machine).unwrap()
}

fn running(sim: &SimHandle, vmid: u64) -> bool {
    sim.state().guests[&vmid].running
}

async fn audited(app: &TestApp, action: &str) -> usize {
    let rows = entities::audit_entry::Entity::find().all(&app.db).await.unwrap();
    rows.iter().filter(|r| r.action == action).count()
}

async fn wait_stopped(sim: &SimHandle, vmid: u64) {
    let until = Instant::now() + Duration::from_secs(10);
    while running(sim, vmid) {
        assert!(Instant::now() < until, "guest {vmid} never stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_bulk_power_off_settles_each_machine_on_its_own() {
    let (app, sim) = app_with_cluster(None).await;
    let (alice_t, first) = approved_request(&app, "none").await;
    assert_eq!(settle(&app, &alice_t, first).await["status"], "ready");
    let request: Value = app.get(&alice_t, &format!("/api/v1/requests/{first}")).await.json().await.unwrap();
    let tpl = request["template_id"].as_i64().unwrap();
    let (ada, _) = app.user("ada", Role::Admin).await;
    let admin_t = app.token(&ada).await;
    let quota = json!({"max_machines": 20, "max_cores": 40, "max_memory_mib": 65536, "max_disk_gib": 1000});
    let r = app.api.put(app.url("/api/v1/quotas/user")).bearer_auth(&admin_t).json(&quota).send().await.unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let m1 = proxdesk::services::machines::of_request(&app.db, first).await.unwrap().unwrap();
    let (lab1, vm1) = (m1.id, m1.vmid.unwrap() as u64);
    let (lab2, vm2) = ready(&app, &alice_t, &admin_t, tpl, "lab-2").await;
    let (lab3, vm3) = ready(&app, &alice_t, &admin_t, tpl, "lab-3").await;
    let (lab4, vm4) = ready(&app, &alice_t, &admin_t, tpl, "lab-4").await;
    let (bob, _) = app.user("bob", Role::User).await;
    let bob_t = app.token(&bob).await;
    let (web1, web1_vmid) = ready(&app, &bob_t, &admin_t, tpl, "web-1").await;

    // lab-2 is already off, lab-3 is held by a backup; one power off fails inside PVE's task.
    let r = app.post(&alice_t, &format!("/api/v1/machines/{lab2}/stop"), json!({})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    wait_stopped(&sim, vm2).await;
    sim.with_state(|s| s.guests.get_mut(&vm3).unwrap().config.insert("lock".into(), "backup".into()));
    sim.faults().inject_times(Endpoint::LxcStop, Fault::TaskError("lxc-stop: container did not stop".into()), 1);

    let ids = json!([lab1, lab2, lab3, lab4, web1, 999_999, lab1]);
    let r = app.post(&alice_t, "/api/v1/machines/bulk", json!({"action": "stop", "machine_ids": ids})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
    let started: Value = r.json().await.unwrap();
    assert_eq!(started["items"].as_array().unwrap().len(), 6, "each machine once: {started}");
    assert_eq!(item(&started, web1)["state"], "refused", "another user's machine is refused at once");
    let run = finished(&app, &alice_t, started["id"].as_i64().unwrap()).await;

    // Of lab-1 and lab-4 (both running), one failed in PVE's task with its words, the other is off.
    let (a, b) = (item(&run, lab1), item(&run, lab4));
    let failed = [a, b].into_iter().filter(|i| i["state"] == "failed").collect::<Vec<_>>();
    assert_eq!(failed.len(), 1, "{run}");
    assert_eq!(failed[0]["reason"], "task_failed");
    assert!(failed[0]["message"].as_str().unwrap().contains("container did not stop"), "{run}");
    assert_eq!([a, b].into_iter().filter(|i| i["state"] == "done").count(), 1, "{run}");
    assert_eq!(running(&sim, vm1) as u8 + running(&sim, vm4) as u8, 1, "exactly the failed one still runs");
    assert_eq!(
        (item(&run, lab2)["state"].as_str(), item(&run, lab2)["reason"].as_str()),
        (Some("refused"), Some("not_running"))
    );
    let locked = item(&run, lab3);
    assert_eq!((locked["state"].as_str(), locked["reason"].as_str()), (Some("refused"), Some("locked")), "{run}");
    assert_eq!(locked["message"], "backup", "the lock is named");
    assert!(running(&sim, vm3), "a locked guest is left alone");
    for unknown in [web1, 999_999] {
        let i = item(&run, unknown);
        assert_eq!((i["state"].as_str(), i["reason"].as_str()), (Some("refused"), Some("not_found")));
        assert!(i["hostname"].is_null(), "nothing about another user's machine is shown");
    }
    assert!(running(&sim, web1_vmid), "bob's machine was never touched");
    assert_eq!(audited(&app, "machine.bulk").await, 1);
    assert_eq!(audited(&app, "machine.stop").await, 2 + 1, "lab-2 by hand, then the two attempted");

    // The run is alice's: bob cannot read it, an admin can.
    let path = format!("/api/v1/machines/bulk/{}", run["id"]);
    assert_eq!(app.get(&bob_t, &path).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get(&admin_t, &path).await.status(), StatusCode::OK);

    // Bad input: no machines, an unknown action.
    let r = app.post(&alice_t, "/api/v1/machines/bulk", json!({"action": "stop", "machine_ids": []})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{:?}", r.text().await);
    let r = app.post(&alice_t, "/api/v1/machines/bulk", json!({"action": "explode", "machine_ids": [lab1]})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A start whose reply is lost after PVE started the guest: the retry finds it running and calls it done.
    sim.faults().clear();
    sim.with_state(|s| s.guests.get_mut(&vm3).unwrap().config.remove("lock"));
    sim.faults().inject_times(Endpoint::LxcStart, Fault::AppliedThenDrop, 1);
    let r = app
        .post(&alice_t, "/api/v1/machines/bulk", json!({"action": "start", "machine_ids": [lab1, lab2, lab4]}))
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let run = finished(&app, &alice_t, r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()).await;
    let states: Vec<&str> = [lab1, lab2, lab4].iter().map(|m| item(&run, *m)["state"].as_str().unwrap()).collect();
    // The one already running (whichever of lab-1/lab-4 survived the failed stop) is refused; the others start.
    assert_eq!(states.iter().filter(|s| **s == "done").count(), 2, "{run}");
    assert_eq!(item(&run, lab2)["state"], "done", "{run}");
    assert!(running(&sim, vm1) && running(&sim, vm2) && running(&sim, vm4));

    // An admin acts on anyone's machines from the admins' list: bob's is rebooted, PVE ran the task.
    let r = app.post(&admin_t, "/api/v1/machines/bulk", json!({"action": "reboot", "machine_ids": [web1]})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let run = finished(&app, &admin_t, r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()).await;
    assert_eq!(item(&run, web1)["state"], "done", "{run}");
    assert_eq!(item(&run, web1)["hostname"], "web-1");
    let tasks: Vec<String> = sim.state().tasks.keys().cloned().collect();
    assert!(tasks.iter().any(|u| u.contains(&format!(":vzreboot:{web1_vmid}:"))), "{tasks:?}");
}

/// Alice's ready container `hostname`, on pve1 from template 9000.
async fn container(app: &TestApp, people: &People, hostname: &str) -> Vm {
    let entry = app.template_at(&format!("{hostname} entry"), "pve1", 9000, "none").await;
    let id = app.submit_ok(&people.alice, entry, hostname).await;
    let r = app.post(&people.admin, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(settle(app, &people.alice, id).await["status"], "ready");
    let m = proxdesk::services::machines::of_request(&app.db, id).await.unwrap().unwrap();
    Vm { request: id, machine: m.id, vmid: m.vmid.unwrap() as u64 }
}

#[tokio::test]
async fn the_lists_select_machines_for_a_bulk_delete_after_confirmation() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let people = People::on(&app).await;
    let vm = people.vm(&app, VmOf::CloudInit, "lab-vm").await;
    let ct = container(&app, &people, "lab-ct").await;
    let b = app.logged_in("alice", "alice-password-123").await;

    // The list has a checkbox per machine, bound to the bulk form.
    let html = b.get("/machines").await.text().await.unwrap();
    for id in [vm.machine, ct.machine] {
        assert!(html.contains(&format!(r#"name="machine" value="{id}" form="bulk""#)), "{html}");
    }
    assert!(html.contains(r#"action="&#x2f;machines&#x2f;bulk""#) || html.contains(r#"action="/machines/bulk""#));

    // Nothing selected: back to the list, which says so.
    let r = b.post_form("/machines", "/machines/bulk", &[("action", "start")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = b.get(r.headers()["location"].to_str().unwrap()).await.text().await.unwrap();
    assert!(html.contains(&t("en", "bulk.none_selected")), "{html}");

    // Without its CSRF token nothing happens.
    let forged = vec![
        ("action".into(), "delete".into()),
        ("machine".into(), vm.machine.to_string()),
        ("confirmed".into(), "yes".into()),
    ];
    assert_eq!(b.post_raw("/machines/bulk", &forged).await.status(), StatusCode::FORBIDDEN);

    // A delete asks first, naming how many, and keeps the selection.
    let (v, c) = (vm.machine.to_string(), ct.machine.to_string());
    let fields = [("action", "delete"), ("machine", v.as_str()), ("machine", c.as_str())];
    let r = b.post_form("/machines", "/machines/bulk", &fields).await;
    assert_eq!(r.status(), StatusCode::OK);
    let confirm = r.text().await.unwrap();
    assert!(confirm.contains("Delete 2 machines"), "{confirm}");
    assert!(confirm.contains(&format!(r#"value="{v}""#)) && confirm.contains(&format!(r#"value="{c}""#)));
    assert!(sim.state().guests.contains_key(&vm.vmid), "nothing deleted before confirmation");

    // Another user's page for the run is not found; the owner's shows each machine's result.
    let mut confirmed = fields.to_vec();
    confirmed.push(("confirmed", "yes"));
    let r = b.post_form("/machines", "/machines/bulk", &confirmed).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(page.starts_with("/machines/bulk/"), "{page}");
    let until = Instant::now() + Duration::from_secs(30);
    let html = loop {
        let html = b.get(&page).await.text().await.unwrap();
        if html.contains(&t("en", "bulk.finished").replace("{total}", "2")) {
            break html;
        }
        assert!(Instant::now() < until, "the run never finished: {html}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(html.matches(&format!("<strong>{}</strong>", t("en", "bulk.state.done"))).count(), 2, "{html}");
    assert!(html.contains(">lab-vm<") && html.contains(">lab-ct<"));
    assert!(
        !sim.state().guests.contains_key(&vm.vmid) && !sim.state().guests.contains_key(&ct.vmid),
        "both guests are gone"
    );
    for request in [vm.request, ct.request] {
        let r: Value = app.get(&people.alice, &format!("/api/v1/requests/{request}")).await.json().await.unwrap();
        assert_eq!(r["status"], "deleted");
    }
    app.user("mallory", Role::User).await;
    let m = app.logged_in("mallory", "mallory-password-123").await;
    assert_eq!(m.get(&page).await.status(), StatusCode::NOT_FOUND);
}
