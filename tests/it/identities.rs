//! Outside identities and accounts: one account per person whichever way they sign in, linking by a
//! verified e-mail only, group → role mapping at every sign-in, and admins linking and unlinking.

use proxdesk::domain::identity::{IdentityProvider, RoleMapping, VerifiedIdentity};
use proxdesk::domain::roles::Role;
use proxdesk::services::{self, ServiceError, identities::LinkInput};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

fn oidc(subject: &str, email: Option<&str>, verified: bool, groups: &[&str]) -> VerifiedIdentity {
    VerifiedIdentity {
        provider: IdentityProvider::Oidc,
        issuer: "https://sso.example.org".into(),
        subject: subject.into(),
        preferred_username: "alice".into(),
        display_name: Some("Alice Martin".into()),
        email: email.map(str::to_owned),
        email_verified: verified,
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

async fn audit_actions(app: &crate::helpers::TestApp, user_id: i64) -> Vec<String> {
    services::audit::timeline(&app.db, "user", user_id).await.unwrap().into_iter().map(|e| e.action).collect()
}

#[tokio::test]
async fn a_first_sign_in_makes_an_account_and_the_next_one_finds_it() {
    let app = spawn_app().await;
    let who = oidc("sub-1", Some("alice@example.org"), true, &[]);
    let first = services::identities::sign_in(&app.db, &who, &RoleMapping::default(), 12).await.unwrap();
    assert_eq!(first.actor.username, "alice");
    assert_eq!(first.actor.role, Role::User);
    let again = services::identities::sign_in(&app.db, &who, &RoleMapping::default(), 12).await.unwrap();
    assert_eq!(again.actor.id, first.actor.id, "one account per person");
    // The new account has no password: its name and a password never sign in locally.
    let b = app.browser();
    assert_eq!(b.login("alice", "").await.status(), StatusCode::UNAUTHORIZED);
    let actions = audit_actions(&app, first.actor.id).await;
    assert_eq!(actions, ["user.created", "identity.linked", "user.signed_in", "user.signed_in"]);
}

#[tokio::test]
async fn a_clash_of_names_gets_a_numbered_account_not_someone_elses() {
    let app = spawn_app().await;
    let (local, _) = app.user("alice", Role::Admin).await;
    let s = services::identities::sign_in(&app.db, &oidc("sub-2", None, false, &[]), &RoleMapping::default(), 12)
        .await
        .unwrap();
    assert_ne!(s.actor.id, local.id);
    assert_eq!(s.actor.username, "alice-2");
    assert_eq!(s.actor.role, Role::User, "the local admin's role is not inherited");
}

#[tokio::test]
async fn only_a_verified_e_mail_links_to_an_existing_account() {
    let app = spawn_app().await;
    let first = oidc("sub-a", Some("Alice@Example.org"), true, &[]);
    let alice = services::identities::sign_in(&app.db, &first, &RoleMapping::default(), 12).await.unwrap();
    // The same verified address from another provider: the same person.
    let mut ldap = oidc("uuid-1", Some("alice@example.org"), true, &[]);
    ldap.provider = IdentityProvider::Ldap;
    ldap.issuer = "ldap.example.org".into();
    let linked = services::identities::sign_in(&app.db, &ldap, &RoleMapping::default(), 12).await.unwrap();
    assert_eq!(linked.actor.id, alice.actor.id);
    // An unverified claim of that address makes a new account: anyone can type any address.
    let mut pve = oidc("mallory@pve", Some("alice@example.org"), false, &[]);
    pve.provider = IdentityProvider::Pve;
    pve.issuer = "pve".into();
    pve.preferred_username = "mallory@pve".into();
    let other = services::identities::sign_in(&app.db, &pve, &RoleMapping::default(), 12).await.unwrap();
    assert_ne!(other.actor.id, alice.actor.id);
    let linked_by = services::audit::timeline(&app.db, "user", alice.actor.id).await.unwrap();
    assert!(linked_by.iter().any(|e| e.action == "identity.linked" && e.details.contains("verified_email")));
}

#[tokio::test]
async fn the_group_mapping_promotes_and_demotes_at_every_sign_in() {
    let app = spawn_app().await;
    let mapping = RoleMapping::from_list("proxdesk-admins");
    let admin = services::identities::sign_in(&app.db, &oidc("s", None, false, &["proxdesk-admins"]), &mapping, 12)
        .await
        .unwrap();
    assert_eq!(admin.actor.role, Role::Admin);
    let later =
        services::identities::sign_in(&app.db, &oidc("s", None, false, &["students"]), &mapping, 12).await.unwrap();
    assert_eq!(later.actor.role, Role::User, "removed from the group, no longer an admin");
    assert!(audit_actions(&app, admin.actor.id).await.contains(&"user.role_changed".to_owned()));
    // A provider without a mapping leaves the role as it is.
    let kept = services::identities::sign_in(&app.db, &oidc("s", None, false, &[]), &RoleMapping::default(), 12)
        .await
        .unwrap();
    assert_eq!(kept.actor.role, Role::User);
}

#[tokio::test]
async fn a_disabled_account_stays_out_whichever_way_it_comes() {
    let app = spawn_app().await;
    let (root, _) = app.user("chief", Role::Admin).await;
    let who = oidc("sub-d", None, false, &[]);
    let s = services::identities::sign_in(&app.db, &who, &RoleMapping::default(), 12).await.unwrap();
    services::users::set_disabled(&app.db, &root, s.actor.id, true).await.unwrap();
    let again = services::identities::sign_in(&app.db, &who, &RoleMapping::default(), 12).await;
    assert!(matches!(again, Err(ServiceError::Unauthenticated)), "{:?}", again.err());
}

#[tokio::test]
async fn an_admin_links_and_unlinks_identities_on_the_user_page() {
    let app = spawn_app().await;
    let (_, pw) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let b = app.logged_in("chief", &pw).await;
    let page = format!("/admin/users/{}", alice.id);
    // Bad input: the form says what is wrong and keeps what was typed.
    let r = b
        .post_form(&page, &format!("{page}/identities"), &[("provider", "pve"), ("issuer", "pve"), ("subject", "")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"e-subject\""), "the subject field is marked");
    assert!(html.contains("value=\"pve\""), "the issuer typed is kept");
    let r = b
        .post_form(
            &page,
            &format!("{page}/identities"),
            &[("provider", "pve"), ("issuer", "pve"), ("subject", "alice@pve")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = b.get(&page).await.text().await.unwrap();
    assert!(html.contains("alice@pve") && html.contains("Proxmox VE realm"));
    assert_eq!(services::identities::pve_userid(&app.db, alice.id).await.unwrap().as_deref(), Some("alice@pve"));
    // The first sign-in through that identity lands in alice's account.
    let mut who = oidc("alice@pve", None, false, &[]);
    who.provider = IdentityProvider::Pve;
    who.issuer = "pve".into();
    let s = services::identities::sign_in(&app.db, &who, &RoleMapping::default(), 12).await.unwrap();
    assert_eq!(s.actor.id, alice.id);
    // Unlinking asks first, then removes it (alice keeps her password, so it is allowed).
    let ident = services::identities::list_for_user(&app.db, &s.actor, alice.id).await.unwrap()[0].id;
    let action = format!("{page}/identities/{ident}/unlink");
    let r = b.post_form(&page, &action, &[]).await;
    assert_eq!(r.status(), StatusCode::OK, "a confirmation page first");
    let r = b.post_form(&page, &action, &[("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(services::identities::pve_userid(&app.db, alice.id).await.unwrap().is_none());
    let actions = audit_actions(&app, alice.id).await;
    assert!(actions.contains(&"identity.linked".to_owned()) && actions.contains(&"identity.unlinked".to_owned()));
}

#[tokio::test]
async fn moving_an_identity_joins_two_accounts_and_the_only_way_in_is_never_unlinked() {
    let app = spawn_app().await;
    let (root, _) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    // A first sign-in made a second, passwordless account for the same person.
    let who = oidc("sub-m", None, false, &[]);
    let made = services::identities::sign_in(&app.db, &who, &RoleMapping::default(), 12).await.unwrap();
    assert_ne!(made.actor.id, alice.id);
    let ident = services::identities::list_for_user(&app.db, &root, made.actor.id).await.unwrap()[0].id;
    // Its only identity cannot be unlinked: nobody could sign in to it again.
    let refused = services::identities::unlink(&app.db, &root, ident).await;
    assert!(matches!(refused, Err(ServiceError::Conflict(_))));
    // Moved to alice: the next sign-in is alice, and the other account's sessions through it ended.
    let input = LinkInput { provider: "oidc".into(), issuer: who.issuer.clone(), subject: who.subject.clone() };
    services::identities::link(&app.db, &root, alice.id, &input).await.unwrap();
    let s = services::identities::sign_in(&app.db, &who, &RoleMapping::default(), 12).await.unwrap();
    assert_eq!(s.actor.id, alice.id);
    assert!(services::auth::session_actor(&app.db, made.token.expose()).await.unwrap().is_none());
}

#[tokio::test]
async fn the_api_lists_links_and_unlinks_identities_for_admins_only() {
    let app = spawn_app().await;
    let (root, _) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let admin = app.token(&root).await;
    let user = app.token(&alice).await;
    let path = format!("/api/v1/users/{}/identities", alice.id);
    let r = app.post(&admin, &path, json!({"provider": "ldap", "issuer": "ldap.example.org", "subject": "u-1"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"].as_i64().unwrap();
    let list: serde_json::Value = app.get(&admin, &path).await.json().await.unwrap();
    assert_eq!(list[0]["subject"], "u-1");
    assert_eq!(app.get(&user, &path).await.status(), StatusCode::FORBIDDEN);
    let r = app.post(&admin, &path, json!({"provider": "saml", "issuer": "x", "subject": "y"})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "an unknown provider is refused");
    let del = app.api.delete(app.url(&format!("{path}/{id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    let del = app.api.delete(app.url(&format!("{path}/{id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(del.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_account_without_a_password_is_not_offered_a_password_change() {
    let app = spawn_app().await;
    let s = services::identities::sign_in(&app.db, &oidc("sub-p", None, false, &[]), &RoleMapping::default(), 12)
        .await
        .unwrap();
    let html = app
        .api
        .get(app.url("/profile"))
        .header("Cookie", format!("proxdesk_session={}", s.token.expose()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("no proxdesk password"), "{html}");
    assert!(!html.contains("action=\"/profile/password\""));
    assert!(html.contains("sub-p"), "the identity is listed");
}
