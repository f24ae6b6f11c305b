//! `GET /access/users`, `/access/users/{userid}`, `/access/groups`, `/access/groups/{groupid}`
//! (pve-access.md §3): who may see whom, and the shapes PVE answers with.

use serde_json::{Map, Value, json};

use super::evaluate::{AccessView, is_userid};
use super::model::{SimToken, SimUser};
use crate::integrations::pve::sim::http::Ctx;
use crate::integrations::pve::sim::params::{self, Ty};
use crate::integrations::pve::sim::reply::ApiError;

const USER_PRIVS: [&str; 2] = ["User.Modify", "Sys.Audit"];

fn any(view: &AccessView, authid: &str, path: &str, privs: &[&str]) -> bool {
    let have = view.permissions(authid, path);
    privs.iter().any(|p| have.contains_key(*p))
}

/// `filter_groups` + `group_member_join`: members of the groups the caller holds one of `privs` on.
fn members_of_visible_groups(view: &AccessView, authid: &str, privs: &[&str]) -> Vec<String> {
    view.cfg
        .groups
        .iter()
        .filter(|g| any(view, authid, &format!("/access/groups/{}", g.id), privs))
        .flat_map(|g| g.members.iter().cloned())
        .collect()
}

fn groups_of(view: &AccessView, userid: &str) -> Vec<String> {
    let mut ids: Vec<String> =
        view.cfg.groups.iter().filter(|g| g.members.iter().any(|m| m == userid)).map(|g| g.id.clone()).collect();
    ids.sort();
    ids
}

fn tokens_of<'a>(view: &'a AccessView, userid: &str) -> Vec<&'a SimToken> {
    let mut tokens: Vec<&SimToken> = view.cfg.tokens.iter().filter(|t| t.owner() == userid).collect();
    tokens.sort_by(|a, b| a.id.cmp(&b.id));
    tokens
}

fn token_data(t: &SimToken) -> Value {
    let mut v = json!({"expire": t.expire, "privsep": u8::from(t.privsep)});
    if let Some(c) = &t.comment {
        v["comment"] = json!(c);
    }
    v
}

/// `$extract_user_data` without the full part: `enable`, `expire` always, the rest when set.
fn user_data(u: &SimUser) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("enable".into(), json!(u8::from(u.enable)));
    m.insert("expire".into(), json!(u.expire));
    for (key, value) in
        [("firstname", &u.firstname), ("lastname", &u.lastname), ("email", &u.email), ("comment", &u.comment)]
    {
        if let Some(v) = value {
            m.insert(key.into(), json!(v));
        }
    }
    m
}

/// `GET /access/users`.
pub(crate) fn list(ctx: &Ctx) -> Result<Value, ApiError> {
    params::check(&ctx.params, &[("enabled", Ty::Bool, false), ("full", Ty::Bool, false)])?;
    let (view, me) = (&ctx.access, ctx.authid());
    let full = ctx.params.get("full").is_some_and(|v| v == "1");
    let enabled = ctx.params.get("enabled").map(|v| v == "1");
    let all = any(view, &me, "/access/groups", &USER_PRIVS);
    let allowed = members_of_visible_groups(view, &me, &USER_PRIVS);
    let mut users: Vec<&SimUser> = view.cfg.users.iter().collect();
    users.sort_by(|a, b| a.userid.cmp(&b.userid));
    let mut out = vec![];
    for u in users {
        if !(all || u.userid == me || allowed.contains(&u.userid)) || enabled.is_some_and(|e| e != u.enable) {
            continue;
        }
        let mut entry = user_data(u);
        if full {
            entry.insert("groups".into(), json!(groups_of(view, &u.userid).join(",")));
            let tokens = tokens_of(view, &u.userid);
            let list: Vec<Value> = tokens
                .iter()
                .map(|t| {
                    let mut v = token_data(t);
                    v["tokenid"] = json!(t.id.split_once('!').map_or("", |(_, n)| n));
                    v
                })
                .collect();
            entry.insert("tokens".into(), if list.is_empty() { Value::Null } else { json!(list) });
        }
        let realm = u.userid.rsplit_once('@').map_or("", |(_, r)| r);
        if let Some(r) = view.cfg.realm_ref(realm) {
            entry.insert("realm-type".into(), json!(r.kind.as_str()));
        }
        entry.insert("userid".into(), json!(u.userid));
        out.push(Value::Object(entry));
    }
    Ok(Value::Array(out))
}

