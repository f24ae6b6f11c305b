//! The console relay: a browser reaches its machine's console through proxdesk, which talks to PVE's
//! `vncproxy`/`termproxy` + `vncwebsocket` with its own credentials. PVE tickets, passwords and ports
//! stay on the server: proxdesk performs the VNC authentication (or the termproxy login) itself.

pub mod relay;
pub mod rfb;
pub mod session;
pub mod terminal;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{ConfigError, RawSettings};

/// Which console: the graphical one (noVNC) or the container's terminal (xterm.js).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleKind {
    Vnc,
    Terminal,
}

impl ConsoleKind {
    /// `vnc` or `terminal`, as stored and audited.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsoleKind::Vnc => "vnc",
            ConsoleKind::Terminal => "terminal",
        }
    }

    /// The inverse of [`ConsoleKind::as_str`].
    pub fn parse(s: &str) -> Option<ConsoleKind> {
        match s {
            "vnc" => Some(ConsoleKind::Vnc),
            "terminal" => Some(ConsoleKind::Terminal),
            _ => None,
        }
    }

    /// The page path segment: `/machines/{id}/console` or `/machines/{id}/terminal`.
    pub fn segment(self) -> &'static str {
        match self {
            ConsoleKind::Vnc => "console",
            ConsoleKind::Terminal => "terminal",
        }
    }
}

/// Why a console could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("Proxmox VE: {0}")]
    Upstream(String),
    #[error("console authentication failed: {0}")]
    Auth(String),
    #[error("console protocol: {0}")]
    Protocol(String),
    #[error("the browser went away")]
    BrowserGone,
    #[error("timed out opening the console")]
    Timeout,
}

/// Idle timeout and maximum length of one console session (`console_idle_secs`, `console_max_secs`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub idle: Duration,
    pub max: Duration,
}

impl Limits {
    /// Reads the limits from the settings (defaults: 15 minutes idle, 8 hours in all).
    pub fn from_settings(raw: &RawSettings) -> Result<Limits, ConfigError> {
        let idle: u64 = raw.parse("console_idle_secs")?.unwrap_or(900);
        let max: u64 = raw.parse("console_max_secs")?.unwrap_or(8 * 3600);
        if idle == 0 || max == 0 {
            let key = if idle == 0 { "PROXDESK_CONSOLE_IDLE_SECS" } else { "PROXDESK_CONSOLE_MAX_SECS" };
            return Err(ConfigError::Invalid { key: key.into(), message: "must be at least 1".into() });
        }
        Ok(Limits { idle: Duration::from_secs(idle), max: Duration::from_secs(max) })
    }
}

/// Live figures of one session. `held` is what the relay holds in memory right now (bytes read
/// from one side and not yet written to the other); `peak_held` its maximum.
#[derive(Debug, Default)]
pub struct Counters {
    pub to_browser: AtomicU64,
    pub from_browser: AtomicU64,
    pub held: AtomicUsize,
    pub peak_held: AtomicUsize,
    pub last_activity_ms: AtomicU64,
}

impl Counters {
    fn hold(&self, n: usize) {
        let now = self.held.fetch_add(n, Ordering::Relaxed) + n;
        self.peak_held.fetch_max(now, Ordering::Relaxed);
    }

    fn release(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::Relaxed);
    }
}

/// One open session, as the registry lists it.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub machine_id: i64,
    pub user_id: i64,
    pub kind: ConsoleKind,
    pub counters: Arc<Counters>,
}

/// The console sessions open in this process.
#[derive(Debug, Default)]
pub struct Registry {
    next: AtomicU64,
    live: Mutex<HashMap<u64, LiveSession>>,
}

impl Registry {
    fn add(&self, session: LiveSession) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.live.lock().expect("registry").insert(id, session);
        id
    }

    fn remove(&self, id: u64) {
        self.live.lock().expect("registry").remove(&id);
    }

    /// A snapshot of the open sessions.
    pub fn sessions(&self) -> Vec<LiveSession> {
        self.live.lock().expect("registry").values().cloned().collect()
    }
}
