//! A guest's snapshot sections and the rules about them that do not touch HTTP (pve-qemu-day2.md §6):
//! name format and reserved names, which volumes can snapshot, the list as `GET …/snapshot` shows it,
//! re-parenting on delete and the config swap on rollback.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::drive;
use super::reply::ApiError;
use super::state::{Guest, GuestKind, State};

/// One `[<snapname>]` section of the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The guest's config keys when it was taken (no `lock`, no `parent`).
    pub config: BTreeMap<String, String>,
    pub snaptime: i64,
    pub description: String,
    pub parent: Option<String>,
    /// QEMU: the RAM was saved with it (a running VM and `vmstate=1`).
    pub vmstate: bool,
    /// `prepare` while being created, `delete` while being deleted.
    pub snapstate: Option<String>,
}

/// pve-configid (`^[a-z][a-z0-9_-]+$`, case-insensitive), as `snapname`'s format check words it.
pub(crate) fn check_name(name: &str) -> Result<(), ApiError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = name.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if first_ok && rest_ok && name.len() <= 40 {
        return Ok(());
    }
    // The 40-character bound is the parameter's maxLength, reported before the format.
    if name.len() > 40 {
        return Err(ApiError::param("snapname", "value may only be 40 characters long"));
    }
    Err(ApiError::param("snapname", format!("invalid format - invalid configuration ID '{name}'")))
}

/// snapshot_create's synchronous reserved-name check: `current` for both, LXC `vzdump`, QEMU `pending`
/// (QemuConfig compares case-insensitively).
pub(crate) fn check_reserved(kind: GuestKind, name: &str) -> Result<(), ApiError> {
    let reserved = name == "current"
        || (kind == GuestKind::Lxc && name == "vzdump")
        || (kind == GuestKind::Qemu && name.eq_ignore_ascii_case("pending"));
    if reserved {
        return Err(ApiError::internal(format!("unable to use snapshot name '{name}' (reserved name)")));
    }
    Ok(())
}

/// The volumes that would be snapshotted: LXC rootfs and storage-backed `mpN` (bind and device mounts
/// are paths and cannot), QEMU drives except CD-ROMs (the cloud-init drive is one).
fn volumes(g: &Guest) -> Vec<String> {
    match g.kind {
        GuestKind::Lxc => g
            .config
            .iter()
            .filter(|(k, _)| *k == "rootfs" || k.strip_prefix("mp").is_some_and(|n| n.parse::<u8>().is_ok()))
            .filter_map(|(_, v)| v.split(',').next().map(str::to_owned))
            .collect(),
        GuestKind::Qemu => drive::drives(&g.config)
            .into_iter()
            .filter(|(_, d)| !d.is_cdrom())
            .map(|(_, d)| d.print().split(',').next().unwrap_or_default().to_owned())
            .collect(),
    }
}

/// has_feature('snapshot'): every volume must be on a storage whose plugin can snapshot it. lvm-thin,
/// ZFS, RBD and btrfs can; file storages only qcow2 images (dir's default format is raw); plain LVM,
/// iSCSI and paths (bind mounts, passed-through devices) cannot.
pub(crate) fn can_snapshot(state: &State, g: &Guest) -> bool {
    volumes(g).iter().all(|volid| {
        let Some((storage, name)) = volid.split_once(':') else { return false };
        let Some(def) = state.storages.iter().find(|s| s.id == storage) else { return false };
        match def.kind.as_str() {
            "lvmthin" | "zfspool" | "zfs" | "rbd" | "btrfs" => true,
            "dir" | "nfs" | "cifs" | "glusterfs" | "cephfs" => name.ends_with(".qcow2"),
            _ => false,
        }
    })
}

/// `GET …/snapshot`: every section, then `current` (with the config digest, `running` and PVE's
/// "You are here!") last.
pub(crate) fn list(g: &Guest) -> Value {
    let mut out: Vec<Value> = g
        .snapshots
        .iter()
        .map(|(name, s)| {
            let mut v = json!({"name": name, "snaptime": s.snaptime, "description": s.description});
            if let Some(p) = &s.parent {
                v["parent"] = json!(p);
            }
            if let Some(st) = &s.snapstate {
                v["snapstate"] = json!(st);
            }
            if g.kind == GuestKind::Qemu {
                v["vmstate"] = json!(u8::from(s.vmstate));
            }
            v
        })
        .collect();
    let mut current = json!({
        "name": "current", "digest": g.digest(), "running": u8::from(g.running), "description": "You are here!",
    });
    if let Some(p) = g.config.get("parent") {
        current["parent"] = json!(p);
    }
    out.push(current);
    Value::Array(out)
}

