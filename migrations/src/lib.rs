//! proxdesk's schema, as append-only migrations: one change per file, never edited once landed.
//! Migrations never import the `entities` crate; each freezes the shapes it needs.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_accounts;
mod m20261124_000002_create_catalog;
mod m20261124_000003_create_requests;
mod m20261124_000004_create_jobs;
mod m20261124_000005_create_guac_sync_runs;
mod m20261124_000006_add_template_provisioning;
mod m20261124_000007_create_named_locks;
mod m20261124_000008_create_console_tokens;
mod m20261203_110000_create_silent_guest_agents;
mod m20261203_112300_add_machines_lost;
mod m20261203_170000_add_qemu_kinds;
mod m20261203_200000_create_identities;
mod m20261204_100000_add_template_snapshot_limit;
mod m20261204_110000_create_bulk_runs;
mod m20261204_120000_add_request_origin;
mod m20261204_190000_replace_login_failures;
mod m20261204_190100_create_console_sessions;
mod m20261205_140000_add_job_req_id;
mod m20261206_001000_add_machine_leases;
mod m20261206_130000_create_user_groups;
mod m20261206_130100_create_approval_stages;
mod m20261206_150000_create_notifications;
mod m20261206_200000_create_approval_rules;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_accounts::Migration),
            Box::new(m20261124_000002_create_catalog::Migration),
            Box::new(m20261124_000003_create_requests::Migration),
            Box::new(m20261124_000004_create_jobs::Migration),
            Box::new(m20261124_000005_create_guac_sync_runs::Migration),
            Box::new(m20261124_000006_add_template_provisioning::Migration),
            Box::new(m20261124_000007_create_named_locks::Migration),
            Box::new(m20261124_000008_create_console_tokens::Migration),
            Box::new(m20261203_110000_create_silent_guest_agents::Migration),
            Box::new(m20261203_112300_add_machines_lost::Migration),
            Box::new(m20261203_170000_add_qemu_kinds::Migration),
            Box::new(m20261203_200000_create_identities::Migration),
            Box::new(m20261204_100000_add_template_snapshot_limit::Migration),
            Box::new(m20261204_110000_create_bulk_runs::Migration),
            Box::new(m20261204_120000_add_request_origin::Migration),
            Box::new(m20261204_190000_replace_login_failures::Migration),
            Box::new(m20261204_190100_create_console_sessions::Migration),
            Box::new(m20261205_140000_add_job_req_id::Migration),
            Box::new(m20261206_001000_add_machine_leases::Migration),
            Box::new(m20261206_130000_create_user_groups::Migration),
            Box::new(m20261206_130100_create_approval_stages::Migration),
            Box::new(m20261206_150000_create_notifications::Migration),
            Box::new(m20261206_200000_create_approval_rules::Migration),
        ]
    }
}
