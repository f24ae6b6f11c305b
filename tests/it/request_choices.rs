//! A request chooses among what its catalog entry allows — storage, bridge, ISO — and nothing else:
//! the form offers the entry's own lists, and a value outside them is refused by the form (which keeps
//! what was typed) and by the API (422 naming the field).

use proxdesk::domain::guest::MachineKind;
use proxdesk::domain::roles::Role;
use proxdesk::services::{self, catalog::TemplateInput};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::catalog_kinds::{options, unescaped};
use crate::helpers::{TestApp, spawn_app};
use crate::provision::app_with_cluster;

const DEBIAN_ISO: &str = "local:iso/debian-12.8.0-amd64-netinst.iso";
const ALPINE_ISO: &str = "local:iso/alpine-virt-3.20.3-x86_64.iso";
const UBUNTU_ISO: &str = "local:iso/ubuntu-24.04.1-live-server-amd64.iso";

/// An ISO entry (seeded as the demo does) allowing two of the simulator's three ISOs.
async fn iso_entry(app: &TestApp) -> i64 {
    let t = TemplateInput {
        name: "Installer".into(),
        kind: MachineKind::QemuIso,
        nodes: vec!["pve1".into(), "pve2".into()],
        storages: vec!["local-lvm".into()],
        bridges: vec!["vmbr1".into(), "vmbr0".into()],
        isos: vec![DEBIAN_ISO.into(), ALPINE_ISO.into()],
        finish_mode: "none".into(),
        ..Default::default()
    };
    services::catalog::create(&app.db, None, None, t).await.unwrap().id
}

/// The values of the options of select `f-<name>` that belong to entry `id`.
fn offered(html: &str, name: &str, id: i64) -> Vec<String> {
    let start = html.find(&format!("<select id=\"f-{name}\"")).unwrap_or_else(|| panic!("no select {name}"));
    let select = &html[start..start + html[start..].find("</select>").unwrap()];
    let marker = format!("data-for=\"{id}\"");
    select
        .split("<option value=\"")
        .skip(1)
        .filter(|o| o[..o.find('>').unwrap()].contains(&marker))
        .map(|o| o[..o.find('"').unwrap()].to_owned())
        .collect()
}

