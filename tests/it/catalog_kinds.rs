//! Catalog entries of three kinds, made by an admin from what the (simulated) cluster offers: the form
//! lists what PVE has, a save is checked with PVE again, and a refusal keeps everything typed.

use proxdesk::domain::roles::Role;
use proxdesk::services::catalog;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Browser, TestApp};
use crate::provision::app_with_cluster;

const DEBIAN_ISO: &str = "local:iso/debian-12.8.0-amd64-netinst.iso";
const ALPINE_ISO: &str = "local:iso/alpine-virt-3.20.3-x86_64.iso";

/// Page text with the few entities minijinja writes in attribute values turned back into characters.
pub fn unescaped(html: &str) -> String {
    html.replace("&#x2f;", "/").replace("&#x27;", "'").replace("&quot;", "\"").replace("&amp;", "&")
}

/// The checkboxes named `name` as `(value, checked)`.
fn boxes(html: &str, name: &str) -> Vec<(String, bool)> {
    let marker = format!("name=\"{name}\" type=\"checkbox\" value=\"");
    html.split(&marker)
        .skip(1)
        .map(|rest| {
            let value = rest[..rest.find('"').unwrap()].to_owned();
            let tag_end = rest.find('>').unwrap();
            (value, rest[..tag_end].contains(" checked"))
        })
        .collect()
}

