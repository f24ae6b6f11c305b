//! The machines lists (the owner's, and every machine for admins) with search, filters and pages.

use minijinja::{Value, context};
use poem::web::Query;
use poem::{Response, handler, http::StatusCode};
use serde::Deserialize;

use crate::domain::FieldErrors;
use crate::http::pages::ctx::{Ctx, PageResult, optional_number, respond, urlencode};
use crate::services::{self, Actor, ServiceError, machines::MachineFilter, machines::PowerState};

const MINE: &str = "/machines";
const EVERYONE: &str = "/admin/machines";
/// Machines a list page shows.
const PAGE_SIZE: u64 = 50;

/// The filters as typed: kept as text, so a wrong value is shown back as it was.
#[derive(Deserialize, Default, Clone)]
pub struct ListQuery {
    name: Option<String>,
    vmid: Option<String>,
    state: Option<String>,
    node: Option<String>,
    template_id: Option<String>,
    /// An owner's user name (admins only).
    owner: Option<String>,
    cursor: Option<i64>,
    /// Why a bulk action sent the visitor back here: `none` (nothing selected) or `too_many`.
    bulk: Option<String>,
}

impl ListQuery {
    fn text(v: &Option<String>) -> &str {
        v.as_deref().map(str::trim).unwrap_or("")
    }

    /// The filters as a query string, for paging links.
    fn filters(&self, admin: bool) -> String {
        let mut out = format!(
            "name={}&vmid={}&state={}&node={}&template_id={}",
            urlencode(Self::text(&self.name)),
            urlencode(Self::text(&self.vmid)),
            urlencode(Self::text(&self.state)),
            urlencode(Self::text(&self.node)),
            urlencode(Self::text(&self.template_id)),
        );
        if admin {
            out.push_str(&format!("&owner={}", urlencode(Self::text(&self.owner))));
        }
        out
    }
}

/// `GET /machines`: the signed-in user's machines.
#[handler]
pub async fn mine(ctx: Ctx, Query(q): Query<ListQuery>) -> Response {
    respond(async { list_page(&ctx, ctx.user()?, q, MINE).await }.await)
}

/// `GET /admin/machines`: every machine, with owners (admins only).
#[handler]
pub async fn everyone(ctx: Ctx, Query(q): Query<ListQuery>) -> Response {
    respond(async { list_page(&ctx, ctx.admin()?, q, EVERYONE).await }.await)
}

async fn list_page(ctx: &Ctx, actor: &Actor, q: ListQuery, base: &str) -> PageResult {
    let db = &ctx.state.db;
    let err = |e| ctx.service_error(&e);
    // Only the admins' list filters by owner; a user's `owner` is ignored.
    let admin = base == EVERYONE;
    let mut errors = FieldErrors::default();
    let vmid = optional_number::<i64>(&mut errors, "vmid", ListQuery::text(&q.vmid));
    let template_id = optional_number::<i64>(&mut errors, "template_id", ListQuery::text(&q.template_id));
    let state = match ListQuery::text(&q.state) {
        "" => None,
        s => {
            let parsed = PowerState::parse(s);
            if parsed.is_none() {
                errors.push(crate::domain::FieldError::new("state", "error.choice_invalid"));
            }
            parsed
        }
    };
    let user_id = match ListQuery::text(&q.owner) {
        name if admin && !name.is_empty() => {
            Some(services::users::find_by_name(db, name).await.map_err(err)?.map(|u| u.id).unwrap_or(-1))
        }
        _ => None,
    };
    let non_empty = |v: &Option<String>| Some(ListQuery::text(v).to_owned()).filter(|s| !s.is_empty());
    let filter =
        MachineFilter { name: non_empty(&q.name), vmid, state, node: non_empty(&q.node), template_id, user_id };
    if errors.0.is_empty()
        && let Err(ServiceError::Invalid(e)) = filter.validate()
    {
        errors = e;
    }
    let (rows, next) = if errors.0.is_empty() {
        let pve = ctx.state.pve.as_ref();
        let page = services::machines::search(db, pve, actor, &filter, q.cursor, Some(PAGE_SIZE)).await.map_err(err)?;
        (page.items.iter().map(row).collect::<Vec<Value>>(), page.next_cursor)
    } else {
        (vec![], None)
    };
    let templates = services::catalog::list(db, actor, admin).await.map_err(err)?;
    let nodes = services::machines::nodes(db, actor).await.map_err(err)?;
    let keep = q.filters(admin);
    let status = if errors.0.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(ctx.render_status(
        status,
        "machines/list.html",
        context! {
            admin => admin,
            action => base,
            bulk_problem => match q.bulk.as_deref() {
                Some("none") => Some(ctx.t("bulk.none_selected")),
                Some("too_many") => Some(ctx.t("bulk.too_many")),
                _ => None,
            },
            machines => rows,
            errors => ctx.field_errors(&errors),
            next => next.map(|c| format!("{base}?{keep}&cursor={c}")),
            first => q.cursor.map(|_| format!("{base}?{keep}")),
            states => PowerState::ALL.iter().map(|s| context! { value => s.as_str(), text => ctx.t(&format!("machine.state.{}", s.as_str())) }).collect::<Vec<_>>(),
            templates => templates.iter().map(|t| context! { id => t.id.to_string(), name => t.name.clone() }).collect::<Vec<_>>(),
            nodes => nodes,
            filter => context! {
                name => ListQuery::text(&q.name), vmid => ListQuery::text(&q.vmid), state => ListQuery::text(&q.state),
                node => ListQuery::text(&q.node), template_id => ListQuery::text(&q.template_id),
                owner => ListQuery::text(&q.owner),
            },
        },
    ))
}

/// One row as the template sees it.
fn row(r: &services::machines::MachineRow) -> Value {
    let m = &r.machine;
    context! {
        id => m.id, request_id => m.request_id, hostname => m.hostname.clone(), vmid => m.vmid, kind => m.kind.clone(), node => m.node.clone(),
        template => r.template_name.clone(), state => r.state.clone(), owner => r.owner.clone(),
        lost => m.lost_at.is_some(),
    }
}
