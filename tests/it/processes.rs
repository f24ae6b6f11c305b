//! proxdesk and the PVE simulator as separate processes (the real binary), for crash and multi-process
//! tests: start, SIGKILL, restart; seeding through the library on the same SQLite file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proxdesk::config::RawSettings;
use proxdesk::domain::quota::Quota;
use proxdesk::domain::roles::Role;
use proxdesk::secrets::Secret;
use proxdesk::services::{self, Actor, catalog::TemplateInput};
use reqwest::StatusCode;
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

use crate::helpers::test_settings;
use crate::provision::{TOKEN_ID, TOKEN_SECRET};

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process, SIGKILLed when dropped.
pub struct Proc {
    child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(mut cmd: Command, log: PathBuf) -> Proc {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let child = cmd.stdin(Stdio::null()).stdout(file.try_clone().unwrap()).stderr(file).spawn().unwrap();
        Proc { child, log }
    }

    /// SIGKILL (no shutdown, no final checkpoint), then reaps it.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// The process id (lease owners name it: `{hostname}-{pid}#…`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits up to `within` for the exit; returns how long it took, `None` if it did not.
    pub fn terminate(&mut self, within: Duration) -> Option<Duration> {
        let started = Instant::now();
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -TERM failed");
        while started.elapsed() < within {
            if self.child.try_wait().unwrap().is_some() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// The last lines of its output, for failure messages.
    pub fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn wait_http(client: &reqwest::Client, url: &str, proc: &Proc) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if client.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        assert!(Instant::now() < until, "{url} did not answer:\n{}", proc.tail());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `proxdesk sim pve` with proxdesk's token and the given durations.
pub struct SimProc {
    pub proc: Proc,
    pub url: String,
    client: reqwest::Client,
}

impl SimProc {
    pub async fn start(dir: &Path, clone_ms: u64, power_ms: u64, ip_delay_ms: u64) -> SimProc {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_proxdesk"));
        cmd.args(["sim", "pve", "--listen", &format!("127.0.0.1:{port}"), "--no-auth-delay"])
            .args(["--token", &format!("{TOKEN_ID}={TOKEN_SECRET}")])
            .args(["--clone-ms", &clone_ms.to_string(), "--power-ms", &power_ms.to_string()])
            .args(["--ip-delay-ms", &ip_delay_ms.to_string()])
            .current_dir(dir);
        let proc = Proc::spawn(cmd, dir.join("sim.log"));
        let sim = SimProc { proc, url: format!("http://127.0.0.1:{port}"), client: reqwest::Client::new() };
        wait_http(&sim.client, &format!("{}/_sim/stats", sim.url), &sim.proc).await;
        sim
    }

    /// `{"calls": {"lxc-clone": n, …}, "total_calls": n, "guests": [{vmid, node, lock, running, description…}]}`.
    pub async fn stats(&self) -> Value {
        self.client.get(format!("{}/_sim/stats", self.url)).send().await.unwrap().json().await.unwrap()
    }

    pub async fn calls(&self, endpoint: &str) -> u64 {
        self.stats().await["calls"][endpoint].as_u64().unwrap_or(0)
    }
}

/// A data dir seeded with an admin, a user with a large quota, and templates pve1/9000, pve2/9001,
/// pve3/9002 (finish mode `none`).
pub struct Seeded {
    pub dir: tempfile::TempDir,
    /// The database `serve` is pointed at: the data dir's SQLite file, or PostgreSQL.
    pub database_url: String,
    pub db: DatabaseConnection,
    pub admin_token: String,
    pub user_token: String,
    pub templates: Vec<i64>,
    /// Dropped last: the database outlives the processes using it.
    _pg: Option<crate::pg::PgDb>,
}

/// [`seed_on`] the suite's backend (a fresh PostgreSQL database with `PROXDESK_TEST_DB=postgres`).
pub async fn seed() -> Seeded {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = test_settings(dir.path());
    let pg = crate::helpers::backend_database(&mut raw).await;
    seed_into(dir, raw, pg).await
}

/// [`seed`] into `database_url` (PostgreSQL) instead of the data dir's SQLite file.
pub async fn seed_on(database_url: &str) -> Seeded {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = test_settings(dir.path());
    raw.set("database_url", database_url);
    seed_into(dir, raw, None).await
}

async fn seed_into(dir: tempfile::TempDir, raw: RawSettings, pg: Option<crate::pg::PgDb>) -> Seeded {
    proxdesk::integrations::install_tls_provider();
    let settings = raw.into_settings().unwrap();
    let db = proxdesk::db::connect(&settings.database_url, 2).await.unwrap();
    proxdesk::db::migrate(&db).await.unwrap();
    let mut actors = vec![];
    for (name, role) in [("chief", Role::Admin), ("alice", Role::User)] {
        let password = Some(Secret::new(format!("{name}-password-123")));
        let (user, _) =
            services::users::create(&db, None, services::users::NewUser { username: name.into(), role, password })
                .await
                .unwrap();
        let actor: Actor = user.try_into().unwrap();
        let (_, token) = services::tokens::create(&db, None, actor.id, "test").await.unwrap();
        actors.push((actor, token.expose().clone()));
    }
    let admin = actors[0].0.clone();
    let big = Quota { max_machines: 10_000, max_cores: 100_000, max_memory_mib: 1_000_000, max_disk_gib: 1_000_000 };
    services::quotas::set_role_quota(&db, &admin, Role::User, big).await.unwrap();
    let mut templates = vec![];
    for (i, (node, vmid)) in [("pve1", 9000), ("pve2", 9001), ("pve3", 9002)].into_iter().enumerate() {
        let t = TemplateInput {
            name: format!("Template {i}"),
            description: "test template".into(),
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
        templates.push(services::catalog::create(&db, None, None, t).await.unwrap().id);
    }
    let database_url = settings.database_url.clone();
    Seeded {
        dir,
        database_url,
        db,
        admin_token: actors[0].1.clone(),
        user_token: actors[1].1.clone(),
        templates,
        _pg: pg,
    }
}

/// `proxdesk serve` on `dir`, pointed at `pve_url`, with a 600 ms job lease and quick polling.
pub struct Served {
    pub proc: Proc,
    pub url: String,
    pub api: reqwest::Client,
}

impl Served {
    pub async fn start(s: &Seeded, pve_url: &str, name: &str) -> Served {
        Served::start_with(s, pve_url, name, &[]).await
    }

    /// [`Served::start`] with further `PROXDESK_*` variables.
    pub async fn start_with(s: &Seeded, pve_url: &str, name: &str, env: &[(&str, &str)]) -> Served {
        let dir = s.dir.path();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_proxdesk"));
        cmd.arg("serve")
            .env_clear()
            .env("PROXDESK_DATA_DIR", dir)
            .env("PROXDESK_DATABASE_URL", &s.database_url)
            .env("PROXDESK_LISTEN", format!("127.0.0.1:{port}"))
            .env("PROXDESK_PUBLIC_URL", &url)
            .env("PROXDESK_LOG", "warn")
            .env("PROXDESK_PVE_URL", pve_url)
            .env("PROXDESK_PVE_TOKEN", format!("{TOKEN_ID}={TOKEN_SECRET}"))
            .env("PROXDESK_JOB_LEASE_MS", "600")
            .env("PROXDESK_PROVISION_POLL_MS", "25")
            .env("PROXDESK_PROVISION_BACKOFF_MS", "50")
            .env("PROXDESK_PROVISION_TASK_TIMEOUT_SECS", "20")
            .env("PROXDESK_PROVISION_IP_TIMEOUT_SECS", "20")
            .envs(env.iter().copied())
            .current_dir(dir);
        let proc = Proc::spawn(cmd, dir.join(format!("{name}.log")));
        let served = Served { proc, url, api: reqwest::Client::new() };
        wait_http(&served.api, &format!("{}/healthz", served.url), &served.proc).await;
        served
    }

    pub async fn get(&self, token: &str, path: &str) -> Value {
        let r = self.api.get(format!("{}{path}", self.url)).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.unwrap()
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Value {
        let r = self.api.post(format!("{}{path}", self.url)).bearer_auth(token).json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "POST {path}");
        r.json().await.unwrap()
    }

    /// The user submits a request for `template`, the admin approves it; returns its id.
    pub async fn approved(&self, s: &Seeded, template: i64, hostname: &str) -> i64 {
        let body = json!({"template_id": template, "hostname": hostname, "cores": 1, "memory_mib": 512,
            "disk_gib": 8, "purpose": "testing"});
        let id = self.post(&s.user_token, "/api/v1/requests", body).await["id"].as_i64().unwrap();
        self.post(&s.admin_token, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
        id
    }

    /// Polls the request until it leaves the in-progress states (bounded by `within`).
    pub async fn settle(&self, token: &str, id: i64, within: Duration) -> Value {
        let until = Instant::now() + within;
        loop {
            let r = self.get(token, &format!("/api/v1/requests/{id}")).await;
            let status = r["status"].as_str().unwrap().to_owned();
            if !["approved", "provisioning", "deleting"].contains(&status.as_str()) {
                return r;
            }
            assert!(Instant::now() < until, "request {id} stuck in {status}: {r}\n{}", self.proc.tail());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
