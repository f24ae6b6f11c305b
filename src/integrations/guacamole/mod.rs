//! Apache Guacamole: a REST client, a simulator of the same wire, the Proxmox notes parser and the sync
//! that keeps Guacamole's connections in step with proxdesk's machines and noted VMs.

#![warn(missing_docs)]

pub mod check;
pub mod client;
pub mod error;
pub mod notes;
pub mod sim;
pub mod sync;
pub mod wire;

pub use client::Client;
pub use error::GuacError;

use std::time::Duration;

use crate::config::RawSettings;
use crate::secrets::Secret;

/// Default cron schedule of the sync job: every five minutes (6 fields, seconds first, UTC).
pub const DEFAULT_SCHEDULE: &str = "0 */5 * * * *";

/// Settings of the Guacamole integration, read from `PROXDESK_GUAC_*` and `PROXDESK_NOTES_KEY`.
#[derive(Debug, Clone)]
pub struct GuacSettings {
    /// Base URL of the web app, e.g. `https://host/guacamole` (no `/api`).
    pub url: String,
    /// Account the sync logs in as; needs ADMINISTER or the CREATE_* permissions.
    pub user: String,
    /// Its password.
    pub password: Secret<String>,
    /// Data source to write into; `None`: the one the login returns.
    pub data_source: Option<String>,
    /// Cron schedule (6 fields, seconds first, UTC) of the sync job.
    pub schedule: String,
    /// Whether missing Guacamole users are created for machine owners.
    pub create_users: bool,
    /// Passphrase of encrypted passwords in notes.
    pub notes_key: Option<Secret<String>>,
    /// Timeout of one HTTP call.
    pub timeout: Duration,
    /// Calls in flight at once when reading many objects.
    pub concurrency: usize,
    /// PVE calls in flight at once when the sync reads guests' configs and addresses.
    pub pve_concurrency: usize,
    /// How long a silent QEMU guest agent is left alone before the sync asks it again.
    pub agent_recheck: Duration,
}

/// Default of `PROXDESK_GUAC_PVE_CONCURRENCY`, chosen by measurement (README, `guac_sync` benchmark): twice
/// as fast as 8 on a 5,000-guest cluster, without doubling again the load on pveproxy's few workers.
pub const DEFAULT_PVE_CONCURRENCY: usize = 16;

/// Default of `PROXDESK_GUAC_AGENT_RECHECK_MINS`.
pub const DEFAULT_AGENT_RECHECK: Duration = Duration::from_secs(30 * 60);

fn number_in(
    raw: &RawSettings,
    key: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, GuacError> {
    match raw.get(key).map(str::parse::<u64>) {
        None => Ok(default),
        Some(Ok(n)) if range.contains(&n) => Ok(n),
        Some(_) => Err(GuacError::Config(format!(
            "PROXDESK_{} must be a number from {} to {}",
            key.to_ascii_uppercase(),
            range.start(),
            range.end()
        ))),
    }
}

impl GuacSettings {
    /// The settings when `guac_url` is set, `Ok(None)` when Guacamole is not configured.
    pub fn from_raw(raw: &RawSettings) -> Result<Option<Self>, GuacError> {
        let Some(url) = raw.get("guac_url") else {
            return Ok(None);
        };
        let missing = |key: &str| GuacError::Config(format!("PROXDESK_{key} is required"));
        let user = raw.get("guac_user").ok_or_else(|| missing("GUAC_USER"))?;
        let password = raw.get("guac_password").ok_or_else(|| missing("GUAC_PASSWORD"))?;
        let create_users = match raw.get("guac_create_users").unwrap_or("false") {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            other => {
                return Err(GuacError::Config(format!("PROXDESK_GUAC_CREATE_USERS: {other:?} is not true or false")));
            }
        };
        let concurrency = match raw.get("guac_concurrency").unwrap_or("8").parse::<usize>() {
            Ok(n) if (1..=64).contains(&n) => n,
            _ => {
                return Err(GuacError::Config("PROXDESK_GUAC_CONCURRENCY must be a number from 1 to 64".into()));
            }
        };
        let pve_concurrency = number_in(raw, "guac_pve_concurrency", DEFAULT_PVE_CONCURRENCY as u64, 1..=64)? as usize;
        let recheck_mins = number_in(raw, "guac_agent_recheck_mins", DEFAULT_AGENT_RECHECK.as_secs() / 60, 1..=10_080)?;
        Ok(Some(GuacSettings {
            url: url.trim_end_matches('/').to_owned(),
            user: user.to_owned(),
            password: Secret::new(password.to_owned()),
            data_source: raw.get("guac_data_source").map(str::to_owned),
            schedule: raw.get("guac_schedule").unwrap_or(DEFAULT_SCHEDULE).to_owned(),
            create_users,
            notes_key: raw.get("notes_key").map(|k| Secret::new(k.to_owned())),
            timeout: Duration::from_secs(30),
            concurrency,
            pve_concurrency,
            agent_recheck: Duration::from_secs(recheck_mins * 60),
        }))
    }

    /// Settings for a Guacamole at `url` with the given account and every other value at its default.
    pub fn new(url: &str, user: &str, password: &str) -> Self {
        GuacSettings {
            url: url.trim_end_matches('/').to_owned(),
            user: user.to_owned(),
            password: Secret::new(password.to_owned()),
            data_source: None,
            schedule: DEFAULT_SCHEDULE.to_owned(),
            create_users: false,
            notes_key: None,
            timeout: Duration::from_secs(30),
            concurrency: 8,
            pve_concurrency: DEFAULT_PVE_CONCURRENCY,
            agent_recheck: DEFAULT_AGENT_RECHECK,
        }
    }
}
