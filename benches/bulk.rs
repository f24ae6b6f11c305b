//! Bulk power-off: 200 ready containers on three nodes, powered off in one bulk run by proxdesk's
//! workers against the PVE simulator, measured from the submission to the last settled item, with the
//! PVE calls it made. The inventory is not a kind one: beside proxdesk's machines the cluster holds a
//! generated real-world mix of other guests, every PVE answer takes `BENCH_LATENCY_MS`, each stop task
//! runs `BENCH_POWER_MS`, a tenth of the machines are already off (refused), a few are held by a backup
//! lock (refused) and a few stop tasks fail inside PVE (failed with its words).
//!
//! `cargo bench --bench bulk`. Sizes: `BENCH_MACHINES` (200), `BENCH_POWER_MS` (1000), `BENCH_LATENCY_MS`
//! (15), `BENCH_PER_NODE` (4, as provisioning), `BENCH_OTHER_GUESTS` (600). The simulator runs in this
//! process (the figure is a wall time, not a memory one).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proxdesk::config::RawSettings;
use proxdesk::domain::bulk::{BulkAction, ItemState};
use proxdesk::domain::guest::MachineKind;
use proxdesk::domain::quota::Quota;
use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::{Endpoint, Fault, GeneratedInventory, SimConfig, Simulator, admin_acl};
use proxdesk::services::{self, Actor, catalog::TemplateInput};
use proxdesk::startup::App;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

const TOKEN_ID: &str = "proxdesk@pve!bench";
const SECRET: &str = "bench-secret";
const NODES: [(&str, i64); 3] = [("pve1", 9000), ("pve2", 9001), ("pve3", 9002)];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn seed(db: &sea_orm::DatabaseConnection) -> (Actor, Actor, Vec<i64>) {
    let mut actors = vec![];
    for (name, role) in [("chief", Role::Admin), ("teacher", Role::User)] {
        let new = services::users::NewUser { username: name.into(), role, password: None };
        let (user, _) = services::users::create(db, None, new).await.expect("user");
        actors.push(Actor::try_from(user).expect("actor"));
    }
    let big = Quota { max_machines: 100_000, max_cores: 1_000_000, max_memory_mib: 1_000_000, max_disk_gib: 1_000_000 };
    services::quotas::set_role_quota(db, &actors[0], Role::User, big).await.expect("quota");
    let mut templates = vec![];
    for (node, vmid) in NODES {
        let t = TemplateInput {
            name: format!("{node}/{vmid}"),
            kind: MachineKind::Lxc,
            description: "bench".into(),
            node: node.into(),
            vmid,
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
        };
        templates.push(services::catalog::create(db, None, None, t).await.expect("template").id);
    }
    let user = actors.pop().expect("user");
    (actors.pop().expect("admin"), user, templates)
}

async fn count(db: &sea_orm::DatabaseConnection, status: &str) -> u64 {
    entities::request::Entity::find()
        .filter(entities::request::Column::Status.eq(status))
        .count(db)
        .await
        .expect("count")
}

