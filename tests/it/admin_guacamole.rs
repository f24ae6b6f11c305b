//! The Guacamole page explains the sync, shows the last run, and lists only runs that changed something
//! or failed: quiet runs fold into one line with their count and time span; durations read as people
//! write them.

use chrono::{TimeZone, Utc};
use proxdesk::domain::roles::Role;
use sea_orm::{ActiveValue::Set, EntityTrait};

use crate::admin_home::unescape;
use crate::helpers::spawn_app;

async fn run(db: &sea_orm::DatabaseConnection, minute: u32, created: i32, failure: Option<&str>) {
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 10, minute, 0).unwrap();
    let row = entities::guac_sync_run::ActiveModel {
        started_at: Set(at),
        finished_at: Set(at + chrono::Duration::milliseconds(1)),
        dry_run: Set(false),
        desired: Set(2),
        managed: Set(2),
        created: Set(created),
        updated: Set(0),
        deleted: Set(0),
        groups_created: Set(0),
        groups_deleted: Set(0),
        users_created: Set(0),
        grants_added: Set(0),
        grants_removed: Set(0),
        error_count: Set(i32::from(failure.is_some())),
        diagnostics: Set("[]".into()),
        failure: Set(failure.map(str::to_owned)),
        ..Default::default()
    };
    entities::guac_sync_run::Entity::insert(row).exec(db).await.unwrap();
}

#[tokio::test]
async fn quiet_runs_fold_into_one_line_between_the_runs_that_changed_something() {
    let app = spawn_app().await;
    // Oldest first: a failure, three quiet runs, a run that created two connections, two quiet runs.
    run(&app.db, 0, 0, Some("Guacamole did not answer")).await;
    for minute in [5, 10, 15] {
        run(&app.db, minute, 0, None).await;
    }
    run(&app.db, 20, 2, None).await;
    for minute in [25, 30] {
        run(&app.db, minute, 0, None).await;
    }
    let (_, pw) = app.user("chief", Role::Admin).await;
    let b = app.logged_in("chief", &pw).await;
    let html = unescape(&b.get("/admin/guacamole").await.text().await.unwrap());
    assert!(html.contains("The sync keeps Guacamole's connections in step with proxdesk"), "lead paragraph");
    assert!(html.contains("2 runs without changes between 2026-03-01 10:25 UTC and 2026-03-01 10:30 UTC"), "{html}");
    assert!(html.contains("3 runs without changes between 2026-03-01 10:05 UTC and 2026-03-01 10:15 UTC"), "{html}");
    let history = &html[html.find("Runs that changed something or failed").unwrap()..];
    assert_eq!(history.matches("<time").count(), 2, "only the notable runs are rows: {history}");
    assert!(history.contains("Guacamole did not answer") || history.contains(">failed<"), "{history}");
    assert!(!html.contains("0.001 s") && html.contains("1\u{a0}ms"), "durations in words: {html}");
    // The last run (quiet) is summarised on top.
    assert!(html.contains("nothing to change") && html.contains("2 wanted"), "{html}");
    // In French the folded line is translated and pluralised.
    let fr = b.client.get(app.url("/admin/guacamole")).header("Accept-Language", "fr").send().await.unwrap();
    assert!(fr.text().await.unwrap().contains("3 exécutions sans modification entre"));
}
