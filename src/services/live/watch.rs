//! The watch behind one live stream: it re-reads the page's snapshot when a change concerns it (and
//! again a little later, as the change may not be committed yet), on a slow tick for changes nobody
//! signalled, and the power state of the page's machines from PVE — often just after they changed,
//! rarely otherwise. It yields a new fingerprint each time what the page shows differs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::Stream;
use sea_orm::DatabaseConnection;
use sha2::{Digest, Sha256};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Instant, sleep_until};

use super::{Change, LivePage, Slot, Snapshot, subscribe};
use crate::integrations::pve;
use crate::services::{Actor, ServiceError, machines};

/// How often a watch looks again.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// After a change that concerns the page, the snapshot is read again after each of these delays:
    /// the writer may still be inside its transaction at the first.
    pub rechecks: [Duration; 3],
    /// The snapshot is read at least this often (another replica's changes, or changes outside proxdesk).
    pub tick: Duration,
    /// Power states are read this often while a machine changed less than `fast_window` ago…
    pub power_fast: Duration,
    pub fast_window: Duration,
    /// …and this often otherwise (a request page; the dashboard's one cluster-wide read).
    pub power_slow: Duration,
    pub power_slow_dashboard: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            rechecks: [Duration::ZERO, Duration::from_millis(150), Duration::from_secs(1)],
            tick: Duration::from_secs(10),
            power_fast: Duration::from_secs(2),
            fast_window: Duration::from_secs(90),
            power_slow: Duration::from_secs(20),
            power_slow_dashboard: Duration::from_secs(15),
        }
    }
}

/// Starts watching `page` for `actor`: the stream yields the page's fingerprint at once, then each time
/// it changes, and ends when the server stops (or the actor may no longer see the page). Fails when the
/// actor may not see the page now.
///
/// `page_age` is how long ago the page being watched was loaded: when its subjects changed since (or
/// just before; the page may have been rendered before the change was committed), the stream starts
/// with [`STALE`], so the page looks again at the next fingerprint.
pub async fn watch(
    db: DatabaseConnection,
    pve: Option<pve::Client>,
    actor: Actor,
    page: LivePage,
    timing: Timing,
    slot: Slot,
    page_age: Option<Duration>,
) -> Result<impl Stream<Item = String> + Send + 'static, ServiceError> {
    // Subscribed before the first read, so no change between the two is missed.
    let changes = subscribe();
    let snapshot = Snapshot::read(&db, &actor, page).await?;
    let stale = page_age.is_some_and(|age| {
        let since = chrono::Utc::now() - chrono::Duration::from_std(age + STALE_MARGIN).unwrap_or_default();
        snapshot.last_change_at.is_some_and(|at| at >= since)
    });
    let now = Instant::now();
    let mut w = Watcher {
        db,
        pve,
        actor,
        page,
        timing,
        changes,
        slot,
        snapshot,
        power: String::new(),
        sent: None,
        stale,
        rechecks: BTreeSet::new(),
        next_tick: now + timing.tick,
        next_power: now,
    };
    w.read_power().await;
    Ok(futures_util::stream::unfold(w, |mut w| async move { w.next().await.map(|fp| (fp, w)) }))
}

struct Watcher {
    db: DatabaseConnection,
    pve: Option<pve::Client>,
    actor: Actor,
    page: LivePage,
    timing: Timing,
    changes: broadcast::Receiver<Change>,
    slot: Slot,
    snapshot: Snapshot,
    /// The power states last read, as fingerprint text.
    power: String,
    sent: Option<String>,
    /// The page may predate the newest change: say so before the first fingerprint.
    stale: bool,
    rechecks: BTreeSet<Instant>,
    next_tick: Instant,
    next_power: Instant,
}

/// The first "fingerprint" of a stream whose page may be older than its newest change.
pub const STALE: &str = "stale";

/// A page is rendered before the change it shows is committed by up to this much.
const STALE_MARGIN: Duration = Duration::from_secs(1);

/// At most this many re-reads wait at once: a burst of changes needs no more.
const MAX_RECHECKS: usize = 9;

