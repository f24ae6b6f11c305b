//! Clients of the outside systems proxdesk drives, and simulators of them (real servers).

pub mod guacamole;
pub mod ldap;
pub mod mail;
pub mod oidc;
pub mod pve;
pub mod ssh;
pub mod webhook;

/// Makes ring the process's TLS provider: reqwest is built without one (`rustls-no-provider`), and every
/// `reqwest::Client` panics at build time without it. Idempotent; call before building any client.
pub fn install_tls_provider() {
    // `Err` means a provider is already installed, which is all that matters.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
