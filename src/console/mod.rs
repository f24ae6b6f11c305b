//! The console relay: a browser reaches its machine's console through proxdesk, which talks to PVE's
//! `vncproxy`/`termproxy` + `vncwebsocket` with its own credentials. PVE tickets, passwords and ports
//! stay on the server: proxdesk performs the VNC authentication (or the termproxy login) itself.

pub mod close;
pub mod relay;
pub mod rfb;
pub mod session;
pub mod slot;
pub mod terminal;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

pub use close::CloseReason;
pub use slot::Slot;

use crate::config::{ConfigError, RawSettings};
use crate::domain::console_caps::{self as caps, ConsoleCaps};
use crate::integrations::pve::PveError;

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
    /// PVE refused to hand out a console (`vncproxy`/`termproxy` failed).
    #[error("Proxmox VE refused the console: {0}")]
    Refused(PveError),
    /// The console websocket to PVE failed or broke during the handshake.
    #[error("console websocket to Proxmox VE: {0}")]
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

impl ConsoleError {
    /// What the browser is told.
    pub fn close_reason(&self) -> CloseReason {
        match self {
            ConsoleError::Refused(e) => CloseReason::from_proxy_error(e),
            ConsoleError::Timeout => CloseReason::RelayTimeout,
            ConsoleError::Upstream(_)
            | ConsoleError::Auth(_)
            | ConsoleError::Protocol(_)
            | ConsoleError::BrowserGone => CloseReason::RelayFailed,
        }
    }

    /// PVE's own words for a refusal it decided, shown beside the translated message. Transport
    /// failures carry addresses and error chains: those stay in the log.
    pub fn pve_detail(&self) -> Option<String> {
        let ConsoleError::Refused(e) = self else { return None };
        match e {
            PveError::PermissionDenied { message, .. }
            | PveError::Locked { message, .. }
            | PveError::NotFound(message)
            | PveError::Busy(message)
            | PveError::NotRunning(message) => Some(message.clone()),
            PveError::Api { status, message } if !(595..=599).contains(status) => Some(message.clone()),
            PveError::Parameters(_) => Some(e.to_string()),
            _ => None,
        }
    }
}

/// Idle timeout and maximum length of one console session (`console_idle_secs`, `console_max_secs`),
/// and the per-user caps (`console_max_sessions_per_user`, `console_max_urls_per_minute`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub idle: Duration,
    pub max: Duration,
    pub caps: ConsoleCaps,
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
        let caps = ConsoleCaps {
            sessions_per_user: number_in(
                raw,
                "console_max_sessions_per_user",
                caps::DEFAULT_SESSIONS_PER_USER,
                caps::SESSIONS_PER_USER_RANGE,
            )?,
            urls_per_minute: number_in(
                raw,
                "console_max_urls_per_minute",
                caps::DEFAULT_URLS_PER_MINUTE,
                caps::URLS_PER_MINUTE_RANGE,
            )?,
        };
        Ok(Limits { idle: Duration::from_secs(idle), max: Duration::from_secs(max), caps })
    }
}

fn number_in(
    raw: &RawSettings,
    key: &str,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ConfigError> {
    match raw.get(key).map(|v| v.trim().parse::<u32>()) {
        None => Ok(default),
        Some(Ok(n)) if range.contains(&n) => Ok(n),
        Some(_) => Err(ConfigError::Invalid {
            key: format!("PROXDESK_{}", key.to_ascii_uppercase()),
            message: format!("must be a number from {} to {}", range.start(), range.end()),
        }),
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

/// What a console session shows: a proxdesk machine, or a guest a person may use in Proxmox VE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectKey {
    Machine(i64),
    PveGuest(u64),
}

/// One open session, as the registry lists it.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub subject: SubjectKey,
    pub user_id: i64,
    pub kind: ConsoleKind,
    pub counters: Arc<Counters>,
    stop: Arc<watch::Sender<Option<CloseReason>>>,
}

impl LiveSession {
    /// Tells the relay to end with `reason`, unless an earlier reason is already on its way.
    fn ask_to_end(&self, reason: CloseReason) {
        self.stop.send_if_modified(|r| {
            if r.is_some() {
                return false;
            }
            *r = Some(reason);
            true
        });
    }
}

/// The console sessions open in this process, and the way to end them from outside the relay.
#[derive(Debug, Default)]
pub struct Registry {
    next: AtomicU64,
    live: Mutex<HashMap<u64, LiveSession>>,
}

impl Registry {
    /// Registers a session; an older session of the same console of the same machine is ended (one
    /// console, one viewer). The receiver learns when the session is to end and why.
    fn add(
        &self,
        subject: SubjectKey,
        user_id: i64,
        kind: ConsoleKind,
        counters: Arc<Counters>,
    ) -> (u64, watch::Receiver<Option<CloseReason>>) {
        let (tx, rx) = watch::channel(None);
        let session = LiveSession { subject, user_id, kind, counters, stop: Arc::new(tx) };
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut live = self.live.lock().expect("registry");
        for older in live.values().filter(|s| s.subject == subject && s.kind == kind) {
            older.ask_to_end(CloseReason::TakenOver);
        }
        live.insert(id, session);
        (id, rx)
    }

    fn remove(&self, id: u64) {
        self.live.lock().expect("registry").remove(&id);
    }

    /// Ends session `id` with `reason` (the first reason given wins).
    fn end(&self, id: u64, reason: CloseReason) {
        if let Some(s) = self.live.lock().expect("registry").get(&id) {
            s.ask_to_end(reason);
        }
    }

    /// Ends every session, telling each browser `reason`, and waits (up to `grace`) until they are
    /// closed and audited.
    pub async fn end_all(&self, reason: CloseReason, grace: Duration) {
        let ids: Vec<u64> = self.live.lock().expect("registry").keys().copied().collect();
        for id in ids {
            self.end(id, reason);
        }
        let until = tokio::time::Instant::now() + grace;
        while !self.live.lock().expect("registry").is_empty() && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A snapshot of the open sessions.
    pub fn sessions(&self) -> Vec<LiveSession> {
        self.live.lock().expect("registry").values().cloned().collect()
    }
}
