//! Keeping Guacamole in step with proxdesk: the desired connections (provisioned machines and VMs whose
//! notes carry credentials), the managed connections Guacamole has, a pure plan between them, and its
//! application with as few calls as the REST API allows.
//!
//! Managed connections carry a marker parameter ([`MARKER_PARAM`]) naming source, VM, protocol and user.
//! Guacamole drops unknown *attributes* (reference §3) but stores any parameter, and guacd only receives
//! the parameters its protocol asks for, so a parameter is the one place a marker survives harmlessly.
//! Connections without it are never touched.

mod actual;
mod apply;
mod desired;
mod grants;
mod machines;
pub mod migrate;
mod plan;
mod table;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use actual::{ActualConnection, ActualGroup, ActualState, read_actual};
pub use apply::{ApplyReport, apply};
pub use desired::{DesiredSettings, desired};
pub use machines::{MachineGuest, machine_guest, wanted_addresses};
pub use plan::{ConnectionChange, Grant, GrantTarget, GroupRef, Plan, plan};

use super::client::Client;
use super::error::GuacError;
use super::notes::{Protocol, Severity};
use crate::secrets::Secret;

/// The parameter that marks a connection as proxdesk's.
pub const MARKER_PARAM: &str = "proxdesk-marker";

/// A VM or container as PVE reports it (the lead maps PVE's API onto this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmInfo {
    /// VM id, unique in the cluster.
    pub vmid: u32,
    /// Node it runs on.
    pub node: String,
    /// Its name.
    pub name: String,
    /// QEMU VM or LXC container.
    pub kind: VmKind,
    /// The `description` config field, as the API returns it (not URL-decoded again).
    pub notes: Option<String>,
    /// Its `tags` config value, which carries a proxdesk machine's marker.
    pub tags: Option<String>,
    /// The address to connect to: what the guest reports (guest agent or container interfaces), else
    /// the static one of its config; `None`: unknown right now (or not read: no connection wants it).
    pub ipv4: Option<String>,
    /// Set when the guest agent is silent, so the address may be stale or unknown.
    pub silent_agent: Option<AgentSilence>,
    /// MAC address of the first NIC, used for Wake-on-LAN parameters.
    pub mac: Option<String>,
    /// Why its config could not be read this run; its connections are then kept as they are, since a
    /// passing PVE error must not delete them.
    pub unreadable: Option<String>,
}

/// A QEMU guest agent PVE cannot reach (`QEMU guest agent is not running`, after PVE's 3 s ping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentSilence {
    /// It did not answer this run.
    NotAnswering,
    /// It did not answer on an earlier run (silent since `since`) and is not asked again before `recheck_at`.
    Remembered {
        /// When it was first found silent.
        since: chrono::DateTime<chrono::Utc>,
        /// When it will be asked again.
        recheck_at: chrono::DateTime<chrono::Utc>,
    },
}

/// QEMU or LXC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VmKind {
    /// A QEMU virtual machine.
    Qemu,
    /// An LXC container.
    Lxc,
}

/// A machine proxdesk provisioned, with its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedMachine {
    /// proxdesk's machine id.
    pub machine_id: i64,
    /// The request it was made for, whose marker its guest carries (`GuestMarker::for_request`).
    pub request_id: i64,
    /// Its VM id.
    pub vmid: u32,
    /// Its node.
    pub node: String,
    /// Its host name.
    pub hostname: String,
    /// Its IPv4 address, when known.
    pub ipv4: Option<String>,
    /// The owner's proxdesk username, who gets READ on the connection in Guacamole.
    pub owner_username: String,
    /// Login created on the machine.
    pub login_user: String,
    /// Its password; `None` when the stored one does not open with this instance's key, and the
    /// machine's connection is then kept as it is rather than deleted. Empty when proxdesk never knew
    /// one (a VM its owner installed from an ISO): Guacamole then asks for it.
    pub password: Option<Secret<String>>,
    /// Whether it gets a connection only once its address is known: a VM installed from an ISO has
    /// no address until its OS runs a guest agent, and a connection to nowhere would only mislead.
    pub address_required: bool,
}

