//! The simulator's node task list, the `destroyed` lock of a deletion and tags in `/cluster/resources`
//! (pve-api.md §4.5, §5, §6.5): what finds a task again after its UPID was lost with an answer.

use proxdesk::integrations::pve::PveError;
use proxdesk::integrations::pve::sim::{Endpoint, Fault};
use proxdesk::integrations::pve::wire::{CloneRequest, LxcConfigUpdate};

use crate::pve_client::{sim, token_client};

#[tokio::test]
async fn the_node_task_list_shows_running_tasks_and_filters_like_pve() {
    let sim = sim().await;
    let pve = token_client(&sim);
    sim.faults().inject_times(Endpoint::LxcClone, Fault::TaskHang, 1);
    let req = CloneRequest { newid: 150, ..Default::default() };
    let upid = pve.lxc_clone("pve1", 9000, &req).await.unwrap();

    let running = pve.active_tasks("pve1", "vzclone", 9000).await.unwrap();
    assert_eq!(running.len(), 1, "{running:?}");
    let t = &running[0];
    assert_eq!((t.upid.as_str(), t.kind.as_str(), t.id.as_str()), (upid.as_str(), "vzclone", "9000"));
    assert_eq!(
        (t.user.as_str(), t.tokenid.as_deref(), t.status.as_deref()),
        ("portal@pve", Some("svc"), Some("RUNNING"))
    );
    assert!(pve.active_tasks("pve1", "vzclone", 150).await.unwrap().is_empty(), "a clone's id is its source");
    assert!(pve.active_tasks("pve1", "vzstart", 9000).await.unwrap().is_empty(), "typefilter is exact");
    assert!(pve.active_tasks("pve2", "vzclone", 9000).await.unwrap().is_empty(), "tasks are per node");

    pve.stop_task(&upid).await.unwrap();
    assert!(pve.active_tasks("pve1", "vzclone", 9000).await.unwrap().is_empty(), "a stopped task is not active");
    let base = format!("{}/api2/json/nodes/pve1/tasks", sim.url());
    let auth = format!("PVEAPIToken={}={}", crate::pve_client::TOKEN_ID, crate::pve_client::TOKEN_SECRET);
    let http = reqwest::Client::new();
    let archive: serde_json::Value =
        http.get(&base).header("Authorization", &auth).send().await.unwrap().json().await.unwrap();
    assert_eq!(archive["total"], 1, "the default source is the archive of finished tasks: {archive}");
    assert_eq!(archive["data"][0]["status"], "clone failed: received interrupt");
    let r = http.get(format!("{base}?source=bogus")).header("Authorization", &auth).send().await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_guest_being_destroyed_is_locked_destroyed_until_it_is_gone() {
    let sim = sim().await;
    let pve = token_client(&sim);
    let upid = pve.lxc_clone("pve1", 9000, &CloneRequest { newid: 150, ..Default::default() }).await.unwrap();
    pve.wait_task(&upid, Default::default()).await.unwrap();
    let upid = pve.lxc_delete("pve1", 150, true).await.unwrap();
    assert_eq!(pve.lxc_status("pve1", 150).await.unwrap().lock.as_deref(), Some("destroyed"));
    let update = LxcConfigUpdate { onboot: Some(true), ..Default::default() };
    let refused = pve.lxc_update_config("pve1", 150, &update).await;
    assert!(
        matches!(&refused, Err(PveError::Locked { lock, message }) if lock == "destroyed" && message == "CT is locked (destroyed)"),
        "{refused:?}"
    );
    pve.wait_task(&upid, Default::default()).await.unwrap();
    assert!(matches!(pve.lxc_status("pve1", 150).await, Err(PveError::NotFound(_))));
}

#[tokio::test]
async fn cluster_resources_list_tags_read_live_from_the_config() {
    let sim = sim().await;
    let pve = token_client(&sim);
    let upid = pve.lxc_clone("pve1", 9000, &CloneRequest { newid: 150, ..Default::default() }).await.unwrap();
    pve.wait_task(&upid, Default::default()).await.unwrap();
    let update = LxcConfigUpdate { tags: Some("Web,proxdesk web".into()), ..Default::default() };
    pve.lxc_update_config("pve1", 150, &update).await.unwrap();
    let all = pve.cluster_resources(Some("vm")).await.unwrap();
    let g = all.iter().find(|r| r.vmid == Some(150)).unwrap();
    assert_eq!(g.tags.as_deref(), Some("proxdesk;web"), "normalised as stored");
    assert!(all.iter().find(|r| r.vmid == Some(9001)).unwrap().tags.is_none());
}
