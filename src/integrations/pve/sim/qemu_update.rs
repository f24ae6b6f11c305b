//! Applying a QEMU config update under the config lock (update_vm_api's `$updatefn`): deletes and
//! values go to `[PENDING]` first; a stopped VM takes them at once, a running one takes the fast-plug
//! keys (name, notes, cloud-init…), NICs and drives at once and keeps the rest pending until its next
//! start (pve-qemu-day2.md §2.3, §2.6, §3.2; qemu-server vmconfig_hotplug_pending).

use std::collections::BTreeMap;

use super::cloudinit;
use super::drive::{self, Drive, is_drive_key, is_net_key};
use super::params::normalise_tags;
use super::qemu_checks;
use super::qemu_schema;
use super::reply::ApiError;
use super::state::{Guest, GuestKind, State};
use super::volumes;

/// One update: values (already checked and normalised), keys to delete, keys to revert.
#[derive(Debug, Clone)]
pub(crate) struct Update {
    pub values: BTreeMap<String, String>,
    pub deletes: Vec<String>,
    pub reverts: Vec<String>,
    pub digest: Option<String>,
    pub skiplock: bool,
    /// A fresh `$5$` salt for `cipassword`.
    pub salt: String,
}

/// `$load_and_check_config`: config, digest (QEMU's text), lock, and the config flock of a worker.
pub(crate) fn load_and_check(state: &State, node: &str, vmid: u64, u: &Update) -> Result<(), ApiError> {
    state.config_flock_free(vmid).map_err(ApiError::internal)?;
    let g = state.guest(node, GuestKind::Qemu, vmid)?;
    if u.digest.as_ref().is_some_and(|d| *d != g.digest()) {
        return Err(ApiError::internal("checksum mismatch (file change by other user?)"));
    }
    if !u.skiplock {
        g.check_lock()?;
    }
    Ok(())
}

fn hotplug(g: &Guest, feature: &str) -> bool {
    let list = g.config.get("hotplug").map_or("network,disk,usb", String::as_str);
    match list {
        "1" => ["network", "disk", "usb"].contains(&feature),
        "0" => false,
        l => l.split(',').any(|f| f == feature),
    }
}

/// Whether a running VM takes `key`'s new value at once (else it stays pending).
fn plugs_now(g: &Guest, key: &str, value: &str) -> bool {
    if qemu_schema::is_fast_plug(key) {
        return true;
    }
    if is_net_key(key) {
        return true;
    }
    if is_drive_key(key) {
        return key != "efidisk0" && key != "tpmstate0";
    }
    if key == "memory" && hotplug(g, "memory") {
        let mib = |v: &str| v.trim_start_matches("current=").parse::<u64>().unwrap_or(0);
        return mib(value) >= mib(g.config.get("memory").map_or("512", String::as_str));
    }
    false
}

/// Whether a running VM drops `key` at once on `delete` (IDE/SATA drives cannot be unplugged).
fn unplugs_now(g: &Guest, key: &str) -> bool {
    qemu_schema::is_fast_plug(key)
        || key == "tags"
        || (is_net_key(key) && hotplug(g, "network"))
        || (is_drive_key(key) && hotplug(g, "disk") && !key.starts_with("ide") && !key.starts_with("sata"))
}

/// Removes a key from the config; a disk that is not a CD-ROM stays as `unusedN`.
fn drop_key(g: &mut Guest, key: &str) {
    let Some(value) = g.config.remove(key) else { return };
    if is_drive_key(key)
        && let Ok(d) = Drive::parse(key, &value)
        && !d.is_cdrom()
    {
        let n = (0..).find(|n| !g.config.contains_key(&format!("unused{n}"))).expect("unbounded");
        g.config.insert(format!("unused{n}"), d.volume);
    }
}

