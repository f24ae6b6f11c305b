//! `proxdesk check`: the Proxmox VE cluster (version, nodes, catalog templates, privileges), then, where
//! they are configured, SSH to each online node and the Guacamole sync account. Exits non-zero when any
//! part fails, so it can gate a deployment.

use sea_orm::EntityTrait;

use super::{CliError, load_settings};
use crate::config::RawSettings;
use crate::domain::guest::{MachineKind, split_list};
use crate::integrations::guacamole::{self, GuacSettings};
use crate::integrations::pve::{self, check::CatalogTemplate};
use crate::integrations::ssh::{self, SshConfig};

pub(super) async fn run() -> Result<(), CliError> {
    let settings = load_settings()?;
    let config = pve::PveConfig::from_settings(&settings)?
        .ok_or_else(|| CliError::Usage("PROXDESK_PVE_URL is not set".into()))?;
    let client = pve::Client::new(config)?;
    let db = crate::db::connect(&settings.database_url, 1).await?;
    crate::db::migrate(&db).await?;
    let catalog: Vec<CatalogTemplate> = entities::template::Entity::find()
        .all(&db)
        .await?
        .into_iter()
        .map(|t| CatalogTemplate {
            kind: MachineKind::parse(&t.kind).unwrap_or(MachineKind::Lxc),
            nodes: split_list(&t.nodes),
            isos: split_list(&t.isos),
            name: t.name,
            node: t.node,
            vmid: t.vmid as u64,
        })
        .collect();
    let report = pve::check::run(&client, &catalog).await?;
    print!("{report}");
    let mut ok = report.all_ok();

    let raw = RawSettings(settings.raw.clone());
    if let Some(ssh_config) = SshConfig::from_settings(&raw)? {
        let online: Vec<String> =
            report.nodes.iter().filter(|n| n.status == "online").map(|n| n.node.clone()).collect();
        let ssh_report = ssh::check::run_checks(&ssh_config, &online).await;
        print!("{ssh_report}");
        ok &= ssh_report.all_ok();
    }
    if let Some(guac) = GuacSettings::from_raw(&raw).map_err(|e| CliError::Usage(e.to_string()))? {
        let guac_client = guacamole::Client::new(&guac).map_err(|e| CliError::Usage(e.to_string()))?;
        let guac_report = guacamole::check::run(&guac_client, &guac.url, &guac.user, guac.create_users).await;
        print!("{guac_report}");
        ok &= guac_report.all_ok();
    }
    if ok { Ok(()) } else { Err(CliError::Usage("some checks failed (see above)".into())) }
}
