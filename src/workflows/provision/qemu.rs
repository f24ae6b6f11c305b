//! A VM from a cloud-init template: (static address leased) → clone → configure (resources, the
//! owner's login through cloud-init, network, marker tags) → grow the boot disk → start → address →
//! optional SSH finish → ready. Each step is checkpointed; a step whose answer was lost looks at PVE's
//! state before sending anything again.

use std::net::Ipv4Addr;
use std::time::Instant;

use jobs::JobContext;
use serde_json::json;

use super::{Progress, Subject, clone, power, qemu_config, ready, recovery, steps};
use crate::domain::guest::{GuestType, Ipv4Pool};
use crate::integrations::pve::PveError;
use crate::integrations::pve::wire::first_ipv4;
use crate::services::addresses;
use crate::workflows::{Deps, StepError, timeline};

type Step = Result<(), StepError>;

/// How the VM gets its IPv4 address: a static one leased from the entry's pool, or DHCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Addressing {
    Dhcp,
    Static { ip: Ipv4Addr, prefix: u8, gateway: Option<Ipv4Addr> },
}

impl Addressing {
    /// cloud-init's `ipconfig0`: `ip=dhcp`, or `ip=192.0.2.10/24,gw=192.0.2.1`.
    pub fn ipconfig0(&self) -> String {
        match self {
            Addressing::Dhcp => "ip=dhcp".into(),
            Addressing::Static { ip, prefix, gateway: Some(gw) } => format!("ip={ip}/{prefix},gw={gw}"),
            Addressing::Static { ip, prefix, gateway: None } => format!("ip={ip}/{prefix}"),
        }
    }
}

pub async fn run(deps: &Deps, ctx: &JobContext, s: &Subject, p: &mut Progress) -> Step {
    let id = s.request.id;
    let db = &deps.db;
    let node = s.template.node.as_str();
    let addressing = lease(deps, s).await?;
    if !p.cloned {
        clone::clone(deps, ctx, s, p).await?;
        timeline::note(db, id, "provision.cloned", json!({"vmid": p.vmid, "node": node})).await;
    }
    let vmid = p.vmid.expect("cloned implies a vmid");
    if !p.configured {
        let password = steps::password(deps, ctx, p).await?;
        if let Some(r) = qemu_config::configure(deps, s, vmid, &password, &addressing).await? {
            recovery::note(deps, id, "provision.recovered", vmid, r).await;
        }
        p.configured = true;
        ctx.checkpoint(p).await?;
    }
    if !p.resized {
        if let Some(r) = qemu_config::resize(deps, node, vmid, s.request.disk_gib as u64).await? {
            recovery::note(deps, id, "provision.recovered", vmid, r).await;
        }
        p.resized = true;
        ctx.checkpoint(p).await?;
        let r = &s.request;
        let details = json!({"cores": r.cores, "memory_mib": r.memory_mib, "disk_gib": r.disk_gib,
            "ipconfig0": addressing.ipconfig0(), "bridge": r.bridge});
        timeline::note(db, id, "provision.configured", details).await;
    }
    if !p.started {
        if let Some(r) = power::start(deps, node, GuestType::Qemu, vmid).await? {
            recovery::note(deps, id, "provision.recovered", vmid, r).await;
        }
        p.started = true;
        ctx.checkpoint(p).await?;
        timeline::note(db, id, "provision.started", json!({"vmid": vmid})).await;
    }
    if p.ipv4.is_none() {
        let ip = match addressing {
            Addressing::Static { ip, .. } => ip.to_string(),
            Addressing::Dhcp => agent_ipv4(deps, node, vmid).await?,
        };
        p.ipv4 = Some(ip);
        ctx.checkpoint(p).await?;
        timeline::note(db, id, "provision.address", json!({"ipv4": p.ipv4})).await;
    }
    if !p.finished {
        match s.template.finish_mode.as_str() {
            "none" => {}
            "guest" => steps::finish(deps, ctx, s, p).await?,
            other => {
                return Err(StepError::Fatal(format!(
                    "finish mode {other:?} is for containers; a VM is finished on the guest (`guest`) or not at all"
                )));
            }
        }
        p.finished = true;
        ctx.checkpoint(p).await?;
    }
    ready::mark_ready(deps, s, p).await
}

/// The request's static address from the entry's pool (the one it holds already, when resumed), or
/// DHCP when the entry has no pool.
async fn lease(deps: &Deps, s: &Subject) -> Result<Addressing, StepError> {
    let t = &s.template;
    let Some(pool_text) = t.ip_pool.as_deref().filter(|p| !p.trim().is_empty()) else {
        return Ok(Addressing::Dhcp);
    };
    let pool = Ipv4Pool::parse(pool_text).ok_or_else(|| {
        StepError::Fatal(format!("the catalog entry's address pool {pool_text:?} is not first-last/prefix"))
    })?;
    let gateway = match t.gateway.as_deref().map(str::trim).filter(|g| !g.is_empty()) {
        Some(g) => Some(
            g.parse()
                .map_err(|_| StepError::Fatal(format!("the catalog entry's gateway {g:?} is not an IPv4 address")))?,
        ),
        None => None,
    };
    match addresses::allocate(&deps.db, s.request.id, pool).await? {
        Some(ip) => Ok(Addressing::Static { ip, prefix: pool.prefix, gateway }),
        None => Err(StepError::Fatal(format!("every address of the pool {pool} is in use"))),
    }
}

/// The first reachable IPv4 address the guest agent reports. The agent answers only once the OS has
/// booted: until then PVE says `QEMU guest agent is not running`, which is waited out.
async fn agent_ipv4(deps: &Deps, node: &str, vmid: u64) -> Result<String, StepError> {
    let until = Instant::now() + deps.timing.ip;
    loop {
        match deps.pve.qemu_agent_interfaces(node, vmid).await {
            Ok(interfaces) => {
                if let Some(ip) = first_ipv4(&interfaces) {
                    return Ok(ip.to_string());
                }
            }
            Err(PveError::AgentUnavailable { configured: false, .. }) => {
                return Err(StepError::Fatal(format!(
                    "VM {vmid} has no QEMU guest agent configured, so its address cannot be learnt: enable the agent \
                     on the template or give the catalog entry an address pool"
                )));
            }
            Err(PveError::AgentUnavailable { .. } | PveError::NotRunning(_)) => {}
            Err(e) if e.is_transient() => {}
            Err(e) => return Err(e.into()),
        }
        if Instant::now() > until {
            return Err(StepError::Retry(format!(
                "VM {vmid} had no IPv4 address after {} s",
                deps.timing.ip.as_secs()
            )));
        }
        tokio::time::sleep(deps.timing.poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::Addressing;

    #[test]
    fn ipconfig0_is_dhcp_or_the_static_address_with_its_gateway() {
        assert_eq!(Addressing::Dhcp.ipconfig0(), "ip=dhcp");
        let ip = "192.0.2.100".parse().unwrap();
        let gateway = Some("192.0.2.1".parse().unwrap());
        assert_eq!(Addressing::Static { ip, prefix: 24, gateway }.ipconfig0(), "ip=192.0.2.100/24,gw=192.0.2.1");
        assert_eq!(Addressing::Static { ip, prefix: 24, gateway: None }.ipconfig0(), "ip=192.0.2.100/24");
    }
}
