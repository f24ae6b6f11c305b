//! A real OpenID provider for the sign-in tests: npm's `oidc-provider` run by node with
//! `tests/oidc/provider.mjs`, and a browser-like walk through its redirects and forms.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proxdesk::config::RawSettings;
use reqwest::{Client, StatusCode, header::LOCATION};
use serde_json::{Value, json};

use crate::external::require;

pub const CLIENT_ID: &str = "proxdesk";
pub const CLIENT_SECRET: &str = "proxdesk-test-client-secret";

/// The node binary and the installed provider package, or `None` (the test skips; CI fails instead).
pub fn node() -> Option<PathBuf> {
    let node = require("node", &["/usr/bin/node", "/usr/local/bin/node"])?;
    require("oidc-provider (npm ci)", &["node_modules/oidc-provider/package.json"])?;
    Some(node)
}

/// A free loopback port for the provider: proxdesk is configured with the issuer before the provider
/// starts (it needs proxdesk's redirect URI), which also shows that discovery waits for first use.
pub fn reserve_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// proxdesk's `oidc_*` settings for a provider on `port`; members of `admin_groups` become admins.
pub fn configure(raw: &mut RawSettings, port: u16, admin_groups: &str) {
    raw.set("oidc_issuer", format!("http://127.0.0.1:{port}"));
    raw.set("oidc_client_id", CLIENT_ID);
    raw.set("oidc_client_secret", CLIENT_SECRET);
    raw.set("oidc_scopes", "openid profile email groups");
    raw.set("oidc_admin_groups", admin_groups);
    raw.set("oidc_label", "Example SSO");
}

/// One person at the provider (the login is also their `sub`).
pub fn person(username: &str, email: &str, verified: bool, groups: &[&str]) -> Value {
    json!({"preferred_username": username, "name": format!("{username} Example"), "email": email,
        "email_verified": verified, "groups": groups})
}

pub struct OidcProvider {
    pub issuer: String,
    config: Value,
    dir: tempfile::TempDir,
    child: Child,
}

