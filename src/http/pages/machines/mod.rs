//! Pages about machines once they exist: the lists with search and bulk actions, the details page
//! (live usage, charts, snapshots, timeline), snapshots, and adopting a guest the cluster already has.

pub mod adopt;
pub mod bulk;
pub mod details;
pub mod list;
pub mod snapshots;
