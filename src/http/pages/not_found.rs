//! Any address no page answers gets the error page in the site's layout (title, language, navigation),
//! not a bare 404.

use poem::error::NotFoundError;
use poem::middleware::CookieJarManager;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, handler, http::StatusCode};

use super::ctx::Ctx;
use crate::startup::AppState;

/// Runs `ep`; when no route matched, answers the "nothing here" page for the same visitor.
pub async fn layout_for_unknown_addresses<E: Endpoint>(ep: std::sync::Arc<E>, req: Request) -> poem::Result<Response> {
    // What the error page needs of the request, kept before the request is handed on.
    let state = req.data::<AppState>().cloned();
    let headers = req.headers().clone();
    let uri = req.uri().clone();
    match ep.call(req).await {
        Ok(r) => Ok(r.into_response()),
        Err(e) if e.is::<NotFoundError>() => {
            let Some(state) = state else { return Err(e) };
            let mut again = Request::builder().uri(uri).finish();
            *again.headers_mut() = headers;
            again.set_data(state);
            Ok(not_found.with(CookieJarManager::new()).call(again).await?.into_response())
        }
        Err(e) => Err(e),
    }
}

#[handler]
fn not_found(ctx: Ctx) -> Response {
    ctx.error_page(StatusCode::NOT_FOUND, "page.not_found")
}
