//! Server-rendered pages (minijinja). They work without JavaScript; every form carries a CSRF token.

// Page handlers short-circuit with a finished `Response` (redirect or error page) as their `Err`;
// it is built once per request, so its size does not matter.
#![allow(clippy::result_large_err)]

mod admin;
mod approvals;
mod auth;
mod console;
mod ctx;
mod live;
mod lost_machines;
mod machine_view;
mod machines;
mod not_found;
mod profile;
mod pve_guests;
mod render;
mod request_choices;
mod requests;

use poem::endpoint::BoxEndpoint;
use poem::http::Method;
use poem::{Endpoint, EndpointExt, Route, RouteMethod};

pub use render::Renderer;

/// Every page route: method, path pattern and handler. The router is built from this one table and
/// the route-matrix tests (ownership, CSRF, roles) walk it through [`page_routes`], so a page cannot be
/// added without being checked.
fn table() -> Vec<(Method, &'static str, BoxEndpoint<'static>)> {
    use Method as M;
    vec![
        (M::GET, "/", ep(requests::dashboard)),
        (M::GET, "/static/:file", ep(render::static_file)),
        (M::GET, "/login", ep(auth::login_form)),
        (M::POST, "/login", ep(auth::login)),
        (M::POST, "/logout", ep(auth::logout)),
        (M::POST, "/login/second-factor", ep(auth::second_factor::submit)),
        (M::GET, "/login/oidc", ep(auth::openid::begin)),
        (M::GET, "/login/oidc/callback", ep(auth::openid::callback)),
        (M::POST, "/requests", ep(requests::create)),
        (M::GET, "/requests/new", ep(requests::new_form)),
        (M::GET, "/requests/:id", ep(requests::detail)),
        (M::GET, "/requests/:id/live", ep(live::request)),
        (M::GET, "/live/dashboard", ep(live::dashboard)),
        (M::GET, "/admin/live", ep(live::admin)),
        (M::POST, "/requests/:id/cancel", ep(requests::cancel)),
        (M::POST, "/machines/:id/action", ep(requests::machine_power)),
        (M::GET, "/machines/:id", ep(machines::details::show)),
        (M::POST, "/machines/:id/lease", ep(machines::lease::extend)),
        (M::POST, "/machines/bulk", ep(machines::bulk::start)),
        (M::GET, "/machines/bulk/:id", ep(machines::bulk::show)),
        (M::GET, "/machines/bulk/:id/live", ep(live::bulk)),
        (M::GET, "/machines/:id/live", ep(machines::details::live)),
        (M::POST, "/machines/:id/snapshots", ep(machines::snapshots::take)),
        (M::POST, "/machines/:id/snapshots/rollback-newest", ep(machines::snapshots::rollback_newest)),
        (M::POST, "/machines/:id/snapshots/:name/rollback", ep(machines::snapshots::rollback)),
        (M::POST, "/machines/:id/snapshots/:name/delete", ep(machines::snapshots::delete)),
        (M::GET, "/admin", ep(admin::home::home)),
        (M::GET, "/admin/guacamole", ep(admin::guacamole::guacamole)),
        (M::POST, "/admin/guacamole/sync", ep(admin::guacamole::sync_now)),
        (M::GET, "/machines/:id/console", ep(console::console)),
        (M::GET, "/machines/:id/terminal", ep(console::terminal)),
        (M::GET, "/approvals", ep(approvals::list)),
        (M::POST, "/approvals/:id/approve", ep(approvals::approve)),
        (M::POST, "/approvals/:id/reject", ep(approvals::reject)),
        (M::GET, "/admin/groups", ep(admin::groups::list)),
        (M::POST, "/admin/groups", ep(admin::groups::create)),
        (M::GET, "/admin/groups/:id", ep(admin::groups::show)),
        (M::POST, "/admin/groups/:id", ep(admin::groups::update)),
        (M::POST, "/admin/groups/:id/delete", ep(admin::groups::delete)),
        (M::POST, "/admin/groups/:id/members", ep(admin::groups::add_member)),
        (M::POST, "/admin/groups/:id/members/:user_id/remove", ep(admin::groups::remove_member)),
        (M::GET, "/admin/requests", ep(admin::queue::queue)),
        (M::POST, "/admin/requests/bulk", ep(admin::queue::bulk)),
        (M::POST, "/admin/requests/:id/approve", ep(admin::queue::approve)),
        (M::POST, "/admin/requests/:id/reject", ep(admin::queue::reject)),
        (M::POST, "/admin/requests/:id/retry", ep(admin::queue::retry)),
        (M::GET, "/admin/machines/adopt", ep(admin::adopt::show)),
        (M::POST, "/admin/machines/adopt", ep(admin::adopt::adopt)),
        (M::POST, "/admin/machines/:id/release", ep(lost_machines::release)),
        (M::POST, "/admin/machines/:id/readopt", ep(lost_machines::readopt)),
        (M::GET, "/admin/users", ep(admin::users::users)),
        (M::POST, "/admin/users", ep(admin::users::create_user)),
        (M::GET, "/admin/users/sign-in", ep(admin::sign_in::show)),
        (M::POST, "/admin/users/sign-in", ep(admin::sign_in::save)),
        (M::GET, "/admin/users/:id", ep(admin::users::show)),
        (M::POST, "/admin/users/:id/disable", ep(admin::users::disable_user)),
        (M::POST, "/admin/users/:id/enable", ep(admin::users::enable_user)),
        (M::POST, "/admin/users/:id/reset-password", ep(admin::users::reset_password)),
        (M::POST, "/admin/users/:id/quota", ep(admin::users::set_user_quota)),
        (M::POST, "/admin/users/:id/identities", ep(admin::identities::link)),
        (M::POST, "/admin/users/:id/identities/:identity/unlink", ep(admin::identities::unlink)),
        (M::GET, "/admin/catalog", ep(admin::catalog::catalog)),
        (M::POST, "/admin/catalog", ep(admin::catalog::create_template)),
        (M::GET, "/admin/catalog/:id", ep(admin::catalog::edit_template)),
        (M::POST, "/admin/catalog/:id", ep(admin::catalog::update_template)),
        (M::GET, "/admin/quotas", ep(admin::quotas::quotas)),
        (M::GET, "/admin/approval-rules", ep(admin::approval_rules::list)),
        (M::POST, "/admin/approval-rules", ep(admin::approval_rules::create)),
        (M::GET, "/admin/approval-rules/:id", ep(admin::approval_rules::edit)),
        (M::POST, "/admin/approval-rules/:id", ep(admin::approval_rules::update)),
        (M::POST, "/admin/approval-rules/:id/delete", ep(admin::approval_rules::delete)),
        (M::POST, "/admin/quotas/:role", ep(admin::quotas::set_role_quota)),
        (M::GET, "/admin/audit", ep(admin::audit::audit)),
        (M::GET, "/admin/webhooks", ep(admin::webhooks::show)),
        (M::POST, "/admin/webhooks", ep(admin::webhooks::create)),
        (M::POST, "/admin/webhooks/:id/delete", ep(admin::webhooks::delete)),
        (M::GET, "/profile", ep(profile::show)),
        (M::POST, "/profile/password", ep(profile::change_password)),
        (M::POST, "/profile/language", ep(profile::set_language)),
        (M::POST, "/profile/notifications", ep(profile::set_notifications)),
        (M::POST, "/profile/tokens", ep(profile::create_token)),
        (M::POST, "/profile/tokens/:id/revoke", ep(profile::revoke_token)),
        (M::GET, "/machines", ep(machines::list::mine)),
        (M::GET, "/admin/machines", ep(machines::list::everyone)),
        (M::POST, "/proxmox/:vmid/action", ep(pve_guests::action)),
        (M::GET, "/proxmox/:vmid/console", ep(pve_guests::console)),
        (M::GET, "/proxmox/:vmid/terminal", ep(pve_guests::terminal)),
    ]
}

