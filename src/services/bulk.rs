//! Bulk actions: a run records who asked for which action on which machines; each machine is an item
//! carried out by its own job (`workflows::bulk`), so a refusal or failure of one never stops the others.
//! The run's page reads the items as they settle.

use chrono::Utc;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::json;

use entities::{bulk_item, bulk_run, machine, user};

use super::{Actor, ServiceError, audit, live};
use crate::domain::bulk::{self, BulkAction, BulkInputError, ItemState, Reason};
use crate::domain::{FieldError, roles::Role};

/// The job kind that carries out one item.
pub const ITEM_JOB: &str = "bulk_item";

/// The live pages' subject of a run: item changes publish it.
pub const SUBJECT: &str = "bulk_run";

/// A run as its page and the API show it.
#[derive(Debug, Clone)]
pub struct Run {
    pub id: i64,
    pub user_id: i64,
    pub action: BulkAction,
    pub created_at: chrono::DateTime<Utc>,
    pub items: Vec<Item>,
}

/// One machine of a run.
#[derive(Debug, Clone)]
pub struct Item {
    pub machine_id: i64,
    pub state: ItemState,
    pub reason: Option<Reason>,
    pub message: Option<String>,
    /// The machine as the actor may see it (`None`: not theirs, or no such machine).
    pub machine: Option<machine::Model>,
}

impl Run {
    /// How many items are in each state.
    pub fn count(&self, state: ItemState) -> usize {
        self.items.iter().filter(|i| i.state == state).count()
    }

    /// Whether every item has settled.
    pub fn finished(&self) -> bool {
        self.items.iter().all(|i| i.state.is_final())
    }
}

/// What an item's job works on: the item, its run's action, and the actor it acts as.
#[derive(Debug, Clone)]
pub struct Work {
    pub item: bulk_item::Model,
    pub action: BulkAction,
    pub actor: Actor,
    /// The item was already running: an earlier attempt may have done the work before it stopped.
    pub resumed: bool,
}

fn input_error(e: BulkInputError) -> ServiceError {
    let code = match e {
        BulkInputError::NoMachines => "error.bulk_none",
        BulkInputError::TooMany { .. } => "error.bulk_too_many",
    };
    FieldError::new("machines", code).with("max", bulk::MAX_ITEMS.to_string()).into()
}

/// Starts a run of `action` on `machine_ids` as `actor`: one item per machine, in one transaction with
/// their jobs. A machine the actor may not see is refused as "not found" at once (nothing says whether
/// it exists), and so is a deleted one; the others are queued.
pub async fn start(
    db: &DatabaseConnection,
    actor: &Actor,
    action: BulkAction,
    machine_ids: &[i64],
) -> Result<i64, ServiceError> {
    let ids = bulk::machine_ids(machine_ids).map_err(input_error)?;
    let mut visible = machine::Entity::find().filter(machine::Column::Id.is_in(ids.iter().copied()));
    if !actor.is_admin() {
        visible = visible.filter(machine::Column::UserId.eq(actor.id));
    }
    let machines: std::collections::HashMap<i64, machine::Model> =
        visible.all(db).await?.into_iter().map(|m| (m.id, m)).collect();
    let now = Utc::now();
    let txn = crate::db::begin_write(db).await?;
    let run = bulk_run::ActiveModel {
        user_id: Set(actor.id),
        action: Set(action.as_str().to_owned()),
        created_at: Set(now),
        ..Default::default()
    };
    let run_id = bulk_run::Entity::insert(run).exec(&txn).await?.last_insert_id;
    let mut queued = 0;
    for id in &ids {
        let (state, reason) = match machines.get(id) {
            None => (ItemState::Refused, Some(Reason::NotFound)),
            Some(m) if m.deleted_at.is_some() => (ItemState::Refused, Some(Reason::Deleted)),
            Some(_) => (ItemState::Queued, None),
        };
        let row = bulk_item::ActiveModel {
            run_id: Set(run_id),
            machine_id: Set(*id),
            state: Set(state.as_str().to_owned()),
            reason: Set(reason.map(|r| r.as_str().to_owned())),
            message: Set(None),
            updated_at: Set(now),
            ..Default::default()
        };
        let item_id = bulk_item::Entity::insert(row).exec(&txn).await?.last_insert_id;
        if state == ItemState::Queued {
            let job = jobs::NewJob::new(ITEM_JOB, json!({"item_id": item_id}))
                .idempotency_key(format!("bulk-item-{item_id}"));
            jobs::enqueue(&txn, job).await?;
            queued += 1;
        }
    }
    let details = json!({"action": action.as_str(), "machines": ids.len(), "queued": queued});
    audit::record(&txn, Some(actor), "machine.bulk", SUBJECT, run_id, details).await?;
    txn.commit().await?;
    jobs::wake();
    Ok(run_id)
}

