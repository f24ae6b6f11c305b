//! Webhooks against a real HTTP receiver (poem on a random loopback port) that checks each delivery's
//! signature and timestamp as the README tells receivers to: signed JSON events, retries with backoff
//! until a flaky receiver answers, a receiver that never does marked failed, and kinds filtered per hook.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use poem::listener::TcpAcceptor;
use poem::{IntoResponse, Server, http::StatusCode as PoemStatus};
use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::SimConfig;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::console_fixtures::app_on;
use crate::helpers::TestApp;
use crate::notify_fixtures::{jobs_of, settle_jobs};

/// One POST the receiver got: its path, body, event-id header, and whether signature and timestamp held.
#[derive(Debug, Clone)]
struct Delivery {
    path: String,
    body: Value,
    event_header: String,
    verified: bool,
}

#[derive(Default)]
struct Receiver {
    /// Each path's signing secret, as its webhook's creation answered it.
    secrets: HashMap<String, String>,
    deliveries: Vec<Delivery>,
}

/// Checks a delivery as a receiver should: HMAC-SHA256(secret, "<timestamp>.<body>") in hex, compared
/// in constant time, and a timestamp within five minutes of now.
fn verify(secret: &str, timestamp: &str, body: &str, signature: &str) -> bool {
    let Ok(ts) = timestamp.parse::<i64>() else { return false };
    if (chrono::Utc::now().timestamp() - ts).abs() > 300 {
        return false;
    }
    let Ok(sig) = hex::decode(signature) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    mac.verify_slice(&sig).is_ok()
}

