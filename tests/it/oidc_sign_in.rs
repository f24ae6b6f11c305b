//! Signing in through a real OpenID provider (npm `oidc-provider`), driven over HTTP as a browser
//! would: redirects, the provider's login and consent forms, cookies. Then everything a callback must
//! refuse, the groups claim deciding roles, linking by verified e-mail only, and a provider that is down.

use std::time::Instant;

use chrono::Utc;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

use entities::{audit_entry, identity, pending_sign_in, session, user};
use proxdesk::domain::roles::Role;

use crate::helpers::{TestApp, spawn_app_with};
use crate::oidc_provider::{
    OidcProvider, cancel_at_provider, configure, location, node, person, reserve_port, walk_to_callback,
};

const ADMINS: &str = "proxdesk-admins";

/// proxdesk configured for a provider that starts afterwards with `accounts`.
async fn sso(accounts: serde_json::Value, claims_in_id_token: bool) -> Option<(TestApp, OidcProvider)> {
    let node = node()?;
    let port = reserve_port();
    let app = spawn_app_with(|raw| configure(raw, port, ADMINS)).await;
    let provider = OidcProvider::start(&node, port, &app.address, accounts, claims_in_id_token).await;
    Some((app, provider))
}

fn alice() -> serde_json::Value {
    json!({"alice": person("alice", "alice@example.org", true, &["students"])})
}

async fn account(app: &TestApp, name: &str) -> Option<user::Model> {
    user::Entity::find().filter(user::Column::Username.eq(name)).one(&app.db).await.unwrap()
}

async fn user_count(app: &TestApp) -> u64 {
    user::Entity::find().count(&app.db).await.unwrap()
}

/// The state a callback URL carries.
fn state_of(callback: &str) -> String {
    let query = callback.split_once('?').unwrap().1;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap()
        .into_iter()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
}

/// Whether `browser` is signed in to proxdesk (the dashboard answers instead of the login redirect).
async fn signed_in(browser: &crate::helpers::Browser) -> bool {
    browser.get("/").await.status() == StatusCode::OK
}

fn text(key: &str) -> String {
    let en = include_str!("../../src/http/i18n/en.txt");
    let line = en.lines().find(|l| l.starts_with(&format!("{key} = "))).unwrap_or_else(|| panic!("no {key}"));
    line.split_once(" = ").unwrap().1.replace('\'', "&#x27;")
}

