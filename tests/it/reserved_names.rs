//! System account names (`root`, `daemon`, `www-data`…) never own a machine: refused wherever a name
//! enters (the admin's page and API, the command line, every outside sign-in), a request owned by one
//! is not provisioned, and finishing refuses (exit 10) a login that exists in the guest with a system
//! UID, checked against the simulated guest's own `/etc/passwd`.

use chrono::Utc;
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use entities::{session, user};
use proxdesk::domain::identity::{IdentityProvider, RoleMapping, VerifiedIdentity};
use proxdesk::domain::roles::Role;
use proxdesk::integrations::pve::sim::{Endpoint, SimConfig, SimHandle, SimSsh, SimSshConfig, SimSshHandle, Simulator};
use proxdesk::services::{self, ServiceError};

use crate::helpers::{TestApp, spawn_app_with};
use crate::provision::{TOKEN_ID, TOKEN_SECRET, settle};

const EN_RESERVED: &str = "is the name of a system account in machines";

async fn account(app: &TestApp, name: &str) -> Option<user::Model> {
    user::Entity::find().filter(user::Column::Username.eq(name)).one(&app.db).await.unwrap()
}

#[tokio::test]
async fn the_api_refuses_system_account_names_as_a_validation_problem() {
    let app = spawn_app_with(|_| {}).await;
    let (chief, _) = app.user("chief", Role::Admin).await;
    let token = app.token(&chief).await;
    for name in ["root", "daemon", "www-data", "nobody", "sshd", "admin", "systemd-network"] {
        let r = app.post(&token, "/api/v1/users", json!({"username": name, "role": "user"})).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["type"], "/problems/validation", "{problem}");
        assert_eq!(problem["errors"][0]["field"], "username", "{problem}");
        assert_eq!(problem["errors"][0]["code"], "error.username_reserved", "{problem}");
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(&format!("\"{name}\" {EN_RESERVED}")), "{message}");
        assert!(account(&app, name).await.is_none(), "{name} was made");
    }
    let r = app.post(&token, "/api/v1/users", json!({"username": "rooter", "role": "user"})).await;
    assert_eq!(r.status(), StatusCode::OK, "a name that only contains one is fine");
}

#[tokio::test]
async fn the_admin_page_refuses_them_keeps_what_was_typed_and_says_why_in_each_language() {
    let app = spawn_app_with(|_| {}).await;
    let (_, pw) = app.user("chief", Role::Admin).await;
    let b = app.logged_in("chief", &pw).await;
    let r = b.post_form("/admin/users", "/admin/users", &[("username", "www-data"), ("role", "admin")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("value=\"www-data\""), "what was typed is kept");
    assert!(html.contains(&format!("&quot;www-data&quot; {EN_RESERVED}")), "{html}");
    for (lang, words) in [("fr", "est le nom d&#x27;un compte système"), ("it", "è il nome di un account di sistema")]
    {
        let fields = [("username", "daemon"), ("role", "user"), ("csrf", &b.csrf("/admin/users").await)];
        let r = b
            .client
            .post(format!("{}/admin/users", b.base))
            .header("accept-language", lang)
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{lang}");
        let html = r.text().await.unwrap();
        assert!(html.contains("daemon") && html.contains(words), "{lang}: {html}");
    }
    assert_eq!(user::Entity::find().count(&app.db).await.unwrap(), 1, "only chief");
}

#[test]
fn the_command_line_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_proxdesk"))
        .args(["user", "add", "root", "--admin"])
        .env("PROXDESK_DATA_DIR", dir.path())
        .env("PROXDESK_LOG", "warn")
        .env_remove("PROXDESK_DATABASE_URL")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(&format!("username: \"root\" {EN_RESERVED}")), "{err}");
}

