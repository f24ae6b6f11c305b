//! The request state machine, as data: one table of legal transitions.
//!
//! ```text
//! pending → approved → provisioning → ready | failed
//! pending → rejected | cancelled
//! failed  → approved            (admin retry)
//! ready   → deleting → deleted
//! deleting → ready              (deletion failed; the owner may delete again)
//! ready | deleting → lost       (its VMID no longer names its container)
//! lost    → ready               (an admin re-adopted the container found elsewhere)
//! lost    → deleted             (an admin released it; nothing is sent to PVE)
//! ready   → released            (an admin released it: the guest stays in PVE, untouched)
//! ```

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestStatus {
    Pending,
    Approved,
    Provisioning,
    Ready,
    Failed,
    Rejected,
    Cancelled,
    Deleting,
    Deleted,
    /// The guest at the machine's VMID no longer carries its marker (or is gone): nothing is done to it.
    Lost,
    /// An admin took the machine out of proxdesk; its guest lives on in PVE, untouched.
    Released,
}

/// What can happen to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestEvent {
    Approve,
    Reject,
    Cancel,
    StartProvisioning,
    ProvisioningSucceeded,
    ProvisioningFailed,
    Retry,
    Delete,
    Deleted,
    DeleteFailed,
    MarkLost,
    Readopt,
    Release,
}

use RequestEvent as E;
use RequestStatus as S;

/// Every legal transition: (from, event, to). Anything not listed is illegal.
pub const TRANSITIONS: &[(RequestStatus, RequestEvent, RequestStatus)] = &[
    (S::Pending, E::Approve, S::Approved),
    (S::Pending, E::Reject, S::Rejected),
    (S::Pending, E::Cancel, S::Cancelled),
    (S::Approved, E::StartProvisioning, S::Provisioning),
    (S::Provisioning, E::ProvisioningSucceeded, S::Ready),
    (S::Provisioning, E::ProvisioningFailed, S::Failed),
    (S::Failed, E::Retry, S::Approved),
    (S::Ready, E::Delete, S::Deleting),
    (S::Deleting, E::Deleted, S::Deleted),
    (S::Deleting, E::DeleteFailed, S::Ready),
    (S::Ready, E::MarkLost, S::Lost),
    (S::Deleting, E::MarkLost, S::Lost),
    (S::Lost, E::Readopt, S::Ready),
    (S::Lost, E::Release, S::Deleted),
    (S::Ready, E::Release, S::Released),
];

/// An event that the current state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a request that is {from} cannot be {event}")]
pub struct IllegalTransition {
    pub from: RequestStatus,
    pub event: RequestEvent,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 11] = [
        S::Pending,
        S::Approved,
        S::Provisioning,
        S::Ready,
        S::Failed,
        S::Rejected,
        S::Cancelled,
        S::Deleting,
        S::Deleted,
        S::Lost,
        S::Released,
    ];

    /// The state `event` leads to from here, if legal.
    pub fn apply(self, event: RequestEvent) -> Result<RequestStatus, IllegalTransition> {
        TRANSITIONS
            .iter()
            .find(|(from, ev, _)| *from == self && *ev == event)
            .map(|(_, _, to)| *to)
            .ok_or(IllegalTransition { from: self, event })
    }

    /// States whose resources count against the owner's quota. A lost machine holds it until an admin
    /// re-adopts or releases it: its container may still exist somewhere.
    pub fn holds_quota(self) -> bool {
        matches!(self, S::Pending | S::Approved | S::Provisioning | S::Ready | S::Deleting | S::Lost)
    }

    /// States from which every event is illegal.
    pub fn is_final(self) -> bool {
        !TRANSITIONS.iter().any(|(from, _, _)| *from == self)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            S::Pending => "pending",
            S::Approved => "approved",
            S::Provisioning => "provisioning",
            S::Ready => "ready",
            S::Failed => "failed",
            S::Rejected => "rejected",
            S::Cancelled => "cancelled",
            S::Deleting => "deleting",
            S::Deleted => "deleted",
            S::Lost => "lost",
            S::Released => "released",
        }
    }

    pub fn parse(s: &str) -> Option<RequestStatus> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RequestEvent {
    pub const ALL: [RequestEvent; 13] = [
        E::Approve,
        E::Reject,
        E::Cancel,
        E::StartProvisioning,
        E::ProvisioningSucceeded,
        E::ProvisioningFailed,
        E::Retry,
        E::Delete,
        E::Deleted,
        E::DeleteFailed,
        E::MarkLost,
        E::Readopt,
        E::Release,
    ];

    /// The audit action written when this event happens.
    pub fn audit_action(self) -> &'static str {
        match self {
            E::Approve => "request.approved",
            E::Reject => "request.rejected",
            E::Cancel => "request.cancelled",
            E::StartProvisioning => "request.provisioning",
            E::ProvisioningSucceeded => "request.ready",
            E::ProvisioningFailed => "request.failed",
            E::Retry => "request.retried",
            E::Delete => "request.deleting",
            E::Deleted => "request.deleted",
            E::DeleteFailed => "request.delete_failed",
            E::MarkLost => "request.lost",
            E::Readopt => "request.readopted",
            E::Release => "request.released",
        }
    }
}

