//! Administration: users, catalog, quotas, audit log. Every handler requires the admin role.

use poem::Request as HttpRequest;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;

use super::account::NoContent;
use super::body_error::BodyApiError;
use super::schemas::*;
use super::{ApiTags, state};
use crate::domain::guest::MachineKind;
use crate::domain::quota;
use crate::domain::roles::Role;
use crate::http::auth::ApiAuth;
use crate::http::errors::ApiError;
use crate::secrets::Secret;
use crate::services::{self, catalog::TemplateInput};

pub struct AdminApi;

type R<T> = Result<Json<T>, ApiError>;
type B<T> = Result<Json<T>, BodyApiError>;

fn role(r: RoleName) -> Role {
    match r {
        RoleName::Admin => Role::Admin,
        RoleName::User => Role::User,
    }
}

fn template_input(b: TemplateBody) -> TemplateInput {
    let kind: MachineKind = b.kind.map(Into::into).unwrap_or(MachineKind::Lxc);
    let default_finish = if kind == MachineKind::Lxc { "node" } else { "none" };
    TemplateInput {
        name: b.name.into(),
        description: b.description.into(),
        kind,
        node: Text::opt(b.node).unwrap_or_default(),
        vmid: b.vmid.unwrap_or(0),
        nodes: Text::all(b.nodes),
        storages: Text::all(b.storages),
        bridges: Text::all(b.bridges),
        isos: Text::all(b.isos),
        ostype: Text::opt(b.ostype).unwrap_or_else(|| "l26".into()),
        ip_pool: Text::opt(b.ip_pool),
        gateway: Text::opt(b.gateway),
        default_cores: b.default_cores,
        max_cores: b.max_cores,
        default_memory_mib: b.default_memory_mib,
        max_memory_mib: b.max_memory_mib,
        default_disk_gib: b.default_disk_gib,
        max_disk_gib: b.max_disk_gib,
        full_clone: b.full_clone,
        enabled: b.enabled,
        net0: Text::opt(b.net0).unwrap_or_else(|| crate::services::catalog::DEFAULT_NET0.into()),
        finish_mode: b.finish_mode.map_or(default_finish, FinishMode::as_str).into(),
        snapshot_limit: b.snapshot_limit,
        lease_days: b.lease_days,
        lease_max_days: b.lease_max_days,
        approval_stages: b.approval_stages.map(Text::all),
    }
}

/// Catalog entries as the API shows them, with their approval stages (one query for all).
pub(super) async fn templates_out(
    db: &sea_orm::DatabaseConnection,
    list: Vec<entities::template::Model>,
) -> Result<Vec<Template>, services::ServiceError> {
    let ids: Vec<i64> = list.iter().map(|t| t.id).collect();
    let mut stages = services::requests::stages::stages_of_templates(db, &ids).await?;
    Ok(list
        .into_iter()
        .map(|t| {
            let names = stages.remove(&t.id).map(|s| services::requests::stages::names(&s)).unwrap_or_default();
            Template { approval_stages: names, ..t.into() }
        })
        .collect())
}

