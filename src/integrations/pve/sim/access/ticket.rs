//! `POST /access/ticket` (pve-access.md §2, §7): password login per realm type in PVE's order, the
//! TOTP second factor, renewal with a ticket, and verify mode. Every failure is the same 401
//! `authentication failure` (the reason stays inside, as PVE only writes it to syslog); the padding
//! to the failure delay happens where the answer is sent.

use serde_json::{Value, json};

use super::evaluate::{AccessView, is_realm, is_userid, normalize};
use super::model::{RealmKind, SimRealm, SimUser};
use super::totp;
use crate::integrations::pve::sim::auth::now;
use crate::integrations::pve::sim::http::Ctx;
use crate::integrations::pve::sim::params::{self, Ty};
use crate::integrations::pve::sim::reply::ApiError;

/// What PVE's `eval` catches: the internal reason of a refused login.
type Refused = String;

const SCHEMA: params::Schema = &[
    ("username", Ty::Str(64), true),
    ("password", Ty::Str(usize::MAX), true),
    ("realm", Ty::Str(32), false),
    ("otp", Ty::Str(usize::MAX), false),
    ("path", Ty::Str(64), false),
    ("privs", Ty::Str(64), false),
    ("new-format", Ty::Bool, false),
    ("tfa-challenge", Ty::Str(usize::MAX), false),
];

/// The 403 of a token sent to `/access/ticket` (`allowtoken 0`).
pub(crate) fn token_refused() -> ApiError {
    ApiError::status(
        403,
        "Permission check failed (URI '/access/ticket' not available with API token, need proper ticket.)",
    )
}

fn check_schema(ctx: &Ctx) -> Result<(), ApiError> {
    params::check(&ctx.params, SCHEMA)?;
    let p = &ctx.params;
    if let Some(realm) = p.get("realm")
        && !is_realm(realm)
    {
        return Err(ApiError::param("realm", "invalid format - value does not look like a valid realm\n"));
    }
    for (have, needs) in [("path", "privs"), ("privs", "path")] {
        if p.contains_key(have) && !p.contains_key(needs) {
            return Err(ApiError::param(needs, format!("missing property required by '{have}'")));
        }
    }
    Ok(())
}

/// `lookup_username`: a case-insensitive realm maps the typed id onto the stored spelling.
fn lookup_username(ctx: &Ctx, username: String) -> Result<String, ApiError> {
    let state = ctx.sim.state.lock().expect("state");
    let access = &state.access;
    let Some((_, realm)) = username.rsplit_once('@') else { return Ok(username) };
    if access.realm_ref(realm).is_none_or(|r| r.case_sensitive) {
        return Ok(username);
    }
    let matches: Vec<&SimUser> =
        access.users.iter().filter(|u| u.userid.to_lowercase() == username.to_lowercase()).collect();
    if matches.len() > 1 {
        // Raised outside PVE's catch-all: a 500, not padded.
        return Err(ApiError::internal(format!(
            "ambiguous case insensitive match of username '{username}', cannot safely grant access!"
        )));
    }
    Ok(matches.first().map_or(username, |u| u.userid.clone()))
}

/// `check_user_enabled`: exists, enabled, not expired.
fn enabled_user(ctx: &Ctx, username: &str) -> Result<SimUser, Refused> {
    let state = ctx.sim.state.lock().expect("state");
    let user = state.access.user_ref(username).cloned().ok_or_else(|| format!("no such user ('{username}')"))?;
    if !user.enable {
        return Err(format!("user '{username}' is disabled"));
    }
    if user.expire != 0 && user.expire < now() {
        return Err(format!("user '{username}' access expired"));
    }
    Ok(user)
}

fn realm_of(ctx: &Ctx, username: &str) -> Result<SimRealm, Refused> {
    let (_, realm) = username.rsplit_once('@').ok_or("invalid user name")?;
    let state = ctx.sim.state.lock().expect("state");
    state.access.realm_ref(realm).cloned().ok_or_else(|| format!("auth domain '{realm}' does not exist"))
}

/// The realm plugin's password check (§2.3).
async fn check_password(realm: &SimRealm, user: &SimUser, password: &str) -> Result<(), Refused> {
    match realm.kind {
        RealmKind::OpenId => return Err("OpenID realm does not allow password verification.".into()),
        RealmKind::Ldap | RealmKind::Ad if realm.unreachable => {
            tokio::time::sleep(realm.connect_timeout).await;
            return Err(format!("{}: connect timed out", realm.id));
        }
        _ => {}
    }
    if password.is_empty() {
        return Err("no password".into());
    }
    match &user.password {
        Some(stored) if stored == password => Ok(()),
        Some(_) => Err("invalid credentials".into()),
        None => Err("no password set".into()),
    }
}

