//! The HTTP side of the OpenID client: `openidconnect` asks for an [`AsyncHttpClient`]; this one is
//! proxdesk's own `reqwest` (no second HTTP stack), with redirects off (a provider endpoint that
//! redirects is refused rather than followed: following them opens the door to request forgery),
//! timeouts, and a bound on what a provider may send back.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

/// The largest body read from a provider (discovery, keys, tokens, userinfo are all small).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why a call to the provider got no answer; its text names no token.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// An HTTP client for one OpenID provider.
#[derive(Clone)]
pub struct HttpClient(reqwest::Client);

impl HttpClient {
    /// Connects within `connect`, answers within `total`, never follows redirects.
    pub fn new(connect: Duration, total: Duration) -> Result<Self, HttpError> {
        crate::integrations::install_tls_provider();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect)
            .timeout(total)
            .build()
            .map(Self)
            .map_err(|e| HttpError(e.to_string()))
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let request = reqwest::Request::try_from(request).map_err(|e| HttpError(e.to_string()))?;
        let mut response = self.0.execute(request).await.map_err(|e| HttpError(describe(&e)))?;
        let mut builder = openidconnect::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| HttpError(describe(&e)))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(HttpError(format!("the answer is larger than {MAX_BODY_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        builder.body(body).map_err(|e| HttpError(e.to_string()))
    }
}

/// reqwest's own words, with the cause (refused, timed out) that its top-level text leaves out.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl<'c> AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}