#[tokio::test]
async fn a_proxmox_realm_sign_in_as_root_at_pam_makes_no_account() {
    let (app, _sim) = crate::realm_sign_in::realm_app(crate::realm_sign_in::cluster()).await;
    let b = app.browser();
    // The simulator's root@pam password is right: PVE vouches for the person, proxdesk still refuses.
    let r = crate::realm_sign_in::sign_in(&b, "pve:pam", "root", "proxdesk").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!("&quot;root@pam&quot; {EN_RESERVED}")), "{html}");
    assert!(html.contains("value=\"root\""), "what was typed is kept: {html}");
    assert!(account(&app, "root@pam").await.is_none());
    assert_eq!(session::Entity::find().count(&app.db).await.unwrap(), 0, "no session");
    // An ordinary realm account still signs in.
    let r = crate::realm_sign_in::sign_in(&b, "pve:pam", "carol", "carol-at-pam-pw").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_openid_sign_in_named_root_makes_no_account() {
    use crate::oidc_provider::{OidcProvider, configure, node, person, reserve_port, walk_to_callback};
    let Some(node) = node() else { return };
    let port = reserve_port();
    let app = spawn_app_with(|raw| configure(raw, port, "admins")).await;
    let people = json!({"root": person("Root", "root@example.org", true, &["admins"]),
        "ann": person("ann", "ann@example.org", true, &[])});
    let _provider = OidcProvider::start(&node, port, &app.address, people, true).await;
    let b = app.browser();
    let callback = walk_to_callback(&b.client, &app.address, "root").await;
    let r = b.client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains(&format!("&quot;root&quot; {EN_RESERVED}")));
    assert!(account(&app, "root").await.is_none() && account(&app, "root-2").await.is_none());
    let b = app.browser();
    let r = b.client.get(walk_to_callback(&b.client, &app.address, "ann").await).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "an ordinary name signs in");
}

/// The step every outside sign-in ends in (the directory's too: a real `slapd` is not needed to
/// show that its identities go through the same refusal).
#[tokio::test]
async fn a_directory_identity_named_like_a_system_account_is_refused() {
    let app = spawn_app_with(|_| {}).await;
    let who = |name: &str| VerifiedIdentity {
        provider: IdentityProvider::Ldap,
        issuer: "ldap.example.org".into(),
        subject: format!("uuid-{name}"),
        preferred_username: name.into(),
        display_name: None,
        email: None,
        email_verified: false,
        groups: vec![],
    };
    let mapping = RoleMapping::default();
    for name in ["Daemon", "www-data", "_apt", "systemd-resolve"] {
        let e = services::identities::sign_in(&app.db, &who(name), &mapping, 1).await.err();
        assert!(matches!(e, Some(ServiceError::ReservedName(_))), "{name}: {e:?}");
    }
    assert_eq!(user::Entity::find().count(&app.db).await.unwrap(), 0, "no account was made");
    assert!(services::identities::sign_in(&app.db, &who("dora"), &mapping, 1).await.is_ok());
}

struct Cluster {
    app: TestApp,
    sim: SimHandle,
    ssh: SimSshHandle,
    admin_token: String,
    template: i64,
    _keys: tempfile::TempDir,
}

/// proxdesk finishing containers over the simulated nodes' SSH, an admin, and a catalog entry for
/// template 9000 (finished through `pct exec` on the node).
async fn cluster() -> Cluster {
    let sim = Simulator::start(SimConfig::for_tests().with_token(
        TOKEN_ID,
        TOKEN_SECRET,
        proxdesk::integrations::pve::sim::admin_acl(),
    ))
    .await
    .unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("id_ed25519");
    let public = proxdesk::integrations::pve::sim::write_client_key(&key_file, "proxdesk-test").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ssh = SimSsh::start(listener, &sim, SimSshConfig::new(vec![public])).await.unwrap();
    let (url, settings) = (sim.url().to_owned(), ssh.settings(&key_file));
    let app = spawn_app_with(|raw| {
        raw.set("pve_url", url);
        raw.set("pve_token", format!("{TOKEN_ID}={TOKEN_SECRET}"));
        raw.set("provision_poll_ms", "20");
        raw.set("provision_backoff_ms", "50");
        raw.set("provision_ip_timeout_secs", "5");
        raw.set("provision_task_timeout_secs", "5");
        for (name, value) in settings {
            raw.set(&name["PROXDESK_".len()..].to_ascii_lowercase(), value);
        }
    })
    .await;
    let (chief, _) = app.user("chief", Role::Admin).await;
    let admin_token = app.token(&chief).await;
    let template = app.template("Debian").await;
    Cluster { app, sim, ssh, admin_token, template, _keys: keys }
}

