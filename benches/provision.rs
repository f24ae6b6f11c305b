//! Provisioning throughput: approved requests run by proxdesk's workers against the PVE simulator,
//! measured from the first approval to the last `ready`, in two scenarios: three LXC templates on three
//! nodes, then a QEMU cloud-init template (pve1) beside two LXC templates (pve2, pve3) taking half the
//! requests. `BENCH_SCENARIOS` picks them (`lxc,mixed`, the default).
//!
//! `cargo bench --bench provision`. Sizes can be overridden for a quick run:
//! `BENCH_REQUESTS` (200), `BENCH_CLONE_MS` (2000), `BENCH_POWER_MS` (1000), `BENCH_IP_MS` (300),
//! `BENCH_PER_NODE` (4), `BENCH_POLL_MS` (unset: proxdesk's default). The simulator runs in a child
//! process, so the peak RSS printed is proxdesk's alone (server, workers and SQLite).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proxdesk::config::RawSettings;
use proxdesk::domain::guest::MachineKind;
use proxdesk::domain::quota::Quota;
use proxdesk::domain::roles::Role;
use proxdesk::services::{self, Actor, catalog::TemplateInput};
use proxdesk::startup::App;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use sim_child::{SECRET, SimTimes, TOKEN_ID};

mod sim_child;

/// One catalog entry of a scenario; requests go round-robin over the list, so an entry listed twice
/// gets twice the share.
#[derive(Clone, Copy)]
struct Entry {
    kind: MachineKind,
    node: &'static str,
    vmid: i64,
}

const fn entry(kind: MachineKind, node: &'static str, vmid: i64) -> Entry {
    Entry { kind, node, vmid }
}

