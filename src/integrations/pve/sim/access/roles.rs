//! PVE's privileges and built-in roles, generated from per-category tiers the way
//! `PVE::AccessControl::create_roles` does (pve-access.md §4.1), for PVE 8 and PVE 9.

use std::collections::BTreeSet;

use super::model::PveMajor;

/// One category's privileges by tier (`root`, `admin`, `user`, `audit`).
struct Category {
    name: &'static str,
    root: &'static [&'static str],
    admin: &'static [&'static str],
    user: &'static [&'static str],
    audit: &'static [&'static str],
}

const VM_V9: Category = Category {
    name: "VM",
    root: &[],
    admin: &[
        "VM.Config.Disk",
        "VM.Config.CPU",
        "VM.Config.Memory",
        "VM.Config.Network",
        "VM.Config.HWType",
        "VM.Config.Options",
        "VM.Allocate",
        "VM.Clone",
        "VM.GuestAgent.Unrestricted",
        "VM.Migrate",
        "VM.Replicate",
        "VM.Snapshot",
        "VM.Snapshot.Rollback",
    ],
    user: &[
        "VM.Config.CDROM",
        "VM.Config.Cloudinit",
        "VM.Console",
        "VM.Backup",
        "VM.GuestAgent.FileRead",
        "VM.GuestAgent.FileSystemMgmt",
        "VM.GuestAgent.FileWrite",
        "VM.PowerMgmt",
    ],
    audit: &["VM.Audit", "VM.GuestAgent.Audit"],
};

// PVE 8 still had `VM.Monitor`, and neither the guest-agent privileges nor `VM.Replicate`.
const VM_V8: Category = Category {
    name: "VM",
    root: &[],
    admin: &[
        "VM.Config.Disk",
        "VM.Config.CPU",
        "VM.Config.Memory",
        "VM.Config.Network",
        "VM.Config.HWType",
        "VM.Config.Options",
        "VM.Allocate",
        "VM.Clone",
        "VM.Migrate",
        "VM.Monitor",
        "VM.Snapshot",
        "VM.Snapshot.Rollback",
    ],
    user: &["VM.Config.CDROM", "VM.Config.Cloudinit", "VM.Console", "VM.Backup", "VM.PowerMgmt"],
    audit: &["VM.Audit"],
};

const OTHERS: [Category; 6] = [
    Category {
        name: "Sys",
        root: &["Sys.PowerMgmt", "Sys.Modify", "Sys.Incoming", "Sys.AccessNetwork"],
        admin: &["Sys.Console", "Sys.Syslog"],
        user: &[],
        audit: &["Sys.Audit"],
    },
    Category {
        name: "Datastore",
        root: &[],
        admin: &["Datastore.Allocate", "Datastore.AllocateTemplate"],
        user: &["Datastore.AllocateSpace"],
        audit: &["Datastore.Audit"],
    },
    Category {
        name: "SDN",
        root: &[],
        admin: &["SDN.Allocate", "SDN.Audit"],
        user: &["SDN.Use"],
        audit: &["SDN.Audit"],
    },
    Category {
        name: "User",
        root: &["Realm.Allocate"],
        admin: &["User.Modify", "Group.Allocate", "Realm.AllocateUser"],
        user: &[],
        audit: &[],
    },
    Category { name: "Pool", root: &[], admin: &["Pool.Allocate"], user: &["Pool.Audit"], audit: &["Pool.Audit"] },
    Category {
        name: "Mapping",
        root: &[],
        admin: &["Mapping.Modify"],
        user: &["Mapping.Use"],
        audit: &["Mapping.Audit"],
    },
];

fn categories(version: PveMajor) -> impl Iterator<Item = &'static Category> {
    let vm = match version {
        PveMajor::V8 => &VM_V8,
        PveMajor::V9 => &VM_V9,
    };
    std::iter::once(vm).chain(OTHERS.iter())
}

/// A set of privilege names.
pub type Privs = BTreeSet<String>;

/// Every valid privilege of `version` (what `Administrator` holds).
pub fn valid_privs(version: PveMajor) -> Privs {
    let mut all: Privs = categories(version)
        .flat_map(|c| c.root.iter().chain(c.admin).chain(c.user).chain(c.audit))
        .map(|p| p.to_string())
        .collect();
    all.insert("Permissions.Modify".into());
    all
}

