//! Live pages: the time from a job's step being recorded (its timeline note committed, as the job
//! engine does) to (a) the `change` event reaching an SSE client and (b) the page in headless Chromium
//! showing the new entry — with one stream open, then with 200 streams open on 200 request pages.
//! Reference: the 2-second polling it replaces shows a step after 1 s on average plus one page fetch.
//!
//! `cargo bench --bench live`. `BENCH_STEPS` (60) steps per phase, `BENCH_STREAMS` (200).

#[allow(dead_code, unused_imports)]
#[path = "../tests/it/browser/mod.rs"]
mod browser;
#[allow(dead_code)]
#[path = "../tests/it/external.rs"]
mod external;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proxdesk::config::RawSettings;
use proxdesk::domain::roles::Role;
use proxdesk::secrets::Secret;
use proxdesk::services::{self, Actor, catalog::TemplateInput};
use proxdesk::startup::App;
use serde_json::json;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs_f64() * 1000.0
}

/// p50 and p95 of `v` (ms).
fn percentiles(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[(v.len() * 95 / 100).min(v.len() - 1)])
}

struct Sse {
    resp: reqwest::Response,
    buf: String,
}

impl Sse {
    async fn open(base: &str, session: &str, path: &str) -> Sse {
        let resp = reqwest::Client::new()
            .get(format!("{base}{path}"))
            .header("Cookie", format!("proxdesk_session={session}"))
            .send()
            .await
            .expect("stream");
        assert_eq!(resp.status(), 200, "{path}");
        Sse { resp, buf: String::new() }
    }

    async fn next_change(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: "))
                    && block.contains("event: change")
                {
                    return data.to_owned();
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(15), self.resp.chunk()).await;
            let bytes = chunk.expect("an event in time").expect("stream").expect("stream open");
            self.buf.push_str(std::str::from_utf8(&bytes).expect("utf-8"));
        }
    }
}

async fn step(db: &sea_orm::DatabaseConnection, request: i64, n: usize) {
    // What workflows::timeline::note does for each provisioning step.
    services::audit::record(db, None, "provision.cloned", "request", request, json!({"step": n})).await.expect("note");
}

/// Steps recorded on `request`, each timed until `sse` reports it.
async fn sse_phase(db: &sea_orm::DatabaseConnection, sse: &mut Sse, request: i64, steps: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(steps);
    for n in 0..steps {
        let t = Instant::now();
        step(db, request, n).await;
        sse.next_change().await;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(100 + (n as u64 * 37) % 100)).await;
    }
    out
}

const OBSERVE: &str = r##"(() => {
  window.seenAt = [];
  const count = () => document.querySelectorAll("#timeline li").length;
  window.seenCount = count();
  new MutationObserver(() => {
    const n = count();
    if (n !== window.seenCount) { window.seenCount = n; window.seenAt.push(Date.now()); }
  }).observe(document.getElementById("main"), { childList: true, subtree: true });
  return "ok";
})()"##;

