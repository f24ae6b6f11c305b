//! The simulator's HTTP side: token handling, routing under `/guacamole/api`, latency, faults, counters.

use std::sync::Arc;
use std::time::Instant;

use poem::http::{Method, StatusCode};
use poem::{Endpoint, Request, Response};
use rand::RngCore;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Shared;
use super::patch::{BatchResult, Directory};
use super::state::{Fail, SimState};
use crate::integrations::guacamole::wire::{ApiError, AuthResult};

const PREFIX: &str = "/guacamole/api/";
/// `api-max-request-size`: 2 MiB by default (reference §1).
const MAX_REQUEST: usize = 2 * 1024 * 1024;

pub(super) fn endpoint(shared: Arc<Shared>) -> impl Endpoint<Output = Response> {
    poem::endpoint::make(move |req: Request| {
        let shared = shared.clone();
        async move { handle(shared, req).await }
    })
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(serde_json::to_vec(body).expect("serialisable"))
}

fn error(f: Fail) -> Response {
    let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, &ApiError::new(f.kind, &f.message))
}

fn no_content() -> Response {
    Response::builder().status(StatusCode::NO_CONTENT).finish()
}

fn decode_segment(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(req: &Request, name: &str) -> Option<String> {
    let q = req.uri().query()?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok()?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

async fn handle(shared: Arc<Shared>, mut req: Request) -> Response {
    let latency = *shared.latency.lock().expect("sim latency");
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return error(Fail::not_found(&path));
    };
    let rest = rest.trim_end_matches('/').to_owned();
    {
        let mut calls = shared.calls.lock().expect("sim calls");
        *calls.by_method.entry(method.to_string()).or_default() += 1;
        if rest == "tokens" && method == Method::POST {
            calls.logins += 1;
        } else if rest.starts_with("session/data/") && method != Method::GET && method != Method::HEAD {
            calls.writes += 1;
        }
    }
    if let Some(f) = take_fault(&shared, &method, &rest) {
        return error(f);
    }
    let body = req.take_body().into_vec().await.unwrap_or_default();
    if body.len() > MAX_REQUEST {
        return error(Fail { status: 413, kind: "BAD_REQUEST", message: "Request size exceeds the limit.".into() });
    }
    let segments: Vec<String> = rest.split('/').map(decode_segment).collect();
    let token = req.header("Guacamole-Token").map(str::to_owned).or_else(|| query_param(&req, "token"));
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (&method, segs.as_slice()) {
        (&Method::POST, ["tokens"]) => login(&shared, &body),
        (&Method::DELETE, ["tokens", t]) => {
            let mut st = shared.state.lock().expect("sim state");
            match st.sessions.remove(*t) {
                Some(_) => no_content(),
                None => error(Fail { status: 404, kind: "NOT_FOUND", message: "No such token.".into() }),
            }
        }
        (m, ["session"]) if m == Method::HEAD || m == Method::DELETE => {
            let mut st = shared.state.lock().expect("sim state");
            // The probe does not refresh the session (§1).
            match token.as_deref().and_then(|t| valid_user(&shared, &mut st, t, false)) {
                Some(_) if m == Method::DELETE => {
                    st.sessions.remove(token.as_deref().unwrap_or_default());
                    no_content()
                }
                Some(_) => no_content(),
                None => Response::builder().status(StatusCode::FORBIDDEN).finish(),
            }
        }
        (_, ["session", "data", ds, tail @ ..]) => {
            let mut st = shared.state.lock().expect("sim state");
            let Some(user) = token.as_deref().and_then(|t| valid_user(&shared, &mut st, t, true)) else {
                return error(Fail { status: 403, kind: "PERMISSION_DENIED", message: "Permission Denied.".into() });
            };
            if *ds != shared.config.data_source {
                return error(Fail {
                    status: 404,
                    kind: "NOT_FOUND",
                    message: format!("Session not associated with authentication provider \"{ds}\"."),
                });
            }
            data(&mut st, &user, &method, tail, &body)
        }
        _ => error(Fail::not_found(&rest)),
    }
}

fn take_fault(shared: &Shared, method: &Method, rest: &str) -> Option<Fail> {
    let mut faults = shared.faults.lock().expect("sim faults");
    let i = faults.iter().position(|f| {
        f.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method.as_str())) && rest.contains(&f.path_contains)
    })?;
    let status = faults[i].status;
    if let Some(t) = faults[i].times.as_mut() {
        *t = t.saturating_sub(1);
        if *t == 0 {
            faults.remove(i);
        }
    }
    let kind = match status {
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        400..=499 => "BAD_REQUEST",
        _ => "INTERNAL_ERROR",
    };
    Some(Fail { status, kind, message: format!("Injected fault ({status}).") })
}

