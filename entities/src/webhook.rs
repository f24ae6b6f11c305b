//! An admin-configured webhook: events are POSTed to `url` as JSON signed with its secret.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub url: String,
    /// The signing secret, sealed with the desk's secret key (shown once, at creation).
    pub secret_sealed: String,
    /// Comma-separated event kinds it wants; empty: every kind.
    pub events: String,
    pub created_by: Option<i64>,
    pub created_at: DateTimeUtc,
    /// `delivered`, `retrying` or `failed`, after the latest attempt of any delivery.
    pub last_status: Option<String>,
    /// The HTTP status of that attempt, when one was answered.
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