#[tokio::test]
async fn signing_in_through_the_provider_opens_a_session_and_signing_out_ends_it_there_too() {
    let Some((app, provider)) = sso(alice(), true).await else { return };
    let login = app.browser().get("/login").await.text().await.unwrap();
    assert!(login.contains("Example SSO") && login.contains("href=\"/login/oidc\""), "no SSO button: {login}");

    // What proxdesk asks the provider for: the code flow with PKCE S256, a state and a nonce.
    let r = app.browser().get("/login/oidc?next=/requests/new").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = location(&r, &app.address);
    assert!(to.starts_with(&format!("{}/auth?", provider.issuer)), "redirected to {to}");
    for part in ["response_type=code", "code_challenge_method=S256", "code_challenge=", "nonce=", "state=", "groups"] {
        assert!(to.contains(part), "{part} missing from {to}");
    }
    let cookie = r.headers().get_all("set-cookie").iter().map(|c| c.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    let state_cookie = cookie.iter().find(|c| c.starts_with("proxdesk_oidc_state=")).expect("a state cookie");
    assert!(state_cookie.contains("HttpOnly") && state_cookie.contains("SameSite=Lax"), "{state_cookie}");
    assert!(state_cookie.contains(&state_of(&to)), "the cookie holds another state than the redirect");

    let b = app.browser();
    let callback = walk_to_callback(&b.client, &app.address, "alice").await;
    assert!(callback.contains("code="), "no code in {callback}");
    let r = b.client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r, &app.address), format!("{}/", app.address), "a user lands on the dashboard");
    let dashboard = b.get("/").await.text().await.unwrap();
    assert!(dashboard.contains("alice"), "the dashboard does not name alice");

    let alice = account(&app, "alice").await.expect("an account made on the first sign-in");
    assert_eq!((alice.role.as_str(), alice.email.as_deref()), ("user", Some("alice@example.org")));
    assert_eq!(alice.display_name.as_deref(), Some("alice Example"));
    assert!(alice.password_hash.is_empty(), "an account from an outside identity has no password");
    let linked = identity::Entity::find().filter(identity::Column::UserId.eq(alice.id)).one(&app.db).await.unwrap();
    let linked = linked.expect("the identity is linked");
    assert_eq!(
        (linked.provider.as_str(), linked.issuer.as_str(), linked.subject.as_str()),
        ("oidc", provider.issuer.as_str(), "alice")
    );
    let sessions = session::Entity::find().filter(session::Column::UserId.eq(alice.id)).all(&app.db).await.unwrap();
    assert_eq!(sessions.iter().map(|s| s.method.as_str()).collect::<Vec<_>>(), ["oidc"]);

    // Signing out ends the proxdesk session and sends the browser to the provider's end-session
    // endpoint with the ID token as hint, which sends it back to the sign-in page.
    let r = b.post_form("/", "/logout", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let end = location(&r, &app.address);
    assert!(end.starts_with(&format!("{}/session/end?", provider.issuer)), "signed out to {end}");
    assert!(end.contains("id_token_hint=ey"), "no ID token hint in {end}");
    let back = format!("{}/login", app.address);
    let back_param = serde_urlencoded::to_string([("post_logout_redirect_uri", &back)]).unwrap();
    assert!(end.contains(&back_param), "no way back to proxdesk in {end}");
    assert!(!signed_in(&b).await, "the proxdesk session outlived the sign-out");
    assert_eq!(session::Entity::find().filter(session::Column::UserId.eq(alice.id)).count(&app.db).await.unwrap(), 0);
    let page = b.client.get(&end).send().await.unwrap().text().await.unwrap();
    let xsrf = page.split("name=\"xsrf\" value=\"").nth(1).and_then(|s| s.split('"').next()).expect("the confirm form");
    let confirm = format!("{}/session/end/confirm", provider.issuer);
    let r = b.client.post(confirm).form(&[("xsrf", xsrf), ("logout", "yes")]).send().await.unwrap();
    assert_eq!(location(&r, &provider.issuer), back, "the provider did not send the browser back to proxdesk");
}

#[tokio::test]
async fn a_callback_needs_this_browsers_fresh_unused_state() {
    let Some((app, _provider)) = sso(alice(), true).await else { return };
    let other_browser = text("login.oidc_other_browser");
    let expired = text("login.oidc_expired");

    // Someone else's callback (login CSRF): refused, and it spends nothing of the real sign-in.
    let a = app.browser();
    let callback = walk_to_callback(&a.client, &app.address, "alice").await;
    let r = app.browser().client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains(&other_browser));
    let r = a.client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the browser that started it was refused after the other");

    // The same callback again, even with the state cookie: the state was taken.
    let replay = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let with_cookie = format!("proxdesk_oidc_state={}", state_of(&callback));
    let r = replay.get(&callback).header(COOKIE, with_cookie).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains(&expired), "a replayed state was not called spent");

    // A state past its ten minutes.
    let late = app.browser();
    let callback = walk_to_callback(&late.client, &app.address, "alice").await;
    for row in pending_sign_in::Entity::find().all(&app.db).await.unwrap() {
        let mut row: pending_sign_in::ActiveModel = row.into();
        row.expires_at = Set(Utc::now() - chrono::Duration::minutes(1));
        row.update(&app.db).await.unwrap();
    }
    let r = late.client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains(&expired));
    assert!(!signed_in(&late).await);
}

#[tokio::test]
async fn cancelling_at_the_provider_brings_back_the_sign_in_page_saying_so() {
    let Some((app, _provider)) = sso(alice(), true).await else { return };
    let b = app.browser();
    let callback = cancel_at_provider(&b.client, &app.address).await;
    assert!(callback.contains("error=access_denied"), "{callback}");
    let r = b.client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let page = r.text().await.unwrap();
    assert!(page.contains(&text("login.oidc_cancelled")), "{page}");
    assert!(page.contains("name=\"password\""), "the sign-in form is not offered again");
    assert_eq!(user_count(&app).await, 0);
    assert_eq!(pending_sign_in::Entity::find().count(&app.db).await.unwrap(), 0, "the cancelled sign-in is kept");
}