/// A run with its items, for the actor who started it or an admin (anyone else: not found).
pub async fn get(db: &DatabaseConnection, actor: &Actor, run_id: i64) -> Result<Run, ServiceError> {
    let run = bulk_run::Entity::find_by_id(run_id)
        .one(db)
        .await?
        .filter(|r| r.user_id == actor.id || actor.is_admin())
        .ok_or(ServiceError::NotFound)?;
    let action = parse_action(&run)?;
    let rows = bulk_item::Entity::find()
        .filter(bulk_item::Column::RunId.eq(run_id))
        .order_by_asc(bulk_item::Column::Id)
        .all(db)
        .await?;
    let mut visible = machine::Entity::find().filter(machine::Column::Id.is_in(rows.iter().map(|i| i.machine_id)));
    if !actor.is_admin() {
        visible = visible.filter(machine::Column::UserId.eq(actor.id));
    }
    let mut machines: std::collections::HashMap<i64, machine::Model> =
        visible.all(db).await?.into_iter().map(|m| (m.id, m)).collect();
    let items = rows
        .into_iter()
        .map(|i| Item {
            machine_id: i.machine_id,
            state: ItemState::parse(&i.state).unwrap_or(ItemState::Failed),
            reason: i.reason.as_deref().and_then(Reason::parse),
            message: i.message,
            machine: machines.remove(&i.machine_id),
        })
        .collect();
    Ok(Run { id: run.id, user_id: run.user_id, action, created_at: run.created_at, items })
}

fn parse_action(run: &bulk_run::Model) -> Result<BulkAction, ServiceError> {
    BulkAction::parse(&run.action)
        .ok_or_else(|| ServiceError::Internal(format!("bulk run {} has an unknown action {:?}", run.id, run.action)))
}

/// Takes item `item_id` for its job: marks it running and answers what to do, as whom. `None` when there
/// is nothing (more) to do: the item settled, or its run's user no longer exists (then it is refused).
pub async fn take(db: &DatabaseConnection, item_id: i64) -> Result<Option<Work>, ServiceError> {
    let Some(item) = bulk_item::Entity::find_by_id(item_id).one(db).await? else { return Ok(None) };
    let state = ItemState::parse(&item.state).unwrap_or(ItemState::Failed);
    if state.is_final() {
        return Ok(None);
    }
    let Some(run) = bulk_run::Entity::find_by_id(item.run_id).one(db).await? else { return Ok(None) };
    let action = parse_action(&run)?;
    let Some(u) = user::Entity::find_by_id(run.user_id).one(db).await? else {
        settle(db, &item, Settled::refused(Reason::NoActor, None)).await?;
        return Ok(None);
    };
    let role = Role::parse(&u.role).unwrap_or(Role::User);
    let actor = Actor { id: u.id, username: u.username, role, language: u.language };
    if state == ItemState::Queued {
        mark(db, &item, Settled { state: ItemState::Running, reason: None, message: None }).await?;
    }
    Ok(Some(Work { item, action, actor, resumed: state == ItemState::Running }))
}

/// How an item ended (or where it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub state: ItemState,
    pub reason: Option<Reason>,
    pub message: Option<String>,
}

impl Settled {
    pub fn done() -> Settled {
        Settled { state: ItemState::Done, reason: None, message: None }
    }
    pub fn refused(reason: Reason, message: Option<String>) -> Settled {
        Settled { state: ItemState::Refused, reason: Some(reason), message }
    }
    pub fn failed(reason: Reason, message: Option<String>) -> Settled {
        Settled { state: ItemState::Failed, reason: Some(reason), message }
    }
}

/// Records how an item ended.
pub async fn settle(db: &DatabaseConnection, item: &bulk_item::Model, end: Settled) -> Result<(), ServiceError> {
    mark(db, item, end).await
}

async fn mark<C: ConnectionTrait>(conn: &C, item: &bulk_item::Model, end: Settled) -> Result<(), ServiceError> {
    bulk_item::Entity::update_many()
        .col_expr(bulk_item::Column::State, Expr::value(end.state.as_str()))
        .col_expr(bulk_item::Column::Reason, Expr::value(end.reason.map(|r| r.as_str())))
        .col_expr(bulk_item::Column::Message, Expr::value(end.message))
        .col_expr(bulk_item::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(bulk_item::Column::Id.eq(item.id))
        .exec(conn)
        .await?;
    live::publish(live::Change { subject_type: SUBJECT.into(), subject_id: item.run_id, actor_id: None });
    Ok(())
}

/// The end of a machine's deletion (the destroy job): the bulk delete items still running for it settle
/// with it, inside the destroy job's transaction.
pub async fn settle_deletion_in<C: ConnectionTrait>(
    conn: &C,
    machine_id: i64,
    end: Settled,
) -> Result<(), ServiceError> {
    let deletes = Query::select()
        .column(bulk_run::Column::Id)
        .from(bulk_run::Entity)
        .and_where(bulk_run::Column::Action.eq(BulkAction::Delete.as_str()))
        .to_owned();
    let items = bulk_item::Entity::find()
        .filter(bulk_item::Column::MachineId.eq(machine_id))
        .filter(bulk_item::Column::State.eq(ItemState::Running.as_str()))
        .filter(bulk_item::Column::RunId.in_subquery(deletes))
        .all(conn)
        .await?;
    for item in items {
        mark(conn, &item, end.clone()).await?;
    }
    Ok(())
}
