//! Limits that hold across every proxdesk process on one database: at most `limit` holders per key (a
//! PVE node, a container template) however many replicas run. Waiters of one process queue on a local
//! semaphore first, so only as many as could win ask the database; a slot is a named lock (see
//! [`locks`]) kept alive while held and given back on drop. A holder that dies without giving it back
//! blocks its slot for at most [`SLOT_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use sea_orm::DatabaseConnection;

use super::locks::{self, Held};

/// How long a slot outlives a holder that stopped renewing it (a killed process).
pub const SLOT_TTL: Duration = Duration::from_secs(15);
/// Renewed this often while held.
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// Longest pause between two looks at the database while every slot is taken.
const MAX_POLL: Duration = Duration::from_millis(500);

/// Per-key limits shared through the database; cheap to clone.
#[derive(Clone)]
pub struct SharedSemaphores {
    db: DatabaseConnection,
    /// Names the locks: `{scope}:{key}#{slot}`.
    scope: &'static str,
    limit: usize,
    local: jobs::KeyedSemaphores,
    /// Per-key limits other than `limit`.
    limits: Arc<Mutex<HashMap<String, usize>>>,
}

impl std::fmt::Debug for SharedSemaphores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSemaphores").field("scope", &self.scope).field("limit", &self.limit).finish()
    }
}

/// A held slot: given back when dropped (at once in this process, on the database by a task).
pub struct SharedPermit {
    db: DatabaseConnection,
    held: Option<Held>,
    renewer: tokio::task::JoinHandle<()>,
    _local: jobs::KeyedPermit,
}

impl Drop for SharedPermit {
    fn drop(&mut self) {
        self.renewer.abort();
        if let Some(held) = self.held.take() {
            let db = self.db.clone();
            tokio::spawn(async move {
                if let Err(e) = locks::release(&db, held).await {
                    tracing::warn!(error = %e, "a shared slot was not given back; it frees itself when it expires");
                }
            });
        }
    }
}

impl SharedSemaphores {
    /// At most `limit` (at least 1) holders per key across all processes on `db`.
    pub fn new(db: DatabaseConnection, scope: &'static str, limit: usize) -> Self {
        let limit = limit.max(1);
        SharedSemaphores { db, scope, limit, local: jobs::KeyedSemaphores::new(limit), limits: Arc::default() }
    }

    /// Sets the limit of `key` (at least 1); takes effect if `key` was not used yet in this process.
    pub fn set_limit(&self, key: &str, limit: usize) {
        self.local.set_limit(key, limit);
        self.limits.lock().unwrap_or_else(|e| e.into_inner()).insert(key.to_owned(), limit.max(1));
    }

    fn limit_of(&self, key: &str) -> usize {
        self.limits.lock().unwrap_or_else(|e| e.into_inner()).get(key).copied().unwrap_or(self.limit)
    }

    /// Waits for a slot of `key`. A database error is logged and retried: without the database no
    /// work that needs a slot could go on anyway.
    pub async fn acquire(&self, key: &str) -> SharedPermit {
        let local = self.local.acquire(key).await;
        let name = format!("{}:{key}", self.scope);
        let mut pause = Duration::from_millis(20);
        loop {
            match locks::try_acquire_slot(&self.db, &name, self.limit_of(key), SLOT_TTL).await {
                Ok(Some(held)) => return self.permit(held, local),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, slot = %name, "could not ask for a shared slot; trying again"),
            }
            let jitter = Duration::from_millis(rand::rng().random_range(0..=pause.as_millis() as u64 / 2));
            tokio::time::sleep(pause + jitter).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    fn permit(&self, held: Held, local: jobs::KeyedPermit) -> SharedPermit {
        let db = self.db.clone();
        let (name, owner) = (held.name().to_owned(), held.owner().to_owned());
        let renewer = tokio::spawn(async move {
            let handle = locks::Held::from_parts(name, owner);
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                match locks::renew(&db, &handle, SLOT_TTL).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(slot = %handle.name(), "a shared slot expired while held");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, slot = %handle.name(), "a shared slot was not renewed"),
                }
            }
        });
        SharedPermit { db: self.db.clone(), held: Some(held), renewer, _local: local }
    }
}
