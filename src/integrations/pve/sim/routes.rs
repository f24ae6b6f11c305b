//! The route table: method and path segments → endpoint, with the path parameters it carries.

use poem::http::Method;

use super::faults::Endpoint;
use super::state::GuestKind;

/// A matched route.
pub(crate) struct Route {
    pub endpoint: Endpoint,
    pub node: Option<String>,
    pub kind: GuestKind,
    pub vmid: String,
    pub upid: String,
    pub storage: String,
    /// A user, group or role id of an `/access/…` path.
    pub item: String,
}

pub(crate) fn route(method: &Method, segs: &[&str]) -> Option<Route> {
    use Endpoint as E;
    let r = |endpoint| {
        Some(Route {
            endpoint,
            node: None,
            kind: GuestKind::Lxc,
            vmid: String::new(),
            upid: String::new(),
            storage: String::new(),
            item: String::new(),
        })
    };
    let on = |endpoint, node: &str, kind, vmid: &str, upid: &str| {
        Some(Route {
            endpoint,
            node: Some(node.to_owned()),
            kind,
            vmid: vmid.to_owned(),
            upid: upid.to_owned(),
            storage: String::new(),
            item: String::new(),
        })
    };
    let item = |endpoint, id: &str| r(endpoint).map(|r| Route { item: id.to_owned(), ..r });
    let (get, post, put, delete) =
        (method == Method::GET, method == Method::POST, method == Method::PUT, method == Method::DELETE);
    let (lxc, qm) = (GuestKind::Lxc, GuestKind::Qemu);
    match segs {
        ["version"] if get => r(E::Version),
        ["nodes"] if get => r(E::Nodes),
        ["cluster", "resources"] if get => r(E::ClusterResources),
        ["cluster", "nextid"] if get => r(E::ClusterNextId),
        ["pools"] if get => r(E::Pools),
        ["access", "permissions"] if get => r(E::AccessPermissions),
        ["access", "ticket"] if get || post => r(E::AccessTicket),
        ["access", "domains"] if get => r(E::AccessDomains),
        ["access", "users"] if get => r(E::AccessUsers),
        ["access", "users", id] if get => item(E::AccessUser, id),
        ["access", "groups"] if get => r(E::AccessGroups),
        ["access", "groups", id] if get => item(E::AccessGroup, id),
        ["access", "roles"] if get => r(E::AccessRoles),
        ["access", "roles", id] if get => item(E::AccessRole, id),
        ["access", "acl"] if get => r(E::AccessAcl),
        ["nodes", n, "storage"] if get => on(E::Storage, n, lxc, "", ""),
        ["nodes", n, "storage", s, "content"] if get => {
            on(E::StorageContent, n, lxc, "", "").map(|r| Route { storage: (*s).to_owned(), ..r })
        }
        ["nodes", n, "network"] if get => on(E::Network, n, lxc, "", ""),
        ["nodes", n, "lxc"] if get => on(E::LxcList, n, lxc, "", ""),
        ["nodes", n, "lxc", v] if delete => on(E::LxcDelete, n, lxc, v, ""),
        ["nodes", n, "lxc", v, "clone"] if post => on(E::LxcClone, n, lxc, v, ""),
        ["nodes", n, "lxc", v, "config"] if get => on(E::LxcConfigGet, n, lxc, v, ""),
        ["nodes", n, "lxc", v, "config"] if put => on(E::LxcConfigPut, n, lxc, v, ""),
        ["nodes", n, "lxc", v, "resize"] if put => on(E::LxcResize, n, lxc, v, ""),
        ["nodes", n, "lxc", v, "status", "current"] if get => on(E::LxcStatusCurrent, n, lxc, v, ""),
        ["nodes", n, "lxc", v, "status", "start"] if post => on(E::LxcStart, n, lxc, v, ""),
        ["nodes", n, "lxc", v, "status", "shutdown"] if post => on(E::LxcShutdown, n, lxc, v, ""),
        ["nodes", n, "lxc", v, "status", "stop"] if post => on(E::LxcStop, n, lxc, v, ""),
        ["nodes", n, "lxc", v, "status", "reboot"] if post => on(E::LxcReboot, n, lxc, v, ""),
        ["nodes", n, "lxc", v, "rrddata"] if get => on(E::LxcRrdData, n, lxc, v, ""),
        ["nodes", n, "lxc", v, "interfaces"] if get => on(E::LxcInterfaces, n, lxc, v, ""),
        ["nodes", n, "lxc", v, "vncproxy"] if post => on(E::LxcVncProxy, n, lxc, v, ""),
        ["nodes", n, "lxc", v, "termproxy"] if post => on(E::LxcTermProxy, n, lxc, v, ""),
        ["nodes", n, "lxc", v, "vncwebsocket"] if get => on(E::VncWebsocket, n, lxc, v, ""),
        ["nodes", n, "qemu"] if get => on(E::QemuList, n, qm, "", ""),
        ["nodes", n, "qemu"] if post => on(E::QemuCreate, n, qm, "", ""),
        ["nodes", n, "qemu", v] if delete => on(E::QemuDelete, n, qm, v, ""),
        ["nodes", n, "qemu", v, "clone"] if post => on(E::QemuClone, n, qm, v, ""),
        ["nodes", n, "qemu", v, "vncwebsocket"] if get => on(E::VncWebsocket, n, qm, v, ""),
        ["nodes", n, "qemu", v, "status", "current"] if get => on(E::QemuStatusCurrent, n, qm, v, ""),
        ["nodes", n, "qemu", v, "status", "start"] if post => on(E::QemuStart, n, qm, v, ""),
        ["nodes", n, "qemu", v, "status", "stop"] if post => on(E::QemuStop, n, qm, v, ""),
        ["nodes", n, "qemu", v, "status", "shutdown"] if post => on(E::QemuShutdown, n, qm, v, ""),
        ["nodes", n, "qemu", v, "status", "reboot"] if post => on(E::QemuReboot, n, qm, v, ""),
        ["nodes", n, "qemu", v, "status", "reset"] if post => on(E::QemuReset, n, qm, v, ""),
        ["nodes", n, "qemu", v, "rrddata"] if get => on(E::QemuRrdData, n, qm, v, ""),
        ["nodes", n, "qemu", v, "config"] if get => on(E::QemuConfigGet, n, qm, v, ""),
        ["nodes", n, "qemu", v, "config"] if put => on(E::QemuConfigPut, n, qm, v, ""),
        ["nodes", n, "qemu", v, "config"] if post => on(E::QemuConfigPost, n, qm, v, ""),
        ["nodes", n, "qemu", v, "pending"] if get => on(E::QemuPending, n, qm, v, ""),
        ["nodes", n, "qemu", v, "resize"] if put => on(E::QemuResize, n, qm, v, ""),
        ["nodes", n, "qemu", v, "agent", "network-get-interfaces"] if get => on(E::QemuAgentInterfaces, n, qm, v, ""),
        ["nodes", n, "qemu", v, "vncproxy"] if post => on(E::QemuVncProxy, n, qm, v, ""),
        ["nodes", n, "qemu", v, "termproxy"] if post => on(E::QemuTermProxy, n, qm, v, ""),
        ["nodes", n, k @ ("lxc" | "qemu"), v, "snapshot", rest @ ..] => snapshot_route(method, n, k, v, rest),
        ["nodes", n, "tasks"] if get => on(E::TaskList, n, lxc, "", ""),
        ["nodes", n, "tasks", u, "status"] if get => on(E::TaskStatus, n, lxc, "", u),
        ["nodes", n, "tasks", u, "log"] if get => on(E::TaskLog, n, lxc, "", u),
        ["nodes", n, "tasks", u] if delete => on(E::TaskStop, n, lxc, "", u),
        _ => None,
    }
}

