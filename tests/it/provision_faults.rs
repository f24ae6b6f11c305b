//! Provisioning under injected Proxmox VE faults: every fault ends in recovery (`ready`, one new
//! container) or in a clean `failed` with its reason, the container rolled back and the quota released.

use std::collections::BTreeSet;
use std::time::Duration;

use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::{Endpoint, Fault, Guest, SimConfig, SimHandle, Simulator, admin_acl};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};
use crate::provision::{TOKEN_ID, TOKEN_SECRET, settle};

/// An app with workers against its own simulator, an admin, a user (alice) and a template on pve1/9000.
pub struct Desk {
    pub app: TestApp,
    pub sim: SimHandle,
    pub admin: String,
    pub alice: String,
    pub alice_id: i64,
    pub template: i64,
    /// The VMIDs the simulator started with.
    pub initial: BTreeSet<u64>,
}

/// Short deadlines (1 s per task and for the address), `attempts` attempts 20 ms apart.
pub async fn desk(sim_config: SimConfig, attempts: u32) -> Desk {
    desk_with(sim_config, attempts, |_| {}).await
}

/// [`desk`] with further settings.
pub async fn desk_with(
    sim_config: SimConfig,
    attempts: u32,
    configure: impl FnOnce(&mut proxdesk::config::RawSettings),
) -> Desk {
    let sim = Simulator::start(sim_config.with_token(TOKEN_ID, TOKEN_SECRET, admin_acl())).await.unwrap();
    let url = sim.url().to_owned();
    let app = spawn_app_with(|raw| {
        raw.set("pve_url", url);
        raw.set("pve_token", format!("{TOKEN_ID}={TOKEN_SECRET}"));
        raw.set("provision_poll_ms", "20");
        raw.set("provision_backoff_ms", "20");
        raw.set("provision_attempts", attempts.to_string());
        raw.set("provision_ip_timeout_secs", "1");
        raw.set("provision_task_timeout_secs", "1");
        configure(raw);
    })
    .await;
    let (admin, _) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let (admin_token, alice_token) = (app.token(&admin).await, app.token(&alice).await);
    let template = app.template_at("Debian", "pve1", 9000, "none").await;
    let initial = sim.state().guests.keys().copied().collect();
    Desk { app, sim, admin: admin_token, alice: alice_token, alice_id: alice.id, template, initial }
}

impl Desk {
    /// Alice asks for a container, the admin approves it; returns the request id.
    pub async fn approve(&self, hostname: &str) -> i64 {
        let id = self.app.submit_ok(&self.alice, self.template, hostname).await;
        let r = self.app.post(&self.admin, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
        assert_eq!(r.status(), StatusCode::OK, "approve {id}");
        id
    }

    pub async fn settle(&self, id: i64) -> Value {
        settle(&self.app, &self.alice, id).await
    }

    /// Containers that were not in the initial inventory.
    pub fn new_guests(&self) -> Vec<Guest> {
        self.sim.state().guests.into_values().filter(|g| !self.initial.contains(&g.vmid)).collect()
    }

    /// Machines counted against alice's quota.
    pub async fn used_machines(&self) -> i64 {
        let r = self.app.get(&self.admin, &format!("/api/v1/users/{}/quota", self.alice_id)).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Value>().await.unwrap()["used_machines"].as_i64().unwrap()
    }

    /// The admin's retry of a failed request.
    pub async fn retry(&self, id: i64) {
        let r = self.app.post(&self.admin, &format!("/api/v1/requests/{id}/retry"), json!({})).await;
        assert_eq!(r.status(), StatusCode::OK, "retry {id}");
    }

    /// The provision jobs of request `id`, oldest first.
    pub async fn jobs_of(&self, id: i64) -> Vec<jobs::Job> {
        provision_jobs(&self.app.db, id).await
    }
}

pub async fn provision_jobs(db: &sea_orm::DatabaseConnection, request_id: i64) -> Vec<jobs::Job> {
    let filter = jobs::JobFilter { kind: Some("provision".into()), limit: Some(10_000), ..Default::default() };
    let mut list: Vec<jobs::Job> = jobs::list(db, &filter)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.payload["request_id"].as_i64() == Some(request_id))
        .collect();
    list.reverse();
    list
}

