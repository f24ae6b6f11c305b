//! The job queue's own tests, on real SQLite files and on PostgreSQL (skipped when it is not reachable,
//! unless `PROXDESK_REQUIRE_EXTERNAL=1`). Each behaviour runs once per backend.

#[macro_use]
mod common;

mod cancel;
mod cron;
mod enqueue;
mod leases;
mod retries;
mod shutdown;
mod workers;
