//! Templates compiled into the binary, the `t()` translation function, and static assets.

use minijinja::{Environment, State, Value};
use poem::web::Path;
use poem::{Response, handler, http::StatusCode};

use crate::http::i18n;

/// Each template under `templates/`, compiled in so the binary runs from anywhere.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../../templates/layout.html")),
    ("macros.html", include_str!("../../../templates/macros.html")),
    ("error.html", include_str!("../../../templates/error.html")),
    ("machines/list.html", include_str!("../../../templates/machines/list.html")),
    ("machines/bulk.html", include_str!("../../../templates/machines/bulk.html")),
    ("confirm.html", include_str!("../../../templates/confirm.html")),
    ("auth/login.html", include_str!("../../../templates/auth/login.html")),
    ("auth/second_factor.html", include_str!("../../../templates/auth/second_factor.html")),
    ("requests/dashboard.html", include_str!("../../../templates/requests/dashboard.html")),
    ("requests/new.html", include_str!("../../../templates/requests/new.html")),
    ("requests/detail.html", include_str!("../../../templates/requests/detail.html")),
    ("admin/queue.html", include_str!("../../../templates/admin/queue.html")),
    ("admin/sign_in.html", include_str!("../../../templates/admin/sign_in.html")),
    ("admin/users.html", include_str!("../../../templates/admin/users.html")),
    ("admin/catalog.html", include_str!("../../../templates/admin/catalog.html")),
    ("admin/template_form.html", include_str!("../../../templates/admin/template_form.html")),
    ("admin/_template_fields.html", include_str!("../../../templates/admin/_template_fields.html")),
    ("admin/quotas.html", include_str!("../../../templates/admin/quotas.html")),
    ("admin/webhooks.html", include_str!("../../../templates/admin/webhooks.html")),
    ("admin/adopt.html", include_str!("../../../templates/admin/adopt.html")),
    ("admin/audit.html", include_str!("../../../templates/admin/audit.html")),
    ("admin/home.html", include_str!("../../../templates/admin/home.html")),
    ("admin/user.html", include_str!("../../../templates/admin/user.html")),
    ("admin/groups.html", include_str!("../../../templates/admin/groups.html")),
    ("admin/group.html", include_str!("../../../templates/admin/group.html")),
    ("approvals/list.html", include_str!("../../../templates/approvals/list.html")),
    ("profile/profile.html", include_str!("../../../templates/profile/profile.html")),
    ("admin/guacamole.html", include_str!("../../../templates/admin/guacamole.html")),
    ("machines/console.html", include_str!("../../../templates/machines/console.html")),
    ("machines/_actions.html", include_str!("../../../templates/machines/_actions.html")),
    ("machines/_snapshots.html", include_str!("../../../templates/machines/_snapshots.html")),
    ("machines/_snapshot_take.html", include_str!("../../../templates/machines/_snapshot_take.html")),
    ("machines/_lease.html", include_str!("../../../templates/machines/_lease.html")),
    ("admin/approval_rules.html", include_str!("../../../templates/admin/approval_rules.html")),
    ("admin/approval_rule_edit.html", include_str!("../../../templates/admin/approval_rule_edit.html")),
    ("admin/_approval_rule_fields.html", include_str!("../../../templates/admin/_approval_rule_fields.html")),
    ("machines/snapshot_form.html", include_str!("../../../templates/machines/snapshot_form.html")),
    ("machines/details.html", include_str!("../../../templates/machines/details.html")),
    ("machines/_live.html", include_str!("../../../templates/machines/_live.html")),
];

