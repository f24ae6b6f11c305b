//! A machine's own address, `/machines/:id`: the machine is shown on its request's page (status,
//! actions, snapshots, timeline), so this leads there, keeping the `?done=` flash of the action that
//! sent the browser here. Owner or admin only: anyone else gets the not-found page.

use poem::web::{Path, Query};
use poem::{Response, handler};

use crate::http::pages::ctx::{Ctx, redirect, respond};
use crate::http::pages::requests::Flash;
use crate::services;

/// `GET /machines/:id`.
#[handler]
pub async fn show(ctx: Ctx, Path(id): Path<i64>, Query(flash): Query<Flash>) -> Response {
    respond(
        async {
            let user = ctx.user()?;
            let m = services::machines::get(&ctx.state.db, user, id).await.map_err(|e| ctx.service_error(&e))?;
            let done = flash
                .done
                .filter(|d| d.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                .map(|d| format!("?done={d}"))
                .unwrap_or_default();
            Ok(redirect(&format!("/requests/{}{done}", m.request_id)))
        }
        .await,
    )
}
