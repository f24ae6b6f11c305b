//! The `guac_sync` job: runs the Guacamole sync on a cron schedule or on demand and records each run
//! for the admin page.

use std::sync::Arc;

use jobs::{HandlerError, KindOptions, Outcome, Registry, Scheduler};
use sea_orm::DatabaseConnection;

use crate::integrations::guacamole::Client;
use crate::integrations::guacamole::sync::{DesiredSettings, ProvisionedMachine, SyncReport, VmInfo, run_sync};
use crate::metrics::labels::SyncOutcome;
use crate::services::{Actor, audit, guac_sync_runs};

/// The job kind.
pub const KIND: &str = "guac_sync";

/// Where the sync's inputs come from: proxdesk's machines and PVE's VMs (with notes and addresses).
#[jobs::async_trait]
pub trait SyncSource: Send + Sync + 'static {
    /// Provisioned machines with their owners.
    async fn machines(&self) -> Result<Vec<ProvisionedMachine>, String>;
    /// Every VM and container with its notes, and the IPv4 address of those that `machines` or their
    /// notes give a connection.
    async fn vms(&self, machines: &[ProvisionedMachine]) -> Result<Vec<VmInfo>, String>;
}

/// Fixed inputs (tests, the demo).
#[derive(Debug, Clone, Default)]
pub struct FixedSource {
    /// Machines.
    pub machines: Vec<ProvisionedMachine>,
    /// VMs.
    pub vms: Vec<VmInfo>,
}

#[jobs::async_trait]
impl SyncSource for FixedSource {
    async fn machines(&self) -> Result<Vec<ProvisionedMachine>, String> {
        Ok(self.machines.clone())
    }
    async fn vms(&self, _machines: &[ProvisionedMachine]) -> Result<Vec<VmInfo>, String> {
        Ok(self.vms.clone())
    }
}

/// Why a run did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SyncRunError {
    /// The inputs could not be read (PVE or the database).
    #[error("sync inputs: {0}")]
    Source(String),
    /// Guacamole could not be read or logged into.
    #[error("{0}")]
    Guacamole(#[from] crate::integrations::guacamole::GuacError),
    /// The run could not be recorded.
    #[error("recording the run: {0}")]
    Record(#[from] crate::services::ServiceError),
    /// The run could not be queued.
    #[error("queueing the run: {0}")]
    Queue(#[from] jobs::JobError),
}

/// Everything one sync run needs.
pub struct GuacSync {
    /// The Guacamole client (logs in on first use, renews its token when it expires).
    pub client: Arc<Client>,
    /// The inputs.
    pub source: Arc<dyn SyncSource>,
    /// Notes key, host name, user creation.
    pub settings: DesiredSettings,
}

impl GuacSync {
    /// One run: read inputs, sync (or only plan), and record the outcome, failures included.
    #[tracing::instrument(skip_all, fields(dry_run))]
    pub async fn run(&self, db: &DatabaseConnection, dry_run: bool) -> Result<SyncReport, SyncRunError> {
        let started = chrono::Utc::now();
        let result = async {
            let machines = self.source.machines().await.map_err(SyncRunError::Source)?;
            let vms = self.source.vms(&machines).await.map_err(SyncRunError::Source)?;
            Ok::<_, SyncRunError>(run_sync(&self.client, &machines, &vms, &self.settings, dry_run).await?)
        }
        .await;
        match result {
            Ok(report) => {
                guac_sync_runs::record(db, &report).await?;
                let a = &report.applied;
                let changes = a.created
                    + a.updated
                    + a.deleted
                    + a.groups_created
                    + a.groups_deleted
                    + a.users_created
                    + a.grants_added
                    + a.grants_removed;
                let outcome = if report.error_count() > 0 { SyncOutcome::WithErrors } else { SyncOutcome::Succeeded };
                crate::metrics::guac_sync_run(outcome, changes as u64);
                Ok(report)
            }
            Err(e) => {
                crate::metrics::guac_sync_run(SyncOutcome::Failed, 0);
                guac_sync_runs::record_failure(db, started, &e.to_string()).await?;
                Err(e)
            }
        }
    }
}

/// Registers the `guac_sync` kind: one run at a time, no retries (the next tick is the retry).
pub fn register(registry: &mut Registry, sync: Arc<GuacSync>) {
    let options = KindOptions { max_attempts: Some(1), concurrency: Some(1), ..KindOptions::default() };
    registry.register_fn(KIND, options, move |ctx| {
        let sync = sync.clone();
        async move {
            let dry_run = ctx.payload().get("dry_run").and_then(|v| v.as_bool()).unwrap_or(false);
            match sync.run(ctx.db(), dry_run).await {
                Ok(_) => Ok::<_, HandlerError>(Outcome::Done),
                Err(e) => Ok(Outcome::failed(e.to_string())),
            }
        }
    });
}

/// Enqueues a `guac_sync` job on every tick of `cron` (6 fields, seconds first, UTC).
pub async fn schedule(scheduler: &Scheduler, cron: &str) -> Result<(), jobs::JobError> {
    scheduler.schedule(cron, KIND, |_| serde_json::json!({ "dry_run": false })).await
}

fn run_now() -> jobs::NewJob {
    jobs::NewJob::new(KIND, serde_json::json!({ "dry_run": false }))
}

/// Enqueues one run now (at start-up of the demo, in tests).
pub async fn enqueue_now(db: &DatabaseConnection) -> Result<i64, jobs::JobError> {
    let id = jobs::enqueue(db, run_now()).await?;
    jobs::wake();
    Ok(id)
}

/// Enqueues one run now on an admin's request ("sync now"), with its audit entry in the same transaction.
#[tracing::instrument(skip_all, fields(admin = %admin.username))]
pub async fn request_now(db: &DatabaseConnection, admin: &Actor) -> Result<i64, SyncRunError> {
    let txn = crate::db::begin_write(db).await.map_err(crate::services::ServiceError::from)?;
    let id = jobs::enqueue(&txn, run_now()).await?;
    audit::record(&txn, Some(admin), "guac.sync_requested", "job", id, serde_json::json!({})).await?;
    txn.commit().await.map_err(crate::services::ServiceError::from)?;
    jobs::wake();
    Ok(id)
}
