//! "Machines you already have in Proxmox": a person with a PVE identity sees the guests their own PVE
//! permissions grant `VM.Audit` on (as the simulator evaluates them: pools, groups, propagation,
//! NoAccess), acts on them only while PVE still grants it, and sees a notice when PVE is down.

use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::access::AccessConfig;
use proxdesk::integrations::pve::sim::{Endpoint, SimConfig, SimHandle};
use proxdesk::services::{self, Actor, identities::LinkInput};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::console_fixtures::{app_on, connect, refused_status};
use crate::helpers::{Browser, TestApp};

/// An app on a simulator seeded with `access`, and `alice` linked to the PVE user `alice@pve`.
pub struct Fixture {
    pub app: TestApp,
    pub sim: SimHandle,
    pub alice: Actor,
    pub browser: Browser,
    pub token: String,
    pub cookie: String,
}

pub async fn fixture(access: impl FnOnce(&mut AccessConfig)) -> Fixture {
    fixture_on(SimConfig::for_tests(), access).await
}

pub async fn fixture_on(mut sim: SimConfig, access: impl FnOnce(&mut AccessConfig)) -> Fixture {
    sim.access.user("alice@pve", "alice-pve-password");
    access(&mut sim.access);
    let (app, sim) = app_on(sim, |_, _| {}).await;
    let (admin, _) = app.user("root-admin", Role::Admin).await;
    let (alice, password) = app.user("alice", Role::User).await;
    let link = LinkInput { provider: "pve".into(), issuer: "pve".into(), subject: "alice@pve".into() };
    services::identities::link(&app.db, &admin, alice.id, &link).await.unwrap();
    let browser = app.logged_in("alice", &password).await;
    let token = app.token(&alice).await;
    let session =
        services::auth::login(&app.db, "alice", &proxdesk::secrets::Secret::new(password), "t", 1).await.unwrap();
    let cookie = session.token.expose().clone();
    Fixture { app, sim, alice, browser, token, cookie }
}

impl Fixture {
    /// The guests the API lists for alice.
    pub async fn listed(&self) -> Vec<Value> {
        let r = self.app.get(&self.token, "/api/v1/proxmox/guests").await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Value>().await.unwrap()["items"].as_array().unwrap().clone()
    }

    pub async fn vmids(&self) -> Vec<u64> {
        self.listed().await.iter().map(|g| g["vmid"].as_u64().unwrap()).collect()
    }

    pub async fn guest(&self, vmid: u64) -> Value {
        self.listed().await.into_iter().find(|g| g["vmid"] == vmid).unwrap_or_else(|| panic!("{vmid} not listed"))
    }

    pub async fn dashboard(&self) -> String {
        let r = self.browser.get("/").await;
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.unwrap()
    }

    /// Posts a power action from the dashboard's form.
    pub async fn post_action(&self, vmid: u64, action: &str) -> reqwest::Response {
        self.browser.post_form("/", &format!("/proxmox/{vmid}/action"), &[("action", action)]).await
    }

    pub fn running(&self, vmid: u64) -> bool {
        self.sim.state().guests[&vmid].running
    }

    /// Calls that would have changed a guest or opened its console.
    pub fn acting_calls(&self) -> u64 {
        use Endpoint as E;
        let c = self.sim.calls();
        [E::QemuStart, E::QemuShutdown, E::QemuReboot, E::QemuVncProxy, E::QemuTermProxy, E::LxcStart]
            .iter()
            .chain(&[E::LxcShutdown, E::LxcReboot, E::LxcVncProxy, E::LxcTermProxy, E::QemuDelete, E::LxcDelete])
            .map(|e| c.get(*e))
            .sum()
    }
}

