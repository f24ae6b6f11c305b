//! A lost machine on its request page: why it is lost, and the admin's two ways out (release,
//! re-adopt), each a CSRF-checked form whose outcome is audited by the service. The release form also
//! takes a ready machine out of proxdesk (admins only), its guest left as it is.

use minijinja::{Value, context};
use poem::web::Path;
use poem::{Response, handler, http::StatusCode};

use super::ctx::{Ctx, Form, redirect, respond};
use super::requests::{Flash, detail_page, refused};
use crate::domain::lost::LostReason;
use crate::services::{self, lost_machines::Readoption};

/// What the request page shows about a lost machine, translated; `None` when it is not lost.
pub fn view(ctx: &Ctx, m: &entities::machine::Model) -> Option<Value> {
    let reason = LostReason::parse(m.lost_reason.as_deref()?)?;
    let vmid = m.vmid.unwrap_or_default().to_string();
    let message = ctx.tp(reason.message_key(), &[("vmid", vmid.as_str()), ("node", m.node.as_str())]);
    Some(
        context! { id => m.id, reason => reason.as_str(), message => message, since => m.lost_at.map(|t| t.to_rfc3339()) },
    )
}

/// `POST /admin/machines/{id}/release`.
#[handler]
pub async fn release(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let db = &ctx.state.db;
            let m = services::machines::get(db, admin, id).await.map_err(|e| ctx.service_error(&e))?;
            if !form.confirmed() {
                let (action, back) = (format!("/admin/machines/{id}/release"), format!("/requests/{}", m.request_id));
                let question = if m.lost_at.is_some() {
                    ctx.t("lost.release_confirm")
                } else {
                    format!(
                        "{} {}",
                        ctx.tp("release.title", &[("hostname", m.hostname.as_str())]),
                        ctx.t("release.explain")
                    )
                };
                return Ok(ctx.confirm_page(&question, &action, &form, &back));
            }
            // A lost machine is written off, a ready one released; neither touches PVE.
            match services::adoption::release(db, admin, id).await {
                Ok(()) => Ok(redirect(&format!("/requests/{}?done=machine_released", m.request_id))),
                Err(e) => refused(&ctx, m.request_id, &e).await,
            }
        }
        .await,
    )
}

/// `POST /admin/machines/{id}/readopt`.
#[handler]
pub async fn readopt(ctx: Ctx, Path(id): Path<i64>, _form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let db = &ctx.state.db;
            let m = services::machines::get(db, admin, id).await.map_err(|e| ctx.service_error(&e))?;
            let problem = match services::lost_machines::readopt(db, ctx.state.pve.as_ref(), admin, id).await {
                Ok(Readoption::Adopted(_)) => {
                    return Ok(redirect(&format!("/requests/{}?done=machine_readopted", m.request_id)));
                }
                Ok(Readoption::NoneFound { tag }) => ctx.tp("lost.readopt_none", &[("tag", tag.as_str())]),
                Ok(Readoption::Several(found)) => {
                    let label = match services::machines::guest_type(&m) {
                        Ok(crate::domain::guest::GuestType::Qemu) => "VM",
                        _ => "CT",
                    };
                    let list: Vec<String> = found.iter().map(|(n, v)| format!("{label} {v} ({n})")).collect();
                    ctx.tp("lost.readopt_several", &[("guests", list.join(", ").as_str())])
                }
                Err(e) => return refused(&ctx, m.request_id, &e).await,
            };
            detail_page(&ctx, m.request_id, &Flash::default(), Some((StatusCode::CONFLICT, problem))).await
        }
        .await,
    )
}
