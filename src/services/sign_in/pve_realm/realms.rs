//! The realm list PVE offers (`GET /access/domains`), kept for `pve_realm_cache_secs` so the sign-in
//! page does not ask PVE on every view. One refresh runs at a time, in the background; while it runs
//! the last known list is served. A PVE that is down or hangs never holds the page up for longer than
//! `FIRST_LIST_WAIT`, and local sign-in never depends on it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::integrations::pve::{self, wire::Realm};

/// How long a page view waits for a refresh when no list is known yet.
const FIRST_LIST_WAIT: Duration = Duration::from_millis(800);
/// How long one refresh may take before it counts as failed.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed refresh, the next is tried no sooner than this (or the cache time, if shorter).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(15);

/// PVE's realm list, cached.
pub(super) struct RealmCache {
    client: pve::Client,
    ttl: Duration,
    shared: Arc<Shared>,
}

struct Shared {
    known: Mutex<Known>,
    /// Wakes the page views waiting for the refresh in flight.
    refreshed: Notify,
}

#[derive(Default)]
struct Known {
    /// The last list PVE gave.
    realms: Option<Arc<[Realm]>>,
    /// When the last refresh ended, and whether it worked.
    checked: Option<(Instant, bool)>,
    refreshing: bool,
}

impl RealmCache {
    pub(super) fn new(client: pve::Client, ttl: Duration) -> Self {
        let cache =
            Self { client, ttl, shared: Arc::new(Shared { known: Mutex::default(), refreshed: Notify::new() }) };
        // Read the list once at start when a runtime runs, so the first sign-in page need not wait.
        if tokio::runtime::Handle::try_current().is_ok() {
            cache.start_refresh_if_due();
        }
        cache
    }

    /// The last known list (refreshing it in the background when it is due), or `None` when PVE has
    /// not given one yet: then this waits at most `FIRST_LIST_WAIT` for the refresh in flight.
    pub(super) async fn list(&self) -> Option<Arc<[Realm]>> {
        let refreshed = self.shared.refreshed.notified();
        tokio::pin!(refreshed);
        // Registered before the state is read, so a refresh ending in between still wakes us.
        refreshed.as_mut().enable();
        if let Some(list) = self.start_refresh_if_due() {
            return Some(list);
        }
        if !self.shared.known.lock().expect("realm cache lock").refreshing {
            return None; // the last attempt failed a moment ago
        }
        let _ = tokio::time::timeout(FIRST_LIST_WAIT, refreshed).await;
        self.shared.known.lock().expect("realm cache lock").realms.clone()
    }

    /// Starts a refresh when the list is older than the cache time (or the last attempt failed long
    /// enough ago) and none is running; returns the list known now.
    fn start_refresh_if_due(&self) -> Option<Arc<[Realm]>> {
        let mut known = self.shared.known.lock().expect("realm cache lock");
        let due = match known.checked {
            None => true,
            Some((at, true)) => at.elapsed() >= self.ttl,
            Some((at, false)) => at.elapsed() >= self.ttl.min(RETRY_AFTER_FAILURE),
        };
        if due && !known.refreshing {
            known.refreshing = true;
            let client = self.client.clone();
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let answer = tokio::time::timeout(REFRESH_TIMEOUT, client.realms()).await;
                let mut known = shared.known.lock().expect("realm cache lock");
                let ok = match answer {
                    Ok(Ok(realms)) => {
                        known.realms = Some(realms.into());
                        true
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "could not read the Proxmox VE realm list; the last known list stays");
                        false
                    }
                    Err(_) => {
                        tracing::warn!("the Proxmox VE realm list did not come in time; the last known list stays");
                        false
                    }
                };
                known.checked = Some((Instant::now(), ok));
                known.refreshing = false;
                drop(known);
                shared.refreshed.notify_waiters();
            });
        }
        known.realms.clone()
    }
}