#[tokio::test]
async fn id_tokens_proxdesk_must_not_accept_are_refused_and_a_rotated_key_is_fetched() {
    let Some((app, mut provider)) = sso(alice(), true).await else { return };
    let sign_in = async |app: &TestApp| {
        let b = app.browser();
        let callback = walk_to_callback(&b.client, &app.address, "alice").await;
        let r = b.client.get(&callback).send().await.unwrap();
        let status = r.status();
        (status, r.text().await.unwrap(), signed_in(&b).await)
    };
    let (status, _, ok) = sign_in(&app).await;
    assert!(status == StatusCode::SEE_OTHER && ok);
    assert_eq!(provider.stats().await["jwks"], 1);

    // The provider rotates its key: the unknown `kid` makes proxdesk fetch the key set again.
    provider.tamper(Some("rotate"));
    let (status, _, ok) = sign_in(&app).await;
    assert!(status == StatusCode::SEE_OTHER && ok, "a token signed with the rotated key was refused");
    assert_eq!(provider.stats().await["jwks"], 2);

    let refused = text("login.oidc_refused");
    for mode in ["audience", "azp", "nonce", "expired", "issuer", "foreign-key", "empty-sub", "long-sub"] {
        provider.tamper(Some(mode));
        let (status, page, ok) = sign_in(&app).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{mode}: {page}");
        assert!(page.contains(&refused), "{mode}: the page does not say the answer was refused");
        assert!(!ok, "{mode}: signed in");
    }
    // An unknown key right after a refresh fetches nothing more (a minute between refreshes).
    assert_eq!(provider.stats().await["jwks"], 2);
    assert_eq!(user_count(&app).await, 1);
    let alice = account(&app, "alice").await.unwrap();
    assert_eq!(session::Entity::find().filter(session::Column::UserId.eq(alice.id)).count(&app.db).await.unwrap(), 2);
}

