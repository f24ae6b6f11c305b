//! A machine (container or VM) proxdesk created for a request.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "machines")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub request_id: i64,
    pub user_id: i64,
    /// `domain::guest::GuestType`: `lxc` or `qemu`.
    pub kind: String,
    pub node: String,
    pub vmid: Option<i64>,
    pub hostname: String,
    pub ipv4: Option<String>,
    /// Login created on the machine for its owner.
    pub login_user: Option<String>,
    /// The owner's generated password, sealed with the instance's secret key.
    pub password_sealed: Option<String>,
    pub created_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
    /// Why its container no longer carries its marker (`replaced` or `gone`), while the machine is lost.
    pub lost_reason: Option<String>,
    pub lost_at: Option<DateTimeUtc>,
    /// The installer ISO still in the VM's CD drive (ISO machines), until the owner detaches it.
    pub install_media: Option<String>,
    /// When the lease ends: the machine is stopped then, and deleted after the grace period. `None`: no expiry.
    pub expires_at: Option<DateTimeUtc>,
    /// `domain::lease::LeaseStage`: how far the lease's steps went (`active`, `warned_first`, …).
    pub lease_stage: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