impl Watcher {
    /// The next fingerprint that differs from the last one sent; `None` ends the stream.
    async fn next(&mut self) -> Option<String> {
        if std::mem::take(&mut self.stale) {
            self.sent = Some(STALE.to_owned());
            return self.sent.clone();
        }
        loop {
            let fp = self.fingerprint();
            if self.sent.as_ref() != Some(&fp) {
                self.sent = Some(fp.clone());
                return Some(fp);
            }
            let mut wake = self.next_tick;
            if let Some(first) = self.rechecks.first() {
                wake = wake.min(*first);
            }
            if self.watches_power() {
                wake = wake.min(self.next_power);
            }
            tokio::select! {
                biased;
                () = self.slot.closed() => return None,
                r = self.changes.recv() => match r {
                    Ok(c) if !self.snapshot.concerns(&c, self.actor.id) => {}
                    // A lagged receiver missed changes: any of them may concern the page.
                    Ok(_) | Err(RecvError::Lagged(_)) => self.schedule_rechecks(),
                    Err(RecvError::Closed) => return None,
                },
                () = sleep_until(wake) => {
                    if !self.due(Instant::now()).await {
                        return None;
                    }
                }
            }
        }
    }

    fn fingerprint(&self) -> String {
        let digest =
            Sha256::new().chain_update(&self.snapshot.marks).chain_update("|").chain_update(&self.power).finalize();
        hex::encode(&digest[..8])
    }

    fn watches_power(&self) -> bool {
        self.pve.is_some() && !self.snapshot.machines.is_empty()
    }

    fn schedule_rechecks(&mut self) {
        let now = Instant::now();
        for delay in self.timing.rechecks {
            let at = now + delay;
            // A re-read already due within 20 ms of this one serves both.
            let near = self.rechecks.range(at - Duration::from_millis(20)..=at + Duration::from_millis(20)).next();
            if near.is_none() && self.rechecks.len() < MAX_RECHECKS {
                self.rechecks.insert(at);
            }
        }
    }

    /// Does what is due at `now`; false when the page may no longer be seen.
    async fn due(&mut self, now: Instant) -> bool {
        let mut read = false;
        while self.rechecks.first().is_some_and(|t| *t <= now) {
            self.rechecks.pop_first();
            read = true;
        }
        if self.next_tick <= now {
            self.next_tick = now + self.timing.tick;
            read = true;
        }
        if read {
            match Snapshot::read(&self.db, &self.actor, self.page).await {
                Ok(s) => {
                    let recent = self.recently_changed();
                    self.snapshot = s;
                    // A change that just happened (a shutdown asked for): look at PVE soon, not in 20 s.
                    if !recent && self.recently_changed() {
                        self.next_power = self.next_power.min(now + self.timing.power_fast);
                    }
                }
                Err(ServiceError::NotFound | ServiceError::Forbidden) => return false,
                Err(e) => tracing::warn!(page = ?self.page, error = %e, "live page not read; trying again later"),
            }
        }
        if self.watches_power() && self.next_power <= now {
            self.read_power().await;
        }
        true
    }

    fn recently_changed(&self) -> bool {
        let window = chrono::Duration::from_std(self.timing.fast_window).unwrap_or_default();
        self.snapshot.last_change_at.is_some_and(|at| chrono::Utc::now() - at < window)
    }

    async fn read_power(&mut self) {
        let (Some(pve), false) = (self.pve.as_ref(), self.snapshot.machines.is_empty()) else {
            self.power.clear();
            return;
        };
        let slow = match self.page {
            LivePage::Request(_) => {
                let states: Vec<String> = {
                    let mut out = Vec::with_capacity(self.snapshot.machines.len());
                    for m in &self.snapshot.machines {
                        // The state only: the page's uptime counts on by itself.
                        out.push(format!("{}={}", m.id, machines::live_status(Some(pve), m).await.state));
                    }
                    out
                };
                self.power = states.join(",");
                self.timing.power_slow
            }
            _ => {
                let states: BTreeMap<i64, String> =
                    machines::power_states(Some(pve), &self.snapshot.machines).await.into_iter().collect();
                self.power = format!("{states:?}");
                self.timing.power_slow_dashboard
            }
        };
        let every = if self.recently_changed() { self.timing.power_fast } else { slow };
        self.next_power = Instant::now() + every;
    }
}
