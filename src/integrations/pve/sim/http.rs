//! Request handling in pveproxy's order: `/api2/json` prefix, body rules, authentication + CSRF,
//! routing (501 otherwise), faults, node lookup, then the handler's permission and parameter checks.

use std::sync::Arc;

use percent_encoding::percent_decode_str;
use poem::http::Method;
use poem::{EndpointExt as _, Request, Response};
use serde_json::json;

use super::auth::{Caller, acl_allows};
use super::faults::{Endpoint, Fault};
use super::params::Params;
use super::qemu_power::{self, Power};
use super::reply::{self, ApiError};
use super::routes::route;
use super::state::GuestKind;
use super::{Sim, cluster, console, discovery, lxc, qemu, qemu_clone, qemu_config, qemu_create, qemu_destroy, tasks};

/// Everything a handler needs about one request.
pub(crate) struct Ctx {
    pub sim: Arc<Sim>,
    pub caller: Option<Caller>,
    pub params: Params,
    pub node: String,
    pub kind: GuestKind,
    pub vmid_raw: String,
    pub upid_raw: String,
    /// The `{storage}` path parameter.
    pub storage_raw: String,
    pub faults: Vec<Fault>,
}

impl Ctx {
    /// Whether the caller holds `privilege` on `path`; root@pam tickets hold everything (pve-api.md §2.4).
    pub fn allowed(&self, path: &str, privilege: &str) -> bool {
        let Some(caller) = &self.caller else { return false };
        if caller.ticket && caller.authid == "root@pam" {
            return true;
        }
        self.sim.identity(&caller.authid).is_some_and(|i| acl_allows(&i.acl, path, privilege))
    }

    /// 403 unless the caller holds any of `privs` on `path` (message joins them with `|`).
    pub fn require(&self, path: &str, privs: &[&str]) -> Result<(), ApiError> {
        if privs.iter().any(|p| self.allowed(path, p)) {
            Ok(())
        } else {
            Err(ApiError::forbidden(path, &privs.join("|")))
        }
    }

    /// The authid of the caller (handlers behind authentication always have one).
    pub fn authid(&self) -> String {
        self.caller.as_ref().map(|c| c.authid.clone()).unwrap_or_default()
    }

    /// The `{vmid}` path parameter, validated like PVE (400 on the `vmid` key).
    pub fn vmid(&self) -> Result<u64, ApiError> {
        let p = Params::from([("vmid".to_owned(), self.vmid_raw.clone())]);
        super::params::check(&p, &[("vmid", super::params::Ty::Vmid, true)])?;
        Ok(self.vmid_raw.parse().expect("checked"))
    }
}

pub(crate) fn app(sim: Arc<Sim>) -> impl poem::Endpoint<Output = Response> {
    poem::endpoint::make(move |req: Request| handle(sim.clone(), req)).map_to_response()
}

/// Query, then form or JSON body; the query overrides the body (pve-api.md §1).
fn parse_params(query: &str, body: &[u8], json_body: bool) -> Result<Params, ApiError> {
    let mut params = Params::new();
    if json_body && !body.is_empty() {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| ApiError::status(400, format!("unable to parse JSON: {e}")))?;
        for (k, v) in value.as_object().cloned().unwrap_or_default() {
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Bool(b) => u8::from(b).to_string(),
                other => other.to_string(),
            };
            params.insert(k, text);
        }
    } else if !body.is_empty() {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        params.extend(pairs);
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    params.extend(pairs);
    params.remove("_dc");
    Ok(params)
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// pveproxy's credential lookup: cookie, `Authorization: PVEAuthCookie=`, then `PVEAPIToken=` (§2.3).
fn authenticate(sim: &Sim, req: &Request) -> Result<Caller, ApiError> {
    let value_after = |text: &str, key: &str| -> Option<String> {
        let rest = text.trim_start().strip_prefix(key)?;
        let rest = rest.strip_prefix(['=', ' '])?;
        let value = rest.split(';').next().unwrap_or_default();
        Some(percent_decode_str(value).decode_utf8_lossy().into_owned())
    };
    let cookie = req
        .headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| value_after(c, "PVEAuthCookie"));
    let authorization = header(req, "authorization").unwrap_or_default();
    let ticket = cookie.or_else(|| value_after(authorization, "PVEAuthCookie"));
    let failed = || ApiError::auth_layer("Authentication failed!");
    if let Some(ticket) = ticket {
        let user = sim.signer.check_ticket(&ticket).ok_or_else(failed)?;
        if user != "root@pam" && sim.identity(&user).is_none() {
            return Err(failed());
        }
        if req.method() != Method::GET {
            let csrf = header(req, "CSRFPreventionToken").unwrap_or_default();
            if !sim.signer.check_csrf(&user, csrf) {
                return Err(ApiError::auth_layer("Permission denied - invalid csrf token"));
            }
        }
        return Ok(Caller { authid: user, ticket: true });
    }
    if let Some(token) = value_after(authorization, "PVEAPIToken") {
        // The secret follows the last `=` (pve-api.md §2.4).
        let (id, secret) = token.rsplit_once('=').ok_or_else(failed)?;
        let known = sim.identity(id).filter(|i| i.authid.contains('!') && i.secret == secret);
        return known.map(|_| Caller { authid: id.to_owned(), ticket: false }).ok_or_else(failed);
    }
    Err(ApiError::auth_layer("No ticket"))
}