/// The second step: `password=totp:<code>` against the half-ticket's challenge.
fn check_second_factor(ctx: &Ctx, user: &SimUser, challenge: &str, response: &str) -> Result<(), Refused> {
    let data = ctx.sim.signer.check_tfa_ticket(challenge, &user.userid).ok_or("no such challenge")?;
    let wants_totp = serde_json::from_str::<Value>(&data).ok().is_some_and(|c| c["totp"] == json!(true));
    let code = response.strip_prefix("totp:").ok_or("bad otp response")?;
    let secret = user.totp.as_deref().filter(|_| wants_totp).ok_or("no such challenge")?;
    if totp::verify(secret, code, now()) { Ok(()) } else { Err("failed 2nd factor".into()) }
}

/// `authenticate_user`: the realm's check, then whether a second factor is due (its challenge).
async fn authenticate(ctx: &Ctx, username: &str, password: &str, otp: Option<&str>) -> Result<Option<String>, Refused> {
    if !is_userid(username) {
        return Err(format!("value '{username}' does not look like a valid user name"));
    }
    let user = enabled_user(ctx, username)?;
    let realm = realm_of(ctx, username)?;
    if let Some(challenge) = ctx.params.get("tfa-challenge") {
        check_second_factor(ctx, &user, challenge, password)?;
        return Ok(None);
    }
    check_password(&realm, &user, password).await?;
    match (&user.totp, realm.tfa.as_deref()) {
        (Some(_), _) => Ok(Some(r#"{"totp":true}"#.to_owned())),
        (None, Some(_)) => Err("missing required 2nd keys".into()),
        (None, None) if otp.is_some() => Err("no such challenge".into()),
        (None, None) => Ok(None),
    }
}

/// `POST /access/ticket`.
pub(crate) async fn create(ctx: &Ctx) -> Result<Value, ApiError> {
    check_schema(ctx)?;
    let p = &ctx.params;
    let mut username = p["username"].clone();
    if let Some(realm) = p.get("realm") {
        username = format!("{username}@{realm}");
    }
    let username = lookup_username(ctx, username)?;
    let refused = |_reason: Refused| ApiError::status(401, "authentication failure");
    enabled_user(ctx, &username).map_err(refused)?;
    let password = p["password"].as_str();
    let mut answer = if let (Some(path), Some(privs)) = (p.get("path"), p.get("privs")) {
        verify(ctx, &username, password, path, privs).await.map_err(refused)?
    } else {
        issue(ctx, &username, password).await.map_err(refused)?
    };
    let view = super::view(&ctx.sim.state.lock().expect("state"));
    if answer.get("NeedTFA").is_none() {
        answer["cap"] = view.cap(&username);
    }
    if view.allows(&username, "/", "Sys.Audit") {
        answer["clustername"] = json!("proxdesk-sim");
    }
    Ok(answer)
}

/// `create_ticket_do`: renewal with a ticket (own, or root@pam's), else a full login.
async fn issue(ctx: &Ctx, username: &str, password: &str) -> Result<Value, Refused> {
    let otp = ctx.params.get("otp").map(String::as_str);
    if otp.is_some() && ctx.params.contains_key("tfa-challenge") {
        return Err("TFA response should be in 'password', not 'otp' when 'tfa-challenge' is set".into());
    }
    let renewal = !ctx.params.contains_key("tfa-challenge")
        && ctx.sim.signer.check_ticket(password).is_some_and(|u| u == "root@pam" || u == username);
    let challenge = if renewal { None } else { authenticate(ctx, username, password, otp).await? };
    let t = now();
    let signer = &ctx.sim.signer;
    Ok(match challenge {
        Some(c) => json!({
            "username": username, "ticket": signer.tfa_ticket(username, &c, t),
            "CSRFPreventionToken": signer.csrf(username, t), "NeedTFA": 1,
        }),
        None => json!({
            "username": username, "ticket": signer.ticket(username, t),
            "CSRFPreventionToken": signer.csrf(username, t),
        }),
    })
}

/// `verify_auth` (§2.7): password or ticket, no second factor, every listed privilege on the path.
async fn verify(ctx: &Ctx, username: &str, password: &str, path: &str, privs: &str) -> Result<Value, Refused> {
    let valid_path = path.chars().all(|c| c.is_alphanumeric() || "._-/".contains(c));
    if !valid_path {
        return Err(format!("invalid path - {path}"));
    }
    let by_ticket = ctx.sim.signer.check_ticket(password).is_some_and(|u| u == username);
    if !by_ticket {
        if !is_userid(username) {
            return Err(format!("value '{username}' does not look like a valid user name"));
        }
        let user = enabled_user(ctx, username)?;
        check_password(&realm_of(ctx, username)?, &user, password).await?;
    }
    let path = normalize(path);
    let list: Vec<&str> = privs.split([',', ';', ' ']).filter(|p| !p.is_empty()).collect();
    let view: AccessView = super::view(&ctx.sim.state.lock().expect("state"));
    let have = view.permissions(username, &path);
    if list.is_empty() || !list.iter().all(|p| have.contains_key(*p)) {
        return Err(format!("no permission ({path}, {privs})"));
    }
    Ok(json!({ "username": username }))
}
