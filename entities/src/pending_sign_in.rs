//! Sign-ins waiting for the person's next step: an OpenID Connect redirect (state, nonce, PKCE
//! verifier) or a Proxmox VE second factor. Keyed by the SHA-256 of the random state the browser
//! carries; the payload is sealed; a row is consumed once, so a replayed state finds nothing.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pending_sign_ins")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub state_hash: String,
    /// `pve` or `oidc`: which flow may consume it.
    pub provider: String,
    /// Sealed JSON (`secrets::SecretKey::seal`); its shape belongs to the flow.
    pub payload: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
