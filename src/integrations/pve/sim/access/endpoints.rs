//! `GET /access/domains`, `/access/permissions`, `/access/roles`, `/access/roles/{roleid}` and
//! `/access/acl` (pve-access.md §1.1, §3.4, §5).

use serde_json::{Value, json};

use super::evaluate::{is_userid, normalize, split_token};
use super::model::{AccessConfig, AclSubject, SimRealm};
use crate::integrations::pve::sim::http::Ctx;
use crate::integrations::pve::sim::params::{self, Ty};
use crate::integrations::pve::sim::reply::ApiError;

/// Perl hash order stands for "unsorted": a fixed scramble of the ids, never alphabetical on purpose.
fn scramble(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

fn default_comment(realm: &SimRealm) -> Option<&str> {
    match (realm.comment.as_deref(), realm.id.as_str()) {
        (Some(c), _) if !c.is_empty() => Some(c),
        (_, "pam") => Some("Linux PAM standard authentication"),
        (_, "pve") => Some("Proxmox VE authentication server"),
        _ => None,
    }
}

/// `GET /access/domains`: no authentication (credentials are not even looked at), unsorted.
pub(crate) fn domains(access: &AccessConfig, params: &params::Params) -> Result<Value, ApiError> {
    params::check(params, &[])?;
    let mut realms: Vec<&SimRealm> = access.realms.iter().collect();
    realms.sort_by_key(|r| scramble(&r.id));
    // Several realms marked default: the parser keeps the marker on one of them.
    let default = realms.iter().find(|r| r.default).map(|r| r.id.clone());
    Ok(realms
        .into_iter()
        .map(|r| {
            let mut v = json!({"realm": r.id, "type": r.kind.as_str()});
            if let Some(c) = default_comment(r) {
                v["comment"] = json!(c);
            }
            if default.as_deref() == Some(r.id.as_str()) {
                v["default"] = json!(1);
            }
            if let Some(t) = &r.tfa {
                v["tfa"] = json!(t);
            }
            v
        })
        .collect())
}

/// `GET /access/permissions`: one's own (or one's own tokens') freely, anyone's with `Sys.Audit`
/// on `/access`; with `path` exactly that path as sent, else the candidate paths with privileges.
pub(crate) fn permissions(ctx: &Ctx) -> Result<Value, ApiError> {
    params::check(&ctx.params, &[("userid", Ty::Str(usize::MAX), false), ("path", Ty::Str(usize::MAX), false)])?;
    let me = ctx.authid();
    let target = match ctx.params.get("userid") {
        Some(id) if is_userid(id) || split_token(id).is_some() => id.clone(),
        Some(_) => return Err(ApiError::param("userid", "value does not match the regex pattern")),
        None => me.clone(),
    };
    let own_token =
        ctx.caller.as_ref().is_some_and(|c| c.ticket) && split_token(&target).is_some_and(|(owner, _)| owner == me);
    if target != me && !own_token {
        ctx.require("/access", &["Sys.Audit"])?;
    }
    let view = &ctx.access;
    Ok(match ctx.params.get("path") {
        Some(path) => {
            let mut one = serde_json::Map::new();
            one.insert(path.clone(), json!(view.permissions(&target, path)));
            Value::Object(one)
        }
        None => json!(view.effective(&target)),
    })
}

/// `GET /access/roles`: every role, privileges sorted and comma-joined, unsorted list.
pub(crate) fn roles(ctx: &Ctx) -> Result<Value, ApiError> {
    params::check(&ctx.params, &[])?;
    let view = &ctx.access;
    let mut ids: Vec<&String> = view.all_roles().keys().collect();
    ids.sort_by_key(|id| scramble(id));
    Ok(ids
        .into_iter()
        .map(|id| {
            let privs: Vec<&str> = view.all_roles()[id].iter().map(String::as_str).collect();
            let special = super::roles::is_builtin(view.cfg.version, id);
            json!({"roleid": id, "privs": privs.join(","), "special": u8::from(special)})
        })
        .collect())
}

/// `GET /access/roles/{roleid}`: privilege → 1.
pub(crate) fn role(ctx: &Ctx, id: &str) -> Result<Value, ApiError> {
    params::check(&ctx.params, &[])?;
    let privs = ctx.access.role(id).ok_or_else(|| ApiError::internal(format!("role '{id}' does not exist")))?;
    Ok(Value::Object(privs.iter().map(|p| (p.clone(), json!(1))).collect()))
}

/// `GET /access/acl`: all entries with `Sys.Audit` on `/access`, else those on paths where the
/// caller could change permissions.
pub(crate) fn acl(ctx: &Ctx) -> Result<Value, ApiError> {
    params::check(&ctx.params, &[])?;
    let (view, me) = (&ctx.access, ctx.authid());
    let auditor = view.allows(&me, "/access", "Sys.Audit");
    let may_modify = |path: &str| {
        let have = view.permissions(&me, path);
        let special = match path.split('/').nth(1) {
            Some("vms") => "VM.Allocate",
            Some("storage") => "Datastore.Allocate",
            Some("pool") => "Pool.Allocate",
            _ => "Permissions.Modify",
        };
        have.contains_key("Permissions.Modify") || have.contains_key(special)
    };
    let mut entries: Vec<(String, Value)> = view
        .cfg
        .acl
        .iter()
        .filter(|e| !matches!(&e.subject, AclSubject::Token(t) if !view.cfg.tokens.iter().any(|k| &k.id == t)))
        .map(|e| (normalize(&e.path), e))
        .filter(|(path, _)| auditor || may_modify(path))
        .map(|(path, e)| {
            let (kind, ugid) = match &e.subject {
                AclSubject::User(u) => ("user", u),
                AclSubject::Group(g) => ("group", g),
                AclSubject::Token(t) => ("token", t),
            };
            let v = json!({"path": path, "type": kind, "ugid": ugid, "roleid": e.role,
                           "propagate": u8::from(e.propagate)});
            (path, v)
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Value::Array(entries.into_iter().map(|(_, v)| v).collect()))
}
