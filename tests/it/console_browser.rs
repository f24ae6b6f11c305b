//! The console pages in a real headless Chromium: noVNC and xterm.js through proxdesk's relay and the
//! PVE simulator to a real TigerVNC server and a real shell.

use std::time::Duration;

use proxdesk::http::i18n::t;
use proxdesk::integrations::pve::sim::{Endpoint, Fault, GuestKind, SimConfig};
use serde_json::{Value, json};

use crate::browser::Chromium;
use crate::console_fixtures::*;
use crate::helpers::TestApp;

/// Collects the page's Content-Security-Policy violations from its very start.
const CSP_WATCH: &str = "window.__csp = []; document.addEventListener('securitypolicyviolation',     (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample || ''}`));";

/// Opens `path` logged in, with CSP violations recorded in `window.__csp`.
pub async fn open_watched(browser: &mut Chromium, app: &TestApp, session: &str, path: &str) {
    browser.call("Page.addScriptToEvaluateOnNewDocument", json!({"source": CSP_WATCH})).await;
    browser.open_logged_in(&app.address, session, path).await;
    let loaded = r#"document.readyState === "complete" && document.body?.dataset.cancel ? "ok" : "waiting""#;
    browser.wait_for(loaded, Duration::from_secs(30)).await;
}

/// No violation so far (by the page's own count and by the browser harness's); then proves the watch
/// is live: an inline `<style>` must be reported.
pub async fn assert_no_csp_violation(browser: &mut Chromium) {
    let harness: Vec<String> = browser.take_problems().into_iter().filter(|p| p.starts_with("CSP")).collect();
    assert!(harness.is_empty(), "CSP violations on the page: {harness:?}");
    let seen = browser.eval("JSON.stringify(window.__csp)").await;
    assert_eq!(seen, json!("[]"), "CSP violations on the page");
    browser.eval("document.head.appendChild(document.createElement('style')).textContent = 'p { color: red }'").await;
    browser.wait_for("window.__csp.length ? 'ok' : 'waiting'", Duration::from_secs(5)).await;
    let _ = browser.take_problems();
}

/// The console bar as the user sees it.
const BAR: &str = r#"(() => {
  const again = document.getElementById("reconnect");
  const keys = [...document.querySelectorAll(".keys button")];
  const look = (k) => { const c = getComputedStyle(k); return `${c.cursor} ${c.color}`; };
  return JSON.stringify({
    state: document.body.dataset.console || "",
    code: document.body.dataset.closeCode || "",
    badge: document.getElementById("console-badge").textContent,
    status: document.getElementById("console-status").textContent,
    statusRole: document.getElementById("console-status").getAttribute("role"),
    reconnectShown: !again.hidden && getComputedStyle(again).display !== "none",
    keys: keys.map((k) => k.dataset.key),
    keysEnabled: keys.map((k) => !k.disabled),
    looks: keys.map(look),
  });
})()"#;

pub async fn bar(browser: &mut Chromium) -> Value {
    serde_json::from_str(browser.eval(BAR).await.as_str().unwrap()).unwrap()
}

/// Waits until `document.body.dataset.console` is `state`.
async fn wait_state(browser: &mut Chromium, state: &str) {
    let expr = format!(
        r#"document.body?.dataset.console === "{state}" ? "ok" : "waiting: " + document.body?.dataset.console"#
    );
    browser.wait_for(&expr, Duration::from_secs(30)).await;
}

