//! An entry's approval stages as the admin names them: groups in order, each once. The list of an entry
//! with pending requests cannot change: a request's stage counts positions in that list.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
};

use entities::{request, template_approval_stage as stage};

use crate::domain::request_status::RequestStatus;
use crate::domain::{FieldError, FieldErrors};
use crate::services::requests::stages::{names, stages_of};
use crate::services::{ServiceError, groups};

/// The most stages an entry may have.
pub const MAX_STAGES: usize = 5;
const FIELD: &str = "approval_stages";

/// Replaces the stages of `template_id` with the groups `wanted` names (`None`: unchanged). Returns the
/// new list when it changed. Unknown groups, a group named twice, too many stages, or a change while the
/// entry has pending requests are field errors.
pub(super) async fn replace<C: ConnectionTrait>(
    conn: &C,
    template_id: i64,
    wanted: Option<&[String]>,
) -> Result<Option<Vec<String>>, ServiceError> {
    let Some(wanted) = wanted else { return Ok(None) };
    let wanted: Vec<String> = wanted.iter().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect();
    let mut errors = FieldErrors::default();
    if wanted.len() > MAX_STAGES {
        errors.push(FieldError::new(FIELD, "error.stages_too_many").with("max", MAX_STAGES));
    }
    if let Some(twice) = wanted.iter().enumerate().find(|(i, n)| wanted[..*i].contains(n)).map(|(_, n)| n) {
        errors.push(FieldError::new(FIELD, "error.stage_repeated").with("name", twice));
    }
    errors.into_result()?;
    let before = names(&stages_of(conn, Some(template_id)).await?);
    if before == wanted {
        return Ok(None);
    }
    let groups = groups::by_names(conn, FIELD, &wanted).await?;
    let pending = request::Entity::find()
        .filter(request::Column::TemplateId.eq(template_id))
        .filter(request::Column::Status.eq(RequestStatus::Pending.as_str()))
        .count(conn)
        .await?;
    if pending > 0 {
        return Err(FieldError::new(FIELD, "error.stages_pending_requests").with("n", pending).into());
    }
    stage::Entity::delete_many().filter(stage::Column::TemplateId.eq(template_id)).exec(conn).await?;
    for (position, g) in groups.iter().enumerate() {
        stage::ActiveModel { template_id: Set(template_id), position: Set(position as i32), group_id: Set(g.id) }
            .insert(conn)
            .await?;
    }
    Ok(Some(wanted))
}
