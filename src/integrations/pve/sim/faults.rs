//! Fault injection per endpoint, and the per-endpoint call counter.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// The endpoints the simulator serves; faults and call counts are kept per endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    AccessTicket,
    AccessPermissions,
    AccessDomains,
    AccessUsers,
    AccessUser,
    AccessGroups,
    AccessGroup,
    AccessRoles,
    AccessRole,
    AccessAcl,
    Version,
    Nodes,
    ClusterResources,
    ClusterNextId,
    Pools,
    Storage,
    LxcList,
    LxcClone,
    LxcConfigGet,
    LxcConfigPut,
    LxcResize,
    LxcStatusCurrent,
    LxcStart,
    LxcShutdown,
    LxcStop,
    LxcReboot,
    LxcDelete,
    LxcInterfaces,
    LxcVncProxy,
    LxcTermProxy,
    VncWebsocket,
    QemuStatusCurrent,
    QemuConfigGet,
    QemuConfigPut,
    QemuAgentInterfaces,
    QemuVncProxy,
    QemuList,
    QemuCreate,
    QemuClone,
    QemuConfigPost,
    QemuPending,
    QemuResize,
    QemuStart,
    QemuStop,
    QemuShutdown,
    QemuReboot,
    QemuReset,
    QemuDelete,
    QemuTermProxy,
    StorageContent,
    Network,
    TaskList,
    TaskStatus,
    TaskLog,
    TaskStop,
    LxcSnapshotList,
    LxcSnapshotCreate,
    LxcSnapshotRollback,
    LxcSnapshotDelete,
    LxcSnapshotConfigGet,
    LxcSnapshotConfigPut,
    QemuSnapshotList,
    QemuSnapshotCreate,
    QemuSnapshotRollback,
    QemuSnapshotDelete,
    QemuSnapshotConfigGet,
    QemuSnapshotConfigPut,
    LxcRrdData,
    QemuRrdData,
}

impl Endpoint {
    /// Every endpoint, for CLI parsing and reports.
    pub const ALL: [Endpoint; 69] = [
        Endpoint::AccessTicket,
        Endpoint::AccessPermissions,
        Endpoint::AccessDomains,
        Endpoint::AccessUsers,
        Endpoint::AccessUser,
        Endpoint::AccessGroups,
        Endpoint::AccessGroup,
        Endpoint::AccessRoles,
        Endpoint::AccessRole,
        Endpoint::AccessAcl,
        Endpoint::Version,
        Endpoint::Nodes,
        Endpoint::ClusterResources,
        Endpoint::ClusterNextId,
        Endpoint::Pools,
        Endpoint::Storage,
        Endpoint::LxcList,
        Endpoint::LxcClone,
        Endpoint::LxcConfigGet,
        Endpoint::LxcConfigPut,
        Endpoint::LxcResize,
        Endpoint::LxcStatusCurrent,
        Endpoint::LxcStart,
        Endpoint::LxcShutdown,
        Endpoint::LxcStop,
        Endpoint::LxcReboot,
        Endpoint::LxcDelete,
        Endpoint::LxcInterfaces,
        Endpoint::LxcVncProxy,
        Endpoint::LxcTermProxy,
        Endpoint::VncWebsocket,
        Endpoint::QemuStatusCurrent,
        Endpoint::QemuConfigGet,
        Endpoint::QemuConfigPut,
        Endpoint::QemuAgentInterfaces,
        Endpoint::QemuVncProxy,
        Endpoint::QemuList,
        Endpoint::QemuCreate,
        Endpoint::QemuClone,
        Endpoint::QemuConfigPost,
        Endpoint::QemuPending,
        Endpoint::QemuResize,
        Endpoint::QemuStart,
        Endpoint::QemuStop,
        Endpoint::QemuShutdown,
        Endpoint::QemuReboot,
        Endpoint::QemuReset,
        Endpoint::QemuDelete,
        Endpoint::QemuTermProxy,
        Endpoint::StorageContent,
        Endpoint::Network,
        Endpoint::TaskList,
        Endpoint::TaskStatus,
        Endpoint::TaskLog,
        Endpoint::TaskStop,
        Endpoint::LxcSnapshotList,
        Endpoint::LxcSnapshotCreate,
        Endpoint::LxcSnapshotRollback,
        Endpoint::LxcSnapshotDelete,
        Endpoint::LxcSnapshotConfigGet,
        Endpoint::LxcSnapshotConfigPut,
        Endpoint::QemuSnapshotList,
        Endpoint::QemuSnapshotCreate,
        Endpoint::QemuSnapshotRollback,
        Endpoint::QemuSnapshotDelete,
        Endpoint::QemuSnapshotConfigGet,
        Endpoint::QemuSnapshotConfigPut,
        Endpoint::LxcRrdData,
        Endpoint::QemuRrdData,
    ];

