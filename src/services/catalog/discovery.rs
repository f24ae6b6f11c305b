//! What the cluster offers a catalog entry, read from PVE so the admin picks from lists and never
//! types a name: per node, the storages that hold guest disks (with their free space), the installer
//! ISOs of every storage holding `iso`, the bridges (SDN vnets included) and the template guests.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;

use crate::domain::guest::GuestType;
use crate::integrations::pve::{self, PveError};

/// Content types of storages a new machine's disk may go on: `images` (VMs) and `rootdir` (containers).
const DISK_CONTENT: &str = "images,rootdir";

/// A storage of one node that can hold guest disks.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageOffer {
    pub id: String,
    /// `lvmthin`, `dir`, `zfspool`, `rbd`…
    pub kind: String,
    pub content: Vec<String>,
    /// Inactive storages (an unreachable NFS) report no figures.
    pub active: bool,
    pub total: u64,
    pub avail: u64,
    pub shared: bool,
}

impl StorageOffer {
    pub fn holds(&self, content: &str) -> bool {
        self.content.iter().any(|c| c == content)
    }
}

/// An installer image on a node.
#[derive(Debug, Clone, PartialEq)]
pub struct IsoImage {
    /// `local:iso/debian-12.iso`.
    pub volid: String,
    pub size: Option<u64>,
}

impl IsoImage {
    pub fn file_name(&self) -> &str {
        self.volid.rsplit('/').next().unwrap_or(&self.volid)
    }
}

/// A bridge (or SDN vnet) a VM's or container's `net0` may join.
#[derive(Debug, Clone, PartialEq)]
pub struct BridgeOffer {
    pub iface: String,
    /// `bridge`, `OVSBridge` or `vnet`.
    pub kind: String,
    pub cidr: Option<String>,
}

/// A guest marked as template (`template: 1`).
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateGuest {
    pub vmid: u64,
    pub name: String,
    pub ty: GuestType,
}

/// What one node offers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeOffer {
    pub node: String,
    /// PVE's node status said `online`.
    pub online: bool,
    /// Why the node's lists could not be read; the lists are then empty.
    pub problem: Option<String>,
    pub storages: Vec<StorageOffer>,
    pub isos: Vec<IsoImage>,
    pub bridges: Vec<BridgeOffer>,
    pub templates: Vec<TemplateGuest>,
}

impl NodeOffer {
    pub fn storage(&self, id: &str) -> Option<&StorageOffer> {
        self.storages.iter().find(|s| s.id == id)
    }

    pub fn template(&self, vmid: u64) -> Option<&TemplateGuest> {
        self.templates.iter().find(|t| t.vmid == vmid)
    }
}

/// What the nodes asked about offer, in node order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discovery {
    pub nodes: Vec<NodeOffer>,
}

impl Discovery {
    pub fn node(&self, name: &str) -> Option<&NodeOffer> {
        self.nodes.iter().find(|n| n.node == name)
    }
}

/// Reads what each of `nodes` offers, the nodes side by side. A node that does not answer gets a
/// `problem` and empty lists; the others are still read.
#[tracing::instrument(skip(pve))]
pub async fn discover(pve: &pve::Client, nodes: &[String]) -> Discovery {
    let offers = join_all(nodes.iter().map(|n| async move {
        match discover_node(pve, n).await {
            Ok(offer) => offer,
            Err(e) => {
                tracing::warn!(node = %n, error = %e, "node offers unavailable");
                NodeOffer { node: n.clone(), online: true, problem: Some(e.to_string()), ..Default::default() }
            }
        }
    }))
    .await;
    Discovery { nodes: offers }
}

/// Every node of the cluster with what it offers; offline nodes are listed without lists. Fails only
/// when PVE does not answer at all.
pub async fn discover_cluster(pve: &pve::Client) -> Result<Discovery, PveError> {
    let mut nodes = pve.nodes().await?;
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    let online: Vec<String> = nodes.iter().filter(|n| n.status == "online").map(|n| n.node.clone()).collect();
    let mut found = discover(pve, &online).await;
    for n in nodes.iter().filter(|n| n.status != "online") {
        found.nodes.push(NodeOffer {
            node: n.node.clone(),
            online: false,
            problem: Some(format!("node {} is {}", n.node, n.status)),
            ..Default::default()
        });
    }
    found.nodes.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(found)
}

