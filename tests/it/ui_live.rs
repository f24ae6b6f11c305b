//! Live pages in the browser: a request provisioned to ready and a machine shut down show up on the
//! open page without a reload (a marker set on `window` survives). Desktop and phone.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proxdesk::integrations::pve::sim::SimConfig;

use crate::browser::{Chromium, Viewport};
use crate::ui_fixtures::{Desk, desk_on};

/// Marks the window, and notes when `selector` first appears (ms since the epoch); a later call
/// watches for another selector.
fn watch(selector: &str) -> String {
    format!(
        r#"(() => {{
  window.proxdeskMarker = "kept";
  window.proxdeskWanted = {sel};
  window.proxdeskSeenAt = 0;
  const seen = () => {{
    if (!window.proxdeskSeenAt && document.querySelector(window.proxdeskWanted)) window.proxdeskSeenAt = Date.now();
  }};
  if (!window.proxdeskObserver) {{
    window.proxdeskObserver = new MutationObserver(seen);
    window.proxdeskObserver.observe(document.documentElement, {{subtree: true, childList: true, attributes: true}});
  }}
  seen();
}})()"#,
        sel = serde_json::to_string(selector).unwrap()
    )
}

const SEEN_WITHOUT_RELOAD: &str = r#"window.proxdeskMarker !== "kept" ? "reloaded (the marker is gone)" :
  window.proxdeskSeenAt ? "ok " + window.proxdeskSeenAt : "waiting""#;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn open_as_alice(browser: &mut Chromium, d: &Desk, viewport: Viewport, path: &str) {
    browser.viewport(viewport).await;
    browser.login(&d.app.address, &d.alice.name, &d.alice.password).await;
    browser.goto(&d.url(path)).await;
}

/// Waits for `SEEN_WITHOUT_RELOAD`; a reload fails at once rather than at the timeout.
async fn seen_at(browser: &mut Chromium, at: &str, what: &str) -> u64 {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let v = browser.eval(SEEN_WITHOUT_RELOAD).await;
        let s = v.as_str().unwrap_or_default();
        if let Some(ms) = s.strip_prefix("ok ") {
            return ms.parse().unwrap();
        }
        assert!(!s.starts_with("reloaded"), "{at}: the page reloaded instead of updating to {what}");
        assert!(Instant::now() < until, "{at}: the open page never showed {what}: {}", browser.text("main").await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_request_page_follows_provisioning_to_ready_without_a_reload() {
    let Some(mut browser) = Chromium::start().await else { return };
    for viewport in Viewport::BOTH {
        let at = viewport.name();
        let d = desk_on(SimConfig { clone_duration: Duration::from_secs(3), ..SimConfig::for_tests() }).await;
        let id = d.submit(&d.alice, "lab-live").await;
        d.approve(id).await;
        open_as_alice(&mut browser, &d, viewport, &format!("/requests/{id}")).await;
        // The machine's actions appear once it is ready.
        browser.eval(&watch("button[name=action][value=shutdown]")).await;
        assert_eq!(browser.eval("window.proxdeskSeenAt || 0").await, 0, "{at}: ready before the page was watched");
        let ready = d.wait_status(id, &["ready", "failed"], Duration::from_secs(30)).await;
        let ready_at = now_ms();
        assert_eq!(ready["status"], "ready", "{ready}");
        let shown_at = seen_at(&mut browser, at, "the ready machine").await;
        eprintln!("{at}: ready shown on the open page {} ms after the job's step", shown_at.saturating_sub(ready_at));
        browser.assert_clean(at);
    }
}

#[tokio::test]
async fn a_power_action_shows_on_the_open_page_without_a_reload() {
    let Some(mut browser) = Chromium::start().await else { return };
    for viewport in Viewport::BOTH {
        let at = viewport.name();
        let d = desk_on(SimConfig { power_duration: Duration::from_secs(2), ..SimConfig::for_tests() }).await;
        let (request, machine) = d.ready(&d.alice, "lab-power").await;
        open_as_alice(&mut browser, &d, viewport, &format!("/requests/{request}")).await;
        // The person shuts the machine down on the page; the page it lands on then follows the state.
        browser.click_and_wait("button[name=action][value=shutdown]").await;
        browser.eval(&watch("button[name=action][value=start]")).await;
        seen_at(&mut browser, at, "the stopped machine (a Start button)").await;
        // Started from elsewhere (the API), the open page follows too.
        browser.eval(&watch("button[name=action][value=shutdown]")).await;
        let r = d.app.post(&d.alice.token, &format!("/api/v1/machines/{machine}/start"), serde_json::json!({})).await;
        assert!(r.status().is_success(), "start: {}", r.status());
        seen_at(&mut browser, at, "the running machine (a Shut down button)").await;
        browser.assert_clean(at);
    }
}
