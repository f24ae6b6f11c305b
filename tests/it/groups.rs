//! Groups: admins create, rename, fill and delete them through the API and the pages; a group an
//! entry's approval stage uses cannot be deleted; an entry's stages name existing groups and do not change
//! under pending requests.

use proxdesk::domain::roles::Role;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::helpers::spawn_app;
use crate::ui_fixtures::{desk, person};

#[tokio::test]
async fn admins_create_rename_fill_and_delete_groups_through_the_api() {
    let app = spawn_app().await;
    let (admin, _) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let t = app.token(&admin).await;
    let r = app.post(&t, "/api/v1/admin/groups", json!({"name": "teachers", "description": "course staff"})).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let g: Value = r.json().await.unwrap();
    let id = g["id"].as_i64().unwrap();
    let again = app.post(&t, "/api/v1/admin/groups", json!({"name": "teachers"})).await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY, "names are unique");
    assert_eq!(again.json::<Value>().await.unwrap()["errors"][0]["field"], "name");

    let path = format!("/api/v1/admin/groups/{id}/members/{}", alice.id);
    assert_eq!(app.put(&t, &path, json!({})).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.put(&t, &path, json!({})).await.status(), StatusCode::NO_CONTENT, "adding again is harmless");
    let g: Value = app.get(&t, &format!("/api/v1/admin/groups/{id}")).await.json().await.unwrap();
    assert_eq!(g["members"], json!([{"user_id": alice.id, "username": "alice"}]));
    let member_ids = proxdesk::services::groups::member_group_ids(&app.db, alice.id).await.unwrap();
    assert_eq!(member_ids, [id]);

    let r = app.put(&t, &format!("/api/v1/admin/groups/{id}"), json!({"name": "staff", "description": ""})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "staff");
    let r = app.api.delete(app.url(&path)).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.api.delete(app.url(&path)).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "not a member any more");
    let r = app.api.delete(app.url(&format!("/api/v1/admin/groups/{id}"))).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let list: Value = app.get(&t, "/api/v1/admin/groups").await.json().await.unwrap();
    assert_eq!(list, json!([]));
    let actions: Vec<String> = entities::audit_entry::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.subject_type == "group")
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        ["group.created", "group.member_added", "group.updated", "group.member_removed", "group.deleted"]
    );
}

