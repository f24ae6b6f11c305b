//! LXC config GET and PUT and LXC resize (pve-api.md §6.3, §6.3a, §9); QEMU's are in `qemu_config.rs`.

use serde_json::{Map, Value, json};

use super::http::Ctx;
use super::inventory::random_mac;
use super::params::{self, Ty, normalise_net, normalise_tags};
use super::reply::ApiError;
use super::state::{GuestKind, format_size, parse_size};
use super::tasks::{self, Work};

// Config keys of integer/boolean schema type come back as JSON numbers; the rest as strings (§1, §9).
const LXC_NUMBERS: &[&str] =
    &["cores", "memory", "swap", "onboot", "template", "unprivileged", "protection", "tty", "cpuunits"];

/// `GET …/{vmid}/config` with `digest`.
pub(crate) fn config_get(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&format!("/vms/{}", ctx.vmid_raw), &["VM.Audit"])?;
    let vmid = ctx.vmid()?;
    params::check(&ctx.params, &[("current", Ty::Bool, false), ("snapshot", Ty::Str(40), false)])?;
    let state = ctx.sim.state.lock().expect("state");
    let g = state.guest(&ctx.node, ctx.kind, vmid)?;
    let numbers = LXC_NUMBERS;
    let mut out = Map::new();
    for (k, v) in &g.config {
        if k == "description" {
            continue;
        }
        let value = match v.parse::<i64>() {
            Ok(n) if numbers.contains(&k.as_str()) => json!(n),
            _ => json!(v),
        };
        out.insert(k.clone(), value);
    }
    if let Some(d) = g.description_read_back() {
        out.insert("description".into(), json!(d));
    }
    out.insert("digest".into(), json!(g.digest()));
    Ok(Value::Object(out))
}

const LXC_PUT: params::Schema = &[
    ("cores", Ty::Int(1, 8192), false),
    ("cpulimit", Ty::Str(16), false),
    ("cpuunits", Ty::Int(0, 500_000), false),
    ("memory", Ty::Int(16, i64::MAX), false),
    ("swap", Ty::Int(0, i64::MAX), false),
    ("hostname", Ty::DnsName, false),
    ("description", Ty::Str(8192), false),
    ("tags", Ty::Tags, false),
    ("onboot", Ty::Bool, false),
    ("protection", Ty::Bool, false),
    ("net0", Ty::Net, false),
    ("net1", Ty::Net, false),
    ("nameserver", Ty::Str(255), false),
    ("searchdomain", Ty::Str(255), false),
    ("features", Ty::Str(255), false),
    ("startup", Ty::Str(64), false),
    ("rootfs", Ty::Str(255), false),
    ("unprivileged", Ty::Bool, false),
    ("delete", Ty::Str(4096), false),
    ("revert", Ty::Str(4096), false),
    ("digest", Ty::Str(40), false),
];

fn key_privilege(key: &str) -> &'static str {
    match key {
        "cores" | "sockets" | "cpulimit" | "cpuunits" => "VM.Config.CPU",
        "memory" | "swap" => "VM.Config.Memory",
        "hostname" | "nameserver" | "searchdomain" => "VM.Config.Network",
        k if k.starts_with("net") => "VM.Config.Network",
        "rootfs" => "VM.Config.Disk",
        _ => "VM.Config.Options",
    }
}