/// The browser libraries from `npm ci`; without them the pages cannot work.
pub fn vendor_installed() -> bool {
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

pub const CANVAS: &str = r##"(() => {
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
    open_watched(&mut browser, &app, &session, &format!("/machines/{id}/console")).await;
    let seen = browser.wait_for(CANVAS, Duration::from_secs(30)).await;
    assert!(seen.starts_with("ok 640x480"), "{seen}");
    eprintln!("noVNC canvas: {seen}");
    let html = browser.eval("document.documentElement.outerHTML").await;
    assert!(!html.as_str().unwrap().contains("PVEVNC"), "no PVE ticket in the page");
    let b = bar(&mut browser).await;
    assert_eq!(b["keys"], json!(["ctrl-alt-del", "esc", "tab", "ctrl-c"]), "{b}");
    assert_eq!(b["keysEnabled"], json!([true, true, true, true]), "{b}");
    assert_eq!((b["reconnectShown"].as_bool(), b["badge"].as_str()), (Some(false), Some("Connected")), "{b}");
    browser.assert_clean("the console page");
    assert_no_csp_violation(&mut browser).await;
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
    let opening = std::time::Instant::now();
    open_watched(&mut browser, &app, &session, &format!("/machines/{id}/terminal")).await;
    wait_state(&mut browser, "connected").await;
    eprintln!("terminal page opened to connected: {:?}", opening.elapsed());
    let b = bar(&mut browser).await;
    assert_eq!(b["statusRole"], "status", "the status line is a live region");
    assert_eq!(b["keys"], json!(["esc", "tab", "ctrl-c", "ctrl-d"]), "{b}");
    assert_eq!(b["keysEnabled"], json!([true, true, true, true]), "keys work once connected: {b}");
    assert_eq!(b["reconnectShown"], false, "no Reconnect while connected: {b}");
    assert_eq!(b["badge"], "Connected", "{b}");
    browser.eval("window.proxdeskTerminal.focus()").await;
    type_line(&mut browser, "echo xterm-$((6*7))").await;
    wait_screen(&mut browser, "xterm-42\n").await;
    // The on-screen Ctrl+C cancels a half-typed line: only the next command runs.
    browser.call("Input.insertText", json!({"text": "echo never"})).await;
    browser.eval(r#"document.querySelector('.keys [data-key="ctrl-c"]').click()"#).await;
    type_line(&mut browser, "echo after-$((2+3))").await;
    wait_screen(&mut browser, "\nafter-5\n").await;
    let screen = browser.eval(SCREEN).await;
    assert!(!screen.as_str().unwrap().contains("neverecho"), "Ctrl+C reached the shell: {screen}");
    // True colour: xterm writes a style attribute per cell, which the page turns into a CSSOM write.
    type_line(&mut browser, r"printf '\033[38;2;255;0;0mtrue-red\033[0m\n'").await;
    let red = r#"(() => {
      const spans = [...document.querySelectorAll(".xterm-rows span")].filter((s) => s.textContent === "true-red");
      const colors = spans.map((s) => getComputedStyle(s).color);
      return colors.includes("rgb(255, 0, 0)") ? "ok" : `waiting: ${colors} ${window.__csp}`;
    })()"#;
    browser.wait_for(red, Duration::from_secs(10)).await;
    // Focus on a key is visible.
    let outline = browser
        .eval(r#"(() => { const k = document.querySelector('.keys button'); k.focus(); return getComputedStyle(k).outlineStyle; })()"#)
        .await;
    assert_ne!(outline, "none", "focused keys show it");
    let adopted = browser.eval("document.adoptedStyleSheets.length").await;
    assert!(adopted.as_u64().unwrap() >= 2, "xterm's own rules apply through adopted sheets: {adopted}");
    browser.assert_clean("the terminal page");
    assert_no_csp_violation(&mut browser).await;
    // Control: the same xterm opened without the page's adapter is blocked by the policy.
    let before = browser.eval("window.__csp.length").await.as_u64().unwrap();
    let bare = "import('/static/vendor/xterm/xterm.mjs').then((m) => { const d = document.createElement('div'); \
        document.body.append(d); new m.Terminal().open(d); }); 'started'";
    browser.eval(bare).await;
    let blocked = format!("window.__csp.slice({before}).some((v) => v.startsWith('style-src')) ? 'ok' : 'waiting'");
    browser.wait_for(&blocked, Duration::from_secs(10)).await;
}

const SCREEN: &str = r#"(() => {
  const b = window.proxdeskTerminal.buffer.active;
  let s = "";
  for (let i = 0; i < b.length; i++) s += b.getLine(i).translateToString(true) + "\n";
  return s;
})()"#;

async fn type_line(browser: &mut Chromium, text: &str) {
    browser.call("Input.insertText", json!({"text": text})).await;
    for kind in ["keyDown", "keyUp"] {
        let key = json!({"type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"});
        browser.call("Input.dispatchKeyEvent", key).await;
    }
}

