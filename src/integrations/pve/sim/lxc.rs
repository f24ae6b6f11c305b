//! LXC endpoints: list, clone, status, power, delete, interfaces (pve-api.md §6). Config and resize
//! are in `guest_config.rs`.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};

use super::faults::Fault;
use super::http::Ctx;
use super::inventory::random_mac;
use super::params::{self, Ty, normalise_net};
use super::reply::ApiError;
use super::state::{Guest, GuestKind};
use super::tasks::{self, Work};

pub(crate) use super::guest_config::{config_get, config_put, resize};

pub(crate) fn status_json(g: &Guest, with_ha: bool) -> Value {
    let running = g.running;
    let mut v = json!({
        "vmid": g.vmid, "status": if running { "running" } else { "stopped" }, "name": g.name(),
        "maxdisk": g.rootfs_bytes(),
    });
    super::metrics::live(g, &mut v);
    if g.kind == GuestKind::Lxc {
        v["type"] = json!("lxc");
        v["maxswap"] = json!(g.config.get("swap").and_then(|m| m.parse::<u64>().ok()).unwrap_or(0) << 20);
        v["swap"] = json!(0);
    } else {
        v["qmpstatus"] = v["status"].clone();
        if g.agent_enabled() {
            v["agent"] = json!(1);
        }
    }
    if running {
        v["pid"] = json!(10_000 + g.vmid);
    }
    if g.is_template() {
        v["template"] = json!(1);
    }
    if let Some(lock) = g.lock() {
        v["lock"] = json!(lock);
    }
    if let Some(tags) = g.config.get("tags") {
        v["tags"] = json!(tags);
    }
    if with_ha {
        v["ha"] = json!({"managed": 0});
    }
    v
}

/// `GET /nodes/{node}/lxc`: filtered by `VM.Audit`.
pub(crate) fn list(ctx: &Ctx) -> Result<Value, ApiError> {
    params::check(&ctx.params, &[])?;
    let state = ctx.sim.state.lock().expect("state");
    Ok(state
        .guests
        .values()
        .filter(|g| g.node == ctx.node && g.kind == GuestKind::Lxc)
        .filter(|g| ctx.allowed(&format!("/vms/{}", g.vmid), "VM.Audit"))
        .map(|g| status_json(g, false))
        .collect())
}

/// `GET …/{vmid}/status/current` (LXC and QEMU).
pub(crate) fn status_current(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&format!("/vms/{}", ctx.vmid_raw), &["VM.Audit"])?;
    let vmid = ctx.vmid()?;
    params::check(&ctx.params, &[])?;
    let mut state = ctx.sim.state.lock().expect("state");
    let g = state.guest_mut(&ctx.node, ctx.kind, vmid)?;
    let mut v = status_json(g, true);
    // PVE's CPU figure is the CPU time since the previous sample by the same API worker; the first one a
    // worker takes reads 0 (pve-qemu-day2.md §8.1). The simulator is one worker.
    if g.running && !std::mem::replace(&mut g.cpu_sampled, true) {
        v["cpu"] = json!(0);
    }
    Ok(v)
}

const CLONE: params::Schema = &[
    ("newid", Ty::Vmid, true),
    ("hostname", Ty::DnsName, false),
    ("description", Ty::Str(usize::MAX), false),
    ("pool", Ty::Str(64), false),
    ("snapname", Ty::Str(40), false),
    ("storage", Ty::StorageId, false),
    ("full", Ty::Bool, false),
    ("target", Ty::Str(64), false),
    ("bwlimit", Ty::Int(0, i64::MAX), false),
];