/// The snapshot section as `GET …/snapshot/{snap}/config` shows it.
pub(crate) fn section(g: &Guest, name: &str) -> Option<Value> {
    let s = g.snapshots.get(name)?;
    let mut v: serde_json::Map<String, Value> = s.config.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    v.insert("snaptime".into(), json!(s.snaptime));
    v.insert("description".into(), json!(s.description));
    if let Some(p) = &s.parent {
        v.insert("parent".into(), json!(p));
    }
    if g.kind == GuestKind::Qemu {
        v.insert("vmstate".into(), json!(u8::from(s.vmstate)));
    }
    Some(Value::Object(v))
}

/// The config a new snapshot records: the current keys without `lock`, `parent` and the Notes.
pub(crate) fn frozen_config(g: &Guest) -> BTreeMap<String, String> {
    g.config
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "lock" | "parent" | "description"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// snapshot_delete's commit: children of `name` take its parent, and so does the current state.
pub(crate) fn remove(g: &mut Guest, name: &str) {
    let Some(gone) = g.snapshots.remove(name) else { return };
    for s in g.snapshots.values_mut().filter(|s| s.parent.as_deref() == Some(name)) {
        s.parent = gone.parent.clone();
    }
    if g.config.get("parent").map(String::as_str) == Some(name) {
        match gone.parent {
            Some(p) => g.config.insert("parent".into(), p),
            None => g.config.remove("parent"),
        };
    }
}

/// snapshot_rollback's config swap: the snapshot's keys replace the current ones, keeping the current
/// Notes and `unusedN`; `parent` becomes the snapshot.
pub(crate) fn restore(g: &mut Guest, name: &str) {
    let Some(snap) = g.snapshots.get(name) else { return };
    let kept: Vec<(String, String)> = g
        .config
        .iter()
        .filter(|(k, _)| *k == "description" || k.starts_with("unused") || *k == "lock")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    g.config = snap.config.clone();
    g.config.extend(kept);
    g.config.insert("parent".into(), name.to_owned());
    g.pending.clear();
    g.pending_delete.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(parent: Option<&str>) -> Snapshot {
        Snapshot {
            config: BTreeMap::from([("memory".to_owned(), "512".to_owned())]),
            snaptime: 1,
            description: String::new(),
            parent: parent.map(str::to_owned),
            vmstate: false,
            snapstate: None,
        }
    }

    #[test]
    fn names_follow_pve_configid() {
        assert!(check_name("base").is_ok());
        assert!(check_name("Pre-upgrade_2").is_ok());
        assert!(check_name("a").is_err());
        assert!(check_name("1abc").is_err());
        assert!(check_name("with space").is_err());
        assert!(check_name(&"a".repeat(41)).is_err());
        assert!(check_reserved(GuestKind::Qemu, "PENDING").is_err());
        assert!(check_reserved(GuestKind::Lxc, "pending").is_ok());
        assert!(check_reserved(GuestKind::Lxc, "vzdump").is_err());
    }

    #[test]
    fn deleting_reparents_children_and_current() {
        let mut g = Guest::new(100, GuestKind::Lxc, "pve1", BTreeMap::new());
        g.snapshots.insert("a".into(), snap(None));
        g.snapshots.insert("b".into(), snap(Some("a")));
        g.snapshots.insert("c".into(), snap(Some("b")));
        g.config.insert("parent".into(), "b".into());
        remove(&mut g, "b");
        assert_eq!(g.snapshots["c"].parent.as_deref(), Some("a"));
        assert_eq!(g.config["parent"], "a");
        remove(&mut g, "a");
        assert_eq!(g.snapshots["c"].parent, None);
        assert!(!g.config.contains_key("parent"));
    }

    #[test]
    fn rollback_restores_config_and_keeps_notes() {
        let mut g = Guest::new(100, GuestKind::Qemu, "pve1", BTreeMap::new());
        g.snapshots.insert("a".into(), snap(None));
        g.config.insert("memory".into(), "4096".into());
        g.config.insert("description".into(), "notes".into());
        restore(&mut g, "a");
        assert_eq!(g.config["memory"], "512");
        assert_eq!(g.config["description"], "notes");
        assert_eq!(g.config["parent"], "a");
    }
}
