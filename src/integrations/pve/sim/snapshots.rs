//! Snapshot endpoints of LXC and QEMU (pve-qemu-day2.md §6): list, create, rollback, delete and the
//! snapshot's config. Create, rollback and delete are tasks (`vz…`/`qm…`) whose first step takes the
//! guest's lock (`snapshot`, `rollback`, `snapshot-delete`), so anything else meanwhile meets
//! `VM is locked (snapshot)` (§6.6) through the guests' existing lock checks.

use serde_json::{Value, json};

use super::auth::now;
use super::drive;
use super::http::Ctx;
use super::params::{self, Ty};
use super::reply::ApiError;
use super::snapshot_tree::{self, Snapshot};
use super::state::{GuestKind, State};
use super::tasks::{self, Work};

fn task_type(kind: GuestKind, op: &str) -> String {
    let prefix = if kind == GuestKind::Lxc { "vz" } else { "qm" };
    format!("{prefix}{op}")
}

fn vm_path(ctx: &Ctx) -> String {
    format!("/vms/{}", ctx.vmid_raw)
}

/// `GET …/snapshot` (`VM.Audit`).
pub(crate) fn list(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&vm_path(ctx), &["VM.Audit"])?;
    let vmid = ctx.vmid()?;
    params::check(&ctx.params, &[])?;
    let state = ctx.sim.state.lock().expect("state");
    Ok(snapshot_tree::list(state.guest(&ctx.node, ctx.kind, vmid)?))
}

/// `POST …/snapshot` → UPID `vzsnapshot`/`qmsnapshot`.
pub(crate) fn create(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&vm_path(ctx), &["VM.Snapshot"])?;
    let vmid = ctx.vmid()?;
    let schema: params::Schema = match ctx.kind {
        GuestKind::Lxc => &[("snapname", Ty::Str(256), true), ("description", Ty::Str(8192), false)],
        GuestKind::Qemu => {
            &[("snapname", Ty::Str(256), true), ("description", Ty::Str(8192), false), ("vmstate", Ty::Bool, false)]
        }
    };
    params::check(&ctx.params, schema)?;
    let name = ctx.params["snapname"].clone();
    snapshot_tree::check_name(&name)?;
    snapshot_tree::check_reserved(ctx.kind, &name)?;
    // QEMU loads the config before forking the worker; LXC finds a missing CT inside the task.
    if ctx.kind == GuestKind::Qemu {
        ctx.sim.state.lock().expect("state").guest(&ctx.node, ctx.kind, vmid)?;
    }
    let description = ctx.params.get("description").cloned().unwrap_or_default();
    let want_ram = ctx.params.get("vmstate").is_some_and(|v| v == "1");
    let (node, kind) = (ctx.node.clone(), ctx.kind);
    let (n1, n2, n3) = (name.clone(), name.clone(), name.clone());
    let (node2, node3) = (node.clone(), node.clone());
    // snapshot_prepare: checks, lock, the `[name]` section in `snapstate: prepare`.
    let begin: Work = Box::new(move |state: &mut State| {
        let capable = {
            let g = state.guest(&node, kind, vmid).map_err(|e| e.message)?;
            snapshot_tree::can_snapshot(state, g)
        };
        let g = state.guest_mut(&node, kind, vmid).map_err(|e| e.message)?;
        if g.is_template() {
            return Err("you can't take a snapshot if it's a template".into());
        }
        g.check_lock().map_err(|e| e.message)?;
        if g.snapshots.contains_key(&n1) {
            return Err(format!("snapshot name '{n1}' already used"));
        }
        if !capable {
            return Err("snapshot feature is not available".into());
        }
        // The RAM is only saved from a running VM; for a stopped one `vmstate` is ignored.
        let vmstate = kind == GuestKind::Qemu && want_ram && g.running;
        let snap = Snapshot {
            config: snapshot_tree::frozen_config(g),
            snaptime: now(),
            description,
            parent: g.config.get("parent").cloned(),
            vmstate,
            snapstate: Some("prepare".into()),
        };
        g.snapshots.insert(n1.clone(), snap);
        g.config.insert("lock".into(), "snapshot".into());
        let mut log = vec![];
        if vmstate {
            log.push("saving VM state and RAM using storage 'local-lvm'".to_owned());
        }
        if kind == GuestKind::Qemu {
            for (key, d) in drive::drives(&g.config).into_iter().filter(|(_, d)| !d.is_cdrom()) {
                let volid = d.print().split(',').next().unwrap_or_default().to_owned();
                log.push(format!("snapshotting 'drive-{key}' ({volid})"));
            }
        }
        Ok(log)
    });
    // snapshot_commit: the section is complete, the guest's parent is the new snapshot.
    let work: Work = Box::new(move |state: &mut State| {
        let g = state.guest_mut(&node2, kind, vmid).map_err(|e| e.message)?;
        if let Some(s) = g.snapshots.get_mut(&n2) {
            s.snapstate = None;
        }
        g.config.remove("lock");
        g.config.insert("parent".into(), n2);
        Ok(vec![])
    });
    // On failure snapshot_create removes the partial snapshot and the lock.
    let cleanup: Work = Box::new(move |state: &mut State| {
        if let Ok(g) = state.guest_mut(&node3, kind, vmid)
            && g.snapshots.get(&n3).is_some_and(|s| s.snapstate.as_deref() == Some("prepare"))
        {
            g.snapshots.remove(&n3);
            if g.lock() == Some("snapshot") {
                g.config.remove("lock");
            }
        }
        Ok(vec![])
    });
    spawn(ctx, vmid, "snapshot", begin, work, Some(cleanup))
}

