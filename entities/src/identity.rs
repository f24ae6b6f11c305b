//! Outside identities linked to proxdesk accounts: a Proxmox VE realm user, a directory entry, an
//! OpenID Connect subject. One account may have several; an identity belongs to one account.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "identities")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    /// `pve`, `ldap` or `oidc` (`domain::identity::IdentityProvider`).
    pub provider: String,
    /// Who vouches for the subject: the PVE cluster's realm, the directory's name, the OpenID issuer URL.
    pub issuer: String,
    /// The identity's stable key at its issuer: the PVE user id (`alice@pve`), the directory entry's
    /// id attribute, the OpenID `sub`.
    pub subject: String,
    pub email: Option<String>,
    /// Whether the issuer said the e-mail address is verified (only then may it link accounts).
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub created_at: DateTimeUtc,
    pub last_sign_in_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(belongs_to = "super::user::Entity", from = "Column::UserId", to = "super::user::Column::Id")]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
