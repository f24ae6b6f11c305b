//! Approval stages, as pure rules: what an approval at a request's current stage does, and who may give
//! it. A catalog entry names groups in order; a request of it waits at one stage at a time (0-based).
//! An entry without stages is decided by admins alone, as before stages existed.

/// What approving at `stage` of `count` stages does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStep {
    /// Records the approval and moves the request on to `to`; it stays pending.
    Advance { from: i32, to: i32 },
    /// The last stage (or no stages): the request is approved and provisioned.
    Final { stage: i32 },
}

/// The step an approval at `stage` takes with `count` stages. A stage at or past the last (the entry's
/// stages were shortened: the catalog refuses that while requests wait, so only old data) is final.
pub fn step(stage: i32, count: usize) -> ApprovalStep {
    let last = count.saturating_sub(1) as i32;
    if stage < last {
        ApprovalStep::Advance { from: stage.max(0), to: stage.max(0) + 1 }
    } else {
        ApprovalStep::Final { stage }
    }
}

/// What the rules know of the person acting on a request waiting at a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Approver {
    pub is_admin: bool,
    /// The request is theirs.
    pub is_owner: bool,
    /// They are a member of the group of the stage the request waits at.
    pub in_current_group: bool,
    /// They already approved an earlier stage of this request.
    pub approved_before: bool,
    /// They are in the group of a stage the request has passed (the stage they came for moved on).
    pub in_passed_group: bool,
}

/// On what ground an approver acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// A member of the current stage's group.
    Member,
    /// An admin outside that group: allowed at any stage, and the audit says so.
    AdminOverride,
}

/// Why someone may not approve or reject at the current stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("only members of the stage's group, or an admin, may decide at this stage")]
    NotAnApprover,
    #[error("nobody but an admin decides on their own request")]
    OwnRequest,
    #[error("each approver acts once on a request")]
    AlreadyApproved,
    /// Someone of their group decided first: the request has moved on to a later stage.
    #[error("the request has moved on to a later stage")]
    StagePassed,
}

/// Whether `a` may approve (or reject) at the current stage, and on what ground. Members decide for their
/// group; an admin may act at any stage; nobody acts twice on one request; a member may not decide on their
/// own request (an admin may, as without stages).
pub fn authority(a: Approver) -> Result<Authority, Refusal> {
    if a.approved_before {
        return Err(Refusal::AlreadyApproved);
    }
    match (a.in_current_group, a.is_admin, a.is_owner) {
        (true, _, false) => Ok(Authority::Member),
        (_, true, _) => Ok(Authority::AdminOverride),
        (true, false, true) => Err(Refusal::OwnRequest),
        (false, false, _) if a.in_passed_group => Err(Refusal::StagePassed),
        (false, false, _) => Err(Refusal::NotAnApprover),
    }
}

/// The stage as people read it: 1-based, out of `count` (`2/3`).
pub fn label(stage: i32, count: usize) -> String {
    format!("{}/{}", stage.saturating_add(1).max(1), count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stage_but_the_last_advances_and_the_last_is_final() {
        use ApprovalStep::*;
        let table: &[(i32, usize, ApprovalStep)] = &[
            (0, 0, Final { stage: 0 }),
            (0, 1, Final { stage: 0 }),
            (0, 2, Advance { from: 0, to: 1 }),
            (1, 2, Final { stage: 1 }),
            (0, 3, Advance { from: 0, to: 1 }),
            (1, 3, Advance { from: 1, to: 2 }),
            (2, 3, Final { stage: 2 }),
            // Past the end (stages shortened under an old request): final, never an index out of range.
            (5, 3, Final { stage: 5 }),
        ];
        for &(stage, count, expected) in table {
            assert_eq!(step(stage, count), expected, "stage {stage} of {count}");
        }
    }

    #[test]
    fn who_may_act_at_a_stage() {
        use Authority::*;
        use Refusal::*;
        let a = |is_admin, is_owner, in_current_group, approved_before| Approver {
            is_admin,
            is_owner,
            in_current_group,
            approved_before,
            in_passed_group: false,
        };
        let passed = Approver { in_passed_group: true, ..Approver::default() };
        let table: &[(Approver, Result<Authority, Refusal>)] = &[
            (a(false, false, true, false), Ok(Member)),
            (a(false, false, false, false), Err(NotAnApprover)),
            (a(false, true, false, false), Err(NotAnApprover)),
            (a(false, true, true, false), Err(OwnRequest)),
            (a(false, false, true, true), Err(AlreadyApproved)),
            (a(true, false, false, false), Ok(AdminOverride)),
            (a(true, true, false, false), Ok(AdminOverride)),
            // An admin in the group acts as a member: no override to note.
            (a(true, false, true, false), Ok(Member)),
            // An admin who is also the owner and in the group: still allowed, as an admin.
            (a(true, true, true, false), Ok(AdminOverride)),
            (a(true, false, false, true), Err(AlreadyApproved)),
            // A member of the stage before, who lost the race to another member of it.
            (passed, Err(StagePassed)),
            (Approver { in_current_group: true, ..passed }, Ok(Member)),
        ];
        for (who, expected) in table {
            assert_eq!(authority(*who), *expected, "{who:?}");
        }
    }

    #[test]
    fn stages_read_one_based() {
        assert_eq!(label(0, 2), "1/2");
        assert_eq!(label(1, 3), "2/3");
    }
}