async fn fail(sim: &Sim, e: ApiError) -> Response {
    if e.status == 401 && !sim.cfg.auth_failure_delay.is_zero() {
        tokio::time::sleep(sim.cfg.auth_failure_delay).await;
    }
    reply::error(&e)
}

/// Not part of PVE's API: the simulator's own counters and guests, for harnesses that run it as a
/// separate process (`proxdesk sim pve`). No authentication; the simulator is a test tool.
pub(crate) const STATS_PATH: &str = "/_sim/stats";

fn stats(sim: &Sim) -> Response {
    let calls: serde_json::Map<String, serde_json::Value> =
        sim.calls.snapshot().into_iter().map(|(e, n)| (e.name(), json!(n))).collect();
    let guests: Vec<serde_json::Value> = sim
        .state
        .lock()
        .expect("state")
        .guests
        .values()
        .map(|g| {
            json!({"vmid": g.vmid, "node": g.node, "kind": g.kind.as_str(), "template": g.is_template(),
                "running": g.running, "lock": g.lock(), "description": g.config.get("description")})
        })
        .collect();
    let body = json!({"calls": calls, "total_calls": sim.calls.total(), "guests": guests});
    Response::builder().content_type("application/json").body(body.to_string())
}

async fn handle(sim: Arc<Sim>, mut req: Request) -> Response {
    if !sim.cfg.latency.is_zero() {
        tokio::time::sleep(sim.cfg.latency).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    if method == Method::GET && path == STATS_PATH {
        return stats(&sim);
    }
    let rest = match path.strip_prefix("/api2/json") {
        Some(r) if r.is_empty() || r.starts_with('/') => r.to_owned(),
        _ => return reply::error(&ApiError { empty_body: true, ..ApiError::status(501, "no such uri") }),
    };
    let decoded: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segs: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let json_body = header(&req, "content-type").is_some_and(|c| c.starts_with("application/json"));
    let query = req.uri().query().unwrap_or_default().to_owned();
    let body = req.take_body().into_bytes().await.unwrap_or_default();
    if (method == Method::GET || method == Method::DELETE) && !body.is_empty() {
        let e =
            ApiError { empty_body: true, ..ApiError::status(501, format!("Unexpected content for method '{method}'")) };
        return reply::error(&e);
    }
    let params = match parse_params(&query, &body, json_body) {
        Ok(p) => p,
        Err(e) => return reply::error(&e),
    };
    let public = matches!(segs.as_slice(), ["access", "ticket"]) && (method == Method::GET || method == Method::POST);
    let caller = if public {
        None
    } else {
        match authenticate(&sim, &req) {
            Ok(c) => Some(c),
            Err(e) => return fail(&sim, e).await,
        }
    };
    let Some(route) = route(&method, &segs) else {
        let e = ApiError::status(501, format!("Method '{method} /{}' not implemented", segs.join("/")));
        return reply::error(&e);
    };
    sim.calls.record(route.endpoint);
    let faults = sim.faults.take(route.endpoint);
    for fault in &faults {
        match fault {
            Fault::Latency(d) => tokio::time::sleep(*d).await,
            Fault::Status { code, message } => return reply::error(&ApiError::status(*code, message.clone())),
            Fault::Drop => {
                if let Some(peer) = req.remote_addr().as_socket_addr() {
                    sim.kills.kill(*peer);
                }
                return reply::error(&ApiError::status(500, "connection dropped"));
            }
            // Task faults act inside the task; the `AppliedThen…` ones once the handler has run.
            _ => {}
        }
    }
    let after = faults.iter().find(|f| f.acts_after_applying()).cloned();
    let peer = req.remote_addr().as_socket_addr().copied();
    if let Some(node) = &route.node
        && !sim.state.lock().expect("state").nodes.contains(node)
    {
        // Raised while resolving where to proxy, before any check (pve-api.md §3).
        let msg = format!(
            "hostname lookup '{node}' failed - failed to get address info for: {node}: Name or service not known"
        );
        return reply::error(&ApiError::internal(msg));
    }
    let ctx = Ctx {
        sim: sim.clone(),
        caller,
        params,
        node: route.node.unwrap_or_default(),
        kind: route.kind,
        vmid_raw: route.vmid,
        upid_raw: route.upid,
        storage_raw: route.storage,
        faults,
    };
    use Endpoint as E;
    let result = match route.endpoint {
        E::VncWebsocket => return console::websocket(ctx, req).await.unwrap_or_else(|e| reply::error(&e)),
        E::TaskList => tasks::list(&ctx).map(|(data, total)| reply::ok_with(json!({"data": data, "total": total}))),
        E::TaskLog => {
            cluster::task_log(&ctx).map(|(data, total)| reply::ok_with(json!({"data": data, "total": total})))
        }
        E::AccessTicket if method == Method::GET => Ok(reply::ok(serde_json::Value::Null)),
        E::AccessTicket => cluster::ticket(&ctx).map(reply::ok),
        E::AccessPermissions => cluster::permissions(&ctx).map(reply::ok),
        E::Version => cluster::version(&ctx).map(reply::ok),
        E::Nodes => cluster::nodes(&ctx).map(reply::ok),
        E::ClusterResources => cluster::resources(&ctx).map(reply::ok),
        E::ClusterNextId => cluster::next_id(&ctx).map(reply::ok),
        E::Pools => cluster::pools(&ctx).map(reply::ok),
        E::Storage => discovery::storage(&ctx).map(reply::ok),
        E::StorageContent => discovery::content(&ctx, &ctx.storage_raw).map(reply::ok),
        E::Network => discovery::network(&ctx).map(reply::ok),
        E::TaskStatus => cluster::task_status(&ctx).map(reply::ok),
        E::TaskStop => tasks::stop(&ctx).map(reply::ok),
        E::LxcList => lxc::list(&ctx).map(reply::ok),
        E::LxcClone => lxc::clone(&ctx).map(reply::ok),
        E::LxcConfigGet => lxc::config_get(&ctx).map(reply::ok),
        E::LxcConfigPut => lxc::config_put(&ctx).map(reply::ok),
        E::QemuList => qemu::list(&ctx).map(reply::ok),
        E::QemuCreate => qemu_create::create(&ctx).map(reply::ok),
        E::QemuClone => qemu_clone::clone(&ctx).map(reply::ok),
        E::QemuConfigGet => qemu_config::get(&ctx).map(reply::ok),
        E::QemuConfigPut => qemu_config::put(&ctx).map(reply::ok),
        E::QemuConfigPost => qemu_config::post(&ctx).await.map(reply::ok),
        E::QemuPending => qemu_config::pending(&ctx).map(reply::ok),
        E::QemuResize => qemu_destroy::resize(&ctx).map(reply::ok),
        E::QemuDelete => qemu_destroy::delete(&ctx).map(reply::ok),
        E::QemuStart => qemu_power::power(&ctx, Power::Start).map(reply::ok),
        E::QemuStop => qemu_power::power(&ctx, Power::Stop).map(reply::ok),
        E::QemuShutdown => qemu_power::power(&ctx, Power::Shutdown).map(reply::ok),
        E::QemuReboot => qemu_power::power(&ctx, Power::Reboot).map(reply::ok),
        E::QemuReset => qemu_power::power(&ctx, Power::Reset).map(reply::ok),
        E::QemuTermProxy => console::proxy(&ctx, true).map(reply::ok),
        E::LxcResize => lxc::resize(&ctx).map(reply::ok),
        E::LxcStatusCurrent | E::QemuStatusCurrent => lxc::status_current(&ctx).map(reply::ok),
        E::LxcStart => lxc::power(&ctx, "start").map(reply::ok),
        E::LxcShutdown => lxc::power(&ctx, "shutdown").map(reply::ok),
        E::LxcStop => lxc::power(&ctx, "stop").map(reply::ok),
        E::LxcReboot => lxc::power(&ctx, "reboot").map(reply::ok),
        E::LxcDelete => lxc::delete(&ctx).map(reply::ok),
        E::LxcInterfaces => lxc::interfaces(&ctx).map(reply::ok),
        E::QemuAgentInterfaces => qemu::agent_interfaces(&ctx).await.map(reply::ok),
        E::LxcVncProxy | E::QemuVncProxy => console::proxy(&ctx, false).map(reply::ok),
        E::LxcTermProxy => console::proxy(&ctx, true).map(reply::ok),
    };
    // The call took effect (or was refused); now its answer may be lost on the way back.
    match after {
        Some(Fault::AppliedThenStatus { code, message }) => {
            return reply::error(&ApiError { empty_body: true, ..ApiError::status(code, message) });
        }
        Some(Fault::AppliedThenDrop) => {
            if let Some(peer) = peer {
                sim.kills.kill(peer);
            }
            return reply::error(&ApiError::status(500, "connection dropped"));
        }
        Some(Fault::AppliedThenDelay(d)) => tokio::time::sleep(d).await,
        _ => {}
    }
    match result {
        Ok(resp) => resp,
        Err(e) => fail(&sim, e).await,
    }
}
