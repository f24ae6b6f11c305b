//! Counts of an inventory's mix (kinds, agents, addresses, notes), for `proxdesk sim pve` to print and
//! for tests to compare with [`super::GeneratedInventory`]'s stated percentages.

use std::fmt;

use super::guest_net::{AgentState, Dhcp, DockerBridge, GuestOs};
use super::state::{GuestKind, State};

/// How many guests (templates left out) have each trait.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventorySummary {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Guests, templates left out.
    pub guests: usize,
    /// QEMU VMs.
    pub qemu: usize,
    /// LXC containers.
    pub lxc: usize,
    /// Guests running.
    pub running: usize,
    /// Windows guests.
    pub windows: usize,
    /// QEMU guests without an `agent` key.
    pub agent_absent: usize,
    /// QEMU guests whose `agent` key is off (`0`, `enabled=0`).
    pub agent_off: usize,
    /// QEMU guests whose `agent` key is on, then split by what the agent inside does.
    pub agent_on: usize,
    /// Of `agent_on`: the agent answers.
    pub agent_responsive: usize,
    /// Of `agent_on`: nothing answers, at once.
    pub agent_not_running: usize,
    /// Of `agent_on`: hung, answers after the ping timeout.
    pub agent_silent: usize,
    /// Guests with a `docker0` bridge.
    pub docker0: usize,
    /// QEMU guests whose DHCP never answers (IPv6 link-local only).
    pub link_local_only: usize,
    /// Containers whose DHCP never answers.
    pub lxc_never_leased: usize,
    /// Containers with a static `ip=` in `net0`.
    pub lxc_static: usize,
    /// QEMU guests with a cloud-init `ipconfig0` address.
    pub cloud_init_static: usize,
    /// Notes with a `pass`/`password` key (well-formed or not).
    pub credential_notes: usize,
    /// Other non-empty notes.
    pub prose_notes: usize,
    /// Guests with tags.
    pub tagged: usize,
    /// Guests with a `lock`.
    pub locked: usize,
}

impl InventorySummary {
    /// Counts `state`'s guests.
    pub fn of(state: &State) -> Self {
        let mut s = InventorySummary { nodes: state.nodes.len(), ..Self::default() };
        for g in state.guests.values().filter(|g| !g.is_template()) {
            s.guests += 1;
            s.running += usize::from(g.running);
            s.windows += usize::from(g.os == GuestOs::Windows);
            s.docker0 += usize::from(g.docker != DockerBridge::Absent);
            s.tagged += usize::from(g.config.contains_key("tags"));
            s.locked += usize::from(g.lock().is_some());
            match g.config.get("description") {
                Some(d) if d.contains("pass:") || d.contains("password:") => s.credential_notes += 1,
                Some(d) if !d.trim().is_empty() => s.prose_notes += 1,
                _ => {}
            }
            match g.kind {
                GuestKind::Lxc => {
                    s.lxc += 1;
                    s.lxc_never_leased += usize::from(g.dhcp == Dhcp::NeverAnswers && g.static_ipv4().is_none());
                    s.lxc_static += usize::from(g.static_ipv4().is_some());
                }
                GuestKind::Qemu => {
                    s.qemu += 1;
                    s.cloud_init_static += usize::from(g.static_ipv4().is_some());
                    s.link_local_only += usize::from(g.dhcp == Dhcp::NeverAnswers && g.static_ipv4().is_none());
                    if !g.config.contains_key("agent") {
                        s.agent_absent += 1;
                    } else if !g.agent_enabled() {
                        s.agent_off += 1;
                    } else {
                        s.agent_on += 1;
                        match g.agent {
                            AgentState::Responsive => s.agent_responsive += 1,
                            AgentState::NotRunning => s.agent_not_running += 1,
                            AgentState::Silent => s.agent_silent += 1,
                        }
                    }
                }
            }
        }
        s
    }
}

impl fmt::Display for InventorySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} guests on {} nodes: {} QEMU ({} Windows), {} LXC, {} running; QEMU agent: {} absent, {} off, {} on \
             ({} responsive, {} not running, {} silent); {} cloud-init static, {} link-local only, {} with docker0; \
             LXC: {} never leased, {} static; notes: {} credentials, {} prose; {} tagged, {} locked",
            self.guests,
            self.nodes,
            self.qemu,
            self.windows,
            self.lxc,
            self.running,
            self.agent_absent,
            self.agent_off,
            self.agent_on,
            self.agent_responsive,
            self.agent_not_running,
            self.agent_silent,
            self.cloud_init_static,
            self.link_local_only,
            self.docker0,
            self.lxc_never_leased,
            self.lxc_static,
            self.credential_notes,
            self.prose_notes,
            self.tagged,
            self.locked,
        )
    }
}