/// The built-in roles of `version`: id → privileges.
pub fn builtin_roles(version: PveMajor) -> Vec<(String, Privs)> {
    let mut roles: std::collections::BTreeMap<String, Privs> = Default::default();
    let mut add =
        |role: String, privs: &[&str]| roles.entry(role).or_default().extend(privs.iter().map(|p| p.to_string()));
    for c in categories(version) {
        for tier in [c.admin, c.user, c.audit] {
            add(format!("PVE{}Admin", c.name), tier);
            add("PVEAdmin".into(), tier);
        }
        if !c.user.is_empty() {
            add(format!("PVE{}User", c.name), c.user);
            add(format!("PVE{}User", c.name), c.audit);
        }
        add("PVEAuditor".into(), c.audit);
    }
    roles.get_mut("PVEAdmin").expect("generated").remove("Mapping.Modify");
    roles.insert("PVETemplateUser".into(), ["VM.Clone", "VM.Audit"].iter().map(|p| p.to_string()).collect());
    roles.insert("NoAccess".into(), Privs::new());
    roles.insert("Administrator".into(), valid_privs(version));
    roles.into_iter().collect()
}

/// Whether `id` is a built-in role.
pub fn is_builtin(version: PveMajor, id: &str) -> bool {
    builtin_roles(version).iter().any(|(r, _)| r == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(version: PveMajor, id: &str) -> Vec<String> {
        builtin_roles(version).into_iter().find(|(r, _)| r == id).unwrap().1.into_iter().collect()
    }

    #[test]
    fn pve9_roles_are_those_pve_generates() {
        use PveMajor::V9;
        assert_eq!(
            role(V9, "PVEVMUser"),
            [
                "VM.Audit",
                "VM.Backup",
                "VM.Config.CDROM",
                "VM.Config.Cloudinit",
                "VM.Console",
                "VM.GuestAgent.Audit",
                "VM.GuestAgent.FileRead",
                "VM.GuestAgent.FileSystemMgmt",
                "VM.GuestAgent.FileWrite",
                "VM.PowerMgmt"
            ]
        );
        assert_eq!(
            role(V9, "PVEAuditor"),
            [
                "Datastore.Audit",
                "Mapping.Audit",
                "Pool.Audit",
                "SDN.Audit",
                "Sys.Audit",
                "VM.Audit",
                "VM.GuestAgent.Audit"
            ]
        );
        assert_eq!(role(V9, "PVEPoolUser"), ["Pool.Audit"]);
        assert_eq!(role(V9, "PVEPoolAdmin"), ["Pool.Allocate", "Pool.Audit"]);
        assert_eq!(role(V9, "PVESysAdmin"), ["Sys.Audit", "Sys.Console", "Sys.Syslog"]);
        assert_eq!(role(V9, "PVEUserAdmin"), ["Group.Allocate", "Realm.AllocateUser", "User.Modify"]);
        assert_eq!(role(V9, "PVEMappingUser"), ["Mapping.Audit", "Mapping.Use"]);
        assert_eq!(role(V9, "PVETemplateUser"), ["VM.Audit", "VM.Clone"]);
        assert!(role(V9, "NoAccess").is_empty());
        let admin = role(V9, "PVEAdmin");
        for absent in ["Mapping.Modify", "Sys.Modify", "Sys.PowerMgmt", "Realm.Allocate", "Permissions.Modify"] {
            assert!(!admin.contains(&absent.to_owned()), "{absent}");
        }
        let all = role(V9, "Administrator");
        for present in ["Permissions.Modify", "Sys.AccessNetwork", "Mapping.Modify", "VM.Replicate"] {
            assert!(all.contains(&present.to_owned()), "{present}");
        }
        assert!(!all.contains(&"VM.Monitor".to_owned()));
        assert!(!builtin_roles(V9).iter().any(|(r, _)| r == "PVESysUser" || r == "PVEUserUser"));
    }

    #[test]
    fn pve8_roles_have_vm_monitor_and_no_guest_agent_privileges() {
        use PveMajor::V8;
        assert_eq!(
            role(V8, "PVEVMUser"),
            ["VM.Audit", "VM.Backup", "VM.Config.CDROM", "VM.Config.Cloudinit", "VM.Console", "VM.PowerMgmt"]
        );
        assert!(role(V8, "PVEVMAdmin").contains(&"VM.Monitor".to_owned()));
        assert!(role(V8, "PVEAdmin").contains(&"VM.Monitor".to_owned()));
        assert!(!role(V8, "Administrator").iter().any(|p| p.starts_with("VM.GuestAgent") || p == "VM.Replicate"));
    }
}
