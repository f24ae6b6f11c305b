//! A machine's VMID reused by another guest (an admin deleted or restored guests out of band): every
//! action checks the guest's marker first, refuses, leaves the other guest alone and marks the machine
//! lost; the owner and admins see why; an admin releases it or re-adopts its container elsewhere.

use proxdesk::integrations::pve::sim::{Endpoint, Fault, Guest, SimConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::console_fixtures::{connect, refused_with};
use crate::provision_faults::{Desk, actions, desk};

/// A ready machine of alice's: (request id, machine id, VMID).
async fn ready_machine(d: &Desk, hostname: &str) -> (i64, i64, u64) {
    let id = d.approve(hostname).await;
    assert_eq!(d.settle(id).await["status"], "ready");
    let m = proxdesk::services::machines::of_request(&d.app.db, id).await.unwrap().unwrap();
    (id, m.id, m.vmid.unwrap() as u64)
}

/// The machine's container is deleted out of band and bob's container is restored at its VMID
/// (running, with its own notes and tags). Answers bob's container as put there.
fn reuse_vmid(d: &Desk, vmid: u64) -> Guest {
    d.sim.with_state(|s| {
        let mut other = s.guests[&vmid].clone();
        other.config.insert("hostname".into(), "bob-build".into());
        other.config.insert("description".into(), "Owner: bob\nPurpose: build server".into());
        other.config.insert("tags".into(), "build".into());
        other.running = true;
        s.guests.insert(vmid, other.clone());
        other
    })
}

/// Bob's container is still there as it was, and still running.
fn assert_untouched(d: &Desk, other: &Guest) {
    let state = d.sim.state();
    let now = state.guests.get(&other.vmid).expect("the other guest is still there");
    assert_eq!(now.config, other.config, "its config is untouched");
    assert!(now.running, "it still runs");
}

async fn request(d: &Desk, id: i64) -> Value {
    d.app.get(&d.alice, &format!("/api/v1/requests/{id}")).await.json().await.unwrap()
}

/// A 409 `machine-lost` problem naming the VMID.
async fn assert_machine_lost(r: reqwest::Response, vmid: u64) {
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["type"], "/problems/machine-lost", "{p}");
    assert!(p["detail"].as_str().unwrap().contains(&format!("CT {vmid} on pve1")), "{p}");
}

#[tokio::test]
async fn a_vmid_reused_by_another_guest_makes_power_console_and_delete_refuse_and_the_machine_lost() {
    let d = desk(SimConfig::for_tests(), 2).await;
    let (r1, m1, v1) = ready_machine(&d, "lab-1").await;
    let (r2, m2, v2) = ready_machine(&d, "lab-2").await;
    let (r3, m3, v3) = ready_machine(&d, "lab-3").await;
    let others = [reuse_vmid(&d, v1), reuse_vmid(&d, v2), reuse_vmid(&d, v3)];
    d.sim.calls().reset();

    let r = d.app.post(&d.alice, &format!("/api/v1/machines/{m1}/shutdown"), json!({})).await;
    assert_machine_lost(r, v1).await;

    let r = d.app.post(&d.alice, &format!("/api/v1/machines/{m2}/console"), json!({})).await;
    let url: Value = r.json().await.unwrap();
    let ws_base = d.app.address.replacen("http://", "ws://", 1);
    let path = url["url"].as_str().unwrap()[ws_base.len()..].to_owned();
    let (code, _) = refused_with(connect(&d.app, &path, None, None).await).await;
    assert_eq!(code, 4001, "console refused: the machine is lost");

    let r = d.app.api.delete(d.app.url(&format!("/api/v1/machines/{m3}"))).bearer_auth(&d.alice).send().await;
    assert_machine_lost(r.unwrap(), v3).await;

    for (id, vmid) in [(r1, v1), (r2, v2), (r3, v3)] {
        let req = request(&d, id).await;
        assert_eq!(req["status"], "lost", "{req}");
        assert!(req["reason"].as_str().unwrap().contains(&format!("CT {vmid} on pve1")), "{req}");
        assert!(actions(&req).contains(&"request.lost".to_owned()));
    }
    for e in [Endpoint::LxcShutdown, Endpoint::LxcStop, Endpoint::LxcDelete, Endpoint::LxcVncProxy] {
        assert_eq!(d.sim.calls().get(e), 0, "{e:?} was never sent");
    }
    for other in &others {
        assert_untouched(&d, other);
    }
    // Once lost, every action is refused at once, PVE not even asked.
    let reads = d.sim.calls().get(Endpoint::LxcConfigGet);
    let r = d.app.post(&d.alice, &format!("/api/v1/machines/{m1}/start"), json!({})).await;
    assert_machine_lost(r, v1).await;
    assert_eq!(d.sim.calls().get(Endpoint::LxcConfigGet), reads);
    assert_eq!(d.used_machines().await, 3, "lost machines still hold the quota");
}

