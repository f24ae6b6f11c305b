//! What every page handler needs: the visitor (if logged in), the language, the CSRF token, form
//! parsing with CSRF verification, and the ways a page answers.

use std::collections::BTreeMap;

use minijinja::{Value, context};
use poem::web::cookie::CookieJar;
use poem::{FromRequest, Request, RequestBody, Response, http::StatusCode};

use crate::domain::FieldErrors;
use crate::http::{auth, errors::page_status, i18n};
use crate::services::{self, Actor, ServiceError};
use crate::startup::AppState;

/// The page's view of the request.
pub struct Ctx {
    pub state: AppState,
    pub actor: Option<Actor>,
    pub lang: &'static str,
    pub csrf: String,
    pub secure: bool,
    pub path: String,
    pub client_addr: String,
    pub jar: CookieJar,
    /// For admins: how many requests wait for a decision (the queue's badge in the navigation).
    pub pending: Option<u64>,
    /// The visitor is in a group that some catalog entry's approval stage names ("Approvals" in the nav).
    pub approver: bool,
}

impl<'a> FromRequest<'a> for Ctx {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = req.data::<AppState>().expect("AppState attached").clone();
        let jar = req.cookie().clone();
        let actor = match jar.get(auth::SESSION_COOKIE) {
            Some(c) => services::auth::session_actor(&state.db, c.value_str()).await.map_err(|e| {
                tracing::error!(error = ?e, "session lookup failed");
                poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR)
            })?,
            None => None,
        };
        let pending = match &actor {
            Some(a) if a.is_admin() => {
                let status = crate::domain::request_status::RequestStatus::Pending;
                services::requests::count_in(&state.db, status).await.ok()
            }
            _ => None,
        };
        let approver = match &actor {
            Some(a) => services::groups::is_stage_approver(&state.db, a.id).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "approver lookup failed");
                false
            }),
            None => false,
        };
        let secure = auth::secure_request(req, &state);
        let lang = i18n::negotiate(actor.as_ref().and_then(|a| a.language.as_deref()), req.header("Accept-Language"));
        let anchor = auth::csrf_anchor(&jar, secure);
        let csrf = auth::csrf_token(&state, &anchor);
        Ok(Ctx {
            state,
            actor,
            lang,
            csrf,
            secure,
            path: req.uri().path().to_owned(),
            client_addr: auth::client_addr(req),
            jar,
            pending,
            approver,
        })
    }
}

/// A page outcome short of the page itself: a redirect or an error page.
pub type PageResult = Result<Response, Response>;

impl Ctx {
    /// The logged-in user, or a redirect to the login page.
    pub fn user(&self) -> Result<&Actor, Response> {
        self.actor.as_ref().ok_or_else(|| redirect(&format!("/login?next={}", urlencode(&self.path))))
    }

    /// The logged-in admin, or 403 (or the login redirect).
    pub fn admin(&self) -> Result<&Actor, Response> {
        let user = self.user()?;
        if user.is_admin() { Ok(user) } else { Err(self.error_page(StatusCode::FORBIDDEN, "page.forbidden")) }
    }

    pub fn t(&self, key: &str) -> String {
        i18n::t(self.lang, key)
    }

    /// The text of `key` with its `{placeholders}` filled.
    pub fn tp(&self, key: &str, params: &[(&str, &str)]) -> String {
        i18n::message(self.lang, key, params)
    }

    /// Renders `template` with the common variables plus `extra`.
    pub fn render(&self, template: &str, extra: Value) -> Response {
        self.render_status(StatusCode::OK, template, extra)
    }

