//! Crash safety: proxdesk is SIGKILLed at each provisioning step and restarted; every request still ends
//! `ready` with exactly one container, and no clone is ever sent twice.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::processes::{Seeded, Served, SimProc, seed};
use crate::provision_faults::{provision_jobs, settled_provision_jobs};

/// Where the process is killed.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// The simulator accepted the clone; the task id may not be checkpointed yet.
    CloneAccepted,
    /// The clone task id is checkpointed and the clone is still running.
    CloneRunning,
    /// Configured and resized, not started.
    Configured,
    /// The start was sent, its task not yet waited for.
    StartSent,
    /// Started, waiting for the IPv4 address.
    WaitingForAddress,
}

async fn checkpoint(s: &Seeded, id: i64) -> Value {
    provision_jobs(&s.db, id).await.last().and_then(|j| j.checkpoint.clone()).unwrap_or(Value::Null)
}

/// The guests in the simulator's stats.
fn guests(stats: &Value) -> &[Value] {
    stats["guests"].as_array().unwrap()
}

/// The guests in the simulator's stats that were not there at the start.
fn new_guests<'a>(stats: &'a Value, initial: &BTreeSet<u64>) -> Vec<&'a Value> {
    guests(stats).iter().filter(|g| !initial.contains(&g["vmid"].as_u64().unwrap())).collect()
}

fn timeline_has(request: &Value, action: &str) -> bool {
    request["timeline"].as_array().is_some_and(|t| t.iter().any(|e| e["action"] == action))
}

/// Waits (bounded) until request `id` is at `point`.
async fn reach(point: KillPoint, s: &Seeded, sim: &SimProc, served: &Served, id: i64, clones_before: u64) {
    let starts_before = sim.calls("lxc-start").await;
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let cp = checkpoint(s, id).await;
        let there = match point {
            KillPoint::CloneAccepted => sim.calls("lxc-clone").await > clones_before,
            KillPoint::CloneRunning => cp["clone_upid"].is_string() && cp["cloned"] == false,
            KillPoint::Configured => {
                let r = served.get(&s.user_token, &format!("/api/v1/requests/{id}")).await;
                timeline_has(&r, "provision.configured") && cp["started"] == false
            }
            KillPoint::StartSent => sim.calls("lxc-start").await > starts_before && cp["started"] == false,
            KillPoint::WaitingForAddress => cp["started"] == true && cp["ipv4"].is_null(),
        };
        if there {
            return;
        }
        assert!(
            Instant::now() < until,
            "request {id} never reached {point:?}; checkpoint {cp}\n{}",
            served.proc.tail()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_killed_worker_resumes_every_step_without_duplicates() {
    let s = seed().await;
    // Each step lasts long enough to be killed inside it.
    let sim = SimProc::start(s.dir.path(), 600, 300, 500).await;
    let initial: BTreeSet<u64> = guests(&sim.stats().await).iter().map(|g| g["vmid"].as_u64().unwrap()).collect();
    let mut served = Served::start(&s, &sim.url, "serve-0").await;
    let points = [
        KillPoint::CloneAccepted,
        KillPoint::CloneRunning,
        KillPoint::Configured,
        KillPoint::StartSent,
        KillPoint::WaitingForAddress,
    ];
    for (n, point) in points.into_iter().enumerate() {
        let clones_before = sim.calls("lxc-clone").await;
        let template = s.templates[n % s.templates.len()];
        let id = served.approved(&s, template, &format!("crash-{n}")).await;
        reach(point, &s, &sim, &served, id, clones_before).await;
        served.proc.kill();
        served = Served::start(&s, &sim.url, &format!("serve-{}", n + 1)).await;

        let done = served.settle(&s.user_token, id, Duration::from_secs(20)).await;
        assert_eq!(done["status"], "ready", "killed at {point:?}: {done}");
        assert_eq!(sim.calls("lxc-clone").await, clones_before + 1, "killed at {point:?}: the clone was sent once");

        // One new container per request so far, each carrying its own request's marker exactly once.
        let stats = sim.stats().await;
        let new = new_guests(&stats, &initial);
        assert_eq!(new.len(), n + 1, "killed at {point:?}: one container per request: {new:?}");
        let ours: Vec<&&Value> = new
            .iter()
            .filter(|g| g["description"].as_str().unwrap_or_default().contains(&format!("(proxdesk request #{id})")))
            .collect();
        assert_eq!(ours.len(), 1, "killed at {point:?}: exactly one container for request {id}");
        assert!(ours[0]["running"].as_bool().unwrap() && ours[0]["lock"].is_null(), "{}", ours[0]);
        let jobs = settled_provision_jobs(&s.db, id).await;
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].state, jobs::JobState::Succeeded);
        assert_eq!(jobs[0].attempts, 2, "killed at {point:?}: the killed attempt, then the resumed one");
    }

    // No VMID is recorded for two machines.
    let machines = served.get(&s.user_token, "/api/v1/machines").await;
    let vmids: Vec<u64> = machines["items"].as_array().unwrap().iter().map(|m| m["vmid"].as_u64().unwrap()).collect();
    assert_eq!(vmids.len(), points.len());
    assert_eq!(vmids.iter().collect::<BTreeSet<_>>().len(), vmids.len(), "duplicate VMID in {vmids:?}");
}

/// A crash during the last attempt leaves no attempt to roll back: the queue gives up on the job once
/// its lease expires, the request is marked `failed`, and a clean-up job removes the container.
#[tokio::test]
async fn a_worker_killed_during_the_last_attempt_leaves_a_failed_request_and_no_container() {
    let s = seed().await;
    // Killed while waiting for the address, so the container runs and must be stopped first.
    let sim = SimProc::start(s.dir.path(), 300, 100, 60_000).await;
    let initial: BTreeSet<u64> = guests(&sim.stats().await).iter().map(|g| g["vmid"].as_u64().unwrap()).collect();
    let one_attempt = [("PROXDESK_PROVISION_ATTEMPTS", "1")];
    let served = Served::start_with(&s, &sim.url, "serve-0", &one_attempt).await;
    let id = served.approved(&s, s.templates[0], "last-try").await;
    reach(KillPoint::WaitingForAddress, &s, &sim, &served, id, 0).await;
    let mut served = served;
    served.proc.kill();
    served = Served::start_with(&s, &sim.url, "serve-1", &one_attempt).await;

    let done = served.settle(&s.user_token, id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(done["reason"].as_str().unwrap_or_default().contains("lease expired"), "{done}");
    // The guest disappears when PVE's delete task ends; the clean-up job notes it once it has seen the
    // task end, a poll later: wait for both.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = sim.stats().await;
        let left = new_guests(&stats, &initial);
        let request = served.get(&s.user_token, &format!("/api/v1/requests/{id}")).await;
        if left.is_empty() && timeline_has(&request, "provision.rolled_back") {
            break;
        }
        assert!(
            Instant::now() < until,
            "the crashed attempt's container stays: {left:?}\n{request}\n{}",
            served.proc.tail()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(sim.calls("lxc-stop").await >= 1, "the started container was stopped before deletion");

    // The admin's retry starts afresh: a new container is cloned.
    let clones = sim.calls("lxc-clone").await;
    served.post(&s.admin_token, &format!("/api/v1/requests/{id}/retry"), serde_json::json!({})).await;
    let until = Instant::now() + Duration::from_secs(20);
    while sim.calls("lxc-clone").await == clones {
        assert!(Instant::now() < until, "the retry never cloned\n{}", served.proc.tail());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