/// [`provision_jobs`] once none is queued or running: the request turns `ready` in the job's last step,
/// a moment before the queue records the job's own success.
pub async fn settled_provision_jobs(db: &sea_orm::DatabaseConnection, request_id: i64) -> Vec<jobs::Job> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let list = provision_jobs(db, request_id).await;
        let open = list.iter().any(|j| matches!(j.state, jobs::JobState::Queued | jobs::JobState::Running));
        if !open || std::time::Instant::now() > until {
            return list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub fn actions(request: &Value) -> Vec<String> {
    request["timeline"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect()
}

pub fn reason(request: &Value) -> String {
    request["reason"].as_str().unwrap_or_default().to_owned()
}

/// `ready` with exactly one new container, running and marked as the request's.
fn assert_ready_with_one_container(d: &Desk, id: i64, done: &Value) {
    assert_eq!(done["status"], "ready", "{done}");
    let guests = d.new_guests();
    assert_eq!(guests.len(), 1, "exactly one new container: {:?}", guests.iter().map(|g| g.vmid).collect::<Vec<_>>());
    assert!(guests[0].running, "the container runs");
    let description = guests[0].config.get("description").cloned().unwrap_or_default();
    assert!(description.contains(&format!("(proxdesk request #{id})")), "{description}");
}

/// `failed` with a reason containing `needle`, nothing left on the cluster, the quota released.
async fn assert_failed_cleanly(d: &Desk, done: &Value, needle: &str) {
    assert_eq!(done["status"], "failed", "{done}");
    assert!(reason(done).contains(needle), "reason {:?} should name {needle:?}", reason(done));
    let orphans: Vec<u64> = d.new_guests().iter().map(|g| g.vmid).collect();
    assert!(orphans.is_empty(), "no orphan container, found {orphans:?}");
    assert_eq!(d.used_machines().await, 0, "a failed request holds no quota");
}

async fn transient_clone_status(code: u16, message: &str) {
    let d = desk(SimConfig::for_tests(), 3).await;
    d.sim.faults().inject_times(Endpoint::LxcClone, Fault::Status { code, message: message.into() }, 1);
    let id = d.approve("lab-1").await;
    let done = d.settle(id).await;
    assert_ready_with_one_container(&d, id, &done);
    assert_eq!(d.sim.calls().get(Endpoint::LxcClone), 2, "one refused clone, one accepted");
    assert!(actions(&done).contains(&"provision.retrying".to_owned()), "{:?}", actions(&done));
}

async fn permanent_clone_status(code: u16, message: &str) {
    let d = desk(SimConfig::for_tests(), 2).await;
    d.sim.faults().inject(Endpoint::LxcClone, Fault::Status { code, message: message.into() });
    let id = d.approve("lab-1").await;
    assert_eq!(d.used_machines().await, 1);
    let done = d.settle(id).await;
    assert_failed_cleanly(&d, &done, message).await;
    assert!(reason(&done).contains(&code.to_string()), "{}", reason(&done));
    assert_eq!(d.sim.calls().get(Endpoint::LxcClone), 2, "one clone per attempt");

    // Once the cluster is healthy again, the admin's retry provisions it.
    d.sim.faults().clear();
    d.retry(id).await;
    let done = d.settle(id).await;
    assert_ready_with_one_container(&d, id, &done);
    assert_eq!(d.used_machines().await, 1);
}

#[tokio::test]
async fn a_transient_500_on_clone_is_retried_to_ready() {
    transient_clone_status(500, "unable to create CT - got timeout").await;
}

#[tokio::test]
async fn a_transient_596_on_clone_is_retried_to_ready() {
    transient_clone_status(596, "Broken pipe").await;
}

#[tokio::test]
async fn a_permanent_500_on_clone_fails_cleanly_releases_the_quota_and_an_admin_retry_recovers() {
    // Not a `… got timeout` text: PVE's lock and worker waits are `Busy`, whose message carries no status.
    permanent_clone_status(500, "unable to allocate the disk: out of space").await;
}

#[tokio::test]
async fn a_permanent_596_on_clone_fails_cleanly_releases_the_quota_and_an_admin_retry_recovers() {
    permanent_clone_status(596, "Broken pipe").await;
}

#[tokio::test]
async fn a_template_locked_for_a_moment_is_waited_for_within_one_attempt() {
    // Two attempts 20 ms apart would both meet the lock: only waiting for it gets through.
    let d = desk(SimConfig::for_tests(), 2).await;
    d.sim.with_state(|s| s.guests.get_mut(&9000).unwrap().config.insert("lock".into(), "backup".into()));
    let id = d.approve("lab-1").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(d.sim.calls().get(Endpoint::LxcStatusCurrent) >= 1, "the template's lock was looked at");
    assert_eq!(d.sim.calls().get(Endpoint::LxcClone), 0, "no clone is sent to a locked template");
    d.sim.with_state(|s| s.guests.get_mut(&9000).unwrap().config.remove("lock"));
    let done = d.settle(id).await;
    assert_ready_with_one_container(&d, id, &done);
    assert_eq!(d.sim.calls().get(Endpoint::LxcClone), 1);
    let jobs = d.jobs_of(id).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].attempts, 1, "the lock did not cost an attempt: {:?}", jobs[0].last_error);
}

