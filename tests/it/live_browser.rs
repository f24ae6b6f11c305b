//! Live pages in a real headless Chromium: the request page follows provisioning to `ready` and a
//! shutdown to `stopped` by itself, without reloading.

use std::time::Duration;

use proxdesk::secrets::Secret;
use reqwest::StatusCode;
use serde_json::json;

use crate::browser::Chromium;
use crate::console_fixtures::ready_machine;
use crate::live::{app_with_timing, pending_request};

/// "ok" once the stream delivered its first fingerprint.
const CONNECTED: &str = r#"document.documentElement.dataset.live === "connected" ? "ok" : "waiting""#;

/// "ok …" once a badge inside a live region reads `text` while the page still carries the marker set
/// before (a reload would have dropped it).
fn shows_without_reload(text: &str) -> String {
    format!(
        r#"(() => {{
          const badges = Array.from(document.querySelectorAll("[data-live-region] .badge")).map(b => b.textContent.trim());
          if (window.liveMarker !== 42) return "reloaded: marker lost";
          return badges.includes("{text}") ? "ok swaps=" + document.documentElement.dataset.liveSwaps : "waiting: " + badges.join(",");
        }})()"#
    )
}

async fn session(app: &crate::helpers::TestApp) -> String {
    let password = Secret::new("alice-password-123".into());
    let s = proxdesk::services::auth::login(&app.db, "alice", &password, "t", 1).await.unwrap();
    s.token.expose().clone()
}

#[tokio::test]
async fn the_request_page_shows_ready_without_a_reload() {
    let Some(mut browser) = Chromium::start().await else { return };
    let (app, _sim) = app_with_timing(800, 200).await;
    let (admin_t, _, id) = pending_request(&app).await;
    browser.open_logged_in(&app.address, &session(&app).await, &format!("/requests/{id}")).await;
    browser.wait_for(CONNECTED, Duration::from_secs(15)).await;
    browser.eval("window.liveMarker = 42").await;

    let r = app.post(&admin_t, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let seen = browser.wait_for(&shows_without_reload("ready"), Duration::from_secs(30)).await;
    eprintln!("request page: {seen}");
    let machine = browser.eval(r#"document.getElementById("machine").textContent"#).await;
    assert!(machine.as_str().unwrap().contains("running"), "the machine card came in too: {machine}");
}

#[tokio::test]
async fn a_shutdown_from_the_page_shows_as_stopped_by_itself() {
    let Some(mut browser) = Chromium::start().await else { return };
    let (app, _sim) = app_with_timing(100, 2500).await;
    let (_, _, _) = ready_machine(&app).await;
    browser.open_logged_in(&app.address, &session(&app).await, "/requests/1").await;
    browser.wait_for(CONNECTED, Duration::from_secs(15)).await;

    // The button posts the form: the page that comes back still says running (PVE takes 2.5 s).
    browser.eval(r#"document.querySelector('button[value="shutdown"]').click()"#).await;
    let back = r#"location.search.includes("done=machine_shutdown") && document.readyState === "complete"
        && document.documentElement.dataset.live === "connected" ? "ok" : "waiting""#;
    browser.wait_for(back, Duration::from_secs(15)).await;
    let state = browser.eval(r##"document.querySelector("#machine .badge").textContent.trim()"##).await;
    assert_eq!(state, "running", "PVE has not finished the shutdown yet");
    browser.eval("window.liveMarker = 42").await;
    let seen = browser.wait_for(&shows_without_reload("stopped"), Duration::from_secs(15)).await;
    eprintln!("after shutdown: {seen}");
}
