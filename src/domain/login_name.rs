//! Which names may own a machine. An owner's proxdesk name becomes their login inside the guest, and
//! finishing sets that login's password: a name that is already a system account there (`root`,
//! `daemon`, `www-data`…) would hand its password to the owner. Such names are reserved here, before
//! any account is made; the finishing script also refuses an existing account with a system UID, for
//! the names no list can know (see `integrations::ssh::finish`).

use super::FieldError;

/// Names of the base system accounts and groups of Debian, Ubuntu, RHEL and their kin, of common
/// daemons, the default users of cloud images (who are given sudo), the groups that grant root
/// (`admin` is a sudo group in Ubuntu's sudoers, and `useradd` would make it the user's own group),
/// and the names proxdesk's finishing relies on. Sorted and lower-case (a test checks), for binary search.
const RESERVED: &[&str] = &[
    "adm",
    "admin",
    "administrator",
    "almalinux",
    "alpine",
    "apache",
    "audio",
    "avahi",
    "backup",
    "bin",
    "bind",
    "cdrom",
    "centos",
    "chrony",
    "cloud-user",
    "colord",
    "cups",
    "daemon",
    "dbus",
    "debian",
    "debian-exim",
    "dialout",
    "dip",
    "disk",
    "dnsmasq",
    "docker",
    "dovecot",
    "ec2-user",
    "fedora",
    "floppy",
    "ftp",
    "games",
    "gdm",
    "gnats",
    "halt",
    "http",
    "input",
    "irc",
    "kmem",
    "kvm",
    "landscape",
    "libvirt",
    "lightdm",
    "list",
    "lp",
    "lxd",
    "mail",
    "man",
    "messagebus",
    "mysql",
    "named",
    "netdev",
    "news",
    "nfsnobody",
    "nginx",
    "nobody",
    "nogroup",
    "nscd",
    "nslcd",
    "ntp",
    "openldap",
    "operator",
    "plugdev",
    "polkitd",
    "pollinate",
    "postfix",
    "postgres",
    "proxdesk",
    "proxy",
    "pve",
    "redis",
    "render",
    "rocky",
    "root",
    "rpc",
    "rpcuser",
    "rtkit",
    "saned",
    "sasl",
    "shadow",
    "shutdown",
    "sshd",
    "sssd",
    "staff",
    "statd",
    "sudo",
    "sync",
    "sys",
    "syslog",
    "tape",
    "tcpdump",
    "toor",
    "tss",
    "tty",
    "ubuntu",
    "unbound",
    "usbmux",
    "users",
    "utmp",
    "uucp",
    "uuidd",
    "video",
    "voice",
    "wheel",
    "whoopsie",
    "www",
    "www-data",
];

/// Prefixes of system account names that come in families: `systemd-network`, `systemd-resolve`…
const RESERVED_PREFIXES: &[&str] = &["systemd-"];

/// Why a name may not own a machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginNameError {
    /// The name (or, for `name@realm`, its part before the `@`) is a system account's.
    #[error("the account name {name:?} is reserved for system accounts")]
    Reserved { name: String },
}

impl LoginNameError {
    /// As a form error on `field`, naming the refused name.
    pub fn field_error(&self, field: &'static str) -> FieldError {
        match self {
            Self::Reserved { name } => FieldError::new(field, "error.username_reserved").with("name", name),
        }
    }
}

/// Whether `name` is a system account's name, whatever its case. A qualified name (`root@pam`, as PVE
/// realms and directories name people) is judged by its part before the first `@`: that is the
/// person's name, and `root@pam` is PVE's superuser. Names starting with `_` (`_apt`, `_chrony`) are
/// system accounts by Debian's convention.
pub fn is_reserved(name: &str) -> bool {
    let lower = name.trim().to_lowercase();
    let local = lower.split('@').next().unwrap_or_default();
    [lower.as_str(), local].into_iter().any(|n| {
        RESERVED.binary_search(&n).is_ok() || n.starts_with('_') || RESERVED_PREFIXES.iter().any(|p| n.starts_with(p))
    })
}

/// `Ok` when `name` may own a machine (and so be a login inside a guest).
pub fn check(name: &str) -> Result<(), LoginNameError> {
    if is_reserved(name) { Err(LoginNameError::Reserved { name: name.trim().to_owned() }) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_sorted_lower_case_and_without_duplicates() {
        for pair in RESERVED.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
        assert!(RESERVED.iter().all(|n| *n == n.to_lowercase()));
    }

    #[test]
    fn base_system_accounts_are_reserved_in_any_case() {
        for name in [
            "root",
            "daemon",
            "bin",
            "sys",
            "sync",
            "games",
            "man",
            "lp",
            "mail",
            "news",
            "uucp",
            "proxy",
            "www-data",
            "backup",
            "list",
            "irc",
            "gnats",
            "nobody",
            "_apt",
            "messagebus",
            "sshd",
            "postgres",
            "mysql",
            "admin",
            "ROOT",
            "Daemon",
            " root ",
            "systemd-network",
            "systemd-timesync",
            "_chrony",
            "ubuntu",
            "sudo",
        ] {
            assert!(is_reserved(name), "{name:?}");
            assert!(check(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn qualified_names_are_judged_by_their_person_part() {
        for name in ["root@pam", "Daemon@pve", "nobody@corp", "www-data@ldap"] {
            assert!(is_reserved(name), "{name:?}");
        }
        for name in ["alice@pve", "bob@corp", "carol@pam", "teacher@pve"] {
            assert!(!is_reserved(name), "{name:?}");
        }
    }

    #[test]
    fn ordinary_names_pass_even_when_they_contain_a_reserved_one() {
        for name in ["alice", "chief", "rooter", "groot", "root-2", "binny", "mailman2", "administrators", "systemd"] {
            assert_eq!(check(name), Ok(()), "{name:?}");
        }
    }

    #[test]
    fn the_refusal_names_the_name_as_typed() {
        let e = check(" Root ").unwrap_err();
        assert_eq!(e, LoginNameError::Reserved { name: "Root".into() });
        let field = e.field_error("username");
        assert_eq!((field.field, field.code), ("username", "error.username_reserved"));
        assert_eq!(field.params, vec![("name", "Root".to_owned())]);
    }
}
