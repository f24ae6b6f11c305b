//! Job handlers registered with the `jobs` queue: provisioning, deletion, Guacamole sync.

mod bulk;
mod destroy;
pub mod leases;
pub mod notify;
mod outcome;
pub mod provision;
mod timeline;

use std::sync::Arc;
use std::time::Duration;

use jobs::{Backoff, KindOptions, Registry};
use sea_orm::DatabaseConnection;

use crate::config::{ConfigError, RawSettings};
use crate::integrations::pve;
use crate::integrations::ssh::SshConfig;
use crate::secrets::SecretKey;
use crate::services::requests::{DESTROY_JOB, PROVISION_JOB};
use crate::services::slots::SharedSemaphores;

pub use outcome::StepError;

/// What the workflows need from the application.
pub struct Deps {
    pub db: DatabaseConnection,
    pub pve: pve::Client,
    pub ssh: Option<SshConfig>,
    pub key: SecretKey,
    pub limits: Limits,
    pub timing: Timing,
    /// Lease lengths, warnings and grace period.
    pub leases: crate::services::leases::LeaseSettings,
}

/// Concurrency limits, held across every process on the database.
pub struct Limits {
    /// Provisions running at once per PVE node.
    pub nodes: SharedSemaphores,
    /// One clone at a time per container template: PVE locks the source (`lock: disk`) for the whole
    /// clone. VM templates are only share-locked while cloned, so their clones are not limited here.
    pub templates: SharedSemaphores,
    /// Sending a clone (VMID pick and clone call) one at a time in this process; across processes a
    /// lock on the database does the same.
    pub clone_send: tokio::sync::Mutex<()>,
}

/// Deadlines of the waiting steps.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A PVE task (clone, create, start, resize, delete) must end within this.
    pub task: Duration,
    /// A started guest must show an IPv4 address within this (a container's interfaces, a VM's agent).
    pub ip: Duration,
    /// Pause between polls of status and interfaces.
    pub poll: Duration,
}

/// Settings of the job workers (`PROXDESK_PROVISION_*`, `PROXDESK_WORKERS`).
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub enabled: bool,
    pub concurrency: usize,
    pub per_node: usize,
    pub attempts: i32,
    pub timing: Timing,
    pub backoff: Backoff,
    /// A crashed worker's jobs are taken over after this (heartbeats renew it every third of it).
    pub lease: Duration,
}

impl WorkerSettings {
    pub fn from_settings(raw: &RawSettings) -> Result<WorkerSettings, ConfigError> {
        let secs = |key: &str, default: u64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(raw.parse(key)?.unwrap_or(default)))
        };
        Ok(WorkerSettings {
            enabled: raw.parse("workers")?.unwrap_or(true),
            concurrency: raw.parse("provision_concurrency")?.unwrap_or(8),
            per_node: raw.parse("provision_per_node")?.unwrap_or(4),
            attempts: raw.parse("provision_attempts")?.unwrap_or(5),
            timing: Timing {
                task: secs("provision_task_timeout_secs", 600)?,
                ip: secs("provision_ip_timeout_secs", 120)?,
                poll: Duration::from_millis(raw.parse("provision_poll_ms")?.unwrap_or(1000)),
            },
            backoff: Backoff {
                base: Duration::from_millis(raw.parse("provision_backoff_ms")?.unwrap_or(2000)),
                max: Duration::from_secs(300),
            },
            lease: Duration::from_millis(raw.parse("job_lease_ms")?.unwrap_or(30_000)),
        })
    }
}

/// The handlers of every job kind proxdesk runs.
pub fn registry(deps: Arc<Deps>, settings: &WorkerSettings) -> Registry {
    let mut registry = Registry::new();
    let options = KindOptions { max_attempts: Some(settings.attempts), backoff: settings.backoff, concurrency: None };
    registry.register_with(PROVISION_JOB, provision::Provision { deps: deps.clone() }, options.clone());
    registry.register_with(provision::CLEANUP_JOB, provision::Cleanup { deps: deps.clone() }, options.clone());
    registry.register_with(DESTROY_JOB, destroy::Destroy { deps: deps.clone() }, options.clone());
    leases::register(&mut registry, deps.clone(), options.clone());
    registry.register_with(crate::services::bulk::ITEM_JOB, bulk::BulkItem { deps }, options);
    registry
}
pub mod guac_notes;
pub mod guac_source;
pub mod guac_sync;
