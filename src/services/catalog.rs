//! The template catalog.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};
use serde_json::json;

use entities::template;

use super::{Actor, ServiceError, audit};
use crate::domain::values::bounded_text;
use crate::domain::{FieldError, FieldErrors};

/// A template as an admin enters it.
#[derive(Debug, Clone, Default)]
pub struct TemplateInput {
    pub name: String,
    pub description: String,
    pub node: String,
    pub vmid: i64,
    pub default_cores: i32,
    pub max_cores: i32,
    pub default_memory_mib: i32,
    pub max_memory_mib: i32,
    pub default_disk_gib: i32,
    pub max_disk_gib: i32,
    pub full_clone: bool,
    pub enabled: bool,
    /// `net0` property string of new containers.
    pub net0: String,
    /// Target storage of full clones (empty: the template's).
    pub storage: Option<String>,
    /// `node`, `guest` or `none`.
    pub finish_mode: String,
}

/// Default `net0`: DHCP on vmbr0.
pub const DEFAULT_NET0: &str = "name=eth0,bridge=vmbr0,ip=dhcp";
pub const FINISH_MODES: [&str; 3] = ["node", "guest", "none"];

fn validate(input: &TemplateInput) -> Result<(String, String, String), FieldErrors> {
    let mut errors = FieldErrors::default();
    let name = errors.take(bounded_text("name", &input.name, 1, 100));
    let description = errors.take(bounded_text("description", &input.description, 0, 2000));
    let node = errors.take(
        crate::domain::values::Hostname::parse(&input.node).map_err(|_| FieldError::new("node", "error.node_invalid")),
    );
    if !(100..=999_999_999).contains(&input.vmid) {
        errors.push(FieldError::new("vmid", "error.vmid_range"));
    }
    for (field, default, max) in [
        ("default_cores", input.default_cores, input.max_cores),
        ("default_memory_mib", input.default_memory_mib, input.max_memory_mib),
        ("default_disk_gib", input.default_disk_gib, input.max_disk_gib),
    ] {
        if default < 1 {
            errors.push(FieldError::new(field, "error.at_least").with("min", 1));
        } else if default > max {
            errors.push(FieldError::new(field, "error.default_above_max"));
        }
    }
    if input.net0.trim().is_empty() || input.net0.contains(['\n', '\r']) || !input.net0.contains("name=") {
        errors.push(FieldError::new("net0", "error.net0_invalid"));
    }
    if let Some(st) = &input.storage
        && (st.is_empty() || !st.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        errors.push(FieldError::new("storage", "error.storage_invalid"));
    }
    if !FINISH_MODES.contains(&input.finish_mode.as_str()) {
        errors.push(FieldError::new("finish_mode", "error.choice_invalid"));
    }
    errors.into_result()?;
    Ok((name.unwrap(), description.unwrap(), node.unwrap().as_str().to_owned()))
}

/// Templates people may request (enabled ones), or all of them for admins when `all` is set.
pub async fn list(db: &DatabaseConnection, actor: &Actor, all: bool) -> Result<Vec<template::Model>, ServiceError> {
    let mut q = template::Entity::find().order_by_asc(template::Column::Name);
    if !(all && actor.is_admin()) {
        q = q.filter(template::Column::Enabled.eq(true));
    }
    Ok(q.all(db).await?)
}

/// One template; disabled ones only for admins.
pub async fn get(db: &DatabaseConnection, actor: &Actor, id: i64) -> Result<template::Model, ServiceError> {
    template::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|t| t.enabled || actor.is_admin())
        .ok_or(ServiceError::NotFound)
}

/// Adds a template (admin; `None` actor = command line / demo seeding).
pub async fn create(
    db: &DatabaseConnection,
    actor: Option<&Actor>,
    input: TemplateInput,
) -> Result<template::Model, ServiceError> {
    if let Some(a) = actor {
        a.require_admin()?;
    }
    let (name, description, node) = validate(&input)?;
    let txn = db.begin().await?;
    let row = template::ActiveModel {
        name: Set(name),
        description: Set(description),
        node: Set(node),
        vmid: Set(input.vmid),
        default_cores: Set(input.default_cores),
        max_cores: Set(input.max_cores),
        default_memory_mib: Set(input.default_memory_mib),
        max_memory_mib: Set(input.max_memory_mib),
        default_disk_gib: Set(input.default_disk_gib),
        max_disk_gib: Set(input.max_disk_gib),
        full_clone: Set(input.full_clone),
        enabled: Set(input.enabled),
        net0: Set(input.net0.trim().to_owned()),
        storage: Set(input.storage.clone()),
        finish_mode: Set(input.finish_mode.clone()),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    audit::record(&txn, actor, "template.created", "template", row.id, json!({"name": row.name})).await?;
    txn.commit().await?;
    Ok(row)
}

/// Replaces a template's settings (admin).
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    id: i64,
    input: TemplateInput,
) -> Result<template::Model, ServiceError> {
    actor.require_admin()?;
    let (name, description, node) = validate(&input)?;
    let txn = db.begin().await?;
    let existing = template::Entity::find_by_id(id).one(&txn).await?.ok_or(ServiceError::NotFound)?;
    let mut row: template::ActiveModel = existing.into();
    row.name = Set(name);
    row.description = Set(description);
    row.node = Set(node);
    row.vmid = Set(input.vmid);
    row.default_cores = Set(input.default_cores);
    row.max_cores = Set(input.max_cores);
    row.default_memory_mib = Set(input.default_memory_mib);
    row.max_memory_mib = Set(input.max_memory_mib);
    row.default_disk_gib = Set(input.default_disk_gib);
    row.max_disk_gib = Set(input.max_disk_gib);
    row.full_clone = Set(input.full_clone);
    row.enabled = Set(input.enabled);
    row.net0 = Set(input.net0.trim().to_owned());
    row.storage = Set(input.storage.clone());
    row.finish_mode = Set(input.finish_mode.clone());
    let row = row.update(&txn).await?;
    audit::record(
        &txn,
        Some(actor),
        "template.updated",
        "template",
        id,
        json!({"name": row.name, "enabled": row.enabled}),
    )
    .await?;
    txn.commit().await?;
    Ok(row)
}
