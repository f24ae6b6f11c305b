//! A console session's place under the per-user cap: its `console_sessions` row, refreshed while the
//! relay runs and deleted when it ends, or when the handler that claimed it gives up before relaying.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sea_orm::DatabaseConnection;

use super::ConsoleKind;
use crate::domain::console_caps::ConsoleCaps;
use crate::services::console_sessions::{self, HEARTBEAT_SECS, SessionSubject};
use crate::services::{Actor, ServiceError};

/// A claimed slot. Dropped without [`Slot::release`], it is freed in the background.
#[derive(Debug)]
pub struct Slot {
    db: DatabaseConnection,
    id: i64,
    released: AtomicBool,
}

impl Slot {
    /// Claims a slot, or `ConsoleCap` (already audited, with `via`) when `actor` is at the cap.
    pub async fn claim(
        db: &DatabaseConnection,
        caps: ConsoleCaps,
        actor: &Actor,
        subject: SessionSubject,
        kind: ConsoleKind,
        via: &str,
    ) -> Result<Slot, ServiceError> {
        match console_sessions::claim(db, caps, actor, subject, kind).await {
            Ok(id) => Ok(Slot { db: db.clone(), id, released: AtomicBool::new(false) }),
            Err(ServiceError::ConsoleCap(r)) => Err(console_sessions::refused(db, actor, subject, kind, via, r).await),
            Err(e) => Err(e),
        }
    }

    /// Refreshes the row while the session runs; never returns.
    pub async fn keep_alive(&self) -> std::convert::Infallible {
        let mut tick = tokio::time::interval(Duration::from_secs(HEARTBEAT_SECS));
        tick.tick().await;
        loop {
            tick.tick().await;
            match console_sessions::heartbeat(&self.db, self.id).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(slot = self.id, "console session row gone: it no longer counts"),
                Err(e) => tracing::warn!(error = %e, slot = self.id, "console session heartbeat failed"),
            }
        }
    }

    /// Frees the slot now, so the person may open another console at once.
    pub async fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Err(e) = console_sessions::release(&self.db, self.id).await {
            tracing::warn!(error = %e, slot = self.id, "console session row not deleted; it stops counting when stale");
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.released.load(Ordering::Acquire) {
            return;
        }
        let (db, id) = (self.db.clone(), self.id);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = console_sessions::release(&db, id).await {
                    tracing::warn!(error = %e, slot = id, "console session row not deleted; it stops counting when stale");
                }
            });
        }
    }
}