/// Starts the receiver: `/ok` answers 204 to a verified delivery (401 otherwise), `/flaky` 500 to its
/// first two deliveries and 200 after, `/down` always 503.
async fn receiver() -> (String, Arc<Mutex<Receiver>>) {
    let state = Arc::new(Mutex::new(Receiver::default()));
    let shared = state.clone();
    let endpoint = poem::endpoint::make(move |req: poem::Request| {
        let state = shared.clone();
        async move {
            let path = req.uri().path().to_owned();
            let header = |name: &str| req.header(name).unwrap_or_default().to_owned();
            let (ts, sig, event) =
                (header("X-Proxdesk-Timestamp"), header("X-Proxdesk-Signature"), header("X-Proxdesk-Event-Id"));
            let body = req.into_body().into_string().await.unwrap();
            let mut s = state.lock().unwrap();
            let secret = s.secrets.get(&path).cloned().unwrap_or_default();
            let verified = verify(&secret, &ts, &body, &sig);
            let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            s.deliveries.push(Delivery { path: path.clone(), body: parsed, event_header: event, verified });
            let seen = s.deliveries.iter().filter(|d| d.path == path).count();
            match path.as_str() {
                "/ok" if verified => PoemStatus::NO_CONTENT,
                "/flaky" if seen <= 2 => PoemStatus::INTERNAL_SERVER_ERROR,
                "/flaky" if verified => PoemStatus::OK,
                "/down" => PoemStatus::SERVICE_UNAVAILABLE,
                _ => PoemStatus::UNAUTHORIZED,
            }
            .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(Server::new_with_acceptor(acceptor).run(endpoint));
    (format!("http://127.0.0.1:{port}"), state)
}

async fn create_hook(app: &TestApp, token: &str, url: &str, events: Value) -> Value {
    let r = app.post(token, "/api/v1/admin/webhooks", json!({"url": url, "events": events})).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn deliveries(state: &Arc<Mutex<Receiver>>, path: &str) -> Vec<Delivery> {
    state.lock().unwrap().deliveries.iter().filter(|d| d.path == path).cloned().collect()
}

/// The webhook a delivery job is for.
fn hook_of(job: &jobs::entity::Model) -> Value {
    serde_json::from_str::<Value>(&job.payload).unwrap()["webhook_id"].clone()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn webhooks_get_signed_events_retried_with_backoff_until_a_flaky_receiver_answers() {
    let (base, state) = receiver().await;
    let (app, _sim) = app_on(SimConfig::default(), |raw, _| {
        raw.set("notify_backoff_ms", "50");
        raw.set("notify_attempts", "3");
        raw.set("webhook_hosts", "localhost,127.0.0.1");
    })
    .await;
    let (chief, _) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let (chief, alice) = (app.token(&chief).await, app.token(&alice).await);

    let ok = create_hook(&app, &chief, &format!("{base}/ok"), json!([])).await;
    let flaky = create_hook(&app, &chief, &format!("{base}/flaky"), json!(["request.received"])).await;
    let down = create_hook(&app, &chief, &format!("{base}/down"), json!(["request.rejected"])).await;
    for (path, hook) in [("/ok", &ok), ("/flaky", &flaky), ("/down", &down)] {
        let secret = hook["secret"].as_str().unwrap();
        assert!(secret.starts_with("whsec_") && secret.len() > 30, "{hook}");
        state.lock().unwrap().secrets.insert(path.into(), secret.into());
    }
    assert_eq!(flaky["events"], json!(["request.received"]));
    let stored = entities::webhook::Entity::find().all(&app.db).await.unwrap();
    assert!(stored.iter().all(|w| !w.secret_sealed.contains("whsec_")), "secrets are sealed at rest");
    let listed: Value = app.get(&chief, "/api/v1/admin/webhooks").await.json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert!(listed.to_string().find("whsec_").is_none(), "the list never shows a secret: {listed}");

    let tpl = app.template("Debian").await;
    let id = app.submit_ok(&alice, tpl, "hooked-1").await;
    wait_until("the flaky receiver's third delivery", || deliveries(&state, "/flaky").len() >= 3).await;
    wait_until("the ok receiver's delivery", || !deliveries(&state, "/ok").is_empty()).await;

    let got = &deliveries(&state, "/ok")[0];
    assert!(got.verified, "signature and timestamp hold: {got:?}");
    let e = &got.body;
    assert_eq!(e["type"], "request.received", "{e}");
    assert!(e["id"].as_str().unwrap().starts_with("evt_"), "{e}");
    assert_eq!(got.event_header, e["id"].as_str().unwrap());
    chrono::DateTime::parse_from_rfc3339(e["created_at"].as_str().unwrap()).expect("created_at is RFC 3339");
    assert_eq!(e["data"]["request_id"], id, "{e}");
    assert_eq!(
        (e["data"]["hostname"].as_str(), e["data"]["owner"]["username"].as_str()),
        (Some("hooked-1"), Some("alice"))
    );
    assert_eq!(e["data"]["url"], format!("{}/requests/{id}", app.address));

    // The flaky receiver got the same event three times (two 500s, then 200), each signed afresh.
    let tries = deliveries(&state, "/flaky");
    assert_eq!(tries.len(), 3, "{tries:?}");
    assert!(tries.iter().all(|d| d.verified && d.body["id"] == e["id"]), "{tries:?}");
    settle_jobs(&app).await;
    let jobs = jobs_of(&app, "notify_webhook").await;
    let flaky_job = jobs.iter().find(|j| hook_of(j) == flaky["id"]).expect("the flaky hook's job");
    assert_eq!((flaky_job.state.as_str(), flaky_job.attempts), ("succeeded", 3), "{flaky_job:?}");

    // A rejection goes to the hooks that want it: /ok (every kind) and /down, which never answers 2xx.
    let r = app.post(&chief, &format!("/api/v1/requests/{id}/reject"), json!({"reason": "too big"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    wait_until("the rejection at /ok", || deliveries(&state, "/ok").len() >= 2).await;
    let rejected = &deliveries(&state, "/ok")[1].body;
    assert_eq!(
        (rejected["type"].as_str(), rejected["data"]["reason"].as_str()),
        (Some("request.rejected"), Some("too big"))
    );
    settle_jobs(&app).await;
    assert_eq!(deliveries(&state, "/flaky").len(), 3, "the flaky hook wants only new requests");
    assert_eq!(deliveries(&state, "/down").len(), 3, "bounded: notify_attempts deliveries");
    let down_job = jobs_of(&app, "notify_webhook").await.into_iter().find(|j| hook_of(j) == down["id"]);
    assert_eq!(down_job.map(|j| (j.state, j.attempts)), Some(("dead".to_owned(), 3)));

    // Admins see each hook's latest delivery.
    let listed: Value = app.get(&chief, "/api/v1/admin/webhooks").await.json().await.unwrap();
    let by_id =
        |id: &Value| listed.as_array().unwrap().iter().find(|w| &w["id"] == id).unwrap()["last_delivery"].clone();
    assert_eq!(
        (by_id(&ok["id"])["status"].as_str(), by_id(&ok["id"])["status_code"].as_i64()),
        (Some("delivered"), Some(204))
    );
    assert_eq!(by_id(&flaky["id"])["status"], "delivered");
    let last = by_id(&down["id"]);
    assert_eq!((last["status"].as_str(), last["status_code"].as_i64()), (Some("failed"), Some(503)), "{last}");

    // Deleted: gone from the list; a second delete is 404; a URL that is no http(s) URL is refused.
    let del = |id: &Value| app.api.delete(app.url(&format!("/api/v1/admin/webhooks/{id}"))).bearer_auth(&chief).send();
    assert_eq!(del(&flaky["id"]).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(del(&flaky["id"]).await.unwrap().status(), StatusCode::NOT_FOUND);
    let r = app.post(&chief, "/api/v1/admin/webhooks", json!({"url": "https://:80/x"})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.post(&chief, "/api/v1/admin/webhooks", json!({"url": "https://hooks.example/desk"})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "a host not among webhook_hosts");
    let r = app.post(&chief, "/api/v1/admin/webhooks", json!({"url": "ftp://example.org/"})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app.post(&alice, "/api/v1/admin/webhooks", json!({"url": "https://example.org/"})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_webhooks_page_adds_one_showing_its_secret_once_and_keeps_a_refused_url() {
    let app = crate::helpers::spawn_app().await;
    let (_, pw) = app.user("chief", Role::Admin).await;
    let b = app.logged_in("chief", &pw).await;
    let r = b.post_form("/admin/webhooks", "/admin/webhooks", &[("url", "not a url"), ("kind", "request.ready")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("value=\"not a url\""), "what was typed stays");
    assert!(page.contains("value=\"request.ready\" checked"), "so do the ticked kinds");
    let r = b.post_form("/admin/webhooks", "/admin/webhooks", &[("url", "https://hooks.example/desk")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    let secret = page.split("whsec_").nth(1).expect("the secret is shown").chars().take(10).collect::<String>();
    let again = b.get("/admin/webhooks").await.text().await.unwrap();
    assert!(again.contains("hooks.example") && !again.contains(&secret), "listed, the secret shown once only");
    let id = entities::webhook::Entity::find().all(&app.db).await.unwrap()[0].id;
    let r = b.post_form("/admin/webhooks", &format!("/admin/webhooks/{id}/delete"), &[("confirmed", "yes")]).await;
    assert!(r.status().is_redirection() || r.status().is_success(), "{}", r.status());
    assert!(entities::webhook::Entity::find().all(&app.db).await.unwrap().is_empty());
}
