//! The catalog entry form: what a post means for the chosen kind (the fields of the other kinds are
//! ignored, so the form works with every section shown), a stored entry's values, and the lists
//! discovery offers, with what was kept but PVE does not have shown too, ticked and marked.

use std::collections::BTreeMap;

use minijinja::{Value, context};

use crate::domain::guest::{MachineKind, split_list};
use crate::domain::{FieldError, FieldErrors};
use crate::http::pages::ctx::{Ctx, Form, number, optional_number};
use crate::services::catalog::{Discovery, OSTYPES, TemplateInput, kind_of};

/// The multi-valued fields (checkboxes) of the form.
pub const LISTS: [&str; 4] = ["nodes", "storages", "bridges", "isos"];

/// The form as typed: single values and ticked lists.
#[derive(Debug, Clone, Default)]
pub struct Typed {
    pub values: BTreeMap<String, String>,
    pub lists: BTreeMap<String, Vec<String>>,
}

impl Typed {
    pub fn posted(form: &Form) -> Self {
        let mut values = form.values();
        let lists = LISTS
            .iter()
            .map(|name| {
                values.remove(*name);
                (name.to_string(), form.all(name).into_iter().map(str::to_owned).collect())
            })
            .collect();
        Typed { values, lists }
    }

    /// A new entry's starting values.
    pub fn defaults() -> Self {
        let values = [
            ("kind", "lxc"),
            ("default_cores", "1"),
            ("max_cores", "4"),
            ("default_memory_mib", "1024"),
            ("max_memory_mib", "8192"),
            ("default_disk_gib", "8"),
            ("max_disk_gib", "64"),
            ("full_clone", "on"),
            ("enabled", "on"),
            ("net0", crate::services::catalog::DEFAULT_NET0),
            ("ostype", "l26"),
            ("finish_mode", "node"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Typed { values, lists: LISTS.iter().map(|l| (l.to_string(), vec![])).collect() }
    }

    /// A stored entry as its form shows it.
    pub fn of(t: &entities::template::Model) -> Self {
        let kind = kind_of(t);
        let guest = format!("{}/{}", t.node, t.vmid);
        let mut values: BTreeMap<String, String> = [
            ("name", t.name.clone()),
            ("description", t.description.clone()),
            ("kind", kind.as_str().to_owned()),
            ("lxc_guest", if kind == MachineKind::Lxc { guest.clone() } else { String::new() }),
            ("qemu_guest", if kind == MachineKind::QemuCloudInit { guest } else { String::new() }),
            ("default_cores", t.default_cores.to_string()),
            ("max_cores", t.max_cores.to_string()),
            ("default_memory_mib", t.default_memory_mib.to_string()),
            ("max_memory_mib", t.max_memory_mib.to_string()),
            ("default_disk_gib", t.default_disk_gib.to_string()),
            ("max_disk_gib", t.max_disk_gib.to_string()),
            // A VM entry keeps no `net0`; should it become a container entry, start from the default.
            (
                "net0",
                if t.net0.is_empty() { crate::services::catalog::DEFAULT_NET0.to_owned() } else { t.net0.clone() },
            ),
            ("ostype", t.ostype.clone()),
            ("ip_pool", t.ip_pool.clone().unwrap_or_default()),
            ("gateway", t.gateway.clone().unwrap_or_default()),
            ("finish_mode", t.finish_mode.clone()),
            ("snapshot_limit", t.snapshot_limit.map(|n| n.to_string()).unwrap_or_default()),
            ("lease_days", t.lease_days.map(|n| n.to_string()).unwrap_or_default()),
            ("lease_max_days", t.lease_max_days.map(|n| n.to_string()).unwrap_or_default()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (flag, on) in [("full_clone", t.full_clone), ("enabled", t.enabled)] {
            if on {
                values.insert(flag.into(), "on".into());
            }
        }
        let nodes = if kind == MachineKind::QemuIso { split_list(&t.nodes) } else { vec![] };
        let lists = [
            ("nodes", nodes),
            ("storages", split_list(&t.storages)),
            ("bridges", split_list(&t.bridges)),
            ("isos", split_list(&t.isos)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Typed { values, lists }
    }

    fn get(&self, name: &str) -> &str {
        self.values.get(name).map(String::as_str).unwrap_or("")
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.lists.get(name).cloned().unwrap_or_default()
    }

    /// The kind chosen, if it is one.
    pub fn kind(&self) -> Option<MachineKind> {
        MachineKind::parse(self.get("kind"))
    }
}

/// The select holding the template guest of `kind`'s entries.
fn guest_field(kind: MachineKind) -> &'static str {
    if kind == MachineKind::QemuCloudInit { "qemu_guest" } else { "lxc_guest" }
}

/// What the post asks for; problems of reading it (numbers, the kind, the template choice) go to
/// `errors`. Only the fields of the chosen kind are read.
pub fn input(form: &Form, typed: &Typed, errors: &mut FieldErrors) -> TemplateInput {
    let kind = typed.kind().unwrap_or_else(|| {
        errors.push(FieldError::new("kind", "error.choice_invalid"));
        MachineKind::Lxc
    });
    let mut input = TemplateInput {
        name: typed.get("name").to_owned(),
        description: typed.get("description").to_owned(),
        kind,
        default_cores: number(errors, "default_cores", form.get("default_cores")),
        max_cores: number(errors, "max_cores", form.get("max_cores")),
        default_memory_mib: number(errors, "default_memory_mib", form.get("default_memory_mib")),
        max_memory_mib: number(errors, "max_memory_mib", form.get("max_memory_mib")),
        default_disk_gib: number(errors, "default_disk_gib", form.get("default_disk_gib")),
        max_disk_gib: number(errors, "max_disk_gib", form.get("max_disk_gib")),
        full_clone: form.checked("full_clone"),
        enabled: form.checked("enabled"),
        storages: typed.list("storages"),
        bridges: typed.list("bridges"),
        finish_mode: typed.get("finish_mode").to_owned(),
        snapshot_limit: optional_number(errors, "snapshot_limit", form.get("snapshot_limit")),
        lease_days: optional_number(errors, "lease_days", form.get("lease_days")),
        lease_max_days: optional_number(errors, "lease_max_days", form.get("lease_max_days")),
        net0: String::new(),
        // The form always carries the field: an emptied one removes the stages.
        approval_stages: Some(
            typed
                .get("approval_stages")
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        ..TemplateInput::default()
    };
    if kind.is_cloned() {
        let field = guest_field(kind);
        match typed.get(field).split_once('/').map(|(n, v)| (n, v.parse::<i64>())) {
            Some((node, Ok(vmid))) if !node.is_empty() => {
                input.node = node.to_owned();
                input.vmid = vmid;
            }
            _ => errors.push(FieldError::new(field, "error.choose_template")),
        }
    }
    match kind {
        MachineKind::Lxc => input.net0 = typed.get("net0").to_owned(),
        MachineKind::QemuCloudInit => {
            input.ip_pool = Some(typed.get("ip_pool").to_owned());
            input.gateway = Some(typed.get("gateway").to_owned());
        }
        MachineKind::QemuIso => {
            input.nodes = typed.list("nodes");
            input.isos = typed.list("isos");
            input.ostype = typed.get("ostype").to_owned();
        }
    }
    input
}

/// The service names the template guest `node`/`vmid` and an ISO entry's first node `node`; the form
/// shows them on the select or the node boxes.
pub fn on_form_fields(kind: Option<MachineKind>, errors: FieldErrors) -> FieldErrors {
    let kind = kind.unwrap_or(MachineKind::Lxc);
    FieldErrors(
        errors
            .0
            .into_iter()
            .map(|mut e| {
                e.field = match (e.field, kind.is_cloned()) {
                    ("node" | "vmid", true) => guest_field(kind),
                    ("node" | "vmid", false) => "nodes",
                    (other, _) => other,
                };
                e
            })
            .collect(),
    )
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// One box or option: `missing` when kept from the post (or the stored entry) but not on PVE now.
fn item(value: &str, checked: bool, missing: bool, extra: Value) -> Value {
    context! { value => value, checked => checked, missing => missing, ..extra }
}

/// Appends what `kept` holds that `seen` lacks, ticked and marked missing.
fn with_kept(mut items: Vec<Value>, seen: &[String], kept: &[String]) -> Vec<Value> {
    for k in kept.iter().filter(|k| !k.is_empty() && !seen.contains(k)) {
        items.push(item(k, true, true, context! { text => k }));
    }
    items
}

/// The lists the form offers: discovery's, merged across nodes, plus whatever was kept.
pub fn offers(ctx: &Ctx, found: Option<&Discovery>, typed: &Typed) -> Value {
    let empty = Discovery::default();
    let found = found.unwrap_or(&empty);
    let nodes_of = |has: &dyn Fn(&crate::services::catalog::NodeOffer) -> bool| {
        found.nodes.iter().filter(|n| has(n)).map(|n| n.node.clone()).collect::<Vec<_>>().join(", ")
    };

    let picked_nodes = typed.list("nodes");
    let node_names: Vec<String> = found.nodes.iter().map(|n| n.node.clone()).collect();
    let nodes = found
        .nodes
        .iter()
        .map(|n| {
            let text = match (&n.problem, n.online) {
                (_, false) => ctx.tp("catalog.node_offline", &[("node", &n.node)]),
                (Some(_), _) => ctx.tp("catalog.node_unreadable", &[("node", &n.node)]),
                (None, _) => n.node.clone(),
            };
            item(&n.node, picked_nodes.contains(&n.node), false, context! { text => text })
        })
        .collect();

    let mut guests: BTreeMap<&str, (Vec<Value>, Vec<String>)> = BTreeMap::new();
    for n in &found.nodes {
        for g in &n.templates {
            let field = if g.ty == crate::domain::guest::GuestType::Lxc { "lxc_guest" } else { "qemu_guest" };
            let value = format!("{}/{}", n.node, g.vmid);
            let text = format!("{} · {} · {}", n.node, g.vmid, g.name);
            let entry = guests.entry(field).or_default();
            entry.0.push(item(&value, typed.get(field) == value, false, context! { text => text }));
            entry.1.push(value);
        }
    }
    let guest_list = |field: &str| {
        let (items, seen) = guests.get(field).cloned().unwrap_or_default();
        with_kept(items, &seen, &[typed.get(field).to_owned()])
    };

    let mut storage_ids: Vec<String> =
        found.nodes.iter().flat_map(|n| n.storages.iter().map(|s| s.id.clone())).collect();
    storage_ids.sort();
    storage_ids.dedup();
    let picked = typed.list("storages");
    let storages = storage_ids
        .iter()
        .map(|id| {
            let mut kind = String::new();
            let mut content = String::new();
            let free: Vec<String> = found
                .nodes
                .iter()
                .filter_map(|n| n.storage(id).map(|s| (n, s)))
                .map(|(n, s)| {
                    kind = s.kind.clone();
                    content = s.content.join(", ");
                    if s.active {
                        let free = crate::http::i18n::format::size_mib(ctx.lang, mib(s.avail));
                        let total = crate::http::i18n::format::size_mib(ctx.lang, mib(s.total));
                        ctx.tp("catalog.storage_free", &[("node", &n.node), ("free", &free), ("total", &total)])
                    } else {
                        ctx.tp("catalog.storage_inactive", &[("node", &n.node)])
                    }
                })
                .collect();
            let text = format!("{id} ({kind}: {content})");
            item(id, picked.contains(id), false, context! { text => text, hint => free.join(" · ") })
        })
        .collect();

    let mut bridge_names: Vec<String> =
        found.nodes.iter().flat_map(|n| n.bridges.iter().map(|b| b.iface.clone())).collect();
    bridge_names.sort();
    bridge_names.dedup();
    let picked_bridges = typed.list("bridges");
    let bridges = bridge_names
        .iter()
        .map(|name| {
            let b = found.nodes.iter().find_map(|n| n.bridges.iter().find(|b| &b.iface == name)).expect("listed");
            let mut text = name.clone();
            if b.kind == "vnet" {
                text = ctx.tp("catalog.vnet", &[("name", name)]);
            }
            if let Some(cidr) = &b.cidr {
                text = format!("{text} · {cidr}");
            }
            let on = nodes_of(&|n| n.bridges.iter().any(|x| &x.iface == name));
            item(name, picked_bridges.contains(name), false, context! { text => text, hint => on })
        })
        .collect();

    let mut iso_ids: Vec<String> = found.nodes.iter().flat_map(|n| n.isos.iter().map(|i| i.volid.clone())).collect();
    iso_ids.sort_by_key(|v| v.to_lowercase());
    iso_ids.dedup();
    let picked_isos = typed.list("isos");
    let isos = iso_ids
        .iter()
        .map(|volid| {
            let iso = found.nodes.iter().find_map(|n| n.isos.iter().find(|i| &i.volid == volid)).expect("listed");
            let size = iso.size.map(|b| crate::http::i18n::format::size_mib(ctx.lang, mib(b))).unwrap_or_default();
            let text =
                if size.is_empty() { iso.file_name().to_owned() } else { format!("{} ({size})", iso.file_name()) };
            let hint = format!("{volid} · {}", nodes_of(&|n| n.isos.iter().any(|i| &i.volid == volid)));
            item(volid, picked_isos.contains(volid), false, context! { text => text, hint => hint })
        })
        .collect();

    let ostypes: Vec<Value> =
        OSTYPES.iter().map(|o| context! { value => *o, text => ctx.t(&format!("catalog.qemu.ostype.{o}")) }).collect();
    context! {
        nodes => with_kept(nodes, &node_names, &picked_nodes),
        lxc_guests => guest_list("lxc_guest"),
        qemu_guests => guest_list("qemu_guest"),
        storages => with_kept(storages, &storage_ids, &picked),
        bridges => with_kept(bridges, &bridge_names, &picked_bridges),
        isos => with_kept(isos, &iso_ids, &picked_isos),
        ostypes => ostypes,
        kinds => MachineKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
    }
}
