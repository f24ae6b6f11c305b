//! Identities, tickets, CSRF tokens, VNC tickets and ACLs (pve-api.md §2, §8.1).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Privileges granted on ACL paths; `*` stands for every privilege (like the Administrator role).
pub type Acl = Vec<(String, Vec<String>)>;

/// Every privilege proxdesk needs, granted on `/`.
pub fn admin_acl() -> Acl {
    vec![("/".into(), vec!["*".into()])]
}

/// A user (`name@realm`) with a password, or an API token (`name@realm!id`) with a secret, and its ACL.
#[derive(Debug, Clone)]
pub struct SimIdentity {
    pub authid: String,
    pub secret: String,
    pub acl: Acl,
}

/// Who made a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `user@realm` or `user@realm!token`.
    pub authid: String,
    /// Authenticated by a ticket (CSRF applies) rather than a token.
    pub ticket: bool,
}

/// Signs and checks tickets with the simulator's key.
pub struct Signer {
    key: std::sync::RwLock<[u8; 32]>,
}

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Signer {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key: std::sync::RwLock::new(key) }
    }

    /// Replaces the key: every ticket, CSRF token and VNC ticket issued so far stops working.
    pub fn rotate(&self, key: [u8; 32]) {
        *self.key.write().expect("key") = key;
    }

    fn mac(&self, text: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&*self.key.read().expect("key")).expect("any key length");
        mac.update(text.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// `PVE:<userid>:<HEX time>::<base64 signature>`.
    pub fn ticket(&self, userid: &str, time: i64) -> String {
        let plain = format!("PVE:{userid}:{time:08X}");
        format!("{plain}::{}", STANDARD.encode(self.mac(&plain)))
    }

    /// The user of a valid ticket: signature good and `-300 s < age < 7200 s` (pve-api.md §2.2).
    pub fn check_ticket(&self, ticket: &str) -> Option<String> {
        let (plain, sig) = ticket.split_once("::")?;
        let rest = plain.strip_prefix("PVE:")?;
        let (user, hex_time) = rest.rsplit_once(':')?;
        if STANDARD.encode(self.mac(plain)) != sig {
            return None;
        }
        let age = now() - i64::from_str_radix(hex_time, 16).ok()?;
        (-300 < age && age < 7200).then(|| user.to_owned())
    }

    /// A second-factor half-ticket (pve-access.md §2.5): `PVE:!tfa!<challenge, `:` as %3A>:<HEX time>::<sig>`,
    /// the user id signed with it but not written in it, so it verifies only with that user id and
    /// never as a ticket.
    pub fn tfa_ticket(&self, userid: &str, challenge: &str, time: i64) -> String {
        let plain = format!("PVE:!tfa!{}:{time:08X}", challenge.replace(':', "%3A"));
        format!("{plain}::{}", STANDARD.encode(self.mac(&format!("{plain}:{userid}"))))
    }

    /// The challenge of a valid half-ticket of `userid` (same age window as tickets).
    pub fn check_tfa_ticket(&self, ticket: &str, userid: &str) -> Option<String> {
        let (plain, sig) = ticket.split_once("::")?;
        let rest = plain.strip_prefix("PVE:!tfa!")?;
        let (challenge, hex_time) = rest.rsplit_once(':')?;
        if STANDARD.encode(self.mac(&format!("{plain}:{userid}"))) != sig {
            return None;
        }
        let age = now() - i64::from_str_radix(hex_time, 16).ok()?;
        (-300 < age && age < 7200).then(|| challenge.replace("%3A", ":"))
    }

    /// `<HEX time>:<43-char base64 HMAC>` bound to the user.
    pub fn csrf(&self, userid: &str, time: i64) -> String {
        format!("{time:08X}:{}", STANDARD_NO_PAD.encode(self.mac(&format!("{time:08X}:{userid}"))))
    }

    pub fn check_csrf(&self, userid: &str, token: &str) -> bool {
        let Some((hex_time, _)) = token.split_once(':') else { return false };
        let Ok(time) = i64::from_str_radix(hex_time, 16) else { return false };
        let age = now() - time;
        token == self.csrf(userid, time) && -300 < age && age < 7200
    }

    /// `PVEVNC:<HEX time>::<signature over authid, /vms/<vmid> and port>` (pve-api.md §8.1).
    pub fn vnc_ticket(&self, authid: &str, vmid: u64, port: u16, time: i64) -> String {
        let sig = STANDARD.encode(self.mac(&format!("PVEVNC:{time:08X}:{authid}:/vms/{vmid}:{port}")));
        format!("PVEVNC:{time:08X}::{sig}")
    }

    /// Accepts the bare or the password-prefixed ticket within `-20 s … 40 s`.
    pub fn check_vnc_ticket(&self, ticket: &str, authid: &str, vmid: u64, port: u16) -> bool {
        let bare = match ticket.find("PVEVNC:") {
            Some(i) => &ticket[i..],
            None => return false,
        };
        let Some(hex_time) = bare.strip_prefix("PVEVNC:").and_then(|r| r.split("::").next()) else { return false };
        let Ok(time) = i64::from_str_radix(hex_time, 16) else { return false };
        let age = now() - time;
        bare == self.vnc_ticket(authid, vmid, port, time) && -20 < age && age < 40
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_and_csrf_verify_and_bind_to_their_user() {
        let s = Signer::new([7; 32]);
        let t = s.ticket("alice@pve", now());
        assert_eq!(s.check_ticket(&t).as_deref(), Some("alice@pve"));
        assert!(s.check_ticket(&t.replace("alice", "bob")).is_none());
        assert!(s.check_ticket(&s.ticket("alice@pve", now() - 7300)).is_none());
        let c = s.csrf("alice@pve", now());
        assert_eq!(c.split(':').nth(1).unwrap().len(), 43);
        assert!(s.check_csrf("alice@pve", &c));
        assert!(!s.check_csrf("bob@pve", &c));
        let v = s.vnc_ticket("alice@pve", 101, 5900, now());
        assert!(s.check_vnc_ticket(&format!("abcdefgh:{v}"), "alice@pve", 101, 5900));
        assert!(!s.check_vnc_ticket(&v, "alice@pve", 101, 5901));
    }
}
