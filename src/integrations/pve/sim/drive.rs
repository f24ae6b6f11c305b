//! QEMU property strings: drives (`scsi0`, `ide2`…) and the boot order, parsed and written back the
//! way qemu-server does (pve-qemu-day2.md §1.3, §1.5). NICs are in `nic.rs`.

pub(crate) use super::nic::Nic;

use std::collections::BTreeMap;

/// Drive keys, in the order PVE walks them (`ide0-3, scsi0-30, virtio0-15, sata0-5`), then the special ones.
pub(crate) fn drive_keys() -> impl Iterator<Item = String> {
    let buses: [(&str, u32); 4] = [("ide", 4), ("scsi", 31), ("virtio", 16), ("sata", 6)];
    buses
        .into_iter()
        .flat_map(|(bus, n)| (0..n).map(move |i| format!("{bus}{i}")))
        .chain(["efidisk0".to_owned(), "tpmstate0".to_owned()])
}

/// Whether `key` names a drive (`scsi0`, `ide2`, `efidisk0`…).
pub(crate) fn is_drive_key(key: &str) -> bool {
    let index = |prefix: &str, max: u32| {
        key.strip_prefix(prefix).and_then(|n| n.parse::<u32>().ok().filter(|i| *i < max && n == i.to_string()))
    };
    index("ide", 4).or(index("scsi", 31)).or(index("virtio", 16)).or(index("sata", 6)).is_some()
        || key == "efidisk0"
        || key == "tpmstate0"
}

/// `netN`, N in 0–31.
pub(crate) fn is_net_key(key: &str) -> bool {
    key.strip_prefix("net").and_then(|n| n.parse::<u32>().ok().filter(|i| *i < 32 && n == i.to_string())).is_some()
}

const BOOLEANS: &[&str] = &["backup", "iothread", "replicate", "ro", "shared", "snapshot", "ssd", "detect_zeroes"];
const ENUMS: &[(&str, &[&str])] = &[
    ("media", &["cdrom", "disk"]),
    ("discard", &["ignore", "on"]),
    ("cache", &["directsync", "none", "unsafe", "writeback", "writethrough"]),
    ("format", &["cloop", "cow", "qcow", "qcow2", "qed", "raw", "vmdk", "vpc"]),
    ("aio", &["io_uring", "native", "threads"]),
    ("werror", &["enospc", "ignore", "report", "stop"]),
    ("rerror", &["ignore", "report", "stop"]),
];
const FREE: &[&str] = &["size", "serial", "wwn", "model", "iops", "mbps", "queues", "import-from", "product", "vendor"];

/// A drive: its volume (`local-lvm:vm-100-disk-0`, `local-lvm:32`, `none`…) and options.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Drive {
    pub volume: String,
    pub opts: BTreeMap<String, String>,
}