impl std::fmt::Display for RequestEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let word = match self {
            E::Approve => "approved",
            E::Reject => "rejected",
            E::Cancel => "cancelled",
            E::StartProvisioning => "provisioned",
            E::ProvisioningSucceeded => "marked ready",
            E::ProvisioningFailed => "marked failed",
            E::Retry => "retried",
            E::Delete => "deleted",
            E::Deleted => "marked deleted",
            E::DeleteFailed => "marked as not deleted",
            E::MarkLost => "marked lost",
            E::Readopt => "re-adopted",
            E::Release => "released",
        };
        f.write_str(word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full matrix: every (state, event) pair is either exactly the table's answer or illegal.
    #[test]
    fn every_state_event_pair_follows_the_table() {
        let expected = [
            ("pending", "Approve", Some("approved")),
            ("pending", "Reject", Some("rejected")),
            ("pending", "Cancel", Some("cancelled")),
            ("approved", "StartProvisioning", Some("provisioning")),
            ("provisioning", "ProvisioningSucceeded", Some("ready")),
            ("provisioning", "ProvisioningFailed", Some("failed")),
            ("failed", "Retry", Some("approved")),
            ("ready", "Delete", Some("deleting")),
            ("deleting", "Deleted", Some("deleted")),
            ("deleting", "DeleteFailed", Some("ready")),
            ("ready", "MarkLost", Some("lost")),
            ("deleting", "MarkLost", Some("lost")),
            ("lost", "Readopt", Some("ready")),
            ("lost", "Release", Some("deleted")),
            ("ready", "Release", Some("released")),
        ];
        let mut legal = 0;
        for from in RequestStatus::ALL {
            for event in RequestEvent::ALL {
                let want = expected
                    .iter()
                    .find(|(f, e, _)| *f == from.as_str() && *e == format!("{event:?}"))
                    .and_then(|(_, _, to)| *to);
                match (from.apply(event), want) {
                    (Ok(to), Some(w)) => {
                        assert_eq!(to.as_str(), w, "{from} --{event:?}-->");
                        legal += 1;
                    }
                    (Err(e), None) => assert_eq!(e, IllegalTransition { from, event }),
                    (got, want) => panic!("{from} --{event:?}--> gave {got:?}, wanted {want:?}"),
                }
            }
        }
        assert_eq!(legal, expected.len());
    }

    #[test]
    fn final_states_are_rejected_cancelled_deleted_released() {
        let finals: Vec<_> = RequestStatus::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, [S::Rejected, S::Cancelled, S::Deleted, S::Released]);
    }

    #[test]
    fn a_released_machine_no_longer_holds_its_quota() {
        assert!(S::Ready.holds_quota());
        assert_eq!(S::Ready.apply(E::Release), Ok(S::Released));
        assert!(!S::Released.holds_quota());
    }

    #[test]
    fn a_lost_machine_holds_its_quota_until_released() {
        assert!(S::Lost.holds_quota());
        assert!(!S::Lost.apply(E::Release).unwrap().holds_quota());
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for s in RequestStatus::ALL {
            assert_eq!(RequestStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(RequestStatus::parse("bogus"), None);
    }
}
