//! Pages about machines once they exist: the lists with search and filters, a machine's own address,
//! and its snapshots.

pub mod bulk;
pub mod charts;
pub mod details;
mod details_view;
pub mod lease;
pub mod list;
pub mod snapshots;
