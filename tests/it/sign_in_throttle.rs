//! Sign-in throttling: attempts are counted before the password is checked (so a burst cannot outrun
//! the count), failures slow the next attempt down instead of locking the account, a guesser elsewhere
//! never keeps the real person out, and forwarding headers count only from a trusted proxy.

use std::time::Duration;

use proxdesk::domain::roles::Role;
use proxdesk::domain::throttle::{ACCOUNT, PAIR};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Client, Response, StatusCode};
use sea_orm::EntityTrait;

use crate::helpers::{Browser, TestApp, spawn_app, spawn_app_with};

const PROXY: &str = "127.0.0.1";

/// A browser whose requests reach proxdesk through the trusted proxy (the test itself) on behalf of `addr`.
fn browser_from(app: &TestApp, addr: &str) -> Browser {
    let mut headers = HeaderMap::new();
    headers.insert("X-Forwarded-For", HeaderValue::from_str(addr).unwrap());
    let client = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap();
    Browser { client, base: app.address.clone() }
}

async fn behind_proxy() -> TestApp {
    spawn_app_with(|raw| raw.set("trusted_proxies", PROXY)).await
}

fn retry_after(r: &Response) -> u64 {
    let value = r.headers().get("retry-after").unwrap_or_else(|| panic!("no Retry-After on {}", r.status()));
    value.to_str().unwrap().parse().unwrap()
}

/// The counted failures of `scope` (`pair:<account>|<address>`, `user:<account>`, `addr:<address>`).
async fn counted(app: &TestApp, scope: &str) -> i64 {
    let row = entities::login_throttle::Entity::find_by_id(scope).one(&app.db).await.unwrap();
    row.map(|r| r.failures).unwrap_or(0)
}

/// `n` wrong passwords for `user` sent at once from one browser: the statuses.
async fn storm(b: &Browser, user: &str, n: usize) -> Vec<StatusCode> {
    let csrf = b.csrf("/login").await;
    let fields: Vec<(String, String)> = [("csrf", csrf.as_str()), ("username", user), ("password", "wrong-password")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sent = (0..n).map(|_| b.post_raw("/login", &fields));
    futures_util::future::join_all(sent).await.into_iter().map(|r| r.status()).collect()
}

async fn guesses_at_once_reach_the_password_check_at_most_the_free_allowance(app: &TestApp) {
    app.user("alice", Role::User).await;
    let statuses = storm(&app.browser(), "alice", 32).await;
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let throttled = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(checked + throttled, 32, "{statuses:?}");
    eprintln!("32 guesses at once: {checked} reached the password check, {throttled} refused with 429");
    // A 401 means the password was checked; each was counted first, none slipped past the count.
    assert!(checked as i64 <= PAIR.free, "{checked} of 32 reached the password check: {statuses:?}");
    assert_eq!(counted(app, "pair:alice|127.0.0.1").await, checked as i64);
}

#[tokio::test]
async fn thirty_two_guesses_at_once_reach_the_password_check_at_most_the_free_allowance() {
    guesses_at_once_reach_the_password_check_at_most_the_free_allowance(&spawn_app().await).await;
}

#[tokio::test]
async fn on_postgresql_too_guesses_at_once_cannot_outrun_the_count() {
    let Some(pg) = crate::pg::PgDb::fresh("throttle").await else { return };
    let url = pg.url.clone();
    {
        let app = spawn_app_with(|raw| raw.set("database_url", url)).await;
        guesses_at_once_reach_the_password_check_at_most_the_free_allowance(&app).await;
        // The success that clears the count, on PostgreSQL's upsert: once the delay is over (the storm
        // itself may have outlasted its first second on a loaded machine, so a 429 here is not certain).
        let b = app.browser();
        let mut r = b.login("alice", "alice-password-123").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            tokio::time::sleep(Duration::from_secs(retry_after(&r)) + Duration::from_millis(50)).await;
            r = b.login("alice", "alice-password-123").await;
        }
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(counted(&app, "pair:alice|127.0.0.1").await, 0, "a success starts the pair over");
        app.db.clone().close().await.ok();
    }
}

