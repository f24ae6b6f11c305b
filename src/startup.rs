//! Building the application: database, routes, and the server on a listener it is handed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use poem::Server;
use poem::listener::{Acceptor, TcpAcceptor};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::config::{RawSettings, Settings};
use crate::http;
use crate::integrations::guacamole::{self, GuacSettings, sync::DesiredSettings};
use crate::integrations::pve;
use crate::integrations::ssh::SshConfig;
use crate::services::slots::SharedSemaphores;
use crate::workflows::guac_source::{PveSource, ReadSettings};
use crate::workflows::guac_sync::GuacSync;
use crate::workflows::{self, Deps, Limits, WorkerSettings};

/// Everything request handlers share.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    pub pages: Arc<http::pages::Renderer>,
    /// The Proxmox VE cluster, when `PROXDESK_PVE_URL` is set.
    pub pve: Option<pve::Client>,
    /// Whether the Guacamole sync is set up (Guacamole and a cluster configured), so runs may be queued.
    pub guac_sync: bool,
    /// The console sessions open in this process.
    pub consoles: Arc<crate::console::Registry>,
    /// Idle timeout and maximum length of console sessions.
    pub console_limits: crate::console::Limits,
    /// The live pages' event streams open in this process.
    pub live: Arc<crate::services::live::Streams>,
    /// The outside identity providers people may sign in through.
    pub sign_in: Arc<crate::services::sign_in::Providers>,
    /// People's lists of the Proxmox VE guests they may use, kept briefly.
    pub pve_guests: Arc<crate::services::pve_guests::Cache>,
    /// Lease lengths, warnings and grace period.
    pub leases: Arc<crate::services::leases::LeaseSettings>,
    /// Whether notification mail is configured (`smtp_host`).
    pub mail: bool,
    /// The hosts webhooks may be sent to (`webhook_hosts`; empty: any).
    pub webhook_hosts: Arc<Vec<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("Proxmox VE settings: {0}")]
    Pve(String),
    #[error("Guacamole settings: {0}")]
    Guac(String),
    #[error("sign-in settings: {0}")]
    SignIn(String),
    #[error("notification settings: {0}")]
    Notify(String),
    #[error("schedule: {0}")]
    Schedule(#[from] jobs::JobError),
    #[error(
        "the secret key does not open the secrets stored in the database: set PROXDESK_SECRET_KEY (or restore \
         secret.key in the data dir) to the key they were sealed with"
    )]
    SecretKeyMismatch,
}

/// Live streams one user may hold open at once (tabs, devices): each holds a connection.
pub const LIVE_STREAMS_PER_USER: usize = 16;

/// A built application, bound to its listener and ready to run.
pub struct App {
    state: AppState,
    acceptor: TcpAcceptor,
    port: u16,
    workers: Option<jobs::WorkerHandle>,
    scheduler: Option<jobs::Scheduler>,
    /// The separate metrics listener (`metrics_listen`) and its port, if set.
    metrics: Option<(TcpAcceptor, u16)>,
}