async fn browser_phase(
    base: &str,
    session: &str,
    db: &sea_orm::DatabaseConnection,
    request: i64,
    steps: usize,
) -> Option<Vec<f64>> {
    let mut browser = browser::Chromium::start().await?;
    browser.set_session(base, session).await;
    browser.goto(&format!("{base}/requests/{request}")).await;
    let until = Instant::now() + Duration::from_secs(30);
    while browser.eval("document.documentElement.dataset.live || ''").await != "connected" {
        assert!(Instant::now() < until, "the page's stream did not connect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser.eval(OBSERVE).await;
    let mut out = Vec::with_capacity(steps);
    for n in 0..steps {
        let t0 = now_ms();
        step(db, request, n).await;
        let until = Instant::now() + Duration::from_secs(15);
        let seen = loop {
            let v = browser.eval(&format!("window.seenAt[{n}] || 0")).await;
            if let Some(at) = v.as_f64().filter(|a| *a > 0.0) {
                break at;
            }
            assert!(Instant::now() < until, "step {n} did not show");
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        out.push(seen - t0);
        tokio::time::sleep(Duration::from_millis(150 + (n as u64 * 37) % 100)).await;
    }
    Some(out)
}

async fn run() {
    let steps = env_usize("BENCH_STEPS", 60);
    let streams = env_usize("BENCH_STREAMS", 200);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut raw = RawSettings::defaults();
    raw.set("data_dir", dir.path().display().to_string());
    raw.set("listen", "127.0.0.1:0");
    raw.set("log", "warn");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listener");
    let port = listener.local_addr().expect("addr").port();
    let base = format!("http://127.0.0.1:{port}");
    raw.set("public_url", base.clone());
    let app = App::build(raw.into_settings().expect("settings"), listener).await.expect("app");
    let db = app.state().db.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    // Users of 10 requests each (a user may hold 16 streams), one stream per request page.
    let template = services::catalog::create(
        &db,
        None,
        None,
        TemplateInput {
            name: "bench".into(),
            description: "bench".into(),
            node: "pve1".into(),
            vmid: 9000,
            default_cores: 1,
            max_cores: 4,
            default_memory_mib: 512,
            max_memory_mib: 4096,
            default_disk_gib: 8,
            max_disk_gib: 32,
            full_clone: true,
            enabled: true,
            net0: services::catalog::DEFAULT_NET0.into(),
            finish_mode: "none".into(),
            ..Default::default()
        },
    )
    .await
    .expect("template")
    .id;
    let admin = {
        let new = services::users::NewUser { username: "chief".into(), role: Role::Admin, password: None };
        Actor::try_from(services::users::create(&db, None, new).await.expect("admin").0).expect("actor")
    };
    let big = proxdesk::domain::quota::Quota {
        max_machines: 1000,
        max_cores: 10_000,
        max_memory_mib: 1_000_000,
        max_disk_gib: 1_000_000,
    };
    services::quotas::set_role_quota(&db, &admin, Role::User, big).await.expect("quota");
    let mut pages: Vec<(String, i64)> = Vec::new();
    for u in 0..streams.div_ceil(10) {
        let name = format!("user{u}");
        let password = format!("{name}-password-123");
        let new = services::users::NewUser {
            username: name.clone(),
            role: Role::User,
            password: Some(Secret::new(password.clone())),
        };
        let user = Actor::try_from(services::users::create(&db, None, new).await.expect("user").0).expect("actor");
        let session = services::auth::login(&db, &name, &Secret::new(password), "bench", 1).await.expect("login");
        for r in 0..10 {
            let new = services::requests::NewRequest {
                template_id: template,
                hostname: format!("u{u}-r{r}"),
                cores: 1,
                memory_mib: 512,
                disk_gib: 8,
                purpose: "benchmark".into(),
                ssh_public_key: None,
                ..Default::default()
            };
            let id = services::requests::create(&db, &user, new).await.expect("request").id;
            pages.push((session.token.expose().clone(), id));
        }
    }
    pages.truncate(streams);
    let (session, request) = pages[0].clone();

    let mut fetch = Vec::new();
    let client = reqwest::Client::new();
    for _ in 0..20 {
        let t = Instant::now();
        let r = client
            .get(format!("{base}/requests/{request}"))
            .header("Cookie", format!("proxdesk_session={session}"))
            .send()
            .await
            .expect("page");
        r.text().await.expect("page body");
        fetch.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (fetch_p50, _) = percentiles(&mut fetch);

    let mut sse = Sse::open(&base, &session, &format!("/requests/{request}/live")).await;
    sse.next_change().await;
    let (a50, a95) = percentiles(&mut sse_phase(&db, &mut sse, request, steps).await);

    let opened = Instant::now();
    let mut others = Vec::new();
    for (s, id) in &pages[1..] {
        let mut o = Sse::open(&base, s, &format!("/requests/{id}/live")).await;
        o.next_change().await;
        others.push(o);
    }
    let opened = opened.elapsed();
    let (b50, b95) = percentiles(&mut sse_phase(&db, &mut sse, request, steps).await);
    let dom = browser_phase(&base, &session, &db, request, steps).await;

    println!("live: {steps} timeline steps per phase, recorded as the job engine records them");
    println!(
        "reference (2-second polling): mean 1000 ms + one page fetch ({fetch_p50:.1} ms p50) ≈ {:.0} ms",
        1000.0 + fetch_p50
    );
    println!("step → SSE event, 1 stream:            p50 {a50:.1} ms, p95 {a95:.1} ms");
    println!(
        "step → SSE event, {} streams open:    p50 {b50:.1} ms, p95 {b95:.1} ms (opening {} more took {:.2} s)",
        others.len() + 1,
        others.len(),
        opened.as_secs_f64()
    );
    match dom {
        Some(mut v) => {
            let (c50, c95) = percentiles(&mut v);
            println!(
                "step → page shows it (Chromium), {} streams open: p50 {c50:.1} ms, p95 {c95:.1} ms",
                others.len() + 1
            );
        }
        None => println!("step → page shows it: skipped (no chromium)"),
    }
    drop(others);
    drop(sse);
    let _ = stop.send(());
    let _ = server.await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(run());
}
