//! The JSON API under `/api/v1` (poem-openapi). Spec at `/api/v1/openapi.json`, UI at `/api/docs`.

mod account;
mod admin;
mod approval_rules;
mod body_error;
mod bulk;
mod console;
mod groups;
mod identities;
mod leases;
mod machine_details;
mod machines;
mod methods;
mod notifications;
mod pve_guests;
mod requests;
pub mod schemas;
mod snapshots;

use poem::{Endpoint, EndpointExt, IntoEndpoint};
use poem_openapi::{OpenApiService, Tags};

use super::errors::problem_from_poem_error;

#[derive(Tags)]
pub enum ApiTags {
    /// Requests for machines and their decisions.
    Requests,
    /// Machines and the catalog.
    Machines,
    /// The caller's account and API tokens.
    Account,
    /// Administration: users, catalog, quotas, audit log.
    Admin,
}

pub type Apis = (
    requests::RequestsApi,
    machines::MachinesApi,
    console::ConsoleApi,
    account::AccountApi,
    admin::AdminApi,
    identities::IdentitiesApi,
    pve_guests::PveGuestsApi,
    snapshots::SnapshotsApi,
    bulk::BulkApi,
    machine_details::MachineDetailsApi,
    leases::LeasesApi,
    approval_rules::ApprovalRulesApi,
    groups::GroupsApi,
    notifications::NotificationsApi,
);

/// The OpenAPI service. `public_url` becomes the spec's server entry.
pub fn service(public_url: &str) -> OpenApiService<Apis, ()> {
    OpenApiService::new((requests::RequestsApi, machines::MachinesApi, console::ConsoleApi, account::AccountApi, admin::AdminApi, identities::IdentitiesApi, pve_guests::PveGuestsApi, snapshots::SnapshotsApi, bulk::BulkApi, machine_details::MachineDetailsApi, leases::LeasesApi, approval_rules::ApprovalRulesApi, groups::GroupsApi, notifications::NotificationsApi), "proxdesk", env!("CARGO_PKG_VERSION"))
        .description("Self-service desk for Proxmox VE. Authenticate with `Authorization: Bearer <token>` (create tokens in your profile).")
        .server(format!("{public_url}/api/v1"))
}

/// The spec as committed in `openapi.json` (with a fixed server, so it does not depend on config).
pub fn spec_json() -> String {
    service("http://localhost:8080").spec()
}

/// Every error escaping the API becomes `application/problem+json`.
/// A method the spec does not declare on a path it has answers 405 with `Allow`.
pub fn with_problem_errors(api: OpenApiService<Apis, ()>) -> impl Endpoint {
    let spec: serde_json::Value = serde_json::from_str(&api.spec()).expect("the spec is JSON");
    let methods = std::sync::Arc::new(methods::MethodTable::from_spec(&spec));
    api.into_endpoint()
        .around(move |ep, req| {
            let methods = methods.clone();
            async move {
                match methods.refuse(&req) {
                    Some(refused) => Ok(refused),
                    None => ep.call(req).await.map(poem::IntoResponse::into_response),
                }
            }
        })
        .before(|mut req| async move {
            // Action endpoints (`…/approve`, `…/cancel`) take an optional body: a bare POST with no
            // body and no content type means "no options", as scripts expect.
            let empty =
                req.header("Content-Length").is_none_or(|l| l == "0") && req.header("Transfer-Encoding").is_none();
            if req.method() == poem::http::Method::POST && empty && req.header("Content-Type").is_none() {
                req.headers_mut().insert("Content-Type", poem::http::HeaderValue::from_static("application/json"));
            }
            Ok(req)
        })
        .catch_all_error(|err| async move { problem_from_poem_error(err) })
}

/// The state handlers need, from the request.
pub(crate) fn state(req: &poem::Request) -> &crate::startup::AppState {
    req.data::<crate::startup::AppState>().expect("AppState is attached to every route")
}