/// The option values of the select with id `f-<name>`.
pub fn options(html: &str, name: &str) -> Vec<String> {
    let start = html.find(&format!("<select id=\"f-{name}\"")).unwrap_or_else(|| panic!("no select {name}"));
    let select = &html[start..start + html[start..].find("</select>").unwrap()];
    select
        .split("<option value=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

async fn admin(app: &TestApp) -> (Browser, String) {
    let (root, pw) = app.user("chief", Role::Admin).await;
    (app.logged_in("chief", &pw).await, app.token(&root).await)
}

fn limits() -> Vec<(&'static str, &'static str)> {
    vec![
        ("default_cores", "1"),
        ("max_cores", "4"),
        ("default_memory_mib", "1024"),
        ("max_memory_mib", "8192"),
        ("default_disk_gib", "8"),
        ("max_disk_gib", "64"),
        ("enabled", "on"),
    ]
}

/// Every field of the form, as a browser without JavaScript posts it: the other kinds' sections too.
fn post_all_sections(kind: &'static str, extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut fields = vec![
        ("kind", kind),
        ("lxc_guest", ""),
        ("qemu_guest", ""),
        ("net0", "name=eth0,bridge=vmbr0,ip=dhcp"),
        ("ip_pool", ""),
        ("gateway", ""),
        ("ostype", "l26"),
        ("finish_mode", "none"),
    ];
    fields.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    fields.extend(limits());
    fields.extend_from_slice(extra);
    fields
}

async fn entries(app: &TestApp, token: &str) -> Vec<Value> {
    app.get(token, "/api/v1/admin/templates").await.json::<Vec<Value>>().await.unwrap()
}

#[tokio::test]
async fn admins_create_each_kind_from_what_the_cluster_offers() {
    let (app, _sim) = app_with_cluster(None).await;
    let (b, token) = admin(&app).await;
    let html = unescaped(&b.get("/admin/catalog").await.text().await.unwrap());
    // The lists come from PVE: templates per kind, disk storages, bridges and vnets, ISOs with sizes.
    assert!(options(&html, "lxc_guest").contains(&"pve1/9000".to_owned()), "LXC templates listed");
    assert_eq!(options(&html, "qemu_guest"), ["pve1/9100"], "only VM templates for cloud-init");
    let storages: Vec<String> = boxes(&html, "storages").into_iter().map(|b| b.0).collect();
    assert_eq!(storages, ["local-lvm"], "only storages that hold guest disks");
    let bridges: Vec<String> = boxes(&html, "bridges").into_iter().map(|b| b.0).collect();
    assert_eq!(bridges, ["lab10", "vmbr0", "vmbr1"]);
    let isos: Vec<String> = boxes(&html, "isos").into_iter().map(|b| b.0).collect();
    assert_eq!(isos.len(), 3);
    assert!(isos.contains(&DEBIAN_ISO.to_owned()));
    assert!(html.contains("debian-12.8.0-amd64-netinst.iso (631\u{a0}MiB)"), "ISOs show their size");
    assert!(html.contains("440\u{a0}GiB free of 500\u{a0}GiB"), "storages show their free space");
    let nodes: Vec<String> = boxes(&html, "nodes").into_iter().map(|b| b.0).collect();
    assert_eq!(nodes, ["pve1", "pve2", "pve3"]);

    // A container entry; the ISO boxes a browser without JavaScript also sends are ignored.
    let mut lxc =
        post_all_sections("lxc", &[("name", "Debian CT"), ("lxc_guest", "pve1/9000"), ("finish_mode", "node")]);
    lxc.extend([("isos", DEBIAN_ISO), ("bridges", "vmbr1"), ("full_clone", "on")]);
    let r = b.post_form("/admin/catalog", "/admin/catalog", &lxc).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    // A cloud-init entry with static addresses.
    let mut ci = post_all_sections(
        "qemu-cloudinit",
        &[
            ("name", "Debian VM"),
            ("qemu_guest", "pve1/9100"),
            ("ip_pool", "192.0.2.100-192.0.2.150/24"),
            ("gateway", "192.0.2.1"),
        ],
    );
    ci.extend([("storages", "local-lvm"), ("bridges", "vmbr0"), ("bridges", "vmbr1"), ("full_clone", "on")]);
    let r = b.post_form("/admin/catalog", "/admin/catalog", &ci).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    // An ISO entry on two nodes.
    let mut iso = post_all_sections("qemu-iso", &[("name", "Installer"), ("ostype", "win11")]);
    iso.extend([
        ("nodes", "pve1"),
        ("nodes", "pve2"),
        ("storages", "local-lvm"),
        ("bridges", "vmbr0"),
        ("isos", DEBIAN_ISO),
        ("isos", ALPINE_ISO),
        ("lxc_guest", "pve1/9000"),
    ]);
    let r = b.post_form("/admin/catalog", "/admin/catalog", &iso).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());

    let list = entries(&app, &token).await;
    let by = |name: &str| list.iter().find(|t| t["name"] == name).unwrap().clone();
    let ct = by("Debian CT");
    assert_eq!(
        (ct["kind"].as_str(), ct["node"].as_str(), ct["vmid"].as_i64()),
        (Some("lxc"), Some("pve1"), Some(9000))
    );
    assert_eq!((ct["isos"].clone(), ct["bridges"].clone()), (json!([]), json!(["vmbr1"])));
    let vm = by("Debian VM");
    assert_eq!(vm["kind"], "qemu-cloudinit");
    assert_eq!(
        (vm["ip_pool"].as_str(), vm["gateway"].as_str()),
        (Some("192.0.2.100-192.0.2.150/24"), Some("192.0.2.1"))
    );
    assert_eq!((vm["storages"].clone(), vm["bridges"].clone()), (json!(["local-lvm"]), json!(["vmbr0", "vmbr1"])));
    assert_eq!(vm["finish_mode"], "none");
    let inst = by("Installer");
    assert_eq!(inst["kind"], "qemu-iso");
    assert_eq!((inst["node"].as_str(), inst["vmid"].as_i64()), (Some("pve1"), Some(0)));
    assert_eq!(
        (inst["nodes"].clone(), inst["isos"].clone()),
        (json!(["pve1", "pve2"]), json!([DEBIAN_ISO, ALPINE_ISO]))
    );
    assert_eq!((inst["ostype"].as_str(), inst["full_clone"].as_bool()), (Some("win11"), Some(false)));

    // The list shows each kind, translated; the edit form shows the entry's choices ticked.
    let page = b.client.get(app.url("/admin/catalog")).header("Accept-Language", "fr").send().await.unwrap();
    let page = page.text().await.unwrap();
    for kind in [
        "Conteneur à partir d&#x27;un modèle LXC",
        "Machine virtuelle à partir d&#x27;un modèle cloud-init",
        "Machine virtuelle installée depuis une ISO",
    ] {
        assert!(page.contains(kind), "{kind} missing from the list");
    }
    let edit = unescaped(&b.get(&format!("/admin/catalog/{}", inst["id"])).await.text().await.unwrap());
    assert!(edit.contains("value=\"qemu-iso\" checked"));
    let ticked: Vec<String> = boxes(&edit, "isos").into_iter().filter(|b| b.1).map(|b| b.0).collect();
    assert_eq!(ticked, [ALPINE_ISO, DEBIAN_ISO]);
    assert!(
        boxes(&edit, "nodes").contains(&("pve2".into(), true))
            && boxes(&edit, "nodes").contains(&("pve3".into(), false))
    );
}

