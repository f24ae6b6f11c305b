//! The metric families and their registration, names prefixed `proxdesk_`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::labels::{
    CallLabels, CallTimeLabels, ConsoleLabels, HttpLabels, HttpTimeLabels, JobLabels, JobTimeLabels, QueueLabels,
    SignInLabels, SyncLabels,
};

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// 5 ms to about 40 s: page renders, API calls, PVE and Guacamole calls.
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// 50 ms to about 1.7 h: jobs, from a quick sync to a slow clone.
fn job_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 18))
}

/// Every family proxdesk records.
pub struct Families {
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Histograms<HttpTimeLabels>,
    pub jobs: Family<JobLabels, Counter>,
    pub job_duration: Histograms<JobTimeLabels>,
    pub queue_depth: Family<QueueLabels, Gauge>,
    pub pve_calls: Family<CallLabels, Counter>,
    pub pve_duration: Histograms<CallTimeLabels>,
    pub guac_calls: Family<CallLabels, Counter>,
    pub guac_duration: Histograms<CallTimeLabels>,
    pub consoles_open: Family<ConsoleLabels, Gauge>,
    pub guac_sync_runs: Family<SyncLabels, Counter>,
    pub guac_sync_changes: Counter,
    pub sign_in_failures: Family<SignInLabels, Counter>,
}

impl Families {
    pub(super) fn register(r: &mut Registry) -> Families {
        let f = Families {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(request_buckets),
            jobs: Family::default(),
            job_duration: Family::new_with_constructor(job_buckets),
            queue_depth: Family::default(),
            pve_calls: Family::default(),
            pve_duration: Family::new_with_constructor(request_buckets),
            guac_calls: Family::default(),
            guac_duration: Family::new_with_constructor(request_buckets),
            consoles_open: Family::default(),
            guac_sync_runs: Family::default(),
            guac_sync_changes: Counter::default(),
            sign_in_failures: Family::default(),
        };
        // Counters get `_total` from the encoder; histograms `_seconds` from their unit.
        r.register(
            "proxdesk_http_requests",
            "HTTP requests answered, by method, route pattern and status",
            f.http_requests.clone(),
        );
        r.register_with_unit(
            "proxdesk_http_request_duration",
            "Time to answer an HTTP request (to the response head), by method and route pattern",
            Unit::Seconds,
            f.http_duration.clone(),
        );
        r.register("proxdesk_jobs", "Job attempts finished in this process, by kind and outcome", f.jobs.clone());
        r.register_with_unit(
            "proxdesk_job_duration",
            "Time of one job attempt in this process, by kind",
            Unit::Seconds,
            f.job_duration.clone(),
        );
        r.register(
            "proxdesk_job_queue_depth",
            "Jobs queued or running, by kind and state, read from the database at scrape time: the queue is \
             shared, so every replica reports the same figures",
            f.queue_depth.clone(),
        );
        r.register(
            "proxdesk_pve_calls",
            "Proxmox VE API calls, by method, endpoint template and status (or error)",
            f.pve_calls.clone(),
        );
        r.register_with_unit(
            "proxdesk_pve_call_duration",
            "Time of one Proxmox VE API call, by method and endpoint template",
            Unit::Seconds,
            f.pve_duration.clone(),
        );
        r.register(
            "proxdesk_guacamole_calls",
            "Guacamole API calls, by method, endpoint template and status (or error)",
            f.guac_calls.clone(),
        );
        r.register_with_unit(
            "proxdesk_guacamole_call_duration",
            "Time of one Guacamole API call, by method and endpoint template",
            Unit::Seconds,
            f.guac_duration.clone(),
        );
        r.register(
            "proxdesk_console_sessions_open",
            "Console sessions relayed by this process now, by kind",
            f.consoles_open.clone(),
        );
        r.register("proxdesk_guacamole_sync_runs", "Guacamole sync runs, by outcome", f.guac_sync_runs.clone());
        r.register(
            "proxdesk_guacamole_sync_changes",
            "Changes Guacamole sync runs applied",
            f.guac_sync_changes.clone(),
        );
        r.register("proxdesk_sign_in_failures", "Refused sign-ins, by method", f.sign_in_failures.clone());
        f
    }
}