fn request(template_id: i64, extra: Value) -> Value {
    let mut body = json!({"template_id": template_id, "hostname": "vm-1", "cores": 1, "memory_mib": 1024,
        "disk_gib": 8, "purpose": "an install"});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

fn error_fields(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn the_request_form_offers_exactly_an_iso_entrys_choices_with_sizes_and_free_space() {
    let (app, _sim) = app_with_cluster(None).await;
    let plain = app.template("Debian").await;
    let iso = iso_entry(&app).await;
    let (_, pw) = app.user("alice", Role::User).await;
    let b = app.logged_in("alice", &pw).await;
    let html = unescaped(&b.get("/requests/new").await.text().await.unwrap());
    assert_eq!(offered(&html, "iso", iso), [DEBIAN_ISO, ALPINE_ISO]);
    assert_eq!(offered(&html, "storage", iso), ["local-lvm"]);
    assert_eq!(offered(&html, "bridge", iso), ["vmbr1", "vmbr0"]);
    // The container entry has no lists: nothing of it in the selects, and nothing else is offered.
    for name in ["iso", "storage", "bridge"] {
        assert!(offered(&html, name, plain).is_empty());
        assert!(!options(&html, name).contains(&UBUNTU_ISO.to_owned()));
    }
    // ISOs by file name and size, the storage with its free space, each entry with its kind's sign.
    assert!(html.contains(">debian-12.8.0-amd64-netinst.iso (631\u{a0}MiB)</option>"), "{html}");
    assert!(html.contains(">alpine-virt-3.20.3-x86_64.iso (63\u{a0}MiB)</option>"));
    assert!(html.contains(">local-lvm · 440\u{a0}GiB free</option>"));
    assert!(html.contains("Installer (VM · ISO)") && html.contains("Debian (LXC)"));
    let fr = b.client.get(app.url("/requests/new")).header("Accept-Language", "it").send().await.unwrap();
    let fr = fr.text().await.unwrap();
    assert!(fr.contains("ISO di installazione") && fr.contains("440\u{a0}GiB liberi"), "in the user's language");
}

#[tokio::test]
async fn choices_outside_the_entry_are_refused_by_the_form_which_keeps_what_was_typed() {
    let app = spawn_app().await;
    let iso = iso_entry(&app).await;
    let (_, pw) = app.user("alice", Role::User).await;
    let b = app.logged_in("alice", &pw).await;
    let id = iso.to_string();
    let fields = [
        ("template_id", id.as_str()),
        ("hostname", "vm-typed"),
        ("cores", "2"),
        ("memory_mib", "2048"),
        ("disk_gib", "20"),
        ("purpose", "kept purpose"),
        ("iso", UBUNTU_ISO),
        ("storage", "local"),
        ("bridge", "lab10"),
    ];
    let r = b.post_form("/requests/new", "/requests", &fields).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = unescaped(&r.text().await.unwrap());
    for (field, message) in [
        ("iso", format!("{UBUNTU_ISO} is not one of this entry's ISOs")),
        ("storage", "local is not one of this entry's storages".to_owned()),
        ("bridge", "lab10 is not one of this entry's bridges".to_owned()),
    ] {
        assert!(html.contains(&format!("<p class=\"error\" id=\"e-{field}\">{message}</p>")), "{field}");
    }
    for (field, value) in [("iso", UBUNTU_ISO), ("storage", "local"), ("bridge", "lab10")] {
        assert!(html.contains(&format!("<option value=\"{value}\" selected data-kept>")), "{field} kept: {value}");
    }
    for kept in ["value=\"vm-typed\"", "value=\"2048\"", "value=\"20\"", "kept purpose"] {
        assert!(html.contains(kept), "{kept} kept");
    }
    let (admin, _) = app.user("chief", Role::Admin).await;
    let all: Value = app.get(&app.token(&admin).await, "/api/v1/requests").await.json().await.unwrap();
    assert!(all["items"].as_array().unwrap().is_empty(), "nothing was recorded");

    // A valid choice through the form is recorded and shown on the request.
    let fields = [
        ("template_id", id.as_str()),
        ("hostname", "vm-typed"),
        ("cores", "2"),
        ("memory_mib", "2048"),
        ("disk_gib", "20"),
        ("purpose", "kept purpose"),
        ("iso", ALPINE_ISO),
        ("storage", ""),
        ("bridge", "vmbr0"),
    ];
    let r = b.post_form("/requests/new", "/requests", &fields).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = b.get(r.headers()["location"].to_str().unwrap()).await.text().await.unwrap();
    let page = unescaped(&page);
    assert!(page.contains("<dd>alpine-virt-3.20.3-x86_64.iso</dd>") && page.contains("<dd>vmbr0</dd>"));
    assert!(page.contains("<dd>local-lvm</dd>"), "no storage chosen: the entry's first");
}

#[tokio::test]
async fn through_the_api_a_choice_outside_the_entry_is_422_naming_the_field_and_a_valid_one_is_stored() {
    let app = spawn_app().await;
    let iso = iso_entry(&app).await;
    let plain = app.template("Debian").await;
    let (alice, _) = app.user("alice", Role::User).await;
    let token = app.token(&alice).await;

    for (field, value, code) in [
        ("iso", UBUNTU_ISO, "error.iso_not_allowed"),
        ("storage", "local", "error.storage_not_allowed"),
        ("bridge", "vmbr9", "error.bridge_not_allowed"),
    ] {
        let r = app.post(&token, "/api/v1/requests", request(iso, json!({field: value}))).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert_eq!(error_fields(&r.json().await.unwrap()), [(field.to_owned(), code.to_owned())]);
    }
    // All at once, beside the other checks.
    let body = request(iso, json!({"iso": "x", "storage": "y", "bridge": "z", "cores": 99}));
    let r = app.post(&token, "/api/v1/requests", body).await;
    let fields: Vec<String> = error_fields(&r.json().await.unwrap()).into_iter().map(|f| f.0).collect();
    for f in ["cores", "storage", "bridge", "iso"] {
        assert!(fields.contains(&f.to_owned()), "{f} in {fields:?}");
    }

    // A valid choice is stored; what is not chosen takes the entry's first.
    let r = app.post(&token, "/api/v1/requests", request(iso, json!({"bridge": "vmbr0"}))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let made: Value = r.json().await.unwrap();
    assert_eq!(
        (made["storage"].as_str(), made["bridge"].as_str(), made["iso"].as_str()),
        (Some("local-lvm"), Some("vmbr0"), Some(DEBIAN_ISO))
    );
    let read: Value = app.get(&token, &format!("/api/v1/requests/{}", made["id"])).await.json().await.unwrap();
    assert_eq!((read["bridge"].as_str(), read["iso"].as_str()), (Some("vmbr0"), Some(DEBIAN_ISO)));
    let row = entities::request::Entity::find_by_id(made["id"].as_i64().unwrap()).one(&app.db).await.unwrap().unwrap();
    assert_eq!(
        (row.storage.as_deref(), row.bridge.as_deref(), row.iso.as_deref()),
        (Some("local-lvm"), Some("vmbr0"), Some(DEBIAN_ISO))
    );

    // An entry without lists records none, and refuses a choice it does not offer.
    let r = app.post(&token, "/api/v1/requests", request(plain, json!({"hostname": "ct-1"}))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let made: Value = r.json().await.unwrap();
    assert_eq!(
        (made["storage"].clone(), made["bridge"].clone(), made["iso"].clone()),
        (Value::Null, Value::Null, Value::Null)
    );
    let r = app.post(&token, "/api/v1/requests", request(plain, json!({"hostname": "ct-2", "bridge": "vmbr0"}))).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_fields(&r.json().await.unwrap()), [("bridge".to_owned(), "error.bridge_not_allowed".to_owned())]);
}

/// Per choice field: whether it shows, the options one can pick, and the one picked.
const CHOICES: &str = r##"JSON.stringify(Object.fromEntries(["iso", "storage", "bridge"].map(name => {
  const field = document.querySelector("[data-choice=" + name + "]");
  const select = field.querySelector("select");
  const usable = [...select.options].filter(o => !o.hidden && !o.disabled &&
    !(o.parentNode.tagName === "OPTGROUP" && (o.parentNode.hidden || o.parentNode.disabled)));
  return [name, {shown: !field.hidden && !select.disabled, options: usable.map(o => o.value), value: select.value}];
})))"##;

