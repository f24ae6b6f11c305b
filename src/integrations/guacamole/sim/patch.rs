//! Directory PATCH in the simulator: one atomic batch with per-patch outcomes (reference §3, §12).

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::state::{Fail, SimState};
use crate::integrations::guacamole::wire::{ApiError, PatchOutcome, PatchResponse, TranslatableMessage};

/// Which directory a batch targets.
#[derive(Debug, Clone, Copy)]
pub(super) enum Directory {
    Connections,
    Groups,
    Users,
}

/// What a batch produced: a success body, or an error body with its status.
pub(super) enum BatchResult {
    Ok(PatchResponse),
    Err(u16, ApiError),
}

fn parse<T: DeserializeOwned>(v: &Option<Value>) -> Result<T, Fail> {
    let v = v.clone().ok_or_else(|| Fail::bad("Patch value missing."))?;
    serde_json::from_value(v).map_err(|e| Fail::bad(e.to_string()))
}

impl SimState {
    fn apply_one(
        &mut self,
        dir: Directory,
        caller: &str,
        op: &str,
        path: &str,
        value: &Option<Value>,
    ) -> Result<Option<String>, Fail> {
        let id = path.trim_start_matches('/');
        match (dir, op) {
            (Directory::Connections, "add") => Ok(self.create_connection(caller, &parse(value)?)?.identifier),
            (Directory::Connections, "replace") => {
                self.update_connection(caller, id, &parse(value)?).map(|_| Some(id.to_owned()))
            }
            (Directory::Connections, _) => self.delete_connection(caller, id).map(|_| Some(id.to_owned())),
            (Directory::Groups, "add") => Ok(self.create_group(caller, &parse(value)?)?.identifier),
            (Directory::Groups, "replace") => {
                self.update_group(caller, id, &parse(value)?).map(|_| Some(id.to_owned()))
            }
            (Directory::Groups, _) => self.delete_group(caller, id).map(|_| Some(id.to_owned())),
            (Directory::Users, "add") => Ok(Some(self.create_user(caller, &parse(value)?)?.username)),
            (Directory::Users, "replace") => self.update_user(caller, id, &parse(value)?).map(|_| Some(id.to_owned())),
            (Directory::Users, _) => self.delete_user(caller, id).map(|_| Some(id.to_owned())),
        }
    }

    /// Applies `patches` in order inside one transaction: every patch is attempted; any Guacamole error
    /// rolls everything back and answers 400 with the outcomes; a server failure aborts with a 500.
    pub(super) fn patch_directory(&mut self, dir: Directory, caller: &str, patches: &[Value]) -> BatchResult {
        let before = self.clone();
        let mut outcomes = Vec::new();
        let mut failed = false;
        for p in patches {
            let op = p.get("op").and_then(Value::as_str).unwrap_or_default().to_owned();
            let path = p.get("path").and_then(Value::as_str).unwrap_or_default().to_owned();
            if !matches!(op.as_str(), "add" | "replace" | "remove") {
                *self = before;
                let f = Fail::unsupported(format!(
                    "Unsupported patch operation: \"{op}\". Only add, replace, and remove are supported."
                ));
                return BatchResult::Err(f.status, ApiError::new(f.kind, &f.message));
            }
            if !path.starts_with('/') {
                *self = before;
                let f = Fail::bad("Patch paths must start with \"/\".");
                return BatchResult::Err(f.status, ApiError::new(f.kind, &f.message));
            }
            match self.apply_one(dir, caller, &op, &path, &p.get("value").cloned()) {
                Ok(identifier) => outcomes.push(PatchOutcome { op, identifier, path, error: None }),
                Err(f) if f.is_client_error() => {
                    failed = true;
                    outcomes.push(PatchOutcome {
                        op,
                        identifier: None,
                        path,
                        error: Some(TranslatableMessage {
                            key: "APP.TEXT_UNTRANSLATED".into(),
                            variables: Some(serde_json::json!({ "MESSAGE": f.message })),
                        }),
                    });
                }
                Err(f) => {
                    *self = before;
                    return BatchResult::Err(f.status, ApiError::new(f.kind, &f.message));
                }
            }
        }
        if !failed {
            return BatchResult::Ok(PatchResponse { patches: outcomes });
        }
        *self = before;
        // Rolled back: adds and removes lose their identifiers, replaces keep theirs (§12).
        for o in &mut outcomes {
            if o.error.is_none() && o.op != "replace" {
                o.identifier = None;
            }
        }
        let mut body = ApiError::new("BAD_REQUEST", "The provided patches failed to apply.");
        body.patches = Some(outcomes);
        BatchResult::Err(400, body)
    }
}