#[tokio::test]
async fn names_the_cluster_does_not_have_are_refused_with_the_fields_marked_and_the_values_kept() {
    let (app, _sim) = app_with_cluster(None).await;
    let (b, token) = admin(&app).await;
    let mut iso = post_all_sections("qemu-iso", &[("name", "Stale installer")]);
    iso.extend([
        ("nodes", "pve1"),
        ("nodes", "pve9"),
        ("storages", "local-lvm"),
        ("storages", "nfs-gone"),
        ("bridges", "vmbr7"),
        ("isos", DEBIAN_ISO),
        ("isos", "local:iso/windows-11.iso"),
    ]);
    let r = b.post_form("/admin/catalog", "/admin/catalog", &iso).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = unescaped(&r.text().await.unwrap());
    for (field, message) in [
        ("nodes", "Proxmox VE has no node pve9"),
        ("storages", "pve1 has no storage nfs-gone"),
        ("bridges", "pve1 has no bridge vmbr7"),
        ("isos", "local:iso/windows-11.iso is not on pve1"),
    ] {
        assert!(html.contains(&format!("<p class=\"error\" id=\"e-{field}\">{message}</p>")), "{field}: {message}");
    }
    // What was ticked is still ticked, the unknown names too (marked), and the name as typed.
    assert!(html.contains("value=\"Stale installer\""));
    for (name, value) in
        [("nodes", "pve9"), ("storages", "nfs-gone"), ("bridges", "vmbr7"), ("isos", "local:iso/windows-11.iso")]
    {
        assert!(boxes(&html, name).contains(&(value.to_owned(), true)), "{name} {value} kept");
    }
    assert!(boxes(&html, "storages").contains(&("local-lvm".to_owned(), true)));
    assert!(html.contains("not on Proxmox VE"));
    assert!(html.contains("value=\"qemu-iso\" checked"));

    // A cloud-init entry naming a container template is refused on the VM template's select.
    let mut ci = post_all_sections("qemu-cloudinit", &[("name", "Wrong"), ("qemu_guest", "pve1/9000")]);
    ci.push(("full_clone", "on"));
    let r = b.post_form("/admin/catalog", "/admin/catalog", &ci).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = unescaped(&r.text().await.unwrap());
    assert!(html.contains("<p class=\"error\" id=\"e-qemu_guest\">guest 9000 is not a QEMU template</p>"), "{html}");
    assert!(html.contains("<option value=\"pve1/9000\" selected>"), "the choice is kept");
    // Through the API the same check names the API's fields.
    let body = json!({"name": "Gone", "kind": "qemu-cloudinit", "node": "pve1", "vmid": 9123, "default_cores": 1,
        "max_cores": 2, "default_memory_mib": 512, "max_memory_mib": 1024, "default_disk_gib": 8, "max_disk_gib": 16,
        "bridges": ["vmbr0", "vmbr5"]});
    let r = app.post(&token, "/api/v1/admin/templates", body).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = r.json().await.unwrap();
    let fields: Vec<(&str, &str)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(fields, [("vmid", "error.pve_template_missing"), ("bridges", "error.pve_bridge_missing")]);
    assert!(entries(&app, &token).await.is_empty(), "nothing was saved");
}

#[tokio::test]
async fn a_save_while_the_cluster_does_not_answer_is_refused_and_keeps_the_form() {
    let (app, sim) = app_with_cluster(None).await;
    let (b, token) = admin(&app).await;
    let csrf = b.csrf("/admin/catalog").await;
    sim.stop();
    let mut fields: Vec<(String, String)> =
        post_all_sections("qemu-iso", &[("name", "Later")]).into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    for (k, v) in [("nodes", "pve1"), ("storages", "local-lvm"), ("bridges", "vmbr1"), ("isos", DEBIAN_ISO)] {
        fields.push((k.into(), v.into()));
    }
    fields.push(("csrf".into(), csrf));
    let r = b.post_raw("/admin/catalog", &fields).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = unescaped(&r.text().await.unwrap());
    assert!(html.contains("Not saved: Proxmox VE did not answer"));
    assert!(html.contains("value=\"Later\""));
    for (name, value) in [("nodes", "pve1"), ("storages", "local-lvm"), ("bridges", "vmbr1"), ("isos", DEBIAN_ISO)] {
        assert!(boxes(&html, name).contains(&(value.to_owned(), true)), "{name} {value} kept");
    }
    let body = json!({"name": "Later", "kind": "qemu-iso", "nodes": ["pve1"], "storages": ["local-lvm"],
        "bridges": ["vmbr1"], "isos": [DEBIAN_ISO], "default_cores": 1, "max_cores": 2, "default_memory_mib": 512,
        "max_memory_mib": 1024, "default_disk_gib": 8, "max_disk_gib": 16});
    let r = app.post(&token, "/api/v1/admin/templates", body).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json::<Value>().await.unwrap()["type"], "/problems/unavailable");
    assert!(entries(&app, &token).await.is_empty());
}

#[tokio::test]
async fn the_demo_catalog_offers_one_entry_of_each_kind_that_the_simulator_confirms() {
    let (app, _sim) = app_with_cluster(None).await;
    let pve = app.state.pve.as_ref().expect("cluster configured");
    let demo = proxdesk::demo::demo_templates();
    let kinds: Vec<&str> = demo.iter().map(|t| t.kind.as_str()).collect();
    for kind in ["lxc", "qemu-cloudinit", "qemu-iso"] {
        assert!(kinds.contains(&kind), "no {kind} entry in the demo");
    }
    for t in demo {
        let valid = catalog::validate(&t).unwrap_or_else(|e| panic!("{}: {e:?}", t.name));
        let errors = catalog::verify(pve, &valid).await.unwrap();
        assert!(errors.is_empty(), "{}: {errors:?}", t.name);
    }
}
