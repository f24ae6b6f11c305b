//! One world for the route matrices (ownership, CSRF, Origin): the app on the PVE simulator where alice
//! owns a ready machine (with a snapshot), a pending request, a bulk run and an API token, and bob — a
//! plain user — owns a ready machine of his own; plus a fingerprint of everything a refused call must
//! leave as it was, and the fill-in of a route pattern's parameters with alice's things.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proxdesk::domain::roles::Role;
use sea_orm::{EntityTrait, QueryOrder};
use serde_json::{Value, json};

use crate::ui_fixtures::{Desk, Person, desk, person};

pub struct World {
    pub desk: Desk,
    pub bob: Person,
    /// Alice's ready request and its machine.
    pub request: i64,
    pub machine: i64,
    pub vmid: u64,
    /// Alice's request still waiting for an admin, and one whose provisioning failed.
    pub pending: i64,
    pub failed: i64,
    pub bulk_run: i64,
    pub token_id: i64,
    /// The snapshot alice took of her machine.
    pub snapshot: &'static str,
    pub bob_machine: i64,
    /// An automatic approval rule (disabled, so it approves nothing the matrices submit).
    pub rule: i64,
    /// A group bob is in, the approval stage of an entry none of alice's requests is of: being an
    /// approver somewhere opens nothing of alice's.
    pub group: i64,
}

