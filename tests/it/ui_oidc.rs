//! Single sign-on in a real browser: the sign-in page's button, the provider's own forms, and back on
//! proxdesk's dashboard signed in; signing out passes by the provider and ends on the sign-in page.

use serde_json::json;

use crate::browser::Chromium;
use crate::helpers::spawn_app_with;
use crate::oidc_provider::{OidcProvider, configure, node, person, reserve_port};

#[tokio::test]
async fn the_sso_button_signs_in_through_the_provider_and_lands_on_the_dashboard() {
    let Some(node) = node() else { return };
    let Some(mut browser) = Chromium::start().await else { return };
    let port = reserve_port();
    let app = spawn_app_with(|raw| configure(raw, port, "proxdesk-admins")).await;
    let accounts = json!({"alice": person("alice", "alice@example.org", true, &["students"])});
    let _provider = OidcProvider::start(&node, port, &app.address, accounts, true).await;

    browser.goto(&format!("{}/login", app.address)).await;
    browser.click_and_wait("a[href='/login/oidc']").await;
    let at = browser.eval("location.href").await;
    assert!(at.as_str().unwrap().starts_with(&format!("http://127.0.0.1:{port}/interaction/")), "at {at}");
    browser.type_into("input[name=login]", "alice").await;
    browser.type_into("input[name=password]", "any password").await;
    browser.click_and_wait("button[type=submit]").await;
    // The provider asks to share the profile with proxdesk.
    assert!(browser.text("body").await.contains("profile"), "no consent page");
    browser.click_and_wait("button[type=submit]").await;
    // The provider's own pages are not proxdesk's to keep clean (they load fonts from the network).
    browser.take_problems();

    assert_eq!(browser.eval("location.href").await, format!("{}/", app.address));
    assert!(browser.text("body").await.contains("alice"), "the page does not show who is signed in");
    browser.assert_clean("dashboard after single sign-on");

    browser.click_and_wait("form[action='/logout'] button").await;
    assert!(browser.text("body").await.contains("sign-out"), "the provider's sign-out page did not open");
    browser.click_and_wait("button[value=yes]").await;
    assert_eq!(browser.eval("location.href").await, format!("{}/login", app.address));
    browser.take_problems();
    assert_eq!(browser.goto(&format!("{}/", app.address)).await, 200);
    assert_eq!(browser.path().await, "/login", "still signed in after signing out");
    assert!(browser.eval("document.cookie").await.as_str().unwrap().is_empty(), "cookies readable by scripts");
    browser.goto("about:blank").await;
}