#[tokio::test]
async fn a_template_that_stays_locked_fails_with_the_lock_named() {
    let d = desk(SimConfig::for_tests(), 2).await;
    d.sim.with_state(|s| s.guests.get_mut(&9000).unwrap().config.insert("lock".into(), "backup".into()));
    let id = d.approve("lab-1").await;
    let done = d.settle(id).await;
    assert_failed_cleanly(&d, &done, "template CT 9000 on pve1 stayed locked (backup)").await;
}

#[tokio::test]
async fn two_approvals_of_one_template_are_cloned_one_after_the_other() {
    let d = desk(SimConfig::for_tests(), 2).await;
    let (a, b) = tokio::join!(d.approve("lab-1"), d.approve("lab-2"));
    let (da, db) = tokio::join!(d.settle(a), d.settle(b));
    assert_eq!(da["status"], "ready", "{da}");
    assert_eq!(db["status"], "ready", "{db}");
    assert_eq!(d.new_guests().len(), 2);
    // PVE refuses a clone of a locked template; proxdesk never sent one.
    assert_eq!(d.sim.calls().get(Endpoint::LxcClone), 2, "no clone met the other's lock");
    for id in [a, b] {
        assert_eq!(d.jobs_of(id).await[0].attempts, 1);
    }
}

#[tokio::test]
async fn a_failed_clone_task_is_retried_to_ready() {
    let d = desk(SimConfig::for_tests(), 3).await;
    d.sim.faults().inject_times(Endpoint::LxcClone, Fault::TaskError("no space left on device".into()), 1);
    let id = d.approve("lab-1").await;
    let done = d.settle(id).await;
    assert_ready_with_one_container(&d, id, &done);
    assert_eq!(d.sim.calls().get(Endpoint::LxcClone), 2);
}

#[tokio::test]
async fn a_clone_task_that_always_fails_ends_failed_without_orphan() {
    let d = desk(SimConfig::for_tests(), 2).await;
    d.sim.faults().inject(Endpoint::LxcClone, Fault::TaskError("no space left on device".into()));
    let id = d.approve("lab-1").await;
    let done = d.settle(id).await;
    assert_failed_cleanly(&d, &done, "clone failed: no space left on device").await;
    assert_eq!(d.sim.calls().get(Endpoint::LxcClone), 2);
}

#[tokio::test]
async fn a_start_task_that_hangs_once_is_retried_to_ready() {
    let d = desk(SimConfig::for_tests(), 2).await;
    d.sim.faults().inject_times(Endpoint::LxcStart, Fault::TaskHang, 1);
    let id = d.approve("lab-1").await;
    let done = d.settle(id).await;
    assert_ready_with_one_container(&d, id, &done);
    assert_eq!(d.sim.calls().get(Endpoint::LxcClone), 1, "the clone was not repeated");
}

#[tokio::test]
async fn a_start_task_that_never_ends_fails_after_the_deadline_and_is_rolled_back() {
    let d = desk(SimConfig::for_tests(), 2).await;
    d.sim.faults().inject(Endpoint::LxcStart, Fault::TaskHang);
    let id = d.approve("lab-1").await;
    let done = d.settle(id).await;
    assert_failed_cleanly(&d, &done, "still running after 1s").await;
    assert!(actions(&done).contains(&"provision.rolled_back".to_owned()), "{:?}", actions(&done));

    d.sim.faults().clear();
    d.retry(id).await;
    let done = d.settle(id).await;
    assert_ready_with_one_container(&d, id, &done);
}

