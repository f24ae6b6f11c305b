//! A plan as a plain-text table for `proxdesk guac sync --dry-run`.

use super::plan::{GrantTarget, GroupRef, Plan};

fn group(r: &GroupRef) -> String {
    match r {
        GroupRef::Root => "ROOT".into(),
        GroupRef::Existing(id) => format!("#{id}"),
        GroupRef::New(name) => format!("new {name:?}"),
    }
}

impl Plan {
    /// One row per change: action, object, name, where, details. Values of parameters never appear.
    pub fn to_table(&self) -> String {
        let mut rows: Vec<[String; 5]> = Vec::new();
        for g in &self.group_creates {
            rows.push(["create".into(), "group".into(), g.clone(), "ROOT".into(), String::new()]);
        }
        for g in &self.group_deletes {
            rows.push([
                "delete".into(),
                "group".into(),
                g.name.clone(),
                format!("#{}", g.id),
                "with its connections".into(),
            ]);
        }
        for c in &self.creates {
            rows.push([
                "create".into(),
                c.protocol.clone(),
                c.name.clone(),
                group(&c.parent),
                format!("vm {}", c.vmid),
            ]);
        }
        for c in &self.updates {
            let id = c.id.as_deref().unwrap_or_default();
            rows.push([
                "update".into(),
                c.protocol.clone(),
                c.name.clone(),
                format!("#{id} → {}", group(&c.parent)),
                c.reasons.join(", "),
            ]);
        }
        for d in &self.deletes {
            let how = if d.via_group { "with its group" } else { "" };
            rows.push(["delete".into(), "connection".into(), d.name.clone(), format!("#{}", d.id), how.into()]);
        }
        for u in &self.user_creates {
            rows.push(["create".into(), "user".into(), u.clone(), String::new(), String::new()]);
        }
        for g in &self.grants {
            let target = match &g.target {
                GrantTarget::Connection(id) => format!("connection #{id}"),
                GrantTarget::NewConnection(m) => format!("new connection ({m})"),
                GrantTarget::Group(r) => format!("group {}", group(r)),
            };
            let action = if g.add { "grant" } else { "revoke" };
            rows.push([action.into(), "READ".into(), g.user.clone(), target, String::new()]);
        }
        if rows.is_empty() {
            return "nothing to change\n".into();
        }
        let header = ["ACTION", "OBJECT", "NAME", "WHERE", "DETAILS"].map(String::from);
        let mut widths = [0usize; 5];
        for r in std::iter::once(&header).chain(rows.iter()) {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for r in std::iter::once(&header).chain(rows.iter()) {
            let line: Vec<String> = r.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        let n = self.counts();
        out.push_str(&format!(
            "{} to create, {} to update, {} to delete; groups +{} -{}; users +{}; READ +{} -{}\n",
            n.create,
            n.update,
            n.delete,
            n.groups_create,
            n.groups_delete,
            n.users_create,
            n.grants_add,
            n.grants_remove
        ));
        out
    }
}