const LXC_ONLY: &[Entry] = &[
    entry(MachineKind::Lxc, "pve1", 9000),
    entry(MachineKind::Lxc, "pve2", 9001),
    entry(MachineKind::Lxc, "pve3", 9002),
];
const MIXED: &[Entry] = &[
    entry(MachineKind::QemuCloudInit, "pve1", 9100),
    entry(MachineKind::Lxc, "pve2", 9001),
    entry(MachineKind::QemuCloudInit, "pve1", 9100),
    entry(MachineKind::Lxc, "pve3", 9002),
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Sizes {
    requests: u64,
    clone_ms: u64,
    power_ms: u64,
    ip_ms: u64,
    per_node: u64,
    poll_ms: Option<u64>,
}

impl Sizes {
    fn from_env() -> Sizes {
        Sizes {
            requests: env_u64("BENCH_REQUESTS", 200),
            clone_ms: env_u64("BENCH_CLONE_MS", 2000),
            power_ms: env_u64("BENCH_POWER_MS", 1000),
            ip_ms: env_u64("BENCH_IP_MS", 300),
            per_node: env_u64("BENCH_PER_NODE", 4),
            poll_ms: std::env::var("BENCH_POLL_MS").ok().and_then(|v| v.parse().ok()),
        }
    }
}

impl Sizes {
    fn sim_times(&self) -> SimTimes {
        SimTimes { clone_ms: self.clone_ms, power_ms: self.power_ms, ip_ms: self.ip_ms }
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn seed(db: &sea_orm::DatabaseConnection, entries: &[Entry]) -> (Actor, Actor, Vec<i64>) {
    let mut actors = vec![];
    for (name, role) in [("chief", Role::Admin), ("alice", Role::User)] {
        let new = services::users::NewUser { username: name.into(), role, password: None };
        let (user, _) = services::users::create(db, None, new).await.expect("user");
        actors.push(Actor::try_from(user).expect("actor"));
    }
    let big = Quota { max_machines: 100_000, max_cores: 1_000_000, max_memory_mib: 1_000_000, max_disk_gib: 1_000_000 };
    services::quotas::set_role_quota(db, &actors[0], Role::User, big).await.expect("quota");
    let mut ids: BTreeMap<(&str, i64), i64> = BTreeMap::new();
    let mut templates = vec![];
    for e in entries {
        let (node, vmid) = (e.node, e.vmid);
        if let Some(id) = ids.get(&(node, vmid)) {
            templates.push(*id);
            continue;
        }
        let t = TemplateInput {
            name: format!("{node}/{vmid}"),
            kind: e.kind,
            description: "bench".into(),
            node: node.into(),
            vmid,
            default_cores: 1,
            max_cores: 4,
            default_memory_mib: 512,
            max_memory_mib: 4096,
            default_disk_gib: 8,
            max_disk_gib: 32,
            // Cloud-init labs clone linked, as PVE does by default for templates.
            full_clone: e.kind == MachineKind::Lxc,
            enabled: true,
            net0: services::catalog::DEFAULT_NET0.into(),
            finish_mode: "none".into(),
            ..Default::default()
        };
        let id = services::catalog::create(db, None, None, t).await.expect("template").id;
        ids.insert((node, vmid), id);
        templates.push(id);
    }
    let user = actors.pop().expect("user");
    (actors.pop().expect("admin"), user, templates)
}

/// A lower bound on the time to the last `ready`, per node, from the simulator's durations. An LXC
/// template's clones run one after another (PVE locks the source), so its chain is `n × clone`, plus the
/// last one's start and address. QEMU clones of a stopped template run side by side (PVE only
/// share-locks it), so a node's QEMU provisions are bounded by the per-node limit instead: each holds a
/// slot for its clone, resize and start tasks and the address wait, in waves of `per_node`.
fn bound(s: &Sizes, entries: &[Entry]) -> (Duration, String) {
    let mut per_template: BTreeMap<(&str, i64, bool), u64> = BTreeMap::new();
    for n in 0..s.requests {
        let e = entries[(n % entries.len() as u64) as usize];
        *per_template.entry((e.node, e.vmid, e.kind == MachineKind::Lxc)).or_default() += 1;
    }
    let mut worst = (Duration::ZERO, String::new());
    for ((node, vmid, lxc), n) in per_template {
        let (ms, how) = if lxc {
            (
                n * s.clone_ms + s.power_ms + s.ip_ms,
                format!("LXC {vmid} on {node}: {n} serial clones × {} ms + start + address", s.clone_ms),
            )
        } else {
            let waves = n.div_ceil(s.per_node);
            let each = s.clone_ms + 2 * s.power_ms + s.ip_ms;
            (
                waves * each,
                format!(
                    "QEMU {vmid} on {node}: {n} parallel clones in {waves} waves of {} × (clone + resize + start + address = {each} ms)",
                    s.per_node
                ),
            )
        };
        if Duration::from_millis(ms) > worst.0 {
            worst = (Duration::from_millis(ms), how);
        }
    }
    worst
}

async fn run(s: &Sizes, scenario: &str, entries: &[Entry]) {
    let (mut child, url) = sim_child::spawn();

    let dir = tempfile::tempdir().expect("temp dir");
    let mut raw = RawSettings::defaults();
    raw.set("data_dir", dir.path().display().to_string());
    raw.set("listen", "127.0.0.1:0");
    raw.set("log", "warn");
    raw.set("pve_url", url.clone());
    raw.set("pve_token", format!("{TOKEN_ID}={SECRET}"));
    raw.set("provision_per_node", s.per_node.to_string());
    raw.set("provision_concurrency", (s.per_node * 3).to_string());
    if let Some(poll) = s.poll_ms {
        raw.set("provision_poll_ms", poll.to_string());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listener");
    let app = App::build(raw.into_settings().expect("settings"), listener).await.expect("app");
    let db = app.state().db.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let (admin, user, templates) = seed(&db, entries).await;
    let calls_before = sim_child::stats(&url).await["total_calls"].as_u64().unwrap_or(0);

    let started = Instant::now();
    for n in 0..s.requests {
        let template = templates[(n % templates.len() as u64) as usize];
        let new = services::requests::NewRequest {
            template_id: template,
            hostname: format!("bench-{n}"),
            cores: 1,
            memory_mib: 512,
            disk_gib: 8,
            purpose: "benchmark".into(),
            ssh_public_key: None,
            ..Default::default()
        };
        let r = services::requests::create(&db, &user, new).await.expect("request");
        services::requests::approve(&db, &admin, r.id, Default::default()).await.expect("approve");
    }
    let approved_in = started.elapsed();

    let (bound, bound_how) = bound(s, entries);
    let give_up = started + bound * 4 + Duration::from_secs(60);
    let (ready, failed) = loop {
        let count = |status: &'static str| {
            entities::request::Entity::find().filter(entities::request::Column::Status.eq(status)).count(&db)
        };
        let (ready, failed) = (count("ready").await.expect("count"), count("failed").await.expect("count"));
        if ready + failed >= s.requests || Instant::now() > give_up {
            break (ready, failed);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let total = started.elapsed();
    let stats = sim_child::stats(&url).await;
    let calls = stats["total_calls"].as_u64().unwrap_or(0) - calls_before;
    let rss = peak_rss_kib();
    let _ = stop.send(());
    let _ = server.await;
    let _ = child.kill();
    let _ = child.wait();

    let kinds: Vec<String> = entries.iter().map(|e| format!("{} {} on {}", e.kind, e.vmid, e.node)).collect();
    println!("provision [{scenario}]: {} approved requests round-robin over {}", s.requests, kinds.join(", "));
    println!(
        "simulator: clone {} ms, start {} ms, IPv4 after {} ms; per-node limit {}, {} workers, task poll {}",
        s.clone_ms,
        s.power_ms,
        s.ip_ms,
        s.per_node,
        s.per_node * 3,
        s.poll_ms.map_or("default".to_owned(), |p| format!("{p} ms"))
    );
    println!("ready {ready}, failed {failed} (approvals took {:.2} s)", approved_in.as_secs_f64());
    println!(
        "total {:.1} s; bound {:.1} s ({bound_how}); {:.2} × the bound",
        total.as_secs_f64(),
        bound.as_secs_f64(),
        total.as_secs_f64() / bound.as_secs_f64()
    );
    let mut by_endpoint: Vec<(String, u64)> = stats["calls"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
        .unwrap_or_default();
    by_endpoint.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let top: Vec<String> =
        by_endpoint.iter().take(6).map(|(k, v)| format!("{k} {:.1}", *v as f64 / s.requests as f64)).collect();
    println!("PVE calls per request: {:.1} ({})", calls as f64 / s.requests as f64, top.join(", "));
    println!("peak RSS (VmHWM) of proxdesk: {} MiB", rss / 1024);
    assert_eq!(ready, s.requests, "every request ends ready");
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let sizes = Sizes::from_env();
    if sim_child::run_if_child(&rt, sizes.sim_times()) {
        return;
    }
    let scenarios = std::env::var("BENCH_SCENARIOS").unwrap_or_else(|_| "lxc,mixed".into());
    for scenario in scenarios.split(',') {
        let entries = match scenario {
            "lxc" => LXC_ONLY,
            "mixed" => MIXED,
            other => panic!("unknown scenario {other}: lxc or mixed"),
        };
        rt.block_on(run(&sizes, scenario, entries));
    }
}