    pub fn render_status(&self, status: StatusCode, template: &str, extra: Value) -> Response {
        let user = self
            .actor
            .as_ref()
            .map(|a| context! { id => a.id, username => a.username.clone(), is_admin => a.is_admin(), pending => self.pending, approver => self.approver });
        let base = context! { lang => self.lang, csrf => self.csrf.clone(), user => user, path => self.path.clone() };
        match self.state.pages.render(template, context! { ..extra, ..base }) {
            Ok(html) => Response::builder().status(status).content_type("text/html; charset=utf-8").body(html),
            Err(e) => {
                tracing::error!(error = ?e, template, "template failed");
                Response::builder().status(StatusCode::INTERNAL_SERVER_ERROR).body("internal error")
            }
        }
    }

    /// The page that asks "are you sure?" for a destructive form posted without `confirmed=yes` (the
    /// browser had no JavaScript for the dialog): it posts the same fields again, confirmed.
    pub fn confirm_page(&self, question: &str, action: &str, form: &Form, cancel_to: &str) -> Response {
        // Every pair, repeated names included (a bulk action's machines), so confirming submits the same form.
        let fields: Vec<(String, String)> = form.pairs().filter(|(k, _)| k != "confirmed").cloned().collect();
        self.render(
            "confirm.html",
            context! { question => question, action => action, fields => fields, cancel_to => cancel_to },
        )
    }

    pub fn error_page(&self, status: StatusCode, key: &str) -> Response {
        self.render_status(status, "error.html", context! { message => self.t(key), status => status.as_u16() })
    }

    /// The error page for a service error.
    pub fn service_error(&self, e: &ServiceError) -> Response {
        let (status, key) = page_status(e);
        let ServiceError::Throttled { retry_after_secs } = e else {
            return self.error_page(status, key);
        };
        let message = self.tp(key, &[("seconds", &retry_after_secs.to_string())]);
        let mut resp = self.render_status(status, "error.html", context! { message, status => status.as_u16() });
        resp.headers_mut().insert(poem::http::header::RETRY_AFTER, (*retry_after_secs).into());
        resp
    }

    /// Field errors as `field → translated message` for templates.
    pub fn field_errors(&self, errors: &FieldErrors) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for e in &errors.0 {
            out.entry(e.field.to_owned()).or_insert_with(|| i18n::message(self.lang, e.code, &e.params));
        }
        out
    }
}

/// A submitted form whose CSRF token was checked.
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl<'a> FromRequest<'a> for Form {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let state = req.data::<AppState>().expect("AppState attached");
        let raw = String::from_request(req, body).await?;
        let Form { pairs } =
            Form::decode(&raw).ok_or_else(|| poem::Error::from_string("malformed form", StatusCode::BAD_REQUEST))?;
        let submitted = pairs.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or("");
        if !auth::csrf_valid(state, req.cookie(), submitted) || !auth::same_origin(req, state.settings.public_origin())
        {
            return Err(poem::Error::from_string(
                "This form has expired or did not come from proxdesk. Go back, reload the page and try again.",
                StatusCode::FORBIDDEN,
            ));
        }
        Ok(Form { pairs })
    }
}

impl Form {
    /// Decodes an `application/x-www-form-urlencoded` body; repeated names are kept, in order.
    pub fn decode(raw: &str) -> Option<Form> {
        serde_urlencoded::from_str(raw).ok().map(|pairs| Form { pairs })
    }

