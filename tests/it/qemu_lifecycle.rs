//! What a QEMU machine does after it is ready, through the server and the PVE simulator: start,
//! shutdown and reboot with the same refusals as a container, deletion with its disks (and after a
//! lost answer), the lost-machine check, and detaching an ISO VM's installer.

use std::time::{Duration, Instant};

use proxdesk::domain::roles::Role;
use proxdesk::http::i18n::t;
use proxdesk::integrations::pve::sim::{Endpoint, Fault, SimConfig, SimHandle};
use proxdesk::secrets::Secret;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::console_fixtures::app_on;
use crate::helpers::TestApp;
use crate::provision::settle;
use crate::provision_qemu::{DEBIAN_ISO, KEY, choose, make_cloudinit, make_iso};

/// Which of the two QEMU kinds a machine is made as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmOf {
    /// A linked clone of VM template 9100 (cloud-init, serial0, guest agent), on DHCP.
    CloudInit,
    /// A blank VM on pve1 booting the Debian installer (no serial port, no OS yet).
    Iso,
}

/// An admin (`chief`) and alice on an app, with their API tokens and alice's browser session.
pub struct People {
    pub admin: String,
    pub alice: String,
    pub alice_session: String,
}

/// A ready VM of alice's.
#[derive(Debug, Clone, Copy)]
pub struct Vm {
    pub request: i64,
    pub machine: i64,
    pub vmid: u64,
}

impl People {
    pub async fn on(app: &TestApp) -> People {
        let (admin, _) = app.user("chief", Role::Admin).await;
        let (alice, password) = app.user("alice", Role::User).await;
        let session = proxdesk::services::auth::login(&app.db, "alice", &Secret::new(password), "t", 1).await.unwrap();
        People {
            admin: app.token(&admin).await,
            alice: app.token(&alice).await,
            alice_session: session.token.expose().clone(),
        }
    }

    /// Alice asks for `hostname` from a catalog entry of kind `of`, the admin approves, and the
    /// request gets ready through the product's own provisioning.
    pub async fn vm(&self, app: &TestApp, of: VmOf, hostname: &str) -> Vm {
        let entry = app.template_at(&format!("{hostname} entry"), "pve1", 9000, "none").await;
        match of {
            VmOf::CloudInit => make_cloudinit(&app.db, entry, None, "").await,
            VmOf::Iso => make_iso(&app.db, entry, "pve1").await,
        }
        let body = json!({"template_id": entry, "hostname": hostname, "cores": 1, "memory_mib": 1024,
            "disk_gib": 8, "purpose": "course work", "ssh_public_key": KEY});
        let r = app.post(&self.alice, "/api/v1/requests", body).await;
        assert_eq!(r.status(), StatusCode::OK);
        let request = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        if of == VmOf::Iso {
            choose(&app.db, request, Some("local-lvm"), Some("vmbr1"), Some(DEBIAN_ISO)).await;
        }
        let r = app.post(&self.admin, &format!("/api/v1/requests/{request}/approve"), json!({})).await;
        assert_eq!(r.status(), StatusCode::OK);
        let done = settle(app, &self.alice, request).await;
        assert_eq!(done["status"], "ready", "{done}");
        let m = proxdesk::services::machines::of_request(&app.db, request).await.unwrap().expect("a machine");
        Vm { request, machine: m.id, vmid: m.vmid.unwrap() as u64 }
    }
}

