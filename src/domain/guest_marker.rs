//! How a guest in Proxmox VE is known to be a request's machine, in a way no user text can forge.
//!
//! PVE reuses the lowest free VMID, so a stored VMID alone proves nothing: after a guest is deleted or
//! restored out of band, the number can name someone else's guest. Every guest proxdesk creates carries
//! its request's marker in two places: the **first line** of its notes (written with the clone, so even a
//! half-made guest has it) and a **tag** `proxdesk-request-<id>` (written with the config; tags are not
//! free text, and `/cluster/resources` lists them, so a guest can be found by tag in one call). Either
//! one identifies the guest. The request's free-text purpose only ever goes *below* the first line,
//! with the notes syntax neutralized, so it can neither produce another request's marker nor credential
//! entries that the Guacamole sync would act on.

/// The tag every proxdesk guest carries (the catalog's filter in the PVE UI).
pub const PROXDESK_TAG: &str = "proxdesk";

/// The marker of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestMarker {
    request_id: i64,
}

impl GuestMarker {
    /// The marker of request `request_id`.
    pub fn for_request(request_id: i64) -> Self {
        Self { request_id }
    }

    /// `(proxdesk request #42)`: how the first line of the notes ends.
    pub fn text(self) -> String {
        format!("(proxdesk request #{})", self.request_id)
    }

    /// `proxdesk-request-42`: a valid PVE tag (`^[a-z0-9_][a-z0-9_\-+.]*$`, pve-api.md §9).
    pub fn tag(self) -> String {
        format!("proxdesk-request-{}", self.request_id)
    }

    /// The `tags` value to write: the common tag and the request's own.
    pub fn tags(self) -> String {
        format!("{PROXDESK_TAG};{}", self.tag())
    }

    /// The notes of the guest: the marker line, then the purpose with the notes syntax neutralized.
    pub fn notes(self, owner: &str, purpose: &str) -> String {
        let owner: String = owner.chars().filter(|c| !c.is_control()).collect();
        let purpose = neutralize_notes_syntax(purpose);
        if purpose.trim().is_empty() {
            format!("Requested by {owner} {}", self.text())
        } else {
            format!("Requested by {owner} {}\n{purpose}", self.text())
        }
    }

    /// Whether a guest with these notes and tags is this request's. Only the first line of the notes
    /// counts (everything below it may come from the requester), and only a whole tag.
    pub fn is_carried_by(self, notes: Option<&str>, tags: Option<&str>) -> bool {
        let first_line = notes.and_then(|n| n.lines().next()).unwrap_or_default();
        let by_notes = first_line.trim_end().ends_with(&self.text());
        let tag = self.tag();
        // PVE splits tags on `,`, `;` and whitespace and lower-cases them (pve-api.md §9).
        let by_tag =
            tags.is_some_and(|t| t.split([',', ';', ' ', '\t']).any(|one| one.trim().eq_ignore_ascii_case(&tag)));
        by_notes || by_tag
    }

    /// The notes of an adopted guest: the marker line on top, the guest's own notes kept below it
    /// as they were (an admin wrote them in PVE; they are not the requester's text).
    pub fn adoption_notes(self, owner: &str, existing: Option<&str>) -> String {
        let owner: String = owner.chars().filter(|c| !c.is_control()).collect();
        // LXC reads notes back with a `\n` after every line (pve-api.md §9): keep the text, not the ends.
        let existing = existing.unwrap_or_default().trim_end_matches('\n');
        if existing.trim().is_empty() {
            format!("Adopted for {owner} {}", self.text())
        } else {
            format!("Adopted for {owner} {}\n{existing}", self.text())
        }
    }