    /// A stable kebab-case name (`lxc-clone`), used on the command line.
    pub fn name(self) -> String {
        let debug = format!("{self:?}");
        let mut out = String::new();
        for (i, c) in debug.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }
}

impl std::str::FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Endpoint::ALL.into_iter().find(|e| e.name() == s).ok_or_else(|| format!("unknown endpoint {s:?}"))
    }
}

/// What goes wrong on an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The answer is delayed by this much.
    Latency(Duration),
    /// The answer is this status with this message (e.g. 500, or pveproxy's 596 with an empty body).
    Status { code: u16, message: String },
    /// The connection is closed without an answer.
    Drop,
    /// The task the endpoint starts ends with `TASK ERROR: <message>`.
    TaskError(String),
    /// The task the endpoint starts never finishes.
    TaskHang,
    /// PVE carries the call out, then its answer is lost on the way back and this status arrives
    /// instead (pveproxy's 596 after the node accepted a clone).
    AppliedThenStatus { code: u16, message: String },
    /// PVE carries the call out, then the connection is closed before the answer.
    AppliedThenDrop,
    /// PVE carries the call out, then the answer is held this long (past the client's timeout).
    AppliedThenDelay(Duration),
}

impl Fault {
    /// Whether the fault acts after the handler ran (the call's effect stays).
    pub fn acts_after_applying(&self) -> bool {
        matches!(self, Fault::AppliedThenStatus { .. } | Fault::AppliedThenDrop | Fault::AppliedThenDelay(_))
    }
}

impl Fault {
    /// Parses a command-line fault spec `ENDPOINT=FAULT`, FAULT being `latency:MS`, `status:CODE:MESSAGE`,
    /// `drop`, `task-error:MESSAGE`, `task-hang`, or one that lets the call take effect and then loses its
    /// answer: `applied-then-status:CODE:MESSAGE`, `applied-then-drop`, `applied-then-delay:MS`
    /// (e.g. `lxc-clone=task-error:no space left on device`, `lxc-clone=applied-then-status:596:Broken pipe`).
    pub fn parse_spec(spec: &str) -> Result<(Endpoint, Fault), String> {
        let (endpoint, fault) = spec.split_once('=').ok_or_else(|| format!("{spec:?}: expected ENDPOINT=FAULT"))?;
        let endpoint: Endpoint = endpoint.parse()?;
        let (kind, arg) = fault.split_once(':').unwrap_or((fault, ""));
        let fault = match kind {
            "latency" => {
                Fault::Latency(Duration::from_millis(arg.parse().map_err(|_| format!("{spec:?}: latency:MS"))?))
            }
            "status" => {
                let (code, message) = arg.split_once(':').unwrap_or((arg, "simulated failure"));
                let code = code.parse().map_err(|_| format!("{spec:?}: status:CODE:MESSAGE"))?;
                Fault::Status { code, message: message.to_owned() }
            }
            "drop" => Fault::Drop,
            "applied-then-status" => {
                let (code, message) = arg.split_once(':').unwrap_or((arg, ""));
                let code = code.parse().map_err(|_| format!("{spec:?}: applied-then-status:CODE:MESSAGE"))?;
                Fault::AppliedThenStatus { code, message: message.to_owned() }
            }
            "applied-then-drop" => Fault::AppliedThenDrop,
            "applied-then-delay" => Fault::AppliedThenDelay(Duration::from_millis(
                arg.parse().map_err(|_| format!("{spec:?}: applied-then-delay:MS"))?,
            )),
            "task-error" => Fault::TaskError(if arg.is_empty() { "simulated failure".into() } else { arg.into() }),
            "task-hang" => Fault::TaskHang,
            other => return Err(format!("{spec:?}: unknown fault {other:?}")),
        };
        Ok((endpoint, fault))
    }
}

