//! QEMU delete (pve-qemu-day2.md §5) and disk resize (§3.1). Delete checks protection and the running
//! state synchronously but the lock only in its task; resize checks everything in its task.

use serde_json::{Value, json};

use super::drive::{self, Drive, Volume, drive_keys};
use super::http::Ctx;
use super::params::{self, Ty};
use super::reply::ApiError;
use super::state::{GuestKind, State, format_size, parse_size};
use super::tasks::{self, Work};

fn config_missing(node: &str, vmid: u64) -> String {
    format!("Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist")
}

/// destroy_vm's early checks: config, protection, running (no lock check).
fn early_checks(state: &State, node: &str, vmid: u64) -> Result<(), String> {
    let g = state.guest(node, GuestKind::Qemu, vmid).map_err(|e| e.message)?;
    if g.config.get("protection").is_some_and(|p| p == "1") {
        return Err(format!("can't remove VM {vmid} - protection mode enabled"));
    }
    if g.running {
        return Err(format!("VM {vmid} is running - destroy failed"));
    }
    Ok(())
}

/// `DELETE /nodes/{node}/qemu/{vmid}` → `qmdestroy` UPID.
pub(crate) fn delete(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&format!("/vms/{}", ctx.vmid_raw), &["VM.Allocate"])?;
    let vmid = ctx.vmid()?;
    let schema: params::Schema =
        &[("purge", Ty::Bool, false), ("destroy-unreferenced-disks", Ty::Bool, false), ("skiplock", Ty::Bool, false)];
    params::check(&ctx.params, schema)?;
    let flag = |k: &str| ctx.params.get(k).is_some_and(|v| v == "1");
    if flag("skiplock") && ctx.authid() != "root@pam" {
        return Err(ApiError::param("skiplock", "Only root may use this option."));
    }
    early_checks(&ctx.sim.state.lock().expect("state"), &ctx.node, vmid).map_err(ApiError::internal)?;
    let (node, skiplock, purge) = (ctx.node.clone(), flag("skiplock"), flag("purge"));
    let work: Work = Box::new(move |state| {
        state.config_flock_free(vmid)?;
        early_checks(state, &node, vmid)?;
        let g = state.guest(&node, GuestKind::Qemu, vmid).map_err(|e| e.message)?;
        if !skiplock && g.lock().is_some_and(|l| l != "suspended") {
            g.check_lock().map_err(|e| e.message)?;
        }
        let owned: Vec<Drive> = g
            .config
            .iter()
            .chain(g.pending.iter())
            .filter(|(k, _)| drive::is_drive_key(k) || k.starts_with("unused"))
            .filter_map(|(k, v)| Drive::parse(k, v).ok())
            .filter(|d| !d.is_cdrom() || d.is_cloudinit())
            .filter(|d| d.volume.rsplit(['/', ':']).next().is_some_and(|n| n.contains(&format!("-{vmid}-"))))
            .collect();
        // A template's base volumes stay while linked clones use them.
        for d in owned.iter().filter(|d| d.volume.contains(&format!(":base-{vmid}-"))) {
            let base = d.volume.split_once(':').map_or("", |(_, n)| n);
            let used = state.guests.values().filter(|o| o.vmid != vmid).any(|o| {
                o.config.values().any(|v| v.split(',').next().is_some_and(|vol| vol.contains(&format!("{base}/"))))
            });
            if used {
                return Err(format!("base volume '{}' is still in use by linked cloned", d.volume));
            }
        }
        let mut log: Vec<String> = owned
            .iter()
            .map(|d| {
                let name = d.volume.rsplit(['/', ':']).next().unwrap_or_default();
                format!("  Logical volume \"{name}\" successfully removed.")
            })
            .collect();
        if purge {
            log.push(format!("purging VM {vmid} from related configurations.."));
        }
        state.guests.remove(&vmid);
        Ok(log)
    });
    let upid = tasks::new_upid(&ctx.sim, &ctx.node, "qmdestroy", &vmid.to_string(), &ctx.authid());
    Ok(json!(tasks::spawn(&ctx.sim, &ctx.faults, upid, ctx.sim.cfg.power_duration, work, None)))
}

