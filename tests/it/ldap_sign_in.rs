//! Signing in against a real OpenLDAP directory through the sign-in page: LDAPS and StartTLS with a
//! pinned CA, refusals that reveal nothing, LDAP injection, group → role mapping, a directory that is
//! down, e-mail linking, the audit trail, and logs free of passwords.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proxdesk::config::RawSettings;
use proxdesk::domain::roles::Role;
use reqwest::{Response, StatusCode};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::helpers::{Browser, TestApp, spawn_app_with};
use crate::slapd::{BASE_DN, SERVICE_DN, SERVICE_PASSWORD, Slapd};

const WRONG_LOGIN: &str = "Wrong user name or password.";
const PROVIDER_DOWN: &str = "The sign-in service did not answer";

/// An app signing in against `slapd` over LDAPS with its CA pinned, `ops` members being admins.
async fn app_for(slapd: &Slapd, configure: impl FnOnce(&mut RawSettings)) -> TestApp {
    let (url, ca) = (slapd.ldaps_url(), slapd.ca_file.display().to_string());
    spawn_app_with(|raw| {
        raw.set("ldap_url", url);
        raw.set("ldap_ca_file", ca);
        raw.set("ldap_bind_dn", SERVICE_DN);
        raw.set("ldap_bind_password", SERVICE_PASSWORD);
        raw.set("ldap_base_dn", BASE_DN);
        raw.set("ldap_admin_groups", "ops");
        configure(raw);
    })
    .await
}

async fn ldap_login(b: &Browser, name: &str, password: &str) -> Response {
    b.post_form("/login", "/login", &[("method", "ldap"), ("username", name), ("password", password)]).await
}

/// The sign-in was refused with `status`; the page says `words` and keeps the name typed.
async fn assert_refused(r: Response, status: StatusCode, words: &str, typed: &str) {
    assert_eq!(r.status(), status);
    let html = r.text().await.unwrap();
    assert!(html.contains(words), "expected {words:?} in the page");
    let kept = format!("value=\"{}\"", minijinja_escape(typed));
    assert!(html.contains(&kept), "the name typed is kept: {kept}");
    assert!(html.contains("<option value=\"ldap\" selected>"), "the directory stays chosen");
}

fn minijinja_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#x27;")
}

async fn user_named(app: &TestApp, name: &str) -> Option<entities::user::Model> {
    entities::user::Entity::find().filter(entities::user::Column::Username.eq(name)).one(&app.db).await.unwrap()
}

async fn user_count(app: &TestApp) -> usize {
    entities::user::Entity::find().all(&app.db).await.unwrap().len()
}