/// The user of a live token; `touch` refreshes its idle timer.
fn valid_user(shared: &Shared, st: &mut SimState, token: &str, touch: bool) -> Option<String> {
    let timeout = shared.config.session_timeout;
    let s = st.sessions.get_mut(token)?;
    if s.last_access.elapsed() >= timeout {
        st.sessions.remove(token);
        return None;
    }
    if touch {
        s.last_access = Instant::now();
    }
    Some(s.username.clone())
}

fn login(shared: &Shared, body: &[u8]) -> Response {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let field = |n: &str| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let ban_after = shared.config.ban_after;
    let mut failed = shared.failed_logins.lock().expect("sim bans");
    if ban_after > 0 && *failed >= ban_after {
        let mut body = ApiError::new("BAD_REQUEST", "Too many failed authentication attempts.");
        body.translatable_message = Some(crate::integrations::guacamole::wire::TranslatableMessage {
            key: "LOGIN.ERROR_TOO_MANY_ATTEMPTS".into(),
            variables: None,
        });
        return json(StatusCode::TOO_MANY_REQUESTS, &body);
    }
    let mut st = shared.state.lock().expect("sim state");
    let (user, pass) = (field("username").unwrap_or_default(), field("password"));
    let ok = st.users.get(&user).is_some_and(|u| !u.disabled && u.password.is_some() && u.password == pass);
    if !ok {
        *failed += 1;
        let mut body = ApiError::new("INVALID_CREDENTIALS", "Invalid login");
        body.expected = Some(vec![
            serde_json::json!({"name": "username", "type": "USERNAME"}),
            serde_json::json!({"name": "password", "type": "PASSWORD"}),
        ]);
        return json(StatusCode::FORBIDDEN, &body);
    }
    *failed = 0;
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token = hex::encode_upper(raw);
    st.sessions.insert(token.clone(), super::state::SessionRec { username: user.clone(), last_access: Instant::now() });
    let ds = shared.config.data_source.clone();
    json(
        StatusCode::OK,
        &AuthResult {
            auth_token: token,
            username: user,
            available_data_sources: vec![ds.clone(), format!("{ds}-shared")],
            data_source: ds,
        },
    )
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(
            Response::builder()
                .status(StatusCode::BAD_REQUEST)
                .content_type("text/plain")
                .body(format!("malformed JSON: {e}")),
        )
    })
}

fn ok_or<T: Serialize>(r: Result<T, Fail>) -> Response {
    match r {
        Ok(v) => json(StatusCode::OK, &v),
        Err(f) => error(f),
    }
}

fn empty_or(r: Result<(), Fail>) -> Response {
    match r {
        Ok(()) => no_content(),
        Err(f) => error(f),
    }
}

fn batch(st: &mut SimState, dir: Directory, user: &str, body: &[u8]) -> Response {
    let patches: Vec<Value> = match parse(body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match st.patch_directory(dir, user, &patches) {
        BatchResult::Ok(r) => json(StatusCode::OK, &r),
        BatchResult::Err(status, body) => json(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), &body),
    }
}

macro_rules! body {
    ($body:expr) => {
        match parse($body) {
            Ok(v) => v,
            Err(r) => return *r,
        }
    };
}