/// One connection proxdesk wants in Guacamole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredConnection {
    /// Identity of the connection, stored in [`MARKER_PARAM`].
    pub marker: String,
    /// The VM it reaches.
    pub vmid: u32,
    /// Connection name.
    pub name: String,
    /// Protocol.
    pub protocol: Protocol,
    /// The per-VM group it lives in (under ROOT); `None`: ROOT.
    pub group: Option<String>,
    /// Parameters, marker included; `hostname` is absent while the VM's address is unknown.
    pub parameters: BTreeMap<String, Secret<String>>,
    /// Guacamole user who gets READ on it.
    pub owner: Option<String>,
}

/// Everything proxdesk wants in Guacamole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredState {
    /// Connections, markers unique, names unique per group.
    pub connections: Vec<DesiredConnection>,
    /// Whether missing owners are created as Guacamole users.
    pub create_users: bool,
    /// VMs whose config could not be read: their managed connections are left untouched.
    pub held: std::collections::BTreeSet<u32>,
}

/// A problem found while building the desired state or applying the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// The VM concerned, if any.
    pub vmid: Option<u32>,
    /// Line in the VM's notes, if the problem is there.
    pub line: Option<usize>,
    /// Column in that line.
    pub column: Option<usize>,
    /// Warning or error.
    pub severity: Severity,
    /// What happened.
    pub message: String,
}

impl Diagnostic {
    /// A problem about a VM (or the whole run, with `None`) rather than a place in its notes.
    pub fn about(vmid: Option<u32>, severity: Severity, message: String) -> Diagnostic {
        Diagnostic { vmid, line: None, column: None, severity, message }
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        match (self.vmid, self.line, self.column) {
            (Some(v), Some(l), Some(c)) => {
                write!(f, "{sev}: vm {v}, notes {l}:{c}: {}", self.message)
            }
            (Some(v), _, _) => write!(f, "{sev}: vm {v}: {}", self.message),
            _ => write!(f, "{sev}: {}", self.message),
        }
    }
}

/// The outcome of one sync run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// When the run started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// When it ended.
    pub finished_at: chrono::DateTime<chrono::Utc>,
    /// Whether only the plan was computed.
    pub dry_run: bool,
    /// Connections desired.
    pub desired: usize,
    /// Managed connections found.
    pub managed: usize,
    /// What the plan asked for, as counts.
    pub planned: plan::PlanCounts,
    /// What was done (empty for a dry run).
    pub applied: ApplyReport,
    /// Diagnostics of the notes, the plan and the application.
    pub diagnostics: Vec<Diagnostic>,
    /// The plan as a table, for the CLI.
    #[serde(skip)]
    pub table: String,
}

impl SyncReport {
    /// Errors among the diagnostics (note entries skipped, calls refused).
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error).count()
    }
}

/// One whole run: desired state, actual state, plan, and (unless `dry_run`) its application.
/// Fails only when Guacamole cannot be read; per-VM and per-call problems end up in the report.
#[tracing::instrument(skip_all, fields(machines = machines.len(), vms = vms.len(), dry_run))]
pub async fn run_sync(
    client: &Client,
    machines: &[ProvisionedMachine],
    vms: &[VmInfo],
    settings: &DesiredSettings,
    dry_run: bool,
) -> Result<SyncReport, GuacError> {
    let started_at = chrono::Utc::now();
    let (want, mut diagnostics) = desired(machines, vms, settings);
    let owners: Vec<String> = want.connections.iter().filter_map(|c| c.owner.clone()).collect();
    let have = read_actual(client, &owners).await?;
    let the_plan = plan(&want, &have);
    diagnostics.extend(the_plan.diagnostics.iter().cloned());
    let applied = if dry_run { ApplyReport::default() } else { apply(client, &the_plan).await };
    diagnostics.extend(applied.errors.iter().cloned());
    let report = SyncReport {
        started_at,
        finished_at: chrono::Utc::now(),
        dry_run,
        desired: want.connections.len(),
        managed: have.connections.iter().filter(|c| c.marker.is_some()).count(),
        planned: the_plan.counts(),
        table: the_plan.to_table(),
        applied,
        diagnostics,
    };
    tracing::info!(
        created = report.applied.created,
        updated = report.applied.updated,
        deleted = report.applied.deleted,
        errors = report.error_count(),
        "guacamole sync finished"
    );
    Ok(report)
}
