//! The worker pool: claims due jobs, runs them with bounded concurrency, stops gracefully.
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use rand::Rng;
use sea_orm::DatabaseConnection;
use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::enqueue::WAKE;
use crate::{JobError, Registry, lease, run};

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names this worker in leases (`{worker_id}#{claim}`) and logs; make it unique per process.
    pub worker_id: String,
    /// Jobs run at once by this worker.
    pub concurrency: usize,
    /// How often to look for due jobs when not woken by [`crate::wake`] or a finished job.
    pub poll_interval: Duration,
    /// How long a claim or heartbeat holds a job; after that, another worker may take it over.
    pub lease_duration: Duration,
    /// How often a running job's lease is extended and cancellation is checked; keep it well under
    /// `lease_duration` (a third is a good choice).
    pub heartbeat_interval: Duration,
    /// How long [`WorkerHandle::shutdown`] waits for running handlers after signalling them; handlers
    /// still running then are dropped and their leases left to expire.
    pub shutdown_grace: Duration,
    /// Told of every attempt this worker settles (for metrics).
    pub on_finish: Option<OnFinish>,
}

/// One settled attempt, as [`OnFinish`] is told of it.
#[derive(Debug, Clone, Copy)]
pub struct Finished<'a> {
    /// The job's kind.
    pub kind: &'a str,
    /// `succeeded`, `retry` (queued again), `failed`, `dead` or `cancelled`.
    pub outcome: &'static str,
    /// How long the attempt ran.
    pub elapsed: Duration,
}

/// A callback told of every settled attempt.
#[derive(Clone)]
pub struct OnFinish(pub std::sync::Arc<dyn Fn(Finished<'_>) + Send + Sync>);

impl std::fmt::Debug for OnFinish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnFinish(..)")
    }
}

impl Default for WorkerConfig {
    /// A random worker id, four jobs at once, 1 s polls, 30 s leases, 10 s heartbeats, 10 s grace.
    fn default() -> Self {
        WorkerConfig {
            worker_id: format!("worker-{:08x}", rand::rng().random::<u32>()),
            concurrency: 4,
            poll_interval: Duration::from_secs(1),
            lease_duration: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            on_finish: None,
        }
    }
}

/// What the worker's tasks share.
pub(crate) struct Shared {
    pub(crate) db: DatabaseConnection,
    pub(crate) registry: Registry,
    pub(crate) config: WorkerConfig,
    pub(crate) shutdown: watch::Receiver<bool>,
    running: Mutex<HashMap<String, usize>>,
}

/// Counts a running job of a kind until dropped (also when its task is aborted).
struct Running(Arc<Shared>, String);

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = self.0.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = running.get_mut(&self.1) {
            *n = n.saturating_sub(1);
        }
    }
}

/// A pool of job runners over one database connection pool.
pub struct Worker {
    db: DatabaseConnection,
    registry: Registry,
    config: WorkerConfig,
}

impl Worker {
    /// A worker that runs the kinds in `registry` from the `jobs` table in `db`.
    pub fn new(db: DatabaseConnection, registry: Registry, config: WorkerConfig) -> Self {
        Worker { db, registry, config }
    }

    /// Runs until `shutdown` completes, then stops claiming, raises [`crate::StopReason::Shutdown`]
    /// in running handlers and waits for them up to [`WorkerConfig::shutdown_grace`].
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            db: self.db,
            registry: self.registry,
            config: self.config,
            shutdown: stop_rx,
            running: Mutex::new(HashMap::new()),
        });
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let wake = WAKE.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            while tasks.try_join_next().is_some() {}
            let free = shared.config.concurrency.saturating_sub(tasks.len());
            let mut more = false;
            if free > 0 {
                match claim_batch(&shared, free, &mut tasks).await {
                    Ok(m) => more = m,
                    Err(e) => {
                        tracing::warn!(worker = %shared.config.worker_id, error = %e, "claiming jobs failed")
                    }
                }
            }
            if more && tasks.len() < shared.config.concurrency {
                continue;
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = &mut wake => {}
                _ = tasks.join_next(), if !tasks.is_empty() => {}
                () = tokio::time::sleep(shared.config.poll_interval) => {}
            }
        }
        let _ = stop_tx.send(true);
        let drained =
            tokio::time::timeout(shared.config.shutdown_grace, async { while tasks.join_next().await.is_some() {} })
                .await;
        if drained.is_err() {
            tracing::warn!(worker = %shared.config.worker_id, left = tasks.len(),
                "handlers still running after the grace period; leaving their leases to expire");
            tasks.shutdown().await;
        }
    }

    /// Runs the worker on its own task; stop it with [`WorkerHandle::shutdown`].
    pub fn spawn(self) -> WorkerHandle {
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(self.run(async move {
            let _ = rx.await;
        }));
        WorkerHandle { shutdown: Some(tx), task: Some(task) }
    }
}

/// A running worker. Dropping it aborts the worker and its handlers at once, like a crash (their leases
/// are left to expire); [`WorkerHandle::shutdown`] stops it gracefully.
pub struct WorkerHandle {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    /// Stops claiming, signals running handlers and waits for them (up to the grace period).
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "worker task failed");
        }
    }

    /// Stops the worker and its handlers at once, as a crash would; their leases are left to expire.
    pub async fn abort(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Claims up to `free` due jobs and starts them; returns whether more may be waiting.
async fn claim_batch(shared: &Arc<Shared>, free: usize, tasks: &mut JoinSet<()>) -> Result<bool, JobError> {
    let has_room = |kind: &str| {
        let limit = shared.registry.get(kind).and_then(|k| k.options.concurrency);
        let running = shared.running.lock().unwrap_or_else(|e| e.into_inner());
        limit.is_none_or(|l| running.get(kind).copied().unwrap_or(0) < l)
    };
    let kinds: Vec<String> = shared.registry.kinds().filter(|k| has_room(k)).map(str::to_owned).collect();
    if kinds.is_empty() {
        return Ok(false);
    }
    let candidates = lease::candidates(&shared.db, &kinds, Utc::now(), free as u64).await?;
    let full = candidates.len() == free;
    let mut progress = false;
    for candidate in candidates {
        let Some(kind) = shared.registry.get(&candidate.kind).cloned() else {
            continue;
        };
        if !has_room(&candidate.kind) {
            continue;
        }
        let (now, claimed_at) = (Utc::now(), tokio::time::Instant::now());
        if candidate.state == "running" && candidate.attempts >= kind.max_attempts(candidate.max_attempts) {
            progress |= lease::bury(&shared.db, &kind, &candidate, now).await?;
            continue;
        }
        let owner = format!("{}#{:016x}", shared.config.worker_id, rand::rng().random::<u64>());
        let expires = now + shared.config.lease_duration;
        let Some(job) = lease::claim(&shared.db, candidate.id, &owner, now, expires).await? else {
            continue;
        };
        progress = true;
        *shared.running.lock().unwrap_or_else(|e| e.into_inner()).entry(job.kind.clone()).or_default() += 1;
        let guard = Running(shared.clone(), job.kind.clone());
        let shared = shared.clone();
        tasks.spawn(async move {
            let _guard = guard;
            run::run_job(shared, kind, job, owner, claimed_at).await;
        });
    }
    Ok(full && progress)
}