/// PVE could not be asked when the deletion was requested: the destroy job checks before it stops or
/// deletes anything, leaves the other guest alone and marks the machine lost.
#[tokio::test]
async fn the_destroy_job_leaves_another_guest_at_the_vmid_alone_and_marks_the_machine_lost() {
    let d = desk(SimConfig::for_tests(), 2).await;
    let (id, mid, vmid) = ready_machine(&d, "lab-1").await;
    let other = reuse_vmid(&d, vmid);
    let refused = Fault::Status { code: 500, message: "unable to read config".into() };
    d.sim.faults().inject_times(Endpoint::LxcConfigGet, refused, 1);
    let r = d.app.api.delete(d.app.url(&format!("/api/v1/machines/{mid}"))).bearer_auth(&d.alice).send().await;
    assert_eq!(r.unwrap().status(), StatusCode::ACCEPTED);
    let done = d.settle(id).await;
    assert_eq!(done["status"], "lost", "{done}");
    let lost = done["timeline"].as_array().unwrap().iter().find(|e| e["action"] == "request.lost").unwrap();
    assert_eq!(lost["details"]["from"], "deleting");
    assert_eq!(lost["details"]["during"], "delete");
    assert_eq!(d.sim.calls().get(Endpoint::LxcStop), 0);
    assert_eq!(d.sim.calls().get(Endpoint::LxcDelete), 0);
    assert_untouched(&d, &other);
}

#[tokio::test]
async fn a_machine_whose_container_is_already_gone_is_simply_deleted() {
    let d = desk(SimConfig::for_tests(), 2).await;
    let (id, mid, vmid) = ready_machine(&d, "lab-1").await;
    d.sim.with_state(|s| s.guests.remove(&vmid));
    let r = d.app.api.delete(d.app.url(&format!("/api/v1/machines/{mid}"))).bearer_auth(&d.alice).send().await;
    assert_eq!(r.unwrap().status(), StatusCode::ACCEPTED);
    assert_eq!(d.settle(id).await["status"], "deleted");
    assert_eq!(d.sim.calls().get(Endpoint::LxcDelete), 0);
}

#[tokio::test]
async fn the_owner_and_the_admin_see_why_the_machine_is_lost() {
    let d = desk(SimConfig::for_tests(), 2).await;
    let (id, mid, vmid) = ready_machine(&d, "lab-1").await;
    reuse_vmid(&d, vmid);
    let owner = d.app.logged_in("alice", "alice-password-123").await;
    let page = format!("/requests/{id}");
    let r = owner.post_form(&page, &format!("/machines/{mid}/action"), &[("action", "shutdown")]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "the refused action says why");
    let html = r.text().await.unwrap();
    assert!(html.contains("no longer carries this machine") && html.contains(&format!("CT {vmid} on pve1")), "{html}");

    let html = owner.get(&page).await.text().await.unwrap();
    assert!(html.contains("Machine lost") && html.contains("another guest has its VMID now"), "{html}");
    assert!(!html.contains("Shut down") && !html.contains("/release"), "no action on someone else's guest");
    let fr = owner.client.get(d.app.url(&page)).header("Accept-Language", "fr").send().await.unwrap();
    let fr = fr.text().await.unwrap();
    assert!(fr.contains("perdue") && fr.contains("ne porte plus la marque de cette machine"), "{fr}");

    let admin = d.app.logged_in("chief", "chief-password-123").await;
    let html = admin.get(&page).await.text().await.unwrap();
    assert!(
        html.contains("another guest has its VMID now") && html.contains(&format!("/admin/machines/{mid}/release"))
    );
    assert!(html.contains(&format!("/admin/machines/{mid}/readopt")), "{html}");

    let m: Value = d.app.get(&d.alice, &format!("/api/v1/machines/{mid}")).await.json().await.unwrap();
    assert_eq!(m["lost"]["reason"], "replaced", "{m}");
    assert!(m["lost"]["message"].as_str().unwrap().contains(&format!("CT {vmid} on pve1")));
    assert_eq!(m["state"], "unknown", "bob's container's state is not shown as this machine's");
    let r: Value = d.app.get(&d.admin, "/api/v1/requests?status=lost").await.json().await.unwrap();
    assert_eq!(r["items"][0]["id"], id);
}

