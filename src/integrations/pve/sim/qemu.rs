//! QEMU VM list and guest agent interfaces (pve-api.md §7). Status and vncproxy share LXC's code.

use std::time::Instant;

use serde_json::{Value, json};

use super::guest_net::AgentState;
use super::http::Ctx;
use super::interfaces::agent_result;
use super::params;
use super::reply::ApiError;
use super::state::GuestKind;

const NOT_RUNNING: &str = "QEMU guest agent is not running";

/// `GET …/qemu/{vmid}/agent/network-get-interfaces`: `{"result":[…]}`, or PVE's texts in its order —
/// no `agent` key, VM stopped, no channel or nothing listening (at once), a hung agent (after the
/// ping timeout, without holding the state, so calls overlap as on PVE).
pub(crate) async fn agent_interfaces(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&format!("/vms/{}", ctx.vmid_raw), &["VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted"])?;
    let vmid = ctx.vmid()?;
    params::check(&ctx.params, &[])?;
    {
        let state = ctx.sim.state.lock().expect("state");
        let g = state.guest(&ctx.node, GuestKind::Qemu, vmid)?;
        if !g.config.contains_key("agent") {
            return Err(ApiError::internal("No QEMU guest agent configured"));
        }
        if !g.running {
            return Err(ApiError::internal(format!("VM {vmid} is not running")));
        }
        match (g.agent_enabled(), g.agent) {
            (false, _) | (true, AgentState::NotRunning) => return Err(ApiError::internal(NOT_RUNNING)),
            (true, AgentState::Responsive) => return Ok(json!({"result": agent_result(g, Instant::now())})),
            (true, AgentState::Silent) => {}
        }
    }
    tokio::time::sleep(ctx.sim.cfg.agent_timeout).await;
    Err(ApiError::internal(NOT_RUNNING))
}

/// `GET /nodes/{node}/qemu`: the node's VMs (templates included) the caller may audit.
pub(crate) fn list(ctx: &Ctx) -> Result<Value, ApiError> {
    params::check(&ctx.params, &[("full", super::params::Ty::Bool, false)])?;
    let state = ctx.sim.state.lock().expect("state");
    Ok(state
        .guests
        .values()
        .filter(|g| g.node == ctx.node && g.kind == GuestKind::Qemu)
        .filter(|g| ctx.allowed(&format!("/vms/{}", g.vmid), "VM.Audit"))
        .map(|g| {
            let mut v = super::lxc::status_json(g, false);
            if let Some(o) = v.as_object_mut() {
                o.remove("qmpstatus");
            }
            v
        })
        .collect())
}
