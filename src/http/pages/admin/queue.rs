//! The admin queue: filters, keyset paging, per-row approve (with inline adjustments) and reject, and
//! decisions in bulk. A refused decision shows the page again with the row's fields marked and the
//! admin's typed values kept.

use std::collections::{BTreeMap, HashMap};

use minijinja::{Value, context};
use poem::web::{Path, Query};
use poem::{Response, handler, http::StatusCode};
use serde::Deserialize;

use super::{age_secs, clip};
use crate::domain::FieldErrors;
use crate::domain::request_status::RequestStatus;
use crate::http::pages::ctx::{Ctx, Form, PageResult, optional_number, redirect, respond, urlencode};
use crate::http::pages::requests::{self as request_pages, Flash, flash, refused};
use crate::services::{
    self, ServiceError,
    requests::{Adjustments, RequestFilter, RequestRow},
};

/// Where a decision form came from: the queue (with its filters) or the request's own page.
const QUEUE: &str = "/admin/requests";

#[derive(Deserialize, Default, Clone)]
pub struct QueueQuery {
    /// A status name, or `all`; default `pending`.
    status: Option<String>,
    user: Option<String>,
    #[serde(default, deserialize_with = "super::empty_as_none")]
    template_id: Option<i64>,
    q: Option<String>,
    /// Only the requests this automatic approval rule approved.
    #[serde(default, deserialize_with = "super::empty_as_none")]
    rule: Option<i64>,
    cursor: Option<i64>,
    done: Option<String>,
    /// With `done=bulk_*`: how many were decided, of how many ticked.
    n: Option<usize>,
    of: Option<usize>,
}

impl QueueQuery {
    /// The filters as a query string, for paging links and for coming back after a decision.
    fn filters(&self) -> String {
        format!(
            "status={}&user={}&template_id={}&q={}&rule={}",
            urlencode(self.status.as_deref().unwrap_or("pending")),
            urlencode(self.user.as_deref().unwrap_or("")),
            self.template_id.map(|t| t.to_string()).unwrap_or_default(),
            urlencode(self.q.as_deref().unwrap_or("")),
            self.rule.map(|r| r.to_string()).unwrap_or_default(),
        )
    }

    /// The queue a decision form says it came from (`return_to`), if it is one.
    fn from_return_to(return_to: &str) -> Option<QueueQuery> {
        let query = return_to.strip_prefix(QUEUE)?;
        let query = if query.is_empty() { "" } else { query.strip_prefix('?')? };
        let mut q: QueueQuery = serde_urlencoded::from_str(query).ok()?;
        q.done = None;
        Some(q)
    }
}

/// What went wrong with the last decision, to show on the queue page.
enum Problem {
    None,
    /// Bulk decision with no request ticked.
    NothingSelected,
    /// Bulk rejection without a reason: the errors, and the ticked requests to tick again.
    BulkReason(FieldErrors, Vec<i64>),
    /// One row's approval or rejection was refused: its typed values and errors.
    Row {
        id: i64,
        values: BTreeMap<String, String>,
        errors: FieldErrors,
        message: Option<String>,
    },
}

#[handler]
pub async fn queue(ctx: Ctx, Query(q): Query<QueueQuery>) -> Response {
    respond(queue_page(&ctx, q, Problem::None).await)
}

async fn queue_page(ctx: &Ctx, q: QueueQuery, problem: Problem) -> PageResult {
    let admin = ctx.admin()?;
    let db = &ctx.state.db;
    let err = |e| ctx.service_error(&e);
    let status_name = q.status.clone().unwrap_or_else(|| "pending".into());
    let status = RequestStatus::parse(&status_name);
    let user_id = match q.user.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        Some(name) => Some(services::users::find_by_name(db, name).await.map_err(err)?.map(|u| u.id).unwrap_or(-1)),
        None => None,
    };
    let filter = RequestFilter {
        status,
        user_id,
        template_id: q.template_id,
        approved_by_rule: q.rule,
        search: q.q.clone(),
        oldest_first: true,
        cursor: q.cursor,
        limit: Some(50),
    };
    let page = services::requests::list(db, admin, filter).await.map_err(err)?;
    let templates = services::catalog::list(db, admin, true).await.map_err(err)?;
    let limits: HashMap<i64, &entities::template::Model> = templates.iter().map(|t| (t.id, t)).collect();
    let keep = q.filters();
    let here = format!("{QUEUE}?{keep}{}", q.cursor.map(|c| format!("&cursor={c}")).unwrap_or_default());
    let (status_code, notice, bulk_errors) = match &problem {
        Problem::None => (StatusCode::OK, None, FieldErrors::default()),
        Problem::NothingSelected => {
            (StatusCode::UNPROCESSABLE_ENTITY, Some(ctx.t("queue.nothing_selected")), FieldErrors::default())
        }
        Problem::BulkReason(errors, _) => (StatusCode::UNPROCESSABLE_ENTITY, None, errors.clone()),
        Problem::Row { message, .. } => (StatusCode::UNPROCESSABLE_ENTITY, message.clone(), FieldErrors::default()),
    };
    let rows: Vec<Value> = page
        .items
        .iter()
        .map(|r| {
            let (values, errors) = match &problem {
                Problem::Row { id, values, errors, .. } if *id == r.request.id => (Some(values), Some(errors)),
                _ => (None, None),
            };
            row(ctx, r, r.request.template_id.and_then(|t| limits.get(&t).copied()), values, errors)
        })
        .collect();
    Ok(ctx.render_status(
        status_code,
        "admin/queue.html",
        context! {
            flash => queue_flash(ctx, &q),
            problem => notice,
            bulk_errors => ctx.field_errors(&bulk_errors),
            selected => match &problem { Problem::BulkReason(_, ids) => ids.clone(), _ => vec![] },
            requests => rows,
            next => page.next_cursor.map(|c| format!("{QUEUE}?{keep}&cursor={c}")),
            first => q.cursor.map(|_| format!("{QUEUE}?{keep}")),
            return_to => here,
            statuses => RequestStatus::ALL.iter().map(|s| context! { value => s.as_str(), text => ctx.t(&format!("status.{}", s.as_str())) }).collect::<Vec<_>>(),
            templates => templates.iter().map(|t| context! { id => t.id, name => t.name.clone() }).collect::<Vec<_>>(),
            filter => context! { status => status_name, user => q.user, template_id => q.template_id, q => q.q, rule => q.rule },
        },
    ))
}

