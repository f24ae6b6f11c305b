//! proxdesk: a self-service desk for Proxmox VE.
//!
//! Dependency direction: `startup → http → services → (domain, integrations) → entities`.

pub mod cli;
pub mod config;
pub mod console;
pub mod db;
pub mod demo;
pub mod domain;
pub mod http;
pub mod integrations;
pub mod metrics;
pub mod secrets;
pub mod services;
pub mod startup;
pub mod telemetry;
pub mod workflows;