/// `POST …/{vmid}/clone` → `vzclone` UPID; source `lock: disk`, target `lock: create` (pve-api.md §6.2).
pub(crate) fn clone(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&format!("/vms/{}", ctx.vmid_raw), &["VM.Clone"])?;
    let newid_raw = ctx.params.get("newid").cloned().unwrap_or_default();
    let pool = ctx.params.get("pool").cloned();
    let may_allocate = ctx.allowed(&format!("/vms/{newid_raw}"), "VM.Allocate")
        || pool.as_ref().is_some_and(|p| ctx.allowed(&format!("/pool/{p}"), "VM.Allocate"));
    if !may_allocate {
        return Err(ApiError::status(403, "Permission check failed"));
    }
    let vmid = ctx.vmid()?;
    params::check(&ctx.params, CLONE)?;
    let newid: u64 = newid_raw.parse().expect("checked");
    let mut state = ctx.sim.state.lock().expect("state");
    if let Some(p) = &pool
        && !state.pools.contains_key(p)
    {
        return Err(ApiError::status(403, format!("Permission check failed (pool '{p}' does not exist)")));
    }
    let source = state.guest(&ctx.node, GuestKind::Lxc, vmid)?.clone();
    let full = ctx.params.get("full").map_or(!source.is_template(), |f| f == "1");
    if !full && ctx.params.contains_key("storage") {
        return Err(ApiError::param("storage", "parameter 'storage' not allowed for linked clones"));
    }
    let storage = ctx.params.get("storage").cloned().unwrap_or_else(|| "local-lvm".into());
    if !state.storages.iter().any(|s| s.id == storage) {
        return Err(ApiError::param("storage", format!("storage '{storage}' does not exist")));
    }
    ctx.require(&format!("/storage/{storage}"), &["Datastore.AllocateSpace"])?;
    let bridge = source.config.get("net0").and_then(|n| n.split(',').find_map(|kv| kv.strip_prefix("bridge=")));
    if let Some(bridge) = bridge {
        ctx.require(&format!("/sdn/zones/localnetwork/{bridge}"), &["SDN.Use"])?;
    }
    source.check_lock()?;
    if source.running && full {
        return Err(ApiError::internal("Full clone of a running container is only possible from a snapshot"));
    }
    if let Some(existing) = state.guests.get(&newid) {
        let label = existing.kind.label();
        return Err(ApiError::internal(format!("{label} {newid} already exists on node '{}'", existing.node)));
    }
    let target_node = ctx.params.get("target").cloned().unwrap_or_else(|| ctx.node.clone());
    let mut config = source.config.clone();
    config.retain(|k, _| !k.starts_with("unused") && !matches!(k.as_str(), "template" | "parent" | "snaptime"));
    for key in ["hostname", "description"] {
        if let Some(v) = ctx.params.get(key) {
            config.insert(key.into(), v.clone());
        }
    }
    let src_volume = source.config.get("rootfs").and_then(|r| r.split(',').next()).unwrap_or_default().to_owned();
    let size = super::state::format_size(source.rootfs_bytes());
    config.insert("rootfs".into(), format!("{storage}:vm-{newid}-disk-0,size={size}"));
    {
        let mut rng = ctx.sim.rng.lock().expect("rng");
        let nets: Vec<String> = config.keys().filter(|k| k.starts_with("net")).cloned().collect();
        for key in nets {
            let without_mac: Vec<&str> =
                config[&key].split(',').filter(|kv| !kv.starts_with("hwaddr=")).collect::<Vec<_>>();
            let fresh = normalise_net(&without_mac.join(","), || random_mac(&mut rng));
            config.insert(key, fresh);
        }
    }
    config.insert("lock".into(), "create".into());
    state.guests.get_mut(&vmid).expect("exists").config.insert("lock".into(), "disk".into());
    let passwd = source.passwd.clone();
    let target =
        Guest { created_at: Some(Instant::now()), passwd, ..Guest::new(newid, GuestKind::Lxc, target_node, config) };
    state.guests.insert(newid, target);
    drop(state);

    let upid = tasks::new_upid(&ctx.sim, &ctx.node, "vzclone", &vmid.to_string(), &ctx.authid());
    let line = if full {
        format!("create full clone of mountpoint rootfs ({src_volume})")
    } else {
        format!("create linked clone of mount point rootfs ({src_volume})")
    };
    let work: Work = Box::new(move |state| {
        if let Some(t) = state.guests.get_mut(&newid) {
            t.config.remove("lock");
            t.pool = pool;
        }
        if let Some(s) = state.guests.get_mut(&vmid) {
            s.config.remove("lock");
        }
        Ok(vec![line])
    });
    let cleanup: Work = Box::new(move |state| {
        state.guests.remove(&newid);
        if let Some(s) = state.guests.get_mut(&vmid) {
            s.config.remove("lock");
        }
        Ok(vec![])
    });
    // The worker's error text is wrapped like PVE's (`clone failed: …`).
    let faults: Vec<Fault> = ctx
        .faults
        .iter()
        .map(|f| match f {
            Fault::TaskError(m) => Fault::TaskError(format!("clone failed: {m}")),
            other => other.clone(),
        })
        .collect();
    let upid = tasks::spawn(&ctx.sim, &faults, upid, ctx.sim.cfg.clone_duration, work, Some(cleanup));
    Ok(json!(upid))
}

fn power_schema(action: &str) -> params::Schema {
    match action {
        "start" => &[("skiplock", Ty::Bool, false), ("debug", Ty::Bool, false)],
        "stop" => &[("skiplock", Ty::Bool, false), ("overrule-shutdown", Ty::Bool, false)],
        "shutdown" => &[("timeout", Ty::Int(0, i64::MAX), false), ("forceStop", Ty::Bool, false)],
        _ => &[("timeout", Ty::Int(0, i64::MAX), false)],
    }
}

fn lease(ctx: &Ctx, vmid: u64) -> Ipv4Addr {
    let mut rng = ctx.sim.rng.lock().expect("rng");
    Ipv4Addr::new(10, 20, (vmid % 250) as u8, rng.random_range(2..250))
}

