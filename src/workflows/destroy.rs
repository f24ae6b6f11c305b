//! The `destroy` job: stop and delete a machine's container, then mark the request `deleted`.

use std::sync::Arc;

use jobs::{Handler, HandlerError, JobContext, Outcome};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde::Deserialize;
use serde_json::json;

use entities::{machine, request};

use super::provision::destroy_container;
use super::{Deps, StepError, timeline};
use crate::domain::request_status::{RequestEvent, RequestStatus};
use crate::services::requests;

#[derive(Deserialize)]
struct Payload {
    request_id: i64,
}

/// The `destroy` job handler.
pub struct Destroy {
    pub deps: Arc<Deps>,
}

#[jobs::async_trait]
impl Handler for Destroy {
    async fn run(&self, ctx: JobContext) -> Result<Outcome, HandlerError> {
        let Payload { request_id } = ctx.payload_as()?;
        let db = &self.deps.db;
        let Some(req) = request::Entity::find_by_id(request_id).one(db).await? else {
            return Ok(Outcome::failed(format!("request {request_id} no longer exists")));
        };
        if RequestStatus::parse(&req.status) != Some(RequestStatus::Deleting) {
            return Ok(Outcome::Done);
        }
        let m = machine::Entity::find().filter(machine::Column::RequestId.eq(request_id)).one(db).await?;
        if let Some(vmid) = m.as_ref().and_then(|m| m.vmid) {
            let node = m.as_ref().map(|m| m.node.clone()).unwrap_or_default();
            if let Err(e) = destroy_container(&self.deps, &node, vmid as u64).await {
                let fatal = matches!(e, StepError::Fatal(_));
                let details = json!({"attempt": ctx.attempt(), "error": e.message()});
                timeline::note(db, request_id, "machine.delete_failed", details).await;
                return if fatal { Ok(Outcome::failed(e.message())) } else { Err(e.message().to_owned().into()) };
            }
        }
        let txn = crate::db::begin_write(db).await?;
        if let Some(m) = m {
            let mut row: machine::ActiveModel = m.into();
            row.deleted_at = Set(Some(chrono::Utc::now()));
            machine::Entity::update(row).exec(&txn).await?;
        }
        requests::transition_in(&txn, None, request_id, RequestEvent::Deleted, vec![], json!({})).await?;
        txn.commit().await?;
        Ok(Outcome::Done)
    }
}
