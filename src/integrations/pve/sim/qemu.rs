//! QEMU guest agent interfaces (pve-api.md §7). Status, config and vncproxy share LXC's code.

use std::time::Instant;

use serde_json::{Value, json};

use super::http::Ctx;
use super::lxc::link_local;
use super::params;
use super::reply::ApiError;
use super::state::GuestKind;

/// `GET …/qemu/{vmid}/agent/network-get-interfaces`: `{"result":[…]}` with `ipv4`/`ipv6` types.
pub(crate) fn agent_interfaces(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&format!("/vms/{}", ctx.vmid_raw), &["VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted"])?;
    let vmid = ctx.vmid()?;
    params::check(&ctx.params, &[])?;
    let state = ctx.sim.state.lock().expect("state");
    let g = state.guest(&ctx.node, GuestKind::Qemu, vmid)?;
    let agent = g.config.get("agent").filter(|a| *a == "1" || a.contains("enabled=1"));
    if agent.is_none() {
        return Err(ApiError::internal("No QEMU guest agent configured"));
    }
    if !g.running {
        return Err(ApiError::internal(format!("VM {vmid} is not running")));
    }
    let mac = g.config.get("net0").and_then(|n| n.split(',').next()).and_then(|m| m.split_once('=')).map(|(_, m)| m);
    let mac = mac.unwrap_or("bc:24:11:00:00:01").to_lowercase();
    let stats = json!({"rx-bytes": 0, "rx-dropped": 0, "rx-errs": 0, "rx-packets": 0,
                       "tx-bytes": 0, "tx-dropped": 0, "tx-errs": 0, "tx-packets": 0});
    let mut addrs = vec![];
    if let Some(ip) = g.ip.filter(|_| g.ip_ready_at.is_some_and(|t| Instant::now() >= t)) {
        addrs.push(json!({"ip-address": ip.to_string(), "ip-address-type": "ipv4", "prefix": 24}));
    }
    addrs.push(json!({"ip-address": link_local(&mac), "ip-address-type": "ipv6", "prefix": 64}));
    Ok(json!({"result": [
        {"name": "lo", "hardware-address": "00:00:00:00:00:00",
         "ip-addresses": [{"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8},
                          {"ip-address": "::1", "ip-address-type": "ipv6", "prefix": 128}],
         "statistics": stats},
        {"name": "eth0", "hardware-address": mac, "ip-addresses": addrs, "statistics": stats},
    ]}))
}
