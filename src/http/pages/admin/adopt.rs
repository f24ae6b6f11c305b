//! `/admin/machines/adopt`: the cluster's guests proxdesk does not manage, each with a form to adopt it
//! for an owner (optionally under a catalog entry, with another name). A refused form comes back with
//! what was typed, the reason, and for a guest beyond the owner's quota, the box to adopt it anyway.

use std::collections::BTreeMap;

use minijinja::{Value, context};
use poem::web::Query;
use poem::{Response, handler, http::StatusCode};

use crate::domain::FieldErrors;
use crate::domain::guest::MachineKind;
use crate::http::pages::ctx::{Ctx, Form, PageResult, redirect, respond};
use crate::http::pages::requests::{Flash, flash};
use crate::services::adoption::{AdoptRefusal, AdoptionInput};
use crate::services::{self, ServiceError};

/// A refused form: the guest it was for, what was typed, field errors, the reason, and whether the
/// owner's quota is what stood in the way.
struct Refused<'a> {
    vmid: u64,
    form: &'a Form,
    errors: FieldErrors,
    problem: Option<String>,
    over_quota: bool,
}

#[handler]
pub async fn show(ctx: Ctx, Query(q): Query<Flash>) -> Response {
    let notice = flash(&ctx, &q);
    respond(page(&ctx, notice, None).await)
}

async fn page(ctx: &Ctx, notice: Option<String>, refused: Option<Refused<'_>>) -> PageResult {
    let admin = ctx.admin()?;
    let st = &ctx.state;
    let guests =
        services::adoption::unmanaged(&st.db, st.pve.as_ref(), admin).await.map_err(|e| ctx.service_error(&e))?;
    let entries = services::catalog::list(&st.db, admin, true).await.map_err(|e| ctx.service_error(&e))?;
    let status = match &refused {
        Some(r) if r.errors.is_empty() => StatusCode::CONFLICT,
        Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
        None => StatusCode::OK,
    };
    let rows: Vec<Value> = guests
        .into_iter()
        .map(|g| {
            let entries: Vec<Value> = entries
                .iter()
                .filter(|t| MachineKind::parse(&t.kind).map(MachineKind::guest_type) == Some(g.kind))
                .map(|t| context! { id => t.id, name => t.name.clone() })
                .collect();
            let mine = refused.as_ref().filter(|r| r.vmid == g.vmid);
            let (form, errors, over_quota) = match mine {
                Some(r) => (r.form.values(), ctx.field_errors(&r.errors), r.over_quota),
                None => (BTreeMap::new(), BTreeMap::new(), false),
            };
            context! {
                node => g.node, vmid => g.vmid, kind => g.kind.as_str(), name => g.name, status => g.status,
                tags => g.tags, cores => g.cores, memory_mib => g.memory_mib, lock => g.lock,
                entries => entries, form => form, errors => errors, over_quota => over_quota,
            }
        })
        .collect();
    let problem = refused.as_ref().and_then(|r| r.problem.clone());
    Ok(ctx.render_status(status, "admin/adopt.html", context! { flash => notice, guests => rows, problem => problem }))
}

fn input(form: &Form) -> Result<AdoptionInput, FieldErrors> {
    let mut errors = FieldErrors::default();
    let vmid = form.get("vmid").trim().parse::<u64>().ok();
    let template_id = match form.get("template_id").trim() {
        "" => None,
        t => match t.parse() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(crate::domain::FieldError::new("template_id", "error.adopt_template_unknown"));
                None
            }
        },
    };
    let Some(vmid) = vmid else {
        errors.push(crate::domain::FieldError::new("vmid", "error.not_a_number"));
        return Err(errors);
    };
    errors.into_result()?;
    Ok(AdoptionInput {
        node: form.get("node").to_owned(),
        vmid,
        kind: form.get("kind").to_owned(),
        owner: form.get("owner").to_owned(),
        template_id,
        hostname: Some(form.get("hostname").to_owned()).filter(|h| !h.trim().is_empty()),
        beyond_quota: form.get("beyond_quota") == "yes",
    })
}

/// The reason of a refusal, in the admin's language.
fn reason(ctx: &Ctx, why: &AdoptRefusal) -> String {
    match why {
        AdoptRefusal::Managed => ctx.t("adopt.refused.managed"),
        AdoptRefusal::Gone => ctx.t("adopt.refused.gone"),
        AdoptRefusal::Template => ctx.t("adopt.refused.template"),
        AdoptRefusal::Marked(_) => ctx.t("adopt.refused.marked"),
        AdoptRefusal::Locked(lock) => ctx.tp("adopt.refused.locked", &[("lock", lock.as_str())]),
        AdoptRefusal::Changed => ctx.t("adopt.refused.changed"),
        AdoptRefusal::OverQuota(_) => String::new(),
        AdoptRefusal::Pve(reason) => ctx.tp("adopt.refused.pve", &[("reason", reason.as_str())]),
    }
}

#[handler]
pub async fn adopt(ctx: Ctx, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let st = &ctx.state;
            let vmid = form.get("vmid").trim().parse::<u64>().unwrap_or_default();
            let refused = |errors, problem, over_quota| Refused { vmid, form: &form, errors, problem, over_quota };
            let input = match input(&form) {
                Ok(i) => i,
                Err(errors) => return page(&ctx, None, Some(refused(errors, None, false))).await,
            };
            let owner = input.owner.trim().to_owned();
            match services::adoption::adopt(&st.db, st.pve.as_ref(), admin, input).await {
                Ok(m) => Ok(redirect(&format!("/requests/{}?done=machine_adopted", m.request_id))),
                Err(ServiceError::Invalid(errors)) => page(&ctx, None, Some(refused(errors, None, false))).await,
                Err(ServiceError::AdoptRefused(AdoptRefusal::OverQuota(over))) => {
                    let what: Vec<String> = ctx.field_errors(&over).into_values().collect();
                    let warning =
                        ctx.tp("adopt.over_quota", &[("owner", owner.as_str()), ("what", what.join("; ").as_str())]);
                    page(&ctx, None, Some(refused(FieldErrors::default(), Some(warning), true))).await
                }
                Err(ServiceError::AdoptRefused(why)) => {
                    page(&ctx, None, Some(refused(FieldErrors::default(), Some(reason(&ctx, &why)), false))).await
                }
                Err(e) => Err(ctx.service_error(&e)),
            }
        }
        .await,
    )
}
