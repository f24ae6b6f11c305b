//! Several `proxdesk serve` processes (the real binary) on one PostgreSQL database act as one desk: a
//! session, a form's CSRF token, a console URL and the sign-in count work whichever replica a request
//! reaches; each job runs once; the per-node limit holds across replicas; a cron tick runs once; a
//! replica killed mid-provision is taken over; a replica stopped with SIGTERM exits in bounded time and
//! leaves nothing undone.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::helpers::csrf_in;
use crate::pg::PgDb;
use crate::processes::{Proc, Seeded, Served, SimProc, free_port, seed_on};
use crate::provision_faults::provision_jobs;

async fn replicas(s: &Seeded, sim: &SimProc, n: usize, env: &[(&str, &str)]) -> Vec<Served> {
    let mut out = vec![];
    for i in 0..n {
        out.push(Served::start_with(s, &sim.url, &format!("replica-{i}"), env).await);
    }
    out
}

/// Jobs queued or running, in any process.
async fn open_jobs(s: &Seeded) -> Vec<jobs::Job> {
    let filter = jobs::JobFilter {
        states: vec![jobs::JobState::Queued, jobs::JobState::Running],
        limit: Some(1000),
        ..Default::default()
    };
    jobs::list(&s.db, &filter).await.unwrap()
}

/// The process ids (`{hostname}-{pid}` in lease owners) holding running jobs now.
async fn lease_holders(s: &Seeded) -> BTreeSet<u32> {
    open_jobs(s)
        .await
        .iter()
        .filter(|j| j.state == jobs::JobState::Running)
        .filter_map(|j| j.lease_owner.as_deref()?.split('#').next()?.rsplit('-').next()?.parse().ok())
        .collect()
}

fn tails(all: &[Served]) -> String {
    all.iter().map(|r| r.proc.tail()).collect::<Vec<_>>().join("\n---\n")
}

