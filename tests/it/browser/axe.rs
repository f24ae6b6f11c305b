//! axe-core (from npm, `node_modules/axe-core/axe.min.js`) run inside the page: WCAG 2.0 A/AA and
//! 2.1 AA rules, violations of impact serious or critical.

use std::path::PathBuf;

use serde::Deserialize;

use super::Chromium;

/// axe-core's source, read once per test.
pub struct Axe {
    source: String,
}

/// One failed rule with the elements it failed on.
#[derive(Debug, Deserialize)]
pub struct Violation {
    pub id: String,
    pub impact: Option<String>,
    pub help: String,
    pub targets: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let impact = self.impact.as_deref().unwrap_or("?");
        write!(f, "{} [{impact}] {}: {}", self.id, self.help, self.targets.join(" | "))
    }
}

const RUN: &str = r#"axe.run(document, {
  runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
  resultTypes: ["violations"]
}).then(r => JSON.stringify(r.violations
  .filter(v => v.impact === "serious" || v.impact === "critical")
  .map(v => ({id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map(n => n.target.join(" ") + " → " + (n.failureSummary || "").replace(/\s+/g, " ").slice(0, 200))}))))"#;

impl Axe {
    /// axe-core from `npm ci`; without it the test skips with a reason (or fails under
    /// `PROXDESK_REQUIRE_EXTERNAL=1`).
    pub fn load() -> Option<Axe> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node_modules/axe-core/axe.min.js");
        match std::fs::read_to_string(&path) {
            Ok(source) => Some(Axe { source }),
            Err(e) if std::env::var("PROXDESK_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") => {
                panic!("{} is required (PROXDESK_REQUIRE_EXTERNAL=1): {e}; run `npm ci`", path.display())
            }
            Err(e) => {
                eprintln!("SKIPPED: axe-core is not installed ({}: {e}); run `npm ci`", path.display());
                None
            }
        }
    }

    /// The serious and critical violations on the page open in `browser`.
    pub async fn check(&self, browser: &mut Chromium) -> Vec<Violation> {
        let present = browser.eval("typeof window.axe").await;
        if present != "object" {
            browser.eval(&self.source).await;
        }
        let found = browser.eval_async(RUN).await;
        serde_json::from_str(found.as_str().expect("axe answers JSON")).expect("axe's violations")
    }
}
