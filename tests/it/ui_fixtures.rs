//! A desk for the browser tests: the app on the PVE simulator with an admin and users, and requests
//! put into each state a page can show (pending, provisioning, ready with its machine, failed).

use std::time::{Duration, Instant};

use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::{Endpoint, Fault, SimConfig, SimHandle, Simulator, admin_acl};
use proxdesk::secrets::Secret;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};
use crate::provision::{TOKEN_ID, TOKEN_SECRET};

/// A person of the desk: name, password, API token and a session cookie value.
pub struct Person {
    pub id: i64,
    pub name: String,
    pub password: String,
    pub token: String,
    pub session: String,
}

pub struct Desk {
    pub app: TestApp,
    pub sim: SimHandle,
    pub admin: Person,
    pub alice: Person,
    pub template: i64,
}

/// The app on the simulator (finish mode `none`, one attempt, long task deadline so a hung clone
/// stays `provisioning`), with `chief` (admin), `alice` (user) and the template `Debian`.
pub async fn desk() -> Desk {
    desk_on(SimConfig::for_tests()).await
}

pub async fn desk_on(sim: SimConfig) -> Desk {
    let sim = Simulator::start(sim.with_token(TOKEN_ID, TOKEN_SECRET, admin_acl())).await.unwrap();
    let url = sim.url().to_owned();
    let app = spawn_app_with(|raw| {
        raw.set("pve_url", url);
        raw.set("pve_token", format!("{TOKEN_ID}={TOKEN_SECRET}"));
        raw.set("provision_poll_ms", "20");
        raw.set("provision_backoff_ms", "20");
        raw.set("provision_attempts", "1");
        raw.set("provision_ip_timeout_secs", "5");
        raw.set("provision_task_timeout_secs", "600");
    })
    .await;
    let template = app.template_at("Debian", "pve1", 9000, "none").await;
    let admin = person(&app, "chief", Role::Admin).await;
    let alice = person(&app, "alice", Role::User).await;
    Desk { app, sim, admin, alice, template }
}

/// A new account with its token and a session.
pub async fn person(app: &TestApp, name: &str, role: Role) -> Person {
    let (actor, password) = app.user(name, role).await;
    let token = app.token(&actor).await;
    let s = proxdesk::services::auth::login(&app.db, name, &Secret::new(password.clone()), "t", 1).await.unwrap();
    Person { id: actor.id, name: name.into(), password, token, session: s.token.expose().clone() }
}

impl Desk {
    pub fn url(&self, path: &str) -> String {
        self.app.url(path)
    }

    /// `who` asks for a small container named `hostname`; returns the request id.
    pub async fn submit(&self, who: &Person, hostname: &str) -> i64 {
        let body = json!({"template_id": self.template, "hostname": hostname, "cores": 1, "memory_mib": 512,
            "disk_gib": 8, "purpose": "lab work for the course"});
        let r = self.app.post(&who.token, "/api/v1/requests", body).await;
        assert_eq!(r.status(), 200, "{hostname}: {}", r.text().await.unwrap());
        r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    pub async fn approve(&self, id: i64) {
        let r = self.app.post(&self.admin.token, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
        assert_eq!(r.status(), 200, "approve {id}: {}", r.text().await.unwrap());
    }

    /// The request as the API shows it to the admin.
    pub async fn request(&self, id: i64) -> Value {
        self.app.get(&self.admin.token, &format!("/api/v1/requests/{id}")).await.json().await.unwrap()
    }

    /// Waits until the request's status is one of `wanted`.
    pub async fn wait_status(&self, id: i64, wanted: &[&str], timeout: Duration) -> Value {
        let until = Instant::now() + timeout;
        loop {
            let r = self.request(id).await;
            if wanted.contains(&r["status"].as_str().unwrap_or_default()) {
                return r;
            }
            assert!(Instant::now() < until, "request {id} never reached {wanted:?}: {r}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A ready machine of `who`'s: (request id, machine id).
    pub async fn ready(&self, who: &Person, hostname: &str) -> (i64, i64) {
        let id = self.submit(who, hostname).await;
        self.approve(id).await;
        let r = self.wait_status(id, &["ready", "failed"], Duration::from_secs(30)).await;
        assert_eq!(r["status"], "ready", "{r}");
        (id, self.machine_of(id).await)
    }

    /// The machine id of a ready request.
    pub async fn machine_of(&self, request: i64) -> i64 {
        let machines: Value = self.app.get(&self.admin.token, "/api/v1/machines").await.json().await.unwrap();
        let m = machines["items"].as_array().unwrap().iter().find(|m| m["request_id"] == request);
        m.unwrap_or_else(|| panic!("no machine for request {request}: {machines}"))["id"].as_i64().unwrap()
    }

    /// A request of `who`'s whose clone failed on PVE.
    pub async fn failed(&self, who: &Person, hostname: &str) -> i64 {
        let id = self.submit(who, hostname).await;
        self.sim.faults().inject(Endpoint::LxcClone, Fault::TaskError("no space left on device".into()));
        self.approve(id).await;
        let r = self.wait_status(id, &["ready", "failed"], Duration::from_secs(30)).await;
        self.sim.faults().clear();
        assert_eq!(r["status"], "failed", "{r}");
        id
    }

    /// A request of `who`'s whose clone hangs, so it stays `provisioning`.
    pub async fn provisioning(&self, who: &Person, hostname: &str) -> i64 {
        let id = self.submit(who, hostname).await;
        self.sim.faults().inject(Endpoint::LxcClone, Fault::TaskHang);
        self.approve(id).await;
        let until = Instant::now() + Duration::from_secs(10);
        while self.sim.calls().get(Endpoint::LxcClone) == 0 || self.request(id).await["status"] != "provisioning" {
            assert!(Instant::now() < until, "request {id} did not start provisioning");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.sim.faults().clear();
        id
    }
}

impl Desk {
    /// The request a machine was made for.
    pub async fn request_of(&self, machine: i64) -> i64 {
        let m: Value =
            self.app.get(&self.admin.token, &format!("/api/v1/machines/{machine}")).await.json().await.unwrap();
        m["request_id"].as_i64().unwrap_or_else(|| panic!("machine {machine}: {m}"))
    }
}