#[tokio::test]
async fn the_groups_claim_makes_admins_and_dropping_the_group_demotes() {
    let accounts = json!({"bob": person("bob", "bob@example.org", true, &["staff", ADMINS])});
    let Some((app, mut provider)) = sso(accounts, true).await else { return };
    let b = app.browser();
    let callback = walk_to_callback(&b.client, &app.address, "bob").await;
    let r = b.client.get(&callback).send().await.unwrap();
    assert_eq!(location(&r, &app.address), format!("{}/admin", app.address), "an admin lands on the admin home");
    assert_eq!(account(&app, "bob").await.unwrap().role, "admin");

    provider.set_account("bob", person("bob", "bob@example.org", true, &["staff"]));
    // The same browser: the provider remembers bob and asks nothing.
    let callback = walk_to_callback(&b.client, &app.address, "bob").await;
    let r = b.client.get(&callback).send().await.unwrap();
    assert_eq!(location(&r, &app.address), format!("{}/", app.address));
    let bob = account(&app, "bob").await.unwrap();
    assert_eq!(bob.role, "user", "still an admin without the group");
    let changes = audit_entry::Entity::find()
        .filter(audit_entry::Column::Action.eq("user.role_changed"))
        .filter(audit_entry::Column::SubjectId.eq(bob.id))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(changes, 1, "the demotion is not audited");
    assert_eq!(b.get("/admin").await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn groups_and_email_come_from_userinfo_when_the_id_token_lacks_them() {
    let accounts = json!({"carol": person("carol", "carol@example.org", true, &[ADMINS])});
    let Some((app, provider)) = sso(accounts, false).await else { return };
    let b = app.browser();
    let callback = walk_to_callback(&b.client, &app.address, "carol").await;
    let r = b.client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let carol = account(&app, "carol").await.expect("named by preferred_username from userinfo");
    assert_eq!((carol.role.as_str(), carol.email.as_deref()), ("admin", Some("carol@example.org")));
    assert_eq!(provider.stats().await["userinfo"], 1);
}

#[tokio::test]
async fn a_verified_email_links_the_local_account_and_an_unverified_one_does_not() {
    let accounts = json!({
        "d.smith": person("d.smith", "dana@example.org", true, &[]),
        "mallory": person("mallory", "dana@example.org", false, &[]),
    });
    let Some((app, _provider)) = sso(accounts, true).await else { return };
    let (dana, _) = app.user("dana", Role::User).await;
    let mut row: user::ActiveModel = user::Entity::find_by_id(dana.id).one(&app.db).await.unwrap().unwrap().into();
    row.email = Set(Some("dana@example.org".into()));
    row.update(&app.db).await.unwrap();

    for login in ["d.smith", "mallory"] {
        let b = app.browser();
        let callback = walk_to_callback(&b.client, &app.address, login).await;
        assert_eq!(b.client.get(&callback).send().await.unwrap().status(), StatusCode::SEE_OTHER, "{login}");
    }
    let owner = async |subject: &str| {
        let found = identity::Entity::find().filter(identity::Column::Subject.eq(subject)).one(&app.db).await.unwrap();
        found.unwrap().user_id
    };
    assert_eq!(owner("d.smith").await, dana.id, "the verified address did not link dana's account");
    let mallory = account(&app, "mallory").await.expect("an unverified address makes a new account");
    assert_eq!(owner("mallory").await, mallory.id);
    assert_eq!(mallory.email, None, "an unverified address was kept on the account");
    assert_eq!(user_count(&app).await, 2);
}

#[tokio::test]
async fn a_provider_that_is_down_gives_the_503_page_and_local_accounts_still_work() {
    let Some(node) = node() else { return };
    let port = reserve_port();
    // Down at start: proxdesk starts all the same.
    let app = spawn_app_with(|raw| configure(raw, port, ADMINS)).await;
    let down = text("login.provider_down");
    let r = app.browser().get("/login/oidc").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains(&down));
    let (_, password) = app.user("erin", Role::User).await;
    assert!(signed_in(&app.logged_in("erin", &password).await).await);

    // Down between the redirect and the way back (discovery kept, the token endpoint gone).
    let mut provider = OidcProvider::start(&node, port, &app.address, alice(), true).await;
    let b = app.browser();
    let callback = walk_to_callback(&b.client, &app.address, "alice").await;
    provider.stop();
    let r = b.client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains(&down));
    assert!(!signed_in(&b).await);
}

/// Not a timed test: prints the figures of the whole flow (proxdesk's redirect, the provider's login
/// and consent, the callback with code exchange and ID-token validation) with discovery kept.
#[tokio::test]
async fn the_full_flow_latency_is_reported() {
    let Some((app, provider)) = sso(alice(), true).await else { return };
    // The harness read the discovery document to see the provider up.
    let before = provider.stats().await["discovery"].as_u64().unwrap();
    let first = app.browser();
    let callback = walk_to_callback(&first.client, &app.address, "alice").await;
    assert_eq!(first.client.get(&callback).send().await.unwrap().status(), StatusCode::SEE_OTHER);
    let mut times = Vec::new();
    for _ in 0..40 {
        let b = app.browser();
        let started = Instant::now();
        let callback = walk_to_callback(&b.client, &app.address, "alice").await;
        let r = b.client.get(&callback).send().await.unwrap();
        times.push(started.elapsed());
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert!(r.headers().get(LOCATION).is_some());
    }
    times.sort();
    let ms = |i: usize| times[i].as_secs_f64() * 1000.0;
    println!(
        "OIDC full flow with discovery kept, {} sign-ins: p50 {:.1} ms, p99 {:.1} ms (max {:.1} ms)",
        times.len(),
        ms(times.len() / 2),
        ms((times.len() * 99).div_ceil(100) - 1),
        ms(times.len() - 1)
    );
    let fetched = provider.stats().await["discovery"].as_u64().unwrap() - before;
    assert_eq!(fetched, 1, "proxdesk fetched discovery more than once");
}
