//! Shared test helpers: `TestApp` runs the real server on a random port with a fresh database: a SQLite
//! file, or with `PROXDESK_TEST_DB=postgres` a PostgreSQL database of its own (see [`test_backend`]).

use proxdesk::config::RawSettings;
use proxdesk::domain::roles::Role;
use proxdesk::secrets::Secret;
use proxdesk::services::{self, Actor, catalog::TemplateInput};
use proxdesk::startup::App;
use reqwest::{Client, Response, StatusCode};
use sea_orm::DatabaseConnection;
use serde_json::Value;
use tokio::sync::oneshot;

pub struct TestApp {
    pub address: String,
    pub data_dir: std::path::PathBuf,
    /// The database the app runs on (SQLite in `data_dir`, or PostgreSQL).
    pub database_url: String,
    pub db: DatabaseConnection,
    /// The running app's shared state (its console registry, settings…).
    pub state: proxdesk::startup::AppState,
    pub api: Client,
    /// The separate metrics listener's port, when `metrics_listen` is set.
    pub metrics_port: Option<u16>,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
    /// Dropped last: the database outlives the server using it.
    _pg: Option<crate::pg::PgDb>,
}

/// The database the suite runs on: `PROXDESK_TEST_DB=postgres` runs every test app on a fresh
/// PostgreSQL database (CI runs the suite once on each); anything else, or unset, on SQLite.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TestBackend {
    Sqlite,
    Postgres,
}

pub fn test_backend() -> TestBackend {
    match std::env::var("PROXDESK_TEST_DB").as_deref() {
        Ok("postgres") => TestBackend::Postgres,
        Ok("sqlite" | "") | Err(_) => TestBackend::Sqlite,
        Ok(other) => panic!("PROXDESK_TEST_DB must be sqlite or postgres, not {other:?}"),
    }
}

/// For a test of SQLite itself (its file, its online backup): the data dir's SQLite file, whatever
/// the suite's backend.
pub fn sqlite_only(raw: &mut RawSettings) {
    raw.0.remove("database_url");
}

/// A fresh PostgreSQL database when the suite runs on PostgreSQL; its URL goes into `database_url`.
pub async fn backend_database(raw: &mut RawSettings) -> Option<crate::pg::PgDb> {
    if test_backend() != TestBackend::Postgres {
        return None;
    }
    let pg = crate::pg::PgDb::fresh("pdit").await?;
    raw.set("database_url", pg.url.clone());
    Some(pg)
}