async fn wait_screen(browser: &mut Chromium, want: &str) {
    let want = serde_json::to_string(want).unwrap();
    let expr = format!(r#"(() => {{ const s = {SCREEN}; return s.includes({want}) ? "ok" : "waiting: " + s; }})()"#);
    browser.wait_for(&expr, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn a_stopped_machine_gets_the_stopped_message_and_no_console() {
    let Some(mut browser) = Chromium::start().await else { return };
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let (id, _, session) = ready_machine(&app).await;
    let vmid = sim.state().containers().into_iter().find(|g| !g.is_template()).unwrap().vmid;
    sim.with_state(|s| s.guest_mut("pve1", GuestKind::Lxc, vmid).unwrap().running = false);
    sim.calls().reset();
    open_watched(&mut browser, &app, &session, &format!("/machines/{id}/console")).await;
    let page = r#"(() => {
      const b = document.getElementById("console-blocked");
      if (!b) return "waiting";
      return JSON.stringify({
        text: b.textContent,
        screen: !!document.getElementById("console-screen"),
        scripts: [...document.scripts].map((s) => s.src).filter((s) => s.includes("console")),
        start: !!b.querySelector('form[action$="/action"] input[name="action"][value="start"]'),
        back: !!document.querySelector('.page-head a[href^="/requests/"]'),
      });
    })()"#;
    let mut seen = Value::Null;
    for _ in 0..100 {
        seen = browser.eval(page).await;
        if seen != "waiting" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen: Value = serde_json::from_str(seen.as_str().unwrap()).unwrap();
    assert!(seen["text"].as_str().unwrap().contains(&t("en", "console.stopped")), "{seen}");
    assert_eq!((seen["screen"].as_bool(), seen["scripts"].clone()), (Some(false), json!([])), "no console: {seen}");
    assert_eq!((seen["start"].as_bool(), seen["back"].as_bool()), (Some(true), Some(true)), "{seen}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sim.calls().get(Endpoint::LxcVncProxy), 0, "PVE was not asked for a console");
    browser.assert_clean("the console page of a stopped machine");
    assert_no_csp_violation(&mut browser).await;
}

#[tokio::test]
async fn a_pve_refusal_is_shown_with_its_reason_and_reconnect_works_after() {
    if !vendor_installed() {
        return;
    }
    let Some(mut browser) = Chromium::start().await else { return };
    let (app, sim) = app_on(SimConfig::for_tests(), |_, _| {}).await;
    let (id, _, session) = ready_machine(&app).await;
    let locked = Fault::Status { code: 500, message: "CT is locked (backup)".into() };
    sim.faults().inject_times(Endpoint::LxcTermProxy, locked, 1);
    open_watched(&mut browser, &app, &session, &format!("/machines/{id}/terminal")).await;
    wait_state(&mut browser, "failed").await;
    let b = bar(&mut browser).await;
    let want = format!("{} {} CT is locked (backup)", t("en", "console.close.pve_locked"), t("en", "console.pve_said"));
    assert_eq!(b["status"], want.as_str(), "{b}");
    assert_eq!(b["code"], "4011", "{b}");
    assert_eq!(b["keysEnabled"], json!([false, false, false, false]), "{b}");
    assert_eq!(b["reconnectShown"], true, "{b}");
    // The simulator without a terminal backend echoes input: the retry connects.
    browser.eval("document.getElementById('reconnect').click()").await;
    wait_state(&mut browser, "connected").await;
    let after = bar(&mut browser).await;
    assert_eq!(after["keysEnabled"], json!([true, true, true, true]), "{after}");
    assert_ne!(after["looks"][0], b["looks"][0], "disabled keys look disabled");
    assert_eq!(after["reconnectShown"], false, "{after}");
    assert_no_csp_violation(&mut browser).await;

    // noVNC reports only "disconnected"; the page reads the code from the socket it hands noVNC.
    let denied = Fault::Status { code: 403, message: "Permission check failed (/vms/100, VM.Console)".into() };
    sim.faults().inject_times(Endpoint::LxcVncProxy, denied, 1);
    browser.goto(&app.url(&format!("/machines/{id}/console"))).await;
    wait_state(&mut browser, "failed").await;
    let b = bar(&mut browser).await;
    assert_eq!(b["code"], "4010", "{b}");
    assert!(b["status"].as_str().unwrap().starts_with(&t("en", "console.close.pve_permission")), "{b}");
    assert_eq!((b["reconnectShown"].as_bool(), b["badge"].as_str()), (Some(true), Some("Not connected")), "{b}");
    assert_no_csp_violation(&mut browser).await;
}

#[tokio::test]
async fn a_session_ended_upstream_says_why_and_offers_reconnect() {
    if !vendor_installed() {
        return;
    }
    let Some(mut browser) = Chromium::start().await else { return };
    let backend = Hangup::start(b"welcome\r\n").await;
    let sim = SimConfig { term_backend: Some(backend.addr), ..SimConfig::for_tests() };
    let (app, _sim) = app_on(sim, |_, _| {}).await;
    let (id, _, session) = ready_machine(&app).await;
    open_watched(&mut browser, &app, &session, &format!("/machines/{id}/terminal")).await;
    wait_state(&mut browser, "connected").await;
    wait_screen(&mut browser, "welcome").await;
    let hangup = std::time::Instant::now();
    backend.now();
    wait_state(&mut browser, "disconnected").await;
    eprintln!("guest hang-up to the page's message: {:?}", hangup.elapsed());
    let b = bar(&mut browser).await;
    assert_eq!(b["status"], t("en", "console.close.guest_closed").as_str(), "{b}");
    assert_eq!((b["code"].as_str(), b["badge"].as_str()), (Some("4100"), Some("Disconnected")), "{b}");
    assert_eq!(b["reconnectShown"], true, "{b}");
    assert_eq!(b["keysEnabled"], json!([false, false, false, false]), "{b}");
    assert_no_csp_violation(&mut browser).await;
}
