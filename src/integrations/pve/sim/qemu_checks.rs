//! Checks create and config updates share, in qemu-server's order: storage access per drive, drive
//! parameters (normalised), bridge access, and the allocation of new disks inside a worker
//! (pve-qemu-day2.md §1.1, §1.3, §2.5, §3.2).

use std::collections::BTreeMap;

use super::drive::{Drive, Nic, Volume, is_drive_key, is_net_key};
use super::http::Ctx;
use super::params::Params;
use super::reply::ApiError;
use super::state::{State, format_size};
use super::volumes::{self, VolType};

/// `$check_storage_access`: per drive that parses, the privileges and storage rules of §1.3.
pub(crate) fn storage_access(ctx: &Ctx, state: &State, params: &Params, default: Option<&str>) -> Result<(), ApiError> {
    for (key, value) in params.iter().filter(|(k, _)| is_drive_key(k)) {
        let Ok(drive) = Drive::parse(key, value) else { continue };
        match drive.kind() {
            Volume::Empty | Volume::NewCloudInit { .. } => {}
            Volume::HostCdrom if drive.is_cdrom() => ctx.require("/", &["Sys.Console"])?,
            Volume::NewDisk { storage, .. } if !drive.is_cdrom() => {
                let id = storage
                    .or(default)
                    .ok_or_else(|| ApiError::internal("no storage ID specified (and no default storage)"))?;
                ctx.require(&format!("/storage/{id}"), &["Datastore.AllocateSpace"])?;
                if !volumes::holds(volumes::storage(state, id)?, "images") {
                    return Err(ApiError::param("storage", format!("storage '{id}' does not support vm images")));
                }
            }
            Volume::Existing { storage, name } if name.ends_with("cloudinit") => {
                volumes::storage(state, storage)?;
            }
            Volume::Existing { storage, name } => {
                let s = volumes::storage(state, storage)?;
                let path = format!("/storage/{storage}");
                ctx.require(&path, &["Datastore.AllocateSpace", "Datastore.Audit"])?;
                if !matches!(volumes::vtype(s, name)?, VolType::Images | VolType::Iso) {
                    return Err(ApiError::param(key, "content type needs to be 'images' or 'iso'"));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// `$check_drive_param`: each drive parses (`unable to parse drive options`), an ISO needs
/// `media=cdrom`; the values are rewritten normalised.
pub(crate) fn drive_params(state: &State, params: &mut Params) -> Result<(), ApiError> {
    let keys: Vec<String> = params.keys().filter(|k| is_drive_key(k)).cloned().collect();
    for key in keys {
        let drive = Drive::parse(&key, &params[&key]).ok().filter(|d| d.acceptable(&key));
        let drive = drive.ok_or_else(|| ApiError::param(&key, "unable to parse drive options"))?;
        if let Volume::Existing { storage, name } = drive.kind()
            && !name.ends_with("cloudinit")
            && let Ok(s) = volumes::storage(state, storage)
            && volumes::vtype(s, name).ok() == Some(VolType::Iso)
            && !drive.is_cdrom()
        {
            return Err(ApiError::param(&key, "explicit 'media=cdrom' is required for iso images"));
        }
        params.insert(key, drive.print());
    }
    Ok(())
}

/// `check_bridge_access`: `SDN.Use` on each NIC's bridge.
pub(crate) fn bridge_access(ctx: &Ctx, params: &Params) -> Result<(), ApiError> {
    for (key, value) in params.iter().filter(|(k, _)| is_net_key(k)) {
        if let Some(bridge) = Nic::parse(key, value).ok().as_ref().and_then(Nic::bridge) {
            ctx.require(&format!("/sdn/zones/localnetwork/{bridge}"), &["SDN.Use"])?;
        }
    }
    Ok(())
}

/// Gives each NIC without a MAC a generated one, normalised (`virtio=BC:24:11:…,bridge=…`).
pub(crate) fn add_macs(params: &mut Params, mut mac: impl FnMut() -> String) {
    let keys: Vec<String> = params.keys().filter(|k| is_net_key(k)).cloned().collect();
    for key in keys {
        if let Ok(mut nic) = Nic::parse(&key, &params[&key]) {
            nic.mac.get_or_insert_with(&mut mac);
            params.insert(key, nic.print());
        }
    }
}

/// create_disks inside a worker: allocates new disks and cloud-init drives, sizes existing volumes;
/// returns the drive strings to store and the log. `config` is the VM's config so far (for the one
/// cloud-init drive rule); `taken` grows with every volume allocated.
pub(crate) fn create_disks(
    state: &State,
    vmid: u64,
    config: &BTreeMap<String, String>,
    drives: &BTreeMap<String, String>,
    default: Option<&str>,
    taken: &mut Vec<String>,
) -> Result<(BTreeMap<String, String>, Vec<String>), String> {
    let template = config.get("template").is_some_and(|t| t == "1");
    let mut out = BTreeMap::new();
    let mut log = vec![];
    for (key, value) in drives {
        let mut drive = Drive::parse(key, value).map_err(|e| e.trim_end().to_owned())?;
        match drive.kind() {
            Volume::NewCloudInit { storage } => {
                let id = storage.or(default).ok_or("no storage ID specified (and no default storage)")?;
                let others = config.iter().chain(out.iter()).filter(|(k, _)| *k != key);
                if let Some((other, _)) =
                    others.filter_map(|(k, v)| Drive::parse(k, v).ok().map(|d| (k, d))).find(|(_, d)| d.is_cloudinit())
                {
                    return Err(format!("{key} - cloud-init drive is already attached at '{other}'"));
                }
                let s = volumes::storage(state, id).map_err(|e| e.message)?;
                drive.volume = volumes::cloudinit_volid(s, vmid);
                drive.opts.remove("size");
                drive.opts.insert("media".into(), "cdrom".into());
                taken.push(drive.volume.clone());
                log.push(format!("{key}: successfully created disk '{}'", drive.print()));
            }
            Volume::NewDisk { storage, gib } if !drive.is_cdrom() => {
                let id = storage.or(default).ok_or("no storage ID specified (and no default storage)")?;
                let s = volumes::storage(state, id).map_err(|e| e.message)?;
                let format = drive.opts.remove("format");
                let format = format.as_deref().filter(|_| volumes::file_based(s));
                drive.volume = volumes::alloc_disk(s, vmid, format, template, taken);
                // vdisk_alloc works in KiB.
                let bytes = (gib * 1024.0 * 1024.0).round() as u64 * 1024;
                drive.opts.insert("size".into(), format_size(bytes));
                taken.push(drive.volume.clone());
                log.push(format!("{key}: successfully created disk '{}'", drive.print()));
            }
            Volume::Existing { .. } => {
                let size = volumes::volume_size(state, &drive.volume)
                    .ok_or_else(|| format!("volume {} does not exist", drive.volume))?;
                if !drive.is_cloudinit() {
                    drive.opts.insert("size".into(), format_size(size));
                }
            }
            _ => {}
        }
        out.insert(key.clone(), drive.print());
    }
    Ok((out, log))
}
