//! The audit log page: actions in words in every language, subjects as links, details as facts, filters,
//! and keyset paging towards older and back to newer entries.

use proxdesk::domain::roles::Role;
use proxdesk::services;
use reqwest::StatusCode;
use serde_json::json;

use crate::admin_home::unescape;
use crate::helpers::spawn_app;

#[tokio::test]
async fn the_audit_log_speaks_in_words_and_links_its_subjects() {
    let app = spawn_app().await;
    let (_, pw) = app.user("chief", Role::Admin).await;
    let (alice, _) = app.user("alice", Role::User).await;
    let tpl = app.template("Debian").await;
    let id = app.submit_ok(&app.token(&alice).await, tpl, "web1").await;
    let b = app.logged_in("chief", &pw).await;
    let html = unescape(&b.get("/admin/audit").await.text().await.unwrap());
    for words in ["User created", "Template added to the catalog", "API token created", "Requested"] {
        assert!(html.contains(&format!("<td data-label=\"Action\">{words}</td>")), "{words} missing: {html}");
    }
    for dotted in [">user.created<", ">template.created<", ">request.created<", ">token.created<"] {
        assert!(!html.contains(dotted), "{dotted} shown raw");
    }
    assert!(html.contains(&format!("<a href=\"/requests/{id}\">Request #{id}</a>")), "{html}");
    assert!(html.contains(&format!("<a href=\"/admin/users/{}\">User #{}</a>", alice.id, alice.id)));
    assert!(html.contains("<dt>User name</dt><dd>alice</dd>"), "details as facts: {html}");
    assert!(!html.contains("{&quot;"), "no raw JSON");
    // French, too.
    let fr = b.client.get(app.url("/admin/audit")).header("Accept-Language", "fr").send().await.unwrap();
    assert!(fr.text().await.unwrap().contains(">Utilisateur créé<"));
    // Filters: an action from the list, and a day range.
    let html = b.get("/admin/audit?action=user.created").await.text().await.unwrap();
    let cell = |words: &str| format!("<td data-label=\"Action\">{words}</td>");
    assert!(html.contains(&cell("User created")) && !html.contains(&cell("Requested")), "{html}");
    assert!(html.contains("<option value=\"user.created\" selected>User created</option>"));
    let html = b.get("/admin/audit?since=2000-01-01&until=2000-01-02").await.text().await.unwrap();
    assert!(html.contains("No entry matches."));
    let r = b.get("/admin/audit?since=yesterday").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("must be a date"));
}

#[tokio::test]
async fn every_action_written_has_words_in_every_language() {
    for lang in ["en", "fr", "it"] {
        for action in services::audit::ACTIONS {
            let key = format!("audit.{action}");
            let text = proxdesk::http::i18n::t(lang, &key);
            assert_ne!(text, key, "{key} has no {lang} text");
        }
    }
}

#[tokio::test]
async fn the_audit_log_pages_by_cursor_to_older_entries_and_back() {
    let app = spawn_app().await;
    let (_, pw) = app.user("chief", Role::Admin).await;
    for n in 0..70 {
        services::audit::record(&app.db, None, "quota.role_set", "quota", n, json!({"n": n})).await.unwrap();
    }
    let b = app.logged_in("chief", &pw).await;
    let first = unescape(&b.get("/admin/audit?action=quota.role_set").await.text().await.unwrap());
    let rows = |html: &str| html.matches("<td data-label=\"Action\">Role quota changed</td>").count();
    assert_eq!(rows(&first), 50);
    assert!(first.contains("<dd>69</dd>") && !first.contains("<dd>19</dd>"), "newest first");
    assert!(!first.contains("Newer"), "nothing is newer than the first page");
    let older = link(&first, "Older →");
    assert!(older.contains("cursor="), "{older}");
    let second = unescape(&b.get(&older).await.text().await.unwrap());
    assert_eq!(rows(&second), 20);
    assert!(second.contains("<dd>19</dd>") && second.contains("<dd>0</dd>") && !second.contains("<dd>20</dd>"));
    assert!(!second.contains("Older"), "the oldest page has nothing older");
    let newer = link(&second, "← Newer");
    assert!(newer.contains("after="), "{newer}");
    let back = unescape(&b.get(&newer).await.text().await.unwrap());
    assert_eq!(rows(&back), 50);
    assert!(back.contains("<dd>69</dd>") && back.contains("<dd>20</dd>") && !back.contains("<dd>19</dd>"));
}

/// The target of the link whose text is `text`.
fn link(html: &str, text: &str) -> String {
    let end = html.find(&format!("\">{text}</a>")).unwrap_or_else(|| panic!("no link {text}: {html}"));
    let start = html[..end].rfind("href=\"").unwrap() + "href=\"".len();
    html[start..end].to_owned()
}
