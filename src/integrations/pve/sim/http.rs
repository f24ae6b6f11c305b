//! Request handling in pveproxy's order: `/api2/json` prefix, body rules, authentication + CSRF,
//! routing (501 otherwise), faults, node lookup, then the handler's permission and parameter checks.

use std::sync::Arc;
use std::time::Instant;

use percent_encoding::percent_decode_str;
use poem::http::Method;
use poem::{EndpointExt as _, Request, Response};
use serde_json::json;

use super::access::AccessView;
use super::auth::Caller;
use super::faults::{Endpoint, Fault};
use super::metrics;
use super::params::Params;
use super::qemu_power::{self, Power};
use super::reply::{self, ApiError};
use super::routes::route;
use super::state::GuestKind;
use super::{
    Sim, access, cluster, console, discovery, lxc, qemu, qemu_clone, qemu_config, qemu_create, qemu_destroy, snapshots,
    tasks,
};

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
    /// The user, group or role id of an `/access/…` path.
    pub item_raw: String,
    pub faults: Vec<Fault>,
    /// Access control as it stood when the request came in.
    pub access: AccessView,
}

impl Ctx {
    /// Whether the caller holds `privilege` on `path`, as PVE's `permissions()` evaluates it
    /// (pve-access.md §4); root@pam holds everything.
    pub fn allowed(&self, path: &str, privilege: &str) -> bool {
        let Some(caller) = &self.caller else { return false };
        self.access.allows(&caller.authid, path, privilege)
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
        active_user(sim, &user)?;
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
        let known = {
            let state = sim.state.lock().expect("state");
            state.access.tokens.iter().find(|t| t.id == id && t.secret == secret).cloned()
        };
        let token = known.ok_or_else(failed)?;
        if token.expire != 0 && token.expire < super::auth::now() {
            return Err(failed());
        }
        active_user(sim, token.owner())?;
        return Ok(Caller { authid: id.to_owned(), ticket: false });
    }
    Err(ApiError::auth_layer("No ticket"))
}

/// The transport layer re-checks the user on every request: it must exist, be enabled and not be
/// expired (PVE 9 answers `Authentication failed!`, PVE 8 named the reason, pve-access.md §0).
fn active_user(sim: &Sim, userid: &str) -> Result<(), ApiError> {
    let state = sim.state.lock().expect("state");
    let access = &state.access;
    let user = access.user_ref(userid).ok_or_else(|| ApiError::auth_layer("Authentication failed!"))?;
    let reason = if !user.enable {
        format!("user '{userid}' is disabled")
    } else if user.expire != 0 && user.expire < super::auth::now() {
        format!("user '{userid}' access expired")
    } else {
        return Ok(());
    };
    Err(match access.version {
        super::access::PveMajor::V8 => ApiError::auth_layer(&reason),
        super::access::PveMajor::V9 => ApiError::auth_layer("Authentication failed!"),
    })
}

