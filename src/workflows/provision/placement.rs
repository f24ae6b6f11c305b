//! Where an ISO VM is created: the node among the catalog entry's nodes with the most free memory,
//! chosen once and checkpointed, so a resumed job finds its VM where it made it.

use jobs::JobContext;
use serde_json::json;

use super::{Progress, Subject};
use crate::domain::guest::split_list;
use crate::integrations::pve::wire::ClusterResource;
use crate::workflows::{Deps, StepError, timeline};

/// The node the request's VM goes to, chosen now (and checkpointed) unless it was already.
pub async fn place(deps: &Deps, ctx: &JobContext, s: &Subject, p: &mut Progress) -> Result<String, StepError> {
    if let Some(node) = &p.node {
        return Ok(node.clone());
    }
    let mut candidates = split_list(&s.template.nodes);
    if candidates.is_empty() {
        candidates.push(s.template.node.clone());
    }
    let (node, free) = if candidates.len() == 1 {
        (candidates.remove(0), None)
    } else {
        // pvestatd's view (up to ~15 s old, pve-qemu-day2.md §9): good enough to spread new VMs.
        let resources = deps.pve.cluster_resources(Some("node")).await?;
        choose(&candidates, &resources).ok_or_else(|| {
            StepError::Retry(format!("none of the catalog entry's nodes ({}) is online", candidates.join(", ")))
        })?
    };
    p.node = Some(node.clone());
    ctx.checkpoint(p).await?;
    let details = json!({"node": node, "free_memory_mib": free.map(|b| b >> 20)});
    timeline::note(&deps.db, s.request.id, "provision.placed", details).await;
    Ok(node)
}

/// The online candidate with the most free memory (`maxmem − mem`), the first listed on a tie or when
/// PVE shows no figures (an identity without `Sys.Audit` on the nodes); with its free bytes.
fn choose(candidates: &[String], resources: &[ClusterResource]) -> Option<(String, Option<u64>)> {
    let online: Vec<(usize, &String, Option<u64>)> = candidates
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let r = resources.iter().find(|r| r.kind == "node" && r.node.as_deref() == Some(name.as_str()))?;
            (r.status.as_deref() == Some("online")).then_some((
                i,
                name,
                r.maxmem.zip(r.mem).map(|(max, used)| max.saturating_sub(used)),
            ))
        })
        .collect();
    online
        .into_iter()
        .max_by_key(|(i, _, free)| (free.unwrap_or(0), std::cmp::Reverse(*i)))
        .map(|(_, name, free)| (name.clone(), free))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn node(name: &str, status: &str, maxmem: Option<u64>, mem: Option<u64>) -> ClusterResource {
        let mut v = json!({"id": format!("node/{name}"), "type": "node", "node": name, "status": status});
        if let (Some(max), Some(used)) = (maxmem, mem) {
            v["maxmem"] = json!(max);
            v["mem"] = json!(used);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn the_online_node_with_the_most_free_memory_wins() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        const GIB: u64 = 1 << 30;
        let cluster = vec![
            node("pve1", "online", Some(64 * GIB), Some(40 * GIB)),
            node("pve2", "online", Some(64 * GIB), Some(10 * GIB)),
            node("pve3", "offline", None, None),
            node("pve4", "online", Some(128 * GIB), Some(10 * GIB)),
        ];
        assert_eq!(choose(&names(&["pve1", "pve2", "pve3"]), &cluster), Some(("pve2".into(), Some(54 * GIB))));
        assert_eq!(choose(&names(&["pve1", "pve3"]), &cluster).unwrap().0, "pve1");
        assert_eq!(choose(&names(&["pve3"]), &cluster), None);
        assert_eq!(choose(&names(&["pve9"]), &cluster), None, "a node PVE does not list");
        // No figures (no Sys.Audit): the first online candidate.
        let blind = vec![node("pve1", "online", None, None), node("pve2", "online", None, None)];
        assert_eq!(choose(&names(&["pve2", "pve1"]), &blind), Some(("pve2".into(), None)));
    }
}
