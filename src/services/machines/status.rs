//! What PVE says about machines right now: one machine's status, or every machine's power state at once.

use entities::machine;

use super::guest_type;
use crate::integrations::pve;

/// What PVE says about a machine right now.
#[derive(Debug, Clone)]
pub struct LiveStatus {
    /// `running`, `stopped`, or `unknown` when PVE cannot be asked.
    pub state: String,
    pub uptime_secs: Option<u64>,
    pub cpus: Option<f64>,
    pub max_memory_bytes: Option<u64>,
    pub lock: Option<String>,
}

pub async fn live_status(pve: Option<&pve::Client>, m: &machine::Model) -> LiveStatus {
    let unknown =
        LiveStatus { state: "unknown".into(), uptime_secs: None, cpus: None, max_memory_bytes: None, lock: None };
    // A lost machine's VMID names someone else's guest (or none): its state is not this machine's.
    let (Some(pve), Some(vmid), None, None) = (pve, m.vmid, m.deleted_at, m.lost_at) else { return unknown };
    let ty = match guest_type(m) {
        Ok(ty) => ty,
        Err(e) => {
            tracing::error!(machine = m.id, error = %e, "status of machine not asked");
            return unknown;
        }
    };
    match pve.guest_status(&m.node, ty, vmid as u64).await {
        Ok(s) => LiveStatus {
            state: s.status,
            uptime_secs: s.uptime,
            cpus: s.cpus,
            max_memory_bytes: s.maxmem,
            lock: s.lock,
        },
        Err(e) => {
            tracing::warn!(machine = m.id, error = %e, "status of machine unavailable");
            unknown
        }
    }
}

/// The power state (`running`, `stopped`…) of each of `machines` (by machine id) from one cluster-wide
/// read; a machine PVE does not list, or every machine when PVE cannot be asked, is `unknown`.
pub async fn power_states(
    pve: Option<&pve::Client>,
    machines: &[machine::Model],
) -> std::collections::HashMap<i64, String> {
    let mut out: std::collections::HashMap<i64, String> =
        machines.iter().map(|m| (m.id, "unknown".to_owned())).collect();
    let Some(pve) = pve.filter(|_| machines.iter().any(|m| m.vmid.is_some())) else { return out };
    match pve.cluster_resources(Some("vm")).await {
        Ok(resources) => {
            for m in machines.iter().filter(|m| m.lost_at.is_none()) {
                let found = resources.iter().find(|r| {
                    r.vmid.is_some() && r.vmid == m.vmid.map(|v| v as u64) && r.node.as_deref() == Some(&m.node)
                });
                if let Some(state) = found.and_then(|r| r.status.clone()) {
                    out.insert(m.id, state);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "power states unavailable"),
    }
    out
}
