//! A machine's details (stored facts, live usage) and its usage history, for `GET /machines/{id}/details`
//! and `GET /machines/{id}/metrics`.

use poem_openapi::{Enum, Object};

use super::Machine;
use crate::services::machines::{LiveUsage, MachineDetails, MetricPoint, Metrics, MetricsRange};

/// How far back the history goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Default)]
#[oai(rename_all = "lowercase")]
pub enum MetricsRangeName {
    /// The last hour (a point a minute).
    #[default]
    Hour,
    /// The last day.
    Day,
}

impl From<MetricsRangeName> for MetricsRange {
    fn from(r: MetricsRangeName) -> Self {
        match r {
            MetricsRangeName::Hour => MetricsRange::Hour,
            MetricsRangeName::Day => MetricsRange::Day,
        }
    }
}

impl From<MetricsRange> for MetricsRangeName {
    fn from(r: MetricsRange) -> Self {
        match r {
            MetricsRange::Hour => MetricsRangeName::Hour,
            MetricsRange::Day => MetricsRangeName::Day,
        }
    }
}

/// What Proxmox VE says of the guest now.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MachineUsage {
    /// As Proxmox VE reports it.
    pub state: super::PowerStateName,
    /// A VM's run state when it says more than `running` (`paused`, `suspended`…).
    pub run_state: Option<String>,
    pub uptime_secs: u64,
    /// CPU in use, in percent of the machine's own CPUs (absent while stopped).
    pub cpu_percent: Option<f64>,
    pub cpus: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub max_memory_bytes: Option<u64>,
    /// Used root filesystem (containers only: Proxmox VE does not know a VM's).
    pub disk_bytes: Option<u64>,
    pub max_disk_bytes: Option<u64>,
    /// Bytes received since the machine started.
    pub net_in_bytes: Option<u64>,
    /// Bytes sent since the machine started.
    pub net_out_bytes: Option<u64>,
    /// A Proxmox VE lock (`backup`, `snapshot`…) while one is held.
    pub lock: Option<String>,
    pub tags: Vec<String>,
}

impl From<LiveUsage> for MachineUsage {
    fn from(u: LiveUsage) -> Self {
        MachineUsage {
            state: super::PowerStateName::from_pve(&u.state),
            run_state: u.run_state,
            uptime_secs: u.uptime_secs,
            cpu_percent: u.cpu_percent,
            cpus: u.cpus,
            memory_bytes: u.memory_bytes,
            max_memory_bytes: u.max_memory_bytes,
            disk_bytes: u.disk_bytes,
            max_disk_bytes: u.max_disk_bytes,
            net_in_bytes: u.net_in_bytes,
            net_out_bytes: u.net_out_bytes,
            lock: u.lock,
            tags: u.tags,
        }
    }
}

/// A machine with what Proxmox VE says of it now.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MachineDetailsView {
    pub machine: Machine,
    /// Absent when Proxmox VE could not be asked or did not answer in time (`machine_live_timeout_ms`),
    /// or the machine is lost or deleted.
    pub live: Option<MachineUsage>,
}

impl From<MachineDetails> for MachineDetailsView {
    fn from(d: MachineDetails) -> Self {
        MachineDetailsView { machine: d.machine.into(), live: d.live.map(Into::into) }
    }
}

/// One point of history; a value is absent where nothing was recorded (the machine was off or did not
/// exist yet).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MetricPointView {
    /// Epoch seconds.
    pub time: i64,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<f64>,
    pub max_memory_bytes: Option<f64>,
    /// Bytes per second received.
    pub net_in_rate: Option<f64>,
    /// Bytes per second sent.
    pub net_out_rate: Option<f64>,
}

impl From<MetricPoint> for MetricPointView {
    fn from(p: MetricPoint) -> Self {
        MetricPointView {
            time: p.time,
            cpu_percent: p.cpu_percent,
            memory_bytes: p.memory_bytes,
            max_memory_bytes: p.max_memory_bytes,
            net_in_rate: p.net_in_rate,
            net_out_rate: p.net_out_rate,
        }
    }
}

/// A machine's usage history over one range, oldest first.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct MachineMetrics {
    pub range: MetricsRangeName,
    pub points: Vec<MetricPointView>,
}

impl From<Metrics> for MachineMetrics {
    fn from(m: Metrics) -> Self {
        MachineMetrics { range: m.range.into(), points: m.points.into_iter().map(Into::into).collect() }
    }
}