fn data(st: &mut SimState, user: &str, method: &Method, tail: &[&str], body: &[u8]) -> Response {
    let admin = st.is_admin(user);
    match (method.as_str(), tail) {
        ("GET", ["connections"]) => {
            let map: std::collections::BTreeMap<_, _> = st
                .connections
                .values()
                .filter(|c| admin || st.has_connection(user, &c.id, "READ"))
                .map(|c| (c.id.clone(), SimState::connection_json(c)))
                .collect();
            json(StatusCode::OK, &map)
        }
        ("POST", ["connections"]) => ok_or(st.create_connection(user, &body!(body))),
        ("PATCH", ["connections"]) => batch(st, Directory::Connections, user, body),
        ("GET", ["connections", id]) => match st.connections.get(*id) {
            Some(c) if st.has_connection(user, id, "READ") => json(StatusCode::OK, &SimState::connection_json(c)),
            _ => error(Fail::not_found(id)),
        },
        ("GET", ["connections", id, "parameters"]) => match st.connections.get(*id) {
            Some(c) if st.has_connection(user, id, "UPDATE") => json(StatusCode::OK, &c.parameters),
            Some(_) => error(Fail {
                status: 403,
                kind: "PERMISSION_DENIED",
                message: "Permission to read connection parameters denied.".into(),
            }),
            None => error(Fail::not_found(id)),
        },
        ("PUT", ["connections", id]) => empty_or(st.update_connection(user, id, &body!(body))),
        ("DELETE", ["connections", id]) => empty_or(st.delete_connection(user, id)),
        ("GET", ["connectionGroups"]) => {
            let map: std::collections::BTreeMap<_, _> = st
                .groups
                .values()
                .filter(|g| admin || st.has_group(user, &g.id, "READ"))
                .map(|g| (g.id.clone(), SimState::group_json(g)))
                .collect();
            json(StatusCode::OK, &map)
        }
        ("POST", ["connectionGroups"]) => ok_or(st.create_group(user, &body!(body))),
        ("PATCH", ["connectionGroups"]) => batch(st, Directory::Groups, user, body),
        ("GET", ["connectionGroups", "ROOT"]) => json(
            StatusCode::OK,
            &serde_json::json!({"name": "ROOT", "identifier": "ROOT", "type": "ORGANIZATIONAL",
                                "activeConnections": 0, "attributes": {}}),
        ),
        ("GET", ["connectionGroups", id]) => match st.groups.get(*id) {
            Some(g) if st.has_group(user, id, "READ") => json(StatusCode::OK, &SimState::group_json(g)),
            _ => error(Fail::not_found(id)),
        },
        ("PUT", ["connectionGroups", id]) => empty_or(st.update_group(user, id, &body!(body))),
        ("DELETE", ["connectionGroups", id]) => empty_or(st.delete_group(user, id)),
        ("GET", ["users"]) => {
            let map: std::collections::BTreeMap<_, _> = st
                .users
                .values()
                .filter(|u| st.can_read_user(user, &u.username))
                .map(|u| (u.username.clone(), SimState::user_json(u)))
                .collect();
            json(StatusCode::OK, &map)
        }
        ("POST", ["users"]) => ok_or(st.create_user(user, &body!(body))),
        ("PATCH", ["users"]) => batch(st, Directory::Users, user, body),
        ("GET", ["self"]) => json(StatusCode::OK, &SimState::user_json(&st.users[user])),
        // Read through the session's own user object, so no READ on oneself is needed. The simulator has
        // no user groups, so the effective set is the direct one.
        ("GET", ["self", "permissions" | "effectivePermissions"]) => ok_or(st.own_permissions_json(user)),
        ("GET", ["users", u]) => match st.users.get(*u) {
            Some(found) if st.can_read_user(user, u) => json(StatusCode::OK, &SimState::user_json(found)),
            _ => error(Fail::not_found(u)),
        },
        ("PUT", ["users", u]) => empty_or(st.update_user(user, u, &body!(body))),
        ("DELETE", ["users", u]) => empty_or(st.delete_user(user, u)),
        ("GET", ["users", u, "permissions"]) => ok_or(st.permissions_json(user, u)),
        ("PATCH", ["users", u, "permissions"]) => {
            let patches: Vec<crate::integrations::guacamole::wire::Patch<String>> = body!(body);
            empty_or(st.patch_permissions(user, u, &patches))
        }
        _ => error(Fail::not_found(&tail.join("/"))),
    }
}