#[tokio::test]
async fn a_guesser_elsewhere_keeps_neither_a_user_nor_the_admin_out() {
    let app = behind_proxy().await;
    app.user("alice", Role::User).await;
    app.user("chief", Role::Admin).await;
    let attacker = browser_from(&app, "203.0.113.66");
    for name in ["alice", "chief"] {
        for _ in 0..50 {
            let s = attacker.login(name, "guess").await.status();
            assert!(s == StatusCode::UNAUTHORIZED || s == StatusCode::TOO_MANY_REQUESTS, "{s}");
        }
        let r = attacker.login(name, &format!("{name}-password-123")).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "the guesser's own address waits");
    }
    // Right after, from their own addresses, the real people sign in at once.
    assert_eq!(
        browser_from(&app, "198.51.100.7").login("alice", "alice-password-123").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        browser_from(&app, "198.51.100.8").login("chief", "chief-password-123").await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_guesser_spread_over_many_addresses_holds_the_account_up_by_seconds_only() {
    let app = behind_proxy().await;
    app.user("alice", Role::User).await;
    for i in 0..30 {
        let s = browser_from(&app, &format!("10.66.0.{i}")).login("alice", "guess").await.status();
        assert!(s == StatusCode::UNAUTHORIZED || s == StatusCode::TOO_MANY_REQUESTS, "{s}");
    }
    assert!(counted(&app, "user:alice").await >= ACCOUNT.free, "the account-wide allowance is used up");
    let alice = browser_from(&app, "198.51.100.7");
    let r = alice.login("alice", "alice-password-123").await;
    if r.status() == StatusCode::TOO_MANY_REQUESTS {
        let wait = retry_after(&r);
        assert!(wait * 1000 <= ACCOUNT.max_delay_ms as u64, "alice waits {wait} s");
        tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(50)).await;
        let r = alice.login("alice", "alice-password-123").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    } else {
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn an_untrusted_peers_forwarding_headers_are_ignored() {
    let app = spawn_app().await;
    app.user("alice", Role::User).await;
    let b = app.browser();
    let csrf = b.csrf("/login").await;
    let login = |password: &'static str, forwarded_for: String| {
        b.client
            .post(app.url("/login"))
            .header("X-Forwarded-For", forwarded_for)
            .header("X-Forwarded-Proto", "https")
            .form(&[("username", "alice"), ("password", password), ("csrf", csrf.as_str())])
            .send()
    };
    let r = login("alice-password-123", "203.0.113.1".into()).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    for cookie in r.headers().get_all("set-cookie") {
        let cookie = cookie.to_str().unwrap();
        assert!(!cookie.contains("Secure"), "anyone may send X-Forwarded-Proto: {cookie}");
    }
    // Each guess claims another address: all count against the peer.
    let b = app.browser();
    let csrf = b.csrf("/login").await;
    let login = |password: &'static str, forwarded_for: String| {
        b.client
            .post(app.url("/login"))
            .header("X-Forwarded-For", forwarded_for)
            .form(&[("username", "alice"), ("password", password), ("csrf", csrf.as_str())])
            .send()
    };
    for i in 0..PAIR.free {
        let r = login("guess", format!("203.0.113.{}", 10 + i)).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = login("alice-password-123", "198.51.100.99".into()).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(counted(&app, "pair:alice|127.0.0.1").await, PAIR.free);
    assert_eq!(counted(&app, "addr:203.0.113.10").await, 0);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_counts_and_a_spoofed_one_does_not() {
    let app = behind_proxy().await;
    app.user("alice", Role::User).await;
    // The guesser writes an address of its own; the proxy appends the one it really came from.
    for i in 0..PAIR.free {
        let b = browser_from(&app, &format!("198.51.100.{i}, 203.0.113.66"));
        assert_eq!(b.login("alice", "guess").await.status(), StatusCode::UNAUTHORIZED);
    }
    let same = browser_from(&app, "203.0.113.66");
    assert_eq!(same.login("alice", "alice-password-123").await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(counted(&app, "pair:alice|203.0.113.66").await, PAIR.free);
    assert_eq!(counted(&app, "addr:198.51.100.0").await, 0);
    let other = browser_from(&app, "198.51.100.0");
    assert_eq!(other.login("alice", "alice-password-123").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_delay_grows_and_lets_the_right_password_in_once_it_has_passed() {
    let app = spawn_app().await;
    app.user("alice", Role::User).await;
    let b = app.browser();
    for _ in 0..PAIR.free {
        assert_eq!(b.login("alice", "guess").await.status(), StatusCode::UNAUTHORIZED);
    }
    let r = b.login("alice", "alice-password-123").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&r), 1);
    let html = r.text().await.unwrap();
    assert!(html.contains("Wait 1 s"), "says how long: {html}");
    assert!(html.contains(r#"value="alice""#), "keeps the name typed");
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(b.login("alice", "guess").await.status(), StatusCode::UNAUTHORIZED, "one more try, counted");
    let r = b.login("alice", "alice-password-123").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&r), 2, "the delay doubled");
    tokio::time::sleep(Duration::from_millis(2050)).await;
    assert_eq!(b.login("alice", "alice-password-123").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(counted(&app, "pair:alice|127.0.0.1").await, 0, "a success starts over");
}

#[tokio::test]
async fn the_api_password_change_is_throttled_with_retry_after() {
    let app = spawn_app().await;
    let (alice, pw) = app.user("alice", Role::User).await;
    let token = app.token(&alice).await;
    let change = |current: &str| {
        app.api
            .put(app.url("/api/v1/me/password"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"current_password": current, "new_password": "another-password-1"}))
            .send()
    };
    for _ in 0..PAIR.free {
        assert_eq!(change("guess").await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let r = change(&pw).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&r), 1);
    let problem: serde_json::Value = r.json().await.unwrap();
    assert!(problem["type"].as_str().unwrap().ends_with("throttled"), "{problem}");
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(change(&pw).await.unwrap().status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn scopes_quiet_for_longer_than_every_policy_remembers_are_deleted() {
    use entities::login_throttle::ActiveModel;
    use proxdesk::domain::throttle::FORGOTTEN_AFTER_MS;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let app = spawn_app().await;
    app.user("alice", Role::User).await;
    let now = chrono::Utc::now().timestamp_millis();
    for (scope, last_at) in [("addr:203.0.113.7", now - FORGOTTEN_AFTER_MS - 1000), ("addr:203.0.113.8", now - 1000)] {
        let row = ActiveModel {
            scope: Set(scope.into()),
            failures: Set(3),
            next_at_ms: Set(last_at),
            last_at_ms: Set(last_at),
        };
        row.insert(&app.db).await.unwrap();
    }
    assert_eq!(app.browser().login("alice", "guess").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(counted(&app, "addr:203.0.113.7").await, 0, "a forgotten scope's row is gone");
    assert_eq!(counted(&app, "addr:203.0.113.8").await, 3, "a recent one stays");
    assert_eq!(counted(&app, "pair:alice|127.0.0.1").await, 1);
}
