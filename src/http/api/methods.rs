//! 405 for a method the spec does not declare on one of its paths, with the `Allow` header RFC 9110
//! asks for, as problem+json. The table is read from the spec itself, so it cannot drift from it.

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{IntoResponse, Request, Response};

use crate::http::errors::{Problem, ProblemJson};

/// Each path of the spec, as segments (`{id}` for a parameter), with its declared methods.
pub struct MethodTable(Vec<(Vec<String>, Vec<Method>)>);

impl MethodTable {
    /// From the OpenAPI document (`paths` relative to the API's base).
    pub fn from_spec(spec: &serde_json::Value) -> Self {
        let paths = spec["paths"].as_object().into_iter().flatten();
        MethodTable(
            paths
                .map(|(path, item)| {
                    let segments = path.split('/').map(str::to_owned).collect();
                    let methods = item
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter_map(|(m, _)| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
                        .collect();
                    (segments, methods)
                })
                .collect(),
        )
    }

    /// The methods declared on the path `path` is routed to (literal segments before parameters, as
    /// the router does), or `None` when no path of the spec matches.
    pub fn allowed(&self, path: &str) -> Option<&[Method]> {
        let sent: Vec<&str> = path.split('/').collect();
        self.0
            .iter()
            .filter(|(tpl, _)| {
                tpl.len() == sent.len() && tpl.iter().zip(&sent).all(|(t, s)| t.starts_with('{') || t == s)
            })
            // The most literal template wins, segment by segment from the left.
            .max_by_key(|(tpl, _)| tpl.iter().map(|t| !t.starts_with('{')).collect::<Vec<bool>>())
            .map(|(_, methods)| methods.as_slice())
    }

    /// The 405 answer for `req`, when its method is not declared on its path.
    pub fn refuse(&self, req: &Request) -> Option<Response> {
        let allowed = self.allowed(req.uri().path())?;
        let method = req.method();
        let served = allowed.contains(method) || (method == Method::HEAD && allowed.contains(&Method::GET));
        if served {
            return None;
        }
        let mut list: Vec<&str> = allowed.iter().map(Method::as_str).collect();
        list.sort_unstable();
        let list = list.join(", ");
        let detail = format!("{method} is not allowed here; allowed: {list}");
        let problem =
            Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed", Some(detail));
        let mut response = ProblemJson(problem).into_response();
        if let Ok(value) = HeaderValue::from_str(&list) {
            response.headers_mut().insert(header::ALLOW, value);
        }
        Some(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> MethodTable {
        MethodTable::from_spec(&serde_json::json!({"paths": {
            "/requests/{id}": {"get": {}},
            "/requests/bulk": {"post": {}},
            "/machines/{id}": {"get": {}, "delete": {}},
        }}))
    }

    #[test]
    fn a_literal_segment_wins_over_a_parameter_as_in_the_router() {
        let t = table();
        assert_eq!(t.allowed("/requests/bulk"), Some(&[Method::POST][..]));
        assert_eq!(t.allowed("/requests/7"), Some(&[Method::GET][..]));
        assert_eq!(t.allowed("/machines/7").map(<[Method]>::len), Some(2));
        assert_eq!(t.allowed("/nope"), None);
    }

    #[test]
    fn an_undeclared_method_is_refused_with_allow_and_head_follows_get() {
        let t = table();
        let req = |m: Method, p: &str| Request::builder().method(m).uri(p.parse().unwrap()).finish();
        let r = t.refuse(&req(Method::PUT, "/machines/7")).unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[header::ALLOW], "DELETE, GET");
        assert!(t.refuse(&req(Method::HEAD, "/machines/7")).is_none());
        assert!(t.refuse(&req(Method::DELETE, "/machines/7")).is_none());
        assert!(t.refuse(&req(Method::GET, "/nope")).is_none());
    }
}
