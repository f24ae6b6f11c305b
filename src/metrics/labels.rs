//! The label sets of the metric families. Values come from bounded sets: enums, route patterns,
//! normalised endpoint templates, registered job kinds.

use std::fmt::Write;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

/// An HTTP method, the common ones by name and the rest as `OTHER`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(clippy::upper_case_acronyms)]
pub enum Method {
    GET,
    HEAD,
    POST,
    PUT,
    PATCH,
    DELETE,
    OPTIONS,
    OTHER,
}

/// `method` as a label value.
pub fn http_method(method: &str) -> Method {
    match method {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "PATCH" => Method::PATCH,
        "DELETE" => Method::DELETE,
        "OPTIONS" => Method::OPTIONS,
        _ => Method::OTHER,
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: Method,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpTimeLabels {
    pub method: Method,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub method: Method,
    pub endpoint: String,
    /// The HTTP status, or `error` for a transport failure or timeout.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallTimeLabels {
    pub method: Method,
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub kind: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobTimeLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub kind: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsoleLabels {
    pub kind: &'static str,
}

/// How someone tried to sign in.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum SignInMethod {
    Password,
    Ldap,
    OpenId,
    PveRealm,
}

impl SignInMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            SignInMethod::Password => "password",
            SignInMethod::Ldap => "ldap",
            SignInMethod::OpenId => "openid",
            SignInMethod::PveRealm => "pve_realm",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignInLabels {
    pub method: SignInMethod,
}

/// How a Guacamole sync run ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Ran, and Guacamole took every change.
    Succeeded,
    /// Ran, but Guacamole refused some changes.
    WithErrors,
    /// Could not run (Guacamole unreachable, login refused).
    Failed,
}

impl SyncOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncOutcome::Succeeded => "succeeded",
            SyncOutcome::WithErrors => "with_errors",
            SyncOutcome::Failed => "failed",
        }
    }
}

/// Enums whose label value is their `as_str`.
macro_rules! label_value_as_str {
    ($($t:ty),*) => {$(
        impl EncodeLabelValue for $t {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    )*};
}
label_value_as_str!(SignInMethod, SyncOutcome);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncLabels {
    pub outcome: SyncOutcome,
}
