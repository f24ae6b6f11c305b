//! The admin home: counts that match the database, the longest-waiting requests, failures with a retry,
//! each node's capacity from the cluster, and a page that survives Proxmox VE being down or absent.

use proxdesk::domain::quota::QuotaOverride;
use proxdesk::domain::request_status::RequestStatus;
use proxdesk::domain::roles::Role;
use proxdesk::services;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Browser, TestApp, spawn_app, spawn_app_with};
use crate::provision::{app_with_cluster, settle};

/// The page as a browser reads it: minijinja escapes `/` and `'` in text and attributes.
pub fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/").replace("&#x27;", "'").replace("&amp;", "&")
}

/// The number on the stat card whose label is `label`.
pub fn stat(html: &str, label: &str) -> Option<u64> {
    let end = html.find(&format!("<span class=\"stat-label\">{label}</span>"))?;
    let value = &html[..end];
    let start = value.rfind("<span class=\"stat-value\">")? + "<span class=\"stat-value\">".len();
    value[start..].trim_end().strip_suffix("</span>")?.trim().parse().ok()
}

async fn admin(app: &TestApp) -> Browser {
    let (_, pw) = app.user("chief", Role::Admin).await;
    app.logged_in("chief", &pw).await
}

#[tokio::test]
async fn the_admin_home_counts_what_waits_as_the_database_does_and_shows_node_capacity() {
    let (app, sim) = app_with_cluster(None).await;
    let b = admin(&app).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let alice_t = app.token(&alice).await;
    let root = root_actor(&app).await;
    let root_t = app.token(&root).await;
    let room = QuotaOverride {
        max_machines: Some(10),
        max_cores: Some(20),
        max_memory_mib: Some(65536),
        max_disk_gib: Some(500),
    };
    services::quotas::set_user_override(&app.db, &root, alice.id, room).await.unwrap();
    let ready_tpl = app.template_at("Ready", "pve1", 9000, "none").await;
    let missing_tpl = app.template_at("Missing", "pve1", 9999, "none").await;
    let pending: Vec<i64> = [
        app.submit_ok(&alice_t, ready_tpl, "wait-1").await,
        app.submit_ok(&alice_t, ready_tpl, "wait-2").await,
        app.submit_ok(&alice_t, ready_tpl, "wait-3").await,
    ]
    .into();
    // One request becomes a running machine, one fails for good (its template is not on the node).
    for (host, tpl, want) in [("runs", ready_tpl, "ready"), ("breaks", missing_tpl, "failed")] {
        let id = app.submit_ok(&alice_t, tpl, host).await;
        let r = app.post(&root_t, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(settle(&app, &alice_t, id).await["status"], want);
    }

    let r = b.get("/admin").await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = unescape(&r.text().await.unwrap());
    let in_db = |s| services::requests::count_in(&app.db, s);
    assert_eq!(stat(&html, "requests wait for a decision"), Some(in_db(RequestStatus::Pending).await.unwrap()));
    assert_eq!(stat(&html, "requests wait for a decision"), Some(3));
    assert_eq!(stat(&html, "failed request"), Some(in_db(RequestStatus::Failed).await.unwrap()));
    assert_eq!(stat(&html, "failed request"), Some(1));
    assert_eq!(stat(&html, "lost machines"), Some(0));
    // The oldest pending first, each a link to its page; the failed one with a retry button.
    let first = html.find(&format!("/requests/{}\"", pending[0])).expect("oldest pending listed");
    assert!(first < html.find(&format!("/requests/{}\"", pending[2])).unwrap());
    assert!(html.contains("breaks") && html.contains("/retry\""), "failed request with its retry: {html}");
    // Capacity: the running container's core counts on pve1 (16 cores), memory and disk as meters.
    assert!(html.contains("Capacity per node") && html.contains("<h3>pve1"), "{html}");
    let cores: u64 = sim
        .state()
        .guests
        .values()
        .filter(|g| g.node == "pve1" && g.running && !g.is_template())
        .map(|g| g.config.get("cores").and_then(|c| c.parse::<u64>().ok()).unwrap_or(1))
        .sum();
    assert!(cores >= 1, "our container runs on pve1");
    assert!(html.contains(&format!("<span>Cores of running guests</span><span>{cores} of 16</span>")), "{html}");
    assert!(html.contains("<meter"), "{html}");
    assert!(html.contains("data-live-src=\"/admin/live\"") && html.contains("id=\"home-counts\" data-live-region"));

    // Retry from the home sends the request back to provisioning and comes back home.
    let filter = services::requests::RequestFilter { status: Some(RequestStatus::Failed), ..Default::default() };
    let failed = services::requests::list(&app.db, &root_actor(&app).await, filter).await.unwrap().items[0].request.id;
    let r = b.post_form("/admin", &format!("/admin/requests/{failed}/retry"), &[("return_to", "/admin")]).await;
    assert_eq!((r.status(), r.headers()["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, "/admin?done=retried"));

    // Proxmox VE goes away: the page still answers, and says why the capacity is missing.
    sim.stop();
    let r = b.get("/admin").await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("Proxmox VE did not answer"), "{html}");
    assert_eq!(stat(&html, "requests wait for a decision"), Some(3));
}

async fn root_actor(app: &TestApp) -> services::Actor {
    services::users::find_by_name(&app.db, "chief").await.unwrap().unwrap().try_into().unwrap()
}

#[tokio::test]
async fn without_a_cluster_the_home_says_there_is_no_capacity_to_show() {
    let app = spawn_app().await;
    let b = admin(&app).await;
    let html = b.get("/admin").await.text().await.unwrap();
    assert!(html.contains("No Proxmox VE cluster is configured"), "{html}");
    assert_eq!(stat(&html, "requests wait for a decision"), Some(0));
    assert!(html.contains("Nothing waits for a decision."));
}

#[tokio::test]
async fn an_unreachable_cluster_costs_the_capacity_card_only() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = spawn_app_with(|raw| {
        raw.set("pve_url", url);
        raw.set("pve_token", "proxdesk@pve!svc=5f0c3b8e-6a57-4d1b-9a3e-2c1f0e9d8b7a");
    })
    .await;
    let b = admin(&app).await;
    let r = b.get("/admin").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Proxmox VE did not answer"));
}

#[tokio::test]
async fn an_admin_lands_on_the_workspace_after_login_and_a_next_page_still_wins() {
    let app = spawn_app().await;
    let (_, admin_pw) = app.user("chief", Role::Admin).await;
    let (_, alice_pw) = app.user("alice", Role::User).await;
    let location = |r: &reqwest::Response| r.headers()["location"].to_str().unwrap().to_owned();
    let r = app.browser().login("chief", &admin_pw).await;
    assert_eq!(location(&r), "/admin");
    let r = app.browser().login("alice", &alice_pw).await;
    assert_eq!(location(&r), "/");
    let b = app.browser();
    let fields = [("username", "chief"), ("password", admin_pw.as_str()), ("next", "/admin/users")];
    let r = b.post_form("/login?next=%2Fadmin%2Fusers", "/login", &fields).await;
    assert_eq!(location(&r), "/admin/users");
    // The personal dashboard stays reachable for an admin's own machines.
    assert_eq!(b.get("/").await.status(), StatusCode::OK);
    // A user is not let in.
    let alice = app.logged_in("alice", &alice_pw).await;
    assert_eq!(alice.get("/admin").await.status(), StatusCode::FORBIDDEN);
}
