//! Access control (pve-access.md): the realms people sign in with, checking a person's PVE password
//! (the ticket is dropped at once: proxdesk never acts on PVE as the person), their groups, and what
//! PVE's own permission evaluation grants them.

use super::{enc, q};
use crate::integrations::pve::client::Client;
use crate::integrations::pve::error::PveError;
use crate::integrations::pve::wire::{PermissionMap, Realm, TicketCheckAnswer, UserRecord};
use crate::secrets::Secret;

/// What PVE said of a person's credentials.
#[derive(Debug)]
pub enum PasswordCheck {
    /// Right: `username` is the canonical user id (`Alice@corp` for a case-insensitive realm).
    Valid { username: String },
    /// Right first factor; the person must now answer a second one. The half-ticket is needed for
    /// that step only and must be kept secret meanwhile.
    NeedsSecondFactor { username: String, challenge: Secret<String> },
    /// Refused (PVE answers the same 401 for every reason, after ~3 s).
    Refused,
}

impl Client {
    /// `GET /access/domains` (needs no authentication; answered unsorted).
    pub async fn realms(&self) -> Result<Vec<Realm>, PveError> {
        self.get_anonymous("/access/domains", vec![]).await
    }

    /// `POST /access/ticket` with the person's name, realm and password, without proxdesk's own
    /// credentials (PVE refuses a token on this call, §2.1). `realm` is always sent separately: PVE
    /// appends it to the name unconditionally.
    pub async fn check_password(
        &self,
        name: &str,
        realm: &str,
        password: &Secret<String>,
    ) -> Result<PasswordCheck, PveError> {
        let form =
            q(&[("username", name.to_owned()), ("realm", realm.to_owned()), ("password", password.expose().clone())]);
        self.ticket_check(form).await
    }

    /// The second step of a sign-in that asked for one (§2.5): `response` as PVE wants it
    /// (`totp:123456`, `recovery:<key>`).
    pub async fn check_second_factor(
        &self,
        username: &str,
        challenge: &Secret<String>,
        response: &Secret<String>,
    ) -> Result<PasswordCheck, PveError> {
        let form = q(&[
            ("username", username.to_owned()),
            ("tfa-challenge", challenge.expose().clone()),
            ("password", response.expose().clone()),
        ]);
        self.ticket_check(form).await
    }

    async fn ticket_check(&self, form: Vec<(String, String)>) -> Result<PasswordCheck, PveError> {
        match self.post_anonymous::<TicketCheckAnswer>("/access/ticket", form).await {
            Ok(a) if a.need_tfa => {
                let challenge = a.ticket.ok_or_else(|| PveError::Decode("NeedTFA without a ticket".into()))?;
                Ok(PasswordCheck::NeedsSecondFactor { username: a.username, challenge: Secret::new(challenge) })
            }
            // The full ticket is dropped here, unread.
            Ok(a) => Ok(PasswordCheck::Valid { username: a.username }),
            Err(PveError::Authentication(_)) => Ok(PasswordCheck::Refused),
            Err(e) => Err(e),
        }
    }

    /// `GET /access/users/{userid}`: the person's PVE record with their groups (proxdesk's token needs
    /// `Sys.Audit` or `User.Modify` on `/access/groups`).
    pub async fn user_record(&self, userid: &str) -> Result<UserRecord, PveError> {
        self.get(&format!("/access/users/{}", enc(userid)), vec![]).await
    }

    /// `GET /access/permissions?userid=…[&path=…]`: what PVE grants `userid`, evaluated by PVE (ACL
    /// propagation, groups, pools, token privilege separation). With `path`, exactly that path (send
    /// it normalized: `/vms/100`). proxdesk's token needs `Sys.Audit` on `/access` to ask for others.
    pub async fn permissions_of(&self, userid: &str, path: Option<&str>) -> Result<PermissionMap, PveError> {
        let mut query = q(&[("userid", userid.to_owned())]);
        if let Some(p) = path {
            query.push(("path".into(), p.to_owned()));
        }
        self.get("/access/permissions", query).await
    }
}