/// The flash after a decision; bulk decisions say how many of the ticked requests were decided.
fn queue_flash(ctx: &Ctx, q: &QueueQuery) -> Option<String> {
    match (q.done.as_deref(), q.n, q.of) {
        (Some(what @ ("bulk_approved" | "bulk_rejected")), Some(n), Some(of)) => {
            let key = if n == of { format!("queue.{what}") } else { format!("queue.{what}_partial") };
            Some(crate::http::i18n::format::plural(ctx.lang, &key, n as i64, &[("of", &of.to_string())]))
        }
        _ => flash(ctx, &Flash { done: q.done.clone() }),
    }
}

/// One queue row as the template sees it; `values`/`errors` refill a refused decision.
fn row(
    ctx: &Ctx,
    r: &RequestRow,
    template: Option<&entities::template::Model>,
    values: Option<&BTreeMap<String, String>>,
    errors: Option<&FieldErrors>,
) -> Value {
    let q = &r.request;
    let form = values.cloned().unwrap_or_else(|| typed_resources(q.cores, q.memory_mib, q.disk_gib));
    context! {
        id => q.id, hostname => q.hostname.clone(), status => q.status.clone(), username => r.username.clone(),
        template => r.template_name.clone(), rule => r.rule_name.clone(),
        kind => template.map_or(crate::domain::guest::MachineKind::Lxc, services::catalog::kind_of).as_str(),
        purpose => clip(&q.purpose, 60), purpose_full => q.purpose.clone(),
        cores => q.cores, memory_mib => q.memory_mib, disk_gib => q.disk_gib,
        age => age_secs(q.created_at), created_at => q.created_at.to_rfc3339(),
        max => template.map(|t| context! { cores => t.max_cores, memory_mib => t.max_memory_mib, disk_gib => t.max_disk_gib }),
        form => form,
        errors => errors.map(|e| ctx.field_errors(e)).unwrap_or_default(),
        open => values.is_some(),
        stage => crate::http::pages::approvals::stage_view(ctx, r),
    }
}

fn typed_resources(cores: i32, memory_mib: i32, disk_gib: i32) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("cores".to_owned(), cores.to_string()),
        ("memory_mib".to_owned(), memory_mib.to_string()),
        ("disk_gib".to_owned(), disk_gib.to_string()),
    ])
}

/// Reads the adjustments typed on an approve form; unreadable numbers are field errors.
fn adjustments(form: &Form) -> (Adjustments, FieldErrors) {
    let mut errors = FieldErrors::default();
    let adj = Adjustments {
        cores: optional_number(&mut errors, "cores", form.get("cores")),
        memory_mib: optional_number(&mut errors, "memory_mib", form.get("memory_mib")),
        disk_gib: optional_number(&mut errors, "disk_gib", form.get("disk_gib")),
    };
    (adj, errors)
}

/// After a refused decision: the page it came from again, with the reason and the typed values.
async fn decision_refused(ctx: &Ctx, id: i64, form: &Form, e: ServiceError) -> PageResult {
    let errors = match e {
        ServiceError::Invalid(errors) => errors,
        other => {
            return match QueueQuery::from_return_to(form.get("return_to")) {
                Some(q) if !matches!(other, ServiceError::NotFound | ServiceError::Forbidden) => {
                    let (_, key) = crate::http::errors::page_status(&other);
                    let problem = Problem::Row {
                        id,
                        values: form.values(),
                        errors: FieldErrors::default(),
                        message: Some(ctx.t(key)),
                    };
                    queue_page(ctx, q, problem).await
                }
                _ => refused(ctx, id, &other).await,
            };
        }
    };
    match QueueQuery::from_return_to(form.get("return_to")) {
        Some(q) => {
            let message = Some(ctx.t("queue.row_refused"));
            queue_page(ctx, q, Problem::Row { id, values: form.values(), errors, message }).await
        }
        // The request page's decision form shows the errors itself (and answers 422).
        None => {
            let extra = request_pages::Detail { problem: None, decision: Some((form.values(), errors)) };
            request_pages::detail_page_with(ctx, id, &Flash::default(), extra).await
        }
    }
}