/// `GET /access/users/{userid}`: the `userid-group` check looks the user up first (500 for unknown
/// or malformed ids, except for root@pam who skips checks), then needs `User.Modify`/`Sys.Audit` on
/// `/access/groups` or on a group of the user — also for one's own record.
pub(crate) fn read(ctx: &Ctx, userid: &str) -> Result<Value, ApiError> {
    let (view, me) = (&ctx.access, ctx.authid());
    let root = me == "root@pam";
    if !root {
        if !is_userid(userid) {
            return Err(ApiError::internal(format!("value '{userid}' does not look like a valid user name")));
        }
        if view.cfg.user_ref(userid).is_none() {
            return Err(ApiError::internal(format!("no such user ('{userid}')")));
        }
        let may = any(view, &me, "/access/groups", &USER_PRIVS)
            || members_of_visible_groups(view, &me, &USER_PRIVS).iter().any(|m| m == userid);
        if !may {
            return Err(ApiError::status(403, "Permission check failed"));
        }
    }
    params::check(&ctx.params, &[])?;
    if !is_userid(userid) {
        return Err(ApiError::param("userid", "invalid format - value does not look like a valid user name\n"));
    }
    let user = view.cfg.user_ref(userid).ok_or_else(|| ApiError::internal(format!("no such user ('{userid}')")))?;
    let mut entry = user_data(user);
    entry.insert("groups".into(), json!(groups_of(view, userid)));
    let tokens: Map<String, Value> = tokens_of(view, userid)
        .into_iter()
        .map(|t| (t.id.split_once('!').map_or("", |(_, n)| n).to_owned(), token_data(t)))
        .collect();
    entry.insert("tokens".into(), if tokens.is_empty() { Value::Null } else { Value::Object(tokens) });
    Ok(Value::Object(entry))
}

/// `GET /access/groups`: groups the caller holds `User.Modify`, `Sys.Audit` or `Group.Allocate` on.
pub(crate) fn groups(ctx: &Ctx) -> Result<Value, ApiError> {
    params::check(&ctx.params, &[])?;
    let (view, me) = (&ctx.access, ctx.authid());
    let privs = ["User.Modify", "Sys.Audit", "Group.Allocate"];
    Ok(view
        .cfg
        .groups
        .iter()
        .filter(|g| any(view, &me, &format!("/access/groups/{}", g.id), &privs))
        .map(|g| {
            let mut members = g.members.clone();
            members.sort();
            let mut v = json!({"groupid": g.id, "users": members.join(",")});
            if let Some(c) = &g.comment {
                v["comment"] = json!(c);
            }
            v
        })
        .collect())
}

/// `GET /access/groups/{groupid}`: `Sys.Audit` or `Group.Allocate` on `/access/groups` itself.
pub(crate) fn group(ctx: &Ctx, id: &str) -> Result<Value, ApiError> {
    ctx.require("/access/groups", &["Sys.Audit", "Group.Allocate"])?;
    params::check(&ctx.params, &[])?;
    let group = ctx
        .access
        .cfg
        .groups
        .iter()
        .find(|g| g.id == id)
        .ok_or_else(|| ApiError::internal(format!("group '{id}' does not exist")))?;
    let mut v = json!({"members": group.members});
    if let Some(c) = &group.comment {
        v["comment"] = json!(c);
    }
    Ok(v)
}