#[tokio::test]
async fn a_pool_grant_shows_its_guests_with_their_buttons() {
    let fx = fixture(|a| {
        a.pool("lab", &[100, 101]).acl("/pool/lab", "alice@pve", "PVEVMUser", true);
    })
    .await;
    assert_eq!(fx.vmids().await, vec![100, 101], "the pool's guests, reported with flag 0, are granted");
    let web = fx.guest(100).await;
    assert_eq!(
        (web["name"].as_str(), web["node"].as_str(), web["kind"].as_str()),
        (Some("web-legacy"), Some("pve1"), Some("qemu"))
    );
    assert_eq!(web["status"], "running");
    assert_eq!((web["may_power"].as_bool(), web["may_console"].as_bool()), (Some(true), Some(true)));
    // PVE 9: PVEVMUser holds VM.GuestAgent.Audit, so the agent's address is shown.
    assert_eq!(web["ipv4"], "10.10.0.110", "{web}");
    let html = fx.dashboard().await;
    assert!(html.contains("id=\"pve-guests\""), "{html}");
    assert!(html.contains("data-vmid=\"100\"") && html.contains("data-vmid=\"101\""));
    assert!(!html.contains("data-vmid=\"102\""), "102 is not in the pool");
    assert!(html.contains("href=\"/proxmox/100/console\""), "console of a running guest");
    assert!(html.contains("action=\"/proxmox/101/action\""), "power buttons");
    assert!(!html.contains("value=\"delete\""), "proxdesk never deletes these guests");
}

#[tokio::test]
async fn no_access_on_a_vm_hides_it_from_a_pool_grant() {
    let fx = fixture(|a| {
        a.pool("lab", &[100, 101]).acl("/pool/lab", "alice@pve", "PVEVMUser", true).acl(
            "/vms/100",
            "alice@pve",
            "NoAccess",
            true,
        );
    })
    .await;
    assert_eq!(fx.vmids().await, vec![101]);
    assert!(!fx.dashboard().await.contains("data-vmid=\"100\""));
}

