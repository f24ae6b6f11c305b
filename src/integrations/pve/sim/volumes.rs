//! Storage-side rules the QEMU endpoints share: storage lookup, volume names by storage type
//! (lvm-thin `vm-100-disk-0`, dir `100/vm-100-disk-0.raw`), allocation and sizes (pve-qemu-day2.md §1.3,
//! §2.1, §2.5, §7.2).

use rand::Rng;

use super::drive::{Drive, Volume};
use super::reply::ApiError;
use super::state::{State, StorageDef};

/// What a volume holds (parse_volname's `vtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VolType {
    Images,
    Iso,
    Vztmpl,
    Backup,
}

/// The storage `id`, or 500 `storage '<id>' does not exist`.
pub(crate) fn storage<'a>(state: &'a State, id: &str) -> Result<&'a StorageDef, ApiError> {
    state
        .storages
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::internal(format!("storage '{id}' does not exist")))
}

/// Whether the storage holds `content` (`images`, `iso`…).
pub(crate) fn holds(s: &StorageDef, content: &str) -> bool {
    s.content.split(',').any(|c| c == content)
}

/// Whether files on `s` are plain files (dir, NFS…) rather than LVs or datasets.
pub(crate) fn file_based(s: &StorageDef) -> bool {
    matches!(s.kind.as_str(), "dir" | "nfs" | "cifs" | "glusterfs" | "cephfs" | "btrfs")
}

fn guest_volume(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("vm-").or_else(|| name.strip_prefix("base-")) else { return false };
    let mut parts = rest.splitn(3, '-');
    let id_ok = parts.next().is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
    id_ok && parts.next().is_some_and(|kind| kind == "disk" || kind.starts_with("cloudinit"))
}

/// parse_volname: the volume's type, or the storage plugin's 500 for a name it cannot parse.
pub(crate) fn vtype(s: &StorageDef, name: &str) -> Result<VolType, ApiError> {
    if file_based(s) {
        let typed = |dir: &str| name.strip_prefix(dir).filter(|f| !f.is_empty() && !f.contains('/'));
        if typed("iso/").is_some_and(|f| f.to_lowercase().ends_with(".iso") || f.to_lowercase().ends_with(".img")) {
            return Ok(VolType::Iso);
        }
        if typed("vztmpl/").is_some() {
            return Ok(VolType::Vztmpl);
        }
        if typed("dump/").is_some() {
            return Ok(VolType::Backup);
        }
        let image = name.split_once('/').is_some_and(|(id, rest)| {
            id.bytes().all(|b| b.is_ascii_digit()) && guest_volume(rest.rsplit('/').next().unwrap_or(rest))
        });
        if image {
            return Ok(VolType::Images);
        }
        return Err(ApiError::internal(format!("unable to parse directory volume name '{name}'")));
    }
    // lvm-thin: `vm-100-disk-0`, or a linked clone's `base-9000-disk-0/vm-101-disk-0`.
    if name.split('/').all(guest_volume) {
        Ok(VolType::Images)
    } else {
        Err(ApiError::internal(format!("unable to parse lvm volume name '{name}'")))
    }
}

/// A free `vm-<vmid>-disk-<n>` on `s` (`<vmid>/vm-<vmid>-disk-<n>.<fmt>` on file storages), `base-`
/// for templates, given the volumes already taken.
pub(crate) fn alloc_disk(s: &StorageDef, vmid: u64, format: Option<&str>, template: bool, taken: &[String]) -> String {
    let prefix = if template { "base" } else { "vm" };
    (0..)
        .map(|n| {
            if file_based(s) {
                format!("{}:{vmid}/{prefix}-{vmid}-disk-{n}.{}", s.id, format.unwrap_or("raw"))
            } else {
                format!("{}:{prefix}-{vmid}-disk-{n}", s.id)
            }
        })
        .find(|v| !taken.iter().any(|t| t.ends_with(v.split_once(':').map_or(v.as_str(), |(_, n)| n))))
        .expect("an unbounded range has a free name")
}

/// The cloud-init volume of `vmid` on `s` (§2.5).
pub(crate) fn cloudinit_volid(s: &StorageDef, vmid: u64) -> String {
    if file_based(s) {
        format!("{}:{vmid}/vm-{vmid}-cloudinit.qcow2", s.id)
    } else {
        format!("{}:vm-{vmid}-cloudinit", s.id)
    }
}

/// Every volume id the guests' configs (and pending sections) reference.
pub(crate) fn referenced(state: &State) -> Vec<String> {
    state
        .guests
        .values()
        .flat_map(|g| g.config.iter().chain(g.pending.iter()))
        .filter(|(k, _)| super::drive::is_drive_key(k) || k.starts_with("unused"))
        .filter_map(|(k, v)| Drive::parse(k, v).ok())
        .map(|d| d.volume)
        .collect()
}

/// The size of an existing volume: an ISO's file size, a guest disk's `size=`; `None` if it does not exist.
pub(crate) fn volume_size(state: &State, volid: &str) -> Option<u64> {
    if let Some(f) = state.files.iter().find(|f| f.volid == volid) {
        return Some(f.size);
    }
    state
        .guests
        .values()
        .flat_map(|g| g.config.iter())
        .filter(|(k, _)| super::drive::is_drive_key(k))
        .filter_map(|(k, v)| Drive::parse(k, v).ok())
        .find(|d| d.volume == volid && !matches!(d.kind(), Volume::NewDisk { .. }))
        .map(|d| d.size().unwrap_or(4 << 20))
}

/// A random UUID, as `smbios1`/`vmgenid` take it.
pub(crate) fn uuid(rng: &mut impl Rng) -> String {
    let b: [u8; 16] = rng.random();
    let h = hex::encode(b);
    format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(id: &str, kind: &str) -> StorageDef {
        StorageDef { id: id.into(), kind: kind.into(), content: "images".into(), total: 1, used: 0 }
    }

    #[test]
    fn volume_names_depend_on_the_storage_type() {
        let (lvm, dir) = (def("local-lvm", "lvmthin"), def("local", "dir"));
        assert_eq!(vtype(&lvm, "vm-100-disk-0").unwrap(), VolType::Images);
        assert_eq!(vtype(&lvm, "base-9100-disk-0/vm-101-disk-0").unwrap(), VolType::Images);
        assert_eq!(vtype(&lvm, "32G").unwrap_err().message, "unable to parse lvm volume name '32G'");
        assert_eq!(vtype(&dir, "iso/debian-12.iso").unwrap(), VolType::Iso);
        assert_eq!(vtype(&dir, "vztmpl/debian.tar.zst").unwrap(), VolType::Vztmpl);
        assert_eq!(vtype(&dir, "100/vm-100-disk-0.qcow2").unwrap(), VolType::Images);
        assert_eq!(vtype(&dir, "32G").unwrap_err().message, "unable to parse directory volume name '32G'");
        let taken = vec!["local-lvm:vm-100-disk-0".to_owned()];
        assert_eq!(alloc_disk(&lvm, 100, None, false, &taken), "local-lvm:vm-100-disk-1");
        assert_eq!(alloc_disk(&dir, 100, Some("qcow2"), false, &[]), "local:100/vm-100-disk-0.qcow2");
        assert_eq!(cloudinit_volid(&lvm, 101), "local-lvm:vm-101-cloudinit");
    }
}
