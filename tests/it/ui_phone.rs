//! proxdesk on a 390×844 phone: the menu button opens the navigation, nothing scrolls sideways, and
//! tables show as cards whose status and actions are on screen.

use proxdesk::domain::roles::Role;

use crate::browser::{Chromium, Viewport};
use crate::ui_fixtures::{desk, person};

const SIDEWAYS: &str = "document.scrollingElement.scrollWidth - window.innerWidth";

/// Cells of `table.table` rows that stick out of the screen or are hidden, by their label.
const CELLS_OFF_SCREEN: &str = r#"JSON.stringify([...document.querySelectorAll("table tbody tr")].flatMap(tr =>
  [...tr.children].filter(td => {
    const r = td.getBoundingClientRect(), s = getComputedStyle(td);
    return s.display === "none" || s.visibility === "hidden" || r.width === 0 || r.left < 0 || r.right > window.innerWidth + 0.5;
  }).map(td => (td.dataset.label || td.cellIndex) + ": " + td.innerText.trim().slice(0, 40))))"#;

#[tokio::test]
async fn on_a_phone_the_menu_button_opens_the_navigation() {
    let Some(mut browser) = Chromium::start().await else { return };
    let d = desk().await;
    browser.viewport(Viewport::Phone).await;
    browser.login(&d.app.address, &d.admin.name, &d.admin.password).await;
    browser.goto(&d.url("/")).await;
    assert!(!browser.clickable("#nav a[href='/profile']").await, "the navigation shows before the menu is opened");
    let topbar = browser.eval("document.querySelector('.topbar').getBoundingClientRect().height").await;
    assert!(topbar.as_f64().unwrap() < 120.0, "the closed top bar is {topbar} px high");
    browser.click(".nav-toggle").await;
    assert_eq!(browser.eval("document.querySelector('.nav-toggle').getAttribute('aria-expanded')").await, "true");
    for link in ["/requests/new", "/admin", "/profile"] {
        assert!(browser.clickable(&format!("#nav a[href='{link}']")).await, "{link} not reachable in the open menu");
    }
    browser.click_and_wait("#nav a[href='/requests/new']").await;
    assert_eq!(browser.path().await, "/requests/new");
    // The admin pages' own navigation: every entry reachable on the phone.
    browser.goto(&d.url("/admin/requests")).await;
    for link in [
        "/admin",
        "/admin/requests",
        "/admin/users",
        "/admin/catalog",
        "/admin/quotas",
        "/admin/audit",
        "/admin/guacamole",
    ] {
        assert!(
            browser.clickable(&format!(".subnav a[href='{link}']")).await,
            "{link} not reachable in the admin tabs"
        );
    }
    browser.assert_clean("phone menu");
}

#[tokio::test]
async fn on_a_phone_no_page_scrolls_sideways_and_table_rows_show_status_and_actions() {
    let Some(mut browser) = Chromium::start().await else { return };
    let d = desk().await;
    let (ready, _) = d.ready(&d.alice, "a-rather-long-hostname-for-a-phone").await;
    let pending = d.submit(&d.alice, "lab-pending").await;
    person(&d.app, "bob-with-a-long-name", Role::User).await;
    browser.viewport(Viewport::Phone).await;
    let mut wrong = Vec::new();
    for (who, pages) in [
        (&d.alice, vec!["/".to_owned(), "/requests/new".into(), format!("/requests/{ready}"), "/profile".into()]),
        (
            &d.admin,
            vec![
                "/admin".to_owned(),
                "/admin/requests".into(),
                format!("/requests/{pending}"),
                "/admin/users".into(),
                "/admin/catalog".into(),
                format!("/admin/catalog/{}", d.template),
                "/admin/quotas".into(),
                "/admin/audit".into(),
                "/admin/guacamole".into(),
            ],
        ),
    ] {
        browser.call("Network.clearBrowserCookies", serde_json::json!({})).await;
        browser.set_session(&d.app.address, &who.session).await;
        for path in pages {
            browser.goto(&d.url(&path)).await;
            let sideways = browser.eval(SIDEWAYS).await.as_f64().unwrap_or(0.0);
            if sideways > 0.0 {
                wrong.push(format!("{path}: scrolls {sideways} px sideways"));
            }
            let off: Vec<String> =
                serde_json::from_str(browser.eval(CELLS_OFF_SCREEN).await.as_str().unwrap()).unwrap();
            if !off.is_empty() {
                wrong.push(format!("{path}: table cells off screen or hidden: {off:?}"));
            }
            let tables = browser.count("table").await;
            let carded = browser.count("table.table").await;
            if tables != carded {
                wrong.push(format!("{path}: {} of {tables} tables are not responsive (.table)", tables - carded));
            }
        }
    }
    // The queue's rows: the status and a way to act on each request are on screen.
    browser.goto(&d.url("/admin/requests")).await;
    let status_visible = browser.eval("[...document.querySelectorAll('table tbody tr .badge')].filter(b => b.getBoundingClientRect().width > 0).length").await;
    if status_visible.as_u64().unwrap_or(0) == 0 {
        wrong.push("/admin/requests: no status badge visible on the rows".into());
    }
    if !browser.clickable(&format!("input[name=ids][value='{pending}']")).await {
        wrong.push("/admin/requests: the row's select box cannot be tapped".into());
    }
    assert!(wrong.is_empty(), "phone layout:\n{}", wrong.join("\n"));
}
