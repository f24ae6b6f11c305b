//! Every page renders, in every language, and every translation key used by a template exists.

use proxdesk::domain::roles::Role;
use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn every_page_renders_for_an_admin_in_every_language() {
    let app = spawn_app().await;
    let (admin, pw) = app.user("chief", Role::Admin).await;
    let tpl = app.template("Debian").await;
    let id = app.submit_ok(&app.token(&admin).await, tpl, "web1").await;
    let b = app.logged_in("chief", &pw).await;
    let pages = [
        "/".to_string(),
        "/requests/new".into(),
        format!("/requests/{id}"),
        "/admin".into(),
        "/admin/requests".into(),
        "/admin/requests?status=all".into(),
        "/admin/users".into(),
        format!("/admin/users/{}", admin.id),
        "/admin/guacamole".into(),
        "/admin/catalog".into(),
        format!("/admin/catalog/{tpl}"),
        "/admin/quotas".into(),
        "/admin/audit".into(),
        "/profile".into(),
    ];
    for (lang, word) in [("en", "Log out"), ("fr", "Se déconnecter"), ("it", "Esci")] {
        for page in &pages {
            let r = b.client.get(app.url(page)).header("Accept-Language", lang).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{page} in {lang}");
            let html = r.text().await.unwrap();
            assert!(html.contains(&format!("<html lang=\"{lang}\">")) && html.contains(word), "{page} in {lang}");
            assert!(
                !html.contains("nav.")
                    && !html.contains("field.")
                    && !html.contains("status.p")
                    && !html.contains("home.")
                    && !html.contains("queue."),
                "untranslated key on {page} ({lang})"
            );
        }
    }
}

#[tokio::test]
async fn a_users_language_choice_overrides_the_browser() {
    let app = spawn_app().await;
    let (_, pw) = app.user("alice", Role::User).await;
    let b = app.logged_in("alice", &pw).await;
    assert_eq!(
        b.post_form("/profile", "/profile/language", &[("language", "it")]).await.status(),
        StatusCode::SEE_OTHER
    );
    let html = b.client.get(app.url("/")).header("Accept-Language", "fr").send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<html lang=\"it\">") && html.contains("Nuova richiesta"));
}

#[test]
fn every_key_a_template_uses_has_an_english_text() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
    let mut missing = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(dir)];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for quote in ['"', '\''] {
            let opener = format!("t({quote}");
            for (at, _) in text.match_indices(opener.as_str()) {
                // `t(` itself, not the end of another call such as `m.select("role", …)`.
                if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.') {
                    continue;
                }
                let part = &text[at + opener.len()..];
                let key = &part[..part.find(quote).unwrap()];
                // `t("status." ~ name)`: a prefix completed at render time; the render tests cover those.
                if key.ends_with('.') {
                    continue;
                }
                if proxdesk::http::i18n::t("en", key) == key {
                    missing.push(format!("{}: {key}", p.display()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "keys without text: {missing:?}");
}

#[tokio::test]
async fn admins_manage_users_catalog_and_quotas_from_the_pages() {
    // Catalog entries are checked against a cluster: the simulator.
    let (app, _sim) = crate::provision::app_with_cluster(None).await;
    let (_, pw) = app.user("chief", Role::Admin).await;
    let b = app.logged_in("chief", &pw).await;
    // New user with a generated password, shown once.
    let r =
        b.post_form("/admin/users", "/admin/users", &[("username", "carol"), ("role", "user"), ("password", "")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    let shown = html.split("<code>").nth(1).unwrap().split("</code>").next().unwrap().to_owned();
    assert_eq!(app.browser().login("carol", &shown).await.status(), StatusCode::SEE_OTHER);
    // A bad name keeps the form and says why.
    let r = b.post_form("/admin/users", "/admin/users", &[("username", "Carol Smith"), ("role", "user")]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("value=\"Carol Smith\""));
    // A template; an invalid one is refused with its field errors.
    let r = b
        .post_form(
            "/admin/catalog",
            "/admin/catalog",
            &[
                ("name", "Arch"),
                ("kind", "lxc"),
                ("lxc_guest", "pve2/9001"),
                ("default_cores", "1"),
                ("max_cores", "2"),
                ("default_memory_mib", "512"),
                ("max_memory_mib", "1024"),
                ("default_disk_gib", "4"),
                ("max_disk_gib", "8"),
                ("enabled", "on"),
                ("net0", "name=eth0,bridge=vmbr1,ip=dhcp"),
                ("finish_mode", "guest"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = b
        .post_form(
            "/admin/catalog",
            "/admin/catalog",
            &[
                ("name", "Bad"),
                ("kind", "lxc"),
                ("lxc_guest", "pve2/5"),
                ("default_cores", "3"),
                ("max_cores", "2"),
                ("default_memory_mib", "512"),
                ("max_memory_mib", "1024"),
                ("default_disk_gib", "4"),
                ("max_disk_gib", "8"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("a VMID is between 100") && html.contains("the default is above the maximum"));
    // Role quota.
    let r = b
        .post_form(
            "/admin/quotas",
            "/admin/quotas/user",
            &[("max_machines", "7"), ("max_cores", "9"), ("max_memory_mib", "9000"), ("max_disk_gib", "90")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(b.get("/admin/quotas").await.text().await.unwrap().contains("value=\"7\""));
    // Everything above is in the audit log.
    let audit = b.get("/admin/audit").await.text().await.unwrap();
    for action in ["user.created", "template.created", "quota.role_set"] {
        assert!(audit.contains(action), "{action} missing from the audit page");
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    assert_eq!(app.api.get(app.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(app.api.get(app.url("/readyz")).send().await.unwrap().status(), StatusCode::OK);
}