#[tokio::test]
async fn a_user_role_overrides_the_group_role_and_an_auditor_gets_no_buttons() {
    let fx = fixture(|a| {
        a.group("students", &["alice@pve"]).acl("/vms", "@students", "PVEVMUser", true).acl(
            "/vms/101",
            "alice@pve",
            "PVEAuditor",
            true,
        );
    })
    .await;
    assert_eq!(fx.vmids().await, vec![100, 101, 102], "templates 9000–9002 and 9100 are not listed");
    let audited = fx.guest(101).await;
    assert_eq!((audited["may_power"].as_bool(), audited["may_console"].as_bool()), (Some(false), Some(false)));
    let used = fx.guest(102).await;
    assert_eq!((used["may_power"].as_bool(), used["may_console"].as_bool()), (Some(true), Some(true)));
    let html = fx.dashboard().await;
    assert!(!html.contains("action=\"/proxmox/101/action\"") && !html.contains("/proxmox/101/console"));
    assert!(html.contains("action=\"/proxmox/102/action\""));

    // A forged form, the API and the console: all refused, and nothing reaches PVE.
    let r = fx.post_action(101, "start").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = fx.app.post(&fx.token, "/api/v1/proxmox/guests/101/power", json!({"action": "start"})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(fx.browser.get("/proxmox/101/console").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(fx.browser.get("/proxmox/101/terminal").await.status(), StatusCode::FORBIDDEN);
    let r = fx.app.post(&fx.token, "/api/v1/proxmox/guests/101/console", json!({})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let ws = connect(&fx.app, "/proxmox/101/console/ws", Some(&fx.cookie), Some(&fx.app.address)).await;
    assert_eq!(refused_status(ws), 403);
    assert!(!fx.running(101));
    assert_eq!(fx.acting_calls(), 0, "{:?}", fx.sim.calls().snapshot());
}

#[tokio::test]
async fn a_non_propagating_vms_entry_shows_nothing() {
    let fx = fixture(|a| {
        a.acl("/vms", "alice@pve", "PVEVMUser", false);
    })
    .await;
    assert!(fx.vmids().await.is_empty());
    assert!(!fx.dashboard().await.contains("id=\"pve-guests\""));
}

#[tokio::test]
async fn a_granted_power_action_reaches_pve_with_proxdesks_token_and_is_audited() {
    let fx = fixture(|a| {
        a.pool("lab", &[100, 101]).acl("/pool/lab", "alice@pve", "PVEVMUser", true);
    })
    .await;
    let r = fx.post_action(101, "start").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/?done=pve_guest_start#pve-guests");
    assert_eq!(fx.sim.calls().get(Endpoint::QemuStart), 1);
    for _ in 0..100 {
        if fx.running(101) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(fx.running(101));
    let entries = entities::audit_entry::Entity::find().all(&fx.app.db).await.unwrap();
    let e = entries.iter().find(|e| e.action == "pve_guest.start").expect("audited");
    assert_eq!((e.subject_type.as_str(), e.subject_id, e.actor_id), ("pve_guest", 101, Some(fx.alice.id)));
    // The list was cleared by the action: the guest shows running at once.
    assert_eq!(fx.guest(101).await["status"], "running");
    // Through the API, and a refusal in the guest's state is a 409 like a machine's.
    let r = fx.app.post(&fx.token, "/api/v1/proxmox/guests/101/power", json!({"action": "start"})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = fx.app.post(&fx.token, "/api/v1/proxmox/guests/100/power", json!({"action": "reboot"})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = fx.app.post(&fx.token, "/api/v1/proxmox/guests/100/power", json!({"action": "delete"})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "no deletion");
    let usage = services::quotas::usage(&fx.app.db, fx.alice.id).await.unwrap();
    assert_eq!(usage.machines, 0, "these guests count against no quota");
}

#[tokio::test]
async fn a_permission_removed_after_the_list_was_drawn_refuses_the_action() {
    let fx = fixture(|a| {
        a.pool("lab", &[100, 101]).acl("/pool/lab", "alice@pve", "PVEVMUser", true);
    })
    .await;
    let html = fx.dashboard().await;
    assert!(html.contains("action=\"/proxmox/101/action\""));
    let csrf = crate::helpers::csrf_in(&html).unwrap();
    fx.sim.with_access(|a| a.acl.retain(|e| e.path != "/pool/lab"));
    let form = [("action".to_owned(), "start".to_owned()), ("csrf".to_owned(), csrf)];
    let r = fx.browser.post_raw("/proxmox/101/action", &form).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "the list was cached; the action asked PVE again");
    let r = fx.app.post(&fx.token, "/api/v1/proxmox/guests/100/power", json!({"action": "shutdown"})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = fx.app.post(&fx.token, "/api/v1/proxmox/guests/100/console", json!({"kind": "vnc"})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let ws = connect(&fx.app, "/proxmox/100/console/ws", Some(&fx.cookie), Some(&fx.app.address)).await;
    assert_eq!(refused_status(ws), 403);
    assert!(!fx.running(101) && fx.running(100), "PVE untouched");
    assert_eq!(fx.acting_calls(), 0, "{:?}", fx.sim.calls().snapshot());
}

#[tokio::test]
async fn without_a_pve_identity_the_list_is_empty_and_nothing_is_reachable() {
    let fx = fixture(|a| {
        a.user("bob@pve", "bob-pve-password").acl("/vms", "bob@pve", "PVEVMUser", true);
    })
    .await;
    let (bob, password) = fx.app.user("bob", Role::User).await;
    let token = fx.app.token(&bob).await;
    let before = fx.sim.calls().get(Endpoint::AccessPermissions);
    let r: Value = fx.app.get(&token, "/api/v1/proxmox/guests").await.json().await.unwrap();
    assert_eq!(r["items"], json!([]));
    let browser = fx.app.logged_in("bob", &password).await;
    let html = browser.get("/").await.text().await.unwrap();
    assert!(!html.contains("id=\"pve-guests\""));
    // Alice's PVE user has nothing: bob's grants never count for her, whatever VMID she guesses.
    assert!(fx.vmids().await.is_empty());
    for vmid in [100, 101, 102, 999] {
        let r = fx.app.post(&token, &format!("/api/v1/proxmox/guests/{vmid}/power"), json!({"action": "start"})).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let r =
            fx.app.post(&fx.token, &format!("/api/v1/proxmox/guests/{vmid}/power"), json!({"action": "start"})).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "no existence is revealed either");
    }
    assert_eq!(fx.acting_calls(), 0);
    let asked = fx.sim.calls().get(Endpoint::AccessPermissions) - before;
    assert!(asked >= 1, "alice's own PVE user was asked about");
}

#[tokio::test]
async fn pve_down_leaves_the_dashboard_with_a_notice_and_actions_answer_503() {
    let Fixture { app, sim, browser, token, .. } = fixture(|a| {
        a.acl("/vms", "alice@pve", "PVEVMUser", true);
    })
    .await;
    sim.stop();
    let r = browser.get("/").await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"pve-guests-unavailable\""), "{html}");
    assert!(html.contains("id=\"requests\""), "the rest of the dashboard is there");
    let r = app.get(&token, "/api/v1/proxmox/guests").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let r = app.post(&token, "/api/v1/proxmox/guests/100/power", json!({"action": "start"})).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let csrf = crate::helpers::csrf_in(&html).unwrap();
    let r = browser.post_raw("/proxmox/100/action", &[("action".into(), "start".into()), ("csrf".into(), csrf)]).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}