#[tokio::test]
async fn a_group_in_use_by_an_approval_stage_cannot_be_deleted() {
    let app = spawn_app().await;
    let (admin, _) = app.user("chief", Role::Admin).await;
    let t = app.token(&admin).await;
    let g = app.group("it", &[]).await;
    let entry = app.staged_template("Lab VM", &["it"]).await;
    let r = app.api.delete(app.url(&format!("/api/v1/admin/groups/{g}"))).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("Lab VM"), "the answer names the entry");
    let listed: Value = app.get(&t, "/api/v1/admin/groups").await.json().await.unwrap();
    assert_eq!(listed[0]["used_by"], json!(["Lab VM"]));
    let tpl: Value = app.get(&t, "/api/v1/admin/templates").await.json().await.unwrap();
    let found = tpl.as_array().unwrap().iter().find(|x| x["id"] == entry).unwrap();
    assert_eq!(found["approval_stages"], json!(["it"]));
    // The page says so too, and keeps the group.
    let (_, pw) = app.user("boss", Role::Admin).await;
    let b = app.logged_in("boss", &pw).await;
    let r =
        b.post_form(&format!("/admin/groups/{g}"), &format!("/admin/groups/{g}/delete"), &[("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(app.get(&t, &format!("/api/v1/admin/groups/{g}")).await.status().is_success());
}

#[tokio::test]
async fn the_group_pages_create_a_group_and_add_members_by_name() {
    let app = spawn_app().await;
    let (_, pw) = app.user("chief", Role::Admin).await;
    app.user("alice", Role::User).await;
    let b = app.logged_in("chief", &pw).await;
    let r = b.post_form("/admin/groups", "/admin/groups", &[("name", "teachers"), ("description", "staff")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let at = r.headers()["location"].to_str().unwrap().to_owned();
    let page = at.split('?').next().unwrap().to_owned();
    let r = b.post_form("/admin/groups", "/admin/groups", &[("name", "teachers")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("a group named"), "the taken name is explained");
    let r = b.post_form(&page, &format!("{page}/members"), &[("username", "nobody")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("value=\"nobody\""), "the typed name is kept");
    let r = b.post_form(&page, &format!("{page}/members"), &[("username", "alice")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let html = b.get(&page).await.text().await.unwrap();
    assert!(html.contains(">alice</a>"), "alice is listed");
    assert!(b.get("/admin/groups").await.text().await.unwrap().contains("1 member"));
    let alice = app.get(&app.token(&admin_actor(&app, "chief").await).await, "/api/v1/users?q=alice").await;
    let alice_id = alice.json::<Value>().await.unwrap()["items"][0]["id"].as_i64().unwrap();
    let user_page = b.get(&format!("/admin/users/{alice_id}")).await.text().await.unwrap().replace("&#x2f;", "/");
    assert!(user_page.contains(&format!("href=\"{page}\">teachers</a>")), "alice's page names her group");
    let audit = b.get("/admin/audit?subject_type=group").await;
    assert_eq!(audit.status(), StatusCode::OK);
    let audit = audit.text().await.unwrap().replace("&#x2f;", "/");
    assert!(audit.contains(&format!("href=\"{page}\">Group #")), "the audit log links the group");
}

/// The account named `name`, as an actor.
async fn admin_actor(app: &crate::helpers::TestApp, name: &str) -> proxdesk::services::Actor {
    let u = proxdesk::services::users::find_by_name(&app.db, name).await.unwrap().unwrap();
    proxdesk::services::Actor::try_from(u).unwrap()
}

#[tokio::test]
async fn an_entrys_stages_name_existing_groups_and_stay_while_requests_wait() {
    let d = desk().await;
    let app = &d.app;
    let t = &d.admin.token;
    app.group("teachers", &[]).await;
    let body = |stages: Value| {
        json!({"name": "Course", "node": "pve1", "vmid": 9000, "default_cores": 1, "max_cores": 2,
            "default_memory_mib": 512, "max_memory_mib": 1024, "default_disk_gib": 8, "max_disk_gib": 16,
            "finish_mode": "none", "approval_stages": stages})
    };
    let r = app.post(t, "/api/v1/admin/templates", body(json!(["teachers", "ghosts"]))).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "approval_stages", "{p}");
    let r = app.post(t, "/api/v1/admin/templates", body(json!(["teachers", "teachers"]))).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "a group once");
    let r = app.post(t, "/api/v1/admin/templates", body(json!(["teachers"]))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let entry: Value = r.json().await.unwrap();
    assert_eq!(entry["approval_stages"], json!(["teachers"]));
    let id = entry["id"].as_i64().unwrap();

    let bob = person(app, "bob", Role::User).await;
    let req = json!({"template_id": id, "hostname": "waits", "cores": 1, "memory_mib": 512, "disk_gib": 8,
        "purpose": "course"});
    assert_eq!(app.post(&bob.token, "/api/v1/requests", req).await.status(), StatusCode::OK);
    let r = app.put(t, &format!("/api/v1/admin/templates/{id}"), body(json!([]))).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "not while a request waits at them");
    let unchanged = app.put(t, &format!("/api/v1/admin/templates/{id}"), body(json!(["teachers"]))).await;
    assert_eq!(unchanged.status(), StatusCode::OK, "the same stages are no change");
    let mut without = body(json!(null));
    without.as_object_mut().unwrap().remove("approval_stages");
    let kept = app.put(t, &format!("/api/v1/admin/templates/{id}"), without).await;
    assert_eq!(kept.status(), StatusCode::OK);
    assert_eq!(kept.json::<Value>().await.unwrap()["approval_stages"], json!(["teachers"]), "absent: unchanged");
    // The edit form shows them.
    let b = app.logged_in("chief", &d.admin.password).await;
    let html = b.get(&format!("/admin/catalog/{id}")).await.text().await.unwrap();
    assert!(html.contains("name=\"approval_stages\"") && html.contains("value=\"teachers\""));
}