fn spawn(ctx: &Ctx, vmid: u64, op: &str, begin: Work, work: Work, cleanup: Option<Work>) -> Result<Value, ApiError> {
    let upid = tasks::new_upid(&ctx.sim, &ctx.node, &task_type(ctx.kind, op), &vmid.to_string(), &ctx.authid());
    let duration = ctx.sim.cfg.snapshot_duration;
    Ok(json!(tasks::spawn_phased(&ctx.sim, &ctx.faults, upid, Some(begin), duration, work, cleanup)))
}

fn missing_snapshot(name: &str) -> String {
    format!("snapshot '{name}' does not exist")
}

/// `POST …/snapshot/{snap}/rollback` → UPID `vzrollback`/`qmrollback`.
pub(crate) fn rollback(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&vm_path(ctx), &["VM.Snapshot", "VM.Snapshot.Rollback"])?;
    let vmid = ctx.vmid()?;
    params::check(&ctx.params, &[("start", Ty::Bool, false)])?;
    let start = ctx.params.get("start").is_some_and(|v| v == "1");
    if start && ctx.kind == GuestKind::Qemu {
        ctx.require(&vm_path(ctx), &["VM.PowerMgmt"])?;
    }
    let (node, kind, name) = (ctx.node.clone(), ctx.kind, ctx.item_raw.clone());
    let (node2, n2) = (node.clone(), name.clone());
    let begin: Work = Box::new(move |state: &mut State| {
        let g = state.guest_mut(&node, kind, vmid).map_err(|e| e.message)?;
        if g.is_template() {
            return Err("you can't rollback if vm is a template".into());
        }
        let snap = g.snapshots.get(&name).ok_or_else(|| missing_snapshot(&name))?;
        if let Some(st) = &snap.snapstate {
            return Err(format!("unable to rollback to incomplete snapshot (snapstate = {st})"));
        }
        g.check_lock().map_err(|e| e.message)?;
        let mut log = vec![];
        if g.running {
            // A running guest is stopped hard (QEMU: quit with a 5 s timeout; LXC: kill).
            g.running = false;
            g.started_at = None;
            g.stopped_at = Some(std::time::Instant::now());
            g.ip_ready_at = None;
            log.push(
                if kind == GuestKind::Qemu {
                    "VM quit/powerdown failed - terminating now with SIGTERM"
                } else {
                    "killing CT"
                }
                .to_owned(),
            );
        }
        g.config.insert("lock".into(), "rollback".into());
        Ok(log)
    });
    // A failed rollback leaves `lock: rollback` behind, as PVE's does (no clean-up path).
    let work: Work = Box::new(move |state: &mut State| {
        let g = state.guest_mut(&node2, kind, vmid).map_err(|e| e.message)?;
        snapshot_tree::restore(g, &n2);
        g.config.remove("lock");
        let with_ram = g.snapshots.get(&n2).is_some_and(|s| s.vmstate);
        if with_ram || start {
            g.running = true;
            g.started_at = Some(std::time::Instant::now());
            g.cpu_sampled = false;
        }
        Ok(vec![])
    });
    spawn(ctx, vmid, "rollback", begin, work, None)
}