/// Settings for a test instance: temp data dir, port 0, quiet logs.
pub fn test_settings(dir: &std::path::Path) -> RawSettings {
    let mut raw = RawSettings::defaults();
    raw.set("data_dir", dir.display().to_string());
    raw.set("listen", "127.0.0.1:0");
    raw.set("log", "warn");
    raw
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut RawSettings)) -> TestApp {
    proxdesk::integrations::install_tls_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut raw = test_settings(dir.path());
    let pg = backend_database(&mut raw).await;
    let default_url = raw.0.get("public_url").cloned();
    configure(&mut raw);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // The address the tests reach, unless a test set one of its own (say, an https desk behind a proxy).
    if raw.0.get("public_url") == default_url.as_ref() {
        raw.set("public_url", format!("http://127.0.0.1:{port}"));
    }
    let settings = raw.into_settings().expect("valid test settings");
    let database_url = settings.database_url.clone();
    let app = App::build(settings, listener).await.expect("app builds");
    let db = app.state().db.clone();
    let state = app.state().clone();
    let metrics_port = app.metrics_port();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        data_dir: dir.path().to_owned(),
        database_url,
        db,
        state,
        api: Client::new(),
        metrics_port,
        _dir: dir,
        _stop: stop,
        _pg: pg,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Creates an account and returns it with its password.
    pub async fn user(&self, name: &str, role: Role) -> (Actor, String) {
        let password = format!("{name}-password-123");
        let new =
            services::users::NewUser { username: name.into(), role, password: Some(Secret::new(password.clone())) };
        let (user, _) = services::users::create(&self.db, None, new).await.expect("user created");
        (user.try_into().unwrap(), password)
    }

    /// A fresh API token for `actor`.
    pub async fn token(&self, actor: &Actor) -> String {
        let (_, token) = services::tokens::create(&self.db, None, actor.id, "test").await.unwrap();
        token.expose().clone()
    }

    /// A catalog template: max 4 cores, 4096 MiB, 32 GiB.
    pub async fn template(&self, name: &str) -> i64 {
        self.template_at(name, "pve1", 9000, "node").await
    }

    /// A catalog template for the PVE template `vmid` on `node`, finished as `finish_mode`.
    pub async fn template_at(&self, name: &str, node: &str, vmid: i64, finish_mode: &str) -> i64 {
        let t = TemplateInput {
            name: name.into(),
            description: "test template".into(),
            node: node.into(),
            vmid,
            default_cores: 1,
            max_cores: 4,
            default_memory_mib: 1024,
            max_memory_mib: 4096,
            default_disk_gib: 8,
            max_disk_gib: 32,
            full_clone: true,
            enabled: true,
            net0: proxdesk::services::catalog::DEFAULT_NET0.into(),
            finish_mode: finish_mode.into(),
            ..Default::default()
        };
        services::catalog::create(&self.db, None, None, t).await.unwrap().id
    }

    /// A group named `name` with the accounts `members`; returns its id.
    pub async fn group(&self, name: &str, members: &[i64]) -> i64 {
        let admin = proxdesk::services::Actor { id: 0, username: "setup".into(), role: Role::Admin, language: None };
        let input = services::groups::GroupInput { name: name.into(), description: String::new() };
        let g = services::groups::create(&self.db, &admin, input).await.unwrap();
        for m in members {
            services::groups::add_member(&self.db, &admin, g.id, *m).await.unwrap();
        }
        g.id
    }

    /// A catalog entry like [`TestApp::template_at`] (finish mode `none`) whose requests need approvals
    /// from `stages`, groups named in order.
    pub async fn staged_template(&self, name: &str, stages: &[&str]) -> i64 {
        let t = TemplateInput {
            name: name.into(),
            description: "needs approvals".into(),
            node: "pve1".into(),
            vmid: 9000,
            default_cores: 1,
            max_cores: 4,
            default_memory_mib: 1024,
            max_memory_mib: 4096,
            default_disk_gib: 8,
            max_disk_gib: 32,
            full_clone: true,
            enabled: true,
            net0: proxdesk::services::catalog::DEFAULT_NET0.into(),
            finish_mode: "none".into(),
            approval_stages: Some(stages.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        services::catalog::create(&self.db, None, None, t).await.unwrap().id
    }

    pub async fn put(&self, token: &str, path: &str, body: Value) -> Response {
        self.api.put(self.url(path)).bearer_auth(token).json(&body).send().await.unwrap()
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.api.get(self.url(path)).bearer_auth(token).send().await.unwrap()
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Response {
        self.api.post(self.url(path)).bearer_auth(token).json(&body).send().await.unwrap()
    }

    /// Submits a request through the API; returns the response.
    pub async fn submit(&self, token: &str, template_id: i64, hostname: &str) -> Response {
        let body = serde_json::json!({
            "template_id": template_id, "hostname": hostname, "cores": 1, "memory_mib": 512,
            "disk_gib": 8, "purpose": "testing"
        });
        self.post(token, "/api/v1/requests", body).await
    }

    /// Submits a request and returns its id.
    pub async fn submit_ok(&self, token: &str, template_id: i64, hostname: &str) -> i64 {
        let r = self.submit(token, template_id, hostname).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    /// A browser: a client with its own cookie jar that does not follow redirects.
    pub fn browser(&self) -> Browser {
        let client = Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { client, base: self.address.clone() }
    }

    /// A browser already logged in as `name`.
    pub async fn logged_in(&self, name: &str, password: &str) -> Browser {
        let b = self.browser();
        let r = b.login(name, password).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "login of {name} failed");
        b
    }
}

pub struct Browser {
    pub client: Client,
    pub base: String,
}

impl Browser {
    pub async fn get(&self, path: &str) -> Response {
        self.client.get(format!("{}{path}", self.base)).send().await.unwrap()
    }

    /// The CSRF token of the form on `page`.
    pub async fn csrf(&self, page: &str) -> String {
        let html = self.get(page).await.text().await.unwrap();
        csrf_in(&html).unwrap_or_else(|| panic!("no CSRF token on {page}"))
    }

    /// Posts a form; `csrf` is added from `page` unless the fields already carry one.
    pub async fn post_form(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> Response {
        let mut fields: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if !fields.iter().any(|(k, _)| k == "csrf") {
            fields.push(("csrf".into(), self.csrf(page).await));
        }
        self.post_raw(action, &fields).await
    }

    pub async fn post_raw(&self, action: &str, fields: &[(String, String)]) -> Response {
        self.client.post(format!("{}{action}", self.base)).form(fields).send().await.unwrap()
    }

    pub async fn login(&self, name: &str, password: &str) -> Response {
        self.post_form("/login", "/login", &[("username", name), ("password", password)]).await
    }
}

pub fn csrf_in(html: &str) -> Option<String> {
    let start = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}
