//! The console pages in a real headless Chromium: noVNC and xterm.js through proxdesk's relay and the
//! PVE simulator to a real TigerVNC server and a real shell.

use std::time::Duration;

use proxdesk::integrations::pve::sim::SimConfig;
use serde_json::json;

use crate::browser::Chromium;
use crate::console_fixtures::*;

/// The browser libraries from `npm ci`; without them the pages cannot work.
fn vendor_installed() -> bool {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    if proxdesk::http::assets::vendor_installed(&dir) {
        return true;
    }
    if std::env::var("PROXDESK_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
        panic!("static/vendor is missing: run `npm ci` first (PROXDESK_REQUIRE_EXTERNAL=1)");
    }
    eprintln!("SKIPPED: static/vendor is missing (run `npm ci`)");
    false
}

const CANVAS: &str = r##"(() => {
  const state = document.body.dataset.console || "connecting";
  const c = document.querySelector("#console-screen canvas");
  if (state !== "connected" || !c || !c.width) return "waiting: " + state;
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let drawn = 0, colored = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3]) drawn++;
    if (d[i] || d[i + 1] || d[i + 2]) colored++;
  }
  if (!colored) return "waiting: blank canvas";
  return `ok ${c.width}x${c.height} drawn=${drawn} colored=${colored}`;
})()"##;

#[tokio::test]
async fn novnc_in_chromium_shows_the_real_vnc_servers_framebuffer() {
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
    let (app, _sim) = app_on(sim, |_, _| {}).await;
    let (id, _, session) = ready_machine(&app).await;
    browser.open_logged_in(&app.address, &session, &format!("/machines/{id}/console")).await;
    let seen = browser.wait_for(CANVAS, Duration::from_secs(30)).await;
    assert!(seen.starts_with("ok 640x480"), "{seen}");
    eprintln!("noVNC canvas: {seen}");
    let html = browser.eval("document.documentElement.outerHTML").await;
    assert!(!html.as_str().unwrap().contains("PVEVNC"), "no PVE ticket in the page");
}

#[tokio::test]
async fn xterm_in_chromium_reaches_a_real_shell_and_echoes_typing() {
    if !vendor_installed() {
        return;
    }
    let Some(shell) = Shell::start() else { return };
    let Some(mut browser) = Chromium::start().await else { return };
    let sim = SimConfig { term_backend: Some(([127, 0, 0, 1], shell.port).into()), ..SimConfig::for_tests() };
    let (app, _sim) = app_on(sim, |_, _| {}).await;
    let (id, _, session) = ready_machine(&app).await;
    browser.open_logged_in(&app.address, &session, &format!("/machines/{id}/terminal")).await;
    let connected = r#"document.body.dataset.console === "connected" ? "ok" : "waiting""#;
    browser.wait_for(connected, Duration::from_secs(30)).await;
    browser.eval("window.proxdeskTerminal.focus()").await;
    browser.call("Input.insertText", json!({"text": "echo xterm-$((6*7))"})).await;
    for kind in ["keyDown", "keyUp"] {
        let key = json!({"type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"});
        browser.call("Input.dispatchKeyEvent", key).await;
    }
    let screen = r#"(() => {
      const b = window.proxdeskTerminal.buffer.active;
      let s = "";
      for (let i = 0; i < b.length; i++) s += b.getLine(i).translateToString(true) + "\n";
      return s.includes("xterm-42\n") ? "ok" : "waiting: " + s;
    })()"#;
    browser.wait_for(screen, Duration::from_secs(20)).await;
}
