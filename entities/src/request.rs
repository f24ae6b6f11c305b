//! A request for a machine and where it stands in its life.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "requests")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    /// The catalog entry it was made from; `None` for a guest an admin adopted without one.
    pub template_id: Option<i64>,
    pub hostname: String,
    pub cores: i32,
    pub memory_mib: i32,
    pub disk_gib: i32,
    pub purpose: String,
    pub ssh_public_key: Option<String>,
    /// The storage chosen among the entry's allowed ones (`None`: the entry allows no choice).
    pub storage: Option<String>,
    /// The bridge chosen for `net0` among the entry's allowed ones.
    pub bridge: Option<String>,
    /// The installer ISO chosen (ISO entries).
    pub iso: Option<String>,
    /// One of the states of `domain::request_status`.
    pub status: String,
    /// Why an admin rejected it, or why provisioning failed.
    pub reason: Option<String>,
    pub decided_by: Option<i64>,
    /// `domain::request_origin::RequestOrigin`: `requested` or `adopted`.
    pub origin: String,
    /// The automatic approval rule that approved it; `None`: a person did (`decided_by`), or nobody yet.
    pub approved_by_rule: Option<i64>,
    /// The approval stage it waits at (0-based) when its entry has stages; 0 otherwise.
    pub stage: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(belongs_to = "super::user::Entity", from = "Column::UserId", to = "super::user::Column::Id")]
    User,
    #[sea_orm(belongs_to = "super::template::Entity", from = "Column::TemplateId", to = "super::template::Column::Id")]
    Template,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::template::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Template.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
