//! The requester's pages: dashboard, new request, request detail, cancel.

use minijinja::context;
use poem::web::{Path, Query};
use poem::{Response, handler, http::StatusCode};
use serde::Deserialize;

use std::collections::BTreeMap;

use super::ctx::{Ctx, Form, PageResult, number, redirect, respond};
use crate::domain::FieldErrors;
use crate::services::{self, GuestRefusal, ServiceError, requests::RequestFilter};

#[derive(Deserialize, Default)]
pub struct Flash {
    pub done: Option<String>,
}

/// The flash message for `?done=<what>`, translated.
pub fn flash(ctx: &Ctx, q: &Flash) -> Option<String> {
    q.done
        .as_deref()
        .filter(|d| d.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(|d| ctx.t(&format!("flash.{d}")))
}

#[handler]
pub async fn dashboard(ctx: Ctx, Query(q): Query<Flash>) -> Response {
    respond(dashboard_page(&ctx, &q).await)
}

async fn dashboard_page(ctx: &Ctx, q: &Flash) -> PageResult {
    let user = ctx.user()?;
    let db = &ctx.state.db;
    let filter = RequestFilter { user_id: Some(user.id), limit: Some(20), ..Default::default() };
    let requests = services::requests::list(db, user, filter).await.map_err(|e| ctx.service_error(&e))?;
    let machines =
        services::machines::list(db, user, Some(user.id), None, Some(50)).await.map_err(|e| ctx.service_error(&e))?;
    let states = services::machines::power_states(ctx.state.pve.as_ref(), &machines.items).await;
    let quota = services::quotas::effective(db, user.id).await.map_err(|e| ctx.service_error(&e))?;
    let usage = services::quotas::usage(db, user.id).await.map_err(|e| ctx.service_error(&e))?;
    let pve_guests = super::pve_guests::section(ctx, user).await?;
    let machine_views: Vec<_> = machines
        .items
        .iter()
        .map(|m| {
            let state = if m.lost_at.is_some() { "lost" } else { states.get(&m.id).map_or("unknown", String::as_str) };
            context! {
                id => m.id, hostname => m.hostname.clone(), ipv4 => m.ipv4.clone(), node => m.node.clone(), vmid => m.vmid,
                request_id => m.request_id, state => state, kind => services::machines::guest_type(m).map_or("lxc", |t| t.as_str()),
            }
        })
        .collect();
    Ok(ctx.render(
        "requests/dashboard.html",
        context! {
            flash => flash(ctx, q),
            requests => requests.items.iter().map(row_view).collect::<Vec<_>>(),
            machines => machine_views,
            pve_guests => pve_guests,
            quota => context! { machines => quota.max_machines, cores => quota.max_cores, memory_mib => quota.max_memory_mib, disk_gib => quota.max_disk_gib },
            usage => context! { machines => usage.machines, cores => usage.resources.cores, memory_mib => usage.resources.memory_mib, disk_gib => usage.resources.disk_gib },
        },
    ))
}

/// A request row as templates see it.
pub fn row_view(r: &services::requests::RequestRow) -> minijinja::Value {
    let q = r.request.clone();
    let (username, template) = (r.username.clone(), r.template_name.clone());
    context! {
        id => q.id, hostname => q.hostname, status => q.status, cores => q.cores, memory_mib => q.memory_mib,
        disk_gib => q.disk_gib, purpose => q.purpose, reason => q.reason, username => username,
        template => template, created_at => q.created_at.to_rfc3339(), user_id => q.user_id,
        storage => q.storage, bridge => q.bridge, iso => q.iso,
    }
}

#[handler]
pub async fn new_form(ctx: Ctx) -> Response {
    respond(new_page(&ctx, None, FieldErrors::default()).await)
}

async fn new_page(ctx: &Ctx, form: Option<&Form>, errors: FieldErrors) -> PageResult {
    let user = ctx.user()?;
    let db = &ctx.state.db;
    let templates = services::catalog::list(db, user, false).await.map_err(|e| ctx.service_error(&e))?;
    let quota = services::quotas::effective(db, user.id).await.map_err(|e| ctx.service_error(&e))?;
    let usage = services::quotas::usage(db, user.id).await.map_err(|e| ctx.service_error(&e))?;
    let left = context! {
        machines => (quota.max_machines - usage.machines).max(0),
        cores => (quota.max_cores - usage.resources.cores).max(0),
        memory_mib => (quota.max_memory_mib - usage.resources.memory_mib).max(0),
        disk_gib => (quota.max_disk_gib - usage.resources.disk_gib).max(0),
    };
    let values = match form {
        Some(f) => f.values(),
        None => {
            let mut v = std::collections::BTreeMap::new();
            if let Some(t) = templates.first() {
                v.insert("template_id".to_owned(), t.id.to_string());
                v.insert("cores".to_owned(), t.default_cores.to_string());
                v.insert("memory_mib".to_owned(), t.default_memory_mib.to_string());
                v.insert("disk_gib".to_owned(), t.default_disk_gib.to_string());
            }
            v
        }
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(ctx.render_status(
        status,
        "requests/new.html",
        context! {
            templates => super::request_choices::entries(ctx, &templates).await,
            form => values,
            left => left,
            errors => ctx.field_errors(&errors),
        },
    ))
}

#[tracing::instrument(skip_all)]
#[handler]
pub async fn create(ctx: Ctx, form: Form) -> Response {
    respond(create_inner(&ctx, &form).await)
}

async fn create_inner(ctx: &Ctx, form: &Form) -> PageResult {
    let user = ctx.user()?;
    let mut errors = FieldErrors::default();
    let input = services::requests::NewRequest {
        template_id: number(&mut errors, "template_id", form.get("template_id")),
        hostname: form.get("hostname").to_owned(),
        cores: number(&mut errors, "cores", form.get("cores")),
        memory_mib: number(&mut errors, "memory_mib", form.get("memory_mib")),
        disk_gib: number(&mut errors, "disk_gib", form.get("disk_gib")),
        purpose: form.get("purpose").to_owned(),
        ssh_public_key: Some(form.get("ssh_public_key").to_owned()),
        storage: Some(form.get("storage").to_owned()),
        bridge: Some(form.get("bridge").to_owned()),
        iso: Some(form.get("iso").to_owned()),
    };
    if !errors.is_empty() {
        // Report every other problem in the same round, not after the numbers are fixed.
        let unreadable: Vec<&str> = errors.0.iter().map(|e| e.field).collect();
        let more = services::requests::check(&ctx.state.db, user, &input, &unreadable)
            .await
            .map_err(|e| ctx.service_error(&e))?;
        errors.0.extend(more.0);
        return new_page(ctx, Some(form), errors).await;
    }
    match services::requests::create(&ctx.state.db, user, input).await {
        Ok(r) => Ok(redirect(&format!("/requests/{}?done=submitted", r.id))),
        Err(ServiceError::Invalid(errors)) => new_page(ctx, Some(form), errors).await,
        Err(e) => Err(ctx.service_error(&e)),
    }
}

#[handler]
pub async fn detail(ctx: Ctx, Path(id): Path<i64>, Query(q): Query<Flash>) -> Response {
    respond(detail_page(&ctx, id, &q, None).await)
}

/// The request page; `problem` is a message to show above it (e.g. a refused action).
pub async fn detail_page(ctx: &Ctx, id: i64, q: &Flash, problem: Option<(StatusCode, String)>) -> PageResult {
    detail_page_with(ctx, id, q, Detail { problem, decision: None }).await
}

/// What a request page shows beyond the request itself.
#[derive(Default)]
pub struct Detail {
    /// A message above the page and the status to answer with.
    pub problem: Option<(StatusCode, String)>,
    /// The admin's decision form as typed, with its errors (an approval that was refused).
    pub decision: Option<(BTreeMap<String, String>, FieldErrors)>,
}

pub async fn detail_page_with(ctx: &Ctx, id: i64, q: &Flash, extra: Detail) -> PageResult {
    let user = ctx.user()?;
    let db = &ctx.state.db;
    let r = services::requests::get(db, user, id).await.map_err(|e| ctx.service_error(&e))?;
    let row = services::requests::with_names(db, vec![r]).await.map_err(|e| ctx.service_error(&e))?.remove(0);
    let mut lost = None;
    let record = services::machines::of_request(db, id).await.map_err(|e| ctx.service_error(&e))?;
    let machine = match &record {
        // Lost: the guest at its VMID is not this machine's, so none of its state or actions are shown.
        Some(m) if m.deleted_at.is_none() && m.lost_at.is_some() => {
            lost = super::lost_machines::view(ctx, m);
            None
        }
        Some(m) if m.deleted_at.is_none() => Some(super::machine_view::view(ctx, user, m).await?),
        _ => None,
    };
    let machine_id = record.as_ref().map(|m| m.id);
    let timeline = services::audit::request_timeline(db, id, machine_id).await.map_err(|e| ctx.service_error(&e))?;
    let entry = match row.request.template_id {
        Some(t) => services::catalog::get(db, user, t).await.ok(),
        None => None,
    };
    let limits =
        entry.map(|t| context! { cores => t.max_cores, memory_mib => t.max_memory_mib, disk_gib => t.max_disk_gib });
    let (form, errors) = match extra.decision {
        Some((form, errors)) => (form, errors),
        None => {
            let q = &row.request;
            let form = [("cores", q.cores), ("memory_mib", q.memory_mib), ("disk_gib", q.disk_gib)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_string()))
                .collect();
            (form, FieldErrors::default())
        }
    };
    let (status, problem) = match extra.problem {
        Some((s, m)) => (s, Some(m)),
        None if !errors.is_empty() => (StatusCode::UNPROCESSABLE_ENTITY, None),
        None => (StatusCode::OK, None),
    };
    let state = row.request.status.as_str();
    let stage = super::approvals::stage_view(ctx, &row);
    // Someone who reads a request neither theirs nor as an admin reads it as an approver of its stage.
    let approver = stage.is_some() && !user.is_admin() && row.request.user_id != user.id;
    Ok(ctx.render_status(
        status,
        "requests/detail.html",
        context! {
            flash => flash(ctx, q),
            problem => problem,
            r => row_view(&row),
            ssh_public_key => row.request.ssh_public_key,
            machine => machine,
            deleting => state == "deleting",
            lost => lost,
            limits => limits,
            decision => context! { form => form, errors => ctx.field_errors(&errors) },
            stage => stage,
            approver => approver,
            timeline => timeline.iter().cloned().map(|e| context! { at => e.at.to_rfc3339(), actor => e.actor_id.map(|_| e.actor_name), action => e.action }).collect::<Vec<_>>(),
        },
    ))
}

/// Power actions, deletion and detaching an installer ISO, from the request page.
#[handler]
pub async fn machine_power(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let user = ctx.user()?;
            let db = &ctx.state.db;
            let m = services::machines::get(db, user, id).await.map_err(|e| ctx.service_error(&e))?;
            let result = match form.get("action") {
                "delete" if !form.confirmed() => {
                    let question = ctx.tp("machine.delete_confirm", &[("name", m.hostname.as_str())]);
                    let back = format!("/requests/{}", m.request_id);
                    return Ok(ctx.confirm_page(&question, &format!("/machines/{id}/action"), &form, &back));
                }
                "delete" => services::machines::delete(db, ctx.state.pve.as_ref(), user, id).await,
                "detach_iso" if !form.confirmed() => {
                    let question = ctx.tp("machine.qemu.detach_confirm", &[("name", m.hostname.as_str())]);
                    let back = format!("/requests/{}", m.request_id);
                    return Ok(ctx.confirm_page(&question, &format!("/machines/{id}/action"), &form, &back));
                }
                // A power off or reset loses unsaved work: without JavaScript's dialog, ask on a page first.
                action @ ("stop" | "reset") if !form.confirmed() => {
                    let question = ctx.tp(&format!("machine.{action}_confirm"), &[("name", m.hostname.as_str())]);
                    let back = format!("/requests/{}", m.request_id);
                    return Ok(ctx.confirm_page(&question, &format!("/machines/{id}/action"), &form, &back));
                }
                "detach_iso" => services::machines::detach_install_media(db, ctx.state.pve.as_ref(), user, id).await,
                other => match services::machines::PowerAction::parse(other) {
                    Some(action) => services::machines::power(db, ctx.state.pve.as_ref(), user, id, action).await,
                    None => return Err(ctx.error_page(StatusCode::BAD_REQUEST, "page.invalid")),
                },
            };
            match result {
                Ok(()) => Ok(redirect(&format!("/requests/{}?done=machine_{}", m.request_id, form.get("action")))),
                Err(e) => refused(&ctx, m.request_id, &e).await,
            }
        }
        .await,
    )
}

