//! `POST /nodes/{node}/qemu/{vmid}/clone` → `qmclone` UPID (pve-qemu-day2.md §2.1). The source gets no
//! config lock, only a flock held by the worker (shared when it is stopped), so clones of one template
//! run side by side; the new VM's file appears inside the task as `lock: clone` alone.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};

use super::drive::{Drive, Nic, is_drive_key, is_net_key};
use super::faults::Fault;
use super::http::Ctx;
use super::inventory::random_mac;
use super::params::{self, Ty};
use super::reply::ApiError;
use super::state::{EXCLUSIVE, Guest, GuestKind, State};
use super::tasks::{self, Work};
use super::volumes;

const CLONE: params::Schema = &[
    ("newid", Ty::Vmid, true),
    ("name", Ty::DnsName, false),
    ("description", Ty::Str(8192), false),
    ("pool", Ty::Str(64), false),
    ("snapname", Ty::Str(40), false),
    ("storage", Ty::StorageId, false),
    ("format", Ty::Enum(&["raw", "qcow2", "vmdk"]), false),
    ("full", Ty::Bool, false),
    ("target", Ty::Str(64), false),
    ("bwlimit", Ty::Int(0, i64::MAX), false),
];

/// What the checks found: the new config (still without volumes), the drives to copy and the log.
struct Plan {
    config: BTreeMap<String, String>,
    drives: Vec<(String, Drive)>,
    full: bool,
    running: bool,
}

#[derive(Clone)]
struct Request {
    node: String,
    vmid: u64,
    newid: u64,
    pool: Option<String>,
    snapname: Option<String>,
    storage: Option<String>,
    format: Option<String>,
    full: Option<bool>,
    target: Option<String>,
    /// Storages where the caller holds `Datastore.AllocateSpace` (checked again by the worker).
    allocatable: Vec<String>,
}

