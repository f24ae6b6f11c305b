//! Consoles of QEMU machines through proxdesk's relay and the PVE simulator: the screen through QEMU's
//! `vncproxy` (its one-time password used by proxdesk, never the browser) to a real TigerVNC server, for
//! a cloud-init VM and for an ISO VM being installed; the serial terminal (termproxy `serial0`) to a
//! real shell, offered only when the VM has that port.

use proxdesk::http::i18n::t;
use proxdesk::integrations::pve::sim::{Endpoint, GuestKind, SimConfig};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::Value;

use crate::console_fixtures::*;
use crate::console_relay::rfb_session;
use crate::qemu_lifecycle::{People, VmOf};

async fn vnc_of(of: VmOf) {
    let Some(xvnc) = Xvnc::start() else { return };
    let sim = SimConfig {
        vnc_backend: Some(([127, 0, 0, 1], xvnc.port).into()),
        vnc_password_file: Some(xvnc.password_file.clone()),
        ..SimConfig::for_tests()
    };
    let (app, sim) = app_on(sim, |_, _| {}).await;
    let people = People::on(&app).await;
    let vm = people.vm(&app, of, "screen").await;
    let path = format!("/machines/{}/console/ws", vm.machine);
    let mut ws = connect(&app, &path, Some(&people.alice_session), Some(&app.address)).await.unwrap();
    let (w, h, name) = rfb_session(&mut ws).await;
    assert_eq!((w, h, name.as_str()), (640, 480, "fixture"), "Xvnc's ServerInit came through");
    // Proxdesk answered VNC auth with the password the simulator wrote into Xvnc's password file for
    // this `vncproxy` only: the QEMU endpoint was used, never the container one.
    assert_eq!((sim.calls().get(Endpoint::QemuVncProxy), sim.calls().get(Endpoint::LxcVncProxy)), (1, 0));
    ws.close(None).await.unwrap();
    let rows = entities::audit_entry::Entity::find().all(&app.db).await.unwrap();
    let opened = rows.iter().find(|r| r.action == "console.opened").expect("console.opened");
    let details: Value = serde_json::from_str(&opened.details).unwrap();
    assert_eq!((details["kind"].as_str(), details["vmid"].as_u64()), (Some("vnc"), Some(vm.vmid)));
}

#[tokio::test]
async fn a_cloud_init_vms_screen_reaches_a_real_vnc_server() {
    vnc_of(VmOf::CloudInit).await;
}

#[tokio::test]
async fn an_iso_vms_screen_reaches_a_real_vnc_server_for_the_install() {
    vnc_of(VmOf::Iso).await;
}

#[tokio::test]
async fn a_cloud_init_vms_serial_terminal_reaches_a_real_shell() {
    let Some(shell) = Shell::start() else { return };
    let sim = SimConfig { term_backend: Some(([127, 0, 0, 1], shell.port).into()), ..SimConfig::for_tests() };
    let (app, sim) = app_on(sim, |_, _| {}).await;
    let people = People::on(&app).await;
    let vm = people.vm(&app, VmOf::CloudInit, "serial").await;
    assert_eq!(sim.state().guests[&vm.vmid].config.get("serial0").map(String::as_str), Some("socket"));
    let path = format!("/machines/{}/terminal/ws", vm.machine);
    let mut ws = connect(&app, &path, Some(&people.alice_session), Some(&app.address)).await.unwrap();
    shell_echoes(&mut ws, "serial").await;
    // termproxy with `serial=serial0`: the simulator refuses a QEMU terminal on a port the VM lacks.
    assert_eq!((sim.calls().get(Endpoint::QemuTermProxy), sim.calls().get(Endpoint::LxcTermProxy)), (1, 0));
}

#[tokio::test]
async fn a_vm_without_a_serial_port_is_offered_no_terminal_until_it_has_one() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let people = People::on(&app).await;
    let vm = people.vm(&app, VmOf::Iso, "no-serial").await;
    assert!(!sim.state().guests[&vm.vmid].config.contains_key("serial0"));
    let b = app.logged_in("alice", "alice-password-123").await;
    let terminal = format!("/machines/{}/terminal", vm.machine);
    let detail = format!("/requests/{}", vm.request);
    assert!(!b.get(&detail).await.text().await.unwrap().contains(&terminal), "no terminal on the machine card");
    let r = b.get(&terminal).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains(&t("en", "console.close.no_terminal")), "the terminal page says why");
    assert!(!html.contains("terminal.js") && !html.contains("data-ws="), "and opens nothing");
    let ws = connect(&app, &format!("{terminal}/ws"), Some(&people.alice_session), Some(&app.address)).await;
    let (code, reason) = refused_with(ws).await;
    assert_eq!((code, reason.as_str()), (4003, "no_terminal"));
    assert_eq!(sim.calls().get(Endpoint::QemuTermProxy), 0, "PVE was not asked for a terminal");

    // An admin adds a serial port in PVE: the next look at the config offers the terminal.
    sim.with_state(|s| {
        s.guest_mut("pve1", GuestKind::Qemu, vm.vmid).unwrap().config.insert("serial0".into(), "socket".into());
    });
    assert!(b.get(&detail).await.text().await.unwrap().contains(&terminal), "offered once the port exists");
    let html = b.get(&terminal).await.text().await.unwrap();
    assert!(html.contains(&format!("data-ws=\"{terminal}/ws\"")) || html.contains("npm ci"), "{html}");
}

#[tokio::test]
async fn a_stopped_vms_console_is_refused_before_pve_is_asked() {
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let people = People::on(&app).await;
    let vm = people.vm(&app, VmOf::CloudInit, "asleep").await;
    sim.with_state(|s| s.guest_mut("pve1", GuestKind::Qemu, vm.vmid).unwrap().running = false);
    for kind in ["console", "terminal"] {
        let path = format!("/machines/{}/{kind}/ws", vm.machine);
        let (code, _) = refused_with(connect(&app, &path, Some(&people.alice_session), Some(&app.address)).await).await;
        assert_eq!(code, 4000, "{kind}: machine not running");
    }
    assert_eq!(sim.calls().get(Endpoint::QemuVncProxy) + sim.calls().get(Endpoint::QemuTermProxy), 0);
    let mallory = other_session(&app, "mallory").await;
    let path = format!("/machines/{}/console/ws", vm.machine);
    assert_eq!(refused_status(connect(&app, &path, Some(&mallory), Some(&app.address)).await), 404);
}
