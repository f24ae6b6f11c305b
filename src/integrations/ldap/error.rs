//! What can go wrong talking to the directory, sorted by whose problem it is: the person's (a refusal),
//! the configuration's, or the directory's (it did not answer).

/// Why the directory would not vouch for a person. All of them read "wrong name or password" to the
/// person, so nothing tells which names exist; the log keeps the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No password typed: an empty simple bind is an anonymous bind, which would "succeed".
    EmptyPassword,
    /// No entry matched the user filter.
    NoEntry,
    /// Several entries matched: the filter is not specific enough to tell who this is.
    Ambiguous,
    /// The entry was found but the bind with the password failed.
    WrongPassword,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmptyPassword => "empty password",
            Self::NoEntry => "no entry matches the user filter",
            Self::Ambiguous => "several entries match the user filter",
            Self::WrongPassword => "wrong password",
        }
    }
}

/// Errors of the directory integration. None of them holds a password.
#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// An `ldap_*` setting that cannot be used (named as its environment variable).
    #[error("invalid setting {key}: {message}")]
    Config { key: &'static str, message: String },
    /// The directory could not be reached, timed out, failed the TLS handshake, or said it is busy.
    #[error("the directory {server} did not answer: {detail}")]
    Unreachable { server: String, detail: String },
    /// The service account's bind was refused: a configuration problem, not the person's.
    #[error("the directory refused the service account {dn}: {detail}")]
    ServiceAccountRefused { dn: String, detail: String },
    /// The person is not let in (see [`Refusal`]).
    #[error("sign-in refused: {}", .0.as_str())]
    Refused(Refusal),
    /// The person's entry lacks the attribute that identifies them (`ldap_id_attr`).
    #[error("the directory entry {dn} has no {attribute} attribute")]
    MissingAttribute { dn: String, attribute: String },
    /// The directory answered something unexpected (a search base that does not exist, a refused search).
    #[error("the directory answered: {0}")]
    Protocol(String),
}