/// What a drive's volume stands for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Volume<'a> {
    /// `none`: an empty CD-ROM drive.
    Empty,
    /// `cdrom`: the host's drive.
    HostCdrom,
    /// `[<storage>:]<GiB>`: allocate a new disk (§1.3 NEW_DISK_RE).
    NewDisk { storage: Option<&'a str>, gib: f64 },
    /// `[<storage>:]cloudinit`: allocate a cloud-init drive (§2.5).
    NewCloudInit { storage: Option<&'a str> },
    /// `<storage>:<volname>`: an existing volume.
    Existing { storage: &'a str, name: &'a str },
    /// A path on the host (`/dev/sdb`).
    Path(&'a str),
}

/// A schema-level failure: PVE's text for the drive's key (`invalid format - …`).
pub(crate) type FormatError = String;

pub(crate) fn invalid_key(k: &str) -> FormatError {
    format!("invalid format - invalid key in comma-separated list property: {k}\n")
}

impl Drive {
    /// Parses `key`'s value: the volume (bare, `file=` or `volume=`), then `k=v` options. Unknown keys and
    /// bad enum/boolean values are schema errors; booleans are normalised to `1`/`0`.
    pub(crate) fn parse(key: &str, value: &str) -> Result<Drive, FormatError> {
        let mut volume = None;
        let mut opts = BTreeMap::new();
        let mut errors: Vec<String> = vec![];
        for part in value.split(',').filter(|p| !p.trim().is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                if volume.is_some() {
                    return Err("invalid format - duplicate key in comma-separated list property: file\n".into());
                }
                volume = Some(part.to_owned());
                continue;
            };
            if k == "file" || k == "volume" {
                volume = Some(v.to_owned());
                continue;
            }
            if opts.contains_key(k) {
                return Err(format!("invalid format - duplicate key in comma-separated list property: {k}\n"));
            }
            let stored = if BOOLEANS.contains(&k) {
                match v.to_ascii_lowercase().as_str() {
                    "1" | "on" | "yes" | "true" => "1".to_owned(),
                    "0" | "off" | "no" | "false" => "0".to_owned(),
                    _ => {
                        errors.push(format!("{key}.{k}: type check ('boolean') failed - got '{v}'"));
                        v.to_owned()
                    }
                }
            } else if let Some((_, allowed)) = ENUMS.iter().find(|(name, _)| *name == k) {
                if !allowed.contains(&v) {
                    errors.push(format!(
                        "{key}.{k}: value '{v}' does not have a value in the enumeration '{}'",
                        allowed.join(", ")
                    ));
                }
                v.to_owned()
            } else if FREE.contains(&k) {
                v.to_owned()
            } else {
                return Err(invalid_key(k));
            };
            opts.insert(k.to_owned(), stored);
        }
        let Some(volume) = volume else {
            errors.push(format!("{key}.file: property is missing and it is not optional"));
            return Err(format!("invalid format - format error\n{}\n", errors.join("\n")));
        };
        if !errors.is_empty() {
            return Err(format!("invalid format - format error\n{}\n", errors.join("\n")));
        }
        Ok(Drive { volume, opts })
    }

    /// What parse_drive itself refuses (→ `unable to parse drive options`): `media=cdrom` with `format`
    /// or `snapshot`, or on a virtio bus.
    pub(crate) fn acceptable(&self, key: &str) -> bool {
        !(self.is_cdrom()
            && (self.opts.contains_key("format") || self.opts.contains_key("snapshot") || key.starts_with("virtio")))
    }

    /// `media=cdrom` (the cloud-init drive is one too).
    pub(crate) fn is_cdrom(&self) -> bool {
        self.opts.get("media").is_some_and(|m| m == "cdrom")
    }

    /// A cloud-init volume: `vm-<vmid>-cloudinit` or the `cloudinit` allocation syntax.
    pub(crate) fn is_cloudinit(&self) -> bool {
        matches!(self.kind(), Volume::NewCloudInit { .. })
            || self.volume.rsplit(['/', ':']).next().is_some_and(|n| n.contains("-cloudinit"))
    }

    /// Classifies the volume.
    pub(crate) fn kind(&self) -> Volume<'_> {
        let v = self.volume.as_str();
        if v == "none" {
            return Volume::Empty;
        }
        if v == "cdrom" {
            return Volume::HostCdrom;
        }
        if v.starts_with('/') {
            return Volume::Path(v);
        }
        let (storage, rest) = match v.split_once(':') {
            Some((s, r)) => (Some(s), r),
            None => (None, v),
        };
        if rest == "cloudinit" {
            return Volume::NewCloudInit { storage };
        }
        let number = rest.split_once('.').map_or(rest.bytes().all(|b| b.is_ascii_digit()), |(a, b)| {
            !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
        });
        if !rest.is_empty() && number && !rest.starts_with('.') {
            return Volume::NewDisk { storage, gib: rest.parse().unwrap_or(0.0) };
        }
        match storage {
            Some(storage) => Volume::Existing { storage, name: rest },
            None => Volume::Path(v),
        }
    }

    /// The storage of the volume, if it is on one.
    pub(crate) fn storage(&self) -> Option<&str> {
        match self.kind() {
            Volume::NewDisk { storage, .. } | Volume::NewCloudInit { storage } => storage,
            Volume::Existing { storage, .. } => Some(storage),
            _ => None,
        }
    }

    /// `size=` in bytes.
    pub(crate) fn size(&self) -> Option<u64> {
        self.opts.get("size").and_then(|s| super::state::parse_size(s))
    }

    /// print_drive: the volume, then the options sorted by key.
    pub(crate) fn print(&self) -> String {
        std::iter::once(self.volume.clone())
            .chain(self.opts.iter().map(|(k, v)| format!("{k}={v}")))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The config's drives (current values), key-ordered as PVE walks them.
pub(crate) fn drives(config: &BTreeMap<String, String>) -> Vec<(String, Drive)> {
    drive_keys()
        .filter_map(|k| {
            let d = Drive::parse(&k, config.get(&k)?).ok()?;
            Some((k, d))
        })
        .collect()
}

/// Checks a `boot` value: `order=<dev>;…` or legacy `[acdn]{1,4}`; returns the normalised value.
pub(crate) fn parse_boot(value: &str) -> Result<String, FormatError> {
    if value.len() <= 4 && !value.is_empty() && value.chars().all(|c| "acdn".contains(c)) {
        return Ok(value.to_owned());
    }
    let mut order = None;
    for part in value.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some(("order", devs)) => order = Some(devs.to_owned()),
            Some((k, _)) => return Err(invalid_key(k)),
            None => order = Some(part.to_owned()),
        }
    }
    let Some(order) = order else { return Ok(String::new()) };
    let devs: Vec<&str> = order.split([';', ',', ' ']).filter(|d| !d.is_empty()).collect();
    for d in &devs {
        let bootable = (is_drive_key(d) && *d != "efidisk0" && *d != "tpmstate0")
            || is_net_key(d)
            || d.strip_prefix("usb").or(d.strip_prefix("hostpci")).is_some_and(|n| n.parse::<u32>().is_ok());
        if !bootable {
            return Err(format!(
                "invalid format - format error\nboot.order: invalid format - invalid boot device '{d}'\n\n"
            ));
        }
    }
    Ok(format!("order={}", devs.join(";")))
}

