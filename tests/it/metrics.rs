//! Prometheus metrics over HTTP: the real server, database, job engine and simulators; every scrape is
//! parsed as OpenMetrics text. Counters are process-wide (other tests run beside these), so the
//! assertions are on growth between two scrapes, or on labels only these tests produce.

use std::time::{Duration, Instant};

use proxdesk::integrations::pve::sim::{Endpoint, Fault, SimConfig};
use reqwest::StatusCode;

use crate::console_fixtures::{app_on, connect, counting_rfb_backend, read_n, ready_machine, send};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::metrics_text::{Scrape, scrape_with};
use crate::provision::{approved_request, settle};

const TOKEN: &str = "metrics-token-0123456789";

fn with_token(raw: &mut proxdesk::config::RawSettings) {
    raw.set("metrics_token", TOKEN);
}

#[tokio::test]
async fn requests_are_counted_by_route_pattern_and_status_with_their_latency() {
    let app = spawn_app_with(with_token).await;
    let before = scrape_with(&app, TOKEN).await;
    let (admin, _) = app.user("chief", proxdesk::domain::roles::Role::Admin).await;
    let token = app.token(&admin).await;
    for _ in 0..3 {
        assert_eq!(app.api.get(app.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(app.api.get(app.url("/login")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(app.get(&token, "/api/v1/requests/424242").await.status(), StatusCode::NOT_FOUND);
    let r = app.api.get(app.url("/no/such/page/987654321")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let after = scrape_with(&app, TOKEN).await;

    let grew = |name: &str, want: &[(&str, &str)]| after.sum(name, want) - before.sum(name, want);
    let healthz = [("method", "GET"), ("route", "/healthz"), ("status", "200")];
    assert!(grew("proxdesk_http_requests_total", &healthz) >= 3.0);
    let h = [("method", "GET"), ("route", "/healthz")];
    assert!(grew("proxdesk_http_request_duration_seconds_count", &h) >= 3.0);
    assert!(grew("proxdesk_http_request_duration_seconds_bucket", &[("route", "/healthz"), ("le", "+Inf")]) >= 3.0);
    assert!(grew("proxdesk_http_requests_total", &[("route", "/login"), ("status", "200")]) >= 1.0);
    // The API's route is its pattern, not the path with the id in it.
    let api: Vec<String> = after.label_values("proxdesk_http_requests_total", "route");
    assert!(!api.iter().any(|r| r.contains("424242") || r.contains("987654321")), "ids in route labels: {api:?}");
    let api_404 = after
        .matching("proxdesk_http_requests_total", &[("status", "404")])
        .filter(|s| s.labels["route"].starts_with("/api/v1/requests/"))
        .map(|s| s.value)
        .sum::<f64>();
    let api_404_before = before
        .matching("proxdesk_http_requests_total", &[("status", "404")])
        .filter(|s| s.labels["route"].starts_with("/api/v1/requests/"))
        .map(|s| s.value)
        .sum::<f64>();
    assert!(api_404 - api_404_before >= 1.0, "{api:?}");
    assert!(grew("proxdesk_http_requests_total", &[("route", "unmatched"), ("status", "404")]) >= 1.0);
    assert_eq!(after.types["proxdesk_http_request_duration_seconds"], "histogram");
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_an_outsiders_is_not_taken() {
    let app = spawn_app().await;
    let r = app.api.get(app.url("/healthz")).header("X-Request-Id", "forged-by-a-client").send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, "forged-by-a-client", "only a trusted proxy's request id is taken");
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let again = app.api.get(app.url("/healthz")).send().await.unwrap();
    assert_ne!(again.headers()["x-request-id"].to_str().unwrap(), id, "a fresh id per request");
}

#[tokio::test]
async fn a_trusted_proxys_request_id_is_kept_if_plain_and_replaced_if_not() {
    let app = spawn_app_with(|raw| raw.set("trusted_proxies", "127.0.0.1")).await;
    let r = app.api.get(app.url("/healthz")).header("X-Request-Id", "edge-7f3a.1").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "edge-7f3a.1");
    let long = "x".repeat(65);
    for bad in [long.as_str(), "a b", "a\"b"] {
        let r = app.api.get(app.url("/healthz")).header("X-Request-Id", bad).send().await.unwrap();
        assert_ne!(r.headers()["x-request-id"].to_str().unwrap(), bad);
    }
}

#[tokio::test]
async fn metrics_are_hidden_without_settings_and_guarded_by_the_token_on_the_main_listener() {
    let plain = spawn_app().await;
    assert_eq!(plain.api.get(plain.url("/metrics")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(plain.metrics_port, None);

    let app = spawn_app_with(|raw| {
        with_token(raw);
        raw.set("metrics_listen", "127.0.0.1:0");
    })
    .await;
    let r = app.api.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = app.api.get(app.url("/metrics")).bearer_auth("metrics-token-0123456788").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!r.text().await.unwrap().contains("proxdesk_"));
    scrape_with(&app, TOKEN).await;

    // The separate listener needs no token, and serves nothing else.
    let own = format!("http://127.0.0.1:{}", app.metrics_port.expect("a metrics listener"));
    let r = app.api.get(format!("{own}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let scrape = Scrape::parse(&r.text().await.unwrap());
    assert!(scrape.types.contains_key("proxdesk_http_requests"));
    assert_eq!(app.api.get(format!("{own}/healthz")).send().await.unwrap().status(), StatusCode::NOT_FOUND);

    // Only the separate listener: the main one has no /metrics.
    let inner = spawn_app_with(|raw| raw.set("metrics_listen", "127.0.0.1:0")).await;
    assert_eq!(inner.api.get(inner.url("/metrics")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let own = format!("http://127.0.0.1:{}/metrics", inner.metrics_port.unwrap());
    assert_eq!(inner.api.get(own).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_password_counts_as_a_sign_in_failure() {
    let app = spawn_app_with(with_token).await;
    app.user("alice", proxdesk::domain::roles::Role::User).await;
    let before = scrape_with(&app, TOKEN).await;
    let r = app.browser().login("alice", "not-her-password").await;
    assert_ne!(r.status(), StatusCode::SEE_OTHER, "the sign-in is refused");
    let after = scrape_with(&app, TOKEN).await;
    let m = [("method", "password")];
    assert!(
        after.sum("proxdesk_sign_in_failures_total", &m) - before.sum("proxdesk_sign_in_failures_total", &m) >= 1.0
    );
}

#[tokio::test]
async fn an_open_console_counts_until_it_closes() {
    let (backend, _) = counting_rfb_backend().await;
    let (app, _sim) =
        app_on(SimConfig { vnc_backend: Some(backend), ..SimConfig::for_tests() }, |raw, _| with_token(raw)).await;
    let (id, _, cookie) = ready_machine(&app).await;
    let open = |s: &Scrape| s.sum("proxdesk_console_sessions_open", &[("kind", "vnc")]);
    let before = open(&scrape_with(&app, TOKEN).await);
    let mut ws = connect(&app, &format!("/machines/{id}/console/ws"), Some(&cookie), Some(&app.address)).await.unwrap();
    let mut buf = Vec::new();
    read_n(&mut ws, &mut buf, 12).await;
    send(&mut ws, b"RFB 003.008\n").await;
    read_n(&mut ws, &mut buf, 2).await;
    send(&mut ws, &[1]).await;
    read_n(&mut ws, &mut buf, 4).await;
    wait_for_gauge(&app, |s| open(s) >= before + 1.0, "the console counted as open").await;
    let during = open(&scrape_with(&app, TOKEN).await);
    drop(ws);
    wait_for_gauge(&app, |s| open(s) <= during - 1.0, "the closed console no longer counted").await;
    // The upgrade was an HTTP request too, counted under its route pattern.
    let s = scrape_with(&app, TOKEN).await;
    assert!(s.sum("proxdesk_http_requests_total", &[("route", "/machines/:id/console/ws"), ("status", "101")]) >= 1.0);
}

async fn wait_for_gauge(app: &TestApp, ok: impl Fn(&Scrape) -> bool, what: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if ok(&scrape_with(app, TOKEN).await) {
            return;
        }
        assert!(Instant::now() < until, "{what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn provisioning_and_a_guacamole_sync_show_jobs_pve_and_guacamole_calls() {
    let desk = crate::guac_e2e::desk_with(with_token).await;
    let before = scrape_with(&desk.app, TOKEN).await;
    // One refused clone: the first attempt is retried, the second provisions.
    desk.pve.faults().inject_times(
        Endpoint::LxcClone,
        Fault::Status { code: 500, message: "unable to create CT - got timeout".into() },
        1,
    );
    let (token, id) = approved_request(&desk.app, "node").await;
    assert_eq!(settle(&desk.app, &token, id).await["status"], "ready");
    let run = desk.sync().await;
    assert_eq!(run.failure, None);
    let after = scrape_with(&desk.app, TOKEN).await;
    let grew = |name: &str, want: &[(&str, &str)]| after.sum(name, want) - before.sum(name, want);

    assert!(grew("proxdesk_jobs_total", &[("kind", "provision"), ("outcome", "retry")]) >= 1.0);
    assert!(grew("proxdesk_jobs_total", &[("kind", "provision"), ("outcome", "succeeded")]) >= 1.0);
    assert!(grew("proxdesk_jobs_total", &[("kind", "guac_sync"), ("outcome", "succeeded")]) >= 1.0);
    assert!(grew("proxdesk_job_duration_seconds_count", &[("kind", "provision")]) >= 2.0);
    let clone = "/nodes/{node}/lxc/{vmid}/clone";
    assert!(grew("proxdesk_pve_calls_total", &[("method", "POST"), ("endpoint", clone), ("status", "500")]) >= 1.0);
    assert!(grew("proxdesk_pve_calls_total", &[("method", "POST"), ("endpoint", clone), ("status", "200")]) >= 1.0);
    let endpoints = after.label_values("proxdesk_pve_calls_total", "endpoint");
    assert!(endpoints.iter().any(|e| e == "/nodes/{node}/tasks/{upid}/status"), "task polls: {endpoints:?}");
    assert!(!endpoints.iter().any(|e| e.contains("UPID") || e.contains("pve1")), "{endpoints:?}");
    assert!(grew("proxdesk_pve_call_duration_seconds_count", &[("endpoint", clone)]) >= 2.0);

    assert!(grew("proxdesk_guacamole_sync_runs_total", &[("outcome", "succeeded")]) >= 1.0);
    assert!(grew("proxdesk_guacamole_sync_changes_total", &[]) >= 1.0, "the run created a connection");
    assert!(
        grew("proxdesk_guacamole_calls_total", &[("method", "POST"), ("endpoint", "/tokens"), ("status", "200")])
            >= 1.0
    );
    let guac = after.label_values("proxdesk_guacamole_calls_total", "endpoint");
    assert!(guac.iter().any(|e| e.starts_with("/session/data/{ds}/")), "{guac:?}");
    assert!(grew("proxdesk_guacamole_call_duration_seconds_count", &[("endpoint", "/tokens")]) >= 1.0);
}

#[tokio::test]
async fn the_queue_depth_is_read_from_the_database_at_scrape_time() {
    let app = spawn_app_with(with_token).await;
    // No workers run this kind: the jobs stay queued.
    for _ in 0..3 {
        jobs::enqueue(&app.db, jobs::NewJob::new("metrics_depth_probe", serde_json::json!({}))).await.unwrap();
    }
    let s = scrape_with(&app, TOKEN).await;
    assert_eq!(s.types["proxdesk_job_queue_depth"], "gauge");
    assert_eq!(s.sum("proxdesk_job_queue_depth", &[("kind", "metrics_depth_probe"), ("state", "queued")]), 3.0);
}

/// The scrape's cost with a large queue table: 10,000 rows (most finished, as in a long-running desk),
/// printed for the README; bounded loosely so a full table scan per scrape would show.
#[tokio::test]
async fn a_scrape_stays_cheap_with_ten_thousand_jobs() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app_with(with_token).await;
    let backend = app.db.get_database_backend();
    let sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) \
         INSERT INTO jobs (kind, payload, state, attempts, max_attempts, run_after, lease_owner, \
         lease_expires_at, last_error, checkpoint, cancel_requested, created_at, updated_at, idempotency_key) \
         SELECT 'metrics_bulk', '{}', CASE WHEN i % 100 = 0 THEN 'queued' ELSE 'succeeded' END, 1, 5, \
         CURRENT_TIMESTAMP, NULL, NULL, NULL, NULL, false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, NULL FROM n";
    app.db.execute_raw(Statement::from_string(backend, sql)).await.unwrap();
    scrape_with(&app, TOKEN).await;
    let started = Instant::now();
    let rounds = 20;
    let mut last = None;
    for _ in 0..rounds {
        last = Some(scrape_with(&app, TOKEN).await);
    }
    let each = started.elapsed() / rounds;
    let s = last.unwrap();
    assert_eq!(s.sum("proxdesk_job_queue_depth", &[("kind", "metrics_bulk"), ("state", "queued")]), 100.0);
    eprintln!("one scrape over HTTP with 10,000 job rows: {each:?}");
    assert!(each < Duration::from_millis(500), "{each:?}");
}