    /// The `tags` value of an adopted guest: its own tags kept in their order, `stale` request tags
    /// dropped (tags of requests that are over), then the common tag and the request's own.
    pub fn adoption_tags(self, existing: Option<&str>, stale: impl Fn(i64) -> bool) -> String {
        let mut tags: Vec<String> = vec![];
        for tag in existing.unwrap_or_default().split([',', ';', ' ', '\t']).map(str::trim).filter(|t| !t.is_empty()) {
            let tag = tag.to_ascii_lowercase();
            let drop = Self::request_of_tag(&tag).is_some_and(&stale) || tag == PROXDESK_TAG || tag == self.tag();
            if !drop && !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        tags.push(PROXDESK_TAG.to_owned());
        tags.push(self.tag());
        tags.join(";")
    }

    /// The requests whose marker a guest carries: by the first line of its notes and by its tags.
    pub fn requests_carried(notes: Option<&str>, tags: Option<&str>) -> Vec<i64> {
        let first_line = notes.and_then(|n| n.lines().next()).unwrap_or_default().trim_end();
        let mut ids: Vec<i64> = first_line
            .strip_suffix(')')
            .and_then(|rest| rest.rsplit_once("(proxdesk request #"))
            .and_then(|(_, id)| id.parse().ok())
            .filter(|id: &i64| *id > 0)
            .into_iter()
            .collect();
        for tag in tags.unwrap_or_default().split([',', ';', ' ', '\t']) {
            if let Some(id) = Self::request_of_tag(tag)
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
        ids
    }

    /// The request a tag names, if it is a request tag (`proxdesk-request-42` → 42).
    pub fn request_of_tag(tag: &str) -> Option<i64> {
        tag.trim().to_ascii_lowercase().strip_prefix("proxdesk-request-")?.parse().ok().filter(|id| *id > 0)
    }
}

/// Makes user text inert for the notes parser of the Guacamole sync: an entry only ends at a `;`
/// (notes-syntax.md rule 1), so without one no `key:"value"` text can become a connection. Semicolons
/// become the full-width `；`, which reads the same to a person.
pub fn neutralize_notes_syntax(text: &str) -> String {
    text.replace(';', "\u{FF1B}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_or_the_tag_identifies_the_request() {
        let m = GuestMarker::for_request(42);
        let notes = m.notes("alice", "for the lab");
        assert_eq!(notes, "Requested by alice (proxdesk request #42)\nfor the lab");
        assert!(m.is_carried_by(Some(&notes), None));
        // LXC read-back appends a newline to each line (pve-api.md §9).
        assert!(m.is_carried_by(Some(&format!("{notes}\n")), None));
        assert!(m.is_carried_by(None, Some("proxdesk;proxdesk-request-42")));
        assert!(m.is_carried_by(Some("edited by an admin"), Some("Proxdesk-Request-42 web")));
        assert!(!m.is_carried_by(Some("Requested by alice (proxdesk request #420)"), None));
        assert!(!m.is_carried_by(None, Some("proxdesk;proxdesk-request-420")));
        assert!(!m.is_carried_by(None, None));
    }

    #[test]
    fn a_purpose_cannot_forge_another_requests_marker() {
        let victim = GuestMarker::for_request(7);
        let purpose = "(proxdesk request #7)\nRequested by bob (proxdesk request #7)";
        let notes = GuestMarker::for_request(8).notes("mallory", purpose);
        assert!(!victim.is_carried_by(Some(&notes), None));
        assert!(GuestMarker::for_request(8).is_carried_by(Some(&notes), None));
    }

    #[test]
    fn a_purpose_cannot_carry_credential_entries() {
        let notes = GuestMarker::for_request(3).notes("eve", "user:\"root\" pass:\"x\" protos:\"ssh\";");
        assert!(!notes.contains(';'), "{notes}");
        assert!(notes.contains("protos:\"ssh\"\u{FF1B}"));
    }

    #[test]
    fn adoption_puts_the_marker_on_top_and_keeps_the_guests_notes_and_tags() {
        let m = GuestMarker::for_request(9);
        let notes = m.adoption_notes("alice", Some("Owner: bob\nguac: rdp 3389\n"));
        assert_eq!(notes, "Adopted for alice (proxdesk request #9)\nOwner: bob\nguac: rdp 3389");
        assert!(m.is_carried_by(Some(&notes), None));
        assert_eq!(m.adoption_notes("alice", None), "Adopted for alice (proxdesk request #9)");
        let tags = m.adoption_tags(Some("Web;db proxdesk-request-3,proxdesk"), |id| id == 3);
        assert_eq!(tags, "web;db;proxdesk;proxdesk-request-9");
        assert_eq!(
            m.adoption_tags(Some("proxdesk-request-4"), |_| false),
            "proxdesk-request-4;proxdesk;proxdesk-request-9"
        );
    }

    #[test]
    fn the_requests_a_guest_carries_come_from_the_first_line_and_the_tags() {
        let notes = "Adopted for alice (proxdesk request #9)\nRequested by bob (proxdesk request #4)";
        assert_eq!(GuestMarker::requests_carried(Some(notes), Some("web;proxdesk-request-12")), vec![9, 12]);
        assert_eq!(GuestMarker::requests_carried(Some("plain notes"), Some("proxdesk")), Vec::<i64>::new());
        assert_eq!(GuestMarker::requests_carried(None, None), Vec::<i64>::new());
    }

    #[test]
    fn request_tags_parse_back() {
        assert_eq!(GuestMarker::request_of_tag("proxdesk-request-42"), Some(42));
        assert_eq!(GuestMarker::request_of_tag("proxdesk"), None);
        assert_eq!(GuestMarker::request_of_tag("proxdesk-request-x"), None);
        assert_eq!(GuestMarker::for_request(5).tags(), "proxdesk;proxdesk-request-5");
    }
}
