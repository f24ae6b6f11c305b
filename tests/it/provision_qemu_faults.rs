//! QEMU provisioning under injected Proxmox VE faults: a step PVE keeps refusing ends in a clean
//! `failed` (no VM left, the static address free again, the quota released); a write PVE carried out
//! but whose answer was lost is recognised from PVE's state, and exactly one VM results.

use std::time::Duration;

use proxdesk::integrations::pve::sim::{Endpoint, Fault, Guest, SimConfig};
use serde_json::Value;

use crate::provision_faults::{Desk, actions, desk_with, reason};
use crate::provision_qemu::{leases, make_cloudinit, make_iso};

const POOL: (&str, &str) = ("192.0.2.100-192.0.2.120/24", "192.0.2.1");

/// Which kind of QEMU entry the desk's catalog entry is.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Cloud-init, static addresses from [`POOL`].
    CloudInit,
    /// From the Debian ISO, on pve1.
    Iso,
}

async fn qemu_desk(kind: Kind, attempts: u32) -> Desk {
    qemu_desk_with(kind, SimConfig::for_tests(), attempts, |_| {}).await
}

async fn qemu_desk_with(
    kind: Kind,
    sim: SimConfig,
    attempts: u32,
    configure: impl FnOnce(&mut proxdesk::config::RawSettings),
) -> Desk {
    let d = desk_with(sim, attempts, configure).await;
    match kind {
        Kind::CloudInit => make_cloudinit(&d.app.db, d.template, Some(POOL), "").await,
        Kind::Iso => make_iso(&d.app.db, d.template, "pve1").await,
    }
    d
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

/// `ready`, exactly one new VM (the request's, running, unlocked), no retry needed.
fn assert_recovered_to_one_vm(d: &Desk, id: i64, done: &Value) -> Guest {
    assert_eq!(done["status"], "ready", "{done}");
    let vms: Vec<u64> = d.new_guests().iter().map(|g| g.vmid).collect();
    assert_eq!(vms.len(), 1, "exactly one VM, no orphan: {vms:?}");
    let g = d.guest_of(id);
    assert!(g.running && g.lock().is_none(), "running and unlocked");
    assert!(
        !actions(done).contains(&"provision.retrying".to_owned()),
        "recovered within the attempt: {:?}",
        actions(done)
    );
    g
}

/// `failed` naming `needle`, no VM left, no address held, the quota released.
async fn assert_failed_cleanly(d: &Desk, done: &Value, needle: &str) {
    assert_eq!(done["status"], "failed", "{done}");
    assert!(reason(done).contains(needle), "reason {:?} should name {needle:?}", reason(done));
    assert!(!reason(done).contains("clean-up failed"), "{}", reason(done));
    let left: Vec<u64> = d.new_guests().iter().map(|g| g.vmid).collect();
    assert!(left.is_empty(), "no orphan VM, found {left:?}");
    assert!(leases(&d.app.db).await.is_empty(), "the static address is free again");
    assert_eq!(d.used_machines().await, 0, "a failed request holds no quota");
}

/// PVE refuses `endpoint` at every attempt with `fault`: the request fails with the reason, each
/// attempt having sent it once.
async fn refused_at(kind: Kind, endpoint: Endpoint, fault: Fault, needle: &str) -> Value {
    let d = qemu_desk(kind, 2).await;
    d.sim.faults().inject(endpoint, fault);
    let id = d.approve_vm("lab-1").await;
    let done = d.settle(id).await;
    assert_failed_cleanly(&d, &done, needle).await;
    assert_eq!(d.sim.calls().get(endpoint), 2, "{endpoint:?} once per attempt");
    if matches!(kind, Kind::CloudInit) {
        assert!(actions(&done).contains(&"address.released".to_owned()), "{:?}", actions(&done));
    }
    done
}

#[tokio::test]
async fn a_clone_task_that_always_fails_ends_failed_with_no_vm_and_the_address_free() {
    refused_at(
        Kind::CloudInit,
        Endpoint::QemuClone,
        Fault::TaskError("no space left on device".into()),
        "clone failed: no space left on device",
    )
    .await;
}

#[tokio::test]
async fn a_config_pve_always_refuses_ends_failed_with_the_clone_removed() {
    let fault = Fault::Status { code: 500, message: "unable to apply cloud-init settings".into() };
    let done = refused_at(Kind::CloudInit, Endpoint::QemuConfigPut, fault, "unable to apply cloud-init settings").await;
    assert!(actions(&done).contains(&"provision.rolled_back".to_owned()), "the clones were deleted");
}

#[tokio::test]
async fn a_resize_task_that_always_fails_ends_failed_with_the_clone_removed() {
    let fault = Fault::TaskError("storage 'local-lvm' has not enough free space".into());
    refused_at(Kind::CloudInit, Endpoint::QemuResize, fault, "not enough free space").await;
}

#[tokio::test]
async fn a_start_task_that_always_fails_ends_failed_with_the_vm_removed() {
    refused_at(
        Kind::CloudInit,
        Endpoint::QemuStart,
        Fault::TaskError("bridge 'vmbr0' does not exist".into()),
        "bridge 'vmbr0' does not exist",
    )
    .await;
}

#[tokio::test]
async fn a_create_task_that_always_fails_ends_failed_with_no_vm() {
    let needle = "- no space left on device";
    let done =
        refused_at(Kind::Iso, Endpoint::QemuCreate, Fault::TaskError("no space left on device".into()), needle).await;
    assert!(reason(&done).contains("unable to create VM"), "{}", reason(&done));
}

#[tokio::test]
async fn an_iso_vm_whose_start_always_fails_is_deleted_with_its_disks() {
    let done = refused_at(
        Kind::Iso,
        Endpoint::QemuStart,
        Fault::TaskError("bridge 'vmbr1' does not exist".into()),
        "bridge 'vmbr1' does not exist",
    )
    .await;
    assert!(actions(&done).contains(&"provision.rolled_back".to_owned()), "{:?}", actions(&done));
}

/// A write PVE carried out whose connection dropped before the answer: PVE's state decides, the write
/// is not sent twice, and one VM results.
async fn lost_answer_is_recognised(kind: Kind, endpoint: Endpoint, step: &str, path: &str) -> (Desk, i64, Guest) {
    let d = qemu_desk(kind, 3).await;
    d.sim.faults().inject_times(endpoint, Fault::AppliedThenDrop, 1);
    let id = d.approve_vm("lab-1").await;
    let done = d.settle(id).await;
    let g = assert_recovered_to_one_vm(&d, id, &done);
    assert_eq!(recovered(&done, step), [path], "{:?}", actions(&done));
    assert_eq!(d.sim.calls().get(endpoint), 1, "{endpoint:?} was not sent again");
    (d, id, g)
}

#[tokio::test]
async fn a_clone_whose_answer_is_lost_is_adopted_not_cloned_twice() {
    lost_answer_is_recognised(Kind::CloudInit, Endpoint::QemuClone, "clone", "adopted").await;
}

#[tokio::test]
async fn a_config_whose_answer_is_lost_is_recognised_and_the_guest_gets_the_owners_password() {
    let (d, id, g) = lost_answer_is_recognised(Kind::CloudInit, Endpoint::QemuConfigPut, "config", "applied").await;
    let password = d.machine_of(id).await["password"].as_str().unwrap().to_owned();
    assert!(g.cloudinit.unwrap().password_matches(&password), "the password in the checkpoint is the one PVE got");
}

#[tokio::test]
async fn a_resize_whose_answer_is_lost_is_decided_by_the_disk_size() {
    let (_, _, g) = lost_answer_is_recognised(Kind::CloudInit, Endpoint::QemuResize, "resize", "applied").await;
    assert!(g.config["scsi0"].ends_with("size=16G"), "{}", g.config["scsi0"]);
}

#[tokio::test]
async fn a_start_whose_answer_is_lost_is_decided_by_the_status() {
    lost_answer_is_recognised(Kind::CloudInit, Endpoint::QemuStart, "start", "applied").await;
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_adopted_not_created_twice() {
    lost_answer_is_recognised(Kind::Iso, Endpoint::QemuCreate, "create", "adopted").await;
}

#[tokio::test]
async fn an_iso_start_whose_answer_is_lost_is_decided_by_the_status() {
    lost_answer_is_recognised(Kind::Iso, Endpoint::QemuStart, "start", "applied").await;
}

/// Provisioning fails at the start and the rollback's delete loses its answer: the VM's absence
/// decides; nothing is left and the address is free.
#[tokio::test]
async fn a_delete_whose_answer_is_lost_during_rollback_leaves_no_vm() {
    let d = qemu_desk(Kind::CloudInit, 1).await;
    d.sim.faults().inject(Endpoint::QemuStart, Fault::TaskError("bridge 'vmbr0' does not exist".into()));
    d.sim.faults().inject_times(Endpoint::QemuDelete, Fault::AppliedThenDrop, 1);
    let id = d.approve_vm("lab-1").await;
    let done = d.settle(id).await;
    assert_failed_cleanly(&d, &done, "bridge 'vmbr0' does not exist").await;
    assert_eq!(recovered(&done, "delete"), ["gone"], "{:?}", actions(&done));
    assert_eq!(d.sim.calls().get(Endpoint::QemuDelete), 1, "deleted once");
}

/// A clone hangs and its answer is lost while another request's clone of the same template runs: the
/// hung one is found by its task log (`… with ID <vmid>`), stopped past the deadline (PVE removes its
/// target) and cloned afresh; the other clone is left alone.
#[tokio::test]
async fn a_hung_clone_whose_answer_is_lost_is_told_apart_from_a_parallel_one_and_stopped() {
    let sim = SimConfig { clone_duration: Duration::from_millis(600), ..SimConfig::for_tests() };
    let d = qemu_desk_with(Kind::CloudInit, sim, 2, |raw| raw.set("provision_task_timeout_secs", "2")).await;
    d.sim.faults().inject_times(Endpoint::QemuClone, Fault::TaskHang, 1);
    d.sim.faults().inject_times(
        Endpoint::QemuClone,
        Fault::AppliedThenStatus { code: 596, message: "Broken pipe".into() },
        1,
    );
    let (a, b) = tokio::join!(d.approve_vm("lab-1"), d.approve_vm("lab-2"));
    let (da, db) = tokio::join!(d.settle(a), d.settle(b));
    assert_eq!((da["status"].as_str(), db["status"].as_str()), (Some("ready"), Some("ready")), "{da}\n{db}");
    let mut paths = recovered(&da, "clone");
    paths.extend(recovered(&db, "clone"));
    assert_eq!(paths, ["removed"], "one lost clone, stopped and removed");
    assert_eq!(d.sim.calls().get(Endpoint::TaskStop), 1, "only the hung clone was stopped");
    assert_eq!(d.sim.calls().get(Endpoint::QemuClone), 3, "the hung one was cloned again, the other once");
    assert_eq!(d.new_guests().len(), 2);
    assert!(d.sim.state().flocks.is_empty(), "no flock left on the template");
}
