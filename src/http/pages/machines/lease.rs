//! A machine's lease on its details page: when it expires, whether its owner was warned, and the form
//! that extends it (`POST /machines/:id/lease`): the owner within the catalog entry's policy, an admin
//! beyond it or to no expiry. A refusal answers the error page with its reason; success the details
//! page with a flash.

use minijinja::{Value, context};
use poem::web::Path;
use poem::{Response, handler, http::StatusCode};

use crate::domain::lease::{LEASE_DAYS_LIMIT, LeaseChange, LeaseStage};
use crate::http::pages::ctx::{Ctx, Form, redirect, respond};
use crate::services::{self, ServiceError};

/// The `lease` value of `machines/details.html`: `None` for a machine without expiry.
pub async fn section(ctx: &Ctx, m: &entities::machine::Model) -> Value {
    let Ok(actor) = ctx.user() else { return Value::UNDEFINED };
    let policy = services::leases::policy_of(&ctx.state.db, &ctx.state.leases, m).await.ok();
    let max_days = if actor.is_admin() { LEASE_DAYS_LIMIT } else { policy.map_or(1, |p| p.max_days) };
    let stage = LeaseStage::parse(&m.lease_stage).unwrap_or(LeaseStage::Active);
    context! {
        expires_at => m.expires_at.map(|t| t.to_rfc3339()),
        warned => stage.warned(),
        expired => stage >= LeaseStage::Stopped,
        max_days => max_days,
        default_days => policy.map_or(1, |p| p.default_days.min(max_days)),
        admin => actor.is_admin(),
    }
}

/// `POST /machines/:id/lease` with `days`, or `no_expiry` (admins).
#[handler]
pub async fn extend(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let user = ctx.user()?;
            let change = if form.checked("no_expiry") {
                LeaseChange::NoExpiry
            } else {
                LeaseChange::Days(form.get("days").trim().parse().unwrap_or(0))
            };
            let now = chrono::Utc::now();
            match services::leases::extend(&ctx.state.db, &ctx.state.leases, user, id, change, now).await {
                Ok(_) => Ok(redirect(&format!("/machines/{id}?done=lease_extended"))),
                Err(ServiceError::Invalid(errors)) => {
                    let message = errors.0.first().map_or_else(
                        || ctx.t("page.invalid"),
                        |e| {
                            let params: Vec<(&str, &str)> = e.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
                            ctx.tp(e.code, &params)
                        },
                    );
                    let status = StatusCode::UNPROCESSABLE_ENTITY;
                    Err(ctx.render_status(status, "error.html", context! { message, status => status.as_u16() }))
                }
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}