/// Waits until the simulator reports VM `vmid` running (or stopped) and unlocked.
pub async fn wait_power(sim: &SimHandle, vmid: u64, running: bool) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let g = sim.state().guests.get(&vmid).cloned().expect("the VM exists");
        if g.running == running && g.lock().is_none() {
            return;
        }
        assert!(Instant::now() < until, "VM {vmid} never became running={running}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn power(app: &TestApp, token: &str, machine: i64, action: &str) -> (StatusCode, Value) {
    let r = app.post(token, &format!("/api/v1/machines/{machine}/{action}"), json!({})).await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn audit_actions(app: &TestApp) -> Vec<(String, Value)> {
    let rows = entities::audit_entry::Entity::find().all(&app.db).await.unwrap();
    rows.into_iter().map(|r| (r.action, serde_json::from_str(&r.details).unwrap_or(Value::Null))).collect()
}

#[tokio::test]
async fn a_cloud_init_vm_starts_shuts_down_and_reboots_with_the_refusals_a_container_has() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let people = People::on(&app).await;
    let vm = people.vm(&app, VmOf::CloudInit, "lab-vm").await;
    let detail: Value = app.get(&people.alice, &format!("/api/v1/machines/{}", vm.machine)).await.json().await.unwrap();
    assert_eq!((detail["kind"].as_str(), detail["state"].as_str()), (Some("qemu"), Some("running")), "{detail}");
    assert!(detail["install_media"].is_null(), "{detail}");

    // QEMU would only fail inside the task (`VM <id> already running`): the same clear refusal as a container's.
    let (status, problem) = power(&app, &people.alice, vm.machine, "start").await;
    assert_eq!((status, problem["type"].as_str()), (StatusCode::CONFLICT, Some("/problems/machine-already-running")));

    let (status, _) = power(&app, &people.alice, vm.machine, "shutdown").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_power(&sim, vm.vmid, false).await;
    for action in ["shutdown", "reboot"] {
        let (status, problem) = power(&app, &people.alice, vm.machine, action).await;
        let refused = (status, problem["type"].as_str());
        assert_eq!(refused, (StatusCode::CONFLICT, Some("/problems/machine-not-running")), "{action}: {problem}");
    }
    // The page says it in the visitor's words, not PVE's `VM <id> not running`.
    let b = app.logged_in("alice", "alice-password-123").await;
    let page = format!("/requests/{}", vm.request);
    let r = b.post_form(&page, &format!("/machines/{}/action", vm.machine), &[("action", "reboot")]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let html = r.text().await.unwrap();
    assert!(html.contains(&t("en", "machine.refused.not_running")), "the refusal is explained");
    assert!(!html.contains(&format!("VM {} not running", vm.vmid)));

    let (status, _) = power(&app, &people.alice, vm.machine, "start").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_power(&sim, vm.vmid, true).await;
    let (status, _) = power(&app, &people.alice, vm.machine, "reboot").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_power(&sim, vm.vmid, true).await;
    let tasks: Vec<String> =
        sim.state().tasks.keys().filter(|u| u.contains(&format!(":{}:", vm.vmid))).cloned().collect();
    for kind in ["qmshutdown", "qmstart", "qmreboot"] {
        assert!(tasks.iter().any(|u| u.contains(&format!(":{kind}:"))), "{kind} ran: {tasks:?}");
    }
    let actions: Vec<String> = audit_actions(&app).await.into_iter().map(|(a, _)| a).collect();
    for a in ["machine.shutdown", "machine.start", "machine.reboot"] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }

    // The machine card names the kind; a cloud-init VM has its login and a terminal, and no installer.
    let html = b.get(&page).await.text().await.unwrap();
    assert!(html.contains(&format!(">{}</span>", t("en", "kind.qemu.short"))), "the kind sign says VM");
    assert!(html.contains(&format!("/machines/{}/terminal", vm.machine)), "template 9100 has serial0");
    assert!(!html.contains("detach_iso") && !html.contains(&t("en", "machine.qemu.installing")));
    let r = app.post(&people.alice, &format!("/api/v1/machines/{}/detach-iso", vm.machine), json!({})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "a cloud-init VM has no installer to detach");
}

