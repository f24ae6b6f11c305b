//! One DevTools connection to a page: commands get their answers through a reader task, and the
//! events that matter to a test (loads, document statuses, console errors, CSP violations) are kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The binding the page's reporting script calls for each `securitypolicyviolation` event.
pub const REPORT_BINDING: &str = "proxdeskReportViolation";

/// What the page did that a test may look at.
#[derive(Default)]
pub struct Seen {
    /// `load` events of the top document so far.
    pub loads: u64,
    /// The HTTP status of the last top-level document.
    pub document_status: Option<u16>,
    /// Console errors, uncaught exceptions and failed loads, as text.
    pub errors: Vec<String>,
    /// Content-Security-Policy violations, as text.
    pub violations: Vec<String>,
    /// Every resource answered: (url, type, encoded bytes) once its loading finished.
    pub resources: Vec<(String, String, u64)>,
    requests: HashMap<String, (String, String)>,
    // Documents answered with an error status on purpose (a 404 page, a form's 422): Chromium logs
    // them as failed loads, which they are not.
    error_documents: Vec<String>,
}

#[derive(Default)]
struct Shared {
    pending: HashMap<u64, oneshot::Sender<Value>>,
    seen: Seen,
}

pub struct DevTools {
    sink: SplitSink<Ws, Message>,
    shared: Arc<Mutex<Shared>>,
    next_id: u64,
}

impl DevTools {
    pub async fn connect(url: &str) -> DevTools {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("DevTools websocket");
        let (sink, mut stream) = ws.split();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let reader = shared.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                let mut shared = reader.lock().unwrap();
                match v["id"].as_u64() {
                    Some(id) => {
                        if let Some(tx) = shared.pending.remove(&id) {
                            let _ = tx.send(v);
                        }
                    }
                    None => record(&mut shared.seen, &v),
                }
            }
        });
        DevTools { sink, shared, next_id: 1 }
    }

    /// One DevTools command; panics on a protocol error.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let v = self.try_call(method, params).await;
        assert!(v.get("error").is_none(), "{method}: {v}");
        v["result"].clone()
    }

    /// One DevTools command; its whole answer, error included.
    pub async fn try_call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let (tx, rx) = oneshot::channel();
        self.shared.lock().unwrap().pending.insert(id, tx);
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.sink.send(Message::text(msg)).await.expect("DevTools send");
        tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .unwrap_or_else(|_| panic!("{method}: no DevTools answer in 60 s"))
            .expect("DevTools connection open")
    }

    /// Reads what the page did so far.
    pub fn seen<R>(&self, f: impl FnOnce(&mut Seen) -> R) -> R {
        f(&mut self.shared.lock().unwrap().seen)
    }
}

fn record(seen: &mut Seen, v: &Value) {
    let p = &v["params"];
    match v["method"].as_str().unwrap_or_default() {
        "Page.loadEventFired" => seen.loads += 1,
        "Network.requestWillBeSent" => {
            let kind = p["type"].as_str().unwrap_or_default().to_owned();
            let url = p["request"]["url"].as_str().unwrap_or_default().to_owned();
            seen.requests.insert(p["requestId"].as_str().unwrap_or_default().to_owned(), (url, kind));
        }
        "Network.responseReceived" if p["type"] == "Document" => {
            let status = p["response"]["status"].as_u64().map(|s| s as u16);
            seen.document_status = status;
            if status.is_some_and(|s| s >= 400) {
                seen.error_documents.push(p["response"]["url"].as_str().unwrap_or_default().to_owned());
            }
        }
        "Network.loadingFinished" => {
            if let Some((url, kind)) = seen.requests.remove(p["requestId"].as_str().unwrap_or_default()) {
                seen.resources.push((url, kind, p["encodedDataLength"].as_f64().unwrap_or(0.0) as u64));
            }
        }
        "Runtime.bindingCalled" if p["name"] == REPORT_BINDING => {
            seen.violations.push(p["payload"].as_str().unwrap_or_default().to_owned());
        }
        "Runtime.consoleAPICalled" if p["type"] == "error" => {
            let args: Vec<String> = p["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| a["value"].as_str().map(str::to_owned).unwrap_or_else(|| a["description"].to_string()))
                .collect();
            seen.errors.push(format!("console.error: {}", args.join(" ")));
        }
        "Runtime.exceptionThrown" => {
            let d = &p["exceptionDetails"];
            let text = d["exception"]["description"].as_str().or(d["text"].as_str()).unwrap_or_default();
            seen.errors.push(format!("uncaught: {text} ({}:{})", d["url"].as_str().unwrap_or(""), d["lineNumber"]));
        }
        "Log.entryAdded" if p["entry"]["level"] == "error" => {
            let e = &p["entry"];
            if e["source"] == "network" && seen.error_documents.iter().any(|d| e["url"] == d.as_str()) {
                return;
            }
            seen.errors.push(format!("{}: {} {}", e["source"], e["text"], e["url"].as_str().unwrap_or("")));
        }
        _ => {}
    }
}
