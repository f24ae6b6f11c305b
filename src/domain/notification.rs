//! Notifications as data: the kinds of event people are told about (by e-mail and webhooks), who hears of
//! each, and the text of each mail per language. Pure: texts come from a lookup the caller hands in (the
//! i18n catalogs), so composing a mail is testable without a desk.

use std::fmt;

/// What happened, as webhooks name it (`type`) and users turn off (one opt-out per kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A request was submitted: its approvers are asked, its owner gets a receipt.
    RequestReceived,
    /// A request of an entry with approval stages moved on to its next stage: that stage's approvers are
    /// asked.
    RequestAwaiting,
    RequestApproved,
    /// With the reason the approver gave.
    RequestRejected,
    /// The machine is ready: a link to its page, never its password.
    RequestReady,
    /// Provisioning failed, with the reason the owner sees.
    RequestFailed,
    /// A lease warning (first or second) before the machine expires.
    LeaseWarning,
    /// The lease ended: the machine is stopped, deleted after the grace period unless extended.
    LeaseExpired,
    /// The machine was deleted (by its owner, an admin, or at the end of its grace period).
    MachineDeleted,
}

impl EventKind {
    pub const ALL: [EventKind; 9] = [
        EventKind::RequestReceived,
        EventKind::RequestAwaiting,
        EventKind::RequestApproved,
        EventKind::RequestRejected,
        EventKind::RequestReady,
        EventKind::RequestFailed,
        EventKind::LeaseWarning,
        EventKind::LeaseExpired,
        EventKind::MachineDeleted,
    ];

    /// The stored and sent name, e.g. `request.approved`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RequestReceived => "request.received",
            EventKind::RequestAwaiting => "request.awaiting",
            EventKind::RequestApproved => "request.approved",
            EventKind::RequestRejected => "request.rejected",
            EventKind::RequestReady => "request.ready",
            EventKind::RequestFailed => "request.failed",
            EventKind::LeaseWarning => "lease.warning",
            EventKind::LeaseExpired => "lease.expired",
            EventKind::MachineDeleted => "machine.deleted",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The i18n key stem of the kind's texts (`mail.request_ready`).
    fn key(self) -> &'static str {
        match self {
            EventKind::RequestReceived => "mail.request_received",
            EventKind::RequestAwaiting => "mail.request_awaiting",
            EventKind::RequestApproved => "mail.request_approved",
            EventKind::RequestRejected => "mail.request_rejected",
            EventKind::RequestReady => "mail.request_ready",
            EventKind::RequestFailed => "mail.request_failed",
            EventKind::LeaseWarning => "mail.lease_warning",
            EventKind::LeaseExpired => "mail.lease_expired",
            EventKind::MachineDeleted => "mail.machine_deleted",
        }
    }

    /// The label of the kind in the opt-out form (`notify.kind.request_ready`).
    pub fn label_key(self) -> String {
        format!("notify.kind.{}", &self.key()["mail.".len()..])
    }

    /// Who hears of an event of this kind.
    pub fn audiences(self) -> &'static [Audience] {
        match self {
            EventKind::RequestReceived => &[Audience::Approvers, Audience::Owner],
            EventKind::RequestAwaiting => &[Audience::Approvers],
            _ => &[Audience::Owner],
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whom a mail is for: the request's owner, or the people who may decide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Owner,
    Approvers,
}

/// A user's opt-outs: the kinds they turned off. Everything else is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptOuts(pub Vec<EventKind>);

impl OptOuts {
    pub fn wants(&self, kind: EventKind) -> bool {
        !self.0.contains(&kind)
    }
}

/// The facts a mail is made of, already formatted for people.
#[derive(Debug, Clone, Default)]
pub struct MailFacts {
    pub hostname: String,
    pub request_id: i64,
    /// The owner's account name (approvers see who asked).
    pub owner: String,
    /// The catalog entry's name.
    pub template: String,
    /// Why it was rejected or failed.
    pub reason: Option<String>,
    /// When the lease ends (warnings, expiry), as shown.
    pub expires_at: Option<String>,
    /// Where to look: the machine's page for a ready machine, else the request's (or the queue's).
    pub link: String,
    /// The profile page, where kinds are turned off.
    pub profile_link: String,
}

/// A composed mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub body: String,
}

/// Looks a text up by key with `{placeholders}` filled, in the recipient's language.
pub type Texts<'a> = &'a dyn Fn(&str, &[(&str, &str)]) -> String;

