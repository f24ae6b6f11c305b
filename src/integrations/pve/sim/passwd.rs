//! A simulated guest's `/etc/passwd`: the accounts a container has, by name and UID. A template's
//! accounts are a Debian 12 container's (system accounts below 1000, `nobody` at 65534); a clone
//! starts with a copy of its template's, and the finishing script's `useradd` adds logins from 1000 on,
//! so what the script checks (`id -u`) is answered from the guest's own accounts.

/// One line of `/etc/passwd`, as far as the finishing script reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
}

/// The accounts of one guest, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    pub accounts: Vec<Account>,
}

/// A Debian 12 (bookworm) standard container's accounts: `base-passwd`, systemd's, `_apt`, `sshd`.
const DEBIAN_12: &[(&str, u32)] = &[
    ("root", 0),
    ("daemon", 1),
    ("bin", 2),
    ("sys", 3),
    ("sync", 4),
    ("games", 5),
    ("man", 6),
    ("lp", 7),
    ("mail", 8),
    ("news", 9),
    ("uucp", 10),
    ("proxy", 13),
    ("www-data", 33),
    ("backup", 34),
    ("list", 38),
    ("irc", 39),
    ("_apt", 42),
    ("nobody", 65534),
    ("systemd-network", 998),
    ("systemd-timesync", 997),
    ("messagebus", 100),
    ("sshd", 101),
    ("postfix", 102),
];

impl Default for Passwd {
    fn default() -> Self {
        Self::debian_12()
    }
}

impl Passwd {
    /// A Debian 12 standard container's accounts.
    pub fn debian_12() -> Self {
        Self { accounts: DEBIAN_12.iter().map(|(name, uid)| Account { name: (*name).into(), uid: *uid }).collect() }
    }

    /// The UID of `name`, as `id -u name` prints it; `None` when there is no such account.
    pub fn uid(&self, name: &str) -> Option<u32> {
        self.accounts.iter().find(|a| a.name == name).map(|a| a.uid)
    }

    /// Adds (or replaces) an account, e.g. a service account an admin put into a template.
    pub fn set(&mut self, name: &str, uid: u32) {
        match self.accounts.iter_mut().find(|a| a.name == name) {
            Some(a) => a.uid = uid,
            None => self.accounts.push(Account { name: name.into(), uid }),
        }
    }

    /// `useradd name`: the next free UID from `first` on (one above the highest in use there, as
    /// `useradd` picks it); returns it.
    pub fn add_login(&mut self, name: &str, first: u32, last: u32) -> u32 {
        let uid =
            self.accounts.iter().map(|a| a.uid).filter(|u| (first..=last).contains(u)).max().map_or(first, |u| u + 1);
        self.set(name, uid);
        uid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debian_container_has_its_system_accounts_and_logins_start_at_1000() {
        let mut p = Passwd::default();
        assert_eq!(p.uid("root"), Some(0));
        assert_eq!(p.uid("www-data"), Some(33));
        assert_eq!(p.uid("nobody"), Some(65534));
        assert_eq!(p.uid("alice"), None);
        assert_eq!(p.add_login("alice", 1000, 59999), 1000);
        assert_eq!(p.add_login("bob", 1000, 59999), 1001);
        assert_eq!(p.uid("bob"), Some(1001));
    }
}