#[tokio::test]
async fn in_the_browser_the_lists_follow_the_chosen_entry() {
    let Some(mut browser) = crate::browser::Chromium::start().await else { return };
    let app = spawn_app().await;
    let plain = app.template("Debian").await;
    let iso = iso_entry(&app).await;
    let (_, pw) = app.user("alice", Role::User).await;
    browser.login(&app.address, "alice", &pw).await;
    browser.goto(&app.url("/requests/new")).await;
    let read = async |browser: &mut crate::browser::Chromium| -> Value {
        serde_json::from_str(browser.eval(CHOICES).await.as_str().unwrap()).unwrap()
    };
    // The container entry comes first and offers no choice: the fields hide.
    let shown = read(&mut browser).await;
    for name in ["iso", "storage", "bridge"] {
        assert_eq!(shown[name]["shown"], false, "{name} shown for the container entry: {shown}");
    }
    let pick = format!(
        "(() => {{ const s = document.getElementById('f-template_id'); s.value = '{iso}'; \
         s.dispatchEvent(new Event('change')); return document.getElementById('template-kind').textContent; }})()"
    );
    assert_eq!(browser.eval(&pick).await, "VM · ISO", "the kind sign follows the entry");
    let shown = read(&mut browser).await;
    assert_eq!(shown["iso"]["options"], json!([DEBIAN_ISO, ALPINE_ISO]));
    assert_eq!(shown["storage"]["options"], json!(["local-lvm"]));
    assert_eq!(shown["bridge"]["options"], json!(["vmbr1", "vmbr0"]));
    assert_eq!((shown["iso"]["value"].as_str(), shown["bridge"]["value"].as_str()), (Some(DEBIAN_ISO), Some("vmbr1")));
    browser.eval("document.getElementById('f-bridge').value = 'vmbr0'").await;
    for (name, value) in [("hostname", "vm-9"), ("purpose", "an install")] {
        browser.type_into(&format!("[name={name}]"), value).await;
    }
    browser.click_and_wait("#request-form button[type=submit]").await;
    let path = browser.path().await;
    let id: i64 = path.trim_start_matches("/requests/").parse().unwrap_or_else(|_| panic!("landed on {path}"));
    let row = entities::request::Entity::find_by_id(id).one(&app.db).await.unwrap().unwrap();
    assert_eq!(
        (row.template_id, row.iso.as_deref(), row.bridge.as_deref()),
        (Some(iso), Some(DEBIAN_ISO), Some("vmbr0"))
    );
    assert_ne!(row.template_id, Some(plain));
    browser.assert_clean("request choices");
    browser.goto("about:blank").await;
}