/// After a refused action on a request: the request page again, with the reason, and the right status.
pub async fn refused(ctx: &Ctx, id: i64, e: &ServiceError) -> PageResult {
    let (status, key) = crate::http::errors::page_status(e);
    if matches!(e, ServiceError::NotFound | ServiceError::Forbidden) {
        return Err(ctx.error_page(status, key));
    }
    let mut message = ctx.t(key);
    if let ServiceError::MachineLost { reason, node, vmid } = e {
        message = format!("{message} {}", ctx.tp(reason.message_key(), &[("vmid", &vmid.to_string()), ("node", node)]));
    }
    // PVE's own words about a busy guest or another refusal help more than the bare statement.
    if let ServiceError::GuestRefused(GuestRefusal::Locked(said) | GuestRefusal::Other(said)) = e {
        message = format!("{message} ({said})");
    }
    if let ServiceError::Invalid(errors) = e {
        let details: Vec<String> = ctx
            .field_errors(errors)
            .into_iter()
            .map(|(f, m)| format!("{}: {m}", ctx.t(&format!("field.{f}"))))
            .collect();
        message = format!("{message} {}", details.join("; "));
    }
    detail_page(ctx, id, &Flash::default(), Some((status, message))).await
}

#[handler]
pub async fn cancel(ctx: Ctx, Path(id): Path<i64>, _form: Form) -> Response {
    respond(
        async {
            let user = ctx.user()?;
            match services::requests::cancel(&ctx.state.db, user, id).await {
                Ok(_) => Ok(redirect(&format!("/requests/{id}?done=cancelled"))),
                Err(e) => refused(&ctx, id, &e).await,
            }
        }
        .await,
    )
}
