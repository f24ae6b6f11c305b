//! The live pages' event streams (`text/event-stream`): `event: change` with the page's fingerprint
//! on connect and whenever what the page shows changes; `static/live.js` then fetches the page again.

use std::time::Duration;

use futures_util::StreamExt;
use poem::web::sse::{Event, SSE};
use poem::web::{Path, Query};
use poem::{IntoResponse, Response, handler, http::StatusCode};

use super::ctx::Ctx;
use crate::services::live::{self, LivePage, Timing};

/// How long browsers wait before reconnecting to a stream the server ended.
const RECONNECT_AFTER_END_MS: u64 = 15_000;

/// A comment this often keeps proxies from closing a quiet stream; a closed tab is noticed on the second
/// write after it went, so its place under the per-user bound is back within about 20 s.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// `?age=<ms>`: how long ago the page was loaded, by the browser's own clock (live.js).
#[derive(serde::Deserialize)]
pub struct Params {
    age: Option<u64>,
}

impl Params {
    fn page_age(&self) -> Option<Duration> {
        // Older than this, a page is reloaded anyway before anyone trusts it.
        self.age.map(|ms| Duration::from_millis(ms.min(600_000)))
    }
}

/// `GET /requests/:id/live`: the request page (its status, timeline and machine).
#[handler]
pub async fn request(ctx: Ctx, Path(id): Path<i64>, Query(p): Query<Params>) -> Response {
    stream(&ctx, LivePage::Request(id), p.page_age()).await
}

/// `GET /machines/bulk/:id/live`: a bulk run's page (each machine's result).
#[handler]
pub async fn bulk(ctx: Ctx, Path(id): Path<i64>, Query(p): Query<Params>) -> Response {
    stream(&ctx, LivePage::Bulk(id), p.page_age()).await
}

/// `GET /live/dashboard`: the visitor's requests, machines and quota.
#[handler]
pub async fn dashboard(ctx: Ctx, Query(p): Query<Params>) -> Response {
    stream(&ctx, LivePage::Dashboard, p.page_age()).await
}

/// `GET /admin/live`: what waits for admins (admins only).
#[handler]
pub async fn admin(ctx: Ctx, Query(p): Query<Params>) -> Response {
    stream(&ctx, LivePage::Admin, p.page_age()).await
}

#[tracing::instrument(skip(ctx), fields(user = ctx.actor.as_ref().map(|a| a.id)))]
async fn stream(ctx: &Ctx, page: LivePage, page_age: Option<Duration>) -> Response {
    // A stream is no page to be sent to the login form from: the script stops on a refusal.
    let Some(user) = ctx.actor.clone() else {
        return Response::builder().status(StatusCode::UNAUTHORIZED).body("sign in first");
    };
    let Some(slot) = ctx.state.live.open(user.id) else {
        return Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header("Retry-After", "30")
            .body("too many live pages open; close some tabs");
    };
    let (db, pve) = (ctx.state.db.clone(), ctx.state.pve.clone());
    match live::watch(db, pve, user, page, Timing::default(), slot, page_age).await {
        Ok(fingerprints) => {
            // Once the stream ends (the server is stopping), browsers wait a while before they come back.
            let events = fingerprints
                .map(|fp| Event::message(fp).event_type("change"))
                .chain(futures_util::stream::once(async { Event::retry(RECONNECT_AFTER_END_MS) }));
            let mut r = SSE::new(events).keep_alive(KEEP_ALIVE).into_response();
            r.headers_mut().insert("Cache-Control", "no-store".parse().expect("header value"));
            // nginx, buffering (say, to gzip it), would hold events back until its buffer fills.
            r.headers_mut().insert("X-Accel-Buffering", "no".parse().expect("header value"));
            r
        }
        Err(e) => ctx.service_error(&e),
    }
}
