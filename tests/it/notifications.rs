//! Notification mails through a real SMTP server (aiosmtpd on a random loopback port): who gets which
//! mail, in which language, with what in it; STARTTLS under a certificate the test makes, trusted through
//! the CA-file setting; opt-outs; and a mail that can never be sent ending dead in the jobs table while the
//! request goes on.

use jobs::JobState;
use proxdesk::domain::roles::Role;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::notify_fixtures::{Smtp, desk_mailing, jobs_of, person, self_signed_chain, settle_jobs};
use crate::provision::settle;

async fn submit(app: &TestApp, token: &str, hostname: &str) -> i64 {
    let tpl = app.template("Debian").await;
    app.submit_ok(token, tpl, hostname).await
}

async fn machine_of(app: &TestApp, request_id: i64) -> entities::machine::Model {
    use sea_orm::{ColumnTrait, QueryFilter};
    entities::machine::Entity::find()
        .filter(entities::machine::Column::RequestId.eq(request_id))
        .one(&app.db)
        .await
        .unwrap()
        .expect("the request's machine")
}

#[tokio::test]
async fn mails_reach_owner_and_approvers_in_their_language_and_the_ready_mail_links_without_the_password() {
    let Some(smtp) = Smtp::start(None) else { return };
    let desk = desk_mailing(&smtp, |_| {}).await;
    let app = &desk.app;
    let (_, chief) = person(app, "chief", Role::Admin, Some("chief@example.org"), None).await;
    let (_, _) = person(app, "carol", Role::Admin, Some("carol@example.org"), Some("it")).await;
    let (_, alice) = person(app, "alice", Role::User, Some("alice@example.org"), Some("fr")).await;

    let id = submit(app, &alice, "lab-1").await;
    // Each approver, in their own language; the owner gets a receipt in hers.
    let to_chief = smtp.wait_for("chief@example.org", &format!("New request #{id} from alice: lab-1")).await;
    assert!(to_chief.body.starts_with("Hello,"), "{}", to_chief.body);
    assert!(to_chief.body.contains(&format!("{}/requests/{id}", app.address)), "{}", to_chief.body);
    assert_eq!(to_chief.from, "proxdesk <desk@example.org>");
    let to_carol = smtp.wait_for("carol@example.org", &format!("Nuova richiesta n. {id} di alice")).await;
    assert!(to_carol.body.starts_with("Buongiorno,"), "{}", to_carol.body);
    let receipt = smtp.wait_for("alice@example.org", &format!("Votre demande n° {id} pour lab-1 a été reçue")).await;
    assert!(receipt.body.starts_with("Bonjour,") && receipt.body.contains("« lab-1 »"), "{}", receipt.body);
    assert!(receipt.body.contains(&format!("{}/profile", app.address)), "the footer says where to opt out");

    let r = app.post(&chief, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    smtp.wait_for("alice@example.org", "a été approuvée").await;
    assert_eq!(settle(app, &alice, id).await["status"], "ready");
    let ready = smtp.wait_for("alice@example.org", "Votre machine lab-1 est prête").await;
    let m = machine_of(app, id).await;
    let link = format!("{}/machines/{}", app.address, m.id);
    assert!(ready.body.contains(&link), "a link to the machine page: {}", ready.body);
    let password = app.state.settings.secret_key.open(m.password_sealed.as_deref().expect("a password")).unwrap();
    let detail: Value = app.get(&alice, &format!("/api/v1/machines/{}", m.id)).await.json().await.unwrap();
    assert_eq!(detail["password"].as_str(), Some(password.expose().as_str()), "the owner sees it on the page");
    for mail in smtp.mails() {
        assert!(!mail.body.contains(password.expose().as_str()), "a mail carries the password: {mail:?}");
        assert!(!mail.subject.contains(password.expose().as_str()));
    }

    // A rejection carries its reason; nobody hears of a retry or a cancellation.
    let second = submit(app, &alice, "lab-2").await;
    smtp.wait_for("chief@example.org", &format!("New request #{second} from alice")).await;
    let r = app.post(&chief, &format!("/api/v1/requests/{second}/reject"), json!({"reason": "pas de budget"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let rejected = smtp.wait_for("alice@example.org", &format!("demande n° {second} pour lab-2 a été refusée")).await;
    assert!(rejected.body.contains("Motif : pas de budget"), "{}", rejected.body);

    // Deleting the machine tells its owner once it is gone.
    let r = app.api.delete(app.url(&format!("/api/v1/machines/{}", m.id))).bearer_auth(&alice).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(settle(app, &alice, id).await["status"], "deleted");
    smtp.wait_for("alice@example.org", "Votre machine lab-1 a été supprimée").await;

    settle_jobs(app).await;
    let to_alice: Vec<String> = smtp.mails_to("alice@example.org").into_iter().map(|m| m.subject).collect();
    assert_eq!(to_alice.len(), 6, "received, approved, ready, received, rejected, deleted: {to_alice:#?}");
    assert_eq!(smtp.mails_to("chief@example.org").len(), 2, "only new requests go to approvers");
    assert!(smtp.mails().iter().all(|m| m.rcpt_to.len() == 1 && !m.tls), "one recipient per mail, plain relay");
    for job in jobs_of(app, "notify_mail").await {
        assert_eq!(job.state, "succeeded", "{job:?}");
    }
}

#[tokio::test]
async fn a_user_without_an_address_gets_no_mail_and_a_turned_off_kind_sends_nothing() {
    let Some(smtp) = Smtp::start(None) else { return };
    let desk = desk_mailing(&smtp, |_| {}).await;
    let app = &desk.app;
    let (_, chief) = person(app, "chief", Role::Admin, Some("chief@example.org"), None).await;
    let (_, alice) = person(app, "alice", Role::User, Some("alice@example.org"), None).await;
    let (_, bob) = person(app, "bob", Role::User, None, None).await;

    // Alice turns receipts and rejections off through the API; the rest stays on.
    let r = app
        .api
        .put(app.url("/api/v1/me/notifications"))
        .bearer_auth(&alice)
        .json(&json!({"disabled": ["request.received", "request.rejected"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let choices: Value = app.get(&alice, "/api/v1/me/notifications").await.json().await.unwrap();
    assert_eq!(choices["disabled"], json!(["request.received", "request.rejected"]), "{choices}");
    assert_eq!(choices["email"], "alice@example.org");
    assert_eq!(choices["mail_configured"], true);
    assert!(choices["enabled"].as_array().unwrap().contains(&json!("request.approved")), "{choices}");
    let r = app.api.put(app.url("/api/v1/me/notifications")).bearer_auth(&alice).json(&json!({"disabled": ["nope"]}));
    assert_eq!(r.send().await.unwrap().status(), StatusCode::BAD_REQUEST, "an unknown kind is refused");
    let bobs: Value = app.get(&bob, "/api/v1/me/notifications").await.json().await.unwrap();
    assert_eq!(bobs["email"], Value::Null, "{bobs}");

    let a = submit(app, &alice, "alice-1").await;
    let b = submit(app, &bob, "bob-1").await;
    smtp.wait_for("chief@example.org", &format!("New request #{a} from alice")).await;
    smtp.wait_for("chief@example.org", &format!("New request #{b} from bob")).await;
    for (id, who) in [(a, &alice), (b, &bob)] {
        let _ = who;
        let r = app.post(&chief, &format!("/api/v1/requests/{id}/reject"), json!({"reason": "no"})).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    settle_jobs(app).await;
    assert!(smtp.mails_to("alice@example.org").is_empty(), "alice turned both off: {:#?}", smtp.mails());
    assert_eq!(smtp.mails().len(), 2, "only chief's two mails: {:#?}", smtp.mails());

    // The profile form: a ticked box is on, every other kind off; it needs its CSRF token.
    let (_, pw) = (0, "alice-password-123");
    let browser = app.logged_in("alice", pw).await;
    let page = browser.get("/profile").await.text().await.unwrap();
    assert!(page.contains("alice@example.org") && page.contains("name=\"kind\""), "the profile shows the choices");
    let r = browser.post_raw("/profile/notifications", &[("kind".into(), "request.ready".into())]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let r = browser
        .post_form("/profile", "/profile/notifications", &[("kind", "request.ready"), ("kind", "request.received")])
        .await;
    assert!(r.status().is_success() || r.status().is_redirection(), "{}", r.status());
    let choices: Value = app.get(&alice, "/api/v1/me/notifications").await.json().await.unwrap();
    assert_eq!(choices["enabled"], json!(["request.received", "request.ready"]), "{choices}");
    let c = submit(app, &alice, "alice-2").await;
    smtp.wait_for("alice@example.org", &format!("Your request #{c} for alice-2 was received")).await;
}

#[tokio::test]
async fn starttls_with_a_self_signed_certificate_is_trusted_through_the_ca_file_only() {
    let (ca, cert, key) = self_signed_chain();
    let Some(smtp) = Smtp::start(Some((&cert, &key))) else { return };
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let ca_path = ca_file.display().to_string();
    let desk = desk_mailing(&smtp, |raw| {
        raw.set("smtp_tls", "starttls");
        raw.set("smtp_ca_file", ca_path);
    })
    .await;
    let app = &desk.app;
    person(app, "chief", Role::Admin, Some("chief@example.org"), None).await;
    let (_, alice) = person(app, "alice", Role::User, Some("alice@example.org"), Some("it")).await;
    let id = submit(app, &alice, "secure-1").await;
    let mail = smtp.wait_for("alice@example.org", &format!("La tua richiesta n. {id} per secure-1")).await;
    assert!(mail.tls, "the mail went through STARTTLS");
    assert!(smtp.wait_for("chief@example.org", "New request").await.tls);

    // Without the CA file the same server's certificate is not trusted: nothing is sent in clear instead.
    let Some(smtp2) = Smtp::start(Some((&cert, &key))) else { return };
    let desk2 = desk_mailing(&smtp2, |raw| {
        raw.set("smtp_tls", "starttls");
        raw.set("notify_attempts", "2");
    })
    .await;
    let app2 = &desk2.app;
    let (_, alice2) = person(app2, "alice", Role::User, Some("alice@example.org"), None).await;
    submit(app2, &alice2, "insecure-1").await;
    settle_jobs(app2).await;
    let mails = jobs_of(app2, "notify_mail").await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!((mails[0].state.as_str(), mails[0].attempts), ("dead", 2), "{:?}", mails[0]);
    assert!(smtp2.mails().is_empty());
}

#[tokio::test]
async fn a_mail_that_cannot_be_sent_ends_dead_after_its_attempts_and_nothing_else_waits_for_it() {
    // An SMTP port where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let desk = crate::guac_e2e::desk_with(|raw| {
        raw.set("smtp_host", "127.0.0.1");
        raw.set("smtp_port", port.to_string());
        raw.set("smtp_tls", "none");
        raw.set("mail_from", "desk@example.org");
        raw.set("notify_attempts", "3");
        raw.set("notify_backoff_ms", "20");
    })
    .await;
    let app = &desk.app;
    let (_, chief) = person(app, "chief", Role::Admin, Some("chief@example.org"), None).await;
    let (_, alice) = person(app, "alice", Role::User, Some("alice@example.org"), None).await;
    let id = submit(app, &alice, "lab-1").await;
    let r = app.post(&chief, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK, "the approval does not wait for mail");
    assert_eq!(settle(app, &alice, id).await["status"], "ready", "provisioning does not wait for mail");
    settle_jobs(app).await;
    let mails = jobs_of(app, "notify_mail").await;
    assert_eq!(mails.len(), 4, "receipt, chief's, approved, ready: {mails:?}");
    for job in &mails {
        assert_eq!((job.state.as_str(), job.attempts), ("dead", 3), "{job:?}");
        assert!(job.last_error.as_deref().is_some_and(|e| e.contains("not sent")), "{job:?}");
    }
    for job in jobs_of(app, "notify").await {
        assert_eq!(job.state, JobState::Succeeded.as_str(), "every fan-out itself succeeded: {job:?}");
    }
}

/// Runs the expiry sweep as of `at` as its cron tick would, and waits for what it led to.
async fn sweep_at(app: &TestApp, at: chrono::DateTime<chrono::Utc>) {
    let key = format!("cron:lease_sweep:{}", at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let job = jobs::NewJob::new("lease_sweep", json!({ "at": at })).idempotency_key(key);
    jobs::enqueue(&app.db, job).await.unwrap();
    settle_jobs(app).await;
}

#[tokio::test]
async fn lease_warnings_the_stop_and_the_deletion_each_mail_the_owner_once() {
    let Some(smtp) = Smtp::start(None) else { return };
    let desk = desk_mailing(&smtp, |_| {}).await;
    let app = &desk.app;
    let (_, chief) = person(app, "chief", Role::Admin, None, None).await;
    let (_, alice) = person(app, "alice", Role::User, Some("alice@example.org"), None).await;
    let id = submit(app, &alice, "leased-1").await;
    app.post(&chief, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
    assert_eq!(settle(app, &alice, id).await["status"], "ready");
    let m = machine_of(app, id).await;
    let expires = m.expires_at.expect("a lease");
    let shown = expires.format("%Y-%m-%d %H:%M UTC").to_string();
    let link = format!("{}/machines/{}", app.address, m.id);

    // Each warning once, however many ticks fall inside it.
    for at in [expires - chrono::Duration::days(6), expires - chrono::Duration::days(5)] {
        sweep_at(app, at).await;
    }
    let warned = smtp.wait_for("alice@example.org", &format!("Your machine leased-1 expires on {shown}")).await;
    assert!(warned.body.contains(&link) && warned.body.contains("Extend the lease"), "{}", warned.body);
    sweep_at(app, expires - chrono::Duration::hours(12)).await;
    sweep_at(app, expires - chrono::Duration::hours(11)).await;
    sweep_at(app, expires + chrono::Duration::seconds(1)).await;
    let stopped = smtp.wait_for("alice@example.org", "Your machine leased-1 expired and was stopped").await;
    assert!(stopped.body.contains(&shown), "{}", stopped.body);
    sweep_at(app, expires + chrono::Duration::hours(169)).await;
    assert_eq!(settle(app, &alice, id).await["status"], "deleted");
    smtp.wait_for("alice@example.org", "Your machine leased-1 was deleted").await;
    settle_jobs(app).await;
    let subjects: Vec<String> = smtp.mails_to("alice@example.org").into_iter().map(|m| m.subject).collect();
    let count = |s: &str| subjects.iter().filter(|x| x.contains(s)).count();
    assert_eq!(count("expires on"), 2, "two warnings: {subjects:#?}");
    assert_eq!((count("expired and was stopped"), count("was deleted")), (1, 1), "{subjects:#?}");
}

/// Runs `proxdesk check` (the real binary) against a simulated cluster with `env` added.
async fn check(env: &[(&str, String)]) -> (bool, String) {
    let sim = crate::pve_client::sim().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_proxdesk"));
    cmd.arg("check")
        .env("PROXDESK_DATA_DIR", dir.path())
        .env("PROXDESK_LOG", "warn")
        .env("PROXDESK_PVE_URL", sim.url())
        .env("PROXDESK_PVE_TOKEN", format!("{}={}", crate::pve_client::TOKEN_ID, crate::pve_client::TOKEN_SECRET))
        .env_remove("PROXDESK_DATABASE_URL")
        .current_dir(dir.path());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn check_says_whether_mail_is_off_reaches_the_server_or_fails() {
    let (ok, out) = check(&[]).await;
    assert!(ok && out.contains("mail: off (PROXDESK_SMTP_HOST is not set"), "{out}");
    let Some(smtp) = Smtp::start(None) else { return };
    let relay = |tls: &str| {
        vec![
            ("PROXDESK_SMTP_HOST", "127.0.0.1".to_owned()),
            ("PROXDESK_SMTP_PORT", smtp.port.to_string()),
            ("PROXDESK_SMTP_TLS", tls.to_owned()),
            ("PROXDESK_MAIL_FROM", "desk@example.org".to_owned()),
        ]
    };
    let (ok, out) = check(&relay("none")).await;
    assert!(ok && out.contains(&format!("mail: ok, 127.0.0.1:{} (none)", smtp.port)), "{out}");
    // STARTTLS is required: a server that does not offer it fails the check rather than being used in clear.
    let (ok, out) = check(&relay("starttls")).await;
    assert!(!ok && out.contains("mail: FAILED"), "{out}");
    assert!(smtp.mails().is_empty(), "the check sends no mail");
}
