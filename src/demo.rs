//! `proxdesk demo`: a ready-to-click instance with seeded users, catalog and quotas.

use crate::cli::CliError;
use crate::config::RawSettings;
use crate::domain::guest::MachineKind;
use crate::domain::roles::Role;
use crate::integrations::pve::sim::{
    GeneratedInventory, SimConfig, SimSsh, SimSshConfig, Simulator, admin_acl, write_client_key,
};
use crate::secrets::Secret;
use crate::services::{self, catalog::TemplateInput};
use crate::startup::{App, shutdown_signal};

/// The API token the demo's simulated cluster accepts.
const DEMO_TOKEN_ID: &str = "proxdesk@pve!demo";

/// The catalog a demo starts with: one entry of each kind; the VMIDs, storages, bridges and ISOs
/// match the PVE simulator's default inventory.
pub fn demo_templates() -> Vec<TemplateInput> {
    let base = TemplateInput {
        default_cores: 1,
        max_cores: 4,
        default_memory_mib: 1024,
        max_memory_mib: 8192,
        default_disk_gib: 8,
        max_disk_gib: 64,
        full_clone: true,
        enabled: true,
        ..Default::default()
    };
    let lxc = |name: &str, description: &str, node: &str, vmid: i64| TemplateInput {
        name: name.into(),
        description: description.into(),
        node: node.into(),
        vmid,
        net0: services::catalog::DEFAULT_NET0.into(),
        finish_mode: "node".into(),
        ..base.clone()
    };
    let vm_bridges = vec!["vmbr0".to_owned(), "vmbr1".to_owned()];
    vec![
        lxc("Debian 13", "Plain Debian 13 (trixie) container", "pve1", 9000),
        lxc("Ubuntu 24.04", "Ubuntu 24.04 LTS container", "pve2", 9001),
        lxc("Alpine 3.22", "Small Alpine Linux container", "pve3", 9002),
        TemplateInput {
            name: "Debian 12 cloud VM".into(),
            description: "Debian 12 virtual machine from a cloud image; your login and key arrive through cloud-init"
                .into(),
            kind: MachineKind::QemuCloudInit,
            node: "pve1".into(),
            vmid: 9100,
            storages: vec!["local-lvm".into()],
            bridges: vm_bridges.clone(),
            finish_mode: "none".into(),
            ..base.clone()
        },
        TemplateInput {
            name: "Install from an ISO".into(),
            description: "A blank virtual machine that boots an installer; install the system in the console".into(),
            kind: MachineKind::QemuIso,
            nodes: vec!["pve1".into(), "pve2".into()],
            storages: vec!["local-lvm".into()],
            bridges: vm_bridges,
            isos: [
                "debian-12.8.0-amd64-netinst.iso",
                "ubuntu-24.04.1-live-server-amd64.iso",
                "alpine-virt-3.20.3-x86_64.iso",
            ]
            .iter()
            .map(|f| format!("local:iso/{f}"))
            .collect(),
            ostype: "l26".into(),
            finish_mode: "none".into(),
            default_disk_gib: 16,
            ..base
        },
    ]
}

