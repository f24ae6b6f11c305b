//! What the admin home shows: what waits for a decision, what failed, lost machines, the last Guacamole
//! sync and each node's capacity.

use chrono::{Duration, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use entities::{guac_sync_run, machine, user};

use super::requests::{self, RequestFilter, RequestRow};
use super::{Actor, ServiceError, guac_sync_runs};
use crate::domain::request_status::RequestStatus;
use crate::integrations::pve;

/// How many rows each list of the home shows; the counts say how many there are in all.
pub const LIST_LEN: u64 = 5;

/// Failed jobs older than this no longer count as something that waits.
pub const FAILED_JOBS_DAYS: i64 = 7;

/// Everything the admin home reads from the database.
#[derive(Debug, Clone)]
pub struct Overview {
    pub pending: u64,
    /// The oldest pending requests, oldest first.
    pub oldest_pending: Vec<RequestRow>,
    pub failed: u64,
    /// The newest failed requests.
    pub failed_requests: Vec<RequestRow>,
    pub failed_jobs: u64,
    /// The newest failed or dead jobs of the last [`FAILED_JOBS_DAYS`] days.
    pub recent_failed_jobs: Vec<jobs::Job>,
    pub lost: u64,
    pub lost_machines: Vec<LostMachine>,
    pub last_sync: Option<guac_sync_run::Model>,
}

/// A lost machine with its owner's name.
#[derive(Debug, Clone)]
pub struct LostMachine {
    pub machine: machine::Model,
    pub owner: String,
}

/// Reads the overview (admins only).
#[tracing::instrument(skip_all)]
pub async fn read(db: &DatabaseConnection, actor: &Actor) -> Result<Overview, ServiceError> {
    actor.require_admin()?;
    let oldest = RequestFilter {
        status: Some(RequestStatus::Pending),
        oldest_first: true,
        limit: Some(LIST_LEN),
        ..Default::default()
    };
    let failed = RequestFilter { status: Some(RequestStatus::Failed), limit: Some(LIST_LEN), ..Default::default() };
    let since = Utc::now() - Duration::days(FAILED_JOBS_DAYS);
    let failed_states = [jobs::JobState::Failed.as_str(), jobs::JobState::Dead.as_str()];
    let failed_jobs = jobs::entity::Entity::find()
        .filter(jobs::entity::Column::State.is_in(failed_states))
        .filter(jobs::entity::Column::UpdatedAt.gte(since));
    let recent_failed_jobs = failed_jobs
        .clone()
        .order_by_desc(jobs::entity::Column::UpdatedAt)
        .limit(LIST_LEN)
        .all(db)
        .await?
        .into_iter()
        .map(jobs::Job::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let lost_query = machine::Entity::find()
        .filter(machine::Column::LostAt.is_not_null())
        .filter(machine::Column::DeletedAt.is_null());
    let lost_rows = lost_query.clone().order_by_desc(machine::Column::LostAt).limit(LIST_LEN).all(db).await?;
    let mut lost_machines = Vec::with_capacity(lost_rows.len());
    for m in lost_rows {
        let owner = user::Entity::find_by_id(m.user_id).one(db).await?.map(|u| u.username).unwrap_or_default();
        lost_machines.push(LostMachine { machine: m, owner });
    }
    Ok(Overview {
        pending: requests::count_in(db, RequestStatus::Pending).await?,
        oldest_pending: requests::list(db, actor, oldest).await?.items,
        failed: requests::count_in(db, RequestStatus::Failed).await?,
        failed_requests: requests::list(db, actor, failed).await?.items,
        failed_jobs: failed_jobs.count(db).await?,
        recent_failed_jobs,
        lost: lost_query.count(db).await?,
        lost_machines,
        last_sync: guac_sync_runs::last(db).await?,
    })
}

/// One node's size and use, as PVE reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeCapacity {
    pub node: String,
    pub online: bool,
    /// The node's CPUs.
    pub cores: u64,
    /// CPUs given to the node's running guests (may exceed `cores`: PVE overcommits).
    pub cores_allocated: u64,
    /// CPU load, 0–100 %.
    pub cpu_percent: u64,
    pub memory_used_mib: u64,
    pub memory_total_mib: u64,
    pub disk_used_mib: u64,
    pub disk_total_mib: u64,
    pub guests: usize,
    pub running: usize,
}

/// What the home can say about the cluster's capacity.
#[derive(Debug, Clone, PartialEq)]
pub enum Capacity {
    /// No Proxmox VE cluster is configured.
    NotConfigured,
    /// The cluster did not answer (the reason is for the log and the admin).
    Unreachable(String),
    /// The cluster answered, but without node figures (proxdesk's token lacks `Sys.Audit` on `/nodes`).
    NoFigures,
    Nodes(Vec<NodeCapacity>),
}

const MIB: u64 = 1 << 20;

/// Each node's capacity from one `/cluster/resources` read (nodes and guests together).
#[tracing::instrument(skip_all)]
pub async fn capacity(pve: Option<&pve::Client>) -> Capacity {
    let Some(pve) = pve else { return Capacity::NotConfigured };
    match pve.cluster_resources(None).await {
        Ok(resources) => capacity_of(&resources),
        Err(e) => {
            tracing::warn!(error = %e, "cluster capacity unavailable");
            Capacity::Unreachable(e.to_string())
        }
    }
}

/// The per-node figures of a `/cluster/resources` answer.
pub fn capacity_of(resources: &[pve::wire::ClusterResource]) -> Capacity {
    let mut nodes: Vec<NodeCapacity> = resources
        .iter()
        .filter(|r| r.kind == "node" && r.maxmem.is_some())
        .map(|r| {
            let name = r.node.clone().unwrap_or_default();
            let guests: Vec<_> = resources
                .iter()
                .filter(|g| matches!(g.kind.as_str(), "lxc" | "qemu") && g.template != Some(1))
                .filter(|g| g.node.as_deref() == Some(name.as_str()))
                .collect();
            let running: Vec<_> = guests.iter().filter(|g| g.status.as_deref() == Some("running")).collect();
            NodeCapacity {
                online: r.status.as_deref() == Some("online"),
                cores: r.maxcpu.unwrap_or(0.0).round() as u64,
                cores_allocated: running.iter().map(|g| g.maxcpu.unwrap_or(0.0)).sum::<f64>().ceil() as u64,
                cpu_percent: (r.cpu.unwrap_or(0.0) * 100.0).round().clamp(0.0, 100.0) as u64,
                memory_used_mib: r.mem.unwrap_or(0) / MIB,
                memory_total_mib: r.maxmem.unwrap_or(0) / MIB,
                disk_used_mib: r.disk.unwrap_or(0) / MIB,
                disk_total_mib: r.maxdisk.unwrap_or(0) / MIB,
                guests: guests.len(),
                running: running.len(),
                node: name,
            }
        })
        .collect();
    if nodes.is_empty() {
        return Capacity::NoFigures;
    }
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    Capacity::Nodes(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: serde_json::Value) -> Vec<pve::wire::ClusterResource> {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn node_figures_come_with_their_running_guests() {
        let r = resources(serde_json::json!([
            {"id": "node/pve1", "type": "node", "node": "pve1", "status": "online", "cpu": 0.125, "maxcpu": 16,
             "mem": 4u64 << 30, "maxmem": 64u64 << 30, "disk": 10u64 << 30, "maxdisk": 100u64 << 30},
            {"id": "lxc/101", "type": "lxc", "vmid": 101, "node": "pve1", "status": "running", "maxcpu": 2},
            {"id": "qemu/102", "type": "qemu", "vmid": "102", "node": "pve1", "status": "stopped", "maxcpu": 4},
            {"id": "lxc/9000", "type": "lxc", "vmid": 9000, "node": "pve1", "status": "stopped", "template": 1},
            {"id": "storage/pve1/local", "type": "storage", "node": "pve1", "disk": 1, "maxdisk": 2},
        ]));
        let Capacity::Nodes(nodes) = capacity_of(&r) else { panic!("no nodes") };
        let n = &nodes[0];
        assert_eq!((n.cores, n.cores_allocated, n.cpu_percent), (16, 2, 13));
        assert_eq!((n.memory_used_mib, n.memory_total_mib), (4096, 65536));
        assert_eq!((n.disk_used_mib, n.disk_total_mib), (10240, 102400));
        assert_eq!((n.guests, n.running), (2, 1));
    }

    #[test]
    fn nodes_without_figures_say_so() {
        let r = resources(serde_json::json!([
            {"id": "node/pve1", "type": "node", "node": "pve1", "status": "online", "level": ""},
        ]));
        assert_eq!(capacity_of(&r), Capacity::NoFigures);
    }
}