#[tokio::test]
async fn deleting_a_running_vm_stops_it_and_destroys_it_with_its_disks() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let people = People::on(&app).await;
    let vm = people.vm(&app, VmOf::CloudInit, "doomed").await;
    assert!(sim.state().guests[&vm.vmid].running);
    let r =
        app.api.delete(app.url(&format!("/api/v1/machines/{}", vm.machine))).bearer_auth(&people.alice).send().await;
    assert_eq!(r.unwrap().status(), StatusCode::ACCEPTED);
    let done = settle(&app, &people.alice, vm.request).await;
    assert_eq!(done["status"], "deleted", "{done}");

    let state = sim.state();
    assert!(!state.guests.contains_key(&vm.vmid), "the VM is gone from the simulator");
    let task = |kind: &str| {
        state.tasks.iter().find(|(u, _)| u.contains(&format!(":{kind}:{}:", vm.vmid))).map(|(_, t)| t.clone())
    };
    assert!(task("qmstop").is_some(), "the VM was stopped first (PVE refuses to destroy a running VM)");
    let destroy = task("qmdestroy").expect("then destroyed");
    let log = destroy.log.join("\n");
    assert!(log.contains(&format!("vm-{}-disk-0", vm.vmid)), "its disk was removed: {log}");
    assert!(log.contains(&format!("vm-{}-cloudinit", vm.vmid)), "its cloud-init drive too: {log}");
    assert!(log.contains("purging VM"), "purged from jobs and HA: {log}");
    drop(state);
    let pve = app.state.pve.clone().unwrap();
    let left = pve.storage_content("pve1", "local-lvm", "images").await.unwrap();
    assert!(
        !left.iter().any(|v| v.volid.contains(&format!("-{}-", vm.vmid))),
        "no volume of VM {} is left: {:?}",
        vm.vmid,
        left.iter().map(|v| &v.volid).collect::<Vec<_>>()
    );
    let m = proxdesk::services::machines::of_request(&app.db, vm.request).await.unwrap().unwrap();
    assert!(m.deleted_at.is_some());
}

#[tokio::test]
async fn a_vm_delete_whose_answer_was_lost_is_recovered_from_pves_state() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let people = People::on(&app).await;
    let vm = people.vm(&app, VmOf::CloudInit, "flaky").await;
    // PVE deletes the VM, then pveproxy loses the answer on the way back.
    sim.faults().inject_times(
        Endpoint::QemuDelete,
        Fault::AppliedThenStatus { code: 596, message: "Broken pipe".into() },
        1,
    );
    let r =
        app.api.delete(app.url(&format!("/api/v1/machines/{}", vm.machine))).bearer_auth(&people.alice).send().await;
    assert_eq!(r.unwrap().status(), StatusCode::ACCEPTED);
    let done = settle(&app, &people.alice, vm.request).await;
    assert_eq!(done["status"], "deleted", "{done}");
    assert!(!sim.state().guests.contains_key(&vm.vmid));
    let recovered = done["timeline"].as_array().unwrap().iter().find(|e| e["action"] == "machine.recovered");
    let recovered = recovered.expect("the lost answer is noted");
    assert_eq!(recovered["details"]["vmid"], vm.vmid, "{recovered}");
    assert_eq!(sim.calls().get(Endpoint::QemuDelete), 1, "the delete was not sent twice");
}

#[tokio::test]
async fn a_vm_whose_marker_is_gone_is_marked_lost_and_left_alone() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let people = People::on(&app).await;
    let vm = people.vm(&app, VmOf::CloudInit, "moved").await;
    // Someone restored another VM over this VMID: neither notes nor tags carry the request's marker.
    sim.with_state(|s| {
        let g = s.guests.get_mut(&vm.vmid).unwrap();
        g.config.insert("description".into(), "restored from backup".into());
        g.config.insert("tags".into(), "restored".into());
    });
    let (status, problem) = power(&app, &people.alice, vm.machine, "shutdown").await;
    assert_eq!((status, problem["type"].as_str()), (StatusCode::CONFLICT, Some("/problems/machine-lost")));
    assert!(sim.state().guests[&vm.vmid].running, "the other VM was not shut down");
    let r: Value = app.get(&people.alice, &format!("/api/v1/requests/{}", vm.request)).await.json().await.unwrap();
    assert_eq!(r["status"], "lost");
}

