//! Version, nodes, cluster resources, nextid, pools and task endpoints.

use serde_json::{Value, json};

use super::http::Ctx;
use super::params::{self, Ty};
use super::reply::ApiError;
use super::state::TaskState;
use crate::integrations::pve::Upid;

/// `GET /version`.
pub(crate) fn version(ctx: &Ctx) -> Result<Value, ApiError> {
    params::check(&ctx.params, &[])?;
    Ok(json!({"version": "9.2.11", "release": "9.2", "repoid": "5a1b2c3d4e5f6a7b"}))
}

/// `GET /nodes`; stats only with `Sys.Audit` on the node.
pub(crate) fn nodes(ctx: &Ctx) -> Result<Value, ApiError> {
    params::check(&ctx.params, &[])?;
    let state = ctx.sim.state.lock().expect("state");
    Ok(state
        .nodes
        .iter()
        .map(|n| {
            let mut v = json!({"node": n, "id": format!("node/{n}"), "type": "node", "status": "online", "level": ""});
            if ctx.allowed(&format!("/nodes/{n}"), "Sys.Audit") {
                add_node_stats(&mut v, &state, n);
            }
            v
        })
        .collect())
}

/// A simulated node's capacity: 16 cores, 64 GiB of memory and a 100 GiB root disk; its use grows with
/// the guests running on it (their memory, a share of CPU) and with every guest's disk on it.
fn add_node_stats(v: &mut Value, state: &super::state::State, node: &str) {
    const GIB: u64 = 1 << 30;
    let here: Vec<_> = state.guests.values().filter(|g| g.node == node).collect();
    let running: Vec<_> = here.iter().filter(|g| g.running).collect();
    let config = |g: &super::state::Guest, key: &str, default: u64| -> u64 {
        g.config.get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
    };
    let busy_cores: u64 = running.iter().map(|g| config(g, "cores", 1)).sum();
    let mem: u64 = 2 * GIB + running.iter().map(|g| config(g, "memory", 512) << 20).sum::<u64>();
    let disk: u64 = 6 * GIB + here.iter().map(|g| g.rootfs_bytes() / 8).sum::<u64>();
    v["cpu"] = json!((0.02 + busy_cores as f64 * 0.01).min(1.0));
    v["maxcpu"] = json!(16);
    v["mem"] = json!(mem.min(64 * GIB));
    v["maxmem"] = json!(64 * GIB);
    v["disk"] = json!(disk.min(100 * GIB));
    v["maxdisk"] = json!(100 * GIB);
    v["uptime"] = json!(86400);
}

/// `GET /cluster/resources`: guests filtered by `VM.Audit`, storages by `Datastore.Audit` (pve-api.md §5).
pub(crate) fn resources(ctx: &Ctx) -> Result<Value, ApiError> {
    params::check(&ctx.params, &[("type", Ty::Enum(&["vm", "storage", "node", "sdn"]), false)])?;
    let filter = ctx.params.get("type").map(String::as_str);
    let state = ctx.sim.state.lock().expect("state");
    let mut out = vec![];
    if filter.is_none() || filter == Some("vm") {
        for g in state.guests.values().filter(|g| ctx.allowed(&format!("/vms/{}", g.vmid), "VM.Audit")) {
            let lagging = g.created_at.is_some_and(|t| t.elapsed() < ctx.sim.cfg.rrd_lag);
            let mut v = if lagging {
                // Not yet in the RRD cache: only the live keys (pve-api.md §5).
                json!({"id": format!("{}/{}", g.kind.as_str(), g.vmid), "type": g.kind.as_str(), "vmid": g.vmid,
                       "node": g.node, "status": "unknown"})
            } else {
                // QEMU `memory` may be written `current=2048`.
                let number = |key: &str, default: u64| {
                    g.config.get(key).and_then(|v| v.trim_start_matches("current=").parse().ok()).unwrap_or(default)
                };
                json!({
                "id": format!("{}/{}", g.kind.as_str(), g.vmid), "type": g.kind.as_str(), "vmid": g.vmid,
                "node": g.node, "status": if g.running { "running" } else { "stopped" }, "name": g.name(),
                "template": u8::from(g.is_template()), "maxmem": number("memory", 512) << 20,
                "maxcpu": number("cores", 1) * number("sockets", 1), "maxdisk": g.rootfs_bytes(),
                "uptime": g.started_at.filter(|_| g.running).map_or(0, |s| s.elapsed().as_secs()),
                })
            };
            // Read live from the config, lagging or not.
            if let Some(lock) = g.lock() {
                v["lock"] = json!(lock);
            }
            if let Some(tags) = g.config.get("tags") {
                v["tags"] = json!(tags);
            }
            // Only with `Pool.Audit` on the pool (pve-access.md §4.1, §5.3).
            if let Some(pool) = super::access::pool_of(ctx.access.pools(), g.vmid)
                && ctx.allowed(&format!("/pool/{pool}"), "Pool.Audit")
            {
                v["pool"] = json!(pool);
            }
            out.push(v);
        }
    }
    if filter.is_none() || filter == Some("node") {
        for n in &state.nodes {
            let mut v = json!({"id": format!("node/{n}"), "type": "node", "node": n, "status": "online", "level": "",
                               "cgroup-mode": 2});
            // Nodes are always listed; their figures only with `Sys.Audit` (pve-api.md §5).
            if ctx.allowed(&format!("/nodes/{n}"), "Sys.Audit") {
                add_node_stats(&mut v, &state, n);
            }
            out.push(v);
        }
    }
    if filter.is_none() || filter == Some("storage") {
        for n in &state.nodes {
            for s in state.storages.iter().filter(|s| ctx.allowed(&format!("/storage/{}", s.id), "Datastore.Audit")) {
                out.push(json!({
                    "id": format!("storage/{n}/{}", s.id), "type": "storage", "storage": s.id, "node": n,
                    "status": "available", "content": s.content, "plugintype": s.kind, "shared": 0,
                    "disk": s.used, "maxdisk": s.total,
                }));
            }
        }
    }
    if filter.is_none() {
        for p in state.pools.keys().filter(|p| ctx.allowed(&format!("/pool/{p}"), "Pool.Audit")) {
            out.push(json!({"id": format!("/pool/{p}"), "type": "pool", "pool": p}));
        }
    }
    Ok(Value::Array(out))
}