/// clone_vm's `$load_and_check`, run before the UPID and again by the worker.
fn load_and_check(state: &State, r: &Request) -> Result<Plan, ApiError> {
    if let Some(p) = r.pool.as_ref().filter(|p| !state.pools.contains_key(*p)) {
        return Err(ApiError::status(403, format!("Permission check failed (pool '{p}' does not exist)")));
    }
    if let Some(t) = r.target.as_ref().filter(|t| !state.nodes.contains(t)) {
        return Err(ApiError::internal(format!("no such cluster node '{t}'")));
    }
    if let Some(id) = &r.storage {
        let s = volumes::storage(state, id)?;
        if !volumes::holds(s, "images") {
            return Err(ApiError::param("storage", format!("storage '{id}' does not support vm images")));
        }
        if r.target.is_some() {
            return Err(ApiError::internal(format!("can't clone to non-shared storage '{id}'")));
        }
    }
    let source = state.guest(&r.node, GuestKind::Qemu, r.vmid)?;
    source.check_lock()?;
    if let Some(s) = &r.snapname {
        return Err(ApiError::internal(format!("snapshot '{s}' does not exist")));
    }
    let full = r.full.unwrap_or(!source.is_template());
    if r.storage.is_some() && !full {
        return Err(ApiError::internal("parameter 'storage' not allowed for linked clones"));
    }
    if r.format.is_some() && !full {
        return Err(ApiError::internal("parameter 'format' not allowed for linked clones"));
    }
    let mut config = BTreeMap::from([("lock".to_owned(), "clone".to_owned())]);
    let mut drives = vec![];
    for (key, value) in &source.config {
        let skip =
            ["parent", "snaptime", "vmstate", "snapstate", "runningcpu", "runningmachine", "running-nets-host-mtu"];
        if skip.contains(&key.as_str()) || key.starts_with("unused") {
            continue;
        }
        if !is_drive_key(key) {
            config.insert(key.clone(), value.clone());
            continue;
        }
        let drive = Drive::parse(key, value)
            .map_err(|_| ApiError::internal(format!("unable to parse drive options for '{key}'")))?;
        if drive.is_cdrom() && !drive.is_cloudinit() {
            config.insert(key.clone(), value.clone());
            continue;
        }
        let sid = r.storage.clone().or_else(|| drive.storage().map(str::to_owned)).unwrap_or_default();
        if !r.allocatable.contains(&sid) {
            return Err(ApiError::forbidden(&format!("/storage/{sid}"), "Datastore.AllocateSpace"));
        }
        // lvm-thin and dir storages clone only base (template) volumes; copying works everywhere.
        let base =
            drive.volume.split_once(':').is_some_and(|(_, n)| n.rsplit('/').next().unwrap_or(n).starts_with("base-"));
        if !full && !drive.is_cloudinit() && !base {
            return Err(ApiError::internal(format!(
                "Linked clone feature is not supported for '{}' ({key})",
                drive.volume
            )));
        }
        drives.push((key.clone(), drive));
    }
    if r.target.is_some() {
        return Err(ApiError::internal(format!(
            "can't clone VM to node '{}' (VM uses local storage)",
            r.target.as_deref().unwrap_or_default()
        )));
    }
    if state.guests.get(&r.newid).is_some_and(|g| g.kind == GuestKind::Qemu && g.node == r.node) {
        return Err(ApiError::internal(format!("unable to create VM {}: config file already exists", r.newid)));
    }
    Ok(Plan { config, drives, full, running: source.running })
}

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
    let p = |k: &str| ctx.params.get(k).cloned();
    let target = p("target").filter(|t| *t != ctx.node && t != "localhost");
    let allocatable = {
        let state = ctx.sim.state.lock().expect("state");
        state
            .storages
            .iter()
            .filter(|s| ctx.allowed(&format!("/storage/{}", s.id), "Datastore.AllocateSpace"))
            .map(|s| s.id.clone())
            .collect()
    };
    let r = Request {
        node: ctx.node.clone(),
        vmid,
        newid: newid_raw.parse().expect("checked"),
        pool,
        snapname: p("snapname"),
        storage: p("storage"),
        format: p("format"),
        full: p("full").map(|f| f == "1"),
        target,
        allocatable,
    };
    let plan = load_and_check(&ctx.sim.state.lock().expect("state"), &r)?;
    for (key, value) in plan.config.iter().filter(|(k, _)| is_net_key(k)) {
        if let Some(bridge) = Nic::parse(key, value).ok().as_ref().and_then(Nic::bridge) {
            ctx.require(&format!("/sdn/zones/localnetwork/{bridge}"), &["SDN.Use"])?;
        }
    }
    let newid = r.newid;
    let (name, description) = (p("name"), p("description").filter(|d| !d.is_empty()));
    let (smbios, vmgenid, macs) = {
        let mut rng = ctx.sim.rng.lock().expect("rng");
        let macs: Vec<String> = (0..32).map(|_| random_mac(&mut rng)).collect();
        (volumes::uuid(&mut *rng), volumes::uuid(&mut *rng), macs)
    };
    let carried: Arc<Mutex<Option<Plan>>> = Arc::default();
    let (begin_r, begin_plan) = (r.clone(), carried.clone());
    let begin: Work = Box::new(move |state| {
        let plan = load_and_check(state, &begin_r).map_err(|e| e.message)?;
        if state.guests.contains_key(&newid) {
            return Err(format!(
                "close (rename) atomic file '/etc/pve/nodes/{}/qemu-server/{newid}.conf' failed: File exists",
                begin_r.node
            ));
        }
        let source = state.guests.get(&vmid).expect("checked").clone();
        let held = state.flocks.get(&vmid).copied().unwrap_or(0);
        if plan.running && held > 0 || held == EXCLUSIVE {
            return Err(format!("can't lock file '/var/lock/qemu-server/lock-{vmid}.conf' - got timeout"));
        }
        state.flocks.insert(vmid, if plan.running { EXCLUSIVE } else { held + 1 });
        let lock = BTreeMap::from([("lock".to_owned(), "clone".to_owned())]);
        // The copy runs what the source runs (a cloud image's agent and DHCP client).
        let g = Guest {
            created_at: Some(Instant::now()),
            agent: source.agent,
            os: source.os,
            dhcp: source.dhcp,
            docker: source.docker,
            ..Guest::new(newid, GuestKind::Qemu, begin_r.node.clone(), lock)
        };
        state.guests.insert(newid, g);
        *begin_plan.lock().expect("plan") = Some(plan);
        Ok(vec![format!("creating a clone of VM {vmid} with ID {newid}")])
    });
    let (r2, pool) = (r.clone(), r.pool.clone());
    let work: Work = Box::new(move |state| {
        release(state, vmid);
        let plan = carried.lock().expect("plan").take().ok_or("clone failed: worker lost its plan")?;
        let mut config = plan.config;
        let mut log = vec![];
        let mut taken = volumes::referenced(state);
        for (key, mut drive) in plan.drives {
            let from = drive.volume.clone();
            let sid = r2.storage.clone().unwrap_or_else(|| drive.storage().unwrap_or_default().to_owned());
            let s = volumes::storage(state, &sid).map_err(|e| format!("clone failed: {}", e.message))?.clone();
            if drive.is_cloudinit() {
                drive.volume = volumes::cloudinit_volid(&s, newid);
            } else if plan.full {
                log.push(format!("create full clone of drive {key} ({from})"));
                let format = r2.format.as_deref().filter(|_| volumes::file_based(&s));
                drive.volume = volumes::alloc_disk(&s, newid, format, false, &taken);
            } else {
                log.push(format!("create linked clone of drive {key} ({from})"));
                let name = volumes::alloc_disk(&s, newid, None, false, &taken);
                let base = from.split_once(':').map_or("", |(_, n)| n);
                drive.volume = format!("{}:{base}/{}", s.id, name.split_once(':').map_or("", |(_, n)| n));
            }
            taken.push(drive.volume.clone());
            config.insert(key, drive.print());
        }
        let nets: Vec<String> = config.keys().filter(|k| is_net_key(k)).cloned().collect();
        for (key, mac) in nets.into_iter().zip(macs) {
            if let Ok(mut nic) = Nic::parse(&key, &config[&key]) {
                nic.mac = Some(mac);
                config.insert(key, nic.print());
            }
        }
        config.insert("smbios1".into(), format!("uuid={smbios}"));
        if config.contains_key("vmgenid") {
            config.insert("vmgenid".into(), vmgenid);
        }
        config.remove("template");
        config.insert(
            "name".into(),
            name.unwrap_or_else(|| format!("Copy-of-VM-{}", config.get("name").cloned().unwrap_or(vmid.to_string()))),
        );
        if let Some(d) = description {
            config.insert("description".into(), d);
        }
        config.remove("lock");
        let pending: Vec<String> =
            state.guests.get(&vmid).map(|s| s.pending.keys().cloned().collect()).unwrap_or_default();
        if !pending.is_empty() {
            log.push(format!("WARN: found pending changes for '{}', discarding for clone", pending.join(",")));
        }
        let g = state.guests.get_mut(&newid).ok_or("clone failed: config file vanished")?;
        g.config = config;
        g.pool = pool;
        Ok(log)
    });
    let cleanup: Work = Box::new(move |state| {
        release(state, vmid);
        if state.guests.get(&newid).is_some_and(|g| g.lock() == Some("clone")) {
            state.guests.remove(&newid);
        }
        Ok(vec![])
    });
    let faults: Vec<Fault> = ctx
        .faults
        .iter()
        .map(|f| match f {
            Fault::TaskError(m) => Fault::TaskError(format!("clone failed: {m}")),
            other => other.clone(),
        })
        .collect();
    let upid = tasks::new_upid(&ctx.sim, &ctx.node, "qmclone", &vmid.to_string(), &ctx.authid());
    let d = ctx.sim.cfg.clone_duration;
    Ok(json!(tasks::spawn_phased(&ctx.sim, &faults, upid, Some(begin), d, work, Some(cleanup))))
}

/// Gives back the worker's flock on the source.
fn release(state: &mut State, vmid: u64) {
    match state.flocks.get(&vmid).copied() {
        Some(n) if n > 1 && n != EXCLUSIVE => {
            state.flocks.insert(vmid, n - 1);
        }
        _ => {
            state.flocks.remove(&vmid);
        }
    }
}