#[tokio::test]
async fn the_owner_detaches_an_iso_vms_installer_and_a_stranger_cannot() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let people = People::on(&app).await;
    let vm = people.vm(&app, VmOf::Iso, "installer").await;
    let path = format!("/api/v1/machines/{}", vm.machine);
    let detail: Value = app.get(&people.alice, &path).await.json().await.unwrap();
    assert_eq!((detail["kind"].as_str(), detail["install_media"].as_str()), (Some("qemu"), Some(DEBIAN_ISO)));

    let b = app.logged_in("alice", "alice-password-123").await;
    let page = format!("/requests/{}", vm.request);
    let html = b.get(&page).await.text().await.unwrap();
    assert!(html.contains(&t("en", "machine.qemu.installing")), "running: install through the console");
    assert!(html.contains("debian-12.8.0-amd64-netinst.iso"), "the ISO is named");
    assert!(html.contains(&t("en", "machine.qemu.detach")), "the action is offered");
    assert!(html.contains(&format!("/machines/{}/console", vm.machine)), "the console is offered");
    assert!(!html.contains(&format!("/machines/{}/terminal", vm.machine)), "no serial port: no terminal");
    assert!(!html.contains(&t("en", "machine.no_address")), "no address block before an address is known");
    assert!(!html.contains(&t("en", "machine.show_password")), "no password");

    // A stranger learns nothing, by the API or by the page.
    let (mallory, mallory_password) = app.user("mallory", Role::User).await;
    let stranger = app.token(&mallory).await;
    let r = app.post(&stranger, &format!("{path}/detach-iso"), json!({})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let mb = app.logged_in("mallory", &mallory_password).await;
    let csrf = mb.csrf("/requests/new").await;
    let fields = [("action", "detach_iso"), ("confirmed", "yes"), ("csrf", csrf.as_str())]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let r = mb.post_raw(&format!("/machines/{}/action", vm.machine), &fields).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Without a CSRF token even the owner is refused.
    let no_csrf = [("action".to_owned(), "detach_iso".to_owned()), ("confirmed".to_owned(), "yes".to_owned())];
    let r = b.post_raw(&format!("/machines/{}/action", vm.machine), &no_csrf).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(sim.state().guests[&vm.vmid].config["ide2"].starts_with(DEBIAN_ISO), "nothing changed yet");

    // The owner is asked first (also without JavaScript), then it is done.
    let action = format!("/machines/{}/action", vm.machine);
    let r = b.post_form(&page, &action, &[("action", "detach_iso")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let question = proxdesk::http::i18n::message("en", "machine.qemu.detach_confirm", &[("name", "installer")]);
    assert!(r.text().await.unwrap().contains(&question), "a confirmation page");
    let r = b.post_form(&page, &action, &[("action", "detach_iso"), ("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], format!("/requests/{}?done=machine_detach_iso", vm.request));

    let g = sim.state().guests[&vm.vmid].clone();
    assert_eq!(g.config["ide2"], "none,media=cdrom", "the drive stays, empty");
    assert!(g.running && g.pending.is_empty(), "applied at once to the running VM, nothing pending");
    let detail: Value = app.get(&people.alice, &path).await.json().await.unwrap();
    assert!(detail["install_media"].is_null(), "{detail}");
    let html = b.get(&format!("{page}?done=machine_detach_iso")).await.text().await.unwrap();
    assert!(html.contains(&t("en", "flash.machine_detach_iso")));
    assert!(!html.contains(&t("en", "machine.qemu.detach")), "the action is gone");
    assert!(!html.contains(&t("en", "machine.qemu.installing")));

    let r = app.post(&people.alice, &format!("{path}/detach-iso"), json!({})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "nothing left to detach");
    let detached: Vec<Value> =
        audit_actions(&app).await.into_iter().filter(|(a, _)| a == "machine.iso_detached").map(|(_, d)| d).collect();
    assert_eq!(detached.len(), 1, "audited once: {detached:?}");
    assert_eq!((detached[0]["iso"].as_str(), detached[0]["vmid"].as_u64()), (Some(DEBIAN_ISO), Some(vm.vmid)));
}

#[tokio::test]
async fn an_admin_may_detach_another_users_installer_through_the_api() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let people = People::on(&app).await;
    let vm = people.vm(&app, VmOf::Iso, "class-box").await;
    let r = app.post(&people.admin, &format!("/api/v1/machines/{}/detach-iso", vm.machine), json!({})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(sim.state().guests[&vm.vmid].config["ide2"], "none,media=cdrom");
}
