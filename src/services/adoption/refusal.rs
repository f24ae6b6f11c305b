//! Why a guest was not adopted, from PVE's answers.

use crate::integrations::pve::PveError;
use crate::services::{FieldErrors, ServiceError};

/// Why a guest was not adopted; nothing was left behind in proxdesk or PVE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdoptRefusal {
    #[error("the guest is already a proxdesk machine")]
    Managed,
    #[error("the guest no longer exists in the cluster")]
    Gone,
    #[error("the guest is a template")]
    Template,
    #[error("the guest already carries the marker of proxdesk request #{0}")]
    Marked(i64),
    #[error("the guest is locked ({0})")]
    Locked(String),
    #[error("the guest's configuration changed while adopting it; nothing was adopted")]
    Changed,
    /// The guest would put its owner over their quota and the admin did not say to go beyond it.
    #[error("the guest puts the owner over their quota: {}", .0.0.iter().map(|e| e.code).collect::<Vec<_>>().join(", "))]
    OverQuota(FieldErrors),
    #[error("Proxmox VE refused: {0}")]
    Pve(String),
}

impl From<AdoptRefusal> for ServiceError {
    fn from(r: AdoptRefusal) -> Self {
        ServiceError::AdoptRefused(r)
    }
}

pub(super) fn refusal(e: PveError) -> ServiceError {
    match e {
        PveError::NotFound(_) => AdoptRefusal::Gone.into(),
        PveError::Locked { lock, .. } => AdoptRefusal::Locked(lock).into(),
        PveError::ConfigChanged(_) => AdoptRefusal::Changed.into(),
        PveError::Api { status, message } if !(595..=599).contains(&status) => {
            AdoptRefusal::Pve(message.trim().to_owned()).into()
        }
        e => ServiceError::Unavailable(format!("Proxmox VE: {e}")),
    }
}
