//! Bulk actions from the machines lists: `POST /machines/bulk` (the ticked machines and one action; a
//! power off or delete asks first) starts a run, and `GET /machines/bulk/:id` shows each machine's
//! result as its job settles it, refreshed while open.

use minijinja::{Value, context};
use poem::web::Path;
use poem::{Response, handler, http::StatusCode};

use crate::domain::bulk::{BulkAction, ItemState};
use crate::http::pages::ctx::{Ctx, Form, redirect, respond};
use crate::services::{self, ServiceError, bulk};

/// Where the form came from: the owner's list or the admins' one (the only places a run starts from).
fn list_of(form: &Form) -> &'static str {
    if form.get("from") == "admin" { "/admin/machines" } else { "/machines" }
}

/// `POST /machines/bulk`.
#[handler]
pub async fn start(ctx: Ctx, form: Form) -> Response {
    respond(
        async {
            let user = ctx.user()?;
            let back = list_of(&form);
            let Some(action) = BulkAction::parse(form.get("action")) else {
                return Err(ctx.error_page(StatusCode::BAD_REQUEST, "page.invalid"));
            };
            let Some(ids) = form.ids("machine") else {
                return Err(ctx.error_page(StatusCode::BAD_REQUEST, "page.invalid"));
            };
            if ids.is_empty() {
                return Ok(redirect(&format!("{back}?bulk=none")));
            }
            if action.needs_confirmation() && !form.confirmed() {
                let count = ids.len().to_string();
                let question = ctx.tp(&format!("bulk.confirm.{}", action.as_str()), &[("count", count.as_str())]);
                return Ok(ctx.confirm_page(&question, "/machines/bulk", &form, back));
            }
            match bulk::start(&ctx.state.db, user, action, &ids).await {
                Ok(run) => Ok(redirect(&format!("/machines/bulk/{run}"))),
                Err(ServiceError::Invalid(_)) => Ok(redirect(&format!("{back}?bulk=too_many"))),
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}

/// `GET /machines/bulk/:id`: the run's page, for whoever started it and admins.
#[handler]
pub async fn show(ctx: Ctx, Path(id): Path<i64>) -> Response {
    respond(
        async {
            let user = ctx.user()?;
            let run = services::bulk::get(&ctx.state.db, user, id).await.map_err(|e| ctx.service_error(&e))?;
            let items: Vec<Value> = run.items.iter().map(|i| item(&ctx, i)).collect();
            let counts: Vec<Value> = ItemState::ALL
                .iter()
                .filter_map(|s| {
                    let n = run.count(*s);
                    (n > 0).then(|| context! { state => s.as_str(), count => n })
                })
                .collect();
            Ok(ctx.render(
                "machines/bulk.html",
                context! {
                    run => context! {
                        id => run.id, action => run.action.as_str(), finished => run.finished(),
                        created_at => run.created_at.to_rfc3339(), total => run.items.len(),
                    },
                    counts => counts,
                    items => items,
                    back => if user.is_admin() && run.user_id != user.id { "/admin/machines" } else { "/machines" },
                },
            ))
        }
        .await,
    )
}

fn item(ctx: &Ctx, i: &bulk::Item) -> Value {
    let reason = i.reason.map(|r| ctx.t(&format!("bulk.reason.{}", r.as_str())));
    context! {
        machine_id => i.machine_id,
        hostname => i.machine.as_ref().map(|m| m.hostname.clone()),
        vmid => i.machine.as_ref().and_then(|m| m.vmid),
        node => i.machine.as_ref().map(|m| m.node.clone()),
        state => i.state.as_str(),
        reason => reason,
        message => i.message.clone(),
    }
}
