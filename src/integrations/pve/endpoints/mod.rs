//! One typed method per endpoint proxdesk uses.

mod access;
mod discovery;
mod guest;
mod metrics;
mod qemu;
mod snapshots;

use reqwest::Method;

pub use access::PasswordCheck;

use super::client::{Client, Params, params};
use super::error::PveError;
use super::upid::Upid;
use super::wire::*;
use crate::domain::guest::GuestType;

fn q(pairs: &[(&str, String)]) -> Params {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn upid(text: String) -> Result<Upid, PveError> {
    text.parse().map_err(|_| PveError::Decode(format!("not a UPID: {text:?}")))
}

fn enc(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect::<String>().replace('+', "%20")
}

impl Client {
    /// `GET /version`.
    pub async fn version(&self) -> Result<Version, PveError> {
        self.get("/version", vec![]).await
    }

    /// `GET /nodes`.
    pub async fn nodes(&self) -> Result<Vec<Node>, PveError> {
        self.get("/nodes", vec![]).await
    }

    /// `GET /cluster/resources`, optionally filtered by `type` (`vm`, `storage`, `node`, `sdn`).
    pub async fn cluster_resources(&self, kind: Option<&str>) -> Result<Vec<ClusterResource>, PveError> {
        let query = kind.map(|k| q(&[("type", k.to_owned())])).unwrap_or_default();
        self.get("/cluster/resources", query).await
    }

    /// `GET /cluster/nextid`: the first free VMID. Nothing is reserved (pve-api.md §5).
    pub async fn next_id(&self) -> Result<u64, PveError> {
        let id: String = self.get("/cluster/nextid", vec![]).await?;
        id.parse().map_err(|_| PveError::Decode(format!("nextid: {id:?}")))
    }

    /// `GET /cluster/nextid?vmid=N`: `Ok(true)` if free, `Ok(false)` if taken.
    pub async fn is_vmid_free(&self, vmid: u64) -> Result<bool, PveError> {
        match self.get::<String>("/cluster/nextid", q(&[("vmid", vmid.to_string())])).await {
            Ok(_) => Ok(true),
            Err(PveError::AlreadyExists(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `GET /nodes/{node}/lxc`.
    pub async fn lxc_list(&self, node: &str) -> Result<Vec<GuestStatus>, PveError> {
        self.get(&format!("/nodes/{node}/lxc"), vec![]).await
    }

    /// `POST /nodes/{node}/lxc/{vmid}/clone` → the `vzclone` task.
    pub async fn lxc_clone(&self, node: &str, vmid: u64, req: &CloneRequest) -> Result<Upid, PveError> {
        upid(self.write(Method::POST, &format!("/nodes/{node}/lxc/{vmid}/clone"), params(req)?).await?)
    }

    /// `GET /nodes/{node}/lxc/{vmid}/config` (pending values merged in).
    pub async fn lxc_config(&self, node: &str, vmid: u64) -> Result<GuestConfig, PveError> {
        self.get(&format!("/nodes/{node}/lxc/{vmid}/config"), vec![]).await
    }

    /// `PUT /nodes/{node}/lxc/{vmid}/config`: synchronous, no task (pve-api.md §6.3).
    pub async fn lxc_update_config(&self, node: &str, vmid: u64, update: &LxcConfigUpdate) -> Result<(), PveError> {
        let _: Option<serde_json::Value> =
            self.write(Method::PUT, &format!("/nodes/{node}/lxc/{vmid}/config"), params(update)?).await?;
        Ok(())
    }

    /// `PUT /nodes/{node}/lxc/{vmid}/resize` → the `resize` task.
    pub async fn lxc_resize(&self, node: &str, vmid: u64, req: &ResizeRequest) -> Result<Upid, PveError> {
        upid(self.write(Method::PUT, &format!("/nodes/{node}/lxc/{vmid}/resize"), params(req)?).await?)
    }

    /// `GET /nodes/{node}/lxc/{vmid}/status/current`.
    pub async fn lxc_status(&self, node: &str, vmid: u64) -> Result<GuestStatus, PveError> {
        self.get(&format!("/nodes/{node}/lxc/{vmid}/status/current"), vec![]).await
    }

    async fn lxc_power(&self, node: &str, vmid: u64, cmd: PowerCommand) -> Result<Upid, PveError> {
        self.guest_power(node, GuestType::Lxc, vmid, cmd).await
    }

    /// `POST …/status/start` → `vzstart`. A running CT is a synchronous error (`CT <id> already running`).
    pub async fn lxc_start(&self, node: &str, vmid: u64) -> Result<Upid, PveError> {
        self.lxc_power(node, vmid, PowerCommand::Start).await
    }

    /// `POST …/status/shutdown` → `vzshutdown`.
    pub async fn lxc_shutdown(&self, node: &str, vmid: u64) -> Result<Upid, PveError> {
        self.lxc_power(node, vmid, PowerCommand::Shutdown).await
    }

    /// `POST …/status/stop` → `vzstop`.
    pub async fn lxc_stop(&self, node: &str, vmid: u64) -> Result<Upid, PveError> {
        self.lxc_power(node, vmid, PowerCommand::Stop).await
    }

    /// `POST …/status/reboot` → `vzreboot`.
    pub async fn lxc_reboot(&self, node: &str, vmid: u64) -> Result<Upid, PveError> {
        self.lxc_power(node, vmid, PowerCommand::Reboot).await
    }

    /// `DELETE /nodes/{node}/lxc/{vmid}` → `vzdestroy`; `purge` also drops it from jobs and HA.
    pub async fn lxc_delete(&self, node: &str, vmid: u64, purge: bool) -> Result<Upid, PveError> {
        let p = if purge { q(&[("purge", "1".into())]) } else { vec![] };
        upid(self.write(Method::DELETE, &format!("/nodes/{node}/lxc/{vmid}"), p).await?)
    }

    /// `GET /nodes/{node}/lxc/{vmid}/interfaces`; `None` while the CT is stopped (pve-api.md §6.8).
    pub async fn lxc_interfaces(&self, node: &str, vmid: u64) -> Result<Option<Vec<Interface>>, PveError> {
        self.get(&format!("/nodes/{node}/lxc/{vmid}/interfaces"), vec![]).await
    }

    /// `POST /nodes/{node}/lxc/{vmid}/vncproxy` with `websocket=1`.
    pub async fn lxc_vncproxy(&self, node: &str, vmid: u64) -> Result<ConsoleTicket, PveError> {
        self.write(Method::POST, &format!("/nodes/{node}/lxc/{vmid}/vncproxy"), q(&[("websocket", "1".into())])).await
    }

    /// `POST /nodes/{node}/lxc/{vmid}/termproxy`.
    pub async fn lxc_termproxy(&self, node: &str, vmid: u64) -> Result<ConsoleTicket, PveError> {
        self.write(Method::POST, &format!("/nodes/{node}/lxc/{vmid}/termproxy"), vec![]).await
    }

    /// The `vncwebsocket` URL (`wss://…` or `ws://…`) to open right after vncproxy/termproxy.
    pub fn vncwebsocket_url(&self, node: &str, kind: &str, vmid: u64, ticket: &ConsoleTicket) -> String {
        let base = self.base_url().replacen("https://", "wss://", 1).replacen("http://", "ws://", 1);
        format!("{base}/nodes/{node}/{kind}/{vmid}/vncwebsocket?port={}&vncticket={}", ticket.port, enc(&ticket.ticket))
    }

    /// `GET /nodes/{node}/qemu/{vmid}/status/current`.
    pub async fn qemu_status(&self, node: &str, vmid: u64) -> Result<GuestStatus, PveError> {
        self.get(&format!("/nodes/{node}/qemu/{vmid}/status/current"), vec![]).await
    }

    /// `GET /nodes/{node}/qemu/{vmid}/config`.
    pub async fn qemu_config(&self, node: &str, vmid: u64) -> Result<GuestConfig, PveError> {
        self.get(&format!("/nodes/{node}/qemu/{vmid}/config"), vec![]).await
    }

    /// `PUT /nodes/{node}/qemu/{vmid}/config`: synchronous, no task (pve-api.md §7).
    pub async fn qemu_update_config(&self, node: &str, vmid: u64, update: &QemuConfigUpdate) -> Result<(), PveError> {
        let _: Option<serde_json::Value> =
            self.write(Method::PUT, &format!("/nodes/{node}/qemu/{vmid}/config"), params(update)?).await?;
        Ok(())
    }

    /// `GET /nodes/{node}/qemu/{vmid}/agent/network-get-interfaces`.
    pub async fn qemu_agent_interfaces(&self, node: &str, vmid: u64) -> Result<Vec<Interface>, PveError> {
        let answer: AgentInterfaces =
            self.get(&format!("/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces"), vec![]).await?;
        Ok(answer.result)
    }

    /// `POST /nodes/{node}/qemu/{vmid}/vncproxy` with `websocket=1`.
    pub async fn qemu_vncproxy(&self, node: &str, vmid: u64) -> Result<ConsoleTicket, PveError> {
        self.write(Method::POST, &format!("/nodes/{node}/qemu/{vmid}/vncproxy"), q(&[("websocket", "1".into())])).await
    }

    /// `GET /nodes/{node}/tasks?source=active`: the running tasks of type `kind` (`vzclone`, `resize`…)
    /// about guest `vmid` (for a clone, the source), that this identity may see. How a task whose UPID
    /// was lost with its answer is found again.
    pub async fn active_tasks(&self, node: &str, kind: &str, vmid: u64) -> Result<Vec<TaskListEntry>, PveError> {
        let query = q(&[
            ("source", "active".into()),
            ("typefilter", kind.to_owned()),
            ("vmid", vmid.to_string()),
            ("limit", "0".into()),
        ]);
        self.get(&format!("/nodes/{node}/tasks"), query).await
    }

    /// `GET /nodes/{node}/tasks/{upid}/status`.
    pub async fn task_status(&self, upid: &Upid) -> Result<TaskStatus, PveError> {
        self.get(&format!("/nodes/{}/tasks/{}/status", upid.node, enc(upid.as_str())), vec![]).await
    }

    /// `GET /nodes/{node}/tasks/{upid}/log`; `limit` 0 means all lines (pve-api.md §4.4).
    pub async fn task_log(&self, upid: &Upid, start: u64, limit: u64) -> Result<Vec<TaskLogLine>, PveError> {
        let query = q(&[("start", start.to_string()), ("limit", limit.to_string())]);
        self.get(&format!("/nodes/{}/tasks/{}/log", upid.node, enc(upid.as_str())), query).await
    }

    /// `DELETE /nodes/{node}/tasks/{upid}`: stops a running task; its worker then cleans up as on any
    /// error (a clone removes its target and releases both locks, pve-api.md §4.5, §6.2).
    pub async fn stop_task(&self, upid: &Upid) -> Result<(), PveError> {
        let path = format!("/nodes/{}/tasks/{}", upid.node, enc(upid.as_str()));
        let _: Option<serde_json::Value> = self.write(Method::DELETE, &path, vec![]).await?;
        Ok(())
    }

    /// `GET /pools`.
    pub async fn pools(&self) -> Result<Vec<Pool>, PveError> {
        self.get("/pools", vec![]).await
    }

    /// `GET /nodes/{node}/storage`, optionally only storages holding `content` (e.g. `rootdir`).
    pub async fn storage(&self, node: &str, content: Option<&str>) -> Result<Vec<Storage>, PveError> {
        let query = content.map(|c| q(&[("content", c.to_owned())])).unwrap_or_default();
        self.get(&format!("/nodes/{node}/storage"), query).await
    }

    /// `GET /access/permissions`: the caller's effective privileges per ACL path.
    pub async fn permissions(&self) -> Result<Permissions, PveError> {
        self.get("/access/permissions", vec![]).await
    }
}