/// `PUT …/lxc/{vmid}/config` → `null`, synchronous. A running guest takes every change at once
/// here (the simulator has no pending section). A `digest` that is not the current one refuses the whole
/// change (pve-api.md §6.3, §3.2).
pub(crate) fn config_put(ctx: &Ctx) -> Result<Value, ApiError> {
    let path = format!("/vms/{}", ctx.vmid_raw);
    let any = ["VM.Config.Disk", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Network", "VM.Config.Options"];
    ctx.require(&path, &any)?;
    let vmid = ctx.vmid()?;
    params::check(&ctx.params, LXC_PUT)?;
    let deletes: Vec<String> = ctx
        .params
        .get("delete")
        .map(|d| d.split([',', ';', ' ']).filter(|k| !k.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    if let Some(both) = deletes.iter().find(|k| ctx.params.contains_key(k.as_str())) {
        return Err(ApiError::param("delete", format!("cannot set and delete property '{both}' at the same time")));
    }
    let values: Vec<(&String, &String)> =
        ctx.params.iter().filter(|(k, _)| !matches!(k.as_str(), "delete" | "revert" | "digest")).collect();
    for key in values.iter().map(|(k, _)| k.as_str()).chain(deletes.iter().map(String::as_str)) {
        ctx.require(&path, &[key_privilege(key)])?;
    }
    if values.is_empty() && deletes.is_empty() {
        return Err(ApiError::internal("no options specified"));
    }
    let mut state = ctx.sim.state.lock().expect("state");
    let g = state.guest_mut(&ctx.node, ctx.kind, vmid)?;
    g.check_lock()?;
    if let Some(d) = ctx.params.get("digest")
        && *d != g.digest()
    {
        return Err(ApiError::internal("detected modified configuration - file changed by other user? Try again."));
    }
    if ctx.params.contains_key("unprivileged") {
        return Err(ApiError::internal("unable to modify read-only option: 'unprivileged'"));
    }
    let required = |k: &str| matches!(k, "memory" | "rootfs" | "ostype");
    if let Some(k) = deletes.iter().find(|k| required(k)) {
        return Err(ApiError::internal(format!("unable to delete required option '{k}'")));
    }
    let mut rng = ctx.sim.rng.lock().expect("rng");
    for (k, v) in values {
        let stored = match k.as_str() {
            k if k.starts_with("net") => normalise_net(v, || random_mac(&mut rng)),
            "tags" => normalise_tags(v),
            _ => v.clone(),
        };
        // Empty notes remove the key (pve-api.md §9).
        if k == "description" && v.is_empty() {
            g.config.remove(k);
        } else {
            g.config.insert(k.clone(), stored);
        }
    }
    for k in &deletes {
        g.config.remove(k);
    }
    Ok(Value::Null)
}

/// `PUT …/{vmid}/resize` → `resize` UPID; shrinking refused synchronously (pve-api.md §6.3a).
pub(crate) fn resize(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&format!("/vms/{}", ctx.vmid_raw), &["VM.Config.Disk"])?;
    let vmid = ctx.vmid()?;
    let schema: params::Schema =
        &[("disk", Ty::Enum(&["rootfs"]), true), ("size", Ty::Size, true), ("digest", Ty::Str(40), false)];
    params::check(&ctx.params, schema)?;
    let size = &ctx.params["size"];
    let (volume, current) = {
        let state = ctx.sim.state.lock().expect("state");
        let g = state.guest(&ctx.node, GuestKind::Lxc, vmid)?;
        g.check_lock()?;
        if let Some(d) = ctx.params.get("digest")
            && *d != g.digest()
        {
            return Err(ApiError::internal("detected modified configuration - file changed by other user? Try again."));
        }
        (g.config.get("rootfs").cloned().unwrap_or_default(), g.rootfs_bytes())
    };
    let storage = volume.split(':').next().unwrap_or("local-lvm").to_owned();
    ctx.require(&format!("/storage/{storage}"), &["Datastore.AllocateSpace"])?;
    let amount = parse_size(size.trim_start_matches('+')).unwrap_or(0);
    let target = if size.starts_with('+') { current + amount } else { amount };
    if target < current {
        return Err(ApiError::internal("unable to shrink disk size"));
    }
    if target == current {
        return Err(ApiError::internal("disk is already at specified size"));
    }
    let work: Work = Box::new(move |state| {
        let g = state.guests.get_mut(&vmid).ok_or("container vanished")?;
        let rootfs: Vec<String> = volume
            .split(',')
            .filter(|kv| !kv.starts_with("size="))
            .map(str::to_owned)
            .chain(std::iter::once(format!("size={}", format_size(target))))
            .collect();
        g.config.insert("rootfs".into(), rootfs.join(","));
        Ok(vec![format!("Size of logical volume changed to {}.", format_size(target))])
    });
    let upid = tasks::new_upid(&ctx.sim, &ctx.node, "resize", &vmid.to_string(), &ctx.authid());
    Ok(json!(tasks::spawn(&ctx.sim, &ctx.faults, upid, ctx.sim.cfg.power_duration, work, None)))
}
