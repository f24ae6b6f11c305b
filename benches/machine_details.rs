//! The machine details page under load: `wrk` on `/machines/:id` as its logged-in owner, against the
//! release binary talking to the PVE simulator with a realistic inventory and per-call latency.
//!
//! `cargo bench --bench machine_details` generates `BENCH_GUESTS` (300) guests on three nodes (about 80 %
//! running), gives alice a ready machine for each, starts `proxdesk serve` against the simulator (every
//! PVE call delayed `BENCH_PVE_MS`, default 15 ms, like a LAN round trip plus pveproxy's work), then
//! measures the page of a running container, a running VM and a stopped guest, the hour and the day, and
//! the `/machines/:id/live` fragment the page polls. It prints req/s, p50/p99 and the PVE calls per page
//! (counted by the simulator over the whole run). `BENCH_SECONDS` (6), `BENCH_CONNECTIONS` (16).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use proxdesk::config::RawSettings;
use proxdesk::domain::guest_marker::GuestMarker;
use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::{GeneratedInventory, GuestKind, SimConfig, SimHandle, Simulator, admin_acl};
use proxdesk::secrets::Secret;
use proxdesk::services::{self, catalog::TemplateInput};
use sea_orm::{ActiveValue::Set, EntityTrait};

const TOKEN_ID: &str = "root@pam!bench";
const SECRET: &str = "bench-secret";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Wrk {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    non_2xx: u64,
}

fn wrk(url: &str, header: &str, seconds: u64, connections: u64) -> Wrk {
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency", "-H", header, url])
        .output()
        .expect("wrk runs (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let ms = |s: &str| -> f64 {
        let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
        let v: f64 = num.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => v / 1000.0,
            "s" => v * 1000.0,
            _ => v,
        }
    };
    let field = |prefix: &str, nth: usize| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(nth).map(str::to_owned))
    };
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Wrk {
        rps: field("Requests/sec:", 1).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN),
        p50_ms: field("50%", 1).map(|v| ms(&v)).unwrap_or(f64::NAN),
        p99_ms: field("99%", 1).map(|v| ms(&v)).unwrap_or(f64::NAN),
        requests,
        non_2xx: text
            .lines()
            .find(|l| l.contains("Non-2xx"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    }
}

