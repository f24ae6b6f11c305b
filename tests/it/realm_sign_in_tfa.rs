//! Realm sign-in, continued: the second factor of PVE accounts that have one, PVE's failure delay not
//! holding up anyone else, and nothing secret in the logs or the audit trail.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proxdesk::integrations::pve::sim::access::totp_code;
use reqwest::StatusCode;
use sea_orm::EntityTrait;

use crate::helpers::{Browser, TestApp};
use crate::realm_sign_in::{ALICE_PW, cluster, realm_app, sign_in};

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn pending_in(html: &str) -> String {
    let start = html.find(r#"name="pending" value=""#).unwrap_or_else(|| panic!("no pending field: {html}"));
    let rest = &html[start + r#"name="pending" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn answer(b: &Browser, pending: &str, code: &str) -> reqwest::Response {
    b.post_form("/login", "/login/second-factor", &[("pending", pending), ("code", code), ("next", "")]).await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A code that is none of the codes PVE accepts around now.
fn wrong_code() -> String {
    let near: Vec<String> = [-30, 0, 30, 60].iter().map(|d| totp_code(SECRET, now() + d).unwrap()).collect();
    (0..10).map(|d| d.to_string().repeat(6)).find(|c| !near.contains(c)).unwrap()
}

async fn accounts(app: &TestApp) -> usize {
    entities::user::Entity::find().all(&app.db).await.unwrap().len()
}

#[tokio::test]
async fn a_second_factor_is_asked_for_and_each_pending_sign_in_is_used_once() {
    let (app, sim) = realm_app(cluster()).await;
    sim.with_access(|a| a.user_mut("alice@pve").unwrap().totp = Some(SECRET.into()));
    let b = app.browser();
    let r = sign_in(&b, "pve:pve", "alice", ALICE_PW).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"action="/login/second-factor""#), "{html}");
    assert!(html.contains(r#"autocomplete="one-time-code""#), "{html}");
    assert!(!html.contains("PVE:"), "the half-ticket never reaches the browser: {html}");
    let first = pending_in(&html);
    assert_eq!(accounts(&app).await, 0, "nobody is signed in before the second factor");

    let r = answer(&b, &first, &wrong_code()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a wrong code asks again");
    let html = r.text().await.unwrap();
    assert!(html.contains(&proxdesk::http::i18n::t("en", "login.second_factor_wrong")), "{html}");
    let second = pending_in(&html);
    assert_ne!(first, second);

    let code = totp_code(SECRET, now()).unwrap();
    let r = answer(&b, &first, &code).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "a pending sign-in is used once");
    assert!(r.text().await.unwrap().contains(&proxdesk::http::i18n::t("en", "login.second_factor_expired")));

    let r = answer(&b, &second, &code).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(accounts(&app).await, 1);
    let r = answer(&app.browser(), &second, &code).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "a replayed pending sign-in is refused");
    // Signed in: the browser reaches its dashboard.
    assert_eq!(b.get("/").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_garbled_or_forged_pending_sign_in_starts_over() {
    let (app, _sim) = realm_app(cluster()).await;
    let r = answer(&app.browser(), "made-up-token", "123456").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains(r#"action="/login""#), "back on the sign-in page");
}

#[tokio::test]
async fn pves_failure_delay_does_not_hold_up_other_sign_ins() {
    let mut sim = cluster();
    sim.auth_failure_delay = Duration::from_secs(1);
    let (app, _sim) = realm_app(sim).await;
    let (wrong, right) = (app.browser(), app.browser());
    // Both pages first, so both posts leave together.
    let (w_csrf, r_csrf) = (wrong.csrf("/login").await, right.csrf("/login").await);
    let post = |b: &Browser, password: &'static str, csrf: String| {
        let fields: Vec<(String, String)> = [("method", "pve:pve"), ("username", "alice"), ("password", password)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([("csrf".to_string(), csrf)])
            .collect();
        let client = b.client.clone();
        let url = format!("{}/login", b.base);
        async move {
            let started = Instant::now();
            let status = client.post(url).form(&fields).send().await.unwrap().status();
            (status, started.elapsed())
        }
    };
    let ((w_status, w_took), (r_status, r_took)) =
        tokio::join!(post(&wrong, "not-her-password", w_csrf), post(&right, ALICE_PW, r_csrf));
    assert_eq!(w_status, StatusCode::UNAUTHORIZED);
    assert_eq!(r_status, StatusCode::SEE_OTHER);
    assert!(w_took >= Duration::from_secs(1), "PVE pads a refusal: {w_took:?}");
    assert!(r_took + Duration::from_millis(500) < w_took, "right {r_took:?}, wrong {w_took:?}");
}

/// Everything logged while it is held, at debug level and above.
struct Captured {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Captures this thread's events (a `#[tokio::test]` runs the server and the simulator on it).
    fn start() -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        Self { buf, _guard: tracing::subscriber::set_default(subscriber) }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn no_password_ticket_or_code_is_logged_or_audited() {
    let logs = Captured::start();
    let (app, sim) = realm_app(cluster()).await;
    let r = sign_in(&app.browser(), "pve:pve", "alice", "wrong-secret-pw").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = sign_in(&app.browser(), "pve:pve", "alice", ALICE_PW).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    sim.with_access(|a| a.user_mut("alice@pve").unwrap().totp = Some(SECRET.into()));
    let b = app.browser();
    let html = sign_in(&b, "pve:pve", "alice", ALICE_PW).await.text().await.unwrap();
    let code = totp_code(SECRET, now()).unwrap();
    assert_eq!(answer(&b, &pending_in(&html), &code).await.status(), StatusCode::SEE_OTHER);

    let logged = logs.text();
    assert!(logged.contains("Proxmox VE realm sign-in refused"), "the refusal is logged: {logged}");
    let audit = entities::audit_entry::Entity::find().all(&app.db).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "user.signed_in"), "sign-ins are audited");
    let audited = format!("{audit:?}");
    for secret in [ALICE_PW, "wrong-secret-pw", "PVE:alice@pve", "PVE:!tfa!", &code, SECRET] {
        assert!(!logged.contains(secret), "{secret:?} logged:\n{logged}");
        assert!(!audited.contains(secret), "{secret:?} audited: {audited}");
    }
}
