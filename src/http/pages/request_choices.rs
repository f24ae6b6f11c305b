//! What the request form offers beside each catalog entry: its kind, and the storages (with free
//! space), bridges and ISOs (file name and size) its allow-lists name — nothing else.

use minijinja::{Value, context};

use entities::template;

use super::ctx::Ctx;
use crate::domain::guest::{MachineKind, split_list};
use crate::http::i18n::format::size_mib;
use crate::services::catalog::{self, ChoiceFacts};

/// How long the form waits for PVE's figures before it shows the names alone.
const FACTS_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The nodes machines of `t` land on.
fn placement(t: &template::Model) -> Vec<String> {
    let nodes = split_list(&t.nodes);
    if catalog::kind_of(t) == MachineKind::QemuIso && !nodes.is_empty() { nodes } else { vec![t.node.clone()] }
}

/// Free space and ISO sizes for the entries' lists, read only when some entry has a list.
async fn facts(ctx: &Ctx, templates: &[template::Model]) -> ChoiceFacts {
    let Some(pve) = ctx.state.pve.as_ref() else { return ChoiceFacts::default() };
    let mut nodes: Vec<String> = templates.iter().filter(|t| !t.storages.is_empty()).flat_map(placement).collect();
    nodes.sort();
    nodes.dedup();
    let mut iso_storages: Vec<(String, String)> = templates
        .iter()
        .flat_map(|t| {
            let node = t.node.clone();
            split_list(&t.isos)
                .into_iter()
                .filter_map(move |v| v.split_once(':').map(|(s, _)| (node.clone(), s.to_owned())))
        })
        .collect();
    iso_storages.sort();
    iso_storages.dedup();
    if nodes.is_empty() && iso_storages.is_empty() {
        return ChoiceFacts::default();
    }
    catalog::choice_facts(pve, &nodes, &iso_storages, FACTS_WAIT).await
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// Each entry as the request form shows it.
pub async fn entries(ctx: &Ctx, templates: &[template::Model]) -> Vec<Value> {
    let facts = facts(ctx, templates).await;
    templates
        .iter()
        .map(|t| {
            let allowed = catalog::allowed(t);
            let nodes = placement(t);
            let storages: Vec<Value> = allowed
                .storages
                .iter()
                .map(|s| {
                    let free = nodes.iter().filter_map(|n| facts.avail.get(&(n.clone(), s.clone()))).min();
                    let text = match free {
                        Some(b) => ctx.tp("request.qemu.storage_free", &[("name", s), ("free", &size_mib(ctx.lang, mib(*b)))]),
                        None => s.clone(),
                    };
                    context! { value => s, text => text }
                })
                .collect();
            let isos: Vec<Value> = allowed
                .isos
                .iter()
                .map(|v| {
                    let file = v.rsplit('/').next().unwrap_or(v);
                    let text = match facts.iso_size.get(v) {
                        Some(b) => format!("{file} ({})", size_mib(ctx.lang, mib(*b))),
                        None => file.to_owned(),
                    };
                    context! { value => v, text => text }
                })
                .collect();
            let bridges: Vec<Value> = allowed.bridges.iter().map(|b| context! { value => b, text => b }).collect();
            context! {
                id => t.id, name => t.name.clone(), description => t.description.clone(),
                kind => catalog::kind_of(t).as_str(),
                max_cores => t.max_cores, max_memory_mib => t.max_memory_mib, max_disk_gib => t.max_disk_gib,
                default_cores => t.default_cores, default_memory_mib => t.default_memory_mib, default_disk_gib => t.default_disk_gib,
                storages => storages, bridges => bridges, isos => isos,
            }
        })
        .collect()
}
