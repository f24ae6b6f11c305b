//! The machines lists: the owner's `/machines` and the admins' `/admin/machines`, filtered by name, VMID,
//! live state, node, catalog entry and (admins) owner, with keyset pages; a user never sees another's.

use std::time::{Duration, Instant};

use proxdesk::domain::roles::Role;
use proxdesk::services::machines::{MachineFilter, PowerState, search};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Browser, TestApp};
use crate::provision::{app_with_cluster, approved_request, settle};
use proxdesk::integrations::pve::sim::SimHandle;

/// Submits `hostname` with `token`, approves it with `admin`, waits until it is ready; its machine id and VMID.
async fn ready(app: &TestApp, token: &str, admin: &str, template: i64, hostname: &str) -> (i64, u64) {
    let id = app.submit_ok(token, template, hostname).await;
    let r = app.post(admin, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(settle(app, token, id).await["status"], "ready");
    let m = proxdesk::services::machines::of_request(&app.db, id).await.unwrap().unwrap();
    (m.id, m.vmid.unwrap() as u64)
}

async fn page(b: &Browser, path: &str) -> (StatusCode, String) {
    let r = b.get(path).await;
    (r.status(), r.text().await.unwrap())
}

/// A cluster with alice's ready `lab-1` (request `first`, from catalog entry `tpl`) and an admin, ada.
struct Lab {
    app: TestApp,
    sim: SimHandle,
    alice_t: String,
    first: i64,
    tpl: i64,
    ada_pw: String,
    admin_t: String,
}

async fn lab() -> Lab {
    let (app, sim) = app_with_cluster(None).await;
    let (alice_t, first) = approved_request(&app, "none").await;
    assert_eq!(settle(&app, &alice_t, first).await["status"], "ready");
    let request: Value = app.get(&alice_t, &format!("/api/v1/requests/{first}")).await.json().await.unwrap();
    let tpl = request["template_id"].as_i64().unwrap();
    let (ada, ada_pw) = app.user("ada", Role::Admin).await;
    let admin_t = app.token(&ada).await;
    Lab { app, sim, alice_t, first, tpl, ada_pw, admin_t }
}

#[tokio::test]
async fn lists_filter_by_name_vmid_state_node_entry_and_owner_and_never_show_anothers_machines() {
    let Lab { app, sim, alice_t, first, tpl, ada_pw, admin_t } = lab().await;
    let (bob, bob_pw) = app.user("bob", Role::User).await;
    let bob_t = app.token(&bob).await;
    let (lab2, lab2_vmid) = ready(&app, &alice_t, &admin_t, tpl, "lab-2").await;
    ready(&app, &bob_t, &admin_t, tpl, "web-1").await;
    let lab1_vmid = proxdesk::services::machines::of_request(&app.db, first).await.unwrap().unwrap().vmid.unwrap();

    // lab-2 powered off: the state filter reads PVE's live state.
    let r = app.post(&alice_t, &format!("/api/v1/machines/{lab2}/stop"), json!({})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
    let until = Instant::now() + Duration::from_secs(10);
    while sim.state().guests[&lab2_vmid].running {
        assert!(Instant::now() < until, "lab-2 never stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let alice = app.logged_in("alice", "alice-password-123").await;
    let (status, html) = page(&alice, "/machines").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(">lab-1<") && html.contains(">lab-2<") && !html.contains("web-1"), "{html}");
    assert!(html.contains(r#"href="&#x2f;machines""#), "the nav links the list");

    let (_, html) = page(&alice, "/machines?name=LAB-2").await;
    assert!(html.contains(">lab-2<") && !html.contains(">lab-1<"), "name filter, any case");
    let (_, html) = page(&alice, "/machines?state=stopped").await;
    assert!(html.contains(">lab-2<") && !html.contains(">lab-1<"), "state filter: {html}");
    let (_, html) = page(&alice, "/machines?state=running").await;
    assert!(html.contains(">lab-1<") && !html.contains(">lab-2<"));
    let (_, html) = page(&alice, &format!("/machines?vmid={lab1_vmid}")).await;
    assert!(html.contains(">lab-1<") && !html.contains(">lab-2<"), "vmid filter");
    let (_, html) = page(&alice, "/machines?node=pve1").await;
    assert!(html.contains(">lab-1<") && html.contains(">lab-2<"));
    let (_, html) = page(&alice, "/machines?node=pve3").await;
    assert!(!html.contains(">lab-1<") && !html.contains(">lab-2<"), "node filter");
    let (_, html) = page(&alice, &format!("/machines?template_id={tpl}&name=lab")).await;
    assert!(html.contains(">lab-1<") && html.contains(">lab-2<"), "catalog entry filter");

    // A bad VMID: a clear error, what was typed kept.
    let (status, html) = page(&alice, "/machines?vmid=12ab&name=lab").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains(r#"value="12ab""#) && html.contains(r#"value="lab""#) && html.contains(r#"aria-invalid="true""#)
    );

    // Whatever the filter, alice never sees bob's machine, and the admins' list is not hers.
    let (_, html) = page(&alice, "/machines?owner=bob&name=web").await;
    assert!(!html.contains("web-1"));
    let (status, _) = page(&alice, "/admin/machines").await;
    assert!(status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND, "{status}");

    // A machine's own address is its details page, with an action's flash; only for its owner.
    let (status, html) = page(&alice, &format!("/machines/{lab2}?done=snapshot_taken")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&proxdesk::http::i18n::t("en", "flash.snapshot_taken")), "the flash is kept");
    let (status, _) = page(&app.logged_in("bob", &bob_pw).await, &format!("/machines/{lab2}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another user's machine is not found");
    let (status, _) = page(&app.logged_in("ada", &ada_pw).await, &format!("/machines/{lab2}")).await;
    assert_eq!(status, StatusCode::OK, "admins may see it too");

    let admin = app.logged_in("ada", &ada_pw).await;
    let (status, html) = page(&admin, "/admin/machines").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(">lab-1<") && html.contains(">web-1<") && html.contains(">bob<"));
    let (_, html) = page(&admin, "/admin/machines?owner=bob").await;
    assert!(html.contains(">web-1<") && !html.contains(">lab-1<"), "owner filter");
}

#[tokio::test]
async fn pages_are_keyset_pages_that_keep_the_filters() {
    // The simulator must outlive the test: `sim: _sim` keeps it, `..` would drop it at once.
    let Lab { app, sim: _sim, alice_t, tpl, admin_t, .. } = lab().await;
    ready(&app, &alice_t, &admin_t, tpl, "lab-2").await;
    ready(&app, &alice_t, &admin_t, tpl, "other-3").await;
    let alice = proxdesk::services::users::find_by_name(&app.db, "alice").await.unwrap().unwrap();
    let actor = proxdesk::services::Actor::try_from(alice).unwrap();

    let filter = MachineFilter { name: Some("lab".into()), ..Default::default() };
    let one = search(&app.db, None, &actor, &filter, None, Some(1)).await.unwrap();
    assert_eq!(one.items.iter().map(|r| r.machine.hostname.as_str()).collect::<Vec<_>>(), ["lab-2"]);
    let two = search(&app.db, None, &actor, &filter, one.next_cursor, Some(1)).await.unwrap();
    assert_eq!(two.items.iter().map(|r| r.machine.hostname.as_str()).collect::<Vec<_>>(), ["lab-1"]);
    assert_eq!(two.next_cursor, None, "no third page");

    // Without PVE every state is unknown: a state filter pages over what matches only.
    let unknown = MachineFilter { state: Some(PowerState::Unknown), ..Default::default() };
    let all = search(&app.db, None, &actor, &unknown, None, Some(2)).await.unwrap();
    assert_eq!(all.items.len(), 2);
    let rest = search(&app.db, None, &actor, &unknown, all.next_cursor, Some(2)).await.unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.next_cursor, None);
    let running = MachineFilter { state: Some(PowerState::Running), ..Default::default() };
    assert!(search(&app.db, None, &actor, &running, None, Some(2)).await.unwrap().items.is_empty());
}