pub async fn world() -> World {
    let desk = desk().await;
    let bob = person(&desk.app, "bob", Role::User).await;
    let (request, machine) = desk.ready(&desk.alice, "alices").await;
    let (_, bob_machine) = desk.ready(&bob, "bobs").await;
    let pending = desk.submit(&desk.alice, "alices-next").await;
    let failed = desk.failed(&desk.alice, "alices-failed").await;
    let app = &desk.app;
    let token = &desk.alice.token;

    let snapshot = "before_matrix";
    let r = app.post(token, &format!("/api/v1/machines/{machine}/snapshots"), json!({"name": snapshot})).await;
    assert_eq!(r.status(), 200, "snapshot: {}", r.text().await.unwrap());

    let r = app.post(token, "/api/v1/machines/bulk", json!({"action": "start", "machine_ids": [machine]})).await;
    assert_eq!(r.status(), 202, "bulk run: {}", r.text().await.unwrap());
    let bulk_run = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while app.get(token, &format!("/api/v1/machines/bulk/{bulk_run}")).await.json::<Value>().await.unwrap()["finished"]
        != true
    {
        assert!(Instant::now() < until, "alice's bulk run never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let tokens: Value = app.get(token, "/api/v1/tokens").await.json().await.unwrap();
    let token_id = tokens[0]["id"].as_i64().unwrap();
    let m: Value = app.get(token, &format!("/api/v1/machines/{machine}")).await.json().await.unwrap();
    let vmid = m["vmid"].as_u64().unwrap_or_else(|| panic!("alice's machine has a vmid: {m}"));
    let group = app.group("reviewers", &[bob.id]).await;
    app.staged_template("Reviewed", &["reviewers"]).await;
    quiet(&desk.sim).await;
    let body = json!({"name": "matrix rule", "enabled": false, "max_cores": 1});
    let r = app.post(&desk.admin.token, "/api/v1/admin/approval-rules", body).await;
    assert_eq!(r.status(), 200, "rule: {}", r.text().await.unwrap());
    let rule = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    World { desk, bob, request, machine, vmid, pending, failed, bulk_run, token_id, snapshot, bob_machine, rule, group }
}

impl World {
    /// `pattern` (poem's `/machines/:id` or OpenAPI's `/machines/{id}`) with each parameter naming one of
    /// alice's things; one URL per id a route may be about (a request route gets each of her requests).
    /// A parameter the matrix does not know fails the test, so a new kind of route must be added here.
    pub fn fill(&self, pattern: &str) -> Vec<String> {
        let path = pattern.replace('{', ":").replace('}', "");
        let ids = if !path.contains(":id") {
            vec![0]
        } else if path.contains("/requests/:id") || path.contains("/approvals/:id") {
            vec![self.request, self.pending, self.failed]
        } else if path.contains("/machines/bulk/:id") {
            vec![self.bulk_run]
        } else if path.contains("/machines/:id") {
            vec![self.machine]
        } else if path.contains("/tokens/:id") {
            vec![self.token_id]
        } else if path.contains("/users/:id") {
            vec![self.desk.alice.id]
        } else if path.contains("/approval-rules/:id") {
            vec![self.rule]
        } else if path.contains("/templates/:id") || path.contains("/catalog/:id") {
            vec![self.desk.template]
        } else if path.contains("/groups/:id") {
            vec![self.group]
        } else if path.contains("/webhooks/:id") {
            // Admin-only routes: refused before the id is looked at.
            vec![1]
        } else {
            panic!("{pattern}: the matrix does not know what its :id names")
        };
        ids.into_iter()
            .map(|id| {
                let url: Vec<String> = path
                    .split('/')
                    .map(|seg| match seg {
                        ":id" => id.to_string(),
                        ":vmid" => self.vmid.to_string(),
                        ":name" => self.snapshot.to_owned(),
                        ":action" => "stop".to_owned(),
                        ":role" => "user".to_owned(),
                        ":identity" => "1".to_owned(),
                        ":user_id" => self.desk.alice.id.to_string(),
                        p if p.starts_with(':') => panic!("{pattern}: the matrix does not know the parameter {p}"),
                        s => s.to_owned(),
                    })
                    .collect();
                url.join("/")
            })
            .collect()
    }

    /// What a refused call must not change: machines, requests, bulk runs, API tokens, console URLs,
    /// the audit log, and every call PVE received.
    pub async fn fingerprint(&self) -> Fingerprint {
        let db = &self.desk.app.db;
        let machines = entities::machine::Entity::find().order_by_asc(entities::machine::Column::Id).all(db);
        let requests = entities::request::Entity::find().order_by_asc(entities::request::Column::Id).all(db);
        let runs = entities::bulk_run::Entity::find().all(db).await.unwrap().len();
        let items = entities::bulk_item::Entity::find().all(db).await.unwrap();
        let tokens = entities::api_token::Entity::find().all(db).await.unwrap();
        let consoles = entities::console_token::Entity::find().all(db).await.unwrap();
        let audit = entities::audit_entry::Entity::find().all(db).await.unwrap();
        Fingerprint {
            machines: format!("{:?}", machines.await.unwrap()),
            requests: format!("{:?}", requests.await.unwrap()),
            bulk: format!("{runs} runs, {items:?}"),
            // Only revocation: using a token stamps `last_used_at`.
            tokens: format!("{:?}", tokens.iter().map(|t| (t.id, t.revoked_at)).collect::<Vec<_>>()),
            consoles: format!("{consoles:?}"),
            audit: audit.iter().map(|a| format!("{} {} {}", a.action, a.subject_type, a.subject_id)).collect(),
            pve_calls: pve_calls(&self.desk.sim),
        }
    }
}

#[derive(Debug, PartialEq)]
pub struct Fingerprint {
    pub machines: String,
    pub requests: String,
    pub bulk: String,
    pub tokens: String,
    pub consoles: String,
    pub audit: Vec<String>,
    pub pve_calls: BTreeMap<String, u64>,
}

/// Every call PVE received, by endpoint: a refused call must not even ask PVE anything.
fn pve_calls(sim: &proxdesk::integrations::pve::sim::SimHandle) -> BTreeMap<String, u64> {
    sim.calls().snapshot().into_iter().map(|(endpoint, n)| (format!("{endpoint:?}"), n)).collect()
}

/// The calls of `calls` that change something on PVE (or open a console).
pub fn pve_writes(calls: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    const WRITES: &[&str] = &[
        "Clone",
        "Put",
        "Post",
        "Create",
        "Resize",
        "Start",
        "Stop",
        "Shutdown",
        "Reboot",
        "Reset",
        "Delete",
        "Rollback",
        "Proxy",
        "Websocket",
        "Suspend",
        "Resume",
    ];
    calls.iter().filter(|(name, _)| WRITES.iter().any(|w| name.contains(w))).map(|(k, v)| (k.clone(), *v)).collect()
}

/// Waits until the work the fixtures started (a failed clone's clean-up…) has stopped calling PVE.
async fn quiet(sim: &proxdesk::integrations::pve::sim::SimHandle) {
    let until = Instant::now() + Duration::from_secs(20);
    let mut last = sim.calls().total();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = sim.calls().total();
        if now == last {
            return;
        }
        assert!(Instant::now() < until, "PVE is still being called");
        last = now;
    }
}

/// Asserts nothing a matrix guards changed since `before`, naming the route that changed it.
pub fn assert_unchanged(before: &Fingerprint, after: &Fingerprint, what: &str) {
    assert_eq!(before.machines, after.machines, "{what} changed a machine");
    assert_eq!(before.requests, after.requests, "{what} changed a request");
    assert_eq!(before.bulk, after.bulk, "{what} changed a bulk run");
    assert_eq!(before.tokens, after.tokens, "{what} changed an API token");
    assert_eq!(before.consoles, after.consoles, "{what} issued or spent a console URL");
    assert_eq!(before.audit, after.audit, "{what} wrote to the audit log");
    assert_eq!(before.pve_calls, after.pve_calls, "{what} called PVE");
}
