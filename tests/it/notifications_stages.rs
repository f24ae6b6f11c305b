//! Notifications of entries with approval stages, through a real SMTP server: a new request is told to
//! the members of its first stage's group only, and each stage passed asks the next group.

use proxdesk::domain::roles::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::notify_fixtures::{Smtp, desk_mailing, person, settle_jobs};

#[tokio::test]
async fn each_stage_group_hears_of_a_request_when_it_reaches_them_and_nobody_else_does() {
    let Some(smtp) = Smtp::start(None) else { return };
    let desk = desk_mailing(&smtp, |_| {}).await;
    let app = &desk.app;
    let (_, _chief) = person(app, "chief", Role::Admin, Some("chief@example.org"), None).await;
    let (tom, tom_t) = person(app, "tom", Role::User, Some("tom@example.org"), None).await;
    let (ivan, _) = person(app, "ivan", Role::User, Some("ivan@example.org"), Some("fr")).await;
    let (_, alice) = person(app, "alice", Role::User, Some("alice@example.org"), None).await;
    app.group("teachers", &[tom.id]).await;
    app.group("it", &[ivan.id]).await;
    let entry = app.staged_template("Course VM", &["teachers", "it"]).await;

    let body = json!({"template_id": entry, "hostname": "lab-1", "cores": 1, "memory_mib": 512, "disk_gib": 8,
        "purpose": "coursework"});
    let r = app.post(&alice, "/api/v1/requests", body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    smtp.wait_for("tom@example.org", &format!("New request #{id} from alice: lab-1")).await;
    smtp.wait_for("alice@example.org", &format!("Your request #{id} for lab-1 was received")).await;

    let r = app.post(&tom_t, &format!("/api/v1/requests/{id}/approve"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let asked =
        smtp.wait_for("ivan@example.org", &format!("La demande n° {id} de alice attend votre approbation")).await;
    assert!(asked.body.contains(&format!("{}/requests/{id}", app.address)), "{}", asked.body);

    settle_jobs(app).await;
    assert_eq!(smtp.mails_to("tom@example.org").len(), 1, "the first stage is asked once");
    assert_eq!(smtp.mails_to("ivan@example.org").len(), 1, "the second stage only when it is its turn");
    assert!(smtp.mails_to("chief@example.org").is_empty(), "admins are not the approvers of a staged entry");
    assert_eq!(smtp.mails_to("alice@example.org").len(), 1, "a stage passed is not a decision for the owner");
}
