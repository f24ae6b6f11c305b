//! proxdesk's tables as sea-orm entities, one module per table.
//!
//! Entities carry no API derives: the HTTP layer has its own schema types.

pub mod address_lease;
pub mod api_token;
pub mod approval_rule;
pub mod approval_rule_subject;
pub mod audit_entry;
pub mod bulk_item;
pub mod bulk_run;
pub mod console_session;
pub mod console_token;
pub mod guac_sync_run;
pub mod identity;
pub mod login_throttle;
pub mod machine;
pub mod named_lock;
pub mod notification_opt_out;
pub mod pending_sign_in;
pub mod request;
pub mod request_approval;
pub mod role_quota;
pub mod session;
pub mod setting;
pub mod silent_guest_agent;
pub mod template;
pub mod template_approval_stage;
pub mod user;
pub mod user_group;
pub mod user_group_member;
pub mod user_quota;
pub mod webhook;

pub mod prelude {
    pub use super::address_lease::Entity as AddressLease;
    pub use super::api_token::Entity as ApiToken;
    pub use super::audit_entry::Entity as AuditEntry;
    pub use super::bulk_item::Entity as BulkItem;
    pub use super::bulk_run::Entity as BulkRun;
    pub use super::console_session::Entity as ConsoleSession;
    pub use super::console_token::Entity as ConsoleToken;
    pub use super::guac_sync_run::Entity as GuacSyncRun;
    pub use super::identity::Entity as Identity;
    pub use super::login_throttle::Entity as LoginThrottle;
    pub use super::machine::Entity as Machine;
    pub use super::named_lock::Entity as NamedLock;
    pub use super::notification_opt_out::Entity as NotificationOptOut;
    pub use super::pending_sign_in::Entity as PendingSignIn;
    pub use super::request::Entity as Request;
    pub use super::request_approval::Entity as RequestApproval;
    pub use super::role_quota::Entity as RoleQuota;
    pub use super::session::Entity as Session;
    pub use super::setting::Entity as Setting;
    pub use super::silent_guest_agent::Entity as SilentGuestAgent;
    pub use super::template::Entity as Template;
    pub use super::template_approval_stage::Entity as TemplateApprovalStage;
    pub use super::user::Entity as User;
    pub use super::user_group::Entity as UserGroup;
    pub use super::user_group_member::Entity as UserGroupMember;
    pub use super::user_quota::Entity as UserQuota;
    pub use super::webhook::Entity as Webhook;
}