impl App {
    /// Connects to the database, applies migrations and binds the routes to `listener`.
    pub async fn build(settings: Settings, listener: TcpListener) -> Result<App, StartupError> {
        crate::integrations::install_tls_provider();
        let db = crate::db::connect(&settings.database_url, settings.db_pool).await?;
        crate::db::migrate(&db).await?;
        check_secret_key(&db, &settings).await?;
        let port = listener.local_addr()?.port();
        let pve = match pve::PveConfig::from_settings(&settings).map_err(|e| StartupError::Pve(e.to_string()))? {
            Some(config) => Some(pve::Client::new(config).map_err(|e| StartupError::Pve(e.to_string()))?),
            None => None,
        };
        let raw = RawSettings(settings.raw.clone());
        let worker_settings = WorkerSettings::from_settings(&raw)?;
        let ssh = SshConfig::from_settings(&raw)?;
        let guac = guac_sync(&db, pve.as_ref(), &raw, &settings)?;
        let guac_ready = guac.is_some();
        let leases = crate::services::leases::LeaseSettings::from_settings(&raw)?;
        // Cron ticks enqueue jobs only where workers run them: the sweep's steps need a cluster.
        let mut scheduler = None;
        if worker_settings.enabled && pve.is_some() {
            let s = jobs::Scheduler::new(db.clone()).await?;
            if let Some((_, cron)) = &guac {
                workflows::guac_sync::schedule(&s, cron).await?;
            }
            workflows::leases::schedule(&s, &leases.schedule).await?;
            s.start().await?;
            scheduler = Some(s);
        }
        let console_limits = crate::console::Limits::from_settings(&raw)?;
        let metrics = match http::metrics::MetricsSettings::from_settings(&raw)?.listen {
            Some(addr) => {
                let listener = TcpListener::bind(addr).await?;
                let port = listener.local_addr()?.port();
                Some((TcpAcceptor::from_tokio(listener)?, port))
            }
            None => None,
        };
        let sign_in = crate::services::sign_in::Providers::from_settings(&raw, &settings.public_url, pve.as_ref())
            .map_err(StartupError::SignIn)?;
        let notify = workflows::notify::NotifySettings::from_settings(&raw)?;
        let notify =
            workflows::notify::NotifyDeps::new(db.clone(), settings.secret_key.clone(), &settings.public_url, &notify)
                .map(|deps| (Arc::new(deps), notify))
                .map_err(StartupError::Notify)?;
        let mail = notify.1.mail.is_some();
        let webhook_hosts = Arc::new(notify.1.webhook_hosts.clone());
        let workers = match (&pve, worker_settings.enabled) {
            (Some(client), true) => {
                let guac = guac.map(|(s, _)| s);
                let deps = WorkerDeps { ssh, guac, leases: leases.clone(), notify };
                Some(start_workers(&db, client.clone(), &settings, &worker_settings, deps))
            }
            (None, true) => {
                tracing::warn!("PROXDESK_PVE_URL is not set: approved requests wait until a cluster is configured");
                None
            }
            (_, false) => None,
        };
        let state = AppState {
            db,
            settings: Arc::new(settings),
            pages: Arc::new(http::pages::Renderer::new()),
            pve,
            guac_sync: guac_ready,
            consoles: Arc::default(),
            console_limits,
            live: crate::services::live::Streams::new(LIVE_STREAMS_PER_USER),
            sign_in,
            pve_guests: Arc::default(),
            leases: Arc::new(leases),
            mail,
            webhook_hosts,
        };
        Ok(App { state, acceptor: TcpAcceptor::from_tokio(listener)?, port, workers, scheduler, metrics })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The port of the separate metrics listener, when `metrics_listen` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(_, port)| *port)
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish (up to 10 s).
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
        let routes = http::routes(self.state.clone());
        let addr = self.acceptor.local_addr();
        // Live streams never finish on their own: end them as the server stops, so it need not wait.
        let live = self.state.live.clone();
        let shutdown = async move {
            shutdown.await;
            live.close_all();
        };
        tracing::info!(addr = ?addr, "listening");
        // The metrics listener has nothing in flight worth waiting for: it stops with the main one.
        let metrics = self.metrics.map(|(acceptor, _)| {
            tracing::info!(addr = ?acceptor.local_addr(), "serving metrics");
            let routes = http::metrics::own_listener(self.state.db.clone());
            tokio::spawn(Server::new_with_acceptor(acceptor).run(routes))
        });
        // Upgraded console sockets are not requests the server waits for: tell their browsers first.
        let consoles = self.state.consoles.clone();
        let shutdown = async move {
            shutdown.await;
            consoles.end_all(crate::console::CloseReason::ShuttingDown, Duration::from_secs(2)).await;
        };
        Server::new_with_acceptor(self.acceptor)
            .idle_timeout(Duration::from_secs(60))
            .run_with_graceful_shutdown(routes, shutdown, Some(Duration::from_secs(10)))
            .await?;
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        if let Some(scheduler) = self.scheduler
            && let Err(e) = scheduler.shutdown().await
        {
            tracing::warn!(error = %e, "scheduler did not stop cleanly");
        }
        if let Some(workers) = self.workers {
            // Running jobs get their grace period to checkpoint.
            workers.shutdown().await;
        }
        Ok(())
    }
}

