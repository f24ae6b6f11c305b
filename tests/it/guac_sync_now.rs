//! "Sync now" on the admin's Guacamole page: a CSRF-checked form that queues a run for the job engine.

use proxdesk::domain::roles::Role;
use proxdesk::workflows::guac_sync::KIND;
use reqwest::StatusCode;

use crate::guac_e2e::{NOTED_VM, NOTES, desk};
use crate::helpers::{TestApp, spawn_app};

const PAGE: &str = "/admin/guacamole";
const ACTION: &str = "/admin/guacamole/sync";

async fn queued_syncs(app: &TestApp) -> usize {
    let filter = jobs::JobFilter { kind: Some(KIND.into()), ..Default::default() };
    jobs::list(&app.db, &filter).await.unwrap().len()
}

fn location(r: &reqwest::Response) -> &str {
    r.headers()["location"].to_str().unwrap()
}

#[tokio::test]
async fn an_admins_sync_now_queues_a_run_that_the_page_then_shows_with_its_counts() {
    let desk = desk().await;
    desk.set_notes("pve1", NOTED_VM, NOTES).await;
    let (_, pw) = desk.app.user("chief", Role::Admin).await;
    let b = desk.app.logged_in("chief", &pw).await;
    let html = b.get(PAGE).await.text().await.unwrap();
    assert!(html.contains("No sync has run yet.") && html.contains(">Sync now</button>"), "{html}");

    let r = b.post_form(PAGE, ACTION, &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/admin/guacamole?done=guac_sync_queued");
    assert_eq!(queued_syncs(&desk.app).await, 1);
    let html = b.get(location(&r)).await.text().await.unwrap();
    assert!(html.contains("Sync queued; it runs in a moment."), "{html}");

    let run = desk.run_after(0).await;
    assert_eq!((run.desired, run.created, run.error_count, run.failure), (2, 2, 0, None), "{}", run.diagnostics);
    assert_eq!(desk.guac.state().connections.len(), 2);
    let html = b.get(PAGE).await.text().await.unwrap();
    // The last run in words, and the run in the history: wanted, created, updated, deleted, permissions.
    assert!(html.contains("2 wanted") && html.contains("2 created, 0 updated, 0 removed"), "{html}");
    let cells = ["Wanted\" class=\"num\">2<", "Created\" class=\"num\">2<", "Updated\" class=\"num\">0<"];
    assert!(cells.iter().all(|c| html.contains(c)), "{html}");
    assert!(!html.contains("No sync has run yet."));
    let audit = b.get("/admin/audit?action=guac.sync_requested").await.text().await.unwrap();
    assert!(audit.contains(">Guacamole sync requested</td>") && audit.contains("chief"), "{audit}");
}

#[tokio::test]
async fn sync_now_refuses_non_admins_and_forms_without_a_csrf_token() {
    let desk = desk().await;
    let (_, pw) = desk.app.user("alice", Role::User).await;
    let alice = desk.app.logged_in("alice", &pw).await;
    let r = alice.post_form("/", ACTION, &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(alice.get(PAGE).await.status(), StatusCode::FORBIDDEN);

    let (_, pw) = desk.app.user("chief", Role::Admin).await;
    let root = desk.app.logged_in("chief", &pw).await;
    let r = root.post_raw(ACTION, &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = root.post_raw(ACTION, &[("csrf".into(), "forged".into())]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(queued_syncs(&desk.app).await, 0, "nothing was queued");
}

#[tokio::test]
async fn without_guacamole_the_page_says_so_and_sync_now_queues_nothing() {
    let app = spawn_app().await;
    let (_, pw) = app.user("chief", Role::Admin).await;
    let b = app.logged_in("chief", &pw).await;
    let html = b.get(PAGE).await.text().await.unwrap();
    assert!(html.contains("Guacamole is not configured") && !html.contains("Sync now"), "{html}");
    let r = b.post_form(PAGE, ACTION, &[]).await;
    assert_eq!(location(&r), "/admin/guacamole?done=guac_unavailable");
    let html = b.get(location(&r)).await.text().await.unwrap();
    assert!(html.contains("The sync cannot run: Guacamole or Proxmox VE is not configured."), "{html}");
    assert_eq!(queued_syncs(&app).await, 0);

    // Guacamole without a cluster: configured, but nothing could run the sync.
    let app = crate::helpers::spawn_app_with(|raw| {
        raw.set("guac_url", "http://127.0.0.1:9");
        raw.set("guac_user", "guacadmin");
        raw.set("guac_password", "guacadmin");
    })
    .await;
    let (_, pw) = app.user("chief", Role::Admin).await;
    let b = app.logged_in("chief", &pw).await;
    let html = b.get(PAGE).await.text().await.unwrap();
    assert!(html.contains("set PROXDESK_PVE_URL") && !html.contains("Sync now"), "{html}");
}
