//! The expiry sweep over 10,000 machines: wall time and rows written, for a sweep with some leases due
//! and for one with nothing due (which must write nothing).
//!
//! `cargo bench --bench expiry` seeds a fresh SQLite database (or the PostgreSQL database named by
//! `BENCH_DATABASE_URL`, which must be empty) with `BENCH_MACHINES` (10,000) ready machines whose
//! expiries are spread as a real desk's might be: 90 % a month or more away, and the rest due for a
//! first warning (4 %), a second warning (3 %), a stop (2 %) or, stopped past the grace period, a
//! deletion (1 %). It then times `services::leases::sweep` as of one instant, twice: the first does the
//! due steps, the second finds nothing due. Writes are the sweep's own count (stage updates, audit
//! entries, jobs), checked against the rows the tables gained.

use std::time::Instant;

use chrono::{Duration, SubsecRound, Utc};
use proxdesk::config::RawSettings;
use proxdesk::domain::roles::Role;
use proxdesk::services::leases::{LeaseSettings, sweep};
use proxdesk::services::{self, catalog::TemplateInput};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// (rows in `audit_entries`, rows in `jobs`).
async fn counts(db: &DatabaseConnection) -> (u64, u64) {
    let audits = entities::audit_entry::Entity::find().count(db).await.unwrap();
    let jobs = jobs::entity::Entity::find().count(db).await.unwrap();
    (audits, jobs)
}

async fn seed(db: &DatabaseConnection, machines: u64, now: chrono::DateTime<Utc>) -> u64 {
    let new = services::users::NewUser { username: "alice".into(), role: Role::User, password: None };
    let (alice, _) = services::users::create(db, None, new).await.unwrap();
    let t = TemplateInput {
        name: "Debian 13".into(),
        description: "bench".into(),
        node: "pve1".into(),
        vmid: 9000,
        net0: proxdesk::services::catalog::DEFAULT_NET0.into(),
        ..Default::default()
    };
    let tpl = services::catalog::create(db, None, None, t).await.unwrap();
    let mut due = 0;
    let ids: Vec<i64> = (1..=machines as i64).collect();
    for chunk in ids.chunks(500) {
        let requests = chunk.iter().map(|i| entities::request::ActiveModel {
            id: Set(*i),
            user_id: Set(alice.id),
            template_id: Set(Some(tpl.id)),
            hostname: Set(format!("host-{i}")),
            cores: Set(1),
            memory_mib: Set(1024),
            disk_gib: Set(8),
            purpose: Set("expiry sweep benchmark".into()),
            status: Set("ready".into()),
            origin: Set("requested".into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        });
        entities::request::Entity::insert_many(requests).exec(db).await.unwrap();
        let mut rows = Vec::with_capacity(chunk.len());
        for i in chunk {
            // Per hundred: 90 far away, 4 first warnings, 3 second, 2 stops, 1 deletion due.
            let (expires_at, stage) = match i % 100 {
                0..=89 => (now + Duration::days(30 + i % 30), "active"),
                90..=93 => (now + Duration::days(3 + i % 3), "active"),
                94..=96 => (now + Duration::hours(2 + i % 20), "warned_first"),
                97..=98 => (now - Duration::hours(1 + i % 40), "warned_second"),
                _ => (now - Duration::days(8 + i % 5), "stopped"),
            };
            if i % 100 >= 90 {
                due += 1;
            }
            rows.push(entities::machine::ActiveModel {
                request_id: Set(*i),
                user_id: Set(alice.id),
                kind: Set("lxc".into()),
                node: Set(format!("pve{}", 1 + i % 3)),
                vmid: Set(Some(1000 + i)),
                hostname: Set(format!("host-{i}")),
                created_at: Set(now - Duration::days(60)),
                expires_at: Set(Some(expires_at.trunc_subsecs(0))),
                lease_stage: Set(stage.into()),
                ..Default::default()
            });
        }
        entities::machine::Entity::insert_many(rows).exec(db).await.unwrap();
    }
    due
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let machines = env_or("BENCH_MACHINES", 10_000);
        let dir = tempfile::tempdir().unwrap();
        let url = std::env::var("BENCH_DATABASE_URL")
            .unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", dir.path().join("bench.sqlite").display()));
        let backend = if url.starts_with("postgres") { "PostgreSQL" } else { "SQLite" };
        let db = proxdesk::db::connect(&url, 4).await.unwrap();
        proxdesk::db::migrate(&db).await.unwrap();
        let settings = LeaseSettings::from_settings(&RawSettings::defaults()).unwrap();
        let now = Utc::now().trunc_subsecs(0);
        let seeded = Instant::now();
        let due = seed(&db, machines, now).await;
        println!(
            "{backend}: {machines} machines seeded in {:.1} s, {due} with a step due",
            seeded.elapsed().as_secs_f64()
        );

        for (label, expect_due) in [("some due", true), ("nothing due", false)] {
            let before = counts(&db).await;
            let started = Instant::now();
            let report = sweep(&db, &settings, now).await.unwrap();
            let wall = started.elapsed();
            let after = counts(&db).await;
            let stages_moved = report.warned + report.stopped + report.deleted;
            let gained = (after.0 - before.0) + (after.1 - before.1) + stages_moved;
            println!(
                "sweep, {label}: {:.1} ms wall; {} examined; {} warned, {} stopped, {} deleted; {} writes \
                 ({} audit entries, {} jobs, {} stage updates)",
                wall.as_secs_f64() * 1000.0,
                report.examined,
                report.warned,
                report.stopped,
                report.deleted,
                report.writes,
                after.0 - before.0,
                after.1 - before.1,
                stages_moved,
            );
            assert_eq!(report.writes, gained, "the sweep's count matches the rows written");
            if expect_due {
                assert_eq!(stages_moved, due, "every due lease moved");
            } else {
                assert_eq!(report.writes, 0, "a sweep with nothing due writes nothing");
            }
        }
        let reclaimed = entities::machine::Entity::find()
            .filter(entities::machine::Column::LeaseStage.eq("reclaimed"))
            .count(&db)
            .await
            .unwrap();
        println!("{reclaimed} machines handed to their deletion (3 writes per warning, 4 per stop, 3 per deletion)");
    });
}
