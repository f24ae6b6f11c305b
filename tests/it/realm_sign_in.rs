//! Signing in with a Proxmox VE realm account through the real server and the PVE simulator: the realms
//! on the sign-in page, accounts made and reused, roles from PVE groups, and every refusal.

use std::time::{Duration, Instant};

use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::access::{AccessConfig, RealmKind, SimRealm};
use proxdesk::integrations::pve::sim::{SimConfig, SimHandle};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::console_fixtures::app_on;
use crate::helpers::{Browser, TestApp, spawn_app_with};
use crate::provision::{TOKEN_ID, TOKEN_SECRET};

pub const ALICE_PW: &str = "alice-at-pve-pw";

/// The simulated cluster's people: `alice@pve` (in group `ops`), `bob@corp` (an LDAP realm, the
/// default one), `carol@pam`, and an OpenID realm `sso` that takes no passwords.
pub fn cluster() -> SimConfig {
    let mut sim = SimConfig::for_tests();
    seed(&mut sim.access);
    sim
}

fn seed(a: &mut AccessConfig) {
    let mut corp = SimRealm::new("corp", RealmKind::Ldap);
    corp.comment = Some("Staff directory".into());
    corp.default = true;
    a.realm(corp)
        .realm(SimRealm::new("sso", RealmKind::OpenId))
        .user("alice@pve", ALICE_PW)
        .user("bob@corp", "bob-at-corp-pw")
        .user("carol@pam", "carol-at-pam-pw")
        .group("ops", &["alice@pve"]);
    let alice = a.user_mut("alice@pve").unwrap();
    alice.firstname = Some("Alice".into());
    alice.lastname = Some("Liddell".into());
    alice.email = Some("alice@example.org".into());
}

/// The app with realm sign-in on and `ops` as the admin group, on `sim`.
pub async fn realm_app(sim: SimConfig) -> (TestApp, SimHandle) {
    app_on(sim, |raw, _| {
        raw.set("pve_realm_login", "true");
        raw.set("pve_admin_groups", "ops");
    })
    .await
}

/// Posts the sign-in form with `method`.
pub async fn sign_in(b: &Browser, method: &str, username: &str, password: &str) -> reqwest::Response {
    b.post_form("/login", "/login", &[("method", method), ("username", username), ("password", password)]).await
}

async fn account(app: &TestApp, username: &str) -> Option<entities::user::Model> {
    entities::user::Entity::find().filter(entities::user::Column::Username.eq(username)).one(&app.db).await.unwrap()
}