/// A 401 is held back: the transport layer's by the whole delay, a handler's until the delay has
/// passed since the request came in (pve-access.md §2.4). Each request waits on its own timer.
async fn fail(sim: &Sim, e: ApiError, started: Instant) -> Response {
    if e.status == 401 {
        let wait = if e.empty_body {
            sim.cfg.auth_failure_delay
        } else {
            sim.cfg.auth_failure_delay.saturating_sub(started.elapsed())
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
    reply::error(&e)
}

/// Not part of PVE's API: the simulator's own counters and guests, for harnesses that run it as a
/// separate process (`proxdesk sim pve`). No authentication; the simulator is a test tool.
pub(crate) const STATS_PATH: &str = "/_sim/stats";

fn stats(sim: &Sim) -> Response {
    let calls: serde_json::Map<String, serde_json::Value> =
        sim.calls.snapshot().into_iter().map(|(e, n)| (e.name(), json!(n))).collect();
    let state = sim.state.lock().expect("state");
    let guests: Vec<serde_json::Value> = state
        .guests
        .values()
        .map(|g| {
            json!({"vmid": g.vmid, "node": g.node, "kind": g.kind.as_str(), "template": g.is_template(),
                "running": g.running, "lock": g.lock(), "description": g.config.get("description")})
        })
        .collect();
    let body = json!({"calls": calls, "total_calls": sim.calls.total(), "guests": guests,
        "peak_running": state.peak_running});
    Response::builder().content_type("application/json").body(body.to_string())
}

async fn handle(sim: Arc<Sim>, mut req: Request) -> Response {
    let started = Instant::now();
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
    // pveproxy exempts these from authentication: credentials sent with them are not looked at.
    let ticket_call = matches!(segs.as_slice(), ["access", "ticket"]);
    let public = (ticket_call && (method == Method::GET || method == Method::POST))
        || (matches!(segs.as_slice(), ["access", "domains"]) && method == Method::GET);
    let caller = if public {
        None
    } else {
        match authenticate(&sim, &req) {
            Ok(c) => Some(c),
            Err(e) => return fail(&sim, e, started).await,
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
    if ticket_call && method == Method::POST && token_header(&req) {
        return reply::error(&access::ticket::token_refused());
    }
    let access = access::view(&sim.state.lock().expect("state"));
    let ctx = Ctx {
        access,
        sim: sim.clone(),
        caller,
        params,
        node: route.node.unwrap_or_default(),
        kind: route.kind,
        vmid_raw: route.vmid,
        upid_raw: route.upid,
        storage_raw: route.storage,
        item_raw: route.item,
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
        E::AccessTicket => access::ticket::create(&ctx).await.map(reply::ok),
        E::AccessPermissions => access::endpoints::permissions(&ctx).map(reply::ok),
        E::AccessDomains => access::endpoints::domains(&ctx.access.cfg, &ctx.params).map(reply::ok),
        E::AccessUsers => access::users::list(&ctx).map(reply::ok),
        E::AccessUser => access::users::read(&ctx, &ctx.item_raw).map(reply::ok),
        E::AccessGroups => access::users::groups(&ctx).map(reply::ok),
        E::AccessGroup => access::users::group(&ctx, &ctx.item_raw).map(reply::ok),
        E::AccessRoles => access::endpoints::roles(&ctx).map(reply::ok),
        E::AccessRole => access::endpoints::role(&ctx, &ctx.item_raw).map(reply::ok),
        E::AccessAcl => access::endpoints::acl(&ctx).map(reply::ok),
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
        E::LxcRrdData | E::QemuRrdData => metrics::rrddata(&ctx).map(reply::ok),
        E::LxcStart => lxc::power(&ctx, "start").map(reply::ok),
        E::LxcShutdown => lxc::power(&ctx, "shutdown").map(reply::ok),
        E::LxcStop => lxc::power(&ctx, "stop").map(reply::ok),
        E::LxcReboot => lxc::power(&ctx, "reboot").map(reply::ok),
        E::LxcDelete => lxc::delete(&ctx).map(reply::ok),
        E::LxcInterfaces => lxc::interfaces(&ctx).map(reply::ok),
        E::QemuAgentInterfaces => qemu::agent_interfaces(&ctx).await.map(reply::ok),
        E::LxcVncProxy | E::QemuVncProxy => console::proxy(&ctx, false).map(reply::ok),
        E::LxcTermProxy => console::proxy(&ctx, true).map(reply::ok),
        E::LxcSnapshotList | E::QemuSnapshotList => snapshots::list(&ctx).map(reply::ok),
        E::LxcSnapshotCreate | E::QemuSnapshotCreate => snapshots::create(&ctx).map(reply::ok),
        E::LxcSnapshotRollback | E::QemuSnapshotRollback => snapshots::rollback(&ctx).map(reply::ok),
        E::LxcSnapshotDelete | E::QemuSnapshotDelete => snapshots::delete(&ctx).map(reply::ok),
        E::LxcSnapshotConfigGet | E::QemuSnapshotConfigGet => snapshots::config_get(&ctx).map(reply::ok),
        E::LxcSnapshotConfigPut | E::QemuSnapshotConfigPut => snapshots::config_put(&ctx).map(reply::ok),
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
        Err(e) => fail(&sim, e, started).await,
    }
}

/// An `Authorization: PVEAPIToken=…` header without a ticket cookie (refused on `/access/ticket`).
fn token_header(req: &Request) -> bool {
    let token = header(req, "authorization").is_some_and(|a| a.trim_start().starts_with("PVEAPIToken"));
    let cookie =
        req.headers().get_all("cookie").iter().filter_map(|v| v.to_str().ok()).any(|c| c.contains("PVEAuthCookie"));
    token && !cookie
}
