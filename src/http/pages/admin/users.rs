//! Accounts: the list (search, keyset paging) with a new-user form, and each user's page with their
//! quota override, disable/enable and password reset (both confirmed), and the outside identities it
//! signs in with (`identities`).

use std::collections::BTreeMap;

use minijinja::{Value, context};
use poem::web::{Path, Query};
use poem::{Response, handler, http::StatusCode};
use serde::Deserialize;

use crate::domain::FieldErrors;
use crate::domain::quota::{Quota, QuotaOverride};
use crate::domain::roles::Role;
use crate::http::pages::ctx::{Ctx, Form, PageResult, optional_number, redirect, respond, urlencode};
use crate::http::pages::requests::{Flash, flash};
use crate::secrets::Secret;
use crate::services::{self, ServiceError};

#[derive(Deserialize, Default)]
pub struct UsersQuery {
    q: Option<String>,
    cursor: Option<i64>,
    done: Option<String>,
}

/// A role's quota from the list of every role's.
fn role_base(roles: &[(Role, Quota)], role: Role) -> Quota {
    let none = Quota { max_machines: 0, max_cores: 0, max_memory_mib: 0, max_disk_gib: 0 };
    roles.iter().find(|(r, _)| *r == role).map_or(none, |(_, q)| *q)
}

fn quota_view(q: &Quota) -> Value {
    context! { machines => q.max_machines, cores => q.max_cores, memory_mib => q.max_memory_mib, disk_gib => q.max_disk_gib }
}

#[handler]
pub async fn users(ctx: Ctx, Query(q): Query<UsersQuery>) -> Response {
    let notice = flash(&ctx, &Flash { done: q.done.clone() });
    respond(users_page(&ctx, &q, notice, None, BTreeMap::new(), FieldErrors::default()).await)
}

/// The users page; `secret` shows a new account's password once, `form`/`errors` refill the new-user
/// form.
async fn users_page(
    ctx: &Ctx,
    q: &UsersQuery,
    notice: Option<String>,
    secret: Option<Value>,
    form: BTreeMap<String, String>,
    errors: FieldErrors,
) -> PageResult {
    let admin = ctx.admin()?;
    let db = &ctx.state.db;
    let err = |e| ctx.service_error(&e);
    let page =
        services::users::list(db, admin, q.q.as_deref().map(str::trim), q.cursor, Some(50)).await.map_err(err)?;
    let roles = services::quotas::role_quotas(db).await.map_err(err)?;
    let mut rows = Vec::new();
    for u in &page.items {
        let o = services::quotas::user_override(db, u.id).await.map_err(err)?;
        let role = Role::parse(&u.role).unwrap_or(Role::User);
        let base = role_base(&roles, role);
        rows.push(context! {
            id => u.id, username => u.username.clone(), role => u.role.clone(), disabled => u.disabled,
            created_at => u.created_at.to_rfc3339(), quota => quota_view(&base.with_override(o)), overridden => o != QuotaOverride::default(),
        });
    }
    let keep = format!("q={}", urlencode(q.q.as_deref().unwrap_or("")));
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(ctx.render_status(
        status,
        "admin/users.html",
        context! {
            flash => notice,
            users => rows,
            next => page.next_cursor.map(|c| format!("/admin/users?{keep}&cursor={c}")),
            first => q.cursor.map(|_| format!("/admin/users?{keep}")),
            q => q.q.clone(),
            secret => secret,
            form => form,
            roles => [("user", ctx.t("role.user")), ("admin", ctx.t("role.admin"))].iter().map(|(v, t)| context! { value => *v, text => t }).collect::<Vec<_>>(),
            errors => ctx.field_errors(&errors),
        },
    ))
}

