//! Access control of the simulated cluster (pve-access.md): its data, and PVE's evaluation of it.

mod model;

pub use model::{AccessConfig, AclSubject, PveMajor, RealmKind, SimAclEntry, SimGroup, SimPool, SimRealm, SimUser};