impl OidcProvider {
    /// Starts the provider on `port` for proxdesk at `app` with `accounts` (login → claims); waits for
    /// its discovery document.
    pub async fn start(node: &PathBuf, port: u16, app: &str, accounts: Value, claims_in_id_token: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = json!({
            "port": port,
            "clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "redirect_uris": [format!("{app}/login/oidc/callback")],
                "post_logout_redirect_uris": [format!("{app}/login")]}],
            "claims_in_id_token": claims_in_id_token,
            "accounts": accounts,
            "tamper": null,
        });
        let path = dir.path().join("provider.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let log = std::fs::File::create(dir.path().join("provider.log")).unwrap();
        let child = Command::new(node)
            .arg("tests/oidc/provider.mjs")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("node starts");
        let issuer = format!("http://127.0.0.1:{port}");
        let provider = OidcProvider { issuer: issuer.clone(), config, dir, child };
        let until = Instant::now() + Duration::from_secs(20);
        let discovery = format!("{issuer}/.well-known/openid-configuration");
        loop {
            if let Ok(r) = reqwest::get(&discovery).await
                && r.status() == StatusCode::OK
            {
                break;
            }
            assert!(Instant::now() < until, "the OpenID provider did not start: {}", provider.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        provider
    }

    fn write(&self) {
        std::fs::write(self.dir.path().join("provider.json"), self.config.to_string()).unwrap();
    }

    /// What the provider wrote on stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("provider.log")).unwrap_or_default()
    }

    /// Makes the token endpoint misbehave (`provider.mjs` lists the modes); `None`: behave.
    pub fn tamper(&mut self, mode: Option<&str>) {
        self.config["tamper"] = mode.map_or(Value::Null, |m| json!(m));
        self.write();
    }

    /// Changes what the provider says about `login` from now on.
    pub fn set_account(&mut self, login: &str, claims: Value) {
        self.config["accounts"][login] = claims;
        self.write();
    }

    /// How often discovery, the key set, the token and userinfo endpoints were asked.
    pub async fn stats(&self) -> Value {
        reqwest::get(format!("{}/_test/stats", self.issuer)).await.unwrap().json().await.unwrap()
    }

    /// Stops the provider (it is down from now on).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A browser's way through the provider: from proxdesk's `GET /login/oidc` (made with `client`) over
/// the provider's login form (login `login`, any password) and consent form to the URL the provider
/// sends the browser back to proxdesk with (returned, not opened). Pages the provider skips (a second
/// sign-in in the same browser) are skipped here too.
pub async fn walk_to_callback(client: &Client, app: &str, login: &str) -> String {
    walk(client, app, login, false).await
}

/// Like `walk_to_callback`, but cancels at the provider's login form.
pub async fn cancel_at_provider(client: &Client, app: &str) -> String {
    walk(client, app, "", true).await
}

async fn walk(client: &Client, app: &str, login: &str, cancel: bool) -> String {
    let r = client.get(format!("{app}/login/oidc")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "GET /login/oidc: {}", r.text().await.unwrap_or_default());
    let mut at = location(&r, app);
    let callback = format!("{app}/login/oidc/callback");
    for _ in 0..20 {
        if at.starts_with(&callback) {
            return at;
        }
        let r = client.get(&at).send().await.unwrap();
        if r.status().is_redirection() {
            at = location(&r, &origin(&at));
            continue;
        }
        assert_eq!(r.status(), StatusCode::OK, "GET {at}");
        let base = origin(&at);
        let html = r.text().await.unwrap();
        let action = attribute_after(&html, "<form", "action").unwrap_or_else(|| panic!("no form at {at}: {html}"));
        let action = absolute(&base, &action);
        let prompt = attribute_after(&html, "name=\"prompt\"", "value").unwrap_or_default();
        let r = match prompt.as_str() {
            "login" if cancel => {
                let abort = attribute_after(&html, "[ Cancel ]", "").expect("a cancel link");
                client.get(absolute(&base, &abort)).send().await.unwrap()
            }
            "login" => {
                let form = [("prompt", "login"), ("login", login), ("password", "any password")];
                client.post(&action).form(&form).send().await.unwrap()
            }
            "consent" => client.post(&action).form(&[("prompt", "consent")]).send().await.unwrap(),
            other => panic!("unexpected provider page (prompt {other:?}) at {at}: {html}"),
        };
        assert!(r.status().is_redirection(), "posting the provider's {prompt} form: {}", r.status());
        at = location(&r, &base);
    }
    panic!("the provider never sent the browser back to proxdesk");
}

/// The absolute target of a redirect.
pub fn location(r: &reqwest::Response, base: &str) -> String {
    let to = r.headers().get(LOCATION).unwrap_or_else(|| panic!("{} without Location", r.status()));
    absolute(base, to.to_str().unwrap())
}

fn absolute(base: &str, url: &str) -> String {
    if url.starts_with("http") { url.to_owned() } else { format!("{base}{url}") }
}

fn origin(url: &str) -> String {
    let after = url.find("://").map_or(0, |i| i + 3);
    url[..after + url[after..].find('/').unwrap_or(url.len() - after)].to_owned()
}

/// The value of `attr="…"` in the first tag after `marker` (for `attr` empty: the `href` before it).
fn attribute_after(html: &str, marker: &str, attr: &str) -> Option<String> {
    let at = html.find(marker)?;
    if attr.is_empty() {
        let before = &html[..at];
        let start = before.rfind("href=\"")? + 6;
        let end = before[start..].find('"')?;
        return Some(before[start..start + end].replace("&amp;", "&"));
    }
    let rest = &html[at..];
    let key = format!("{attr}=\"");
    let start = rest.find(&key)? + key.len();
    let end = rest[start..].find('"')?;
    Some(rest[start..start + end].replace("&amp;", "&"))
}
