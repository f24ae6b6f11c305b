//! Checking a new request: its fields, the template's limits and the quota left, all at once.

use sea_orm::{DatabaseConnection, EntityTrait};

use entities::template;

use super::NewRequest;
use crate::domain::quota::{Resources, TemplateLimits, check_quota, check_template_limits};
use crate::domain::values::{Hostname, SshPublicKey, bounded_text};
use crate::domain::{FieldError, FieldErrors};
use crate::services::{Actor, ServiceError, quotas};

/// A request's parts once every check passed.
pub(super) struct CheckedRequest {
    pub hostname: Hostname,
    pub purpose: String,
    pub ssh_key: Option<SshPublicKey>,
    pub template: template::Model,
    pub choices: Choices,
}

/// What a request records of the entry's allowed choices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Choices {
    pub storage: Option<String>,
    pub bridge: Option<String>,
    pub iso: Option<String>,
}

/// One choice against its allow-list: a given value must be on it; none given takes the list's first
/// (`None` when the entry offers no choice).
fn choose(
    errors: &mut FieldErrors,
    field: &'static str,
    code: &'static str,
    given: Option<&str>,
    allowed: &[String],
) -> Option<String> {
    match given.map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) if allowed.iter().any(|a| a == v) => Some(v.to_owned()),
        Some(v) => {
            errors.push(FieldError::new(field, code).with("value", v));
            None
        }
        None => allowed.first().cloned(),
    }
}

/// The request's storage, bridge and ISO against `t`'s lists, every refusal at once.
fn check_choices(errors: &mut FieldErrors, input: &NewRequest, t: &template::Model) -> Choices {
    let allowed = crate::services::catalog::allowed(t);
    Choices {
        storage: choose(errors, "storage", "error.storage_not_allowed", input.storage.as_deref(), &allowed.storages),
        bridge: choose(errors, "bridge", "error.bridge_not_allowed", input.bridge.as_deref(), &allowed.bridges),
        iso: choose(errors, "iso", "error.iso_not_allowed", input.iso.as_deref(), &allowed.isos),
    }
}

/// Every problem of `input` at once: its fields, the template's limits and the quota left (read without a
/// lock, so `create` checks the quota again under one). Fields named in `unreadable` could not be read
/// as numbers by the caller (which reports them) and are left out of the checks.
pub async fn check(
    db: &DatabaseConnection,
    actor: &Actor,
    input: &NewRequest,
    unreadable: &[&str],
) -> Result<FieldErrors, ServiceError> {
    Ok(check_new(db, actor, input, unreadable).await?.1)
}

pub(super) async fn check_new(
    db: &DatabaseConnection,
    actor: &Actor,
    input: &NewRequest,
    unreadable: &[&str],
) -> Result<(Option<CheckedRequest>, FieldErrors), ServiceError> {
    let mut errors = FieldErrors::default();
    let hostname = errors.take(Hostname::parse(&input.hostname));
    let purpose = errors.take(bounded_text("purpose", &input.purpose, 1, 1000));
    let ssh_key = match input.ssh_public_key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        Some(k) => errors.take(SshPublicKey::parse(k)).map(Some),
        None => Some(None),
    };
    // An unreadable number counts as 0 towards the quota: its own error is already reported.
    let read = |field: &str, v: i32| if unreadable.contains(&field) { 0 } else { v };
    let wanted = Resources {
        cores: read("cores", input.cores),
        memory_mib: read("memory_mib", input.memory_mib),
        disk_gib: read("disk_gib", input.disk_gib),
    };
    let mut choices = None;
    let template = if unreadable.contains(&"template_id") {
        None
    } else {
        let t = template::Entity::find_by_id(input.template_id).one(db).await?.filter(|t| t.enabled);
        match &t {
            Some(t) => {
                let max = Resources { cores: t.max_cores, memory_mib: t.max_memory_mib, disk_gib: t.max_disk_gib };
                let limits = check_template_limits(TemplateLimits { max }, wanted);
                errors.0.extend(limits.0.into_iter().filter(|e| !unreadable.contains(&e.field)));
                choices = Some(check_choices(&mut errors, input, t));
            }
            None => errors.push(FieldError::new("template_id", "error.template_unknown")),
        }
        t
    };
    let quota = quotas::effective(db, actor.id).await?;
    let usage = quotas::usage(db, actor.id).await?;
    for e in check_quota(quota, usage, wanted).0 {
        if !unreadable.contains(&e.field) && !errors.0.iter().any(|x| x.field == e.field) {
            errors.push(e);
        }
    }
    let checked = match (hostname, purpose, ssh_key, template, choices) {
        (Some(hostname), Some(purpose), Some(ssh_key), Some(template), Some(choices)) if errors.is_empty() => {
            Some(CheckedRequest { hostname, purpose, ssh_key, template, choices })
        }
        _ => None,
    };
    Ok((checked, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_is_on_the_list_or_refused_and_none_takes_the_first() {
        let list = vec!["vmbr0".to_owned(), "vmbr1".to_owned()];
        let mut errors = FieldErrors::default();
        let code = "error.bridge_not_allowed";
        assert_eq!(choose(&mut errors, "bridge", code, Some(" vmbr1 "), &list), Some("vmbr1".into()));
        assert_eq!(choose(&mut errors, "bridge", code, None, &list), Some("vmbr0".into()));
        assert_eq!(choose(&mut errors, "bridge", code, Some(""), &list), Some("vmbr0".into()));
        assert_eq!(choose(&mut errors, "bridge", code, None, &[]), None);
        assert!(errors.is_empty());
        assert_eq!(choose(&mut errors, "bridge", code, Some("vmbr9"), &list), None);
        assert_eq!(choose(&mut errors, "bridge", code, Some("vmbr0"), &[]), None);
        assert_eq!(errors.0.iter().map(|e| (e.field, e.code)).collect::<Vec<_>>(), [("bridge", code); 2]);
    }
}