/// Static files, compiled in.
const STATIC: &[(&str, &str, &str)] = &[
    ("style.css", "text/css; charset=utf-8", include_str!("../../../static/style.css")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../../../static/app.js")),
    ("live.js", "text/javascript; charset=utf-8", include_str!("../../../static/live.js")),
    ("machine-live.js", "text/javascript; charset=utf-8", include_str!("../../../static/machine-live.js")),
    ("favicon.svg", "image/svg+xml", include_str!("../../../static/favicon.svg")),
    ("request-form.js", "text/javascript; charset=utf-8", include_str!("../../../static/request-form.js")),
    ("catalog-form.js", "text/javascript; charset=utf-8", include_str!("../../../static/catalog-form.js")),
    ("console.js", "text/javascript; charset=utf-8", include_str!("../../../static/console.js")),
    ("terminal.js", "text/javascript; charset=utf-8", include_str!("../../../static/terminal.js")),
    ("console-ui.js", "text/javascript; charset=utf-8", include_str!("../../../static/console-ui.js")),
];

/// The template environment, built once.
pub struct Renderer {
    env: Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    pub fn new() -> Self {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).expect("templates compile");
        }
        env.add_function("t", translate);
        env.add_function("tn", translate_plural);
        env.add_filter("datetime", datetime);
        env.add_filter("size", size);
        env.add_filter("duration", duration);
        env.add_filter("number", number);
        env.add_filter("uptime", uptime);
        env.add_function("uptime_units", uptime_units);
        Renderer { env }
    }

    /// Renders `name` with `ctx`; a template error is logged and becomes an opaque 500.
    pub fn render(&self, name: &str, ctx: Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

/// The page's language (the `lang` variable).
fn lang(state: &State) -> String {
    state.lookup("lang").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| "en".into())
}

fn params(kwargs: &minijinja::value::Kwargs) -> Result<Vec<(String, String)>, minijinja::Error> {
    let mut params = Vec::new();
    for name in kwargs.args() {
        let v: Value = kwargs.get(name)?;
        params.push((name.to_owned(), v.to_string()));
    }
    Ok(params)
}

/// `t("key", name=value, …)` in templates, in the page's language.
fn translate(state: &State, key: &str, kwargs: minijinja::value::Kwargs) -> Result<String, minijinja::Error> {
    let params = params(&kwargs)?;
    let params: Vec<(&str, &String)> = params.iter().map(|(k, v)| (k.as_str(), v)).collect();
    Ok(i18n::message(&lang(state), key, &params))
}

/// `tn("key", n, name=value, …)`: `key.one` or `key.other` by the language's plural rule, `{n}` filled.
fn translate_plural(
    state: &State,
    key: &str,
    n: i64,
    kwargs: minijinja::value::Kwargs,
) -> Result<String, minijinja::Error> {
    let params = params(&kwargs)?;
    let params: Vec<(&str, &String)> = params.iter().map(|(k, v)| (k.as_str(), v)).collect();
    Ok(i18n::format::plural(&lang(state), key, n, &params))
}

/// `{{ mib | size }}`: a size in MiB in the largest fitting unit.
fn size(state: &State, mib: f64) -> String {
    i18n::format::size_mib(&lang(state), mib)
}

/// `{{ secs | duration }}`: seconds as people read them (`850 ms`, `4.2 s`, `2 h 5 min`).
fn duration(state: &State, secs: f64) -> String {
    i18n::format::duration(&lang(state), secs)
}

/// `{{ n | number }}` with the language's separators (`decimals`: 0 unless given).
fn number(state: &State, n: f64, decimals: Option<usize>) -> String {
    i18n::format::number(&lang(state), n, decimals.unwrap_or(0))
}

/// `{{ secs | uptime }}`: days, hours and minutes.
fn uptime(state: &State, secs: u64) -> String {
    i18n::format::uptime(&lang(state), secs)
}

/// The unit names the page's uptime counter uses (`data-units`).
fn uptime_units(state: &State) -> String {
    i18n::format::duration_units(&lang(state)).to_owned()
}

/// `{{ ts | datetime }}`: an RFC 3339 timestamp shown as `YYYY-MM-DD HH:MM UTC`.
fn datetime(value: String) -> String {
    chrono::DateTime::parse_from_rfc3339(&value)
        .map(|d| d.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or(value)
}

#[handler]
pub fn static_file(Path(file): Path<String>) -> Response {
    match STATIC.iter().find(|(name, _, _)| *name == file) {
        Some((_, mime, body)) => {
            Response::builder().content_type(*mime).header("Cache-Control", "public, max-age=3600").body(*body)
        }
        None => Response::builder().status(StatusCode::NOT_FOUND).finish(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    fn files_under(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files_under(&path, root, out);
            } else {
                out.insert(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }

    #[test]
    fn every_template_file_is_compiled_in_once() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut on_disk = BTreeSet::new();
        files_under(&root, &root, &mut on_disk);
        let names: Vec<&str> = super::TEMPLATES.iter().map(|(name, _)| *name).collect();
        let registered: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
        assert_eq!(registered.len(), names.len(), "a template is listed twice");
        assert_eq!(registered, on_disk);
    }
}
