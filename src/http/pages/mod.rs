//! Server-rendered pages (minijinja). They work without JavaScript; every form carries a CSRF token.

// Page handlers short-circuit with a finished `Response` (redirect or error page) as their `Err`;
// it is built once per request, so its size does not matter.
#![allow(clippy::result_large_err)]

mod admin;
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

use poem::{Endpoint, EndpointExt, Route, get, post};

pub use render::Renderer;

pub fn routes() -> impl Endpoint {
    Route::new()
        .at("/", get(requests::dashboard))
        .at("/static/:file", get(render::static_file))
        .at("/login", get(auth::login_form).post(auth::login))
        .at("/logout", post(auth::logout))
        .at("/login/second-factor", post(auth::second_factor::submit))
        .at("/login/oidc", get(auth::openid::begin))
        .at("/login/oidc/callback", get(auth::openid::callback))
        .at("/requests", post(requests::create))
        .at("/requests/new", get(requests::new_form))
        .at("/requests/:id", get(requests::detail))
        .at("/requests/:id/live", get(live::request))
        .at("/live/dashboard", get(live::dashboard))
        .at("/admin/live", get(live::admin))
        .at("/requests/:id/cancel", post(requests::cancel))
        .at("/machines/:id/action", post(requests::machine_power))
        .at("/machines/:id", get(machines::details::show))
        .at("/machines/bulk", post(machines::bulk::start))
        .at("/machines/bulk/:id", get(machines::bulk::show))
        .at("/machines/bulk/:id/live", get(live::bulk))
        .at("/machines/:id/live", get(machines::details::live))
        .at("/machines/:id/snapshots", post(machines::snapshots::take))
        .at("/machines/:id/snapshots/rollback-newest", post(machines::snapshots::rollback_newest))
        .at("/machines/:id/snapshots/:name/rollback", post(machines::snapshots::rollback))
        .at("/machines/:id/snapshots/:name/delete", post(machines::snapshots::delete))
        .at("/admin", get(admin::home::home))
        .at("/admin/guacamole", get(admin::guacamole::guacamole))
        .at("/admin/guacamole/sync", post(admin::guacamole::sync_now))
        .at("/machines/:id/console", get(console::console))
        .at("/machines/:id/terminal", get(console::terminal))
        .at("/admin/requests", get(admin::queue::queue))
        .at("/admin/requests/bulk", post(admin::queue::bulk))
        .at("/admin/requests/:id/approve", post(admin::queue::approve))
        .at("/admin/requests/:id/reject", post(admin::queue::reject))
        .at("/admin/requests/:id/retry", post(admin::queue::retry))
        .at("/admin/machines/adopt", get(admin::adopt::show).post(admin::adopt::adopt))
        .at("/admin/machines/:id/release", post(lost_machines::release))
        .at("/admin/machines/:id/readopt", post(lost_machines::readopt))
        .at("/admin/users", get(admin::users::users).post(admin::users::create_user))
        .at("/admin/users/sign-in", get(admin::sign_in::show).post(admin::sign_in::save))
        .at("/admin/users/:id", get(admin::users::show))
        .at("/admin/users/:id/disable", post(admin::users::disable_user))
        .at("/admin/users/:id/enable", post(admin::users::enable_user))
        .at("/admin/users/:id/reset-password", post(admin::users::reset_password))
        .at("/admin/users/:id/quota", post(admin::users::set_user_quota))
        .at("/admin/users/:id/identities", post(admin::identities::link))
        .at("/admin/users/:id/identities/:identity/unlink", post(admin::identities::unlink))
        .at("/admin/catalog", get(admin::catalog::catalog).post(admin::catalog::create_template))
        .at("/admin/catalog/:id", get(admin::catalog::edit_template).post(admin::catalog::update_template))
        .at("/admin/quotas", get(admin::quotas::quotas))
        .at("/admin/quotas/:role", post(admin::quotas::set_role_quota))
        .at("/admin/audit", get(admin::audit::audit))
        .at("/profile", get(profile::show))
        .at("/profile/password", post(profile::change_password))
        .at("/profile/language", post(profile::set_language))
        .at("/profile/tokens", post(profile::create_token))
        .at("/profile/tokens/:id/revoke", post(profile::revoke_token))
        .at("/machines", get(machines::list::mine))
        .at("/admin/machines", get(machines::list::everyone))
        .at("/proxmox/:vmid/action", post(pve_guests::action))
        .at("/proxmox/:vmid/console", get(pve_guests::console))
        .at("/proxmox/:vmid/terminal", get(pve_guests::terminal))
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
    ("POST", "/admin/quotas/user"),
    ("GET", "/admin/audit"),
    ("GET", "/admin/guacamole"),
    ("GET", "/admin/live"),
    ("POST", "/admin/guacamole/sync"),
];
