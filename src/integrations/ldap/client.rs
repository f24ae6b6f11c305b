//! The bind–search–bind: bind as the service account (or stay anonymous), find exactly one entry with
//! the user filter, read the person's groups, then bind as that entry with the password typed. A fresh
//! connection per sign-in: nothing of one person's bind can leak into another's.

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapResult, Scope, SearchEntry, SearchOptions};

use super::config::{DirectoryConfig, Transport};
use super::error::{LdapError, Refusal};
use crate::secrets::Secret;

/// LDAP result codes (RFC 4511 §4.1.9) this client tells apart.
mod rc {
    pub const SUCCESS: u32 = 0;
    pub const SIZE_LIMIT_EXCEEDED: u32 = 4;
    pub const INVALID_CREDENTIALS: u32 = 49;
    pub const INAPPROPRIATE_AUTHENTICATION: u32 = 48;
    pub const INSUFFICIENT_ACCESS: u32 = 50;
    pub const BUSY: u32 = 51;
    pub const UNAVAILABLE: u32 = 52;
    pub const UNWILLING_TO_PERFORM: u32 = 53;
}

/// A person the directory vouched for: the one entry the user filter found, bound as with the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub dn: String,
    /// The `ldap_id_attr` value (hex for a binary attribute such as Active Directory's `objectGUID`).
    pub id: String,
    pub name: Option<String>,
    pub display_name: Option<String>,
    pub mail: Option<String>,
    /// The `ldap_group_name_attr` of every group the group filter found for the entry.
    pub groups: Vec<String>,
}

/// A configured directory.
#[derive(Debug, Clone)]
pub struct Directory {
    config: DirectoryConfig,
}

impl Directory {
    pub fn new(config: DirectoryConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &DirectoryConfig {
        &self.config
    }

    /// Checks `password` for the person `username` names and reads who they are. Every refusal by the
    /// directory of the *person* is [`LdapError::Refused`]; anything else is the configuration's or the
    /// directory's problem.
    pub async fn authenticate(&self, username: &str, password: &Secret<String>) -> Result<DirectoryUser, LdapError> {
        if password.expose().is_empty() {
            return Err(LdapError::Refused(Refusal::EmptyPassword));
        }
        let mut ldap = self.connect().await?;
        let result = self.bind_search_bind(&mut ldap, username, password).await;
        // Best effort: the server closes the connection on unbind; a failure here changes nothing.
        let _ = ldap.with_timeout(self.config.timeout).unbind().await;
        result
    }

    async fn bind_search_bind(
        &self,
        ldap: &mut Ldap,
        username: &str,
        password: &Secret<String>,
    ) -> Result<DirectoryUser, LdapError> {
        let c = &self.config;
        let t = c.timeout;
        if let Some(service) = &c.service {
            let res = ldap.with_timeout(t).simple_bind(&service.dn, service.password.expose()).await;
            let res = res.map_err(|e| self.transport_error(e))?;
            if res.rc != rc::SUCCESS {
                return Err(match res.rc {
                    rc::BUSY | rc::UNAVAILABLE => self.unreachable(describe(&res)),
                    _ => LdapError::ServiceAccountRefused { dn: service.dn.clone(), detail: describe(&res) },
                });
            }
        }
        let a = &c.attributes;
        let wanted = vec![a.id.as_str(), a.name.as_str(), a.display_name.as_str(), a.mail.as_str()];
        let filter = c.user_filter.fill(username);
        // Two are enough to know the filter is ambiguous.
        let found = ldap
            .with_timeout(t)
            .with_search_options(SearchOptions::new().sizelimit(2))
            .search(&c.base_dn, Scope::Subtree, &filter, wanted)
            .await
            .map_err(|e| self.transport_error(e))?;
        let (entries, res) = (found.0, found.1);
        if res.rc != rc::SUCCESS && res.rc != rc::SIZE_LIMIT_EXCEEDED {
            return Err(self.search_error(&c.base_dn, &res));
        }
        // Search references (Active Directory's referrals to other partitions) are not people.
        let mut people = entries.into_iter().filter(|e| !e.is_ref() && !e.is_intermediate());
        let entry = match (people.next(), people.next()) {
            (None, _) => return Err(LdapError::Refused(Refusal::NoEntry)),
            (Some(_), Some(_)) => return Err(LdapError::Refused(Refusal::Ambiguous)),
            (Some(one), None) if res.rc == rc::SUCCESS => SearchEntry::construct(one),
            // The server stopped at one entry on a limit of its own: more may match.
            (Some(_), None) => return Err(LdapError::Refused(Refusal::Ambiguous)),
        };
        if entry.dn.is_empty() {
            // A bind with an empty DN is anonymous whatever the password.
            return Err(LdapError::Refused(Refusal::NoEntry));
        }
        // Groups are read with the service account's rights, before the connection becomes the person's.
        let groups = self.groups_of(ldap, &entry.dn).await?;
        let res = ldap.with_timeout(t).simple_bind(&entry.dn, password.expose()).await;
        let res = res.map_err(|e| self.transport_error(e))?;
        match res.rc {
            rc::SUCCESS => {}
            rc::INVALID_CREDENTIALS
            | rc::INAPPROPRIATE_AUTHENTICATION
            | rc::INSUFFICIENT_ACCESS
            | rc::UNWILLING_TO_PERFORM => {
                // Locked or disabled accounts (password policies, Active Directory) end here too.
                tracing::debug!(dn = %entry.dn, answer = %describe(&res), "directory bind refused");
                return Err(LdapError::Refused(Refusal::WrongPassword));
            }
            rc::BUSY | rc::UNAVAILABLE => return Err(self.unreachable(describe(&res))),
            _ => return Err(LdapError::Protocol(format!("bind as {}: {}", entry.dn, describe(&res)))),
        }
        let id = first_value(&entry, &a.id)
            .ok_or_else(|| LdapError::MissingAttribute { dn: entry.dn.clone(), attribute: a.id.clone() })?;
        Ok(DirectoryUser {
            id,
            name: first_value(&entry, &a.name),
            display_name: first_value(&entry, &a.display_name),
            mail: first_value(&entry, &a.mail),
            dn: entry.dn,
            groups,
        })
    }

    /// The names of the groups the group filter finds for `dn`, sorted, without repeats.
    async fn groups_of(&self, ldap: &mut Ldap, dn: &str) -> Result<Vec<String>, LdapError> {
        let c = &self.config;
        let attr = c.attributes.group_name.as_str();
        let found = ldap
            .with_timeout(c.timeout)
            .search(&c.group_base_dn, Scope::Subtree, &c.group_filter.fill(dn), vec![attr])
            .await
            .map_err(|e| self.transport_error(e))?;
        let (entries, res) = (found.0, found.1);
        match res.rc {
            rc::SUCCESS => {}
            // A server limit: sign in with the groups read so far rather than not at all.
            rc::SIZE_LIMIT_EXCEEDED => tracing::warn!(%dn, "the directory cut the group list short (size limit)"),
            _ => return Err(self.search_error(&c.group_base_dn, &res)),
        }
        let mut groups: Vec<String> = entries
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .filter_map(|e| first_value(&SearchEntry::construct(e), attr))
            .collect();
        groups.sort();
        groups.dedup();
        Ok(groups)
    }

    async fn connect(&self) -> Result<Ldap, LdapError> {
        let c = &self.config;
        let mut settings =
            LdapConnSettings::new().set_conn_timeout(c.timeout).set_starttls(c.transport == Transport::StartTls);
        if let Some(tls) = &c.tls {
            settings = settings.set_config(tls.clone());
        }
        // The connect timeout covers the TCP connection, StartTLS and the TLS handshake.
        let (conn, ldap) =
            LdapConnAsync::from_url_with_settings(settings, &c.url).await.map_err(|e| self.transport_error(e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "directory connection ended");
            }
        });
        Ok(ldap)
    }

    fn unreachable(&self, detail: String) -> LdapError {
        LdapError::Unreachable { server: self.config.url.to_string(), detail }
    }

    /// An error of the connection itself (refused, timed out, TLS, closed) is the directory not
    /// answering; anything else the client could not make sense of.
    fn transport_error(&self, e: ldap3::LdapError) -> LdapError {
        use ldap3::LdapError as E;
        match e {
            E::Io { .. }
            | E::Timeout { .. }
            | E::Rustls { .. }
            | E::EndOfStream
            | E::OpSend { .. }
            | E::ResultRecv { .. } => self.unreachable(e.to_string()),
            E::LdapResult { result } if matches!(result.rc, rc::BUSY | rc::UNAVAILABLE) => {
                self.unreachable(describe(&result))
            }
            // StartTLS refused by the server (rc 2 protocolError when it has no certificate).
            E::LdapResult { result } => self.unreachable(format!("StartTLS: {}", describe(&result))),
            other => LdapError::Protocol(other.to_string()),
        }
    }

    fn search_error(&self, base: &str, res: &LdapResult) -> LdapError {
        match res.rc {
            rc::BUSY | rc::UNAVAILABLE => self.unreachable(describe(res)),
            _ => LdapError::Protocol(format!("search under {base}: {}", describe(res))),
        }
    }
}