/// The devices of `boot=order=…`, empty for a legacy or absent value.
pub(crate) fn boot_order(config: &BTreeMap<String, String>) -> Vec<String> {
    config
        .get("boot")
        .and_then(|b| b.split(',').find_map(|p| p.strip_prefix("order=")))
        .map(|o| o.split(';').filter(|d| !d.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// get_default_bootdevices: first hard disk, first CD-ROM (a cloud-init drive counts), first NIC.
pub(crate) fn default_boot(config: &BTreeMap<String, String>) -> String {
    let all = drives(config);
    let disk = all.iter().find(|(k, d)| !d.is_cdrom() && k != "efidisk0" && k != "tpmstate0");
    let cdrom = all.iter().find(|(_, d)| d.is_cdrom());
    let nic = (0..32).map(|i| format!("net{i}")).find(|k| config.contains_key(k));
    let devs: Vec<String> =
        disk.map(|(k, _)| k.clone()).into_iter().chain(cdrom.map(|(k, _)| k.clone())).chain(nic).collect();
    format!("order={}", devs.join(";"))
}

/// The disk `maxdisk` reports: the first boot-order device that is a disk, else the first disk.
pub(crate) fn boot_disk(config: &BTreeMap<String, String>) -> String {
    let all = drives(config);
    let is_disk = |k: &str| all.iter().any(|(key, d)| key == k && !d.is_cdrom());
    boot_order(config)
        .into_iter()
        .find(|k| is_disk(k))
        .or_else(|| all.iter().find(|(_, d)| !d.is_cdrom()).map(|(k, _)| k.clone()))
        .unwrap_or_else(|| "scsi0".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drives_are_written_back_with_sorted_options() {
        let d = Drive::parse("scsi0", "local-lvm:32,iothread=on,discard=on").unwrap();
        assert_eq!(d.kind(), Volume::NewDisk { storage: Some("local-lvm"), gib: 32.0 });
        assert_eq!(d.print(), "local-lvm:32,discard=on,iothread=1");
        let d = Drive::parse("scsi0", "file=local-lvm:0.5,ssd=yes").unwrap();
        assert_eq!(d.kind(), Volume::NewDisk { storage: Some("local-lvm"), gib: 0.5 });
        assert_eq!(Drive::parse("scsi0", "32").unwrap().kind(), Volume::NewDisk { storage: None, gib: 32.0 });
        // A unit suffix is no size: `32G` is the name of an existing volume (§1.3).
        let d = Drive::parse("scsi0", "local-lvm:32G").unwrap();
        assert_eq!(d.kind(), Volume::Existing { storage: "local-lvm", name: "32G" });
        let d = Drive::parse("ide2", "local:iso/debian-12.iso,media=cdrom").unwrap();
        assert!(d.is_cdrom() && !d.is_cloudinit());
        assert!(Drive::parse("ide2", "local-lvm:cloudinit").unwrap().is_cloudinit());
        assert!(Drive::parse("ide2", "local-lvm:vm-100-cloudinit,media=cdrom").unwrap().is_cloudinit());
        assert_eq!(Drive::parse("ide2", "none,media=cdrom").unwrap().kind(), Volume::Empty);
    }

    #[test]
    fn drive_schema_errors_use_pves_texts() {
        assert_eq!(
            Drive::parse("scsi0", "local-lvm:32,foo=1").unwrap_err(),
            "invalid format - invalid key in comma-separated list property: foo\n"
        );
        assert!(Drive::parse("scsi0", "local-lvm:32,media=dvd").unwrap_err().contains("scsi0.media: value 'dvd'"));
        let virtio = Drive::parse("virtio0", "local:iso/x.iso,media=cdrom").unwrap();
        assert!(!virtio.acceptable("virtio0"));
        assert!(!Drive::parse("ide2", "local:iso/x.iso,media=cdrom,format=raw").unwrap().acceptable("ide2"));
    }

    #[test]
    fn the_default_boot_order_takes_a_disk_a_cdrom_and_a_nic() {
        let config: BTreeMap<String, String> = [
            ("scsi0", "local-lvm:vm-100-disk-0,size=32G"),
            ("ide2", "local:iso/d.iso,media=cdrom"),
            ("net0", "virtio=BC:24:11:00:00:01,bridge=vmbr0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(default_boot(&config), "order=scsi0;ide2;net0");
        assert_eq!(boot_disk(&config), "scsi0");
        assert_eq!(parse_boot("order=scsi0;ide2;net0").unwrap(), "order=scsi0;ide2;net0");
        assert!(parse_boot("order=scsi0;floppy0").unwrap_err().contains("invalid boot device 'floppy0'"));
        assert_eq!(parse_boot("cdn").unwrap(), "cdn");
    }
}
