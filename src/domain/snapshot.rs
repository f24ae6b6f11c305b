//! Snapshot names and descriptions, with PVE's rules (pve-qemu-day2.md §6.2), checked before any call.

use super::FieldError;
use super::guest::GuestType;

/// A snapshot name PVE accepts: pve-configid (`^[a-z][a-z0-9_-]+$`, case-insensitive), 2–40 characters,
/// and not a reserved name (`current` always, `vzdump` for containers, `pending` in any case for VMs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotName(String);

/// PVE's `snapname` maxLength.
pub const SNAPSHOT_NAME_MAX: usize = 40;
/// Proxdesk's bound on a snapshot's description (PVE stores it in the config file).
pub const SNAPSHOT_DESCRIPTION_MAX: usize = 1000;

impl SnapshotName {
    pub fn parse(raw: &str, kind: GuestType) -> Result<Self, FieldError> {
        let s = raw.trim();
        let err = |key| FieldError::new("snapshot_name", key);
        let mut chars = s.chars();
        let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if s.len() < 2 || s.len() > SNAPSHOT_NAME_MAX || !starts_with_letter || !rest_ok {
            return Err(err("error.snapshot_name_invalid"));
        }
        let reserved = s == "current"
            || (kind == GuestType::Lxc && s == "vzdump")
            || (kind == GuestType::Qemu && s.eq_ignore_ascii_case("pending"));
        if reserved {
            return Err(err("error.snapshot_name_reserved"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A description of at most [`SNAPSHOT_DESCRIPTION_MAX`] characters, on one line or several.
pub fn snapshot_description(raw: &str) -> Result<String, FieldError> {
    let s = raw.trim();
    if s.chars().count() > SNAPSHOT_DESCRIPTION_MAX || s.contains('\0') {
        return Err(FieldError::new("snapshot_description", "error.snapshot_description_too_long"));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_pve() {
        assert!(SnapshotName::parse("before-upgrade_1", GuestType::Lxc).is_ok());
        assert!(SnapshotName::parse("Base", GuestType::Qemu).is_ok());
        for bad in ["a", "1st", "has space", "dot.ted", "", &"a".repeat(41)] {
            assert!(SnapshotName::parse(bad, GuestType::Lxc).is_err(), "{bad}");
        }
        assert!(SnapshotName::parse("current", GuestType::Qemu).is_err());
        assert!(SnapshotName::parse("PENDING", GuestType::Qemu).is_err());
        assert!(SnapshotName::parse("pending", GuestType::Lxc).is_ok());
        assert!(SnapshotName::parse("vzdump", GuestType::Lxc).is_err());
        assert!(SnapshotName::parse("vzdump", GuestType::Qemu).is_ok());
    }

    #[test]
    fn descriptions_are_bounded() {
        assert_eq!(snapshot_description("  apt upgrade ").unwrap(), "apt upgrade");
        assert!(snapshot_description(&"x".repeat(1001)).is_err());
    }
}
