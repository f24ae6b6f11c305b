//! `proxdesk check`: the Proxmox VE cluster (version, nodes, catalog templates, privileges), then, where
//! they are configured, SSH to each online node, the Guacamole sync account and the SMTP server. Exits non-zero when any
//! part fails, so it can gate a deployment.

use sea_orm::EntityTrait;

use super::{CliError, load_settings};
use crate::config::RawSettings;
use crate::domain::guest::{MachineKind, split_list};
use crate::integrations::guacamole::{self, GuacSettings};
use crate::integrations::mail::{MailSettings, Mailer};
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
    ok &= check_mail(&raw, &settings.public_url).await?;
    if ok { Ok(()) } else { Err(CliError::Usage("some checks failed (see above)".into())) }
}

/// Connects to the SMTP server as notification mails would (TLS, login) and sends nothing; without
/// `smtp_host`, says mail is off.
async fn check_mail(raw: &RawSettings, public_url: &str) -> Result<bool, CliError> {
    let Some(mail) = MailSettings::from_settings(raw)? else {
        println!("mail: off (PROXDESK_SMTP_HOST is not set; no notification mail is sent)");
        return Ok(true);
    };
    let target = format!("{}:{} ({})", mail.host, mail.port, mail.tls.as_str());
    let host = url::Url::parse(public_url).ok().and_then(|u| u.host_str().map(str::to_owned));
    let outcome = match Mailer::new(&mail, host.as_deref().unwrap_or("localhost")) {
        Ok(mailer) => mailer.test_connection().await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(true) => {
            println!("mail: ok, {target} greets us as sender {}", mail.from);
            Ok(true)
        }
        Ok(false) => {
            println!("mail: FAILED, {target} did not answer NOOP");
            Ok(false)
        }
        Err(e) => {
            println!("mail: FAILED, {target}: {e}");
            Ok(false)
        }
    }
}
