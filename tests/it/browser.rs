//! A real headless Chromium driven over the DevTools protocol: enough to set a cookie, open a page,
//! type, and evaluate JavaScript in it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::console_fixtures::Ws;
use crate::external::require;

pub struct Chromium {
    child: Child,
    page: Ws,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts Chromium headless with a throwaway profile and attaches to its first tab.
    pub async fn start() -> Option<Chromium> {
        let chromium = require("chromium", &["/usr/bin/chromium", "/usr/bin/chromium-browser"])?;
        proxdesk::integrations::install_tls_provider();
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .args(["--remote-debugging-port=0", "--window-size=1024,768"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        // Chromium writes its DevTools port into the profile once it listens.
        let port_file = profile.path().join("DevToolsActivePort");
        let until = Instant::now() + Duration::from_secs(30);
        let port: u16 = loop {
            if let Some(p) = std::fs::read_to_string(&port_file).ok().and_then(|t| t.lines().next()?.parse().ok()) {
                break p;
            }
            assert!(Instant::now() < until, "chromium did not open its DevTools port");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let targets: Value =
            reqwest::get(format!("http://127.0.0.1:{port}/json/list")).await.unwrap().json().await.unwrap();
        let page = targets.as_array().unwrap().iter().find(|t| t["type"] == "page").expect("a tab");
        let url = page["webSocketDebuggerUrl"].as_str().unwrap();
        let (page, _) = tokio_tungstenite::connect_async(url).await.expect("DevTools websocket");
        Some(Chromium { child, page, next_id: 1, _profile: profile })
    }

    /// One DevTools command; events arriving meanwhile are skipped.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.page.send(Message::text(msg)).await.unwrap();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.page.next()).await.expect("DevTools answer");
            let Message::Text(text) = msg.unwrap().unwrap() else { continue };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates `expression` in the page and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true})).await;
        r["result"]["value"].clone()
    }

    /// Polls `expression` until it returns a string starting with `ok`, or panics with the last value.
    pub async fn wait_for(&mut self, expression: &str, timeout: Duration) -> String {
        let until = Instant::now() + timeout;
        loop {
            let v = self.eval(expression).await;
            let text = v.as_str().unwrap_or_default().to_owned();
            if text.starts_with("ok") {
                return text;
            }
            assert!(Instant::now() < until, "timed out waiting in the browser; last: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sets proxdesk's session cookie for `base`, then opens `base + path`.
    pub async fn open_logged_in(&mut self, base: &str, session: &str, path: &str) {
        self.call("Network.enable", json!({})).await;
        let cookie = json!({"name": "proxdesk_session", "value": session, "url": base, "httpOnly": true});
        self.call("Network.setCookie", cookie).await;
        self.call("Page.enable", json!({})).await;
        self.call("Page.navigate", json!({"url": format!("{base}{path}")})).await;
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
