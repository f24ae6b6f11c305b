//! The second pass of reading PVE: the address of each guest that will have a connection, with as few
//! calls as the guests allow, and what was learned about silent guest agents.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};

use super::{ListedGuest, ReadSettings};
use crate::integrations::guacamole::sync::{AgentSilence, VmInfo, VmKind};
use crate::integrations::pve::{self, PveError, wire::first_ipv4};
use crate::services::guest_agents::{AgentChange, GuestKey, SilentAgent};

/// How a guest's address is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressLookup {
    /// No call: no connection wants the address, the guest is stopped, or its config has no enabled
    /// agent. Its static address (if any) is all there is.
    NoCall,
    /// A running container: `GET …/lxc/{vmid}/interfaces`.
    Interfaces,
    /// A running VM with the agent enabled: `GET …/agent/network-get-interfaces`.
    Agent,
    /// A VM whose agent was silent on an earlier run and is not due for a re-check.
    SkipSilent { since: DateTime<Utc>, recheck_at: DateTime<Utc> },
}

/// Decides how the address of `guest` is found (pure, so every case is tested).
pub fn lookup(
    guest: &ListedGuest,
    wanted: bool,
    silent: Option<&SilentAgent>,
    now: DateTime<Utc>,
    recheck: chrono::Duration,
) -> AddressLookup {
    if !wanted || !guest.running || guest.info.unreadable.is_some() {
        return AddressLookup::NoCall;
    }
    match guest.info.kind {
        VmKind::Lxc => AddressLookup::Interfaces,
        VmKind::Qemu if !guest.agent.is_enabled() => AddressLookup::NoCall,
        VmKind::Qemu => match silent {
            Some(s) if now < s.checked_at + recheck => {
                AddressLookup::SkipSilent { since: s.since, recheck_at: s.checked_at + recheck }
            }
            _ => AddressLookup::Agent,
        },
    }
}

/// Reads the addresses of the `wanted` guests, `settings.concurrency` calls at a time, and returns every
/// guest (in listing order) with what was learned about silent agents.
pub(super) async fn read(
    pve: &pve::Client,
    guests: Vec<ListedGuest>,
    wanted: &BTreeSet<u32>,
    silent: &BTreeMap<GuestKey, SilentAgent>,
    now: DateTime<Utc>,
    settings: ReadSettings,
) -> (Vec<VmInfo>, Vec<AgentChange>) {
    let mut done: Vec<(usize, VmInfo, Option<AgentChange>)> = stream::iter(guests.into_iter().enumerate())
        .map(|(i, g)| {
            let key = (g.info.vmid, g.info.node.clone());
            let remembered = silent.get(&key);
            let how = lookup(&g, wanted.contains(&g.info.vmid), remembered, now, settings.agent_recheck);
            async move {
                let (info, change) = address_of(pve, g, how, remembered.is_some(), now).await;
                (i, info, change)
            }
        })
        .buffer_unordered(settings.concurrency.max(1))
        .collect()
        .await;
    done.sort_by_key(|(i, ..)| *i);
    let mut changes = Vec::new();
    let vms = done
        .into_iter()
        .map(|(_, info, change)| {
            changes.extend(change);
            info
        })
        .collect();
    (vms, changes)
}

async fn address_of(
    pve: &pve::Client,
    g: ListedGuest,
    how: AddressLookup,
    remembered: bool,
    now: DateTime<Utc>,
) -> (VmInfo, Option<AgentChange>) {
    let ListedGuest { mut info, static_ipv4, .. } = g;
    let key = (info.vmid, info.node.clone());
    let vmid = u64::from(info.vmid);
    let mut change = None;
    // What the guest reports wins; the static address of its config stands in when it cannot say.
    let live = match how {
        AddressLookup::NoCall => None,
        AddressLookup::SkipSilent { since, recheck_at } => {
            info.silent_agent = Some(AgentSilence::Remembered { since, recheck_at });
            None
        }
        AddressLookup::Interfaces => match pve.lxc_interfaces(&info.node, vmid).await {
            Ok(ifaces) => ifaces.as_deref().and_then(first_ipv4),
            Err(e) => {
                tracing::debug!(vmid, error = %e, "container interfaces not readable");
                None
            }
        },
        AddressLookup::Agent => match pve.qemu_agent_interfaces(&info.node, vmid).await {
            Ok(ifaces) => {
                if remembered {
                    change = Some(AgentChange::Answered { guest: key });
                }
                first_ipv4(&ifaces)
            }
            Err(PveError::AgentUnavailable { configured: true, .. }) => {
                info.silent_agent = Some(AgentSilence::NotAnswering);
                change = Some(AgentChange::Silent { guest: key, at: now });
                None
            }
            Err(e) => {
                tracing::debug!(vmid, error = %e, "guest agent not readable");
                None
            }
        },
    };
    info.ipv4 = live.or(static_ipv4).map(|ip| ip.to_string());
    (info, change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::pve::address::AgentSetting;

    fn guest(kind: VmKind, running: bool, agent: AgentSetting) -> ListedGuest {
        ListedGuest {
            info: VmInfo {
                vmid: 100,
                node: "pve1".into(),
                name: "vm".into(),
                kind,
                notes: None,
                tags: None,
                ipv4: None,
                silent_agent: None,
                mac: None,
                unreadable: None,
            },
            running,
            agent,
            static_ipv4: None,
        }
    }

    #[test]
    fn the_agent_is_asked_only_when_wanted_running_enabled_and_not_known_silent() {
        use AgentSetting::*;
        let now = Utc::now();
        let recheck = chrono::Duration::minutes(30);
        let qemu = |running, agent| guest(VmKind::Qemu, running, agent);
        let ask = |g: &ListedGuest, wanted| lookup(g, wanted, None, now, recheck);
        assert_eq!(ask(&qemu(true, Enabled), true), AddressLookup::Agent);
        assert_eq!(ask(&qemu(true, Enabled), false), AddressLookup::NoCall, "no connection wants it");
        assert_eq!(ask(&qemu(false, Enabled), true), AddressLookup::NoCall, "stopped");
        assert_eq!(ask(&qemu(true, Absent), true), AddressLookup::NoCall);
        assert_eq!(ask(&qemu(true, Disabled), true), AddressLookup::NoCall);
        assert_eq!(ask(&guest(VmKind::Lxc, true, Absent), true), AddressLookup::Interfaces);
        assert_eq!(ask(&guest(VmKind::Lxc, false, Absent), true), AddressLookup::NoCall);
        let mut unread = qemu(true, Enabled);
        unread.info.unreadable = Some("Proxmox VE: timed out".into());
        assert_eq!(ask(&unread, true), AddressLookup::NoCall);

        let since = now - chrono::Duration::hours(2);
        let fresh = SilentAgent { since, checked_at: now - chrono::Duration::minutes(10) };
        assert_eq!(
            lookup(&qemu(true, Enabled), true, Some(&fresh), now, recheck),
            AddressLookup::SkipSilent { since, recheck_at: fresh.checked_at + recheck }
        );
        let due = SilentAgent { since, checked_at: now - chrono::Duration::minutes(30) };
        assert_eq!(lookup(&qemu(true, Enabled), true, Some(&due), now, recheck), AddressLookup::Agent, "re-check due");
    }
}