/// `…/{lxc|qemu}/{vmid}/snapshot[/{snap}[/rollback|/config]]` (pve-qemu-day2.md §6); the snapshot name
/// travels in `item`.
fn snapshot_route(method: &Method, node: &str, kind: &str, vmid: &str, rest: &[&str]) -> Option<Route> {
    use Endpoint as E;
    let qemu = kind == "qemu";
    let pick = |lxc, qm| if qemu { qm } else { lxc };
    let (endpoint, snap) = match (rest, method.as_str()) {
        ([], "GET") => (pick(E::LxcSnapshotList, E::QemuSnapshotList), ""),
        ([], "POST") => (pick(E::LxcSnapshotCreate, E::QemuSnapshotCreate), ""),
        ([s], "DELETE") => (pick(E::LxcSnapshotDelete, E::QemuSnapshotDelete), *s),
        ([s, "rollback"], "POST") => (pick(E::LxcSnapshotRollback, E::QemuSnapshotRollback), *s),
        ([s, "config"], "GET") => (pick(E::LxcSnapshotConfigGet, E::QemuSnapshotConfigGet), *s),
        ([s, "config"], "PUT") => (pick(E::LxcSnapshotConfigPut, E::QemuSnapshotConfigPut), *s),
        _ => return None,
    };
    Some(Route {
        endpoint,
        node: Some(node.to_owned()),
        kind: if qemu { GuestKind::Qemu } else { GuestKind::Lxc },
        vmid: vmid.to_owned(),
        upid: String::new(),
        storage: String::new(),
        item: snap.to_owned(),
    })
}