impl Cluster {
    /// `owner` asks for a container and the admin approves; returns the request once it settles.
    async fn provision_for(&self, owner: &user::Model, hostname: &str) -> Value {
        let actor: services::Actor = owner.clone().try_into().unwrap();
        let token = self.app.token(&actor).await;
        let id = self.app.submit_ok(&token, self.template, hostname).await;
        let r = self.app.post(&self.admin_token, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
        assert_eq!(r.status(), StatusCode::OK);
        settle(&self.app, &self.admin_token, id).await
    }

    fn containers(&self) -> Vec<proxdesk::integrations::pve::sim::Guest> {
        self.sim.state().containers().into_iter().filter(|g| !g.is_template()).cloned().collect()
    }
}

fn timeline_entry(request: &Value, action: &str) -> Value {
    let entries = request["timeline"].as_array().unwrap();
    entries.iter().find(|e| e["action"] == action).cloned().unwrap_or_else(|| panic!("no {action}: {request}"))
}

#[tokio::test]
async fn a_login_that_is_a_system_account_in_the_template_fails_with_exit_10_and_leaves_nothing() {
    let c = cluster().await;
    // The admin's template runs a build service under its own system account.
    c.sim.with_state(|s| s.guests.get_mut(&9000).unwrap().passwd.set("jenkins", 998));
    c.app.user("jenkins", Role::User).await;
    let owner = account(&c.app, "jenkins").await.unwrap();
    let done = c.provision_for(&owner, "ci-1").await;
    assert_eq!(done["status"], "failed", "{done}");
    let reason = done["reason"].as_str().unwrap();
    assert!(reason.contains("\"jenkins\" already exists in this template as a system account"), "{reason}");
    assert!(reason.contains("exit status 10"), "{reason}");
    assert_eq!(timeline_entry(&done, "provision.finished")["details"]["exit_status"], 10);
    let stderr = timeline_entry(&done, "provision.finished")["details"]["stderr"].as_str().unwrap().to_owned();
    assert!(stderr.contains("jenkins is a system account here (uid 998)"), "{stderr}");
    let commands = c.ssh.commands();
    assert_eq!(commands.len(), 1, "refused at once, never retried: {commands:?}");
    assert_eq!(commands[0].exit_status, 10);
    assert!(c.containers().is_empty(), "the container was rolled back");
    assert_eq!(c.sim.state().guests[&9000].passwd.uid("jenkins"), Some(998), "the template is untouched");
    // Failed, so an admin may send it back (it would fail the same way until the template changes).
    let r = c.app.post(&c.admin_token, &format!("/api/v1/requests/{}/retry", done["id"]), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_request_owned_by_a_system_account_name_is_not_provisioned() {
    let c = cluster().await;
    // An account from before names were reserved.
    let legacy = user::ActiveModel {
        username: Set("daemon".into()),
        password_hash: Set(String::new()),
        role: Set("user".into()),
        disabled: Set(false),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(&c.app.db)
    .await
    .unwrap();
    let done = c.provision_for(&legacy, "old-1").await;
    assert_eq!(done["status"], "failed", "{done}");
    let reason = done["reason"].as_str().unwrap();
    assert!(reason.contains("\"daemon\" is a system account's name inside machines"), "{reason}");
    assert!(reason.contains("nothing was created"), "{reason}");
    assert!(c.containers().is_empty(), "no container");
    assert!(c.ssh.commands().is_empty(), "no finishing ran");
    assert_eq!(c.sim.calls().get(Endpoint::LxcClone), 0, "nothing was cloned");
}

#[tokio::test]
async fn an_ordinary_name_gets_a_login_account_from_uid_1000() {
    let c = cluster().await;
    c.app.user("alice", Role::User).await;
    let owner = account(&c.app, "alice").await.unwrap();
    let done = c.provision_for(&owner, "lab-1").await;
    assert_eq!(done["status"], "ready", "{done}");
    let guest = c.containers().pop().unwrap();
    assert_eq!(guest.finished.as_ref().unwrap().login_user, "alice");
    assert_eq!(guest.passwd.uid("alice"), Some(1000), "useradd made a login account");
    assert_eq!(guest.passwd.uid("root"), Some(0), "the system accounts are the template's");
}
