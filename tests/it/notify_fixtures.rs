//! The notification tests' real outside parts: an SMTP server (aiosmtpd, `tests/smtp_sink.py`) on a
//! random loopback port, optionally with STARTTLS under a certificate the test makes, and the desk wired
//! to it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proxdesk::domain::roles::Role;
use proxdesk::services::Actor;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::Value;

use crate::guac_e2e::Desk;
use crate::helpers::TestApp;

/// A mail the SMTP server accepted, as `smtp_sink.py` wrote it down.
#[derive(Debug, Clone)]
pub struct Received {
    pub rcpt_to: Vec<String>,
    pub from: String,
    pub subject: String,
    pub body: String,
    pub tls: bool,
}

/// aiosmtpd on 127.0.0.1, writing each mail it accepts into a directory.
pub struct Smtp {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Smtp {
    /// A plain relay; `tls`: (certificate PEM, key PEM) to offer and require STARTTLS with.
    pub fn start(tls: Option<(&str, &str)>) -> Option<Smtp> {
        // The python3 that pip installs into (first on PATH, as CI's `pip install`), else the system's.
        let path = std::env::var("PATH").unwrap_or_default();
        let candidates =
            path.split(':').map(|d| PathBuf::from(d).join("python3")).chain([PathBuf::from("/usr/bin/python3")]);
        let imports = |p: &PathBuf| {
            Command::new(p).args(["-c", "import aiosmtpd"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
        };
        let Some(python) = candidates.filter(|p| p.exists()).find(imports) else {
            if std::env::var("PROXDESK_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
                panic!("python3 with aiosmtpd is required (PROXDESK_REQUIRE_EXTERNAL=1): pip install aiosmtpd");
            }
            eprintln!("SKIPPED: no python3 with the package aiosmtpd (pip install aiosmtpd)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py");
        let mut cmd = Command::new(python);
        cmd.arg(script).args(["--port", &port.to_string(), "--dir"]).arg(dir.path());
        if let Some((cert, key)) = tls {
            std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
            std::fs::write(dir.path().join("key.pem"), key).unwrap();
            cmd.arg("--cert").arg(dir.path().join("cert.pem")).arg("--key").arg(dir.path().join("key.pem"));
        }
        // Its log (a refused TLS handshake prints a traceback) stays beside the mails.
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = cmd.stdout(Stdio::null()).stderr(log).spawn().expect("python3 starts");
        let until = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "the SMTP server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Smtp { port, dir, child })
    }

    /// Every mail received so far.
    pub fn mails(&self) -> Vec<Received> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            out.push(Received {
                rcpt_to: v["rcpt_to"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_owned()).collect(),
                from: s("from"),
                subject: s("subject"),
                body: s("body").replace("\r\n", "\n"),
                tls: v["tls"].as_bool().unwrap(),
            });
        }
        out
    }

    /// The mails to `to`.
    pub fn mails_to(&self, to: &str) -> Vec<Received> {
        self.mails().into_iter().filter(|m| m.rcpt_to.iter().any(|r| r == to)).collect()
    }

    /// Waits for a mail to `to` whose subject contains `subject`.
    pub async fn wait_for(&self, to: &str, subject: &str) -> Received {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(m) = self.mails_to(to).into_iter().find(|m| m.subject.contains(subject)) {
                return m;
            }
            assert!(Instant::now() < until, "no mail to {to} about {subject:?}; got {:#?}", self.mails());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A desk on the PVE simulator (finishing containers over its SSH side, so machines get passwords)
/// sending mail through `smtp` (plain, loopback), retrying fast.
pub async fn desk_mailing(smtp: &Smtp, configure: impl FnOnce(&mut proxdesk::config::RawSettings)) -> Desk {
    let port = smtp.port.to_string();
    crate::guac_e2e::desk_with(|raw| {
        raw.set("smtp_host", "127.0.0.1");
        raw.set("smtp_port", port);
        raw.set("smtp_tls", "none");
        raw.set("mail_from", "proxdesk <desk@example.org>");
        raw.set("notify_backoff_ms", "50");
        raw.set("smtp_timeout_secs", "5");
        configure(raw);
    })
    .await
}

/// A user with an e-mail address and a language (`None`: the desk's default).
pub async fn person(
    app: &TestApp,
    name: &str,
    role: Role,
    email: Option<&str>,
    language: Option<&str>,
) -> (Actor, String) {
    let (actor, _) = app.user(name, role).await;
    let row = entities::user::Entity::find_by_id(actor.id).one(&app.db).await.unwrap().unwrap();
    let mut row: entities::user::ActiveModel = row.into();
    row.email = Set(email.map(str::to_owned));
    row.language = Set(language.map(str::to_owned));
    row.update(&app.db).await.unwrap();
    let token = app.token(&actor).await;
    (actor, token)
}

/// Waits until no job is queued or running.
pub async fn settle_jobs(app: &TestApp) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let busy = jobs::entity::Entity::find()
            .filter(jobs::entity::Column::State.is_in(["queued", "running"]))
            .count(&app.db)
            .await
            .unwrap();
        if busy == 0 {
            return;
        }
        assert!(Instant::now() < until, "jobs still running");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The jobs of `kind`.
pub async fn jobs_of(app: &TestApp, kind: &str) -> Vec<jobs::entity::Model> {
    jobs::entity::Entity::find().filter(jobs::entity::Column::Kind.eq(kind)).all(&app.db).await.unwrap()
}

/// A CA and a server certificate it signed for 127.0.0.1: (CA PEM, server certificate PEM, server key PEM).
pub fn self_signed_chain() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::CommonName, "proxdesk test mail CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_pem, cert.pem(), key.serialize_pem())
}
