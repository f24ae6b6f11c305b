//! JSON logs from the real binary: every line is a JSON object, a request's lines carry the id its
//! answer's `X-Request-Id` gave, and the provisioning job an approval started logs the approval's id.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::csrf_in;
use crate::processes::{Served, SimProc, seed};

/// The log's lines, each parsed as JSON (a line that is not fails the test).
fn json_lines(served: &Served) -> Vec<Value> {
    let text = std::fs::read_to_string(&served.proc.log).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

/// Whether any of `line`'s spans (named `span`) carries `req_id`.
fn in_span_with(line: &Value, span: &str, req_id: &str) -> bool {
    line["spans"].as_array().is_some_and(|spans| spans.iter().any(|s| s["name"] == span && s["req_id"] == req_id))
}

#[tokio::test]
async fn json_logs_follow_one_request_id_from_the_approval_into_the_provisioning_job() {
    let s = seed().await;
    let sim = SimProc::start(s.dir.path(), 30, 30, 0).await;
    let env = [("PROXDESK_LOG_FORMAT", "json"), ("PROXDESK_LOG", "info,jobs=debug")];
    let served = Served::start_with(&s, &sim.url, "json", &env).await;

    // A refused sign-in logs inside its request.
    let browser = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let html = browser.get(format!("{}/login", served.url)).send().await.unwrap().text().await.unwrap();
    let form = [("username", "alice"), ("password", "wrong-password"), ("csrf", &csrf_in(&html).unwrap())];
    let r = browser.post(format!("{}/login", served.url)).form(&form).send().await.unwrap();
    assert_ne!(r.status(), StatusCode::SEE_OTHER);
    let login_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();

    let body = json!({"template_id": s.templates[0], "hostname": "json-logs", "cores": 1, "memory_mib": 512,
        "disk_gib": 8, "purpose": "testing"});
    let id = served.post(&s.user_token, "/api/v1/requests", body).await["id"].as_i64().unwrap();
    let approve = format!("{}/api/v1/requests/{id}/approve", served.url);
    let r = served.api.post(approve).bearer_auth(&s.admin_token).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let approval_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(approval_id, login_id);
    let done = served.settle(&s.user_token, id, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "ready", "{done}");

    let lines = json_lines(&served);
    assert!(
        lines.iter().any(|l| in_span_with(l, "request", &login_id) && l["message"] == "login failed"),
        "the refused sign-in's line carries its request id {login_id}:\n{}",
        served.proc.tail()
    );
    let job_lines: Vec<&Value> = lines.iter().filter(|l| in_span_with(l, "job", &approval_id)).collect();
    assert!(
        job_lines.iter().any(|l| l["spans"].as_array().unwrap().iter().any(|s| s["kind"] == "provision")),
        "the provisioning job logs the approval's request id {approval_id}:\n{}",
        served.proc.tail()
    );
    // The id is stored with the job too.
    let filter = jobs::JobFilter { kind: Some("provision".into()), ..Default::default() };
    let stored = jobs::list(&s.db, &filter).await.unwrap();
    assert!(stored.iter().any(|j| j.request_id.as_deref() == Some(approval_id.as_str())), "{stored:?}");
}
