//! The API's own types: never sea-orm models as-is. One file per area; handlers import them all.

mod accounts;
mod adoption;
mod approval_rules;
mod audit;
mod bulk;
mod catalog;
mod groups;
mod identities;
mod machine_details;
mod machines;
mod notifications;
mod or_null;
mod pve_guests;
mod requests;
mod snapshots;
mod text;

pub use accounts::*;
pub use adoption::*;
pub use approval_rules::*;
pub use audit::*;
pub use bulk::*;
pub use catalog::*;
pub use groups::*;
pub use identities::*;
pub use machine_details::*;
pub use machines::*;
pub use notifications::*;
pub use or_null::OrNull;
pub use pve_guests::*;
pub use requests::*;
pub use snapshots::*;
pub use text::Text;
