//! What a person may do with one guest, read from the privileges PVE reports for them on `/vms/<id>`
//! (pve-access.md §5.3). A privilege is granted when its key is present; the 0/1 value only says
//! whether it propagates (pool grants are reported as 0), so it is never read.

use std::collections::BTreeMap;

use crate::domain::guest::GuestType;

/// Privileges of one path, as `GET /access/permissions` answers them.
pub type Privileges = BTreeMap<String, u8>;

/// Which PVE release the cluster runs, as far as guest-agent reads are concerned (pve-access.md §0):
/// PVE 8 guards them with `VM.Monitor` (not in `PVEVMUser`), PVE 9 with `VM.GuestAgent.Audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentPrivilege {
    Monitor,
    GuestAgentAudit,
}

impl AgentPrivilege {
    /// From `GET /version`'s `version` (`8.4.1`, `9.2.11`); an unreadable one is taken as PVE 9, the
    /// stricter reading on PVE 8 being `VM.Monitor`, which PVE 9 no longer knows.
    pub fn of_version(version: &str) -> AgentPrivilege {
        let major = version.split(['.', '-']).next().and_then(|m| m.trim().parse::<u32>().ok());
        match major {
            Some(m) if m < 9 => AgentPrivilege::Monitor,
            _ => AgentPrivilege::GuestAgentAudit,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AgentPrivilege::Monitor => "VM.Monitor",
            AgentPrivilege::GuestAgentAudit => "VM.GuestAgent.Audit",
        }
    }
}

/// A person's rights on one guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuestRights {
    /// `VM.Audit`: the guest is listed.
    pub see: bool,
    /// `VM.PowerMgmt`: start, shutdown, reboot.
    pub power: bool,
    /// `VM.Console`: the console and terminal.
    pub console: bool,
    /// May read the guest's addresses as PVE would let them: a container's `interfaces` needs
    /// `VM.Audit`, a VM's guest agent the [`AgentPrivilege`] of the release.
    pub address: bool,
}

impl GuestRights {
    pub fn of(privileges: &Privileges, kind: GuestType, agent: AgentPrivilege) -> GuestRights {
        let has = |p: &str| privileges.contains_key(p);
        let see = has("VM.Audit");
        GuestRights {
            see,
            power: see && has("VM.PowerMgmt"),
            console: see && has("VM.Console"),
            address: see
                && match kind {
                    GuestType::Lxc => true,
                    GuestType::Qemu => has(agent.name()),
                },
        }
    }
}

/// Whether any path of a full permission dump grants `VM.Audit`.
pub fn audits_anything(dump: &BTreeMap<String, Privileges>) -> bool {
    dump.values().any(|p| p.contains_key("VM.Audit"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn privs(names: &[&str], flag: u8) -> Privileges {
        names.iter().map(|n| (n.to_string(), flag)).collect()
    }

    #[test]
    fn key_presence_grants_whatever_the_propagate_flag() {
        let pool = privs(&["VM.Audit", "VM.Console", "VM.PowerMgmt", "VM.GuestAgent.Audit"], 0);
        let r = GuestRights::of(&pool, GuestType::Qemu, AgentPrivilege::GuestAgentAudit);
        assert_eq!(r, GuestRights { see: true, power: true, console: true, address: true });
    }

    #[test]
    fn an_auditor_sees_but_may_not_act() {
        let auditor = privs(&["VM.Audit", "VM.GuestAgent.Audit", "Sys.Audit"], 1);
        let r = GuestRights::of(&auditor, GuestType::Lxc, AgentPrivilege::GuestAgentAudit);
        assert!(r.see && r.address && !r.power && !r.console);
    }

    #[test]
    fn without_audit_nothing_counts() {
        let odd = privs(&["VM.Console", "VM.PowerMgmt"], 1);
        assert_eq!(GuestRights::of(&odd, GuestType::Lxc, AgentPrivilege::Monitor), GuestRights::default());
    }

    #[test]
    fn agent_addresses_follow_the_release() {
        // PVEVMUser on PVE 8: no VM.Monitor, so no agent addresses; a container's still show.
        let vm_user8 = privs(&["VM.Audit", "VM.Console", "VM.PowerMgmt", "VM.Backup"], 1);
        assert!(!GuestRights::of(&vm_user8, GuestType::Qemu, AgentPrivilege::Monitor).address);
        assert!(GuestRights::of(&vm_user8, GuestType::Lxc, AgentPrivilege::Monitor).address);
        let admin8 = privs(&["VM.Audit", "VM.Monitor"], 1);
        assert!(GuestRights::of(&admin8, GuestType::Qemu, AgentPrivilege::Monitor).address);
        assert!(!GuestRights::of(&admin8, GuestType::Qemu, AgentPrivilege::GuestAgentAudit).address);
    }

    #[test]
    fn versions_map_to_their_agent_privilege() {
        assert_eq!(AgentPrivilege::of_version("8.4.1"), AgentPrivilege::Monitor);
        assert_eq!(AgentPrivilege::of_version("9.2.11"), AgentPrivilege::GuestAgentAudit);
        assert_eq!(AgentPrivilege::of_version("10.0"), AgentPrivilege::GuestAgentAudit);
        assert_eq!(AgentPrivilege::of_version("odd"), AgentPrivilege::GuestAgentAudit);
    }

    #[test]
    fn a_dump_without_vm_audit_audits_nothing() {
        let mut dump = BTreeMap::new();
        dump.insert("/storage".to_owned(), privs(&["Datastore.Audit"], 1));
        assert!(!audits_anything(&dump));
        dump.insert("/pool/lab".to_owned(), privs(&["VM.Audit"], 1));
        assert!(audits_anything(&dump));
    }
}
