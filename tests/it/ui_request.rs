//! A person asks for a machine in the browser: a wrong form shows every error at once and keeps what
//! was typed; the corrected form lands on the new request's page. Desktop and phone.

use serde_json::Value;

use crate::browser::{Chromium, Viewport};
use crate::ui_fixtures::desk;

/// The fields' values as the page has them now.
const VALUES: &str = r##"JSON.stringify(Object.fromEntries(["hostname", "cores", "memory_mib", "disk_gib", "purpose"]
  .map(n => [n, document.querySelector("#request-form [name=" + n + "]").value])))"##;

/// Which fields show an error tied to them (`aria-invalid`, or the error named by `aria-describedby`).
const INVALID: &str = r##"JSON.stringify([...document.querySelectorAll("#request-form [name]")]
  .filter(el => el.getAttribute("aria-invalid") === "true" ||
    (el.getAttribute("aria-describedby") || "").split(" ").some(id => id.startsWith("e-") && document.getElementById(id)))
  .map(el => el.name))"##;

#[tokio::test]
async fn a_wrong_request_shows_every_error_at_once_keeps_the_values_and_the_fixed_one_lands_on_its_page() {
    let Some(mut browser) = Chromium::start().await else { return };
    for viewport in Viewport::BOTH {
        let d = desk().await;
        browser.viewport(viewport).await;
        browser.login(&d.app.address, &d.alice.name, &d.alice.password).await;
        browser.goto(&d.url("/requests/new")).await;
        browser.type_into("[name=hostname]", "Not A Host!").await;
        browser.type_into("[name=cores]", "").await;
        browser.type_into("[name=memory_mib]", "999999").await;
        browser.type_into("[name=disk_gib]", "8").await;
        browser.type_into("[name=purpose]", "").await;
        browser.click_and_wait("#request-form button[type=submit]").await;

        let at = viewport.name();
        let invalid: Vec<String> = serde_json::from_str(browser.eval(INVALID).await.as_str().unwrap()).unwrap();
        for field in ["hostname", "cores", "memory_mib", "purpose"] {
            assert!(invalid.iter().any(|f| f == field), "{at}: no error tied to {field}; invalid: {invalid:?}");
        }
        assert!(!invalid.iter().any(|f| f == "disk_gib"), "{at}: the valid disk was marked invalid: {invalid:?}");
        let summary = browser.count("#error-summary li").await;
        assert!(summary >= 4, "{at}: the error summary lists {summary} errors, not every one");
        let kept: Value = serde_json::from_str(browser.eval(VALUES).await.as_str().unwrap()).unwrap();
        assert_eq!(kept["hostname"], "Not A Host!", "{at}: typed host name lost");
        assert_eq!(kept["memory_mib"], "999999", "{at}: typed memory lost");
        assert_eq!(kept["disk_gib"], "8", "{at}: typed disk lost");
        assert!(browser.clickable("#error-summary a").await, "{at}: the error summary is not on screen");

        browser.type_into("[name=hostname]", "lab-7").await;
        browser.type_into("[name=cores]", "2").await;
        browser.type_into("[name=memory_mib]", "1024").await;
        browser.type_into("[name=purpose]", "thesis experiments").await;
        browser.click_and_wait("#request-form button[type=submit]").await;
        let path = browser.path().await;
        assert!(path.starts_with("/requests/") && path != "/requests/new", "{at}: landed on {path}");
        let id: i64 = path.trim_start_matches("/requests/").parse().unwrap();
        let r = d.request(id).await;
        assert_eq!(
            (r["hostname"].as_str(), r["cores"].as_i64(), r["status"].as_str()),
            (Some("lab-7"), Some(2), Some("pending"))
        );
        assert!(browser.text("main").await.contains("lab-7"), "{at}: the request page does not name the machine");
        browser.assert_clean(at);
        // Leave the page before its server stops: a live page's refreshes would knock on a closed port.
        browser.goto("about:blank").await;
    }
}