/// One node's storages, ISOs, bridges and templates (four kinds of call, run together).
pub async fn discover_node(pve: &pve::Client, node: &str) -> Result<NodeOffer, PveError> {
    let (storages, bridges, qemu, lxc) = tokio::try_join!(
        disk_storages(pve, node),
        pve.network(node, Some("any_bridge")),
        pve.qemu_list(node),
        pve.lxc_list(node),
    )?;
    let isos = isos(pve, node).await?;
    let mut templates: Vec<TemplateGuest> = [(GuestType::Qemu, qemu), (GuestType::Lxc, lxc)]
        .into_iter()
        .flat_map(|(ty, list)| list.into_iter().map(move |g| (ty, g)))
        .filter(|(_, g)| g.template == Some(1))
        .map(|(ty, g)| TemplateGuest { vmid: g.vmid, name: g.name.unwrap_or_default(), ty })
        .collect();
    templates.sort_by_key(|t| t.vmid);
    let mut bridges: Vec<BridgeOffer> =
        bridges.into_iter().map(|b| BridgeOffer { iface: b.iface, kind: b.kind, cidr: b.cidr }).collect();
    bridges.sort_by(|a, b| a.iface.cmp(&b.iface));
    Ok(NodeOffer { node: node.to_owned(), online: true, problem: None, storages, isos, bridges, templates })
}

async fn disk_storages(pve: &pve::Client, node: &str) -> Result<Vec<StorageOffer>, PveError> {
    let mut out: Vec<StorageOffer> = pve
        .storage(node, Some(DISK_CONTENT))
        .await?
        .into_iter()
        .map(|s| StorageOffer {
            content: crate::domain::guest::split_list(s.content.as_deref().unwrap_or("")),
            active: s.active == Some(1),
            total: s.total.unwrap_or(0),
            avail: s.avail.unwrap_or(0),
            shared: s.shared == Some(1),
            kind: s.kind,
            id: s.storage,
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The ISO images of every storage of `node` that holds `iso`.
async fn isos(pve: &pve::Client, node: &str) -> Result<Vec<IsoImage>, PveError> {
    let stores = pve.storage(node, Some("iso")).await?;
    let lists =
        join_all(stores.iter().filter(|s| s.active != Some(0)).map(|s| pve.storage_content(node, &s.storage, "iso")))
            .await;
    let mut out = Vec::new();
    for list in lists {
        out.extend(list?.into_iter().map(|i| IsoImage { size: i.bytes(), volid: i.volid }));
    }
    out.sort_by_key(|i| i.volid.to_lowercase());
    Ok(out)
}

/// What a request form shows beside an entry's choices: each storage's free space and each ISO's size.
#[derive(Debug, Clone, Default)]
pub struct ChoiceFacts {
    /// `(node, storage)` → bytes free.
    pub avail: BTreeMap<(String, String), u64>,
    /// ISO volid → bytes.
    pub iso_size: BTreeMap<String, u64>,
}

/// Reads the figures of the given nodes' disk storages and the sizes of the ISOs in `iso_storages`
/// (`(node, storage)`), all at once; a node that does not answer in `wait` simply has no figures: the
/// form then shows names without sizes.
pub async fn choice_facts(
    pve: &pve::Client,
    nodes: &[String],
    iso_storages: &[(String, String)],
    wait: Duration,
) -> ChoiceFacts {
    let storages = join_all(nodes.iter().map(|n| async move { (n, disk_storages(pve, n).await) }));
    let contents = join_all(
        iso_storages.iter().map(|(n, s)| async move { pve.storage_content(n, s, "iso").await.unwrap_or_default() }),
    );
    let mut facts = ChoiceFacts::default();
    let Ok((storages, contents)) = tokio::time::timeout(wait, async { tokio::join!(storages, contents) }).await else {
        tracing::warn!("storage figures not read in time");
        return facts;
    };
    for (node, list) in storages {
        for s in list.unwrap_or_default().into_iter().filter(|s| s.active) {
            facts.avail.insert((node.clone(), s.id), s.avail);
        }
    }
    for item in contents.into_iter().flatten() {
        if let Some(size) = item.bytes() {
            facts.iso_size.insert(item.volid, size);
        }
    }
    facts
}
