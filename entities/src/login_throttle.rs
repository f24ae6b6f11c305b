//! One sign-in throttling counter per scope: `pair:<account>|<address>`, `user:<account>` or
//! `addr:<address>`. Times are Unix milliseconds.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_throttles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub scope: String,
    /// Attempts counted (each before its check) and not given back by a success.
    pub failures: i64,
    /// No attempt in this scope before this time.
    pub next_at_ms: i64,
    /// When the last attempt was counted; a long quiet spell starts the count over.
    pub last_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
