//! How a failed step is classified: worth another attempt, or final.

use crate::integrations::pve::PveError;
use crate::integrations::ssh::SshError;
use crate::services::ServiceError;

/// Why a step stopped.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// May succeed on a later attempt (busy cluster, lock, network, slow task).
    #[error("{0}")]
    Retry(String),
    /// Will not succeed by retrying (permissions, invalid settings, unknown template, host key).
    #[error("{0}")]
    Fatal(String),
}

impl StepError {
    pub fn message(&self) -> &str {
        match self {
            StepError::Retry(m) | StepError::Fatal(m) => m,
        }
    }
}

impl From<PveError> for StepError {
    fn from(e: PveError) -> Self {
        let text = e.to_string();
        match e {
            PveError::PermissionDenied { .. }
            | PveError::Parameters(_)
            | PveError::Authentication(_)
            | PveError::Tls(_)
            | PveError::Setup(_)
            | PveError::NotFound(_) => StepError::Fatal(format!("Proxmox VE: {text}")),
            PveError::TaskFailed { log_tail, .. } => {
                let tail = log_tail.iter().rev().take(3).rev().cloned().collect::<Vec<_>>().join(" / ");
                StepError::Retry(format!("Proxmox VE: {text} ({tail})"))
            }
            _ => StepError::Retry(format!("Proxmox VE: {text}")),
        }
    }
}

impl From<SshError> for StepError {
    fn from(e: SshError) -> Self {
        match e {
            SshError::UnknownHostKey { .. }
            | SshError::HostKeyMismatch { .. }
            | SshError::NoHostKeyPolicy
            | SshError::Auth { .. } => StepError::Fatal(format!("SSH: {e}")),
            _ => StepError::Retry(format!("SSH: {e}")),
        }
    }
}

impl From<ServiceError> for StepError {
    fn from(e: ServiceError) -> Self {
        StepError::Retry(format!("database: {e}"))
    }
}

impl From<sea_orm::DbErr> for StepError {
    fn from(e: sea_orm::DbErr) -> Self {
        StepError::Retry(format!("database: {e}"))
    }
}

impl From<jobs::JobError> for StepError {
    fn from(e: jobs::JobError) -> Self {
        StepError::Retry(format!("job queue: {e}"))
    }
}
