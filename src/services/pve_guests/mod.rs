//! "Machines you already have in Proxmox": the guests a person with a Proxmox VE identity may use
//! there, beside the machines proxdesk made for them. Everything is decided by PVE's own permission
//! evaluation of the person's PVE user id (`GET /access/permissions`, asked with proxdesk's token);
//! proxdesk then acts with its own token, never as the person. Listing is cached for a short while;
//! every action asks PVE again at the moment it is taken, and nothing reaches the guest when the
//! person lacks the privilege by then. These guests count against no quota, and proxdesk never
//! deletes them.

mod cache;
mod listing;
pub mod rights;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use serde_json::json;

pub use cache::Cache;
pub use listing::CONCURRENCY;
use rights::{AgentPrivilege, GuestRights, Privileges};

use super::machines::PowerAction;
use super::{Actor, GuestRefusal, ServiceError, audit, console_sessions, consoles, identities};
use crate::console::ConsoleKind;
use crate::domain::console_caps::ConsoleCaps;
use crate::domain::guest::GuestType;
use crate::integrations::pve::{self, PveError};
use crate::secrets::Secret;

/// The audit subject type of these guests; the subject id is the VMID.
pub const SUBJECT: &str = "pve_guest";

/// One guest as the person may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PveGuest {
    pub vmid: u64,
    pub name: String,
    pub node: String,
    pub kind: GuestType,
    /// `running`, `stopped`… as `/cluster/resources` says.
    pub status: String,
    /// Only when PVE would let the person read it (and the guest told).
    pub ipv4: Option<std::net::Ipv4Addr>,
    /// `VM.PowerMgmt`.
    pub may_power: bool,
    /// `VM.Console`.
    pub may_console: bool,
    /// A container always; a VM with `serial0: socket`.
    pub has_terminal: bool,
}

/// The guests account `actor` may see through its PVE identity, its own proxdesk machines left out;
/// empty without an identity or a configured cluster. `Unavailable` when PVE does not answer.
#[tracing::instrument(skip(db, pve, cache))]
pub async fn list(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    cache: &Cache,
    actor: &Actor,
) -> Result<Vec<PveGuest>, ServiceError> {
    let (Some(userid), Some(pve)) = (identities::pve_userid(db, actor.id).await?, pve) else { return Ok(vec![]) };
    listing::guests(db, pve, cache, actor.id, &userid).await
}

/// A guest located in the cluster, checked for the person at this moment.
#[derive(Debug, Clone)]
pub struct CheckedGuest {
    /// The person's PVE user id the check was made for.
    pub userid: String,
    pub vmid: u64,
    pub node: String,
    pub kind: GuestType,
    pub name: String,
    pub status: String,
    pub rights: GuestRights,
}

/// Asks PVE now what `actor` may do with guest `vmid`, and where the guest is. `Forbidden` when the
/// person has no PVE identity or PVE grants their PVE user no `VM.Audit` on `/vms/<vmid>`: asked
/// before the guest is looked up, so a VMID that exists answers the same as one that does not.
/// `NotFound` when they may see it but it is no guest (or a template).
pub async fn check(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    cache: &Cache,
    actor: &Actor,
    vmid: u64,
) -> Result<CheckedGuest, ServiceError> {
    let Some(userid) = identities::pve_userid(db, actor.id).await? else { return Err(ServiceError::Forbidden) };
    let pve = pve.ok_or_else(|| ServiceError::Unavailable("no Proxmox VE cluster is configured".into()))?;
    let privileges = privileges(pve, &userid, vmid).await?;
    if !privileges.contains_key("VM.Audit") {
        return Err(ServiceError::Forbidden);
    }
    let resources = pve.cluster_resources(Some("vm")).await.map_err(unavailable)?;
    let found = resources
        .into_iter()
        .find(|r| r.vmid == Some(vmid) && r.template != Some(1))
        .and_then(|r| Some((GuestType::parse(&r.kind)?, r.node?, r.name, r.status)));
    let Some((kind, node, name, status)) = found else { return Err(ServiceError::NotFound) };
    let agent = agent_privilege(pve, cache).await?;
    Ok(CheckedGuest {
        userid,
        vmid,
        node,
        kind,
        name: name.unwrap_or_default(),
        status: status.unwrap_or_else(|| "unknown".into()),
        rights: GuestRights::of(&privileges, kind, agent),
    })
}

/// Starts, shuts down, powers off, reboots or resets guest `vmid` for `actor`, once PVE confirms now that their PVE user
/// holds `VM.PowerMgmt` on it (else `Forbidden`, and nothing is sent). Sent with proxdesk's token;
/// audited as `pve_guest.<action>`.
#[tracing::instrument(skip(db, pve, cache))]
pub async fn power(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    cache: &Cache,
    actor: &Actor,
    vmid: u64,
    action: PowerAction,
) -> Result<(), ServiceError> {
    let g = check(db, pve, cache, actor, vmid).await?;
    cache.forget(actor.id);
    if !g.rights.power {
        return Err(ServiceError::Forbidden);
    }
    // Containers have no `status/reset` (see machines::power).
    if action == PowerAction::Reset && g.kind != crate::domain::guest::GuestType::Qemu {
        return Err(ServiceError::GuestRefused(GuestRefusal::VmOnly));
    }
    let pve = pve.expect("checked");
    let status = pve.guest_status(&g.node, g.kind, vmid).await.map_err(action_error)?;
    // As for proxdesk's machines: QEMU checks a lock only inside its task; a hibernated VM resumes on start.
    if let Some(lock) = status.lock.clone().filter(|l| !(l == "suspended" && action == PowerAction::Start)) {
        return Err(ServiceError::GuestRefused(GuestRefusal::Locked(lock)));
    }
    if let Some(why) = action.refusal(status.is_running()) {
        return Err(ServiceError::GuestRefused(why));
    }
    pve.guest_power(&g.node, g.kind, vmid, action.command()).await.map_err(action_error)?;
    let details = json!({"node": g.node, "kind": g.kind.as_str(), "name": g.name, "pve_userid": g.userid});
    let action_name = format!("pve_guest.{}", action.as_str());
    audit::record(db, Some(actor), &action_name, SUBJECT, vmid as i64, details).await?;
    Ok(())
}