fn quota_out(q: quota::Quota) -> Quota {
    Quota {
        max_machines: q.max_machines,
        max_cores: q.max_cores,
        max_memory_mib: q.max_memory_mib,
        max_disk_gib: q.max_disk_gib,
    }
}

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminApi {
    /// All accounts.
    #[oai(path = "/users", method = "get")]
    async fn users(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        q: Query<Option<String>>,
        cursor: Query<Option<i64>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u64>>,
    ) -> R<UserPage> {
        let page = services::users::list(&state(req).db, auth.actor(), q.0.as_deref(), cursor.0, limit.0).await?;
        Ok(Json(UserPage { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor }))
    }

    /// Create an account.
    #[oai(path = "/users", method = "post")]
    async fn create_user(&self, req: &HttpRequest, auth: ApiAuth, body: Json<CreateUser>) -> B<CreatedUser> {
        let b = body.0;
        let new = services::users::NewUser {
            username: b.username.into(),
            role: role(b.role),
            password: Text::opt(b.password).map(Secret::new),
        };
        let (user, generated) = services::users::create(&state(req).db, Some(auth.actor()), new).await?;
        Ok(Json(CreatedUser { user: user.into(), password: generated.map(|p| p.expose().clone()) }))
    }

    /// Disable an account; its sessions end at once and its tokens stop working.
    #[oai(path = "/users/:id/disable", method = "post")]
    async fn disable(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> Result<NoContent, ApiError> {
        services::users::set_disabled(&state(req).db, auth.actor(), id.0, true).await?;
        Ok(NoContent::Done)
    }

    /// Enable an account again.
    #[oai(path = "/users/:id/enable", method = "post")]
    async fn enable(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> Result<NoContent, ApiError> {
        services::users::set_disabled(&state(req).db, auth.actor(), id.0, false).await?;
        Ok(NoContent::Done)
    }

    /// Set a new generated password (returned once); the account's sessions end and its tokens are
    /// revoked. Not for your own account (409): change yours with `PUT /me/password`.
    #[oai(path = "/users/:id/reset-password", method = "post")]
    async fn reset_password(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> R<Password> {
        let pw = services::users::reset_password(&state(req).db, auth.actor(), id.0).await?;
        Ok(Json(Password { password: pw.expose().clone() }))
    }

    /// A user's quota: override, effective values and usage.
    #[oai(path = "/users/:id/quota", method = "get")]
    async fn user_quota(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> R<UserQuota> {
        auth.actor().require_admin()?;
        let db = &state(req).db;
        let o = services::quotas::user_override(db, id.0).await?;
        let effective = services::quotas::effective(db, id.0).await?;
        let used = services::quotas::usage(db, id.0).await?;
        Ok(Json(UserQuota {
            overrides: QuotaOverride {
                max_machines: o.max_machines,
                max_cores: o.max_cores,
                max_memory_mib: o.max_memory_mib,
                max_disk_gib: o.max_disk_gib,
            },
            effective: quota_out(effective),
            used_machines: used.machines,
            used_cores: used.resources.cores,
            used_memory_mib: used.resources.memory_mib,
            used_disk_gib: used.resources.disk_gib,
        }))
    }

    /// Set a user's quota override (unset fields follow the role).
    #[oai(path = "/users/:id/quota", method = "put")]
    async fn set_user_quota(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        id: Path<i64>,
        body: Json<QuotaOverride>,
    ) -> Result<NoContent, BodyApiError> {
        let b = body.0;
        let o = quota::QuotaOverride {
            max_machines: b.max_machines,
            max_cores: b.max_cores,
            max_memory_mib: b.max_memory_mib,
            max_disk_gib: b.max_disk_gib,
        };
        services::quotas::set_user_override(&state(req).db, auth.actor(), id.0, o).await?;
        Ok(NoContent::Done)
    }

    /// Every template, enabled or not.
    #[oai(path = "/admin/templates", method = "get")]
    async fn all_templates(&self, req: &HttpRequest, auth: ApiAuth) -> R<Vec<Template>> {
        auth.actor().require_admin()?;
        let db = &state(req).db;
        let list = services::catalog::list(db, auth.actor(), true).await?;
        Ok(Json(templates_out(db, list).await?))
    }

    /// Add an entry to the catalog; every choice is checked with PVE (503 when it does not answer).
    #[oai(path = "/admin/templates", method = "post")]
    async fn create_template(&self, req: &HttpRequest, auth: ApiAuth, body: Json<TemplateBody>) -> B<Template> {
        let st = state(req);
        let t = services::catalog::create(&st.db, st.pve.as_ref(), Some(auth.actor()), template_input(body.0)).await?;
        Ok(Json(templates_out(&st.db, vec![t]).await?.remove(0)))
    }

    /// Change a template.
    #[oai(path = "/admin/templates/:id", method = "put")]
    async fn update_template(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        id: Path<i64>,
        body: Json<TemplateBody>,
    ) -> B<Template> {
        let st = state(req);
        let t = services::catalog::update(&st.db, st.pve.as_ref(), auth.actor(), id.0, template_input(body.0)).await?;
        Ok(Json(templates_out(&st.db, vec![t]).await?.remove(0)))
    }

    /// Each role's quota.
    #[oai(path = "/quotas", method = "get")]
    async fn quotas(&self, req: &HttpRequest, auth: ApiAuth) -> R<Vec<RoleQuota>> {
        auth.actor().require_admin()?;
        let list = services::quotas::role_quotas(&state(req).db).await?;
        Ok(Json(
            list.into_iter()
                .map(|(r, q)| RoleQuota {
                    role: if r.is_admin() { RoleName::Admin } else { RoleName::User },
                    quota: quota_out(q),
                })
                .collect(),
        ))
    }

    /// Set a role's quota.
    #[oai(path = "/quotas/:role", method = "put")]
    async fn set_quota(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        #[oai(name = "role")] role_name: Path<RoleName>,
        body: Json<Quota>,
    ) -> Result<NoContent, BodyApiError> {
        let b = body.0;
        let q = quota::Quota {
            max_machines: b.max_machines,
            max_cores: b.max_cores,
            max_memory_mib: b.max_memory_mib,
            max_disk_gib: b.max_disk_gib,
        };
        services::quotas::set_role_quota(&state(req).db, auth.actor(), role(role_name.0), q).await?;
        Ok(NoContent::Done)
    }

    /// Take a machine out of proxdesk; nothing is sent to Proxmox VE. A ready machine's request ends
    /// `released` and its guest stays as it is (running or not, its disks, its notes); a lost machine's
    /// ends `deleted` (its reason kept), the guest at its old VMID being someone else's.
    #[oai(path = "/admin/machines/:id/release", method = "post")]
    async fn release_machine(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> Result<NoContent, ApiError> {
        services::adoption::release(&state(req).db, auth.actor(), id.0).await?;
        Ok(NoContent::Done)
    }

    /// The guests of the cluster that proxdesk does not manage: not templates, not at a machine's
    /// VMID, not tagged with a live machine's request.
    #[oai(path = "/admin/guests/unmanaged", method = "get")]
    async fn unmanaged_guests(&self, req: &HttpRequest, auth: ApiAuth) -> R<Vec<UnmanagedGuest>> {
        let st = state(req);
        let found = services::adoption::unmanaged(&st.db, st.pve.as_ref(), auth.actor()).await?;
        Ok(Json(found.into_iter().map(Into::into).collect()))
    }

    /// Adopt a guest for an owner: it becomes their ready machine and carries proxdesk's marker (a
    /// first line in its notes, tags). 409 `guest-managed` for a guest that already is a machine,
    /// `guest-gone`, `guest-template`, `guest-marked`, `machine-busy` (locked), `guest-changed` (its
    /// config changed meanwhile), `over-quota` (unless `beyond_quota`), `pve-refused`; nothing is left
    /// behind then.
    #[oai(path = "/admin/machines/adopt", method = "post")]
    async fn adopt_guest(&self, req: &HttpRequest, auth: ApiAuth, body: Json<AdoptBody>) -> B<Machine> {
        let st = state(req);
        let b = body.0;
        let kind = match b.kind {
            GuestKindName::Lxc => "lxc",
            GuestKindName::Qemu => "qemu",
        };
        let input = services::adoption::AdoptionInput {
            node: b.node.into(),
            vmid: b.vmid,
            kind: kind.into(),
            owner: b.owner.into(),
            template_id: b.template_id,
            hostname: Text::opt(b.hostname),
            beyond_quota: b.beyond_quota,
        };
        let m = services::adoption::adopt(&st.db, st.pve.as_ref(), auth.actor(), input).await?;
        Ok(Json(m.into()))
    }

    /// Re-adopt a lost machine's container: the guest carrying its request's tag (or marker) is looked
    /// for in the whole cluster, verified, and the machine pointed at its node and VMID (`ready` again).
    /// Finding none (or several) changes nothing: 409 `readopt-not-found` (`readopt-ambiguous`).
    #[oai(path = "/admin/machines/:id/readopt", method = "post")]
    async fn readopt_machine(&self, req: &HttpRequest, auth: ApiAuth, id: Path<i64>) -> R<Machine> {
        use crate::http::errors::{Problem, ProblemJson};
        use services::lost_machines::Readoption;
        let st = state(req);
        let conflict = |kind, title, detail| {
            ApiError::Conflict(ProblemJson(Problem::new(poem::http::StatusCode::CONFLICT, kind, title, Some(detail))))
        };
        match services::lost_machines::readopt(&st.db, st.pve.as_ref(), auth.actor(), id.0).await? {
            Readoption::Adopted(m) => Ok(Json((*m).into())),
            Readoption::NoneFound { tag } => Err(conflict(
                "readopt-not-found",
                "No container found",
                format!(
                    "no guest in the cluster carries the tag {tag} or the request's marker; the machine stays lost"
                ),
            )),
            Readoption::Several(found) => {
                let list: Vec<String> = found.iter().map(|(n, v)| format!("CT {v} on {n}")).collect();
                Err(conflict(
                    "readopt-ambiguous",
                    "Several containers found",
                    format!("several guests carry the request's marker ({}); remove the extra ones", list.join(", ")),
                ))
            }
        }
    }

    /// The audit log, newest first.
    #[oai(path = "/audit", method = "get")]
    #[allow(clippy::too_many_arguments)]
    async fn audit(
        &self,
        req: &HttpRequest,
        auth: ApiAuth,
        actor: Query<Option<String>>,
        action: Query<Option<String>>,
        subject_type: Query<Option<String>>,
        subject_id: Query<Option<i64>>,
        cursor: Query<Option<i64>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u64>>,
    ) -> R<AuditPage> {
        let f = services::audit::AuditFilter {
            actor: actor.0,
            action: action.0,
            subject_type: subject_type.0,
            subject_id: subject_id.0,
            cursor: cursor.0,
            limit: limit.0,
            ..Default::default()
        };
        let page = services::audit::list(&state(req).db, auth.actor(), f).await?;
        Ok(Json(AuditPage { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor }))
    }
}