/// `DELETE …/snapshot/{snap}` → UPID `vzdelsnapshot`/`qmdelsnapshot`.
pub(crate) fn delete(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&vm_path(ctx), &["VM.Snapshot"])?;
    let vmid = ctx.vmid()?;
    params::check(&ctx.params, &[("force", Ty::Bool, false)])?;
    let force = ctx.params.get("force").is_some_and(|v| v == "1");
    let (node, kind, name) = (ctx.node.clone(), ctx.kind, ctx.item_raw.clone());
    let (node2, n2, node3, n3) = (node.clone(), name.clone(), node.clone(), name.clone());
    let begin: Work = Box::new(move |state: &mut State| {
        let g = state.guest_mut(&node, kind, vmid).map_err(|e| e.message)?;
        if !g.snapshots.contains_key(&name) {
            return Err(missing_snapshot(&name));
        }
        if g.is_template() {
            return Err("you can't delete a snapshot if vm is a template".into());
        }
        g.check_lock().map_err(|e| e.message)?;
        g.config.insert("lock".into(), "snapshot-delete".into());
        if let Some(s) = g.snapshots.get_mut(&name) {
            s.snapstate = Some("delete".into());
        }
        Ok(vec![])
    });
    let work: Work = Box::new(move |state: &mut State| {
        let g = state.guest_mut(&node2, kind, vmid).map_err(|e| e.message)?;
        snapshot_tree::remove(g, &n2);
        g.config.remove("lock");
        Ok(vec![])
    });
    // A failed delete leaves `lock: snapshot-delete` (only root may clear it); `force` removes the
    // section anyway.
    let cleanup: Work = Box::new(move |state: &mut State| {
        if force && let Ok(g) = state.guest_mut(&node3, kind, vmid) {
            snapshot_tree::remove(g, &n3);
            g.config.remove("lock");
        }
        Ok(vec![])
    });
    spawn(ctx, vmid, "delsnapshot", begin, work, Some(cleanup))
}

/// `GET …/snapshot/{snap}/config`.
pub(crate) fn config_get(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&vm_path(ctx), &["VM.Snapshot", "VM.Snapshot.Rollback", "VM.Audit"])?;
    let vmid = ctx.vmid()?;
    params::check(&ctx.params, &[])?;
    let state = ctx.sim.state.lock().expect("state");
    let g = state.guest(&ctx.node, ctx.kind, vmid)?;
    snapshot_tree::section(g, &ctx.item_raw).ok_or_else(|| ApiError::internal(missing_snapshot(&ctx.item_raw)))
}

/// `PUT …/snapshot/{snap}/config`: only `description`; without it `null` and no check at all.
pub(crate) fn config_put(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&vm_path(ctx), &["VM.Snapshot"])?;
    let vmid = ctx.vmid()?;
    params::check(&ctx.params, &[("description", Ty::Str(8192), false)])?;
    let Some(description) = ctx.params.get("description") else { return Ok(Value::Null) };
    let mut state = ctx.sim.state.lock().expect("state");
    let g = state.guest_mut(&ctx.node, ctx.kind, vmid)?;
    g.check_lock()?;
    let snap = g.snapshots.get_mut(&ctx.item_raw).ok_or_else(|| ApiError::internal(missing_snapshot(&ctx.item_raw)))?;
    snap.description = description.clone();
    Ok(Value::Null)
}
