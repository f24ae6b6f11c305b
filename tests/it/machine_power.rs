//! Power off and reset of a ready machine, through the server and the PVE simulator: the buttons a
//! container and a VM show, the confirmation page before acting, PVE's task types, the refusals (reset
//! of a container, power off or reset of a stopped guest, a locked guest), CSRF and ownership, audit.

use std::time::Duration;

use proxdesk::domain::roles::Role;
use proxdesk::http::i18n::t;
use proxdesk::integrations::pve::sim::{SimConfig, SimHandle};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::console_fixtures::app_on;
use crate::helpers::TestApp;
use crate::provision::{app_with_cluster, approved_request, settle};
use crate::qemu_lifecycle::{People, VmOf, wait_power};

async fn power(app: &TestApp, token: &str, machine: i64, action: &str) -> (StatusCode, Value) {
    let r = app.post(token, &format!("/api/v1/machines/{machine}/{action}"), json!({})).await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn audited(app: &TestApp, action: &str) -> usize {
    let rows = entities::audit_entry::Entity::find().all(&app.db).await.unwrap();
    rows.iter().filter(|r| r.action == action).count()
}

/// The task types PVE ran for `vmid`, in UPID order.
fn task_kinds(sim: &SimHandle, vmid: u64) -> Vec<String> {
    let tasks = sim.state().tasks.keys().cloned().collect::<Vec<_>>();
    tasks
        .iter()
        .filter(|u| u.contains(&format!(":{vmid}:")))
        .map(|u| u.split(':').nth(5).unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn a_container_powers_off_after_confirmation_and_cannot_be_reset() {
    let (app, sim) = app_with_cluster(None).await;
    let (token, id) = approved_request(&app, "none").await;
    assert_eq!(settle(&app, &token, id).await["status"], "ready");
    let m = proxdesk::services::machines::of_request(&app.db, id).await.unwrap().unwrap();
    let (mid, vmid) = (m.id, m.vmid.unwrap() as u64);
    let b = app.logged_in("alice", "alice-password-123").await;
    let (page, action) = (format!("/requests/{id}"), format!("/machines/{mid}/action"));

    let html = b.get(&page).await.text().await.unwrap();
    assert!(
        html.contains(r#"value="stop""#) && html.contains(&t("en", "machine.stop")),
        "a running CT offers power off"
    );
    assert!(!html.contains(r#"value="reset""#), "a container has no reset");
    assert!(html.contains("data-confirm=\"Power off lab-1 now?"), "JavaScript asks before powering off");

    // Reset is refused before PVE is asked (it has no `status/reset` for containers).
    let (status, problem) = power(&app, &token, mid, "reset").await;
    assert_eq!((status, problem["type"].as_str()), (StatusCode::CONFLICT, Some("/problems/vm-only")), "{problem}");
    let r = b.post_form(&page, &action, &[("action", "reset"), ("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains(&t("en", "machine.refused.vm_only")));

    // Another user sees nothing; a form without its CSRF token does nothing.
    let (mallory, _) = app.user("mallory", Role::User).await;
    let mt = app.token(&mallory).await;
    assert_eq!(power(&app, &mt, mid, "stop").await.0, StatusCode::NOT_FOUND);
    let forged = vec![("action".to_string(), "stop".to_string()), ("confirmed".to_string(), "yes".to_string())];
    assert_eq!(b.post_raw(&action, &forged).await.status(), StatusCode::FORBIDDEN);

    // Without JavaScript: a confirmation page first, nothing done yet, and it keeps the action.
    let r = b.post_form(&page, &action, &[("action", "stop")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let confirm = r.text().await.unwrap();
    assert!(confirm.contains("Power off lab-1 now?") && confirm.contains(r#"value="stop""#), "{confirm}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(sim.state().guests[&vmid].running, "nothing powered off before confirmation");
    assert_eq!(audited(&app, "machine.stop").await, 0);

    let r = b.post_form(&page, &action, &[("action", "stop"), ("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    wait_power(&sim, vmid, false).await;
    assert!(task_kinds(&sim, vmid).iter().any(|k| k == "vzstop"), "{:?}", task_kinds(&sim, vmid));
    assert_eq!(audited(&app, "machine.stop").await, 1);

    // A stopped container: power off is refused in the visitor's words, and the button is gone.
    let (status, problem) = power(&app, &token, mid, "stop").await;
    assert_eq!((status, problem["type"].as_str()), (StatusCode::CONFLICT, Some("/problems/machine-not-running")));
    let r = b.post_form(&page, &action, &[("action", "stop"), ("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let html = r.text().await.unwrap();
    assert!(html.contains(&t("en", "machine.refused.not_running")), "the refusal is explained");
    assert!(!html.contains(r#"value="stop""#), "a stopped machine offers no power off");
    let timeline = b.get(&page).await.text().await.unwrap();
    assert!(timeline.contains(&t("en", "audit.machine.stop")), "the timeline shows the power off");
}

#[tokio::test]
async fn a_vm_resets_and_powers_off_after_confirmation_and_a_locked_one_is_refused() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let people = People::on(&app).await;
    let vm = people.vm(&app, VmOf::CloudInit, "lab-vm").await;
    let b = app.logged_in("alice", "alice-password-123").await;
    let (page, action) = (format!("/requests/{}", vm.request), format!("/machines/{}/action", vm.machine));

    let html = b.get(&page).await.text().await.unwrap();
    assert!(html.contains(r#"value="stop""#) && html.contains(r#"value="reset""#), "a running VM offers both");
    assert!(html.contains("data-confirm=\"Reset lab-vm now?"));

    let r = b.post_form(&page, &action, &[("action", "reset")]).await;
    assert_eq!(r.status(), StatusCode::OK, "reset unconfirmed: the confirmation page");
    assert!(r.text().await.unwrap().contains("Reset lab-vm now?"));
    assert!(!task_kinds(&sim, vm.vmid).iter().any(|k| k == "qmreset"), "nothing reset before confirmation");
    let r = b.post_form(&page, &action, &[("action", "reset"), ("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    wait_power(&sim, vm.vmid, true).await;
    assert!(task_kinds(&sim, vm.vmid).iter().any(|k| k == "qmreset"), "{:?}", task_kinds(&sim, vm.vmid));
    assert_eq!(audited(&app, "machine.reset").await, 1);

    // A guest locked by another operation is refused with PVE's lock name; skiplock is never sent.
    sim.with_state(|s| s.guests.get_mut(&vm.vmid).unwrap().config.insert("lock".into(), "backup".into()));
    let (status, problem) = power(&app, &people.alice, vm.machine, "stop").await;
    assert_eq!((status, problem["type"].as_str()), (StatusCode::CONFLICT, Some("/problems/machine-busy")), "{problem}");
    assert!(problem["detail"].as_str().unwrap_or("").contains("backup"), "{problem}");
    sim.with_state(|s| s.guests.get_mut(&vm.vmid).unwrap().config.remove("lock"));
    assert!(sim.state().guests[&vm.vmid].running, "a locked VM was left alone");

    // The admin may power off alice's VM through the API.
    let (status, _) = power(&app, &people.admin, vm.machine, "stop").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_power(&sim, vm.vmid, false).await;
    assert!(task_kinds(&sim, vm.vmid).iter().any(|k| k == "qmstop"));
    for action in ["stop", "reset"] {
        let (status, problem) = power(&app, &people.alice, vm.machine, action).await;
        let refused = (status, problem["type"].as_str());
        assert_eq!(refused, (StatusCode::CONFLICT, Some("/problems/machine-not-running")), "{action}: {problem}");
    }
    assert_eq!(audited(&app, "machine.stop").await, 1);
    let html = b.get(&page).await.text().await.unwrap();
    assert!(!html.contains(r#"value="reset""#) && !html.contains(r#"value="stop""#), "a stopped VM offers neither");
}
