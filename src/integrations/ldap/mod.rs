//! The directory proxdesk binds to itself (OpenLDAP, Active Directory, any LDAPv3 server): its settings,
//! a connection secured by LDAPS or StartTLS against a pinned CA, and the bind–search–bind that checks a
//! person's password and reads who they are and which groups they are in.

mod client;
mod config;
mod error;
mod filter;
mod tls;

pub use client::{Directory, DirectoryUser};
pub use config::{Attributes, DirectoryConfig, ServiceAccount, Transport};
pub use error::{LdapError, Refusal};
pub use filter::{FilterTemplate, escape_filter_value};