#[tokio::test]
async fn an_admin_releases_a_lost_machine_without_touching_proxmox_ve() {
    let d = desk(SimConfig::for_tests(), 2).await;
    let (id, mid, vmid) = ready_machine(&d, "lab-1").await;
    let other = reuse_vmid(&d, vmid);
    let r = d.app.post(&d.alice, &format!("/api/v1/machines/{mid}/reboot"), json!({})).await;
    assert_machine_lost(r, vmid).await;
    let page = format!("/requests/{id}");
    let action = format!("/admin/machines/{mid}/release");

    let owner = d.app.logged_in("alice", "alice-password-123").await;
    assert_eq!(owner.post_form(&page, &action, &[]).await.status(), StatusCode::FORBIDDEN, "admins only");
    let admin = d.app.logged_in("chief", "chief-password-123").await;
    let r = admin.post_form(&page, &action, &[]).await;
    assert_eq!(r.status(), StatusCode::OK, "unconfirmed: the confirmation page");
    let asked = r.text().await.unwrap();
    assert!(asked.contains(r#"name="confirmed" value="yes""#), "{asked}");
    assert_eq!(request(&d, id).await["status"], "lost", "nothing done before confirmation");
    let r = admin.post_form(&page, &action, &[("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let done = request(&d, id).await;
    assert_eq!(done["status"], "deleted", "{done}");
    assert!(done["reason"].as_str().unwrap().contains(&format!("CT {vmid}")), "the reason is kept");
    let released = done["timeline"].as_array().unwrap().iter().find(|e| e["action"] == "request.released").unwrap();
    assert_eq!(released["actor"], "chief");
    let machines: Value = d.app.get(&d.alice, "/api/v1/machines").await.json().await.unwrap();
    assert!(machines["items"].as_array().unwrap().is_empty());
    assert_eq!(d.used_machines().await, 0, "the quota is released");
    assert_eq!(d.sim.calls().get(Endpoint::LxcDelete), 0, "nothing sent to PVE");
    assert_untouched(&d, &other);
}

/// The container was deleted out of band and later restored at another VMID: re-adoption finds none
/// while it is missing, then finds it by its tag and points the machine at it.
#[tokio::test]
async fn an_admin_readopts_a_container_restored_at_another_vmid() {
    let d = desk(SimConfig::for_tests(), 2).await;
    let (id, mid, vmid) = ready_machine(&d, "lab-1").await;
    let ours = d.sim.with_state(|s| s.guests.remove(&vmid)).unwrap();
    let r = d.app.post(&d.alice, &format!("/api/v1/machines/{mid}/shutdown"), json!({})).await;
    assert_machine_lost(r, vmid).await;
    let m: Value = d.app.get(&d.alice, &format!("/api/v1/machines/{mid}")).await.json().await.unwrap();
    assert_eq!(m["lost"]["reason"], "gone", "{m}");

    let admin = d.app.logged_in("chief", "chief-password-123").await;
    let page = format!("/requests/{id}");
    let r = admin.post_form(&page, &format!("/admin/machines/{mid}/readopt"), &[]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!("No guest in the cluster carries the tag proxdesk-request-{id}")), "{html}");
    assert_eq!(request(&d, id).await["status"], "lost", "it stays lost");

    let restored = 4242;
    d.sim.with_state(|s| s.guests.insert(restored, Guest { vmid: restored, ..ours }));
    let r = d.app.post(&d.admin, &format!("/api/v1/admin/machines/{mid}/readopt"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["vmid"], restored);
    assert!(m["lost"].is_null(), "{m}");
    let done = request(&d, id).await;
    assert_eq!(done["status"], "ready", "{done}");
    assert!(done["reason"].is_null());
    let acts = actions(&done);
    assert!(acts.contains(&"machine.readopt_failed".to_owned()) && acts.contains(&"request.readopted".to_owned()));

    let r = d.app.post(&d.alice, &format!("/api/v1/machines/{mid}/shutdown"), json!({})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "actions work again, on the restored container");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while d.sim.state().guests[&restored].running {
        assert!(std::time::Instant::now() < until, "the restored container did not shut down");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
