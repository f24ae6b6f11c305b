//! A real headless Chromium driven over the DevTools protocol: viewports (desktop, phone), light and
//! dark themes, logging in, clicking, typing, waiting for pages, and every console error or
//! Content-Security-Policy violation the pages cause.

mod axe;
mod devtools;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use axe::Axe;
use devtools::{DevTools, REPORT_BINDING, Seen};

use crate::external::require;

/// The screen a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewport {
    /// A laptop window, 1280×800.
    Desktop,
    /// A phone, 390×844 CSS pixels at 3× density, mobile layout.
    Phone,
}

impl Viewport {
    pub const BOTH: [Viewport; 2] = [Viewport::Desktop, Viewport::Phone];

    pub fn name(self) -> &'static str {
        match self {
            Viewport::Desktop => "desktop 1280×800",
            Viewport::Phone => "phone 390×844",
        }
    }
}

/// The colour scheme the page is told the system prefers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Light,
    Dark,
}

// Reports each CSP violation to the test through a DevTools binding, on every document.
const REPORT_VIOLATIONS: &str = r#"document.addEventListener("securitypolicyviolation", function (e) {
  window.proxdeskReportViolation(e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
    " at " + e.sourceFile + ":" + e.lineNumber + " (" + (e.sample || "") + ")");
});"#;

pub struct Chromium {
    child: Child,
    tools: DevTools,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts Chromium headless with a throwaway profile and attaches to its first tab, watching for
    /// console errors and CSP violations.
    pub async fn start() -> Option<Chromium> {
        let chromium = require("chromium", &["/usr/bin/chromium", "/usr/bin/chromium-browser"])?;
        proxdesk::integrations::install_tls_provider();
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(chromium)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
            .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
            .args(["--remote-debugging-port=0", "--window-size=1280,800", "--hide-scrollbars"])
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
        let tools = DevTools::connect(page["webSocketDebuggerUrl"].as_str().unwrap()).await;
        let mut browser = Chromium { child, tools, _profile: profile };
        for domain in ["Page.enable", "Network.enable", "Runtime.enable", "Log.enable"] {
            browser.call(domain, json!({})).await;
        }
        browser.call("Runtime.addBinding", json!({"name": REPORT_BINDING})).await;
        browser.call("Page.addScriptToEvaluateOnNewDocument", json!({"source": REPORT_VIOLATIONS})).await;
        browser.viewport(Viewport::Desktop).await;
        Some(browser)
    }

