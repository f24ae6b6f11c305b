//! A headless Chromium driven over the DevTools protocol, just enough to open a page with a session
//! cookie and evaluate JavaScript in it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Chromium {
    child: Child,
    page: Ws,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Chromium headless on a throwaway profile, or `None` when it is not installed.
    pub async fn start() -> Option<Chromium> {
        let bin = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())?;
        let profile = tempfile::tempdir().expect("profile");
        let child = Command::new(bin)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        let port_file = profile.path().join("DevToolsActivePort");
        let until = Instant::now() + Duration::from_secs(30);
        let port: u16 = loop {
            if let Some(p) = std::fs::read_to_string(&port_file).ok().and_then(|t| t.lines().next()?.parse().ok()) {
                break p;
            }
            assert!(Instant::now() < until, "chromium did not open its DevTools port");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let list = reqwest::get(format!("http://127.0.0.1:{port}/json/list")).await.expect("DevTools targets");
        let targets: Value = list.json().await.expect("DevTools targets");
        let page = targets.as_array().and_then(|t| t.iter().find(|t| t["type"] == "page")).expect("a tab");
        let url = page["webSocketDebuggerUrl"].as_str().expect("its DevTools address").to_owned();
        let (page, _) = tokio_tungstenite::connect_async(url).await.expect("DevTools websocket");
        Some(Chromium { child, page, next_id: 1, _profile: profile })
    }

    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.page.send(Message::text(json!({"id": id, "method": method, "params": params}).to_string())).await.unwrap();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.page.next()).await.expect("DevTools answer");
            let Message::Text(text) = msg.unwrap().unwrap() else { continue };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                return v["result"].clone();
            }
        }
    }

    pub async fn eval(&mut self, expression: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true})).await;
        r["result"]["value"].clone()
    }

    /// Sets the session cookie for `base`, then opens `base + path`.
    pub async fn open(&mut self, base: &str, session: &str, path: &str) {
        self.call("Network.enable", json!({})).await;
        let cookie = json!({"name": "proxdesk_session", "value": session, "url": base, "httpOnly": true});
        self.call("Network.setCookie", cookie).await;
        self.call("Page.navigate", json!({"url": format!("{base}{path}")})).await;
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
