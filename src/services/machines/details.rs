//! One machine's details: what proxdesk stored, what PVE says of it now (status, usage counters, tags,
//! lock) and its recent history for the charts. The live reads run together under one time bound, and
//! each may fail on its own: the stored facts are always there, the rest says what it could not learn.

use std::time::Duration;

use sea_orm::DatabaseConnection;

use entities::machine;

use super::{get, guest_type};
use crate::domain::guest::GuestType;
use crate::integrations::pve::{self, wire};
use crate::services::{Actor, ServiceError};

/// The `machine_live_timeout_ms` config key's default.
pub const LIVE_TIMEOUT_DEFAULT: Duration = Duration::from_millis(2_000);

/// Reads `machine_live_timeout_ms` (the bound of a details page's live reads) from the raw settings.
pub fn live_timeout(raw: &std::collections::BTreeMap<String, String>) -> Duration {
    raw.get("machine_live_timeout_ms")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| (1..=60_000).contains(ms))
        .map_or(LIVE_TIMEOUT_DEFAULT, Duration::from_millis)
}

/// How far back the charts look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricsRange {
    /// The last hour, one point a minute (PVE 9).
    #[default]
    Hour,
    /// The last day.
    Day,
}

impl MetricsRange {
    /// `hour` or `day`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricsRange::Hour => "hour",
            MetricsRange::Day => "day",
        }
    }
    /// `hour`/`day`; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "hour" => Some(MetricsRange::Hour),
            "day" => Some(MetricsRange::Day),
            _ => None,
        }
    }
    fn timeframe(self) -> wire::Timeframe {
        match self {
            MetricsRange::Hour => wire::Timeframe::Hour,
            MetricsRange::Day => wire::Timeframe::Day,
        }
    }
}

/// What PVE says of the guest now.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveUsage {
    /// `running` or `stopped`.
    pub state: String,
    /// A VM's QMP run state when it says more than `running` (`paused`, `suspended`, …).
    pub run_state: Option<String>,
    pub uptime_secs: u64,
    /// CPU in use, in percent of the guest's own CPUs.
    pub cpu_percent: Option<f64>,
    pub cpus: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub max_memory_bytes: Option<u64>,
    /// Used root filesystem (containers; PVE reports 0 for VMs).
    pub disk_bytes: Option<u64>,
    pub max_disk_bytes: Option<u64>,
    /// Bytes received and sent since the guest started.
    pub net_in_bytes: Option<u64>,
    pub net_out_bytes: Option<u64>,
    pub lock: Option<String>,
    pub tags: Vec<String>,
}

/// One point of the charts; a value is `None` where PVE recorded nothing (the guest was off, or did not
/// exist yet).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// Epoch seconds.
    pub time: i64,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<f64>,
    pub max_memory_bytes: Option<f64>,
    /// Bytes per second.
    pub net_in_rate: Option<f64>,
    pub net_out_rate: Option<f64>,
}

/// A machine's chart data over one range.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub range: MetricsRange,
    pub points: Vec<MetricPoint>,
}

/// Everything the details page and the API show of a machine.
#[derive(Debug, Clone)]
pub struct MachineDetails {
    pub machine: machine::Model,
    pub kind: GuestType,
    /// `None`: PVE could not be asked, did not answer in time, or the machine is lost or deleted.
    pub live: Option<LiveUsage>,
    /// `None` like `live`; `Some` with no points is an empty history.
    pub metrics: Option<Metrics>,
}

