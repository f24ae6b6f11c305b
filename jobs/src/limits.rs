//! Concurrency limits per key (a node, a template), for use inside handlers.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A semaphore per key, created on first use: at most `limit` holders per key at once in this process.
///
/// Share one (it is cheap to clone) between the handlers that compete for the same resource and hold
/// a permit for the work to bound, e.g. at most two clones per PVE node:
///
/// ```no_run
/// # async fn demo(ctx: jobs::JobContext, node: &str) -> Result<jobs::Outcome, jobs::HandlerError> {
/// let per_node = jobs::KeyedSemaphores::new(2);
/// let _permit = tokio::select! {
///     permit = per_node.acquire(node) => permit,
///     _ = ctx.stopped() => return Ok(jobs::Outcome::RetryLater { after: None, reason: "stopped".into() }),
/// };
/// // … clone the container while holding the permit …
/// # Ok(jobs::Outcome::Done)
/// # }
/// ```
///
/// The lease is kept by heartbeat while a handler waits. To free the worker slot instead of waiting,
/// use [`KeyedSemaphores::try_acquire`] and return [`crate::Outcome::RetryLater`] when it is `None`.
/// The limit holds per process: two processes each allow `limit`.
#[derive(Debug, Clone)]
pub struct KeyedSemaphores {
    default_limit: usize,
    limits: Arc<Mutex<HashMap<String, usize>>>,
    semaphores: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// A held slot of one key; released when dropped.
#[derive(Debug)]
pub struct KeyedPermit {
    _permit: OwnedSemaphorePermit,
}

impl KeyedSemaphores {
    /// At most `limit` (at least 1) holders per key unless [`KeyedSemaphores::set_limit`] says otherwise.
    pub fn new(limit: usize) -> Self {
        KeyedSemaphores { default_limit: limit.max(1), limits: Arc::default(), semaphores: Arc::default() }
    }

    /// Sets the limit of `key` (at least 1); takes effect if `key` was not used yet.
    pub fn set_limit(&self, key: impl Into<String>, limit: usize) {
        self.limits.lock().unwrap_or_else(|e| e.into_inner()).insert(key.into(), limit.max(1));
    }

    fn semaphore(&self, key: &str) -> Arc<Semaphore> {
        let mut semaphores = self.semaphores.lock().unwrap_or_else(|e| e.into_inner());
        semaphores
            .entry(key.to_owned())
            .or_insert_with(|| {
                let limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
                Arc::new(Semaphore::new(limits.get(key).copied().unwrap_or(self.default_limit)))
            })
            .clone()
    }

    /// Waits for a slot of `key`.
    pub async fn acquire(&self, key: &str) -> KeyedPermit {
        let permit = self.semaphore(key).acquire_owned().await;
        // The semaphores are never closed.
        KeyedPermit { _permit: permit.unwrap_or_else(|_| unreachable!("keyed semaphore closed")) }
    }

    /// A slot of `key` if one is free now.
    pub fn try_acquire(&self, key: &str) -> Option<KeyedPermit> {
        self.semaphore(key).try_acquire_owned().ok().map(|p| KeyedPermit { _permit: p })
    }

    /// Free slots of `key` now.
    pub fn available(&self, key: &str) -> usize {
        self.semaphore(key).available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_key_has_its_own_limit() {
        let limits = KeyedSemaphores::new(2);
        limits.set_limit("small", 1);
        let _a = limits.acquire("node1").await;
        let _b = limits.try_acquire("node1").expect("second slot of node1");
        assert!(limits.try_acquire("node1").is_none(), "node1 is full");
        assert!(limits.try_acquire("node2").is_some(), "node2 is independent");
        let held = limits.acquire("small").await;
        assert!(limits.try_acquire("small").is_none());
        drop(held);
        assert_eq!(limits.available("small"), 1, "released on drop");
    }
}