/// Where to go after a decision: back to the queue it came from, or to the request page.
fn after_decision(form: &Form, id: i64, done: &str) -> Response {
    match QueueQuery::from_return_to(form.get("return_to")) {
        Some(q) => redirect(&format!("{QUEUE}?{}&done={done}", q.filters())),
        None => redirect(&format!("/requests/{id}?done={done}")),
    }
}

#[tracing::instrument(skip_all, fields(id))]
#[handler]
pub async fn approve(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let (adj, errors) = adjustments(&form);
            if !errors.is_empty() {
                return decision_refused(&ctx, id, &form, errors.into()).await;
            }
            match services::requests::approve(&ctx.state.db, admin, id, adj).await {
                // An entry with approval stages: the request moved on to its next stage.
                Ok(r) if RequestStatus::parse(&r.status) == Some(RequestStatus::Pending) => {
                    Ok(after_decision(&form, id, "stage_approved"))
                }
                Ok(_) => Ok(after_decision(&form, id, "approved")),
                Err(e) => decision_refused(&ctx, id, &form, e).await,
            }
        }
        .await,
    )
}

#[tracing::instrument(skip_all, fields(id))]
#[handler]
pub async fn reject(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            match services::requests::reject(&ctx.state.db, admin, id, form.get("reason")).await {
                Ok(_) => Ok(after_decision(&form, id, "rejected")),
                Err(e) => decision_refused(&ctx, id, &form, e).await,
            }
        }
        .await,
    )
}

#[handler]
pub async fn retry(ctx: Ctx, Path(id): Path<i64>, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            match services::requests::retry(&ctx.state.db, admin, id).await {
                Ok(_) if form.get("return_to") == "/admin" => Ok(redirect("/admin?done=retried")),
                Ok(_) => Ok(redirect(&format!("/requests/{id}?done=retried"))),
                Err(e) => refused(&ctx, id, &e).await,
            }
        }
        .await,
    )
}

/// Approves or rejects every ticked request; each is decided on its own, and the queue says how many
/// were. Nothing ticked, or a rejection without a reason, decides nothing and says why.
#[tracing::instrument(skip_all)]
#[handler]
pub async fn bulk(ctx: Ctx, form: Form) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let db = &ctx.state.db;
            let q = QueueQuery::from_return_to(form.get("return_to")).unwrap_or_default();
            // Only the two buttons' values: a missing or unknown action must not approve everything ticked.
            let rejecting = match form.get("action") {
                "approve" => false,
                "reject" => true,
                _ => return Err(ctx.error_page(StatusCode::BAD_REQUEST, "page.invalid")),
            };
            let Some(mut ids) = form.ids("ids") else {
                return Err(ctx.error_page(StatusCode::BAD_REQUEST, "page.invalid"));
            };
            ids.truncate(500);
            if ids.is_empty() {
                return queue_page(&ctx, q, Problem::NothingSelected).await;
            }
            if rejecting && form.get("reason").trim().is_empty() {
                let errors = FieldErrors(vec![crate::domain::FieldError::new("reason", "error.required")]);
                return queue_page(&ctx, q, Problem::BulkReason(errors, ids)).await;
            }
            let mut done = 0;
            for id in &ids {
                let res = if rejecting {
                    services::requests::reject(db, admin, *id, form.get("reason")).await
                } else {
                    services::requests::approve(db, admin, *id, Adjustments::default()).await
                };
                done += res.is_ok() as usize;
            }
            let what = if rejecting { "bulk_rejected" } else { "bulk_approved" };
            Ok(redirect(&format!("{QUEUE}?{}&done={what}&n={done}&of={}", q.filters(), ids.len())))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{QUEUE, QueueQuery};

    proptest! {
        /// The filters a decision form carries back (`return_to`) come back unchanged, whatever was typed
        /// into them; any other `return_to` is not taken for the queue, and nothing panics.
        #[test]
        fn fuzz_return_to_round_trips(
            status in prop::option::of("pending|all|\\PC{0,8}"), user in prop::option::of("\\PC{0,8}"),
            template_id in prop::option::of(any::<i64>()), text in prop::option::of("\\PC{0,12}|[&=?#+% ]{1,4}"),
            other in "\\PC{0,30}",
        ) {
            let q = QueueQuery { status, user, template_id, q: text, ..QueueQuery::default() };
            let back = QueueQuery::from_return_to(&format!("{QUEUE}?{}&done=approved", q.filters())).unwrap();
            prop_assert_eq!(back.filters(), q.filters());
            prop_assert!(back.done.is_none());
            if let Some(q) = QueueQuery::from_return_to(&other) {
                prop_assert!(other.starts_with(QUEUE) && q.done.is_none());
            }
        }
    }
}
