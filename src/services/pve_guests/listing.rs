//! The guests a person's own PVE permissions let them see, as PVE evaluates them (pve-access.md §5.3).
//!
//! Calls for one list (nothing when the person's list is cached, [`super::cache::LIST_TTL`]):
//! 1. `GET /access/permissions?userid=X`, the full dump. Without `VM.Audit` on any path the person
//!    sees nothing and the list ends here.
//! 2. `GET /cluster/resources?type=vm` with proxdesk's token: every guest, templates dropped.
//! 3. `GET /version`, once per process every ten minutes (which privilege guards agent reads).
//! 4. For each guest not in the dump: `GET /access/permissions?userid=X&path=/vms/N`. A guest that is
//!    in the dump needs no call: the dump holds exactly `permissions(X, "/vms/N")` for it. A guest
//!    missing from the dump may still inherit from `/` or `/vms`, so it is asked about, never derived.
//! 5. For a visible guest only: a VM's config where the terminal (`serial0`) or the agent matters,
//!    and the address of a running guest the person may read it of.
//!
//! Steps 4–5 run for at most [`CONCURRENCY`] guests at a time.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use entities::machine;

use super::rights::{GuestRights, Privileges, audits_anything};
use super::{Cache, PveGuest, agent_privilege, unavailable, vm_path};
use crate::domain::guest::GuestType;
use crate::integrations::pve::{self, wire::ClusterResource, wire::first_ipv4};
use crate::services::ServiceError;

/// Guests asked about at once.
pub const CONCURRENCY: usize = 8;
/// An address is a nicety: a guest agent that does not answer (PVE waits 3 s) does not hold the list.
const ADDRESS_TIMEOUT: Duration = Duration::from_millis(1500);

/// The list for PVE user `userid` (account `user_id`), from the cache or from PVE.
pub(super) async fn guests(
    db: &DatabaseConnection,
    pve: &pve::Client,
    cache: &Cache,
    user_id: i64,
    userid: &str,
) -> Result<Vec<PveGuest>, ServiceError> {
    if let Some(list) = cache.get(user_id, userid) {
        return Ok(list);
    }
    let dump = pve.permissions_of(userid, None).await.map_err(unavailable)?;
    if !audits_anything(&dump) {
        cache.put(user_id, userid, vec![]);
        return Ok(vec![]);
    }
    let resources = pve.cluster_resources(Some("vm")).await.map_err(unavailable)?;
    let agent = agent_privilege(pve, cache).await?;
    let own = own_vmids(db, user_id).await?;
    let candidates: Vec<Candidate> =
        resources.iter().filter_map(Candidate::of).filter(|c| !own.contains(&c.vmid)).collect();
    let mut list: Vec<PveGuest> = futures_util::stream::iter(candidates)
        .map(|c| {
            let known = dump.get(&vm_path(c.vmid)).cloned();
            async move {
                let privileges = match known {
                    Some(p) => p,
                    None => super::privileges(pve, userid, c.vmid).await?,
                };
                let rights = GuestRights::of(&privileges, c.kind, agent);
                Ok::<_, ServiceError>(if rights.see { Some(describe(pve, c, rights).await) } else { None })
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_filter_map(|g| async move { Ok(g) })
        .try_collect()
        .await?;
    list.sort_by_key(|g| g.vmid);
    cache.put(user_id, userid, list.clone());
    Ok(list)
}

/// A guest of `/cluster/resources` that may be listed: a container or VM, not a template.
struct Candidate {
    vmid: u64,
    node: String,
    kind: GuestType,
    name: String,
    status: String,
}

impl Candidate {
    fn of(r: &ClusterResource) -> Option<Candidate> {
        let kind = GuestType::parse(&r.kind)?;
        if r.template == Some(1) {
            return None;
        }
        let vmid = r.vmid?;
        Some(Candidate {
            vmid,
            node: r.node.clone()?,
            kind,
            name: r.name.clone().unwrap_or_default(),
            status: r.status.clone().unwrap_or_else(|| "unknown".into()),
        })
    }
}

/// The person's own proxdesk machines: listed with their requests, not here again.
async fn own_vmids(db: &DatabaseConnection, user_id: i64) -> Result<HashSet<u64>, ServiceError> {
    let rows = machine::Entity::find()
        .filter(machine::Column::UserId.eq(user_id))
        .filter(machine::Column::DeletedAt.is_null())
        .all(db)
        .await?;
    Ok(rows.into_iter().filter_map(|m| m.vmid.and_then(|v| u64::try_from(v).ok())).collect())
}

/// A visible guest with what its page needs: the terminal, and its address when the person may read it.
async fn describe(pve: &pve::Client, c: Candidate, rights: GuestRights) -> PveGuest {
    let running = c.status == "running";
    let mut has_terminal = c.kind == GuestType::Lxc;
    let mut ipv4 = None;
    match c.kind {
        GuestType::Lxc if running && rights.address => ipv4 = lxc_address(pve, &c).await,
        GuestType::Lxc => {}
        GuestType::Qemu if rights.console || (running && rights.address) => {
            match pve.guest_config(&c.node, GuestType::Qemu, c.vmid).await {
                Ok(config) => {
                    has_terminal = crate::services::consoles::has_serial_socket(&config);
                    if running && rights.address && config.agent().is_enabled() {
                        ipv4 = agent_address(pve, &c).await;
                    }
                }
                Err(e) => tracing::warn!(vmid = c.vmid, error = %e, "config of guest not read"),
            }
        }
        GuestType::Qemu => {}
    }
    PveGuest {
        vmid: c.vmid,
        name: c.name,
        node: c.node,
        kind: c.kind,
        status: c.status,
        ipv4,
        may_power: rights.power,
        may_console: rights.console,
        has_terminal,
    }
}

async fn lxc_address(pve: &pve::Client, c: &Candidate) -> Option<Ipv4Addr> {
    let read = tokio::time::timeout(ADDRESS_TIMEOUT, pve.lxc_interfaces(&c.node, c.vmid)).await.ok()?;
    read.ok().flatten().as_deref().and_then(first_ipv4)
}

async fn agent_address(pve: &pve::Client, c: &Candidate) -> Option<Ipv4Addr> {
    let read = tokio::time::timeout(ADDRESS_TIMEOUT, pve.qemu_agent_interfaces(&c.node, c.vmid)).await.ok()?;
    read.ok().as_deref().and_then(first_ipv4)
}

/// Privileges of one path in a dump or a per-path answer.
pub(super) fn of_path(mut answer: std::collections::BTreeMap<String, Privileges>, path: &str) -> Privileges {
    answer.remove(path).unwrap_or_default()
}
