//! What a client discovers before creating a VM (pve-qemu-day2.md §7): storages with live figures,
//! a storage's content (ISOs, templates, guest volumes) and the node's bridges and vnets.

use serde_json::{Value, json};

use super::drive::{Drive, is_drive_key};
use super::http::Ctx;
use super::params::{self, Ty};
use super::reply::ApiError;
use super::state::{GuestKind, StorageDef};
use super::volumes::{self, file_based};

const CONTENT_TYPES: &[&str] = &["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import"];

fn visible(ctx: &Ctx, s: &StorageDef) -> bool {
    let path = format!("/storage/{}", s.id);
    ctx.allowed(&path, "Datastore.Audit") || ctx.allowed(&path, "Datastore.AllocateSpace")
}

/// `GET /nodes/{node}/storage`: storages the caller may see; with `content`, only enabled ones holding
/// one of the types (comma list).
pub(crate) fn storage(ctx: &Ctx) -> Result<Value, ApiError> {
    params::check(
        &ctx.params,
        &[
            ("content", Ty::Str(128), false),
            ("enabled", Ty::Bool, false),
            ("storage", Ty::StorageId, false),
            ("target", Ty::Str(64), false),
            ("format", Ty::Bool, false),
        ],
    )?;
    let wanted: Vec<&str> =
        ctx.params.get("content").map(|c| c.split(',').filter(|x| !x.is_empty()).collect()).unwrap_or_default();
    if let Some(bad) = wanted.iter().find(|c| !CONTENT_TYPES.contains(c)) {
        return Err(ApiError::param("content", format!("invalid format - invalid content type '{bad}'\n")));
    }
    let state = ctx.sim.state.lock().expect("state");
    if let Some(id) = ctx.params.get("storage")
        && !state.storages.iter().any(|s| s.id == *id)
    {
        return Err(ApiError::param("storage", "No such storage."));
    }
    let with_format = ctx.params.get("format").is_some_and(|f| f == "1");
    Ok(state
        .storages
        .iter()
        .filter(|s| visible(ctx, s))
        .filter(|s| wanted.is_empty() || wanted.iter().any(|c| volumes::holds(s, c)))
        .filter(|s| ctx.params.get("storage").is_none_or(|id| *id == s.id))
        .map(|s| {
            let mut v = json!({
                "storage": s.id, "type": s.kind, "content": s.content, "active": 1, "enabled": 1, "shared": 0,
                "total": s.total, "used": s.used, "avail": s.total - s.used,
                "used_fraction": s.used as f64 / s.total as f64,
            });
            if with_format {
                let supported: &[&str] = if file_based(s) { &["raw", "qcow2", "vmdk"] } else { &["raw"] };
                v["formats"] = json!({"supported": supported, "default": "raw"});
                v["format"] = json!([
                    supported.iter().map(|f| (f.to_string(), 1)).collect::<std::collections::BTreeMap<_, _>>(),
                    "raw"
                ]);
            }
            v
        })
        .collect())
}

fn file_format(volid: &str, content: &str) -> String {
    if content == "iso" {
        return "iso".into();
    }
    let name = volid.rsplit('/').next().unwrap_or(volid);
    ["tar.zst", "tar.gz", "tar.xz", "tar.bz2", "tar"]
        .iter()
        .find(|ext| name.ends_with(&format!(".{ext}")))
        .map(|ext| match *ext {
            "tar.zst" => "tzst",
            "tar.gz" => "tgz",
            "tar.xz" => "txz",
            "tar.bz2" => "tbz2",
            _ => "tar",
        })
        .unwrap_or("raw")
        .into()
}