/// `POST …/status/{start|stop|shutdown|reboot}` → UPID (pve-api.md §6.4).
pub(crate) fn power(ctx: &Ctx, action: &'static str) -> Result<Value, ApiError> {
    ctx.require(&format!("/vms/{}", ctx.vmid_raw), &["VM.PowerMgmt"])?;
    let vmid = ctx.vmid()?;
    params::check(&ctx.params, power_schema(action))?;
    if ctx.params.get("skiplock").is_some_and(|s| s == "1") && ctx.authid() != "root@pam" {
        return Err(ApiError::param("skiplock", "Only root may use this option."));
    }
    let running = ctx.sim.state.lock().expect("state").guest(&ctx.node, GuestKind::Lxc, vmid)?.running;
    match action {
        "start" if running => return Err(ApiError::internal(format!("CT {vmid} already running"))),
        "stop" | "shutdown" if !running => return Err(ApiError::internal(format!("CT {vmid} not running"))),
        // LXC reboot says "VM" (sic, pve-api.md §6.4).
        "reboot" if !running => return Err(ApiError::internal(format!("VM {vmid} not running"))),
        _ => {}
    }
    let ip = lease(ctx, vmid);
    let ip_delay = ctx.sim.cfg.ip_delay;
    let work: Work = Box::new(move |state| {
        let g = state.guests.get_mut(&vmid).ok_or("container vanished")?;
        match action {
            "start" => {
                if g.is_template() {
                    return Err("you can't start a CT if it's a template".into());
                }
                if let Some(l) = g.lock().filter(|l| *l != "mounted") {
                    return Err(format!("CT is locked ({l})"));
                }
                start(g, ip, ip_delay);
            }
            "reboot" => start(g, g.ip.unwrap_or(ip), ip_delay),
            _ => {
                g.running = false;
                g.started_at = None;
                g.stopped_at = Some(std::time::Instant::now());
            }
        }
        Ok(vec![])
    });
    let upid = tasks::new_upid(&ctx.sim, &ctx.node, &format!("vz{action}"), &vmid.to_string(), &ctx.authid());
    Ok(json!(tasks::spawn(&ctx.sim, &ctx.faults, upid, ctx.sim.cfg.power_duration, work, None)))
}

fn start(g: &mut Guest, ip: Ipv4Addr, ip_delay: Duration) {
    g.running = true;
    g.started_at = Some(Instant::now());
    g.cpu_sampled = false;
    g.ip = Some(g.ip.unwrap_or(ip));
    g.ip_ready_at = Some(Instant::now() + ip_delay);
}

/// `DELETE /nodes/{node}/lxc/{vmid}` → `vzdestroy` UPID (pve-api.md §6.5).
pub(crate) fn delete(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&format!("/vms/{}", ctx.vmid_raw), &["VM.Allocate"])?;
    let vmid = ctx.vmid()?;
    let schema: params::Schema =
        &[("force", Ty::Bool, false), ("purge", Ty::Bool, false), ("destroy-unreferenced-disks", Ty::Bool, false)];
    params::check(&ctx.params, schema)?;
    {
        let mut state = ctx.sim.state.lock().expect("state");
        let g = state.guest_mut(&ctx.node, GuestKind::Lxc, vmid)?;
        if g.config.get("protection").is_some_and(|p| p == "1") {
            return Err(ApiError::internal(format!("can't remove CT {vmid} - protection mode enabled")));
        }
        g.check_lock()?;
        if g.running && ctx.params.get("force").is_none_or(|f| f != "1") {
            return Err(ApiError::internal(format!("unable to destroy CT {vmid} - container is running")));
        }
        // The worker locks the config first, so the guest shows `lock: destroyed` until its file goes.
        g.config.insert("lock".into(), "destroyed".into());
    }
    let work: Work = Box::new(move |state| {
        state.guests.remove(&vmid);
        Ok(vec![format!("Logical volume \"vm-{vmid}-disk-0\" successfully removed.")])
    });
    // A failed or stopped destroy gives the guest back unlocked (the simulator removes nothing by halves).
    let unlock: Work = Box::new(move |state| {
        if let Some(g) = state.guests.get_mut(&vmid) {
            g.config.remove("lock");
        }
        Ok(vec![])
    });
    let upid = tasks::new_upid(&ctx.sim, &ctx.node, "vzdestroy", &vmid.to_string(), &ctx.authid());
    Ok(json!(tasks::spawn(&ctx.sim, &ctx.faults, upid, ctx.sim.cfg.power_duration, work, Some(unlock))))
}

/// `GET …/{vmid}/interfaces`: `null` when stopped; `lo` first; IPv4 once the lease arrived, at once
/// when static, never when DHCP does not answer (§6.8).
pub(crate) fn interfaces(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&format!("/vms/{}", ctx.vmid_raw), &["VM.Audit"])?;
    let vmid = ctx.vmid()?;
    params::check(&ctx.params, &[])?;
    let state = ctx.sim.state.lock().expect("state");
    let g = state.guest(&ctx.node, GuestKind::Lxc, vmid)?;
    if !g.running {
        return Ok(Value::Null);
    }
    Ok(super::interfaces::lxc_interfaces(g, Instant::now()))
}
