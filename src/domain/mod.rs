//! Pure rules of proxdesk: no HTTP, no storage. Raw input becomes these types at the edges.

pub mod approval_rule;
pub mod approval_stages;
pub mod bulk;
pub mod console_caps;
pub mod errors;
pub mod guest;
pub mod guest_marker;
pub mod identity;
pub mod lease;
pub mod login_name;
pub mod lost;
pub mod notification;
pub mod proxies;
pub mod quota;
pub mod request_origin;
pub mod request_status;
pub mod roles;
pub mod snapshot;
pub mod throttle;
pub mod values;

pub use errors::{FieldError, FieldErrors};
