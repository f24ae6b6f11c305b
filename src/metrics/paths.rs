//! Bounded endpoint labels: request paths with their variable parts replaced by `{name}`.

/// A PVE API path (below `/api2/json`, query stripped) as a template: `/nodes/{node}/lxc/{vmid}/…`.
pub fn pve_endpoint(path: &str) -> String {
    let path = path.split('?').next().unwrap_or("");
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut out = Vec::with_capacity(segs.len());
    for (i, seg) in segs.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| segs[p]);
        let name = match prev {
            Some("nodes") => Some("{node}"),
            Some("lxc" | "qemu") if i >= 2 => Some("{vmid}"),
            Some("tasks") => Some("{upid}"),
            Some("snapshot") => Some("{snapname}"),
            Some("storage") if i >= 2 => Some("{storage}"),
            Some("content") => Some("{volume}"),
            Some("pools" | "groups" | "users" | "roles" | "token") => Some("{id}"),
            _ => None,
        };
        out.push(name.map(str::to_owned).unwrap_or_else(|| generic(seg)));
    }
    format!("/{}", out.join("/"))
}

/// A Guacamole API path (below `/api`, or below `/api/session/data/{ds}/` as the client builds it) as
/// a template: `/session/data/{ds}/connections/{id}/parameters`.
pub fn guac_endpoint(path: &str) -> String {
    let path = path.split('?').next().unwrap_or("");
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut out = Vec::with_capacity(segs.len());
    for (i, seg) in segs.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| segs[p]);
        let name = match prev {
            Some("data") => Some("{ds}"),
            Some("tokens") => Some("{token}"),
            Some("connections" | "connectionGroups" | "sharingProfiles" | "activeConnections") => Some("{id}"),
            Some("users" | "userGroups") => Some("{user}"),
            _ => None,
        };
        out.push(name.map(str::to_owned).unwrap_or_else(|| generic(seg)));
    }
    format!("/{}", out.join("/"))
}

/// A request path to proxdesk itself that matched no route pattern: numbers and token-like segments
/// become `{id}`.
pub fn http_path(path: &str) -> String {
    let segs: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(generic).collect();
    format!("/{}", segs.join("/"))
}

/// `seg` itself when it looks like a fixed word of an API, else `{id}`: numbers, UPIDs, anything with
/// a digit or a `:`/`@`/`=`/`.`/`%`, and anything long.
fn generic(seg: &str) -> String {
    let word = seg.len() <= 32
        && seg.chars().all(|c| c.is_ascii_alphabetic() || c == '-' || c == '_')
        && seg.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if word { seg.to_owned() } else { "{id}".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pve_paths_become_templates() {
        for (path, want) in [
            ("/nodes/pve1/lxc/101/status/current", "/nodes/{node}/lxc/{vmid}/status/current"),
            ("/nodes/pve-2/qemu/9000/clone", "/nodes/{node}/qemu/{vmid}/clone"),
            ("/nodes/pve1/lxc", "/nodes/{node}/lxc"),
            (
                "/nodes/pve1/tasks/UPID:pve1:0000ABCD:0001:65:vzclone:101:root@pam:/status",
                "/nodes/{node}/tasks/{upid}/status",
            ),
            (
                "/nodes/pve1/lxc/101/snapshot/before-upgrade/rollback",
                "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/rollback",
            ),
            ("/nodes/pve1/storage/local-lvm/content", "/nodes/{node}/storage/{storage}/content"),
            ("/cluster/nextid", "/cluster/nextid"),
            ("/cluster/resources?type=vm", "/cluster/resources"),
            ("/access/ticket", "/access/ticket"),
            ("/access/users/alice@pve", "/access/users/{id}"),
            ("/access/domains", "/access/domains"),
            ("/nodes/pve1/lxc/101/vncwebsocket", "/nodes/{node}/lxc/{vmid}/vncwebsocket"),
        ] {
            assert_eq!(pve_endpoint(path), want, "{path}");
        }
    }

    #[test]
    fn guacamole_paths_become_templates() {
        for (path, want) in [
            ("/tokens", "/tokens"),
            ("/tokens/4A2B0E8C9D", "/tokens/{token}"),
            ("/session", "/session"),
            ("/session/data/postgresql/connections", "/session/data/{ds}/connections"),
            ("/session/data/mysql-shared/connections/42/parameters", "/session/data/{ds}/connections/{id}/parameters"),
            ("/session/data/postgresql/connectionGroups/ROOT/tree", "/session/data/{ds}/connectionGroups/{id}/tree"),
            ("/session/data/postgresql/users/alice", "/session/data/{ds}/users/{user}"),
            ("/session/data/postgresql/users/alice/permissions", "/session/data/{ds}/users/{user}/permissions"),
        ] {
            assert_eq!(guac_endpoint(path), want, "{path}");
        }
    }

    #[test]
    fn unmatched_paths_lose_their_ids() {
        assert_eq!(http_path("/machines/12/x"), "/machines/{id}/x");
        assert_eq!(http_path("/a/3f9a0c7e-0b1d/b"), "/a/{id}/b");
        assert_eq!(http_path("/"), "/");
    }
}