/// Everything logged on this thread (the test's runtime, the server included) while the guard lives.
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .finish();
        (Logs(buf), tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl Write for LogSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn ldap_sign_in_over_ldaps_with_the_pinned_ca_opens_a_session_as_the_directory_user() {
    let Some(slapd) = Slapd::start() else { return };
    let app = app_for(&slapd, |_| {}).await;
    let b = app.browser();
    let page = b.get("/login").await.text().await.unwrap();
    assert!(page.contains("<option value=\"ldap\">Directory</option>"), "the directory is offered");

    let (logs, guard) = Logs::capture();
    let r = ldap_login(&b, "alice", "alice-Secret-1").await;
    drop(guard);
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/admin", "alice is in ops: an admin");
    assert_eq!(b.get("/admin").await.status(), StatusCode::OK);

    let alice = user_named(&app, "alice").await.expect("account made on first sign-in");
    assert_eq!(alice.role, "admin");
    assert_eq!(alice.display_name.as_deref(), Some("Alice Liddell"));
    assert_eq!(alice.email, None, "the directory's addresses are not trusted unless configured");
    assert_eq!(alice.password_hash, "", "no proxdesk password");
    let identity = entities::identity::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!((identity.user_id, identity.provider.as_str()), (alice.id, "ldap"));
    assert_eq!(identity.issuer, format!("127.0.0.1:{}", slapd.ldaps_port));
    assert_eq!(identity.subject.len(), 36, "entryUUID: {}", identity.subject);
    let session = entities::session::Entity::find().one(&app.db).await.unwrap().unwrap();
    assert_eq!((session.user_id, session.method.as_str()), (alice.id, "ldap"));

    // The audit trail of the first sign-in, in one transaction.
    let actions: Vec<String> = entities::audit_entry::Entity::find()
        .filter(entities::audit_entry::Column::SubjectId.eq(alice.id))
        .filter(entities::audit_entry::Column::SubjectType.eq("user"))
        .order_by_asc(entities::audit_entry::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["user.created", "identity.linked", "user.signed_in"]);

    // A second sign-in finds the same account through the identity.
    let again = app.browser();
    assert_eq!(ldap_login(&again, "alice", "alice-Secret-1").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(user_count(&app).await, 1);
    let logs = logs.text();
    assert!(logs.contains("sign_in"), "the sign-in was logged (captured {} bytes)", logs.len());
    assert!(!logs.contains("alice-Secret-1") && !logs.contains(SERVICE_PASSWORD), "no password in the logs");
}

#[tokio::test]
async fn ldap_sign_in_over_starttls_with_the_pinned_ca() {
    let Some(slapd) = Slapd::start() else { return };
    let url = slapd.ldap_url();
    let app = app_for(&slapd, |raw| {
        raw.set("ldap_url", url);
        raw.set("ldap_starttls", "true");
    })
    .await;
    let b = app.browser();
    let r = ldap_login(&b, "bob", "bob-Secret-2").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/", "bob is in no admin group: a user");
    assert_eq!(b.get("/").await.status(), StatusCode::OK);
    assert_eq!(user_named(&app, "bob").await.unwrap().role, "user");
}

#[tokio::test]
async fn a_directory_certificate_from_another_ca_or_for_another_name_is_unavailable_not_a_wrong_password() {
    let Some(slapd) = Slapd::start() else { return };
    let other = slapd.other_ca_file.display().to_string();
    for starttls in [false, true] {
        let (url, other) = (if starttls { slapd.ldap_url() } else { slapd.ldaps_url() }, other.clone());
        let app = app_for(&slapd, |raw| {
            raw.set("ldap_url", url);
            raw.set("ldap_starttls", starttls.to_string());
            raw.set("ldap_ca_file", other);
        })
        .await;
        let (logs, guard) = Logs::capture();
        let r = ldap_login(&app.browser(), "alice", "alice-Secret-1").await;
        drop(guard);
        assert_refused(r, StatusCode::SERVICE_UNAVAILABLE, PROVIDER_DOWN, "alice").await;
        assert!(logs.text().contains("UnknownIssuer"), "the log says why (starttls {starttls})");
        assert_eq!(user_count(&app).await, 0);
    }
    // The right CA, but the certificate does not name 127.0.0.2.
    let url = format!("ldaps://127.0.0.2:{}", slapd.wrong_name_port);
    let app = app_for(&slapd, |raw| raw.set("ldap_url", url)).await;
    let (logs, guard) = Logs::capture();
    let r = ldap_login(&app.browser(), "alice", "alice-Secret-1").await;
    drop(guard);
    assert_refused(r, StatusCode::SERVICE_UNAVAILABLE, PROVIDER_DOWN, "alice").await;
    assert!(logs.text().contains("not valid for name"), "the host name is checked");
}

#[tokio::test]
async fn wrong_passwords_unknown_names_and_ambiguous_filters_are_refused_alike() {
    let Some(slapd) = Slapd::start() else { return };
    let app = app_for(&slapd, |_| {}).await;
    let b = app.browser();
    let (logs, guard) = Logs::capture();
    let cases = [
        ("alice", "not-her-password", "wrong password"),
        ("zed", "alice-Secret-1", "no entry matches"),
        // Two entries have uid=twin (in ou=people and ou=staff): which one is meant cannot be known.
        ("twin", "twin-Secret-4", "several entries match"),
        ("bob", "", "empty password"),
    ];
    for (name, password, _) in cases {
        assert_refused(ldap_login(&b, name, password).await, StatusCode::UNAUTHORIZED, WRONG_LOGIN, name).await;
    }
    let too_long = "a".repeat(129);
    assert_eq!(ldap_login(&b, &too_long, "x").await.status(), StatusCode::UNAUTHORIZED);
    drop(guard);
    let logs = logs.text();
    for (_, _, reason) in cases {
        assert!(logs.contains(reason), "the log keeps the reason: {reason}");
    }
    assert!(!logs.contains("not-her-password") && !logs.contains("twin-Secret-4"));
    assert_eq!(user_count(&app).await, 0);
    // Each refusal counted against the name typed: five more wrong passwords and alice is throttled.
    for _ in 0..4 {
        assert_eq!(ldap_login(&b, "alice", "nope").await.status(), StatusCode::UNAUTHORIZED);
    }
    let r = ldap_login(&b, "alice", "alice-Secret-1").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "throttled even with the right password");
}

#[tokio::test]
async fn ldap_injection_in_the_name_matches_nobody() {
    let Some(slapd) = Slapd::start() else { return };
    let app = app_for(&slapd, |_| {}).await;
    let b = app.browser();
    let (logs, guard) = Logs::capture();
    // Unescaped, the first two would find exactly alice and let her password in; the others would match
    // everyone.
    let names = ["al*", "alice)(uid=*", "*", "*)(|(objectClass=*", "alice\\"];
    for name in names {
        let r = ldap_login(&b, name, "alice-Secret-1").await;
        assert_refused(r, StatusCode::UNAUTHORIZED, WRONG_LOGIN, name).await;
    }
    drop(guard);
    let logs = logs.text();
    assert_eq!(
        logs.matches("no entry matches the user filter").count(),
        names.len(),
        "each name is searched for literally and matches no entry:\n{logs}"
    );
    assert_eq!(user_count(&app).await, 0);
}

#[tokio::test]
async fn directory_groups_make_admins_and_leaving_the_group_demotes_at_the_next_sign_in() {
    let Some(slapd) = Slapd::start() else { return };
    let app = app_for(&slapd, |_| {}).await;
    let r = ldap_login(&app.browser(), "alice", "alice-Secret-1").await;
    assert_eq!(r.headers()["location"], "/admin");
    let alice = user_named(&app, "alice").await.unwrap();
    assert_eq!(alice.role, Role::Admin.as_str());

    slapd.modify(
        "dn: cn=ops,ou=groups,dc=example,dc=org\nchangetype: modify\ndelete: member\n\
         member: uid=alice,ou=people,dc=example,dc=org\n-\nadd: member\nmember: uid=bob,ou=people,dc=example,dc=org\n",
    );
    let b = app.browser();
    let r = ldap_login(&b, "alice", "alice-Secret-1").await;
    assert_eq!(r.headers()["location"], "/", "no longer in ops");
    assert_eq!(user_named(&app, "alice").await.unwrap().role, "user");
    assert_eq!(b.get("/admin").await.status(), StatusCode::FORBIDDEN);
    let change = entities::audit_entry::Entity::find()
        .filter(entities::audit_entry::Column::Action.eq("user.role_changed"))
        .one(&app.db)
        .await
        .unwrap()
        .expect("the demotion is audited");
    let details: serde_json::Value = serde_json::from_str(&change.details).unwrap();
    assert_eq!(
        (details["from"].as_str(), details["to"].as_str(), details["via"].as_str()),
        (Some("admin"), Some("user"), Some("ldap"))
    );
    assert_eq!(details["groups"], serde_json::json!(["students"]));

    // bob joined ops: an admin from his first sign-in.
    let r = ldap_login(&app.browser(), "bob", "bob-Secret-2").await;
    assert_eq!(r.headers()["location"], "/admin");
}

#[tokio::test]
async fn a_directory_that_is_down_says_so_and_local_admins_still_sign_in() {
    let Some(mut slapd) = Slapd::start() else { return };
    let app = app_for(&slapd, |_| {}).await;
    let (_, admin_password) = app.user("chief", Role::Admin).await;
    slapd.stop();
    let b = app.browser();
    let started = Instant::now();
    let r = ldap_login(&b, "alice", "alice-Secret-1").await;
    assert_refused(r, StatusCode::SERVICE_UNAVAILABLE, PROVIDER_DOWN, "alice").await;
    assert!(started.elapsed() < Duration::from_secs(4), "a refused connection is not waited on");
    let r = b.login("chief", &admin_password).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/admin");
}

#[tokio::test]
async fn a_directory_that_never_answers_times_out_as_unavailable() {
    // Accepts connections and says nothing (a hung server, a firewall swallowing the reply).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let app = spawn_app_with(|raw| {
        raw.set("ldap_url", format!("ldap://127.0.0.1:{port}"));
        raw.set("ldap_bind_dn", SERVICE_DN);
        raw.set("ldap_bind_password", SERVICE_PASSWORD);
        raw.set("ldap_base_dn", BASE_DN);
        raw.set("ldap_timeout_secs", "1");
    })
    .await;
    let started = Instant::now();
    let r = ldap_login(&app.browser(), "alice", "pw").await;
    let took = started.elapsed();
    assert_refused(r, StatusCode::SERVICE_UNAVAILABLE, PROVIDER_DOWN, "alice").await;
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(5), "bounded by the timeout: {took:?}");
    held.abort();
}