/// `rc 49 (invalid credentials)`, with the server's text when it gave one.
fn describe(res: &LdapResult) -> String {
    if res.text.is_empty() {
        format!("result code {}", res.rc)
    } else {
        format!("result code {}: {}", res.rc, res.text)
    }
}

/// The first value of `attr` (compared without case, as LDAP does), binary values in hex.
fn first_value(entry: &SearchEntry, attr: &str) -> Option<String> {
    let text = entry.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(attr)).and_then(|(_, v)| v.first().cloned());
    let binary = || {
        entry.bin_attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(attr)).and_then(|(_, v)| v.first()).map(hex::encode)
    };
    text.or_else(binary).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The attribute values a directory returns map to a trimmed, non-blank value of the attribute
        /// (names compared without case), text before binary, or to nothing.
        #[test]
        fn fuzz_directory_attributes_map_to_values(
            attrs in prop::collection::hash_map("(uid|mail|cn)", prop::collection::vec("\\PC{0,8}|[ \t]{0,3}", 0..3), 0..4),
            bin in prop::collection::hash_map("(uid|objectGUID)", prop::collection::vec(prop::collection::vec(any::<u8>(), 0..6), 0..2), 0..2),
            wanted in "(uid|Uid|mail|objectguid|sn)",
        ) {
            let entry = SearchEntry { dn: "uid=x,dc=example".into(), attrs: attrs.clone(), bin_attrs: bin.clone() };
            let got = first_value(&entry, &wanted);
            if let Some(v) = &got {
                prop_assert!(!v.is_empty() && v.trim() == v);
            }
            let text: HashMap<String, Vec<String>> = attrs.into_iter().filter(|(k, _)| k.eq_ignore_ascii_case(&wanted)).collect();
            if let Some(first) = text.values().next().and_then(|v| v.first()) {
                prop_assert_eq!(got, Some(first.trim().to_owned()).filter(|v| !v.is_empty()));
            }
        }
    }
}
