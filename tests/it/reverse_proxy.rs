//! proxdesk behind a real nginx running `deploy/nginx.conf` as shipped, but for TLS: the test serves the
//! site's two server blocks over plain HTTP on loopback ports and points the upstream at the test's
//! server. Through it: the redirect to https, signing in, the client's address as nginx saw it, the live
//! pages' event stream (with gzip on for every type, as some sites have it) and a console websocket.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use proxdesk::integrations::pve::sim::SimConfig;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::console_fixtures::{Shell, Ws, app_on, ready_machine, shell_echoes};
use crate::external::require;
use crate::helpers::Browser;
use crate::live::Sse;
use crate::processes::free_port;

const SITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx.conf");

struct Nginx {
    /// The site's https server block, served over HTTP here.
    port: u16,
    /// The block that sends plain HTTP to https.
    redirect_port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped site with only its TLS lines, listen addresses and upstream address changed.
fn site_for_test(port: u16, redirect_port: u16, upstream: &str) -> String {
    let mut replaced = 0;
    let mut out = String::new();
    let site = std::fs::read_to_string(SITE).unwrap();
    for line in site.lines() {
        let t = line.trim();
        if t.starts_with("ssl_") || t.starts_with("listen [::]") {
            continue;
        }
        let line = match t {
            "listen 443 ssl;" => format!("    listen 127.0.0.1:{port};"),
            "listen 80;" => format!("    listen 127.0.0.1:{redirect_port};"),
            "server 127.0.0.1:8080;" => format!("    server {upstream};"),
            _ => line.to_owned(),
        };
        replaced += usize::from(line.trim() != t);
        out.push_str(&line);
        out.push('\n');
    }
    assert_eq!(replaced, 3, "the shipped site changed shape; adjust this test's rewriting");
    out
}

impl Nginx {
    fn start(port: u16, redirect_port: u16, upstream: &str) -> Option<Nginx> {
        let nginx = require("nginx", &["/usr/sbin/nginx"])?;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Workers run as nginx's unprivileged user and write their temporary files here.
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
        std::fs::write(d.join("site.conf"), site_for_test(port, redirect_port, upstream)).unwrap();
        let main = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n\
             http {{\n  access_log off;\n  gzip on;\n  gzip_types *;\n  gzip_min_length 1;\n\
             client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  include {d}/site.conf;\n}}\n",
            d = d.display()
        );
        std::fs::write(d.join("nginx.conf"), main).unwrap();
        let out = Command::new(&nginx).arg("-t").arg("-p").arg(d).arg("-c").arg(d.join("nginx.conf")).output().unwrap();
        assert!(out.status.success(), "nginx -t: {}", String::from_utf8_lossy(&out.stderr));
        let child = Command::new(&nginx)
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "nginx did not listen: {}", error_log(d));
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Nginx { port, redirect_port, child, _dir: dir })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn error_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
}

/// Opens a console websocket at `url` as a browser on `origin` would.
async fn websocket(url: &str, cookie: &str, origin: &str) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = url.replacen("http://", "ws://", 1).into_client_request().unwrap();
    let h = req.headers_mut();
    h.insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    h.insert("Cookie", format!("proxdesk_session={cookie}").parse().unwrap());
    h.insert("Origin", origin.parse().unwrap());
    tokio_tungstenite::connect_async(req).await.map(|(ws, _)| ws)
}

#[tokio::test]
async fn the_example_nginx_site_carries_pages_streams_and_consoles() {
    let Some(_) = require("nginx", &["/usr/sbin/nginx"]) else { return };
    let Some(shell) = Shell::start() else { return };
    let (port, redirect_port) = (free_port(), free_port());
    let public = format!("http://127.0.0.1:{port}");
    let sim = SimConfig { term_backend: Some(([127, 0, 0, 1], shell.port).into()), ..SimConfig::for_tests() };
    let (app, _sim) = app_on(sim, |raw, _| {
        raw.set("public_url", public.clone());
        raw.set("trusted_proxies", "127.0.0.1");
    })
    .await;
    let upstream = app.address.trim_start_matches("http://").to_owned();
    let nginx = Nginx::start(port, redirect_port, &upstream).expect("nginx was found above");
    let (id, _, cookie) = ready_machine(&app).await;

    // Plain HTTP is sent to https.
    let browser = app.browser();
    let r = browser.client.get(format!("http://127.0.0.1:{}/login", nginx.redirect_port)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(r.headers()["location"], "https://127.0.0.1/login");

    // Signing in through the proxy; a guess with a made-up X-Forwarded-For is counted against the
    // address nginx saw, not the one claimed.
    let proxied = Browser { client: browser.client.clone(), base: nginx.url() };
    let csrf = proxied.csrf("/login").await;
    let r = proxied
        .client
        .post(format!("{}/login", nginx.url()))
        .header("X-Forwarded-For", "203.0.113.9")
        .form(&[("username", "alice"), ("password", "not-her-password"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "the form again, with its error");
    let scopes: Vec<String> =
        entities::login_throttle::Entity::find().all(&app.db).await.unwrap().into_iter().map(|t| t.scope).collect();
    assert!(scopes.contains(&"addr:127.0.0.1".to_owned()), "{scopes:?}");
    assert!(!scopes.iter().any(|s| s.contains("203.0.113.9")), "{scopes:?}");
    let r = proxied.login("alice", "alice-password-123").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = proxied.get("/").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("lab-1"), "the dashboard shows alice's machine");

    // The dashboard's event stream delivers its first event at once, gzip or not; proxdesk itself asks
    // proxies not to buffer it.
    let direct = app.logged_in("alice", "alice-password-123").await;
    let r = direct.get("/live/dashboard").await;
    assert_eq!(r.headers()["x-accel-buffering"], "no");
    drop(r);
    let mut sse = Sse::open(&proxied, "/live/dashboard").await;
    sse.next_change(Duration::from_secs(5)).await.expect("a fingerprint on connect, through nginx");

    // The terminal websocket, upgraded by nginx; the Origin check still holds behind it.
    let path = format!("{}/machines/{id}/terminal/ws", nginx.url());
    let mut ws = websocket(&path, &cookie, &public).await.expect("the websocket opens through nginx");
    shell_echoes(&mut ws, "proxied").await;
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    match websocket(&path, &cookie, "http://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status().as_u16(), 403),
        other => panic!("a foreign Origin was not refused: {:?}", other.map(|_| ())),
    }
}
