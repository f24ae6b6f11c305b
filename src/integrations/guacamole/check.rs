//! `proxdesk check`, Guacamole part: the sync account logs in, its data source is there, and it holds
//! the system permissions the sync uses (reference §6).

use std::fmt;

use super::Client;

/// System permissions the sync needs: connections and the groups they sit in, and the owners' accounts
/// when it creates them. `ADMINISTER` implies them all.
pub fn required_permissions(create_users: bool) -> Vec<&'static str> {
    let mut wanted = vec!["CREATE_CONNECTION", "CREATE_CONNECTION_GROUP"];
    if create_users {
        wanted.push("CREATE_USER");
    }
    wanted
}

/// The Guacamole part of the report; `Display` prints it.
#[derive(Debug, Clone)]
pub struct GuacReport {
    /// `PROXDESK_GUAC_URL`.
    pub url: String,
    /// The sync's account.
    pub user: String,
    /// The data source the sync writes to, or why logging in failed.
    pub login: Result<String, String>,
    /// `(permission, held)`; empty when the login failed.
    pub permissions: Vec<(&'static str, bool)>,
    /// Whether the account is a Guacamole administrator.
    pub administer: bool,
}

impl GuacReport {
    /// Whether the login worked and every needed permission is held.
    pub fn all_ok(&self) -> bool {
        self.login.is_ok() && self.permissions.iter().all(|p| p.1)
    }
}

/// Logs in with the sync's account and reads its own effective permissions; logs out afterwards.
pub async fn run(client: &Client, url: &str, user: &str, create_users: bool) -> GuacReport {
    let mut report = GuacReport {
        url: url.to_owned(),
        user: user.to_owned(),
        login: Ok(String::new()),
        permissions: vec![],
        administer: false,
    };
    let data_source = match client.login().await {
        Ok(ds) => ds,
        Err(e) => {
            report.login = Err(e.to_string());
            return report;
        }
    };
    match client.own_effective_permissions().await {
        Ok(set) => {
            let has = |p: &str| set.system_permissions.iter().any(|s| s == p);
            report.administer = has("ADMINISTER");
            report.permissions =
                required_permissions(create_users).into_iter().map(|p| (p, report.administer || has(p))).collect();
            report.login = Ok(data_source);
        }
        Err(e) => report.login = Err(format!("logged in, but its permissions could not be read: {e}")),
    }
    if let Err(e) = client.logout().await {
        tracing::debug!(error = %e, "guacamole logout after the check failed");
    }
    report
}

impl fmt::Display for GuacReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "\nGUACAMOLE {} as {}", self.url, self.user)?;
        match &self.login {
            Err(why) => return writeln!(f, "login failed: {why}"),
            Ok(ds) => writeln!(f, "login ok, data source {ds}")?,
        }
        writeln!(f, "SYSTEM PERMISSION         STATE")?;
        if self.administer {
            writeln!(f, "{:<25} ok (implies the rest)", "ADMINISTER")?;
        }
        for (permission, held) in &self.permissions {
            writeln!(f, "{permission:<25} {}", if *held { "ok" } else { "missing" })?;
        }
        Ok(())
    }
}
