//! A machine's snapshots: the card on its details page, and taking, rolling back and deleting them.

use minijinja::Value;

use crate::http::pages::ctx::Ctx;

/// The `snapshots` value of `machines/_snapshots.html` for `m` (a machine neither deleted nor lost):
/// its snapshot tree with `current` marked, the limit, and what the actor may do. Undefined when PVE
/// cannot be asked (the template then says so).
pub async fn section(_ctx: &Ctx, _m: &entities::machine::Model) -> Value {
    Value::UNDEFINED
}