/// One container per request, each carrying its request's marker once.
fn one_container_each(stats: &Value, ids: &[i64]) {
    for id in ids {
        let marker = format!("(proxdesk request #{id})");
        let n = stats["guests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["description"].as_str().is_some_and(|d| d.contains(&marker)))
            .count();
        assert_eq!(n, 1, "request {id} has {n} containers");
    }
}

#[tokio::test]
async fn sessions_forms_console_urls_and_the_sign_in_count_span_replicas() {
    let Some(pg) = PgDb::fresh("replicas_web").await else { return };
    let s = seed_on(&pg.url).await;
    let sim = SimProc::start(s.dir.path(), 100, 20, 50).await;
    let r = replicas(&s, &sim, 3, &[]).await;

    // The login form from one replica, posted to another; the session used on the third.
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let html = browser.get(format!("{}/login", r[0].url)).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_in(&html).expect("a CSRF token");
    let form = [("username", "alice"), ("password", "alice-password-123"), ("csrf", csrf.as_str())];
    let signed_in = browser.post(format!("{}/login", r[1].url)).form(&form).send().await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER, "{}", tails(&r));
    let dashboard = browser.get(format!("{}/", r[2].url)).send().await.unwrap();
    assert_eq!(dashboard.status(), StatusCode::OK, "the session from replica 1 is known to replica 2");

    // Wrong passwords on each replica add up in one count.
    for replica in &r {
        let b = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let html = b.get(format!("{}/login", replica.url)).send().await.unwrap().text().await.unwrap();
        let csrf = csrf_in(&html).unwrap();
        let wrong = [("username", "alice"), ("password", "a-wrong-guess"), ("csrf", csrf.as_str())];
        assert_eq!(b.post(format!("{}/login", replica.url)).form(&wrong).send().await.unwrap().status(), 401);
    }
    let row = entities::login_throttle::Entity::find_by_id("pair:alice|127.0.0.1".to_owned())
        .one(&s.db)
        .await
        .unwrap()
        .expect("a count for alice from this address");
    assert_eq!(row.failures, 3, "one count across the three replicas");

    // A console URL issued by one replica is accepted once, by another, and refused after by a third.
    let id = r[0].approved(&s, s.templates[0], "lab-web").await;
    assert_eq!(r[0].settle(&s.user_token, id, Duration::from_secs(20)).await["status"], "ready");
    let machines = r[1].get(&s.user_token, "/api/v1/machines").await;
    let machine = machines["items"][0]["id"].as_i64().unwrap();
    let issued = r[1].post(&s.user_token, &format!("/api/v1/machines/{machine}/console"), json!({"kind": "vnc"})).await;
    let url = issued["url"].as_str().unwrap();
    let path = &url[url.find("/machines/").unwrap()..];
    let on = |replica: &Served| format!("{}{path}", replica.url.replacen("http://", "ws://", 1));
    // The simulator process has no VNC server: the first use passes authorization and ends upstream.
    match tokio_tungstenite::connect_async(on(&r[2])).await {
        Ok((mut ws, _)) => {
            use futures_util::StreamExt;
            let closed = tokio::time::timeout(Duration::from_secs(10), async {
                while let Some(Ok(m)) = ws.next().await {
                    if let tokio_tungstenite::tungstenite::Message::Close(Some(f)) = m {
                        return u16::from(f.code);
                    }
                }
                0
            })
            .await
            .unwrap();
            assert_eq!(closed, 4020, "past authorization, refused upstream");
        }
        Err(e) => panic!("the console URL from replica 1 was refused by replica 2: {e:?}"),
    }
    match tokio_tungstenite::connect_async(on(&r[0])).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 401),
        other => panic!("a used console URL opened again: {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn three_replicas_run_each_job_once_within_one_limit_per_node_and_one_cron_tick() {
    let Some(pg) = PgDb::fresh("replicas_jobs").await else { return };
    let s = seed_on(&pg.url).await;
    let sim = SimProc::start(s.dir.path(), 400, 50, 100).await;
    let guac_port = free_port();
    let guac = Proc::spawn(
        {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_proxdesk"));
            cmd.args(["sim", "guacamole", "--listen", &format!("127.0.0.1:{guac_port}")]);
            cmd
        },
        s.dir.path().join("guac.log"),
    );
    let guac_url = format!("http://127.0.0.1:{guac_port}");
    let listening = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", guac_port)).await.is_err() {
        assert!(Instant::now() < listening, "the Guacamole simulator did not listen\n{}", guac.tail());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let env = [
        ("PROXDESK_PROVISION_CONCURRENCY", "4"),
        ("PROXDESK_PROVISION_PER_NODE", "1"),
        ("PROXDESK_GUAC_URL", guac_url.as_str()),
        ("PROXDESK_GUAC_USER", "guacadmin"),
        ("PROXDESK_GUAC_PASSWORD", "guacadmin"),
        ("PROXDESK_GUAC_SCHEDULE", "*/2 * * * * *"),
    ];
    let r = replicas(&s, &sim, 3, &env).await;
    let started = Instant::now();

    const REQUESTS: usize = 9;
    let mut ids = vec![];
    for n in 0..REQUESTS {
        ids.push(r[n % 3].approved(&s, s.templates[n % s.templates.len()], &format!("lab-{n}")).await);
    }
    let mut holders = BTreeSet::new();
    let until = Instant::now() + Duration::from_secs(60);
    while open_jobs(&s).await.iter().any(|j| j.kind != proxdesk::workflows::guac_sync::KIND) {
        holders.extend(lease_holders(&s).await);
        assert!(Instant::now() < until, "jobs still open\n{}", tails(&r));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(holders.len() >= 2, "the replicas shared the work: {holders:?}");
    for id in &ids {
        assert_eq!(r[0].settle(&s.user_token, *id, Duration::from_secs(10)).await["status"], "ready");
        let jobs = provision_jobs(&s.db, *id).await;
        assert_eq!(jobs.len(), 1, "request {id}");
        assert_eq!((jobs[0].state, jobs[0].attempts), (jobs::JobState::Succeeded, 1), "request {id} ran once");
    }
    let stats = sim.stats().await;
    one_container_each(&stats, &ids);
    assert_eq!(stats["calls"]["lxc-clone"].as_u64(), Some(REQUESTS as u64), "one clone per request");
    for node in ["pve1", "pve2", "pve3"] {
        let peak = stats["peak_running"][format!("{node}/vzclone")].as_u64().unwrap_or(0);
        assert_eq!(peak, 1, "one provision at a time on {node} across three replicas: {}", stats["peak_running"]);
    }

    // Every replica ticks the same schedule; each tick made one sync job. The provisions may all be done
    // before the first tick (every 2 s): wait for a few ticks.
    let ticked = Instant::now() + Duration::from_secs(20);
    let (all, elapsed) = loop {
        let elapsed = started.elapsed().as_secs();
        let all = jobs::list(&s.db, &jobs::JobFilter { limit: Some(1000), ..Default::default() }).await.unwrap();
        let syncs = all.iter().filter(|j| j.kind == proxdesk::workflows::guac_sync::KIND).count();
        if syncs >= 3 || Instant::now() > ticked {
            break (all, elapsed);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let syncs: Vec<&jobs::Job> = all.iter().filter(|j| j.kind == proxdesk::workflows::guac_sync::KIND).collect();
    let keys: BTreeSet<&str> = syncs.iter().filter_map(|j| j.idempotency_key.as_deref()).collect();
    assert_eq!(keys.len(), syncs.len(), "one job per tick");
    assert!(syncs.len() >= 3 && syncs.len() as u64 <= elapsed / 2 + 2, "{} syncs in {elapsed} s", syncs.len());
}

#[tokio::test]
async fn a_replica_killed_mid_provision_is_taken_over_by_another() {
    let Some(pg) = PgDb::fresh("replicas_kill").await else { return };
    let s = seed_on(&pg.url).await;
    let sim = SimProc::start(s.dir.path(), 1500, 200, 300).await;
    let mut r = replicas(&s, &sim, 2, &[]).await;
    let id = r[0].approved(&s, s.templates[0], "lab-killed").await;

    // Wait until a replica holds the job while its clone runs, then kill that one.
    let until = Instant::now() + Duration::from_secs(15);
    let holder = loop {
        let cp = provision_jobs(&s.db, id).await.last().and_then(|j| j.checkpoint.clone()).unwrap_or(Value::Null);
        if let Some(pid) = lease_holders(&s).await.into_iter().next()
            && cp["clone_upid"].is_string()
        {
            break pid;
        }
        assert!(Instant::now() < until, "the clone never started\n{}", tails(&r));
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let victim = r.iter().position(|x| x.proc.pid() == holder).expect("the holder is one of ours");
    let survivor = r.remove(1 - victim);
    r.remove(0).proc.kill();

    // The killed replica's slots on the node and template free themselves within their time to live.
    let done = survivor.settle(&s.user_token, id, Duration::from_secs(45)).await;
    assert_eq!(done["status"], "ready", "{done}");
    let stats = sim.stats().await;
    one_container_each(&stats, &[id]);
    assert_eq!(stats["calls"]["lxc-clone"].as_u64(), Some(1), "the clone was sent once");
    let jobs = provision_jobs(&s.db, id).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].attempts, 2, "claimed again after the lease of the killed replica ran out");
}

#[tokio::test]
async fn sigterm_with_twenty_jobs_running_exits_in_bounded_time_and_the_rest_finish_elsewhere() {
    let Some(pg) = PgDb::fresh("replicas_term").await else { return };
    let s = seed_on(&pg.url).await;
    let sim = SimProc::start(s.dir.path(), 1000, 200, 300).await;
    let env = [("PROXDESK_PROVISION_CONCURRENCY", "20"), ("PROXDESK_PROVISION_PER_NODE", "20")];
    let mut r = replicas(&s, &sim, 1, &env).await;
    const REQUESTS: usize = 20;
    let mut ids = vec![];
    for n in 0..REQUESTS {
        ids.push(r[0].approved(&s, s.templates[n % s.templates.len()], &format!("lab-{n}")).await);
    }
    let until = Instant::now() + Duration::from_secs(20);
    while open_jobs(&s).await.iter().filter(|j| j.state == jobs::JobState::Running).count() < REQUESTS {
        assert!(Instant::now() < until, "the twenty jobs never ran at once\n{}", tails(&r));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A second replica stands by; the first is stopped as systemd stops it.
    r.extend(replicas(&s, &sim, 1, &env).await);
    let took = r[0].proc.terminate(Duration::from_secs(30)).unwrap_or_else(|| panic!("no exit\n{}", tails(&r)));
    eprintln!("SIGTERM to exit with {REQUESTS} jobs running: {} ms", took.as_millis());
    assert!(took < Duration::from_secs(15), "took {took:?}");

    for id in &ids {
        let done = r[1].settle(&s.user_token, *id, Duration::from_secs(60)).await;
        assert_eq!(done["status"], "ready", "{done}");
    }
    let stats = sim.stats().await;
    one_container_each(&stats, &ids);
    assert_eq!(stats["calls"]["lxc-clone"].as_u64(), Some(REQUESTS as u64), "no clone sent twice");
}
