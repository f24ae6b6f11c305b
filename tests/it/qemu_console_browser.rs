//! The consoles of QEMU machines in a real headless Chromium, from the request page: noVNC through
//! proxdesk's relay and the PVE simulator (QEMU `vncproxy`) to a real TigerVNC server, for a cloud-init
//! VM and for an ISO VM being installed, whose owner then detaches the installer through the page.

use std::time::Duration;

use proxdesk::http::i18n::t;
use proxdesk::integrations::pve::sim::{Endpoint, SimConfig};
use serde_json::json;

use crate::browser::Chromium;
use crate::console_browser::{CANVAS, assert_no_csp_violation, bar, open_watched, vendor_installed};
use crate::console_fixtures::*;
use crate::qemu_lifecycle::{People, VmOf};

/// Clicks the machine card's Console button and waits for noVNC to draw the VNC server's screen.
async fn console_from_the_card(browser: &mut Chromium, machine: i64) {
    browser.click_and_wait(&format!("#machine a[href='/machines/{machine}/console']")).await;
    let seen = browser.wait_for(CANVAS, Duration::from_secs(30)).await;
    assert!(seen.starts_with("ok 640x480"), "{seen}");
    eprintln!("noVNC canvas of a VM: {seen}");
    let html = browser.eval("document.documentElement.outerHTML").await;
    assert!(!html.as_str().unwrap().contains("PVEVNC"), "no PVE ticket or VNC password in the page");
    let b = bar(browser).await;
    assert_eq!(b["keys"], json!(["ctrl-alt-del", "esc", "tab", "ctrl-c"]), "{b}");
    assert_eq!((b["reconnectShown"].as_bool(), b["badge"].as_str()), (Some(false), Some("Connected")), "{b}");
}

/// Waits until the audit log has the console's `console.closed`.
async fn console_closed(app: &crate::helpers::TestApp) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    for _ in 0..200 {
        let closed = entities::audit_entry::Entity::find()
            .filter(entities::audit_entry::Column::Action.eq("console.closed"))
            .all(&app.db)
            .await
            .unwrap();
        if !closed.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let all: Vec<String> =
        entities::audit_entry::Entity::find().all(&app.db).await.unwrap().into_iter().map(|e| e.action).collect();
    panic!("leaving the console page did not end its session: {all:?}");
}

#[tokio::test]
async fn novnc_shows_a_cloud_init_vms_screen_opened_from_its_request_page() {
    if !vendor_installed() {
        return;
    }
    let Some(xvnc) = Xvnc::start() else { return };
    let Some(mut browser) = Chromium::start().await else { return };
    let sim = SimConfig {
        vnc_backend: Some(([127, 0, 0, 1], xvnc.port).into()),
        vnc_password_file: Some(xvnc.password_file.clone()),
        ..SimConfig::for_tests()
    };
    let (app, sim) = app_on(sim, |_, _| {}).await;
    let people = People::on(&app).await;
    let vm = people.vm(&app, VmOf::CloudInit, "cloud-box").await;
    open_watched(&mut browser, &app, &people.alice_session, &format!("/requests/{}", vm.request)).await;
    assert_eq!(browser.text("#machine .kind").await, t("en", "kind.qemu.short"));
    assert_eq!(browser.count(&format!("#machine a[href='/machines/{}/terminal']", vm.machine)).await, 1);
    assert_eq!(browser.count("#install-state").await, 0, "a cloud-init VM installs nothing");
    console_from_the_card(&mut browser, vm.machine).await;
    assert_eq!(sim.calls().get(Endpoint::QemuVncProxy), 1);
    browser.assert_clean("the console page of a VM");
    assert_no_csp_violation(&mut browser).await;
}

#[tokio::test]
async fn novnc_shows_an_iso_vms_installer_and_the_owner_then_detaches_the_iso() {
    if !vendor_installed() {
        return;
    }
    let Some(xvnc) = Xvnc::start() else { return };
    let Some(mut browser) = Chromium::start().await else { return };
    let sim = SimConfig {
        vnc_backend: Some(([127, 0, 0, 1], xvnc.port).into()),
        vnc_password_file: Some(xvnc.password_file.clone()),
        ..SimConfig::for_tests()
    };
    let (app, sim) = app_on(sim, |_, _| {}).await;
    let people = People::on(&app).await;
    let vm = people.vm(&app, VmOf::Iso, "iso-box").await;
    let request_page = format!("/requests/{}", vm.request);
    open_watched(&mut browser, &app, &people.alice_session, &request_page).await;
    let state = browser.text("#install-state").await;
    assert!(state.starts_with(&t("en", "machine.qemu.installing")), "{state}");
    assert_eq!(browser.count(&format!("#machine a[href='/machines/{}/terminal']", vm.machine)).await, 0);
    console_from_the_card(&mut browser, vm.machine).await;
    browser.assert_clean("the console page of an ISO VM");

    // Leaving the console page ends its session (not only its idle timeout); the request page is then
    // loaded after that end is recorded, so no live update swaps the card under the dialog below.
    browser.goto(&app.url("/profile")).await;
    console_closed(&app).await;
    // Installed: back on the request page, the owner detaches the ISO through the confirmation dialog.
    browser.goto(&app.url(&request_page)).await;
    let detach = "#machine form:has(input[value='detach_iso']) button[type=submit]";
    browser.click(detach).await;
    browser.wait_for("document.querySelector('dialog.confirm[open]') ? 'ok' : 'waiting'", Duration::from_secs(5)).await;
    let question = browser.text("dialog.confirm p").await;
    assert!(question.starts_with("Detach the installer ISO from iso-box?"), "{question}");
    // A live update swaps the card while the dialog is open (as `live.js` does: the old node is
    // replaced by a fresh one); the confirmed form must still be sent.
    let swapped = browser
        .eval("(function(){var m=document.getElementById('machine'); m.replaceWith(m.cloneNode(true)); return 'swapped';})()")
        .await;
    assert_eq!(swapped, "swapped");
    browser.click_and_wait("dialog.confirm button[value=ok]").await;
    let flash = t("en", "flash.machine_detach_iso");
    let flashed =
        format!("document.body.innerText.includes({}) ? 'ok' : 'waiting'", serde_json::to_string(&flash).unwrap());
    browser.wait_for(&flashed, Duration::from_secs(10)).await;
    assert_eq!(browser.count("#install-state").await, 0);
    assert_eq!(browser.count(detach).await, 0, "the action is gone");
    assert_eq!(sim.state().guests[&vm.vmid].config["ide2"], "none,media=cdrom");
    browser.assert_clean("the request page after detaching");
    assert_no_csp_violation(&mut browser).await;
}
