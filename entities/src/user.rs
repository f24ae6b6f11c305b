//! proxdesk accounts: local ones with a password, and those made on a first sign-in through an
//! outside identity (see `identity`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub username: String,
    /// argon2id PHC string; empty for an account that signs in only through an outside identity.
    pub password_hash: String,
    /// `user` or `admin`.
    pub role: String,
    pub disabled: bool,
    /// Preferred UI language (`en`, `fr`, `it`); `None` follows Accept-Language.
    pub language: Option<String>,
    pub created_at: DateTimeUtc,
    /// From the identity the account was made from (or set by an admin).
    pub email: Option<String>,
    pub display_name: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