/// Refuses to start with a key that cannot open what is stored (a lost key file would otherwise be
/// replaced by a new key silently, and every stored password become unreadable).
async fn check_secret_key(db: &DatabaseConnection, settings: &Settings) -> Result<(), StartupError> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let sample = entities::machine::Entity::find()
        .filter(entities::machine::Column::PasswordSealed.is_not_null())
        .one(db)
        .await?
        .and_then(|m| m.password_sealed);
    match sample {
        Some(sealed) if settings.secret_key.open(&sealed).is_err() => Err(StartupError::SecretKeyMismatch),
        _ => Ok(()),
    }
}

/// The Guacamole sync, when `PROXDESK_GUAC_URL` and a cluster are configured, with its cron schedule.
pub fn guac_sync(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    raw: &RawSettings,
    settings: &Settings,
) -> Result<Option<(Arc<GuacSync>, String)>, StartupError> {
    let Some(guac) = GuacSettings::from_raw(raw).map_err(|e| StartupError::Guac(e.to_string()))? else {
        return Ok(None);
    };
    let Some(pve) = pve else {
        tracing::warn!("PROXDESK_GUAC_URL is set but PROXDESK_PVE_URL is not: no Guacamole sync");
        return Ok(None);
    };
    let client = guacamole::Client::new(&guac).map_err(|e| StartupError::Guac(e.to_string()))?;
    let source = PveSource {
        db: db.clone(),
        pve: pve.clone(),
        key: settings.secret_key.clone(),
        read: ReadSettings::from_settings(&guac),
    };
    let sync = GuacSync {
        client: Arc::new(client),
        source: Arc::new(source),
        settings: DesiredSettings::from_settings(&guac),
    };
    Ok(Some((Arc::new(sync), guac.schedule.clone())))
}

/// What the workers run with besides the cluster.
struct WorkerDeps {
    ssh: Option<SshConfig>,
    guac: Option<Arc<GuacSync>>,
    leases: crate::services::leases::LeaseSettings,
    notify: (Arc<workflows::notify::NotifyDeps>, workflows::notify::NotifySettings),
}

fn start_workers(
    db: &DatabaseConnection,
    pve: pve::Client,
    settings: &Settings,
    ws: &WorkerSettings,
    wd: WorkerDeps,
) -> jobs::WorkerHandle {
    let WorkerDeps { ssh, guac, leases, notify } = wd;
    let limits = Limits {
        nodes: SharedSemaphores::new(db.clone(), "node", ws.per_node),
        templates: SharedSemaphores::new(db.clone(), "template", 1),
        clone_send: tokio::sync::Mutex::new(()),
    };
    let deps = Deps { db: db.clone(), pve, ssh, key: settings.secret_key.clone(), limits, timing: ws.timing, leases };
    let mut registry = workflows::registry(Arc::new(deps), ws);
    if let Some(sync) = guac {
        workflows::guac_sync::register(&mut registry, sync);
    }
    workflows::notify::register(&mut registry, notify.0, &notify.1);
    let config = jobs::WorkerConfig {
        worker_id: format!("{}-{}", hostname(), std::process::id()),
        concurrency: ws.concurrency,
        lease_duration: ws.lease,
        heartbeat_interval: ws.lease / 3,
        poll_interval: ws.lease.min(Duration::from_secs(1)),
        on_finish: Some(jobs::OnFinish(Arc::new(|f: jobs::Finished<'_>| {
            crate::metrics::job_finished(f.kind, f.outcome, f.elapsed)
        }))),
        ..Default::default()
    };
    jobs::Worker::new(db.clone(), registry, config).spawn()
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "proxdesk".into())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