    pub fn get(&self, name: &str) -> &str {
        self.pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// A selection of rows by id (ticked boxes sharing `name`): `None` when any value is not an id,
    /// so a tampered selection is refused whole rather than quietly thinned.
    pub fn ids(&self, name: &str) -> Option<Vec<i64>> {
        self.all(name)
            .into_iter()
            .map(|raw| {
                raw.bytes().all(|b| b.is_ascii_digit()).then(|| raw.parse::<i64>().ok()).flatten().filter(|id| *id > 0)
            })
            .collect()
    }

    /// Whether a destructive action was confirmed (the dialog, or the confirmation page).
    pub fn confirmed(&self) -> bool {
        self.get("confirmed") == "yes"
    }

    pub fn checked(&self, name: &str) -> bool {
        matches!(self.get(name), "on" | "true" | "1")
    }

    /// Every field but the CSRF token, to refill a form exactly as it was typed.
    /// Every pair but the CSRF token, in order, repeated names included.
    pub fn pairs(&self) -> impl Iterator<Item = &(String, String)> {
        self.pairs.iter().filter(|(k, _)| k != "csrf")
    }

    pub fn values(&self) -> BTreeMap<String, String> {
        self.pairs.iter().filter(|(k, _)| k != "csrf").cloned().collect()
    }
}

/// Parses a whole number typed into `field`, recording an error when it is not one.
pub fn number<T: std::str::FromStr + Default>(errors: &mut FieldErrors, field: &'static str, raw: &str) -> T {
    match raw.trim().parse() {
        Ok(v) => v,
        Err(_) => {
            errors.push(crate::domain::FieldError::new(field, "error.not_a_number"));
            T::default()
        }
    }
}

/// Like `number`, but empty means `None`.
pub fn optional_number<T: std::str::FromStr>(errors: &mut FieldErrors, field: &'static str, raw: &str) -> Option<T> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    match raw.parse() {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(crate::domain::FieldError::new(field, "error.not_a_number"));
            None
        }
    }
}

/// 303 See Other: the answer to every successful form POST.
pub fn redirect(to: &str) -> Response {
    Response::builder().status(StatusCode::SEE_OTHER).header("Location", to).finish()
}

pub fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).map(|e| e[1..].to_owned()).unwrap_or_default()
}

/// Collapses `Result<Response, Response>` from handlers.
pub fn respond(r: PageResult) -> Response {
    r.unwrap_or_else(|e| e)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::Form;

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![Just("ids".to_owned()), Just("csrf".to_owned()), "\\PC{0,6}"]
    }

    proptest! {
        /// Whatever a browser encodes (repeated names, `&`, `=`, `+`, `%`, any text) decodes to the same
        /// pairs in the same order; `get` is the first, `all` every one, and the CSRF token is never a field.
        #[test]
        fn fuzz_form_decoding_round_trips(pairs in prop::collection::vec((name(), "\\PC{0,12}|[&=+% ]{1,4}"), 0..8)) {
            let raw = serde_urlencoded::to_string(&pairs).unwrap();
            let form = Form::decode(&raw).unwrap();
            prop_assert_eq!(&form.pairs, &pairs);
            for (k, _) in &pairs {
                let values: Vec<&str> = pairs.iter().filter(|(n, _)| n == k).map(|(_, v)| v.as_str()).collect();
                prop_assert_eq!(form.get(k), values[0]);
                prop_assert_eq!(form.all(k), values);
            }
            prop_assert!(form.pairs().all(|(k, _)| k != "csrf") && !form.values().contains_key("csrf"));
        }

        /// Any body decodes or is refused, never a panic.
        #[test]
        fn fuzz_form_decoding_never_panics(raw in "\\PC{0,60}|[a-z=&%0-9A-F+]{0,40}") {
            let _ = Form::decode(&raw).map(|f| (f.ids("ids"), f.checked("x"), f.values()));
        }

        /// A selection is every id ticked, in order, or refused whole when one value is not an id.
        #[test]
        fn fuzz_selections_are_all_ids_or_refused(ids in prop::collection::vec(1..=i64::MAX, 0..6), bad in prop::option::of("|-[1-9]|\\+[1-9]|0|[0-9]{1,3}[a-z ]|9{20}"), at in any::<prop::sample::Index>()) {
            let mut values: Vec<String> = ids.iter().map(i64::to_string).collect();
            if let Some(b) = &bad {
                values.insert(at.index(values.len() + 1), b.clone());
            }
            let form = Form { pairs: values.into_iter().map(|v| ("ids".to_owned(), v)).collect() };
            prop_assert_eq!(form.ids("ids"), if bad.is_some() { None } else { Some(ids) });
        }
    }
}
