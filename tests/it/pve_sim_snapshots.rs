//! The simulator's snapshot endpoints on the wire (pve-qemu-day2.md §6), LXC and QEMU: names, the
//! flat list with `current` last, rollback of config and power, delete with re-parenting, locks held
//! by running snapshot tasks, and storages that cannot snapshot.

use proxdesk::integrations::pve::sim::{Endpoint, Fault, StorageDef};
use serde_json::json;

use crate::pve_sim_qemu::Pve;

const CT: &str = "/nodes/pve1/lxc/300";
const VM: &str = "/nodes/pve1/qemu/310";

async fn with_guests() -> Pve {
    let pve = Pve::start().await;
    let (exit, log) = pve.task("POST", "/nodes/pve1/lxc/9000/clone", &[("newid", "300"), ("hostname", "ct300")]).await;
    assert_eq!(exit, "OK", "{log:?}");
    pve.clone_template(310, "vm310").await;
    pve
}

fn names(list: &serde_json::Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn names_are_checked_before_any_task_with_pve_texts() {
    let pve = with_guests().await;
    let (s, t) = pve.err("POST", &format!("{CT}/snapshot"), &[("snapname", "1st")]).await;
    assert_eq!((s, t), (400, json!({"snapname": "invalid format - invalid configuration ID '1st'"}).to_string()));
    let (s, t) = pve.err("POST", &format!("{CT}/snapshot"), &[("snapname", "current")]).await;
    assert_eq!((s, t.as_str()), (500, "unable to use snapshot name 'current' (reserved name)"));
    let (s, t) = pve.err("POST", &format!("{VM}/snapshot"), &[("snapname", "Pending")]).await;
    assert_eq!((s, t.as_str()), (500, "unable to use snapshot name 'Pending' (reserved name)"));
    let (s, _) = pve.err("POST", &format!("{CT}/snapshot"), &[("snapname", "ok"), ("vmstate", "1")]).await;
    assert_eq!(s, 400, "vmstate is QEMU's only");
    let (s, t) = pve.err("POST", "/nodes/pve1/qemu/399/snapshot", &[("snapname", "a1")]).await;
    assert_eq!((s, t.as_str()), (500, "Configuration file 'nodes/pve1/qemu-server/399.conf' does not exist"));
}

#[tokio::test]
async fn a_tree_is_listed_flat_with_current_last_and_delete_reparents() {
    let pve = with_guests().await;
    for (name, desc) in [("base", "first"), ("mid", ""), ("top", "")] {
        let (exit, log) =
            pve.task("POST", &format!("{CT}/snapshot"), &[("snapname", name), ("description", desc)]).await;
        assert_eq!(exit, "OK", "{log:?}");
    }
    let (exit, _) = pve.task("POST", &format!("{CT}/snapshot"), &[("snapname", "base")]).await;
    assert_eq!(exit, "snapshot name 'base' already used");
    let list = pve.ok("GET", &format!("{CT}/snapshot"), &[]).await;
    assert_eq!(names(&list).last().unwrap(), "current");
    let by = |n: &str| list.as_array().unwrap().iter().find(|s| s["name"] == n).unwrap().clone();
    assert_eq!(by("base")["description"], "first");
    assert!(by("base").get("parent").is_none() && by("base").get("vmstate").is_none(), "LXC has no vmstate");
    assert_eq!((by("mid")["parent"].clone(), by("current")["parent"].clone()), (json!("base"), json!("top")));
    assert_eq!(by("current")["description"], "You are here!");
    assert_eq!(pve.task("DELETE", &format!("{CT}/snapshot/mid"), &[]).await.0, "OK");
    let list = pve.ok("GET", &format!("{CT}/snapshot"), &[]).await;
    let top = list.as_array().unwrap().iter().find(|s| s["name"] == "top").unwrap();
    assert_eq!(top["parent"], "base", "re-parented: {list}");
    assert_eq!(pve.task("DELETE", &format!("{CT}/snapshot/mid"), &[]).await.0, "snapshot 'mid' does not exist");
    let section = pve.ok("GET", &format!("{CT}/snapshot/base/config"), &[]).await;
    assert_eq!((section["hostname"].clone(), section["description"].clone()), (json!("ct300"), json!("first")));
}

#[tokio::test]
async fn rollback_stops_the_guest_and_restores_its_config() {
    let pve = with_guests().await;
    assert_eq!(pve.task("POST", &format!("{VM}/snapshot"), &[("snapname", "clean"), ("vmstate", "1")]).await.0, "OK");
    let list = pve.ok("GET", &format!("{VM}/snapshot"), &[]).await;
    assert_eq!(list[0]["vmstate"], 0, "a stopped VM saves no RAM");
    pve.ok("PUT", &format!("{VM}/config"), &[("memory", "4096")]).await;
    assert_eq!(pve.task("POST", &format!("{VM}/status/start"), &[]).await.0, "OK");
    let (exit, _) = pve.task("POST", &format!("{VM}/snapshot/clean/rollback"), &[]).await;
    assert_eq!(exit, "OK");
    let status = pve.ok("GET", &format!("{VM}/status/current"), &[]).await;
    assert_eq!(status["status"], "stopped", "hard-stopped, not restarted");
    assert_eq!(pve.config("pve1", 310).await["memory"], "1024");
    // With RAM: taken from a running VM, which runs again after the rollback.
    assert_eq!(pve.task("POST", &format!("{VM}/status/start"), &[]).await.0, "OK");
    let (exit, log) = pve.task("POST", &format!("{VM}/snapshot"), &[("snapname", "live"), ("vmstate", "1")]).await;
    assert_eq!(exit, "OK");
    assert!(log.iter().any(|l| l.contains("snapshotting 'drive-scsi0'")), "{log:?}");
    assert_eq!(pve.task("POST", &format!("{VM}/snapshot/live/rollback"), &[]).await.0, "OK");
    assert_eq!(pve.ok("GET", &format!("{VM}/status/current"), &[]).await["status"], "running");
    let (exit, _) = pve.task("POST", &format!("{CT}/snapshot/none/rollback"), &[("start", "1")]).await;
    assert_eq!(exit, "snapshot 'none' does not exist");
}

#[tokio::test]
async fn a_running_snapshot_task_holds_the_lock_against_everything_else() {
    let pve = with_guests().await;
    pve.sim.faults().inject_times(Endpoint::LxcSnapshotCreate, Fault::TaskHang, 1);
    let slow = pve.ok("POST", &format!("{CT}/snapshot"), &[("snapname", "slow")]).await;
    let mut locked = false;
    for _ in 0..100 {
        if pve.ok("GET", &format!("{CT}/config"), &[]).await["lock"] == "snapshot" {
            locked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(locked, "the task took the lock");
    let list = pve.ok("GET", &format!("{CT}/snapshot"), &[]).await;
    assert_eq!(list[0]["snapstate"], "prepare");
    let (exit, _) = pve.task("POST", &format!("{CT}/snapshot"), &[("snapname", "other")]).await;
    assert_eq!(exit, "CT is locked (snapshot)");
    assert_eq!(pve.task("POST", &format!("{CT}/status/start"), &[]).await.0, "CT is locked (snapshot)");
    // Stopping the task runs its error path: the partial snapshot and the lock go.
    pve.ok("DELETE", &format!("/nodes/pve1/tasks/{}", slow.as_str().unwrap()), &[]).await;
    let list = pve.ok("GET", &format!("{CT}/snapshot"), &[]).await;
    assert_eq!(names(&list), vec!["current"]);
    assert!(pve.ok("GET", &format!("{CT}/config"), &[]).await.get("lock").is_none());
}

#[tokio::test]
async fn raw_images_on_a_directory_storage_cannot_snapshot() {
    let pve = with_guests().await;
    pve.sim.with_state(|s| {
        s.storages.push(StorageDef {
            id: "plain".into(),
            kind: "dir".into(),
            content: "images,rootdir".into(),
            total: 1 << 40,
            used: 0,
        });
        let g = s.guests.get_mut(&300).unwrap();
        g.config.insert("mp0".into(), "plain:300/vm-300-disk-1.raw,mp=/data,size=1G".into());
    });
    let (exit, _) = pve.task("POST", &format!("{CT}/snapshot"), &[("snapname", "nope")]).await;
    assert_eq!(exit, "snapshot feature is not available");
    assert!(pve.ok("GET", &format!("{CT}/config"), &[]).await.get("lock").is_none(), "refused before locking");
}
