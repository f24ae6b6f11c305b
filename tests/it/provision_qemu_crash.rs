//! Crash safety of QEMU provisioning: the server process is SIGKILLed at each step of a cloud-init VM and
//! of an ISO VM and restarted; every request still ends `ready` with exactly one VM, and no clone or
//! create is ever sent twice. A crash during the last attempt leaves a failed request, no VM and the
//! static address free.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::processes::{Seeded, Served, SimProc, seed};
use crate::provision_faults::{provision_jobs, settled_provision_jobs};
use crate::provision_qemu::{leases, make_cloudinit, make_iso};

/// Where the process is killed.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// The simulator accepted the clone (or create); its task id may not be checkpointed yet.
    Accepted,
    /// The clone (or create) task id is checkpointed and the task still runs.
    Running,
    /// Configured and resized, not started (cloud-init VMs).
    Configured,
    /// The start was sent, its task not yet waited for.
    StartSent,
    /// Started, waiting for the guest agent's address (cloud-init VMs with DHCP).
    WaitingForAddress,
}

async fn checkpoint(s: &Seeded, id: i64) -> Value {
    provision_jobs(&s.db, id).await.last().and_then(|j| j.checkpoint.clone()).unwrap_or(Value::Null)
}

fn vmids(stats: &Value) -> BTreeSet<u64> {
    stats["guests"].as_array().unwrap().iter().map(|g| g["vmid"].as_u64().unwrap()).collect()
}

fn timeline_has(request: &Value, action: &str) -> bool {
    request["timeline"].as_array().is_some_and(|t| t.iter().any(|e| e["action"] == action))
}

