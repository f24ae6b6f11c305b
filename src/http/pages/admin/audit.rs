//! The audit log: actions in words, subjects as links, details as a list of facts, filters and keyset
//! paging both ways.

use chrono::{DateTime, NaiveDate, Utc};
use minijinja::{Value, context};
use poem::web::Query;
use poem::{Response, handler};
use serde::Deserialize;

use crate::domain::{FieldError, FieldErrors};
use crate::http::pages::ctx::{Ctx, respond, urlencode};
use crate::services::{self, audit::AuditFilter};

/// The subjects the log names, for the filter.
const SUBJECT_TYPES: &[&str] = &["request", "machine", "user", "template", "token", "quota", "job", "group"];

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    subject_type: Option<String>,
    #[serde(default, deserialize_with = "super::empty_as_none")]
    subject_id: Option<i64>,
    /// First day shown (`YYYY-MM-DD`, UTC).
    since: Option<String>,
    /// Last day shown (`YYYY-MM-DD`, UTC).
    until: Option<String>,
    cursor: Option<i64>,
    after: Option<i64>,
}

/// A typed day, or a field error; empty means no bound.
fn day(errors: &mut FieldErrors, field: &'static str, raw: Option<&str>) -> Option<NaiveDate> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty())?;
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(FieldError::new(field, "error.not_a_date"));
            None
        }
    }
}

fn start_of(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

#[handler]
pub async fn audit(ctx: Ctx, Query(q): Query<AuditQuery>) -> Response {
    respond(
        async {
            let admin = ctx.admin()?;
            let db = &ctx.state.db;
            let mut errors = FieldErrors::default();
            let since = day(&mut errors, "since", q.since.as_deref());
            let until = day(&mut errors, "until", q.until.as_deref());
            let f = AuditFilter {
                actor: q.actor.clone(),
                action: q.action.clone(),
                subject_type: q.subject_type.clone(),
                subject_id: q.subject_id,
                cursor: q.cursor,
                after: q.after,
                since: since.map(start_of),
                before: until.and_then(|d| d.succ_opt()).map(start_of),
                limit: Some(50),
            };
            let page = services::audit::browse(db, admin, f).await.map_err(|e| ctx.service_error(&e))?;
            let machines: Vec<i64> =
                page.items.iter().filter(|e| e.subject_type == "machine").map(|e| e.subject_id).collect();
            let requests =
                services::audit::machine_requests(db, machines).await.map_err(|e| ctx.service_error(&e))?;
            let entries: Vec<Value> = page
                .items
                .iter()
                .map(|e| {
                    let link = match e.subject_type.as_str() {
                        "request" => Some(format!("/requests/{}", e.subject_id)),
                        "user" => Some(format!("/admin/users/{}", e.subject_id)),
                        "template" => Some(format!("/admin/catalog/{}", e.subject_id)),
                        "group" => Some(format!("/admin/groups/{}", e.subject_id)),
                        "machine" => requests.get(&e.subject_id).map(|r| format!("/requests/{r}")),
                        _ => None,
                    };
                    context! {
                        id => e.id, at => e.at.to_rfc3339(), actor => e.actor_name.clone(), system => e.actor_id.is_none(),
                        action => e.action.clone(), subject_type => e.subject_type.clone(), subject_id => e.subject_id,
                        link => link, details => details(&ctx, &e.details),
                    }
                })
                .collect();
            let keep = format!(
                "actor={}&action={}&subject_type={}&subject_id={}&since={}&until={}",
                urlencode(q.actor.as_deref().unwrap_or("")),
                urlencode(q.action.as_deref().unwrap_or("")),
                urlencode(q.subject_type.as_deref().unwrap_or("")),
                q.subject_id.map(|s| s.to_string()).unwrap_or_default(),
                urlencode(q.since.as_deref().unwrap_or("")),
                urlencode(q.until.as_deref().unwrap_or("")),
            );
            let actions: Vec<Value> = services::audit::ACTIONS
                .iter()
                .map(|a| context! { value => *a, text => ctx.t(&format!("audit.{a}")) })
                .collect();
            let status = if errors.is_empty() { poem::http::StatusCode::OK } else { poem::http::StatusCode::UNPROCESSABLE_ENTITY };
            Ok(ctx.render_status(
                status,
                "admin/audit.html",
                context! {
                    entries => entries,
                    older => page.older.map(|c| format!("/admin/audit?{keep}&cursor={c}")),
                    newer => page.newer.map(|a| format!("/admin/audit?{keep}&after={a}")),
                    newest => (q.cursor.is_some() || q.after.is_some()).then(|| format!("/admin/audit?{keep}")),
                    actions => actions,
                    subject_types => SUBJECT_TYPES.iter().map(|s| context! { value => *s, text => ctx.t(&format!("subject.{s}")) }).collect::<Vec<_>>(),
                    filter => context! {
                        actor => q.actor, action => q.action, subject_type => q.subject_type, subject_id => q.subject_id,
                        since => q.since, until => q.until,
                    },
                    errors => ctx.field_errors(&errors),
                },
            ))
        }
        .await,
    )
}

/// An entry's details as `(label, text)` pairs: a request's states in words, other values as written.
fn details(ctx: &Ctx, raw: &str) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(raw) else {
        return if raw.trim().is_empty() || raw.trim() == "null" {
            vec![]
        } else {
            vec![(String::new(), raw.to_owned())]
        };
    };
    map.into_iter()
        .map(|(k, v)| {
            let text = match (k.as_str(), &v) {
                ("from" | "to", serde_json::Value::String(s)) => ctx.t(&format!("status.{s}")),
                (_, serde_json::Value::String(s)) => s.clone(),
                (_, serde_json::Value::Null) => "—".to_owned(),
                _ => v.to_string(),
            };
            // A field's own label where the forms have one (`max_cores` → "Maximum cores").
            let label_key = format!("field.{k}");
            let label = ctx.t(&label_key);
            let label = if label == label_key { k.replace('_', " ") } else { label };
            (label, text)
        })
        .collect()
}