/// The mail telling `audience` of an event of `kind`. Plain text: a subject, a greeting, what happened,
/// the link, and a footer saying how to turn this kind off.
pub fn compose(kind: EventKind, audience: Audience, facts: &MailFacts, texts: Texts<'_>) -> Mail {
    let stem = match (kind, audience) {
        (EventKind::RequestReceived, Audience::Approvers) => "mail.request_received.approver".to_owned(),
        _ => kind.key().to_owned(),
    };
    let id = facts.request_id.to_string();
    let reason = facts.reason.as_deref().unwrap_or("—");
    let expires = facts.expires_at.as_deref().unwrap_or("—");
    let params: [(&str, &str); 6] = [
        ("hostname", &facts.hostname),
        ("id", &id),
        ("owner", &facts.owner),
        ("template", &facts.template),
        ("reason", reason),
        ("expires_at", expires),
    ];
    let subject = texts(&format!("{stem}.subject"), &params);
    let mut paragraphs = vec![texts("mail.greeting", &[]), texts(&format!("{stem}.body"), &params)];
    if matches!(kind, EventKind::RequestRejected | EventKind::RequestFailed) {
        paragraphs.push(texts("mail.reason", &[("reason", reason)]));
    }
    paragraphs.push(texts("mail.link", &[("link", &facts.link)]));
    paragraphs.push(format!(
        "-- \n{}",
        texts("mail.footer", &[("kind", &texts(&kind.label_key(), &[])), ("link", &facts.profile_link)])
    ));
    Mail { subject, body: paragraphs.join("\n\n") + "\n" }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catalog that shows which key was asked for and with what.
    fn echo(key: &str, params: &[(&str, &str)]) -> String {
        let mut s = format!("[{key}]");
        for (k, v) in params {
            s.push_str(&format!(" {k}={v}"));
        }
        s
    }

    fn facts() -> MailFacts {
        MailFacts {
            hostname: "web1".into(),
            request_id: 42,
            owner: "alice".into(),
            template: "Debian 12".into(),
            reason: Some("no budget".into()),
            expires_at: Some("2026-12-24 10:00 UTC".into()),
            link: "https://desk.example/machines/7".into(),
            profile_link: "https://desk.example/profile".into(),
        }
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("request.exploded"), None);
    }

    #[test]
    fn approvers_hear_only_of_requests_waiting_for_them_and_owners_of_everything_else() {
        for kind in EventKind::ALL {
            let waits = matches!(kind, EventKind::RequestReceived | EventKind::RequestAwaiting);
            assert_eq!(kind.audiences().contains(&Audience::Approvers), waits, "{kind}");
            // The owner hears of everything but a stage passed on the way (the decision comes later).
            assert_eq!(kind.audiences().contains(&Audience::Owner), kind != EventKind::RequestAwaiting, "{kind}");
        }
    }

    #[test]
    fn approvers_and_owners_get_different_texts_for_a_new_request() {
        let f = facts();
        let to_approver = compose(EventKind::RequestReceived, Audience::Approvers, &f, &echo);
        let receipt = compose(EventKind::RequestReceived, Audience::Owner, &f, &echo);
        assert!(to_approver.subject.starts_with("[mail.request_received.approver.subject]"), "{to_approver:?}");
        assert!(receipt.subject.starts_with("[mail.request_received.subject]"), "{receipt:?}");
        assert!(to_approver.subject.contains("owner=alice") && to_approver.subject.contains("hostname=web1"));
    }

    #[test]
    fn a_rejection_and_a_failure_carry_the_reason_and_others_do_not() {
        let f = facts();
        for kind in EventKind::ALL {
            let mail = compose(kind, Audience::Owner, &f, &echo);
            let has_reason = mail.body.contains("[mail.reason] reason=no budget");
            assert_eq!(has_reason, matches!(kind, EventKind::RequestRejected | EventKind::RequestFailed), "{kind}");
            assert!(mail.body.contains("link=https://desk.example/machines/7"), "{kind}: {}", mail.body);
            assert!(mail.body.contains("link=https://desk.example/profile"), "the footer says where to opt out");
            assert!(mail.body.contains(&format!("[{}]", kind.label_key())), "the footer names the kind");
        }
    }

    #[test]
    fn a_missing_fact_shows_as_a_dash_not_a_placeholder() {
        let f = MailFacts { reason: None, expires_at: None, ..facts() };
        let mail = compose(EventKind::LeaseWarning, Audience::Owner, &f, &echo);
        assert!(mail.body.contains("expires_at=—"), "{}", mail.body);
    }

    #[test]
    fn opt_outs_turn_off_only_their_kinds() {
        let off = OptOuts(vec![EventKind::RequestReceived]);
        assert!(!off.wants(EventKind::RequestReceived));
        assert!(off.wants(EventKind::RequestReady));
        assert!(OptOuts::default().wants(EventKind::RequestReceived));
    }
}