    /// One DevTools command; panics on a protocol error.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.tools.call(method, params).await
    }

    /// Evaluates `expression` in the page and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true})).await;
        if let Some(e) = r.get("exceptionDetails") {
            panic!("evaluating {expression:.200}: {}", e["exception"]["description"]);
        }
        r["result"]["value"].clone()
    }

    /// Evaluates `expression`, awaiting the promise it returns.
    pub async fn eval_async(&mut self, expression: &str) -> Value {
        let params = json!({"expression": expression, "returnByValue": true, "awaitPromise": true});
        let r = self.call("Runtime.evaluate", params).await;
        if let Some(e) = r.get("exceptionDetails") {
            panic!("evaluating {expression:.200}: {}", e["exception"]["description"]);
        }
        r["result"]["value"].clone()
    }

    /// Polls `expression` until it returns a string starting with `ok`, or panics with the last value.
    pub async fn wait_for(&mut self, expression: &str, timeout: Duration) -> String {
        let until = Instant::now() + timeout;
        loop {
            let params = json!({"expression": expression, "returnByValue": true});
            let answer = self.tools.try_call("Runtime.evaluate", params).await;
            // A navigation (a posted form, a reload) that commits while the expression runs destroys its
            // context: not an answer yet, ask again in the new document.
            let navigated = answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("navigated or closed") || m.contains("Cannot find context"));
            if !navigated {
                assert!(answer.get("error").is_none(), "Runtime.evaluate: {answer}");
            }
            if let Some(e) = answer["result"].get("exceptionDetails") {
                panic!("evaluating {expression:.200}: {}", e["exception"]["description"]);
            }
            let v = answer["result"]["result"]["value"].clone();
            let text = v.as_str().unwrap_or_default().to_owned();
            if text.starts_with("ok") {
                return text;
            }
            assert!(Instant::now() < until, "timed out waiting in the browser for {expression:.300}; last: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sizes the page as `viewport`.
    pub async fn viewport(&mut self, viewport: Viewport) {
        let metrics = match viewport {
            Viewport::Desktop => json!({"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": false}),
            Viewport::Phone => json!({"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": true}),
        };
        self.call("Emulation.setDeviceMetricsOverride", metrics).await;
        let touch = viewport == Viewport::Phone;
        self.call("Emulation.setTouchEmulationEnabled", json!({"enabled": touch, "maxTouchPoints": 5})).await;
    }

    /// Tells the page the system prefers `scheme` (and reduced motion, so nothing fades mid-check).
    pub async fn scheme(&mut self, scheme: Scheme) {
        let value = if scheme == Scheme::Dark { "dark" } else { "light" };
        let features = json!([{"name": "prefers-color-scheme", "value": value},
            {"name": "prefers-reduced-motion", "value": "reduce"}]);
        self.call("Emulation.setEmulatedMedia", json!({"features": features})).await;
    }

    /// Sets proxdesk's session cookie for `base`.
    pub async fn set_session(&mut self, base: &str, session: &str) {
        let cookie = json!({"name": "proxdesk_session", "value": session, "url": base, "httpOnly": true});
        self.call("Network.setCookie", cookie).await;
    }

    /// Sets proxdesk's session cookie for `base`, then opens `base + path` (without waiting).
    pub async fn open_logged_in(&mut self, base: &str, session: &str, path: &str) {
        self.set_session(base, session).await;
        self.call("Page.navigate", json!({"url": format!("{base}{path}")})).await;
    }

    /// Opens `url` and waits for it to load; returns the document's HTTP status.
    pub async fn goto(&mut self, url: &str) -> u16 {
        let loads = self.loads();
        let r = self.call("Page.navigate", json!({"url": url})).await;
        assert!(r.get("errorText").is_none(), "opening {url}: {r}");
        self.wait_load(loads).await;
        self.tools.seen(|s| s.document_status).unwrap_or(0)
    }

    fn loads(&self) -> u64 {
        self.tools.seen(|s| s.loads)
    }

    /// Waits for the document after the `before`-th load to finish loading.
    async fn wait_load(&mut self, before: u64) {
        let until = Instant::now() + Duration::from_secs(30);
        while self.loads() <= before {
            assert!(Instant::now() < until, "no page loaded within 30 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Logs in through the real login form at `base`.
    pub async fn login(&mut self, base: &str, username: &str, password: &str) {
        self.goto(&format!("{base}/login")).await;
        self.type_into("input[name=username]", username).await;
        self.type_into("input[name=password]", password).await;
        self.click_and_wait("form[action='/login'] button[type=submit], form[action='/login'] [type=submit]").await;
        let path = self.eval("location.pathname").await;
        assert_ne!(path, "/login", "login of {username} failed: {}", self.text("main").await);
    }

    /// Where `selector`'s element is on screen (scrolled into view), or why it cannot be clicked.
    async fn click_point(&mut self, selector: &str) -> Result<(f64, f64), String> {
        let script = format!(
            r#"(() => {{
  const el = document.querySelector({sel});
  if (!el) return "missing";
  el.scrollIntoView({{block: "center", inline: "center"}});
  const r = el.getBoundingClientRect();
  if (!r.width || !r.height) return "not displayed";
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  const hit = document.elementFromPoint(x, y);
  if (!hit || !(el === hit || el.contains(hit) || hit.contains(el)))
    return "covered by " + (hit ? hit.outerHTML.slice(0, 120) : "nothing");
  return [x, y];
}})()"#,
            sel = serde_json::to_string(selector).unwrap()
        );
        match self.eval(&script).await {
            Value::Array(xy) => Ok((xy[0].as_f64().unwrap(), xy[1].as_f64().unwrap())),
            other => Err(other.as_str().unwrap_or_default().to_owned()),
        }
    }

    /// Clicks the middle of `selector`'s element with the mouse, as a person would; panics when it is
    /// missing, not displayed, or covered by another element.
    pub async fn click(&mut self, selector: &str) {
        let (x, y) = self.click_point(selector).await.unwrap_or_else(|why| panic!("cannot click {selector}: {why}"));
        for kind in ["mousePressed", "mouseReleased"] {
            let e = json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1});
            self.call("Input.dispatchMouseEvent", e).await;
        }
    }

    /// Whether `selector`'s element could be clicked now (present, displayed, not covered).
    pub async fn clickable(&mut self, selector: &str) -> bool {
        self.click_point(selector).await.is_ok()
    }

    /// Clicks `selector` and waits for the page it leads to.
    pub async fn click_and_wait(&mut self, selector: &str) {
        let loads = self.loads();
        self.click(selector).await;
        self.wait_load(loads).await;
    }

    /// Replaces the value of the field `selector` by typing `text` into it.
    pub async fn type_into(&mut self, selector: &str, text: &str) {
        let script = format!(
            r#"(() => {{ const el = document.querySelector({sel}); if (!el) return "missing";
  el.focus(); el.value = ""; return "ok"; }})()"#,
            sel = serde_json::to_string(selector).unwrap()
        );
        assert_eq!(self.eval(&script).await, "ok", "no field {selector}");
        if !text.is_empty() {
            self.call("Input.insertText", json!({"text": text})).await;
        }
    }

    /// The visible text of `selector`'s first element ("" when there is none).
    pub async fn text(&mut self, selector: &str) -> String {
        let script =
            format!("(document.querySelector({}) || {{}}).innerText || \"\"", serde_json::to_string(selector).unwrap());
        self.eval(&script).await.as_str().unwrap_or_default().to_owned()
    }

    /// How many elements match `selector`.
    pub async fn count(&mut self, selector: &str) -> u64 {
        let script = format!("document.querySelectorAll({}).length", serde_json::to_string(selector).unwrap());
        self.eval(&script).await.as_u64().unwrap_or(0)
    }

    /// The current path of the page.
    pub async fn path(&mut self) -> String {
        self.eval("location.pathname").await.as_str().unwrap_or_default().to_owned()
    }

    /// Console errors and CSP violations since the last call, emptied.
    pub fn take_problems(&mut self) -> Vec<String> {
        self.tools.seen(|s| {
            let mut out: Vec<String> = s.violations.drain(..).map(|v| format!("CSP violation: {v}")).collect();
            out.append(&mut s.errors);
            out
        })
    }

    /// Panics when the pages caused console errors or CSP violations since the last check.
    pub fn assert_clean(&mut self, context: &str) {
        let problems = self.take_problems();
        assert!(problems.is_empty(), "{context}: the page reported problems:\n  {}", problems.join("\n  "));
    }

    /// The resources loaded so far (url, type, transferred bytes), emptied.
    #[allow(dead_code)] // for benches/pages.rs, which shares this module
    pub fn take_resources(&mut self) -> Vec<(String, String, u64)> {
        self.tools.seen(|s: &mut Seen| std::mem::take(&mut s.resources))
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