/// `GET /cluster/nextid`: a string; with `vmid`, 400 when taken (pve-api.md §5).
pub(crate) fn next_id(ctx: &Ctx) -> Result<Value, ApiError> {
    params::check(&ctx.params, &[("vmid", Ty::Vmid, false)])?;
    let state = ctx.sim.state.lock().expect("state");
    if let Some(v) = ctx.params.get("vmid") {
        let n: u64 = v.parse().expect("checked");
        if state.guests.contains_key(&n) {
            return Err(ApiError::param("vmid", format!("VM {n} already exists")));
        }
        return Ok(json!(n.to_string()));
    }
    let free = (100..1_000_000u64).find(|n| !state.guests.contains_key(n));
    free.map(|n| json!(n.to_string()))
        .ok_or_else(|| ApiError::internal("unable to get any free VMID in range [100, 1000000]"))
}

/// `GET /pools`: pools with `Pool.Audit`.
pub(crate) fn pools(ctx: &Ctx) -> Result<Value, ApiError> {
    params::check(
        &ctx.params,
        &[("poolid", Ty::Str(64), false), ("type", Ty::Enum(&["qemu", "lxc", "storage"]), false)],
    )?;
    let state = ctx.sim.state.lock().expect("state");
    if let Some(id) = ctx.params.get("poolid")
        && !state.pools.contains_key(id)
    {
        return Err(ApiError::internal(format!("pool '{id}' does not exist")));
    }
    Ok(state
        .pools
        .iter()
        .filter(|(id, _)| ctx.params.get("poolid").is_none_or(|p| p == *id))
        .filter(|(id, _)| ctx.allowed(&format!("/pool/{id}"), "Pool.Audit"))
        .map(|(id, comment)| json!({"poolid": id, "comment": comment}))
        .collect())
}

/// The task behind `{upid}`, after the owner-or-`Sys.Audit` check (pve-api.md §4.3).
fn task(ctx: &Ctx) -> Result<super::state::Task, ApiError> {
    let upid: Upid = ctx.upid_raw.parse().map_err(|_| ApiError::param("upid", "unable to parse worker upid"))?;
    let me = ctx.authid();
    let owner = upid.user == me || upid.user.split('!').next() == Some(me.as_str());
    if !owner {
        ctx.require(&format!("/nodes/{}", ctx.node), &["Sys.Audit"])?;
    }
    let state = ctx.sim.state.lock().expect("state");
    state.tasks.get(upid.as_str()).cloned().ok_or_else(|| ApiError::param("upid", "no such task"))
}

/// `GET /nodes/{node}/tasks/{upid}/status`.
pub(crate) fn task_status(ctx: &Ctx) -> Result<Value, ApiError> {
    let t = task(ctx)?;
    params::check(&ctx.params, &[])?;
    let (user, token) = match t.upid.user.split_once('!') {
        Some((u, tok)) => (u.to_owned(), Some(tok.to_owned())),
        None => (t.upid.user.clone(), None),
    };
    let mut v = json!({
        "upid": t.upid.as_str(), "node": t.upid.node, "pid": t.upid.pid, "pstart": t.upid.pstart,
        "starttime": t.upid.starttime, "type": t.upid.task_type, "id": t.upid.id, "user": user,
        "status": if t.state == TaskState::Running { "running" } else { "stopped" },
    });
    if let Some(tok) = token {
        v["tokenid"] = json!(tok);
    }
    if let TaskState::Stopped { exit_status } = &t.state {
        v["exitstatus"] = json!(exit_status);
    }
    Ok(v)
}

/// `GET /nodes/{node}/tasks/{upid}/log` → (lines, total) (pve-api.md §4.4).
pub(crate) fn task_log(ctx: &Ctx) -> Result<(Value, usize), ApiError> {
    let t = task(ctx)?;
    params::check(
        &ctx.params,
        &[
            ("start", Ty::Int(0, i64::MAX), false),
            ("limit", Ty::Int(0, i64::MAX), false),
            ("download", Ty::Bool, false),
        ],
    )?;
    let start: usize = ctx.params.get("start").map_or(0, |s| s.parse().expect("checked"));
    let limit: usize = ctx.params.get("limit").map_or(50, |s| s.parse().expect("checked"));
    let lines = if t.log.is_empty() { vec!["no content".to_owned()] } else { t.log.clone() };
    let total = lines.len();
    let take = if limit == 0 { usize::MAX } else { limit };
    let page: Vec<Value> =
        lines.iter().enumerate().skip(start).take(take).map(|(i, l)| json!({"n": i + 1, "t": l})).collect();
    Ok((Value::Array(page), total))
}
