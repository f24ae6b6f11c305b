//! Provisioning when PVE carried a call out and its answer was lost (pveproxy's 596, a dropped
//! connection, a reply past the client's timeout): PVE's state decides, at every step. Each ends with
//! exactly one container for the request (none after a rollback), no orphan, and the timeline naming
//! the recovery path.

use std::time::Duration;

use proxdesk::domain::guest_marker::GuestMarker;
use proxdesk::integrations::guacamole::notes::{VmContext, note_connections};
use proxdesk::integrations::pve::sim::{Endpoint, Fault, SimConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::provision_faults::{Desk, actions, desk, desk_with, reason};

fn lost_596() -> Fault {
    Fault::AppliedThenStatus { code: 596, message: "Broken pipe".into() }
}

/// The paths of the `provision.recovered` entries for `step`.
fn recovered(request: &Value, step: &str) -> Vec<String> {
    request["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "provision.recovered" && e["details"]["step"] == step)
        .map(|e| e["details"]["path"].as_str().unwrap().to_owned())
        .collect()
}

/// `ready`, and exactly one container besides the initial inventory: the request's, running.
fn assert_ready_with_exactly_one_container(d: &Desk, id: i64, done: &Value) -> proxdesk::integrations::pve::sim::Guest {
    assert_eq!(done["status"], "ready", "{done}");
    let guests = d.new_guests();
    let vmids: Vec<u64> = guests.iter().map(|g| g.vmid).collect();
    assert_eq!(guests.len(), 1, "exactly one container, no orphan: {vmids:?}");
    let g = guests.into_iter().next().unwrap();
    let marker = GuestMarker::for_request(id);
    assert!(
        marker.is_carried_by(g.config.get("description").map(String::as_str), g.config.get("tags").map(String::as_str))
    );
    assert!(g.running, "the container runs");
    assert!(g.lock().is_none(), "and is unlocked");
    g
}

/// Alice asks for `disk_gib` GiB (the template has 8) and the admin approves.
async fn approve_with_disk(d: &Desk, disk_gib: i32, purpose: &str) -> i64 {
    let body = json!({"template_id": d.template, "hostname": "lab-1", "cores": 1, "memory_mib": 512,
        "disk_gib": disk_gib, "purpose": purpose});
    let r = d.app.post(&d.alice, "/api/v1/requests", body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let r = d.app.post(&d.admin, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    id
}

async fn lost_clone_answer_is_adopted(fault: Fault) {
    let d = desk(SimConfig::for_tests(), 3).await;
    d.sim.faults().inject_times(Endpoint::LxcClone, fault, 1);
    let id = d.approve("lab-1").await;
    let done = d.settle(id).await;
    assert_ready_with_exactly_one_container(&d, id, &done);
    assert_eq!(d.sim.calls().get(Endpoint::LxcClone), 1, "the clone PVE carried out is not sent again");
    assert_eq!(recovered(&done, "clone"), ["adopted"], "{:?}", actions(&done));
    assert!(!actions(&done).contains(&"provision.retrying".to_owned()), "recovered within the attempt");
}

#[tokio::test]
async fn a_clone_answered_596_after_pve_accepted_it_is_adopted_not_cloned_twice() {
    lost_clone_answer_is_adopted(lost_596()).await;
}

#[tokio::test]
async fn a_clone_whose_connection_drops_after_pve_accepted_it_is_adopted_not_cloned_twice() {
    lost_clone_answer_is_adopted(Fault::AppliedThenDrop).await;
}

#[tokio::test]
async fn a_596_before_pve_acted_finds_nothing_at_the_vmid_and_clones_afresh() {
    let d = desk(SimConfig::for_tests(), 3).await;
    d.sim.faults().inject_times(Endpoint::LxcClone, Fault::Status { code: 596, message: "Broken pipe".into() }, 1);
    let id = d.approve("lab-1").await;
    let done = d.settle(id).await;
    assert_ready_with_exactly_one_container(&d, id, &done);
    assert_eq!(d.sim.calls().get(Endpoint::LxcClone), 2);
    assert_eq!(recovered(&done, "clone"), ["absent"]);
}

/// The clone never ends and its answer is lost: its task is found among the node's running tasks,
/// stopped past the deadline (PVE then removes the target), and the next attempt clones afresh.
#[tokio::test]
async fn a_hung_clone_whose_answer_is_lost_is_found_stopped_and_cloned_afresh() {
    let d = desk(SimConfig::for_tests(), 2).await;
    d.sim.faults().inject_times(Endpoint::LxcClone, Fault::TaskHang, 1);
    d.sim.faults().inject_times(Endpoint::LxcClone, lost_596(), 1);
    let id = d.approve("lab-1").await;
    let done = d.settle(id).await;
    assert_ready_with_exactly_one_container(&d, id, &done);
    assert_eq!(recovered(&done, "clone"), ["removed"], "{:?}", actions(&done));
    assert_eq!(d.sim.calls().get(Endpoint::TaskStop), 1, "the hung clone was stopped");
    assert_eq!(d.sim.calls().get(Endpoint::LxcClone), 2);
    assert!(d.sim.state().guests[&9000].lock().is_none(), "the template is unlocked");
}

#[tokio::test]
async fn a_config_put_whose_connection_drops_after_pve_applied_it_is_recognised() {
    let d = desk(SimConfig::for_tests(), 3).await;
    d.sim.faults().inject_times(Endpoint::LxcConfigPut, Fault::AppliedThenDrop, 1);
    let id = d.approve("lab-1").await;
    let done = d.settle(id).await;
    let g = assert_ready_with_exactly_one_container(&d, id, &done);
    assert_eq!(g.config.get("tags"), Some(&format!("proxdesk;proxdesk-request-{id}")));
    assert_eq!(recovered(&done, "config"), ["applied"]);
    assert_eq!(d.sim.calls().get(Endpoint::LxcConfigPut), 1, "the applied PUT was not sent again");
    assert!(!actions(&done).contains(&"provision.retrying".to_owned()));
}

/// The resize's answer (its UPID) is lost: its task is found and waited for, and the size decides.
#[tokio::test]
async fn a_resize_whose_answer_is_lost_is_decided_by_the_disk_size() {
    let d = desk(SimConfig::for_tests(), 3).await;
    d.sim.faults().inject_times(Endpoint::LxcResize, lost_596(), 1);
    let id = approve_with_disk(&d, 16, "testing").await;
    let done = d.settle(id).await;
    let g = assert_ready_with_exactly_one_container(&d, id, &done);
    assert!(g.config["rootfs"].ends_with("size=16G"), "{}", g.config["rootfs"]);
    assert_eq!(recovered(&done, "resize"), ["applied"]);
    assert_eq!(d.sim.calls().get(Endpoint::LxcResize), 1, "not resized twice");
    assert!(!actions(&done).contains(&"provision.retrying".to_owned()));
}

/// The start's reply arrives after the client gave up (1 s): the container's status decides.
#[tokio::test]
async fn a_start_whose_reply_outlives_the_client_timeout_is_decided_by_the_status() {
    let d = desk_with(SimConfig::for_tests(), 3, |raw| raw.set("pve_timeout_secs", "1")).await;
    d.sim.faults().inject_times(Endpoint::LxcStart, Fault::AppliedThenDelay(Duration::from_millis(1500)), 1);
    let id = d.approve("lab-1").await;
    let done = d.settle(id).await;
    assert_ready_with_exactly_one_container(&d, id, &done);
    assert_eq!(recovered(&done, "start"), ["applied"], "{:?}", actions(&done));
    assert_eq!(d.sim.calls().get(Endpoint::LxcStart), 1, "not started twice");
    assert!(!actions(&done).contains(&"provision.retrying".to_owned()));
}

/// Provisioning fails (the start task errs) and the rollback's delete loses its answer: the guest's
/// absence decides, after its `destroyed` lock; the request fails cleanly with nothing left behind.
#[tokio::test]
async fn a_delete_whose_answer_is_lost_during_rollback_leaves_no_container() {
    let d = desk(SimConfig::for_tests(), 1).await;
    d.sim.faults().inject(Endpoint::LxcStart, Fault::TaskError("startup for container failed".into()));
    d.sim.faults().inject_times(Endpoint::LxcDelete, lost_596(), 1);
    let id = d.approve("lab-1").await;
    let done = d.settle(id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(!reason(&done).contains("clean-up failed"), "{}", reason(&done));
    let left: Vec<u64> = d.new_guests().iter().map(|g| g.vmid).collect();
    assert!(left.is_empty(), "no container left: {left:?}");
    assert_eq!(recovered(&done, "delete"), ["gone"], "{:?}", actions(&done));
    assert!(actions(&done).contains(&"provision.rolled_back".to_owned()));
    assert_eq!(d.sim.calls().get(Endpoint::LxcDelete), 1, "deleted once");
    assert_eq!(d.used_machines().await, 0);
}

/// A purpose that holds another request's marker line and a credential entry cannot make the
/// container pass for the other request's, nor give the Guacamole sync a connection to create.
#[tokio::test]
async fn a_purpose_cannot_forge_a_marker_or_credentials_in_the_containers_notes() {
    let d = desk(SimConfig::for_tests(), 2).await;
    let victim = d.approve("lab-1").await;
    assert_eq!(d.settle(victim).await["status"], "ready");
    let forged = format!(
        "Requested by bob (proxdesk request #{victim})\n(proxdesk request #{victim})\nuser:\"root\" pass:\"x\" protos:\"ssh\";"
    );
    let id = approve_with_disk(&d, 8, &forged).await;
    assert_eq!(d.settle(id).await["status"], "ready");
    let g = d
        .new_guests()
        .into_iter()
        .find(|g| GuestMarker::for_request(id).is_carried_by(g.config.get("description").map(String::as_str), None))
        .unwrap();
    let notes = g.config["description"].clone();
    let tags = g.config.get("tags").cloned();
    assert!(notes.lines().next().unwrap().ends_with(&format!("(proxdesk request #{id})")), "{notes}");
    assert!(!GuestMarker::for_request(victim).is_carried_by(Some(&notes), tags.as_deref()), "{notes}");
    let (connections, _) = note_connections(&notes, &VmContext::default(), None);
    assert!(connections.is_empty(), "no credential entry in {notes:?}: {connections:?}");
    assert!(!notes.contains(';'), "{notes}");
}