/// A clone task that never ends keeps its target locked (`create`) and the template locked (`disk`),
/// and PVE deletes neither. After the deadline proxdesk stops the task, whose worker then removes the
/// target and releases both locks, and clones again on the next attempt.
#[tokio::test]
async fn a_clone_task_that_never_ends_is_stopped_and_cloned_again() {
    let d = desk(SimConfig::for_tests(), 2).await;
    d.sim.faults().inject_times(Endpoint::LxcClone, Fault::TaskHang, 1);
    let id = d.approve("lab-1").await;
    let done = d.settle(id).await;
    assert_ready_with_one_container(&d, id, &done);
    assert_eq!(d.sim.calls().get(Endpoint::TaskStop), 1, "the hung clone was stopped once");
    assert_eq!(d.sim.calls().get(Endpoint::LxcClone), 2, "then cloned afresh");
    let retry = done["timeline"].as_array().unwrap().iter().find(|e| e["action"] == "provision.retrying").unwrap();
    assert!(retry["details"]["error"].as_str().unwrap().contains("still running after 1s; stopped it"), "{retry}");
    assert!(d.sim.state().guests[&9000].lock().is_none(), "the template is unlocked");
}

/// On the last attempt the stopped clone leaves nothing behind either: `failed`, no container, the
/// template unlocked, the quota released.
#[tokio::test]
async fn a_clone_task_that_never_ends_on_the_last_attempt_fails_without_an_orphan() {
    let d = desk(SimConfig::for_tests(), 1).await;
    d.sim.faults().inject(Endpoint::LxcClone, Fault::TaskHang);
    let id = d.approve("lab-1").await;
    let done = d.settle(id).await;
    assert_failed_cleanly(&d, &done, "still running after 1s; stopped it").await;
    assert!(!reason(&done).contains("clean-up failed"), "{done}");
    assert_eq!(d.sim.calls().get(Endpoint::LxcClone), 1);
    assert_eq!(d.sim.calls().get(Endpoint::LxcDelete), 0, "PVE removed the stopped clone's target itself");
    assert!(d.sim.state().guests[&9000].lock().is_none(), "the template is unlocked");

    d.sim.faults().clear();
    d.retry(id).await;
    let done = d.settle(id).await;
    assert_ready_with_one_container(&d, id, &done);
}

#[tokio::test]
async fn no_ipv4_address_fails_and_is_rolled_back() {
    let config = SimConfig { ip_delay: Duration::from_secs(3600), ..SimConfig::for_tests() };
    let d = desk(config, 2).await;
    let id = d.approve("lab-1").await;
    let done = d.settle(id).await;
    assert_failed_cleanly(&d, &done, "no IPv4 address").await;
    assert_eq!(d.sim.calls().get(Endpoint::LxcStart), 1, "a running container is not started again");
    assert!(d.sim.calls().get(Endpoint::LxcStop) >= 1, "stopped before deletion");
}

/// A deletion PVE keeps refusing hands the machine back to its owner (`ready`, with the reason), still
/// listed and still on the cluster, so it can be deleted again once PVE allows it.
#[tokio::test]
async fn a_deletion_that_keeps_failing_leaves_the_machine_with_its_owner_to_delete_again() {
    let d = desk(SimConfig::for_tests(), 2).await;
    let id = d.approve("lab-1").await;
    assert_eq!(d.settle(id).await["status"], "ready");
    let machines: Value = d.app.get(&d.alice, "/api/v1/machines").await.json().await.unwrap();
    let mid = machines["items"][0]["id"].as_i64().unwrap();
    let delete = || async {
        let r = d.app.api.delete(d.app.url(&format!("/api/v1/machines/{mid}"))).bearer_auth(&d.alice).send().await;
        assert_eq!(r.unwrap().status(), StatusCode::ACCEPTED);
    };

    let refused = Fault::Status { code: 500, message: "unable to destroy CT - storage is busy".into() };
    d.sim.faults().inject(Endpoint::LxcDelete, refused);
    delete().await;
    let done = d.settle(id).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert!(reason(&done).contains("storage is busy"), "{done}");
    assert!(actions(&done).contains(&"request.delete_failed".to_owned()), "{:?}", actions(&done));
    assert_eq!(d.sim.calls().get(Endpoint::LxcDelete), 2, "each attempt tried once");
    assert_eq!(d.new_guests().len(), 1, "the container is still there");
    assert_eq!(d.used_machines().await, 1, "and still counts against the quota");

    d.sim.faults().clear();
    delete().await;
    let done = d.settle(id).await;
    assert_eq!(done["status"], "deleted", "{done}");
    assert!(done["reason"].is_null(), "{done}");
    assert!(d.new_guests().is_empty());
}