#[derive(Debug, Clone)]
struct Armed {
    fault: Fault,
    remaining: Option<u32>,
}

/// The faults armed per endpoint. Cloned handles share nothing; use the one from `SimHandle::faults`.
#[derive(Debug, Default)]
pub struct Faults {
    armed: Mutex<BTreeMap<Endpoint, Vec<Armed>>>,
}

impl Faults {
    /// Arms `fault` on `endpoint` for every later call.
    pub fn inject(&self, endpoint: Endpoint, fault: Fault) {
        self.push(endpoint, fault, None);
    }

    /// Arms `fault` on `endpoint` for the next `times` calls only.
    pub fn inject_times(&self, endpoint: Endpoint, fault: Fault, times: u32) {
        self.push(endpoint, fault, Some(times));
    }

    fn push(&self, endpoint: Endpoint, fault: Fault, remaining: Option<u32>) {
        self.armed.lock().expect("faults").entry(endpoint).or_default().push(Armed { fault, remaining });
    }

    /// Disarms every fault.
    pub fn clear(&self) {
        self.armed.lock().expect("faults").clear();
    }

    /// The faults that fire for this call of `endpoint` (consuming counted ones).
    pub(crate) fn take(&self, endpoint: Endpoint) -> Vec<Fault> {
        let mut armed = self.armed.lock().expect("faults");
        let Some(list) = armed.get_mut(&endpoint) else { return vec![] };
        let fired = list.iter().map(|a| a.fault.clone()).collect();
        for a in list.iter_mut() {
            if let Some(n) = a.remaining.as_mut() {
                *n = n.saturating_sub(1);
            }
        }
        list.retain(|a| a.remaining != Some(0));
        fired
    }
}

/// How many calls each endpoint received.
#[derive(Debug, Default)]
pub struct CallCounter {
    counts: Mutex<BTreeMap<Endpoint, u64>>,
}

impl CallCounter {
    pub(crate) fn record(&self, endpoint: Endpoint) {
        *self.counts.lock().expect("calls").entry(endpoint).or_default() += 1;
    }

    /// Calls received by `endpoint`.
    pub fn get(&self, endpoint: Endpoint) -> u64 {
        self.counts.lock().expect("calls").get(&endpoint).copied().unwrap_or(0)
    }

    /// Calls received by all endpoints.
    pub fn total(&self) -> u64 {
        self.counts.lock().expect("calls").values().sum()
    }

    /// A copy of every count.
    pub fn snapshot(&self) -> BTreeMap<Endpoint, u64> {
        self.counts.lock().expect("calls").clone()
    }

    /// Sets every count back to zero.
    pub fn reset(&self) {
        self.counts.lock().expect("calls").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_parse() {
        assert_eq!(
            Fault::parse_spec("lxc-clone=task-error:disk full").unwrap(),
            (Endpoint::LxcClone, Fault::TaskError("disk full".into()))
        );
        assert_eq!(
            Fault::parse_spec("version=status:596:Broken pipe").unwrap(),
            (Endpoint::Version, Fault::Status { code: 596, message: "Broken pipe".into() })
        );
        assert_eq!(Fault::parse_spec("nodes=latency:20").unwrap().1, Fault::Latency(Duration::from_millis(20)));
        assert!(Fault::parse_spec("nope=drop").is_err());
        assert_eq!(
            Fault::parse_spec("lxc-clone=applied-then-status:596:Broken pipe").unwrap().1,
            Fault::AppliedThenStatus { code: 596, message: "Broken pipe".into() }
        );
        assert_eq!(Fault::parse_spec("lxc-config-put=applied-then-drop").unwrap().1, Fault::AppliedThenDrop);
        assert_eq!(
            Fault::parse_spec("lxc-start=applied-then-delay:5000").unwrap().1,
            Fault::AppliedThenDelay(Duration::from_secs(5))
        );
    }

    #[test]
    fn counted_faults_expire() {
        let f = Faults::default();
        f.inject_times(Endpoint::Nodes, Fault::Drop, 1);
        assert_eq!(f.take(Endpoint::Nodes), vec![Fault::Drop]);
        assert!(f.take(Endpoint::Nodes).is_empty());
    }
}