/// Waits (bounded) until request `id` is at `point`; `making` is the endpoint that makes the VM.
async fn reach(point: KillPoint, s: &Seeded, sim: &SimProc, served: &Served, id: i64, making: &str, before: u64) {
    let starts_before = sim.calls("qemu-start").await;
    // A process killed right after PVE accepted a clone or create may still have held the clone lock,
    // which then blocks every VMID pick until its time to live (30 s) runs out.
    let until = Instant::now() + Duration::from_secs(45);
    loop {
        let cp = checkpoint(s, id).await;
        let there = match point {
            KillPoint::Accepted => sim.calls(making).await > before,
            KillPoint::Running => cp["clone_upid"].is_string() && cp["cloned"] == false,
            KillPoint::Configured => {
                let r = served.get(&s.user_token, &format!("/api/v1/requests/{id}")).await;
                timeline_has(&r, "provision.configured") && cp["started"] == false
            }
            KillPoint::StartSent => sim.calls("qemu-start").await > starts_before && cp["started"] == false,
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
async fn a_killed_server_resumes_every_qemu_step_with_exactly_one_vm() {
    let s = seed().await;
    let (cloud, iso) = (s.templates[0], s.templates[1]);
    make_cloudinit(&s.db, cloud, None, "").await;
    make_iso(&s.db, iso, "pve1,pve2").await;
    // Each step lasts long enough to be killed inside it.
    let sim = SimProc::start(s.dir.path(), 600, 300, 500).await;
    let initial = vmids(&sim.stats().await);
    let mut served = Served::start(&s, &sim.url, "serve-0").await;
    // The kills just after a clone or create was accepted come last: they may leave the clone lock
    // held (see `reach`), which would slow every later case.
    let cases = [
        (cloud, KillPoint::Running),
        (cloud, KillPoint::Configured),
        (cloud, KillPoint::StartSent),
        (cloud, KillPoint::WaitingForAddress),
        (iso, KillPoint::Running),
        (iso, KillPoint::StartSent),
        (cloud, KillPoint::Accepted),
        (iso, KillPoint::Accepted),
    ];
    for (n, (template, point)) in cases.into_iter().enumerate() {
        let making = if template == cloud { "qemu-clone" } else { "qemu-create" };
        let before = sim.calls(making).await;
        let id = served.approved(&s, template, &format!("crash-{n}")).await;
        reach(point, &s, &sim, &served, id, making, before).await;
        served.proc.kill();
        served = Served::start(&s, &sim.url, &format!("serve-{}", n + 1)).await;

        let done = served.settle(&s.user_token, id, Duration::from_secs(20)).await;
        let case = format!("{making} killed at {point:?}");
        assert_eq!(done["status"], "ready", "{case}: {done}");
        assert_eq!(sim.calls(making).await, before + 1, "{case}: sent once");

        let stats = sim.stats().await;
        let new: Vec<&Value> = stats["guests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| !initial.contains(&g["vmid"].as_u64().unwrap()))
            .collect();
        assert_eq!(new.len(), n + 1, "{case}: one VM per request: {new:?}");
        let marker = format!("(proxdesk request #{id})");
        let ours: Vec<&&Value> =
            new.iter().filter(|g| g["description"].as_str().unwrap_or_default().contains(&marker)).collect();
        assert_eq!(ours.len(), 1, "{case}: exactly one VM for request {id}");
        assert_eq!(ours[0]["kind"], "qemu");
        assert!(ours[0]["running"].as_bool().unwrap() && ours[0]["lock"].is_null(), "{case}: {}", ours[0]);
        let jobs = settled_provision_jobs(&s.db, id).await;
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].state, jobs::JobState::Succeeded);
        assert_eq!(jobs[0].attempts, 2, "{case}: the killed attempt, then the resumed one");
    }
    let machines = served.get(&s.user_token, "/api/v1/machines").await;
    let vmids: Vec<u64> = machines["items"].as_array().unwrap().iter().map(|m| m["vmid"].as_u64().unwrap()).collect();
    assert_eq!(vmids.len(), cases.len());
    assert_eq!(vmids.iter().collect::<BTreeSet<_>>().len(), vmids.len(), "duplicate VMID in {vmids:?}");
}

/// A crash during the last attempt: the queue gives up once the lease expires, the request is marked
/// `failed`, and the clean-up job stops and deletes the VM and frees its static address.
#[tokio::test]
async fn a_server_killed_during_the_last_attempt_leaves_no_vm_and_frees_the_address() {
    let s = seed().await;
    make_cloudinit(&s.db, s.templates[0], Some(("203.0.113.10-203.0.113.20/24", "203.0.113.1")), "").await;
    let sim = SimProc::start(s.dir.path(), 300, 300, 500).await;
    let initial = vmids(&sim.stats().await);
    let one_attempt = [("PROXDESK_PROVISION_ATTEMPTS", "1")];
    let served = Served::start_with(&s, &sim.url, "serve-0", &one_attempt).await;
    let id = served.approved(&s, s.templates[0], "last-try").await;
    reach(KillPoint::Configured, &s, &sim, &served, id, "qemu-clone", 0).await;
    assert_eq!(leases(&s.db).await, [("203.0.113.10".to_owned(), id)]);
    served.proc.kill();
    let served = Served::start_with(&s, &sim.url, "serve-1", &one_attempt).await;

    let done = served.settle(&s.user_token, id, Duration::from_secs(20)).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(done["reason"].as_str().unwrap_or_default().contains("lease expired"), "{done}");
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let left: Vec<u64> = vmids(&sim.stats().await).difference(&initial).copied().collect();
        let request = served.get(&s.user_token, &format!("/api/v1/requests/{id}")).await;
        if left.is_empty()
            && timeline_has(&request, "provision.rolled_back")
            && timeline_has(&request, "address.released")
        {
            break;
        }
        assert!(Instant::now() < until, "the crashed attempt's VM stays: {left:?}\n{request}\n{}", served.proc.tail());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(leases(&s.db).await.is_empty(), "the address is free");
    assert_eq!(sim.calls("qemu-delete").await, 1);
}
