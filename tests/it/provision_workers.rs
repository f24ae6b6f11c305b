//! Two proxdesk processes with workers on one database: every job runs once, in one process.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use proxdesk::integrations::pve::sim::{Endpoint, SimConfig, Simulator, admin_acl};

use crate::processes::{Served, seed};
use crate::provision::{TOKEN_ID, TOKEN_SECRET};
use crate::provision_faults::provision_jobs;

const REQUESTS: usize = 12;

#[tokio::test]
async fn two_worker_processes_on_one_database_never_run_a_job_twice() {
    let s = seed().await;
    let config = SimConfig {
        clone_duration: Duration::from_millis(300),
        power_duration: Duration::from_millis(50),
        ip_delay: Duration::from_millis(100),
        ..SimConfig::for_tests()
    };
    let sim = Simulator::start(config.with_token(TOKEN_ID, TOKEN_SECRET, admin_acl())).await.unwrap();
    let initial: BTreeSet<u64> = sim.state().guests.keys().copied().collect();
    // Four jobs at a time each, so neither process can take all twelve before the other polls.
    let env = [("PROXDESK_PROVISION_CONCURRENCY", "4")];
    let a = Served::start_with(&s, sim.url(), "serve-a", &env).await;
    let b = Served::start_with(&s, sim.url(), "serve-b", &env).await;

    let mut ids = vec![];
    for n in 0..REQUESTS {
        let via = if n % 2 == 0 { &a } else { &b };
        ids.push(via.approved(&s, s.templates[n % s.templates.len()], &format!("lab-{n}")).await);
    }

    // While they run, note which processes hold leases (`{hostname}-{pid}#{claim}`).
    let mut holders = BTreeSet::new();
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let running = jobs::list(
            &s.db,
            &jobs::JobFilter { states: vec![jobs::JobState::Running], limit: Some(1000), ..Default::default() },
        )
        .await
        .unwrap();
        holders.extend(running.iter().filter_map(|j| j.lease_owner.as_deref()?.split('#').next().map(str::to_owned)));
        let open = jobs::list(
            &s.db,
            &jobs::JobFilter {
                states: vec![jobs::JobState::Queued, jobs::JobState::Running],
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        if open.is_empty() {
            break;
        }
        assert!(Instant::now() < until, "jobs still open: {open:?}\n{}\n{}", a.proc.tail(), b.proc.tail());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(holders.len(), 2, "both processes ran jobs: {holders:?}");

    for id in &ids {
        let done = a.settle(&s.user_token, *id, Duration::from_secs(10)).await;
        assert_eq!(done["status"], "ready", "{done}");
        let jobs = provision_jobs(&s.db, *id).await;
        assert_eq!(jobs.len(), 1, "request {id}");
        assert_eq!(jobs[0].state, jobs::JobState::Succeeded, "request {id}");
        assert_eq!(jobs[0].attempts, 1, "request {id} ran once: {:?}", jobs[0].last_error);
    }
    let new: Vec<u64> = sim.state().guests.keys().copied().filter(|v| !initial.contains(v)).collect();
    assert_eq!(new.len(), REQUESTS, "one container per request: {new:?}");
    assert_eq!(sim.calls().get(Endpoint::LxcClone) as usize, REQUESTS, "one clone per request");
    for id in &ids {
        let marker = format!("(proxdesk request #{id})");
        let n = sim
            .state()
            .guests
            .values()
            .filter(|g| g.config.get("description").is_some_and(|d| d.contains(&marker)))
            .count();
        assert_eq!(n, 1, "request {id} has one container");
    }
}

#[tokio::test]
async fn named_locks_exclude_until_released_or_expired() {
    use proxdesk::services::locks;
    let s = seed().await;
    let long = Duration::from_secs(30);
    let held = locks::try_acquire(&s.db, "x", long).await.unwrap().expect("free");
    assert!(locks::try_acquire(&s.db, "x", long).await.unwrap().is_none(), "held");
    assert!(locks::try_acquire(&s.db, "y", long).await.unwrap().is_some(), "other names are independent");
    locks::release(&s.db, held).await.unwrap();
    let short = locks::try_acquire(&s.db, "x", Duration::from_millis(50)).await.unwrap().expect("released");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let taken = locks::try_acquire(&s.db, "x", long).await.unwrap().expect("an expired lock is taken over");
    locks::release(&s.db, short).await.unwrap();
    assert!(locks::try_acquire(&s.db, "x", long).await.unwrap().is_none(), "the late release freed nothing");
    locks::release(&s.db, taken).await.unwrap();
}