/// `PUT /nodes/{node}/qemu/{vmid}/resize` → `resize` UPID, whatever is wrong.
pub(crate) fn resize(ctx: &Ctx) -> Result<Value, ApiError> {
    ctx.require(&format!("/vms/{}", ctx.vmid_raw), &["VM.Config.Disk"])?;
    let vmid = ctx.vmid()?;
    let disks: Vec<String> = drive_keys().collect();
    let disk_ok = |v: &String| disks.contains(v);
    let schema: params::Schema = &[
        ("size", Ty::Size, true),
        ("digest", Ty::Str(40), false),
        ("skiplock", Ty::Bool, false),
        ("disk", Ty::Str(16), true),
    ];
    params::check(&ctx.params, schema)?;
    if let Some(d) = ctx.params.get("disk").filter(|d| !disk_ok(d)) {
        let text = format!("value '{d}' does not have a value in the enumeration '{}'", disks.join(", "));
        return Err(ApiError::param("disk", text));
    }
    let skiplock = ctx.params.get("skiplock").is_some_and(|s| s == "1");
    if skiplock && ctx.authid() != "root@pam" {
        return Err(ApiError::param("skiplock", "Only root may use this option."));
    }
    let (disk, size, digest) =
        (ctx.params["disk"].clone(), ctx.params["size"].clone(), ctx.params.get("digest").cloned());
    // Checked by the worker, so it is taken now from the caller's privileges.
    let storage_allowed = {
        let state = ctx.sim.state.lock().expect("state");
        state
            .storages
            .iter()
            .filter(|s| ctx.allowed(&format!("/storage/{}", s.id), "Datastore.AllocateSpace"))
            .map(|s| s.id.clone())
            .collect::<Vec<_>>()
    };
    let node = ctx.node.clone();
    let work: Work = Box::new(move |state| {
        state.config_flock_free(vmid)?;
        let g = state.guest_mut(&node, GuestKind::Qemu, vmid).map_err(|_| config_missing(&node, vmid))?;
        if digest.as_ref().is_some_and(|d| *d != g.digest()) {
            return Err("checksum mismatch (file change by other user?)".into());
        }
        if !skiplock {
            g.check_lock().map_err(|e| e.message)?;
        }
        let value = g.config.get(&disk).ok_or_else(|| format!("disk '{disk}' does not exist"))?;
        let mut drive = Drive::parse(&disk, value).map_err(|e| e.trim_end().to_owned())?;
        if drive.volume.is_empty() {
            return Err(format!("disk '{disk}' has no associated volume"));
        }
        if drive.is_cdrom() {
            return Err("you can't resize a cdrom".into());
        }
        let storage = drive.storage().unwrap_or_default().to_owned();
        if !storage_allowed.contains(&storage) {
            return Err(format!("Permission check failed (/storage/{storage}, Datastore.AllocateSpace)"));
        }
        let current = drive
            .size()
            .filter(|_| matches!(drive.kind(), Volume::Existing { .. }))
            .ok_or_else(|| format!("Could not determine current size of volume '{}'", drive.volume))?;
        let amount = parse_size(size.trim_start_matches('+')).unwrap_or(0);
        let target = if size.starts_with('+') { current + amount } else { amount };
        if target < current {
            return Err("shrinking disks is not supported".into());
        }
        if target == current {
            return Ok(vec![]);
        }
        drive.opts.insert("size".into(), format_size(target));
        g.config.insert(disk.clone(), drive.print());
        Ok(vec![])
    });
    let upid = tasks::new_upid(&ctx.sim, &ctx.node, "resize", &vmid.to_string(), &ctx.authid());
    Ok(json!(tasks::spawn(&ctx.sim, &ctx.faults, upid, ctx.sim.cfg.power_duration, work, None)))
}