#[tracing::instrument(skip_all)]
#[handler]
pub async fn create_user(ctx: Ctx, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let role = if form.get("role") == "admin" { Role::Admin } else { Role::User };
            let password = Some(form.get("password")).filter(|p| !p.is_empty()).map(|p| Secret::new(p.to_owned()));
            let new = services::users::NewUser { username: form.get("username").to_owned(), role, password };
            let q = UsersQuery::default();
            match services::users::create(&ctx.state.db, Some(admin), new).await {
                Ok((user, generated)) => {
                    let secret = context! { name => user.username, id => user.id, password => generated.map(|p| p.expose().clone()) };
                    users_page(&ctx, &q, Some(ctx.t("flash.user_created")), Some(secret), BTreeMap::new(), FieldErrors::default())
                        .await
                }
                Err(ServiceError::Invalid(errors)) => {
                    let mut values = form.values();
                    values.remove("password");
                    users_page(&ctx, &q, None, None, values, errors).await
                }
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

/// A refused form of the user's page, drawn again with what was typed and what is wrong.
pub(super) enum Refill {
    Nothing,
    Quota(BTreeMap<String, String>, FieldErrors),
    Link(BTreeMap<String, String>, FieldErrors),
}

/// One user's page; `secret` shows a reset password once, `refill` redraws a refused form.
pub(super) async fn user_page(
    ctx: &Ctx,
    id: i64,
    notice: Option<String>,
    secret: Option<String>,
    refill: Refill,
) -> PageResult {
    let (quota_form, errors, link_form, link_errors) = match refill {
        Refill::Nothing => (None, FieldErrors::default(), BTreeMap::new(), FieldErrors::default()),
        Refill::Quota(form, errors) => (Some(form), errors, BTreeMap::new(), FieldErrors::default()),
        Refill::Link(form, errors) => (None, FieldErrors::default(), form, errors),
    };
    let admin = ctx.admin()?;
    let db = &ctx.state.db;
    let err = |e| ctx.service_error(&e);
    let u = services::users::get(db, admin, id).await.map_err(err)?;
    let role = Role::parse(&u.role).unwrap_or(Role::User);
    let base = role_base(&services::quotas::role_quotas(db).await.map_err(err)?, role);
    let o = services::quotas::user_override(db, id).await.map_err(err)?;
    let usage = services::quotas::usage(db, id).await.map_err(err)?;
    let form = quota_form.unwrap_or_else(|| {
        let text = |v: Option<i32>| v.map(|n| n.to_string()).unwrap_or_default();
        BTreeMap::from([
            ("max_machines".to_owned(), text(o.max_machines)),
            ("max_cores".to_owned(), text(o.max_cores)),
            ("max_memory_mib".to_owned(), text(o.max_memory_mib)),
            ("max_disk_gib".to_owned(), text(o.max_disk_gib)),
        ])
    });
    let identities = services::identities::list_for_user(db, admin, id).await.map_err(err)?;
    let groups: Vec<Value> = services::groups::list(db, admin)
        .await
        .map_err(err)?
        .into_iter()
        .filter(|g| g.members.iter().any(|(m, _)| *m == id))
        .map(|g| context! { id => g.group.id, name => g.group.name })
        .collect();
    let refused = !errors.is_empty() || !link_errors.is_empty();
    let status = if refused { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok(ctx.render_status(
        status,
        "admin/user.html",
        context! {
            flash => notice,
            u => context! {
                id => u.id, username => u.username, role => u.role, disabled => u.disabled,
                created_at => u.created_at.to_rfc3339(), language => u.language, has_password => !u.password_hash.is_empty(),
                email => u.email, display_name => u.display_name,
            },
            identities => super::identities::views(&identities),
            groups => groups,
            providers => super::identities::provider_options(ctx),
            link_form => link_form,
            link_errors => ctx.field_errors(&link_errors),
            secret => secret,
            base => quota_view(&base),
            quota => quota_view(&base.with_override(o)),
            usage => context! { machines => usage.machines, cores => usage.resources.cores, memory_mib => usage.resources.memory_mib, disk_gib => usage.resources.disk_gib },
            form => form,
            errors => ctx.field_errors(&errors),
        },
    ))
}

#[handler]
pub async fn show(ctx: Ctx, Path(id): Path<i64>, Query(q): Query<Flash>) -> Response {
    let notice = flash(&ctx, &q);
    respond(user_page(&ctx, id, notice, None, Refill::Nothing).await)
}

async fn set_disabled(ctx: &Ctx, id: i64, form: &Form, disabled: bool) -> PageResult {
    let admin = ctx.admin()?;
    let page = format!("/admin/users/{id}");
    if disabled && !form.confirmed() {
        let u = services::users::get(&ctx.state.db, admin, id).await.map_err(|e| ctx.service_error(&e))?;
        let question = ctx.tp("users.disable_confirm", &[("name", &u.username)]);
        return Ok(ctx.confirm_page(&question, &format!("{page}/disable"), form, &page));
    }
    match services::users::set_disabled(&ctx.state.db, admin, id, disabled).await {
        Ok(()) => Ok(redirect(&format!("{page}?done={}", if disabled { "user_disabled" } else { "user_enabled" }))),
        Err(e) => Err(ctx.service_error(&e)),
    }
}

#[tracing::instrument(skip_all, fields(id))]
#[handler]
pub async fn disable_user(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(set_disabled(&ctx, id, &form, true).await)
}

#[tracing::instrument(skip_all, fields(id))]
#[handler]
pub async fn enable_user(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(set_disabled(&ctx, id, &form, false).await)
}

#[tracing::instrument(skip_all, fields(id))]
#[handler]
pub async fn reset_password(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let db = &ctx.state.db;
            let user = services::users::get(db, admin, id).await.map_err(|e| ctx.service_error(&e))?;
            if !form.confirmed() {
                let question = ctx.tp("users.reset_confirm", &[("name", &user.username)]);
                let page = format!("/admin/users/{id}");
                return Ok(ctx.confirm_page(&question, &format!("{page}/reset-password"), &form, &page));
            }
            let pw = services::users::reset_password(db, admin, id).await.map_err(|e| ctx.service_error(&e))?;
            let notice = Some(ctx.t("flash.password_reset"));
            user_page(&ctx, id, notice, Some(pw.expose().clone()), Refill::Nothing).await
        }
        .await,
    )
}

#[tracing::instrument(skip_all, fields(id))]
#[handler]
pub async fn set_user_quota(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let mut errors = FieldErrors::default();
            let o = QuotaOverride {
                max_machines: optional_number(&mut errors, "max_machines", form.get("max_machines")),
                max_cores: optional_number(&mut errors, "max_cores", form.get("max_cores")),
                max_memory_mib: optional_number(&mut errors, "max_memory_mib", form.get("max_memory_mib")),
                max_disk_gib: optional_number(&mut errors, "max_disk_gib", form.get("max_disk_gib")),
            };
            let res = if errors.is_empty() {
                services::quotas::set_user_override(&ctx.state.db, admin, id, o).await
            } else {
                Err(errors.into())
            };
            match res {
                Ok(()) => Ok(redirect(&format!("/admin/users/{id}?done=quota_saved"))),
                Err(ServiceError::Invalid(errors)) => {
                    user_page(&ctx, id, None, None, Refill::Quota(form.values(), errors)).await
                }
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}