/// Guest `vmid` if `actor` may open its console now (`VM.Console`, asked of PVE); `Forbidden` if they
/// may only see it.
pub async fn for_console(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    cache: &Cache,
    actor: &Actor,
    vmid: u64,
) -> Result<CheckedGuest, ServiceError> {
    let g = check(db, pve, cache, actor, vmid).await?;
    if !g.rights.console { Err(ServiceError::Forbidden) } else { Ok(g) }
}

/// Whether PVE user `userid` still holds `VM.Console` on `vmid` (an open console session asks now and
/// then). `None` when PVE cannot tell right now.
pub async fn still_may_console(pve: &pve::Client, userid: &str, vmid: u64) -> Option<bool> {
    let p = privileges(pve, userid, vmid).await.ok()?;
    Some(p.contains_key("VM.Audit") && p.contains_key("VM.Console"))
}

/// Records that `actor` opened the console of `g` (`pve_guest.console`).
pub async fn audit_console(
    db: &DatabaseConnection,
    actor: &Actor,
    g: &CheckedGuest,
    kind: ConsoleKind,
    via_url: bool,
) -> Result<(), ServiceError> {
    let details = json!({
        "kind": kind.as_str(), "node": g.node, "guest": g.kind.as_str(), "pve_userid": g.userid,
        "via": if via_url { "url" } else { "session" },
    });
    audit::record(db, Some(actor), "pve_guest.console", SUBJECT, g.vmid as i64, details).await?;
    Ok(())
}

/// A single-use console URL token for guest `vmid`, after the same check as opening it.
pub async fn issue_console_url(
    db: &DatabaseConnection,
    pve: Option<&pve::Client>,
    cache: &Cache,
    caps: ConsoleCaps,
    actor: &Actor,
    vmid: u64,
    kind: ConsoleKind,
) -> Result<(Secret<String>, DateTime<Utc>), ServiceError> {
    for_console(db, pve, cache, actor, vmid).await?;
    let subject = console_sessions::SessionSubject::PveGuest(vmid);
    let (token, expires_at) = match consoles::issue_capped(db, caps, actor, subject, kind, &token_label(kind)).await {
        Err(ServiceError::ConsoleCap(r)) => {
            return Err(console_sessions::refused(db, actor, subject, kind, "api", r).await);
        }
        other => other?,
    };
    let details = json!({"kind": kind.as_str(), "expires_at": expires_at.to_rfc3339()});
    audit::record(db, Some(actor), "console.url_issued", SUBJECT, vmid as i64, details).await?;
    Ok((token, expires_at))
}

/// Uses up a console URL token of guest `vmid`: the actor it was issued to, or `None`. A machine's
/// token never opens a guest's console, nor the other way round.
pub async fn redeem_console_url(
    db: &DatabaseConnection,
    token: &str,
    vmid: u64,
    kind: ConsoleKind,
) -> Result<Option<Actor>, ServiceError> {
    let Ok(id) = i64::try_from(vmid) else { return Ok(None) };
    consoles::redeem_labelled(db, token, id, &token_label(kind)).await
}

/// Guests' tokens share the console token table with machines' under their own kind.
fn token_label(kind: ConsoleKind) -> String {
    format!("{SUBJECT}.{}", kind.as_str())
}

fn vm_path(vmid: u64) -> String {
    format!("/vms/{vmid}")
}

/// `permissions(userid, "/vms/<vmid>")` as PVE evaluates it now.
async fn privileges(pve: &pve::Client, userid: &str, vmid: u64) -> Result<Privileges, ServiceError> {
    let path = vm_path(vmid);
    let answer = pve.permissions_of(userid, Some(&path)).await.map_err(unavailable)?;
    Ok(listing::of_path(answer, &path))
}

/// The privilege guarding agent reads, from the cache or `/version`.
async fn agent_privilege(pve: &pve::Client, cache: &Cache) -> Result<AgentPrivilege, ServiceError> {
    if let Some(p) = cache.agent_privilege() {
        return Ok(p);
    }
    let version = pve.version().await.map_err(unavailable)?;
    let p = AgentPrivilege::of_version(&version.version);
    cache.set_agent_privilege(p);
    Ok(p)
}

/// A read PVE did not answer: the list shows a notice, an action answers 503.
fn unavailable(e: PveError) -> ServiceError {
    ServiceError::Unavailable(format!("Proxmox VE: {e}"))
}

/// An action's call: PVE's refusals as for proxdesk's machines, no answer as `Unavailable`.
fn action_error(e: PveError) -> ServiceError {
    match e {
        PveError::Unreachable(_) | PveError::Timeout(_) | PveError::Tls(_) => unavailable(e),
        PveError::Api { status, .. } if (595..=599).contains(&status) => unavailable(e),
        e => super::lost_machines::pve_error(e),
    }
}
