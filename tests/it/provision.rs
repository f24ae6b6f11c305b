//! Approved request → ready container, against the PVE simulator and a real OpenSSH server.

use std::time::{Duration, Instant};

use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::{SimConfig, SimHandle, Simulator, admin_acl};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::external::Sshd;
use crate::helpers::{TestApp, spawn_app_with};

pub const TOKEN_ID: &str = "proxdesk@pve!svc";
pub const TOKEN_SECRET: &str = "5f0c3b8e-6a57-4d1b-9a3e-2c1f0e9d8b7a";
const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDt8YbSbGJ6pWAJ3T3ywd2M5tnUnTjQ/g3D3SJfGzpcn alice's laptop $(reboot)";

/// The simulator with proxdesk's token, and an app pointed at it (and at `sshd` when given).
pub async fn app_with_cluster(sshd: Option<(&Sshd, std::path::PathBuf)>) -> (TestApp, SimHandle) {
    let sim = Simulator::start(SimConfig::for_tests().with_token(TOKEN_ID, TOKEN_SECRET, admin_acl())).await.unwrap();
    let url = sim.url().to_owned();
    let app = spawn_app_with(|raw| {
        raw.set("pve_url", url);
        raw.set("pve_token", format!("{TOKEN_ID}={TOKEN_SECRET}"));
        raw.set("provision_poll_ms", "20");
        raw.set("provision_backoff_ms", "50");
        raw.set("provision_ip_timeout_secs", "5");
        raw.set("provision_task_timeout_secs", "5");
        if let Some((sshd, known_hosts)) = sshd {
            raw.set("ssh_key_file", sshd.client_key().display().to_string());
            raw.set("ssh_known_hosts", known_hosts.display().to_string());
            raw.set("ssh_nodes", format!("pve1=127.0.0.1:{}", sshd.port));
        }
    })
    .await;
    (app, sim)
}