/// The update itself, after [`load_and_check`]; returns the log (warnings included).
pub(crate) fn apply(state: &mut State, node: &str, vmid: u64, u: Update) -> Result<Vec<String>, ApiError> {
    load_and_check(state, node, vmid, &u)?;
    let mut log = vec![];
    let mut taken = volumes::referenced(state);
    let drives: BTreeMap<String, String> =
        u.values.iter().filter(|(k, _)| is_drive_key(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let current = state.guest(node, GuestKind::Qemu, vmid)?.config.clone();
    let (created, lines) =
        qemu_checks::create_disks(state, vmid, &current, &drives, None, &mut taken).map_err(ApiError::internal)?;
    log.extend(lines);
    let g = state.guest_mut(node, GuestKind::Qemu, vmid)?;
    let mut order = drive::boot_order(&g.config);
    let mut reverts = u.reverts.clone();
    let mut values = u.values.clone();
    for key in &u.reverts {
        if let Some(v) = g.config.get(key) {
            values.insert(key.clone(), v.clone());
            reverts.retain(|r| r != key);
        }
    }
    for key in u.deletes.iter().chain(reverts.iter()) {
        if !g.config.contains_key(key) && !g.pending.contains_key(key) {
            log.push(format!("WARN: cannot delete '{key}' - not set in current configuration!"));
            continue;
        }
        g.pending.remove(key);
        if order.contains(key) && !u.deletes.iter().any(|d| d == "boot") {
            order.retain(|d| d != key);
            g.pending.insert("boot".into(), format!("order={}", order.join(";")));
        }
        if g.config.contains_key(key) && !g.pending_delete.contains(key) {
            g.pending_delete.push(key.clone());
        }
    }
    for (key, value) in &values {
        if g.pending.get(key) == Some(value) {
            continue;
        }
        let value = created.get(key).unwrap_or(value);
        match key.as_str() {
            // Written straight into the config, never pending; hashed unless it already is one.
            "cipassword" => {
                let ostype = g.config.get("ostype").map(String::as_str);
                let stored = cloudinit::stored_password(value, ostype, &u.salt);
                g.config.insert(key.clone(), stored);
                continue;
            }
            "tags" => {
                g.pending.insert(key.clone(), normalise_tags(value));
            }
            "boot" => {
                let devs: Vec<String> = drive::parse_boot(value)
                    .map_err(|e| ApiError::param("boot", e))?
                    .strip_prefix("order=")
                    .map(|o| o.split(';').filter(|d| !d.is_empty()).map(str::to_owned).collect())
                    .unwrap_or_default();
                for d in &devs {
                    let exists = g.config.contains_key(d) || g.pending.contains_key(d) || values.contains_key(d);
                    if !exists || u.deletes.contains(d) {
                        return Err(ApiError::internal(format!("invalid bootorder: device '{d}' does not exist'")));
                    }
                }
                g.pending.insert(key.clone(), format!("order={}", devs.join(";")));
            }
            _ => {
                g.pending.insert(key.clone(), value.clone());
                let cdrom = is_drive_key(key) && Drive::parse(key, value).is_ok_and(|d| d.is_cdrom());
                if cdrom && !order.is_empty() && !order.contains(key) {
                    order.push(key.clone());
                    g.pending.insert("boot".into(), format!("order={}", order.join(";")));
                }
            }
        }
        g.pending_delete.retain(|d| d != key);
    }
    // cleanup_pending: values equal to the current ones are no change.
    let same: Vec<String> =
        g.pending.iter().filter(|(k, v)| g.config.get(*k) == Some(*v)).map(|(k, _)| k.clone()).collect();
    for k in same {
        g.pending.remove(&k);
    }
    if g.running {
        for key in std::mem::take(&mut g.pending_delete) {
            if unplugs_now(g, &key) {
                drop_key(g, &key);
            } else {
                g.pending_delete.push(key);
            }
        }
        let now: Vec<(String, String)> =
            g.pending.iter().filter(|(k, v)| plugs_now(g, k, v)).map(|(k, v)| (k.clone(), v.clone())).collect();
        for (k, v) in now {
            if let (Some(old), true) = (g.config.get(&k), is_drive_key(&k)) {
                let was_cdrom = Drive::parse(&k, old).is_ok_and(|d| d.is_cdrom());
                let is_cdrom = Drive::parse(&k, &v).is_ok_and(|d| d.is_cdrom());
                if was_cdrom != is_cdrom {
                    return Err(ApiError::param(&k, "hotplug problem - unable to change media type"));
                }
            }
            g.pending.remove(&k);
            g.config.insert(k, v);
        }
    } else {
        for key in std::mem::take(&mut g.pending_delete) {
            drop_key(g, &key);
        }
        let pending = std::mem::take(&mut g.pending);
        g.config.extend(pending);
    }
    if g.config.get("description").is_some_and(|d| d.is_empty() || d == "0") {
        g.config.remove("description");
    }
    Ok(log)
}
