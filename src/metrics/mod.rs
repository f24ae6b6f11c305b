//! Prometheus metrics: one process-wide registry, its metric families, and the OpenMetrics text of a
//! scrape. Nothing here knows poem or sea-orm: the HTTP edge records requests and serves the text,
//! the clients record their calls, and the queue depth is handed in at scrape time.

mod families;
pub mod labels;
pub mod paths;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

pub use families::Families;
use labels::{
    CallLabels, CallTimeLabels, ConsoleLabels, JobLabels, JobTimeLabels, QueueLabels, SignInLabels, SignInMethod,
    SyncLabels, SyncOutcome,
};

/// The content type of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

struct Metrics {
    registry: Registry,
    families: Families,
}

fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let mut registry = Registry::default();
        let families = Families::register(&mut registry);
        Metrics { registry, families }
    })
}

/// The metric families, to record into.
pub fn families() -> &'static Families {
    &metrics().families
}

/// One queue row count: kind, state, number of jobs.
pub type Depth = (String, &'static str, i64);

/// The OpenMetrics text of every family, with the queue depth set to `depth` (read from the database
/// by the caller just before). Scrapes are serialised so one scrape's depth never mixes with another's.
pub fn render(depth: &[Depth]) -> String {
    static SCRAPE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = SCRAPE.lock().unwrap_or_else(|e| e.into_inner());
    let m = metrics();
    m.families.queue_depth.clear();
    for (kind, state, count) in depth {
        m.families
            .queue_depth
            .get_or_create(&QueueLabels { kind: kind.clone(), state: (*state).to_owned() })
            .set(*count);
    }
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut text, &m.registry);
    text
}

/// Records one HTTP request.
pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let f = families();
    let method = labels::http_method(method);
    f.http_requests.get_or_create(&labels::HttpLabels { method, route: route.to_owned(), status }).inc();
    f.http_duration
        .get_or_create(&labels::HttpTimeLabels { method, route: route.to_owned() })
        .observe(elapsed.as_secs_f64());
}

/// Which outside system a call went to.
#[derive(Clone, Copy, Debug)]
pub enum Upstream {
    Pve,
    Guacamole,
}

/// Records one call to Proxmox VE or Guacamole: `path` is the request path below the API root (it is
/// normalised here), `status` the HTTP status or `None` for a transport failure or timeout.
pub fn call(upstream: Upstream, method: &str, path: &str, status: Option<u16>, started: Instant) {
    let f = families();
    let endpoint = match upstream {
        Upstream::Pve => paths::pve_endpoint(path),
        Upstream::Guacamole => paths::guac_endpoint(path),
    };
    let method = labels::http_method(method);
    let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
    let (calls, time) = match upstream {
        Upstream::Pve => (&f.pve_calls, &f.pve_duration),
        Upstream::Guacamole => (&f.guac_calls, &f.guac_duration),
    };
    calls.get_or_create(&CallLabels { method, endpoint: endpoint.clone(), status }).inc();
    time.get_or_create(&CallTimeLabels { method, endpoint }).observe(started.elapsed().as_secs_f64());
}

/// Records one finished job attempt of `kind` with its `outcome` (`succeeded`, `retry`, `failed`,
/// `dead`, `cancelled`).
pub fn job_finished(kind: &str, outcome: &'static str, elapsed: Duration) {
    let f = families();
    f.jobs.get_or_create(&JobLabels { kind: kind.to_owned(), outcome }).inc();
    f.job_duration.get_or_create(&JobTimeLabels { kind: kind.to_owned() }).observe(elapsed.as_secs_f64());
}

/// Records a refused sign-in.
pub fn sign_in_failed(method: SignInMethod) {
    families().sign_in_failures.get_or_create(&SignInLabels { method }).inc();
}

/// Records one Guacamole sync run and the changes it applied.
pub fn guac_sync_run(outcome: SyncOutcome, changes: u64) {
    let f = families();
    f.guac_sync_runs.get_or_create(&SyncLabels { outcome }).inc();
    f.guac_sync_changes.inc_by(changes);
}

/// Counts a console session as open until dropped.
#[must_use = "the session counts as open only while the guard lives"]
pub struct ConsoleOpen(ConsoleLabels);

impl ConsoleOpen {
    /// A console session of `kind` (`vnc`, `terminal`) opens.
    pub fn new(kind: &'static str) -> Self {
        let labels = ConsoleLabels { kind };
        families().consoles_open.get_or_create(&labels).inc();
        ConsoleOpen(labels)
    }
}

impl Drop for ConsoleOpen {
    fn drop(&mut self) {
        families().consoles_open.get_or_create(&self.0).dec();
    }
}
