//! axe-core on every page, as each role sees it, in the light and the dark theme, on a desktop and a
//! phone: no violation of impact serious or critical, no console error, no CSP violation.

use std::time::Duration;

use proxdesk::domain::roles::Role;
use serde_json::json;

use crate::browser::{Axe, Chromium, Scheme, Viewport};
use proxdesk::integrations::pve::sim::SimConfig;

use crate::console_fixtures::{Shell, Xvnc};
use crate::ui_fixtures::{Desk, Person, desk_on, person};

/// How a page is reached once opened.
#[derive(Clone, Copy)]
enum Reach {
    /// Opened by its address.
    Open,
    /// The request form submitted empty: every error shown.
    SubmitEmptyRequest,
    /// The machine's delete form posted as a browser without JavaScript would (no `confirmed`).
    DeleteWithoutScript,
}

struct Page {
    label: &'static str,
    session: Option<String>,
    path: String,
    status: u16,
    reach: Reach,
}

fn page(label: &'static str, who: Option<&Person>, path: impl Into<String>) -> Page {
    Page { label, session: who.map(|p| p.session.clone()), path: path.into(), status: 200, reach: Reach::Open }
}

/// Every page in the states it can show, seeded on `d`.
async fn every_page(d: &Desk) -> Vec<Page> {
    let (a, admin) = (&d.alice, &d.admin);
    let carol = person(&d.app, "carol", Role::User).await;
    let dave = person(&d.app, "dave", Role::User).await;
    // The hung clone of the provisioning request holds the template's lock: it comes last.
    let (ready, machine) = d.ready(a, "lab-ready").await;
    let (_, dave_machine) = d.ready(&dave, "dave-lab").await;
    let failed = d.failed(a, "lab-failed").await;
    let pending = d.submit(a, "lab-pending").await;
    let provisioning = d.provisioning(a, "lab-provisioning").await;
    let request_page = |id: i64| format!("/requests/{id}");
    vec![
        page("login", None, "/login"),
        page("dashboard, empty", Some(&carol), "/"),
        page("dashboard with machines", Some(a), "/"),
        page("new request", Some(a), "/requests/new"),
        Page { reach: Reach::SubmitEmptyRequest, ..page("new request with errors", Some(a), "/requests/new") },
        page("request pending (owner)", Some(a), request_page(pending)),
        page("request provisioning (owner)", Some(a), request_page(provisioning)),
        page("request ready with machine (owner)", Some(a), request_page(ready)),
        page("request failed (owner)", Some(a), request_page(failed)),
        page("profile (user)", Some(a), "/profile"),
        page("machine details (owner)", Some(a), format!("/machines/{machine}")),
        page("machine details, last day (owner)", Some(a), format!("/machines/{machine}?range=day")),
        page("console", Some(a), format!("/machines/{machine}/console")),
        page("terminal", Some(a), format!("/machines/{machine}/terminal")),
        Page { status: 404, ..page("error page 404", Some(a), "/no-such-page") },
        page("dashboard (admin)", Some(admin), "/"),
        page("admin home", Some(admin), "/admin"),
        page("queue", Some(admin), "/admin/requests"),
        page("request pending (admin)", Some(admin), request_page(pending)),
        page("request ready (admin)", Some(admin), request_page(ready)),
        page("machine details (admin)", Some(admin), format!("/machines/{machine}")),
        page("request failed (admin)", Some(admin), request_page(failed)),
        page("users", Some(admin), "/admin/users"),
        page("sign-in settings", Some(admin), "/admin/users/sign-in"),
        page("catalog", Some(admin), "/admin/catalog"),
        page("catalog entry", Some(admin), format!("/admin/catalog/{}", d.template)),
        page("quotas", Some(admin), "/admin/quotas"),
        page("audit", Some(admin), "/admin/audit"),
        page("guacamole", Some(admin), "/admin/guacamole"),
        page("profile (admin)", Some(admin), "/profile"),
        Page {
            reach: Reach::DeleteWithoutScript,
            ..page("confirmation page", Some(&dave), format!("/requests/{}", d.request_of(dave_machine).await))
        },
        page("a user's page", Some(admin), format!("/admin/users/{}", a.id)),
    ]
}