async fn run() {
    let machines = env_u64("BENCH_MACHINES", 200);
    let power_ms = env_u64("BENCH_POWER_MS", 1000);
    let latency_ms = env_u64("BENCH_LATENCY_MS", 15);
    let per_node = env_u64("BENCH_PER_NODE", 4);
    let others = env_u64("BENCH_OTHER_GUESTS", 600) as usize;
    let config = SimConfig {
        clone_duration: Duration::from_millis(50),
        power_duration: Duration::from_millis(power_ms),
        ip_delay: Duration::from_millis(50),
        latency: Duration::from_millis(latency_ms),
        generated: (others > 0).then_some(GeneratedInventory { guests: others, seed: 7 }),
        ..SimConfig::for_tests()
    }
    .with_token(TOKEN_ID, SECRET, admin_acl());
    let sim = Simulator::start(config).await.expect("sim");

    let dir = tempfile::tempdir().expect("temp dir");
    let mut raw = RawSettings::defaults();
    raw.set("data_dir", dir.path().display().to_string());
    raw.set("listen", "127.0.0.1:0");
    raw.set("log", "warn");
    raw.set("pve_url", sim.url().to_owned());
    raw.set("pve_token", format!("{TOKEN_ID}={SECRET}"));
    raw.set("provision_per_node", per_node.to_string());
    raw.set("provision_concurrency", (per_node * 3).to_string());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listener");
    let app = App::build(raw.into_settings().expect("settings"), listener).await.expect("app");
    let db = app.state().db.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    // The lab: `machines` ready containers of one user, a third per node.
    let (admin, teacher, templates) = seed(&db).await;
    let setup = Instant::now();
    for n in 0..machines {
        let new = services::requests::NewRequest {
            template_id: templates[(n % 3) as usize],
            hostname: format!("lab-{n}"),
            cores: 1,
            memory_mib: 512,
            disk_gib: 8,
            purpose: "benchmark".into(),
            ..Default::default()
        };
        let r = services::requests::create(&db, &teacher, new).await.expect("request");
        services::requests::approve(&db, &admin, r.id, Default::default()).await.expect("approve");
    }
    while count(&db, "ready").await + count(&db, "failed").await < machines {
        assert!(setup.elapsed() < Duration::from_secs(600), "the lab never got ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(count(&db, "ready").await, machines, "every machine of the lab is ready");
    let rows = entities::machine::Entity::find().all(&db).await.expect("machines");
    let ids: Vec<i64> = rows.iter().map(|m| m.id).collect();

    // Not a kind lab: a tenth already off, two held by a backup, two stop tasks that fail inside PVE.
    let (off, locked) = (machines as usize / 10, 2);
    sim.with_state(|s| {
        for (i, m) in rows.iter().enumerate() {
            let g = s.guests.get_mut(&(m.vmid.expect("vmid") as u64)).expect("guest");
            if i % 10 == 5 && i / 10 < off {
                g.running = false;
            } else if i == 1 || i == 2 {
                g.config.insert("lock".into(), "backup".into());
            }
        }
    });
    sim.faults().inject_times(
        Endpoint::LxcStop,
        Fault::TaskError("lxc-stop: timed out waiting for container".into()),
        2,
    );
    let expect_done = machines as usize - off - locked - 2;

    sim.calls().reset();
    let started = Instant::now();
    let run_id = services::bulk::start(&db, &teacher, BulkAction::Stop, &ids).await.expect("bulk run");
    let submitted = started.elapsed();
    let run = loop {
        let run = services::bulk::get(&db, &teacher, run_id).await.expect("run");
        if run.finished() {
            break run;
        }
        assert!(started.elapsed() < Duration::from_secs(900), "the bulk run never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let wall = started.elapsed();
    let calls = sim.calls().snapshot();
    let total: u64 = calls.values().sum();
    let _ = stop.send(());
    let _ = server.await;

    let states: BTreeMap<&str, usize> = ItemState::ALL.iter().map(|s| (s.as_str(), run.count(*s))).collect();
    let running = machines as usize - off;
    // Each node stops `per_node` at a time: a lower bound is its waves of one stop task each.
    let waves = (running as u64).div_ceil(3 * per_node);
    let bound = Duration::from_millis(waves * power_ms);
    println!(
        "bulk power-off: {machines} containers on 3 nodes ({} other guests in the cluster), per-node limit {per_node}, {} workers",
        others,
        per_node * 3
    );
    println!(
        "simulator: stop task {power_ms} ms, {latency_ms} ms per answer; {off} already off, {locked} locked, 2 stop tasks fail"
    );
    println!("results: {states:?} (submission took {:.0} ms)", submitted.as_secs_f64() * 1000.0);
    println!(
        "wall {:.1} s; bound {:.1} s ({waves} waves of one {power_ms} ms stop per node slot); {:.2} × the bound",
        wall.as_secs_f64(),
        bound.as_secs_f64(),
        wall.as_secs_f64() / bound.as_secs_f64()
    );
    let mut by_endpoint: Vec<(Endpoint, u64)> = calls.into_iter().collect();
    by_endpoint.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let top: Vec<String> =
        by_endpoint.iter().take(6).map(|(k, v)| format!("{k:?} {:.2}", *v as f64 / machines as f64)).collect();
    println!("PVE calls: {total} in all, {:.2} per machine ({})", total as f64 / machines as f64, top.join(", "));
    assert_eq!(run.count(ItemState::Done), expect_done, "{states:?}");
    assert_eq!(run.count(ItemState::Refused), off + locked, "{states:?}");
    assert_eq!(run.count(ItemState::Failed), 2, "{states:?}");
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(run());
}
