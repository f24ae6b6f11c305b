//! The admin in the browser: approving from the queue, a bulk action with nothing ticked, and the
//! admin home's count of what waits. Desktop and phone.

use std::time::Duration;

use crate::browser::{Chromium, Viewport};
use crate::ui_fixtures::{Desk, desk};

/// Everything a page says to the person after an action: toasts, error boxes, alerts.
const FEEDBACK: &str = r#"[...document.querySelectorAll(".toast, .problem, [role=alert], .error, .flash")]
  .map(e => e.innerText.trim()).filter(t => t).join(" | ")"#;

async fn as_admin(browser: &mut Chromium, d: &Desk, viewport: Viewport) {
    browser.viewport(viewport).await;
    browser.login(&d.app.address, &d.admin.name, &d.admin.password).await;
}

#[tokio::test]
async fn the_admin_approves_a_ticked_request_from_the_queue_and_only_that_one() {
    let Some(mut browser) = Chromium::start().await else { return };
    for viewport in Viewport::BOTH {
        let at = viewport.name();
        let d = desk().await;
        let (first, second) = (d.submit(&d.alice, "lab-a").await, d.submit(&d.alice, "lab-b").await);
        as_admin(&mut browser, &d, viewport).await;
        browser.goto(&d.url("/admin/requests")).await;
        browser.click(&format!("input[name=ids][value='{first}']")).await;
        assert_eq!(
            browser.eval(&format!("document.querySelector(\"input[name=ids][value='{first}']\").checked")).await,
            true,
            "{at}: the tick did not take"
        );
        browser.click_and_wait("button[name=action][value=approve]").await;
        let status = d.request(first).await["status"].as_str().unwrap().to_owned();
        assert!(["approved", "provisioning", "ready"].contains(&status.as_str()), "{at}: ticked request is {status}");
        assert_eq!(d.request(second).await["status"], "pending", "{at}: the unticked request moved");
        let said = browser.eval(FEEDBACK).await;
        assert!(!said.as_str().unwrap_or_default().is_empty(), "{at}: the page said nothing after approving");
        browser.assert_clean(at);
        // Leave the page before its server stops: a live page's refreshes would knock on a closed port.
        browser.goto("about:blank").await;
    }
}

#[tokio::test]
async fn a_request_arriving_while_the_admin_ticks_keeps_the_ticks() {
    let Some(mut browser) = Chromium::start().await else { return };
    for viewport in Viewport::BOTH {
        let at = viewport.name();
        let d = desk().await;
        let first = d.submit(&d.alice, "lab-a").await;
        as_admin(&mut browser, &d, viewport).await;
        browser.goto(&d.url("/admin/requests")).await;
        browser
            .wait_for("document.documentElement.dataset.live === 'connected' ? 'ok' : 'wait'", Duration::from_secs(10))
            .await;
        browser.click(&format!("input[name=ids][value='{first}']")).await;
        // A new request changes the queue: its region is swapped while the tick is on.
        let second = d.submit(&d.alice, "lab-b").await;
        let row = format!("input[name=ids][value='{second}']");
        browser.wait_for(&format!("document.querySelector(\"{row}\") ? 'ok' : 'wait'"), Duration::from_secs(10)).await;
        let ticked = format!("document.querySelector(\"input[name=ids][value='{first}']\").checked");
        assert_eq!(browser.eval(&ticked).await, true, "{at}: the live update undid the tick");
        browser.assert_clean(at);
        browser.goto("about:blank").await;
    }
}

#[tokio::test]
async fn a_bulk_action_with_nothing_ticked_says_so_and_changes_nothing() {
    let Some(mut browser) = Chromium::start().await else { return };
    for viewport in Viewport::BOTH {
        let at = viewport.name();
        let d = desk().await;
        let id = d.submit(&d.alice, "lab-a").await;
        as_admin(&mut browser, &d, viewport).await;
        browser.goto(&d.url("/admin/requests")).await;
        browser.click_and_wait("button[name=action][value=approve]").await;
        assert_eq!(d.request(id).await["status"], "pending", "{at}: a request moved");
        let said = browser.eval(FEEDBACK).await.as_str().unwrap_or_default().to_owned();
        assert!(!said.is_empty(), "{at}: nothing said after a bulk approve with nothing ticked");
        assert!(!said.contains("were approved"), "{at}: claimed success with nothing ticked: {said}");
        browser.assert_clean(at);
        // Leave the page before its server stops: a live page's refreshes would knock on a closed port.
        browser.goto("about:blank").await;
    }
}

#[tokio::test]
async fn the_admin_home_shows_how_many_requests_wait_and_links_to_the_queue() {
    let Some(mut browser) = Chromium::start().await else { return };
    for viewport in Viewport::BOTH {
        let at = viewport.name();
        let d = desk().await;
        for host in ["lab-a", "lab-b", "lab-c"] {
            d.submit(&d.alice, host).await;
        }
        as_admin(&mut browser, &d, viewport).await;
        assert_eq!(browser.goto(&d.url("/admin")).await, 200, "{at}: no admin home");
        let waiting = browser
            .eval(
                r#"[...document.querySelectorAll("main a[href^='/admin/requests']")]
                  .filter(a => /(^|\D)3(\D|$)/.test(a.innerText)).length"#,
            )
            .await;
        assert!(
            waiting.as_u64().unwrap_or(0) >= 1,
            "{at}: no link to the queue saying 3 wait: {}",
            browser.text("main").await
        );
        browser.click_and_wait("main a[href^='/admin/requests']").await;
        assert_eq!(browser.path().await, "/admin/requests", "{at}");
        browser.assert_clean(at);
        // Leave the page before its server stops: a live page's refreshes would knock on a closed port.
        browser.goto("about:blank").await;
    }
}