/// Submits as alice, approves as admin; returns (alice's token, request id).
pub async fn approved_request(app: &TestApp, finish_mode: &str) -> (String, i64) {
    let (admin, _) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let (admin_t, alice_t) = (app.token(&admin).await, app.token(&alice).await);
    let tpl = app.template("Debian").await;
    if finish_mode != "node" {
        let body = json!({"name": "Debian", "node": "pve1", "vmid": 9000, "default_cores": 1, "max_cores": 4,
            "default_memory_mib": 1024, "max_memory_mib": 4096, "default_disk_gib": 8, "max_disk_gib": 32,
            "finish_mode": finish_mode});
        let r = app
            .api
            .put(app.url(&format!("/api/v1/admin/templates/{tpl}")))
            .bearer_auth(&admin_t)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let body = json!({"template_id": tpl, "hostname": "lab-1", "cores": 2, "memory_mib": 2048, "disk_gib": 16,
        "purpose": "course work", "ssh_public_key": KEY});
    let r = app.post(&alice_t, "/api/v1/requests", body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let r = app.post(&admin_t, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    (alice_t, id)
}

/// Polls the request until it leaves the in-progress states.
pub async fn settle(app: &TestApp, token: &str, id: i64) -> Value {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let r: Value = app.get(token, &format!("/api/v1/requests/{id}")).await.json().await.unwrap();
        let status = r["status"].as_str().unwrap().to_owned();
        if !["approved", "provisioning", "deleting"].contains(&status.as_str()) {
            return r;
        }
        assert!(Instant::now() < until, "request {id} stuck in {status}: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn created(sim: &SimHandle) -> Vec<proxdesk::integrations::pve::sim::Guest> {
    sim.state().containers().into_iter().filter(|g| !g.is_template()).cloned().collect()
}

#[tokio::test]
async fn approval_provisions_a_container_finished_over_real_ssh() {
    let Some(sshd) = Sshd::start() else { return };
    let known = sshd.known_hosts();
    let (app, sim) = app_with_cluster(Some((&sshd, known))).await;
    let (token, id) = approved_request(&app, "node").await;
    let done = settle(&app, &token, id).await;
    assert_eq!(done["status"], "ready", "{done}");

    // Exactly one new container, configured as requested.
    let guests = created(&sim);
    assert_eq!(guests.len(), 1, "one container");
    let g = &guests[0];
    assert_eq!(g.node, "pve1");
    assert!(g.running);
    assert_eq!(g.config.get("cores").map(String::as_str), Some("2"));
    assert_eq!(g.config.get("memory").map(String::as_str), Some("2048"));
    assert_eq!(g.config.get("hostname").map(String::as_str), Some("lab-1"));
    let tags = format!("proxdesk;proxdesk-request-{id}");
    assert_eq!(g.config.get("tags"), Some(&tags), "the marker tags");
    assert!(g.config.get("description").unwrap().contains(&format!("(proxdesk request #{id})")));
    assert!(g.config.get("rootfs").unwrap().contains("size=16G"), "{:?}", g.config.get("rootfs"));

    // The node ran `pct exec <vmid> -- sh -c <script>` with the values quoted and the password on stdin.
    let calls = sshd.pct_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (args, stdin) = &calls[0];
    assert_eq!(&args[..5], ["exec", &g.vmid.to_string(), "--", "sh", "-c"]);
    let script = &args[5];
    assert!(script.contains("u='alice'") && script.contains("h='lab-1'"), "{script}");
    assert!(script.contains("alice'\\''s laptop $(reboot)"), "the key arrives quoted: {script}");
    let password = stdin.trim_end_matches('\n');
    assert_eq!(password.len(), 16);
    assert!(!script.contains(password), "the password is not on the command line");

    // The owner sees the machine and its credentials; the password is sealed at rest.
    let machines: Value = app.get(&token, "/api/v1/machines").await.json().await.unwrap();
    let m = &machines["items"][0];
    assert_eq!(m["vmid"], g.vmid);
    assert_eq!(m["ipv4"].as_str(), g.ip.map(|ip| ip.to_string()).as_deref());
    let detail: Value = app.get(&token, &format!("/api/v1/machines/{}", m["id"])).await.json().await.unwrap();
    assert_eq!(detail["login_user"], "alice");
    assert_eq!(detail["password"], password);
    assert_eq!(detail["state"], "running");
    for entry in std::fs::read_dir(&app.data_dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(password.len()).any(|w| w == password.as_bytes()), "password stored in clear");
    }
    let actions: Vec<String> =
        done["timeline"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect();
    for step in [
        "request.provisioning",
        "provision.cloned",
        "provision.started",
        "provision.address",
        "provision.finished",
        "request.ready",
    ] {
        assert!(actions.iter().any(|a| a == step), "{step} missing from {actions:?}");
    }

    // Where the node is reached over SSH, and what the shell printed, are for admins only.
    let finished = |timeline: &Value| {
        timeline["timeline"].as_array().unwrap().iter().find(|e| e["action"] == "provision.finished").unwrap().clone()
    };
    let owners = finished(&done);
    assert!(owners["details"].get("target").is_none() && owners["details"].get("stderr").is_none(), "{owners}");
    assert!(owners["details"].get("exit_status").is_some(), "the rest stays: {owners}");
    let (ada, _) = app.user("ada", Role::Admin).await;
    let admin_t = app.token(&ada).await;
    let admins: Value = app.get(&admin_t, &format!("/api/v1/requests/{id}")).await.json().await.unwrap();
    let admins = finished(&admins);
    assert!(admins["details"]["target"].as_str().unwrap().contains("127.0.0.1"), "{admins}");
    assert!(admins["details"].get("stderr").is_some(), "{admins}");
}

#[tokio::test]
async fn a_changed_host_key_is_refused_and_the_container_rolled_back() {
    let Some(sshd) = Sshd::start() else { return };
    let wrong = sshd.wrong_known_hosts();
    let (app, sim) = app_with_cluster(Some((&sshd, wrong))).await;
    let (token, id) = approved_request(&app, "node").await;
    let done = settle(&app, &token, id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(done["reason"].as_str().unwrap().contains("host key"), "{done}");
    assert!(sshd.pct_calls().is_empty(), "nothing ran on the node");
    assert!(created(&sim).is_empty(), "no orphan container");
    let quota: Value = app.get(&token, "/api/v1/me").await.json().await.unwrap();
    assert_eq!(quota["username"], "alice");
}

#[tokio::test]
async fn owners_power_their_machine_and_delete_it() {
    let (app, sim) = app_with_cluster(None).await;
    let (token, id) = approved_request(&app, "none").await;
    assert_eq!(settle(&app, &token, id).await["status"], "ready");
    let machines: Value = app.get(&token, "/api/v1/machines").await.json().await.unwrap();
    let mid = machines["items"][0]["id"].as_i64().unwrap();
    let vmid = machines["items"][0]["vmid"].as_u64().unwrap();

    // Someone else cannot touch it.
    let (mallory, _) = app.user("mallory", Role::User).await;
    let mt = app.token(&mallory).await;
    assert_eq!(app.get(&mt, &format!("/api/v1/machines/{mid}")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.post(&mt, &format!("/api/v1/machines/{mid}/shutdown"), json!({})).await.status(),
        StatusCode::NOT_FOUND
    );

    let r = app.post(&token, &format!("/api/v1/machines/{mid}/shutdown"), json!({})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let until = Instant::now() + Duration::from_secs(10);
    while sim.state().guests[&vmid].running {
        assert!(Instant::now() < until, "did not shut down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.post(&token, &format!("/api/v1/machines/{mid}/start"), json!({})).await.status(),
        StatusCode::ACCEPTED
    );

    let r = app.api.delete(app.url(&format!("/api/v1/machines/{mid}"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let done = settle(&app, &token, id).await;
    assert_eq!(done["status"], "deleted");
    assert!(created(&sim).is_empty(), "the container is gone");
    let machines: Value = app.get(&token, "/api/v1/machines").await.json().await.unwrap();
    assert!(machines["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn the_request_page_follows_progress_and_offers_the_machine_actions() {
    let (app, sim) = app_with_cluster(None).await;
    let (token, id) = approved_request(&app, "none").await;
    let b = app.logged_in("alice", "alice-password-123").await;
    let page = b.get(&format!("/requests/{id}")).await.text().await.unwrap();
    assert!(page.contains(&format!(r#"data-live-src="/requests/{id}/live""#)), "the page follows its request");
    assert!(page.contains("/static/live.js"), "and loads the script that does");
    assert_eq!(b.get("/static/live.js").await.status(), StatusCode::OK);
    assert_eq!(settle(&app, &token, id).await["status"], "ready");

    let page = b.get(&format!("/requests/{id}")).await.text().await.unwrap();
    assert!(page.contains("Machine") && page.contains("running") && page.contains("Shut down"), "{page}");
    assert!(page.contains("Up for") && page.contains("data-uptime="), "a running machine shows its uptime");
    let mid = proxdesk::services::machines::of_request(&app.db, id).await.unwrap().unwrap().id;
    let vmid = created(&sim)[0].vmid;
    let r =
        b.post_form(&format!("/requests/{id}"), &format!("/machines/{mid}/action"), &[("action", "shutdown")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let until = Instant::now() + Duration::from_secs(10);
    while sim.state().guests[&vmid].running {
        assert!(Instant::now() < until, "did not shut down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fr = b.client.get(app.url(&format!("/requests/{id}"))).header("Accept-Language", "fr").send().await.unwrap();
    let fr = fr.text().await.unwrap();
    assert!(fr.contains("arrêtée") && fr.contains("Démarrer"), "{fr}");
    assert!(!fr.contains("data-uptime="), "a stopped machine has no uptime");
    let (page, action) = (format!("/requests/{id}"), format!("/machines/{mid}/action"));
    let r = b.post_form(&page, &action, &[("action", "delete")]).await;
    assert_eq!(r.status(), StatusCode::OK, "deletion unconfirmed: the confirmation page");
    assert_eq!(settle(&app, &token, id).await["status"], "ready", "nothing deleted before confirmation");
    let r = b.post_form(&page, &action, &[("action", "delete"), ("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = b.get(&page).await.text().await.unwrap();
    assert!(!page.contains(r#"value="shutdown""#) && !page.contains("Delete machine"), "no actions while deleting");
    assert_eq!(settle(&app, &token, id).await["status"], "deleted");
}

#[tokio::test]
async fn a_lost_secret_key_is_a_clear_error_at_start() {
    let (app, _sim) = app_with_cluster(None).await;
    let (token, id) = approved_request(&app, "none").await;
    assert_eq!(settle(&app, &token, id).await["status"], "ready");
    // A machine with a sealed password (as SSH finishing stores it).
    let key = proxdesk::secrets::SecretKey::load_or_create(&app.data_dir.join("secret.key")).unwrap();
    let m = proxdesk::services::machines::of_request(&app.db, id).await.unwrap().unwrap();
    let mut row: entities::machine::ActiveModel = m.into();
    row.password_sealed = sea_orm::ActiveValue::Set(Some(key.seal("pw")));
    sea_orm::ActiveModelTrait::update(row, &app.db).await.unwrap();

    let mut raw = crate::helpers::test_settings(&app.data_dir);
    raw.set("database_url", &app.database_url);
    raw.set("secret_key", "11".repeat(32));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = proxdesk::startup::App::build(raw.into_settings().unwrap(), listener).await.err().expect("refused");
    assert!(err.to_string().contains("secret key does not open"), "{err}");
}