fn ep(handler: impl Endpoint + 'static) -> BoxEndpoint<'static> {
    handler.map_to_response().boxed()
}

/// Every page route as (method, path pattern), in the router's own syntax (`/machines/:id`).
pub fn page_routes() -> Vec<(Method, &'static str)> {
    table().into_iter().map(|(method, path, _)| (method, path)).collect()
}

pub fn routes() -> impl Endpoint {
    // One `RouteMethod` per path, holding each method the table lists for it.
    let mut paths: Vec<(&'static str, RouteMethod)> = Vec::new();
    for (method, path, handler) in table() {
        match paths.iter_mut().find(|(p, _)| *p == path) {
            Some((_, methods)) => *methods = std::mem::take(methods).method(method, handler),
            None => paths.push((path, RouteMethod::new().method(method, handler))),
        }
    }
    paths
        .into_iter()
        .fold(Route::new(), |route, (path, methods)| route.at(path, methods))
        .around(not_found::layout_for_unknown_addresses)
}

/// Every page route that only admins may see, for the role-matrix tests.
pub const ADMIN_PAGES: &[(&str, &str)] = &[
    ("GET", "/admin"),
    ("GET", "/admin/requests"),
    ("GET", "/admin/machines"),
    ("POST", "/admin/requests/bulk"),
    ("POST", "/admin/requests/1/approve"),
    ("POST", "/admin/requests/1/reject"),
    ("POST", "/admin/requests/1/retry"),
    ("POST", "/admin/machines/1/release"),
    ("GET", "/admin/machines/adopt"),
    ("POST", "/admin/machines/adopt"),
    ("POST", "/admin/machines/1/readopt"),
    ("GET", "/admin/users"),
    ("GET", "/admin/users/1"),
    ("POST", "/admin/users"),
    ("POST", "/admin/users/1/disable"),
    ("POST", "/admin/users/1/enable"),
    ("POST", "/admin/users/1/reset-password"),
    ("POST", "/admin/users/1/quota"),
    ("POST", "/admin/users/1/identities"),
    ("POST", "/admin/users/1/identities/2/unlink"),
    ("GET", "/admin/users/sign-in"),
    ("POST", "/admin/users/sign-in"),
    ("GET", "/admin/catalog"),
    ("POST", "/admin/catalog"),
    ("GET", "/admin/catalog/1"),
    ("POST", "/admin/catalog/1"),
    ("GET", "/admin/quotas"),
    ("GET", "/admin/approval-rules"),
    ("POST", "/admin/approval-rules"),
    ("GET", "/admin/approval-rules/1"),
    ("POST", "/admin/approval-rules/1"),
    ("POST", "/admin/approval-rules/1/delete"),
    ("POST", "/admin/quotas/user"),
    ("GET", "/admin/audit"),
    ("GET", "/admin/groups"),
    ("POST", "/admin/groups"),
    ("GET", "/admin/groups/1"),
    ("POST", "/admin/groups/1"),
    ("POST", "/admin/groups/1/delete"),
    ("POST", "/admin/groups/1/members"),
    ("POST", "/admin/groups/1/members/3/remove"),
    ("GET", "/admin/guacamole"),
    ("GET", "/admin/live"),
    ("POST", "/admin/guacamole/sync"),
    ("GET", "/admin/webhooks"),
    ("POST", "/admin/webhooks"),
    ("POST", "/admin/webhooks/1/delete"),
];
