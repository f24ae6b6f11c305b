//! Proxmox VE: a typed async client ([`Client`]) and a faithful simulator ([`sim`]).
//!
//! The facts both follow are in `pve-api.md` (the shared reference); comments cite its sections.

pub mod address;
mod client;
mod config;
mod endpoints;
mod error;
mod tasks;
pub(crate) mod tls;
mod upid;
pub mod websocket;
pub mod wire;

pub mod check;
pub mod sim;

pub use client::Client;
pub use config::{PveAuth, PveConfig, PveConfigError, TlsMode};
pub use endpoints::PasswordCheck;
pub use error::{PveError, Transience};
pub use tasks::{TaskOutcome, WaitOptions};
pub use tls::{fingerprint_of, parse_fingerprint};
pub use upid::Upid;