/// The machine `id` (owner or admin, else not found) with its live usage and, when `range` is given, its
/// history over that range.
#[tracing::instrument(skip(db, pve, actor), fields(actor = actor.id))]
pub async fn details(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    actor: &Actor,
    id: i64,
    range: Option<MetricsRange>,
    bound: Duration,
) -> Result<MachineDetails, ServiceError> {
    let m = get(db, actor, id).await?;
    let kind = guest_type(&m)?;
    let mut out = MachineDetails { machine: m, kind, live: None, metrics: None };
    let (Some(pve), Some(vmid), None, None) = (pve, out.machine.vmid, out.machine.deleted_at, out.machine.lost_at)
    else {
        return Ok(out);
    };
    let (node, vmid) = (out.machine.node.clone(), vmid as u64);
    let history = async {
        match range {
            Some(r) => Some(tokio::time::timeout(bound, pve.guest_rrddata(&node, kind, vmid, r.timeframe())).await),
            None => None,
        }
    };
    let (usage, history) = tokio::join!(tokio::time::timeout(bound, pve.guest_usage(&node, kind, vmid)), history);
    out.live = match usage {
        Ok(Ok(u)) => Some(live_usage(u)),
        Ok(Err(e)) => {
            tracing::warn!(machine = id, error = %e, "live usage unavailable");
            None
        }
        Err(_) => {
            tracing::warn!(machine = id, "live usage: no answer in time");
            None
        }
    };
    out.metrics = match (range, history) {
        (Some(range), Some(Ok(Ok(rows)))) => Some(Metrics { range, points: points(&rows) }),
        (_, None) => None,
        (_, Some(Ok(Err(e)))) => {
            tracing::warn!(machine = id, error = %e, "history unavailable");
            None
        }
        (_, Some(Err(_))) => {
            tracing::warn!(machine = id, "history: no answer in time");
            None
        }
        (None, Some(_)) => None,
    };
    Ok(out)
}

fn live_usage(u: wire::GuestUsage) -> LiveUsage {
    let running = u.status == "running";
    let bytes = |v: Option<f64>| v.map(|x| x.max(0.0) as u64);
    LiveUsage {
        run_state: u.qmpstatus.filter(|q| running && q != "running"),
        state: u.status,
        uptime_secs: u.uptime.unwrap_or(0.0).max(0.0) as u64,
        cpu_percent: u.cpu.filter(|_| running).map(|c| (c * 100.0).clamp(0.0, 100.0)),
        cpus: u.cpus,
        memory_bytes: bytes(u.mem).filter(|_| running),
        max_memory_bytes: bytes(u.maxmem),
        disk_bytes: bytes(u.disk).filter(|d| running && *d > 0),
        max_disk_bytes: bytes(u.maxdisk),
        net_in_bytes: bytes(u.netin).filter(|_| running),
        net_out_bytes: bytes(u.netout).filter(|_| running),
        lock: u.lock,
        tags: u.tags.as_deref().map(split_tags).unwrap_or_default(),
    }
}

/// PVE's tag list: split on `,`, `;` and whitespace (pve-api.md §9).
pub fn split_tags(text: &str) -> Vec<String> {
    text.split([',', ';', ' ', '\t']).filter(|t| !t.is_empty()).map(str::to_owned).collect()
}

/// RRD rows as chart points, oldest first; a trailing `time`-only row (PVE 8) is dropped.
pub fn points(rows: &[wire::RrdPoint]) -> Vec<MetricPoint> {
    let mut out: Vec<MetricPoint> = rows
        .iter()
        .map(|r| MetricPoint {
            time: r.time as i64,
            cpu_percent: r.cpu.map(|c| (c * 100.0).clamp(0.0, 100.0)),
            memory_bytes: r.mem,
            max_memory_bytes: r.maxmem,
            net_in_rate: r.netin,
            net_out_rate: r.netout,
        })
        .collect();
    out.sort_by_key(|p| p.time);
    let empty = |p: &MetricPoint| {
        p.cpu_percent.is_none() && p.memory_bytes.is_none() && p.max_memory_bytes.is_none() && p.net_in_rate.is_none()
    };
    if out.last().is_some_and(empty) {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_like_pve() {
        assert_eq!(split_tags("portal;web, db"), ["portal", "web", "db"]);
        assert!(split_tags("").is_empty());
    }

    #[test]
    fn a_trailing_time_only_row_is_dropped_and_gaps_stay() {
        let row = |time, cpu| wire::RrdPoint { time, cpu, ..Default::default() };
        let pts = points(&[row(60, None), row(120, Some(0.5)), row(180, None), row(240, Some(0.25)), row(300, None)]);
        assert_eq!(pts.len(), 4);
        assert_eq!(pts[1].cpu_percent, Some(50.0));
        assert_eq!(pts[2].cpu_percent, None);
    }
}