// Posts the delete form as a browser without JavaScript would: no dialog, no `confirmed` field.
const DELETE_WITHOUT_SCRIPT: &str = r#"(() => {
  const f = [...document.querySelectorAll("form[action$='/action']")].find(f =>
    new FormData(f).get("action") === "delete" || f.querySelector("button[name=action][value=delete]"));
  if (!f) return "no delete form";
  if (new FormData(f).get("action") !== "delete") {
    const i = document.createElement("input");
    i.type = "hidden"; i.name = "action"; i.value = "delete"; f.appendChild(i);
  }
  f.submit(); return "ok";
})()"#;

/// Opens `p` in `browser` as its person; returns what is wrong with the way there, if anything.
async fn reach(browser: &mut Chromium, base: &str, p: &Page) -> Option<String> {
    // Leave the previous page first: a live page's stream would meet the cleared session with a 401.
    browser.goto("about:blank").await;
    browser.call("Network.clearBrowserCookies", json!({})).await;
    if let Some(s) = &p.session {
        browser.set_session(base, s).await;
    }
    let status = browser.goto(&format!("{base}{}", p.path)).await;
    if status != p.status {
        return Some(format!("answered {status}, expected {}", p.status));
    }
    match p.reach {
        Reach::Open => None,
        Reach::SubmitEmptyRequest => {
            for field in ["hostname", "cores", "memory_mib", "disk_gib", "purpose"] {
                browser.type_into(&format!("[name={field}]"), "").await;
            }
            browser.click_and_wait("#request-form button[type=submit]").await;
            let errors = browser.count(".error, [aria-invalid=true]").await;
            (errors == 0).then(|| "the empty request form showed no error".to_owned())
        }
        Reach::DeleteWithoutScript => {
            let loads = browser.eval(DELETE_WITHOUT_SCRIPT).await;
            if loads != "ok" {
                return Some(format!("cannot post the delete form: {loads}"));
            }
            browser.wait_for("document.readyState === 'complete' && !document.querySelector('form[data-confirm]') ? 'ok' : 'wait'", Duration::from_secs(10)).await;
            let confirm = browser.count("form input[name=confirmed][value=yes]").await;
            (confirm == 0)
                .then(|| "deleting without JavaScript showed no confirmation page (no confirmed=yes form)".to_owned())
        }
    }
}

async fn sweep(viewport: Viewport) {
    let Some(axe) = Axe::load() else { return };
    let (Some(xvnc), Some(shell)) = (Xvnc::start(), Shell::start()) else { return };
    let Some(mut browser) = Chromium::start().await else { return };
    // Real consoles behind the simulator, so the console pages show a connected screen.
    let d = desk_on(SimConfig {
        vnc_backend: Some(([127, 0, 0, 1], xvnc.port).into()),
        vnc_password_file: Some(xvnc.password_file.clone()),
        term_backend: Some(([127, 0, 0, 1], shell.port).into()),
        ..SimConfig::for_tests()
    })
    .await;
    let pages = every_page(&d).await;
    browser.viewport(viewport).await;
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut backgrounds = Vec::new();
    for scheme in [Scheme::Light, Scheme::Dark] {
        browser.scheme(scheme).await;
        browser.goto(&d.url("/login")).await;
        backgrounds.push(browser.eval("getComputedStyle(document.body).backgroundColor").await);
        browser.take_problems();
        for p in &pages {
            let at = format!("{} {scheme:?} · {} ({})", viewport.name(), p.label, p.path);
            if let Some(wrong) = reach(&mut browser, &d.app.address, p).await {
                failures.push(format!("{at}: {wrong}"));
            }
            for v in axe.check(&mut browser).await {
                failures.push(format!("{at}: {v}"));
            }
            // Late reports (a deferred script's failure) belong to this page, not the next.
            tokio::time::sleep(Duration::from_millis(200)).await;
            failures.extend(browser.take_problems().into_iter().map(|e| format!("{at}: {e}")));
            checked += 1;
        }
    }
    assert_ne!(backgrounds[0], backgrounds[1], "the dark scheme did not change the page's background");
    eprintln!("axe-core checked {checked} pages on the {}: {} findings", viewport.name(), failures.len());
    assert!(failures.is_empty(), "{} findings:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn every_page_passes_axe_in_both_themes_on_a_desktop() {
    sweep(Viewport::Desktop).await;
}

#[tokio::test]
async fn every_page_passes_axe_in_both_themes_on_a_phone() {
    sweep(Viewport::Phone).await;
}