#[tokio::test]
async fn a_wrong_service_account_password_is_unavailable_and_logged_as_an_error() {
    let Some(slapd) = Slapd::start() else { return };
    let app = app_for(&slapd, |raw| raw.set("ldap_bind_password", "not-the-service-password")).await;
    let (logs, guard) = Logs::capture();
    let r = ldap_login(&app.browser(), "alice", "alice-Secret-1").await;
    drop(guard);
    assert_refused(r, StatusCode::SERVICE_UNAVAILABLE, PROVIDER_DOWN, "alice").await;
    let logs = logs.text();
    let line = logs.lines().find(|l| l.contains("service account")).expect("logged");
    assert!(line.contains("ERROR") && line.contains(SERVICE_DN), "{line}");
    assert!(!logs.contains("not-the-service-password") && !logs.contains("alice-Secret-1"));
    // Not the person's fault: it does not count against them.
    let counted = entities::login_throttle::Entity::find().all(&app.db).await.unwrap();
    assert!(counted.iter().all(|c| c.failures == 0), "{counted:?}");
}

#[tokio::test]
async fn a_directory_email_links_an_existing_account_only_when_marked_verified() {
    let Some(slapd) = Slapd::start() else { return };
    for verified in [false, true] {
        let app = app_for(&slapd, |raw| raw.set("ldap_email_verified", verified.to_string())).await;
        let (carol, _) = app.user("carol", Role::User).await;
        let mut row: entities::user::ActiveModel =
            entities::user::Entity::find_by_id(carol.id).one(&app.db).await.unwrap().unwrap().into();
        row.email = Set(Some("carol@example.org".into()));
        row.update(&app.db).await.unwrap();

        let r = ldap_login(&app.browser(), "carol", "carol-Secret-3").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let identity = entities::identity::Entity::find().one(&app.db).await.unwrap().unwrap();
        if verified {
            assert_eq!(identity.user_id, carol.id, "linked to the account with that verified address");
            assert!(identity.email_verified);
            let how = entities::audit_entry::Entity::find()
                .filter(entities::audit_entry::Column::Action.eq("identity.linked"))
                .one(&app.db)
                .await
                .unwrap()
                .unwrap();
            assert!(how.details.contains("verified_email"), "{}", how.details);
        } else {
            assert_ne!(identity.user_id, carol.id, "an unverified address links nothing");
            let made = user_named(&app, "carol-2").await.expect("a new account beside the local carol");
            assert_eq!((identity.user_id, made.email), (made.id, None));
        }
    }
}

/// Figures for the README (not a timed assertion): sign-ins of one person against the real slapd over
/// LDAPS, through the sign-in page, one after the other.
#[tokio::test]
async fn ldap_sign_in_latency_figures() {
    let Some(slapd) = Slapd::start() else { return };
    let app = app_for(&slapd, |_| {}).await;
    let mut took = Vec::new();
    for _ in 0..60 {
        let b = app.browser();
        let csrf = b.csrf("/login").await;
        let fields: Vec<(String, String)> =
            [("csrf", csrf.as_str()), ("method", "ldap"), ("username", "alice"), ("password", "alice-Secret-1")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let started = Instant::now();
        let r = b.post_raw("/login", &fields).await;
        took.push(started.elapsed());
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
    took.drain(..10); // warm-up
    took.sort();
    let pct = |p: f64| took[((took.len() as f64 * p).ceil() as usize).clamp(1, took.len()) - 1];
    eprintln!(
        "LDAP sign-in over LDAPS (bind-search-bind + groups + session), {} runs: p50 {:?}, p99 {:?}",
        took.len(),
        pct(0.50),
        pct(0.99)
    );
}