#[tokio::test]
async fn the_sign_in_page_offers_the_password_realms_with_the_default_selected() {
    let (app, _sim) = realm_app(cluster()).await;
    let html = app.browser().get("/login").await.text().await.unwrap();
    assert!(html.contains(r#"<option value="local">"#), "{html}");
    assert!(html.contains(r#"<option value="pve:pam">Linux PAM standard authentication (pam)</option>"#), "{html}");
    assert!(html.contains(r#"<option value="pve:pve">Proxmox VE authentication server (pve)</option>"#), "{html}");
    assert!(html.contains(r#"<option value="pve:corp" selected>Staff directory (corp)</option>"#), "{html}");
    assert!(!html.contains("pve:sso"), "an OpenID realm takes no password: {html}");
}

#[tokio::test]
async fn the_allow_list_and_the_configured_default_decide_what_is_offered() {
    let (app, _sim) = app_on(cluster(), |raw, _| {
        raw.set("pve_realm_login", "true");
        raw.set("pve_realms", "pve, corp");
        raw.set("pve_default_realm", "pve");
    })
    .await;
    let html = app.browser().get("/login").await.text().await.unwrap();
    assert!(html.contains(r#"<option value="pve:pve" selected>"#), "{html}");
    assert!(html.contains(r#"<option value="pve:corp">"#), "{html}");
    assert!(!html.contains("pve:pam"), "{html}");
    let b = app.browser();
    let r = sign_in(&b, "pve:pam", "carol", "carol-at-pam-pw").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "a realm not offered here is refused");
}

#[tokio::test]
async fn the_sign_in_page_works_for_local_accounts_while_pve_hangs() {
    // A "PVE" that accepts connections and never answers.
    let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api2/json", hung.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = vec![];
        while let Ok((socket, _)) = hung.accept().await {
            open.push(socket);
        }
    });
    let app = spawn_app_with(|raw| {
        raw.set("pve_url", url);
        raw.set("pve_token", format!("{TOKEN_ID}={TOKEN_SECRET}"));
        raw.set("pve_realm_login", "true");
        raw.set("workers", "false");
    })
    .await;
    app.user("chief", Role::Admin).await;
    let started = Instant::now();
    let html = app.browser().get("/login").await.text().await.unwrap();
    // PVE's realm list never comes: the page does not wait for it beyond a short bound.
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(html.contains(r#"name="method" value="local""#), "only local accounts: {html}");
    assert!(!html.contains("pve:"), "{html}");
    app.logged_in("chief", "chief-password-123").await;
    held.abort();
}

#[tokio::test]
async fn a_first_sign_in_creates_the_account_and_the_next_reuses_it() {
    let (app, _sim) = realm_app(cluster()).await;
    let r = sign_in(&app.browser(), "pve:pve", "alice", ALICE_PW).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let first = account(&app, "alice@pve").await.expect("account alice@pve");
    assert_eq!(first.display_name.as_deref(), Some("Alice Liddell"));
    assert_eq!(first.email, None, "PVE does not verify e-mail addresses");
    assert!(first.password_hash.is_empty(), "the account has no proxdesk password");
    let r = sign_in(&app.browser(), "pve:pve", "alice", ALICE_PW).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let users = entities::user::Entity::find().count(&app.db).await.unwrap();
    assert_eq!(users, 1, "the second sign-in reuses the account");
    let identities = entities::identity::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(identities.len(), 1);
    let id = &identities[0];
    assert_eq!((id.provider.as_str(), id.issuer.as_str(), id.subject.as_str()), ("pve", "pve", "alice@pve"));
    assert_eq!(id.user_id, first.id);
    assert!(!id.email_verified);
    let sessions = entities::session::Entity::find().all(&app.db).await.unwrap();
    assert!(sessions.iter().all(|s| s.method == "pve" && s.user_id == first.id), "{sessions:?}");
}

#[tokio::test]
async fn pve_groups_make_admins_and_leaving_the_group_makes_a_user_again() {
    let (app, sim) = realm_app(cluster()).await;
    let b = app.browser();
    let r = sign_in(&b, "pve:pve", "alice", ALICE_PW).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/admin", "a member of ops lands in the admin workspace");
    assert_eq!(account(&app, "alice@pve").await.unwrap().role, "admin");
    sim.with_access(|a| a.groups.iter_mut().for_each(|g| g.members.retain(|m| m != "alice@pve")));
    let r = sign_in(&app.browser(), "pve:pve", "alice", ALICE_PW).await;
    assert_eq!(r.headers()["location"], "/");
    assert_eq!(account(&app, "alice@pve").await.unwrap().role, "user");
    // bob@corp is in no admin group: a user from the start, signed in through the LDAP realm.
    let r = sign_in(&app.browser(), "pve:corp", "bob", "bob-at-corp-pw").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(account(&app, "bob@corp").await.unwrap().role, "user");
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_with_what_was_typed() {
    let (app, _sim) = realm_app(cluster()).await;
    let r = sign_in(&app.browser(), "pve:pve", "alice", "not-her-password").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"value="alice""#), "the name is kept: {html}");
    assert!(html.contains(r#"<option value="pve:pve" selected>"#), "the realm is kept: {html}");
    assert!(!html.contains("not-her-password"));
    assert!(account(&app, "alice@pve").await.is_none());
    for method in ["pve:sso", "pve:nowhere"] {
        let r = sign_in(&app.browser(), method, "alice", ALICE_PW).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{method}");
        assert!(r.text().await.unwrap().contains(r#"value="alice""#));
    }
}

#[tokio::test]
async fn a_name_typed_with_its_realm_signs_in_as_the_same_account() {
    let (app, _sim) = realm_app(cluster()).await;
    let r = sign_in(&app.browser(), "pve:pve", " alice@pve ", ALICE_PW).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(account(&app, "alice@pve").await.is_some());
    assert!(account(&app, "alice@pve@pve").await.is_none());
}

#[tokio::test]
async fn disabled_and_expired_pve_users_are_refused() {
    let (app, sim) = realm_app(cluster()).await;
    sim.with_access(|a| a.user_mut("alice@pve").unwrap().enable = false);
    let r = sign_in(&app.browser(), "pve:pve", "alice", ALICE_PW).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    sim.with_access(|a| {
        let alice = a.user_mut("alice@pve").unwrap();
        alice.enable = true;
        alice.expire = chrono::Utc::now().timestamp() - 60;
    });
    let r = sign_in(&app.browser(), "pve:pve", "alice", ALICE_PW).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(account(&app, "alice@pve").await.is_none());
}

#[tokio::test]
async fn a_pve_that_is_down_is_named_and_local_admins_still_sign_in() {
    let (app, sim) = realm_app(cluster()).await;
    app.user("chief", Role::Admin).await;
    // The realm list is known from before PVE went away.
    assert!(app.browser().get("/login").await.text().await.unwrap().contains("pve:pve"));
    sim.stop();
    let r = sign_in(&app.browser(), "pve:pve", "alice", ALICE_PW).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = r.text().await.unwrap();
    assert!(html.contains(&proxdesk::http::i18n::t("en", "login.provider_down")), "{html}");
    assert!(html.contains(r#"value="alice""#));
    app.logged_in("chief", "chief-password-123").await;
}

#[tokio::test]
async fn repeated_wrong_passwords_are_throttled_even_before_a_right_one() {
    let (app, _sim) = realm_app(cluster()).await;
    for _ in 0..proxdesk::domain::throttle::PAIR.free {
        let r = sign_in(&app.browser(), "pve:pve", "alice", "guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // The same account typed with its realm counts as the same account.
    let r = sign_in(&app.browser(), "pve:pve", "alice@pve", ALICE_PW).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(account(&app, "alice@pve").await.is_none());
    // Another PVE user is not held up by alice's failures.
    let r = sign_in(&app.browser(), "pve:pam", "carol", "carol-at-pam-pw").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}