/// `GET /nodes/{node}/storage/{storage}/content`: sorted by `volid` (case-insensitive).
pub(crate) fn content(ctx: &Ctx, storage_id: &str) -> Result<Value, ApiError> {
    let path = format!("/storage/{storage_id}");
    ctx.require(&path, &["Datastore.Audit", "Datastore.AllocateSpace"])?;
    params::check(&ctx.params, &[("content", Ty::Str(32), false), ("vmid", Ty::Vmid, false)])?;
    let content = ctx.params.get("content").map(String::as_str);
    if let Some(c) = content.filter(|c| !CONTENT_TYPES.contains(c)) {
        return Err(ApiError::param("content", format!("invalid format - invalid content type '{c}'\n")));
    }
    let vmid: Option<u64> = ctx.params.get("vmid").map(|v| v.parse().expect("checked"));
    let state = ctx.sim.state.lock().expect("state");
    let s = volumes::storage(&state, storage_id)?;
    let wants = |c: &str| content.is_none_or(|w| w == c) && volumes::holds(s, c);
    let mut items: Vec<Value> = vec![];
    if vmid.is_none() {
        for f in state.files.iter().filter(|f| f.volid.starts_with(&format!("{storage_id}:")) && wants(&f.content)) {
            let format = file_format(&f.volid, &f.content);
            items.push(
                json!({"volid": f.volid, "content": f.content, "format": format, "size": f.size, "ctime": f.ctime}),
            );
        }
    }
    let may_see_all = ctx.allowed(&path, "Datastore.Allocate");
    for g in state.guests.values().filter(|g| g.node == ctx.node && vmid.is_none_or(|v| v == g.vmid)) {
        let kind = if g.kind == GuestKind::Lxc { "rootdir" } else { "images" };
        if !wants(kind) || !(may_see_all || ctx.allowed(&format!("/vms/{}", g.vmid), "VM.Config.Disk")) {
            continue;
        }
        let volumes = g.config.iter().filter(|(k, _)| is_drive_key(k) || *k == "rootfs" || k.starts_with("mp"));
        for (k, v) in volumes {
            let Ok(d) = Drive::parse(if *k == "rootfs" { "scsi0" } else { k }, v) else { continue };
            if d.storage() != Some(storage_id) || (d.is_cdrom() && !d.is_cloudinit()) {
                continue;
            }
            let format = d.volume.rsplit_once('.').filter(|_| file_based(s)).map_or("raw", |(_, ext)| ext);
            let ctime = g.created_at.map_or(1_733_330_000, |t| super::auth::now() - t.elapsed().as_secs() as i64);
            let mut item = json!({"volid": d.volume, "content": kind, "format": format,
                                  "size": d.size().unwrap_or(4 << 20), "vmid": g.vmid, "ctime": ctime});
            if file_based(s) {
                item["used"] = item["size"].clone();
                if let Some((base, _)) =
                    d.volume.split_once(':').and_then(|(_, n)| n.rsplit_once('/')).filter(|(b, _)| b.contains("base-"))
                {
                    item["parent"] = json!(base);
                }
            }
            items.push(item);
        }
    }
    items.sort_by_key(|i| i["volid"].as_str().unwrap_or_default().to_lowercase());
    Ok(Value::Array(items))
}

const NET_TYPES: &[&str] = &[
    "bridge",
    "bond",
    "eth",
    "alias",
    "vlan",
    "fabric",
    "OVSBridge",
    "OVSBond",
    "OVSPort",
    "OVSIntPort",
    "vnet",
    "any_bridge",
    "any_local_bridge",
    "include_sdn",
];

/// `GET /nodes/{node}/network`: the physical NIC, bridges and vnets; bridges and vnets only with
/// `SDN.Audit` or `SDN.Use` on their zone path.
pub(crate) fn network(ctx: &Ctx) -> Result<Value, ApiError> {
    params::check(&ctx.params, &[("type", Ty::Enum(NET_TYPES), false)])?;
    let ty = ctx.params.get("type").map(String::as_str);
    let state = ctx.sim.state.lock().expect("state");
    let mut out = vec![];
    if ty.is_none() || ty == Some("eth") {
        out.push(json!({"iface": "eno1", "type": "eth", "active": 1, "exists": 1, "method": "manual",
                        "method6": "manual", "families": ["inet"], "priority": 2}));
    }
    for (i, n) in state.networks.iter().enumerate() {
        let bridge = n.kind == "bridge";
        let listed = match ty {
            None | Some("include_sdn") | Some("any_bridge") => true,
            Some("any_local_bridge") | Some("bridge") => bridge,
            Some("vnet") => !bridge,
            _ => false,
        };
        let zone_path = match &n.zone {
            Some(zone) => format!("/sdn/zones/{zone}/{}", n.iface),
            None => format!("/sdn/zones/localnetwork/{}", n.iface),
        };
        let may = ctx.allowed(&zone_path, "SDN.Audit") || ctx.allowed(&zone_path, "SDN.Use");
        if !listed || !may || (!bridge && ty.is_none()) {
            continue;
        }
        if !bridge {
            out.push(json!({"iface": n.iface, "type": "vnet", "active": "1", "ipam": 0, "vlanaware": 0}));
            continue;
        }
        let mut v = json!({"iface": n.iface, "type": "bridge", "active": 1, "autostart": 1,
                           "method": if n.cidr.is_some() { "static" } else { "manual" }, "method6": "manual",
                           "families": ["inet"], "bridge_ports": n.ports, "bridge_stp": "off", "bridge_fd": "0",
                           "priority": 3 + i});
        if let Some((address, netmask)) = n.cidr.as_deref().and_then(|c| c.split_once('/')) {
            v["cidr"] = json!(n.cidr);
            v["address"] = json!(address);
            v["netmask"] = json!(netmask);
        }
        if let Some(gw) = &n.gateway {
            v["gateway"] = json!(gw);
        }
        out.push(v);
    }
    Ok(Value::Array(out))
}