/// Alice and a ready machine of hers for every generated guest (its guest tagged with the request's
/// marker); her session and (machine id, VMID, kind,
/// running) of each.
async fn seed(dir: &std::path::Path, sim: &SimHandle) -> (String, Vec<(i64, u64, GuestKind, bool)>) {
    let mut raw = RawSettings::defaults();
    raw.set("data_dir", dir.display().to_string());
    let settings = raw.into_settings().unwrap();
    let db = proxdesk::db::connect(&settings.database_url, 4).await.unwrap();
    proxdesk::db::migrate(&db).await.unwrap();
    let pw = Secret::new("bench-password-1".to_string());
    let new = services::users::NewUser { username: "alice".into(), role: Role::User, password: Some(pw.clone()) };
    let (alice, _) = services::users::create(&db, None, new).await.unwrap();
    let t = TemplateInput {
        name: "Debian 13".into(),
        description: "bench".into(),
        node: "pve1".into(),
        vmid: 9000,
        default_cores: 1,
        max_cores: 4,
        default_memory_mib: 1024,
        max_memory_mib: 8192,
        default_disk_gib: 8,
        max_disk_gib: 64,
        full_clone: true,
        enabled: true,
        net0: proxdesk::services::catalog::DEFAULT_NET0.into(),
        finish_mode: "node".into(),
        ..Default::default()
    };
    let tpl = services::catalog::create(&db, None, None, t).await.unwrap();
    let now = Utc::now();
    let mut out = vec![];
    for g in sim.state().guests.values().filter(|g| !g.is_template()) {
        let hostname = g.name();
        let request = entities::request::ActiveModel {
            user_id: Set(alice.id),
            template_id: Set(Some(tpl.id)),
            hostname: Set(hostname.clone()),
            cores: Set(1),
            memory_mib: Set(1024),
            disk_gib: Set(8),
            purpose: Set("details benchmark".into()),
            status: Set("ready".into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        let request_id = entities::request::Entity::insert(request).exec(&db).await.unwrap().last_insert_id;
        // The marker proxdesk writes when it makes a guest, so the snapshot card's check finds it ours.
        let tags = GuestMarker::for_request(request_id).tags();
        sim.with_state(|st| st.guests.get_mut(&g.vmid).unwrap().config.insert("tags".into(), tags));
        let machine = entities::machine::ActiveModel {
            request_id: Set(request_id),
            user_id: Set(alice.id),
            kind: Set(g.kind.as_str().into()),
            node: Set(g.node.clone()),
            vmid: Set(Some(g.vmid as i64)),
            hostname: Set(hostname),
            ipv4: Set(g.ip.map(|ip| ip.to_string())),
            created_at: Set(now),
            ..Default::default()
        };
        let id = entities::machine::Entity::insert(machine).exec(&db).await.unwrap().last_insert_id;
        out.push((id, g.vmid, g.kind, g.running));
    }
    let session = services::auth::login(&db, "alice", &pw, "127.0.0.1", 12).await.unwrap();
    db.close().await.unwrap();
    (session.token.expose().clone(), out)
}

fn main() {
    proxdesk::integrations::install_tls_provider();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let guests = env_or("BENCH_GUESTS", 300) as usize;
    let pve_ms = env_or("BENCH_PVE_MS", 15);
    let seconds = env_or("BENCH_SECONDS", 6);
    let connections = env_or("BENCH_CONNECTIONS", 16);
    if Command::new("wrk").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        eprintln!("wrk is not installed (apt-get install wrk); nothing measured");
        std::process::exit(1);
    }
    let sim = rt.block_on(async {
        let cfg = SimConfig {
            generated: Some(GeneratedInventory { guests, seed: 14 }),
            latency: Duration::from_millis(pve_ms),
            auth_failure_delay: Duration::ZERO,
            ..SimConfig::default()
        };
        Simulator::start(cfg.with_token(TOKEN_ID, SECRET, admin_acl())).await.expect("simulator")
    });
    let dir = tempfile::tempdir().unwrap();
    let (session, machines) = rt.block_on(seed(dir.path(), &sim));
    let pick = |kind: GuestKind, running: bool| {
        machines.iter().find(|m| m.2 == kind && m.3 == running).map(|m| m.0).expect("such a guest in the inventory")
    };
    let (ct, vm, stopped) = (pick(GuestKind::Lxc, true), pick(GuestKind::Qemu, true), pick(GuestKind::Lxc, false));

    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_proxdesk"))
        .arg("serve")
        .env("PROXDESK_DATA_DIR", dir.path())
        .env("PROXDESK_LISTEN", format!("127.0.0.1:{port}"))
        .env("PROXDESK_LOG", "warn")
        .env("PROXDESK_PVE_URL", sim.url())
        .env("PROXDESK_PVE_TOKEN", format!("{TOKEN_ID}={SECRET}"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _child = Kill(child);
    let base = format!("http://127.0.0.1:{port}");
    rt.block_on(async {
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(format!("{base}/readyz")).send().await
                && r.status() == 200
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Warm up (the API ticket or token check, the connection pool) and check the page answers.
        let r = client
            .get(format!("{base}/machines/{ct}"))
            .header("Cookie", format!("proxdesk_session={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the details page answers");
        let html = r.text().await.unwrap();
        // The figures mean nothing if the page could not reach PVE.
        assert!(!html.contains("id=\"live-unavailable\""), "the page got its live data from the simulator");
    });

    let s = sim.state();
    let running = s.guests.values().filter(|g| !g.is_template() && g.running).count();
    println!(
        "proxdesk machine details benchmark: {} guests on {} nodes ({running} running), PVE latency {pve_ms} ms/call, \
         wrk -t2 -c{connections} -d{seconds}s",
        machines.len(),
        s.nodes.len()
    );
    drop(s);
    println!("{:<40} {:>9} {:>9} {:>9} {:>7} {:>14}", "page", "req/s", "p50 ms", "p99 ms", "non-2xx", "PVE calls/page");
    let cookie = format!("Cookie: proxdesk_session={session}");
    let targets = [
        ("/machines/:id running container, hour", format!("{base}/machines/{ct}")),
        ("/machines/:id running container, day", format!("{base}/machines/{ct}?range=day")),
        ("/machines/:id running VM, hour", format!("{base}/machines/{vm}")),
        ("/machines/:id stopped container, hour", format!("{base}/machines/{stopped}")),
        ("/machines/:id/live fragment, hour", format!("{base}/machines/{ct}/live")),
    ];
    for (name, url) in &targets {
        sim.calls().reset();
        let r = wrk(url, &cookie, seconds, connections);
        let calls: u64 = sim.calls().snapshot().values().sum();
        let per_page = calls as f64 / r.requests.max(1) as f64;
        println!("{:<40} {:>9.0} {:>9.2} {:>9.2} {:>7} {:>14.2}", name, r.rps, r.p50_ms, r.p99_ms, r.non_2xx, per_page);
    }
}