/// Runs the demo; `guests` fills the simulated cluster with a generated, realistic inventory.
pub async fn run(guests: Option<usize>) -> Result<(), CliError> {
    let mut raw = RawSettings::load()?;
    crate::telemetry::init_as(raw.get("log").unwrap_or("info"), raw.get("log_format"));
    crate::cli::warn_unknown_keys(&raw);
    // A temporary data dir unless one is configured; kept for the life of the process.
    let _tmp;
    if raw.get("data_dir").is_none() {
        let dir = std::env::temp_dir().join(format!("proxdesk-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        raw.set("data_dir", dir.display().to_string());
        _tmp = TempDir(dir);
    }
    let mut realm_lines = Vec::new();
    // A simulated Proxmox VE cluster in-process, unless a real one is configured.
    let _sim = if raw.get("pve_url").is_none() {
        let secret = crate::secrets::random_token(24);
        let realm_password = crate::secrets::random_password(12);
        realm_lines.push(format!(
            "  student@pve and teacher@pve (Proxmox VE realm \"pve\", teacher is in proxdesk-admins) password: {}",
            realm_password.expose()
        ));
        let mut config = SimConfig::default().with_token(DEMO_TOKEN_ID, secret.expose(), admin_acl());
        config.generated = guests.map(|guests| GeneratedInventory { guests, seed: 1 });
        // A Proxmox VE realm account who already uses two VMs through a pool, and a teacher whose PVE
        // group makes them a proxdesk admin: both sign in with their PVE passwords.
        config
            .access
            .user("student@pve", realm_password.expose())
            .user("teacher@pve", realm_password.expose())
            .group("students", &["student@pve"])
            .group("proxdesk-admins", &["teacher@pve"])
            .pool("lab", &[100, 101])
            .acl("/pool/lab", "@students", "PVEVMUser", true);
        raw.set("pve_realm_login", "true");
        if raw.get("pve_admin_groups").is_none() {
            raw.set("pve_admin_groups", "proxdesk-admins");
        }
        let sim = Simulator::start(config).await?;
        raw.set("pve_url", sim.url());
        raw.set("pve_token", format!("{DEMO_TOKEN_ID}={}", secret.expose()));
        // The nodes' SSH side too, so new containers are finished (login, password, key) as on a cluster.
        let data_dir = std::path::PathBuf::from(raw.get("data_dir").unwrap_or("proxdesk-data"));
        std::fs::create_dir_all(&data_dir)?;
        let key_file = data_dir.join("demo_ssh_key");
        let public = match std::fs::read_to_string(key_file.with_extension("pub")) {
            Ok(public) => public.trim().to_owned(),
            Err(_) => write_client_key(&key_file, "proxdesk-demo")?,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let ssh = SimSsh::start(listener, &sim, SimSshConfig::new(vec![public])).await?;
        for (name, value) in ssh.settings(&key_file) {
            raw.set(&name["PROXDESK_".len()..].to_ascii_lowercase(), value);
        }
        println!(
            "simulated Proxmox VE cluster on {} (LXC templates 9000-9002, VM template 9100, ISOs on local), SSH on {}",
            sim.url(),
            ssh.addr()
        );
        println!("  {}", sim.summary());
        Some((sim, ssh))
    } else {
        None
    };
    // A simulated Apache Guacamole too, synced every 30 s, unless a real one is configured.
    let guac_sim = if raw.get("guac_url").is_none() {
        use crate::integrations::guacamole::sim::{SimConfig as GuacSimConfig, Simulator as GuacSimulator};
        let sim = GuacSimulator::start(GuacSimConfig::default()).await?;
        raw.set("guac_url", sim.url());
        raw.set("guac_user", "guacadmin");
        raw.set("guac_password", "guacadmin");
        raw.set("guac_create_users", "true");
        if raw.get("guac_schedule") == Some("0 */5 * * * *") {
            raw.set("guac_schedule", "*/30 * * * * *");
        }
        println!("simulated Apache Guacamole on {} (guacadmin/guacadmin)", sim.url());
        Some(sim)
    } else {
        None
    };
    let settings = raw.into_settings()?;
    crate::http::assets::ensure_vendor(&crate::http::assets::static_dir(&settings));
    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    let public_url = settings.public_url.clone();
    let data_dir = settings.data_dir.clone();
    let app = App::build(settings, listener).await?;
    let db = &app.state().db;

    let mut lines = Vec::new();
    for (name, role) in [("chief", Role::Admin), ("alice", Role::User)] {
        let password = crate::secrets::random_password(12);
        match services::users::find_by_name(db, name).await? {
            None => {
                let new = services::users::NewUser { username: name.into(), role, password: Some(password.clone()) };
                services::users::create(db, None, new).await?;
            }
            Some(u) => {
                let hash = crate::secrets::hash_password(&password).map_err(|e| CliError::Usage(e.to_string()))?;
                use sea_orm::{ActiveModelTrait, ActiveValue::Set};
                let mut row: entities::user::ActiveModel = u.into();
                row.password_hash = Set(hash);
                row.update(db).await?;
            }
        }
        lines.push(format!("  {name:<6} {:<6} password: {}", role.as_str(), Secret::expose(&password)));
    }
    let admin = services::users::find_by_name(db, "chief").await?.expect("seeded");
    let admin: services::Actor = admin.try_into()?;
    if services::catalog::list(db, &admin, true).await?.is_empty() {
        for t in demo_templates() {
            services::catalog::create(db, None, None, t).await?;
        }
    }
    if guac_sim.is_some() {
        crate::workflows::guac_sync::enqueue_now(db).await?;
    }
    println!("proxdesk demo on {public_url}  (data in {})", data_dir.display());
    for l in lines.into_iter().chain(realm_lines) {
        println!("{l}");
    }
    app.run_until_stopped(shutdown_signal()).await?;
    Ok(())
}

/// Removes the demo's temporary data dir when the demo stops.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
