//! The admin workspace: home, request queue, users, catalog, quotas, audit log, Guacamole sync and
//! webhooks.

pub mod adopt;
pub mod approval_rules;
pub mod audit;
pub mod catalog;
pub mod groups;
pub mod guacamole;
pub mod home;
pub mod identities;
pub mod queue;
pub mod quotas;
pub mod sign_in;
pub mod users;
pub mod webhooks;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

/// A number from a query string where an empty value (`template_id=`, as a filter form sends "any")
/// means none.
pub fn empty_as_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<String>::deserialize(d)?.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// Seconds from `t` to now (never negative), for `| duration`.
pub fn age_secs(t: DateTime<Utc>) -> i64 {
    (Utc::now() - t).num_seconds().max(0)
}

/// The first `max` characters of `text`, with an ellipsis when cut.
pub fn clip(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", text[..at].trim_end()),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn clipping_keeps_short_texts_and_cuts_long_ones_on_characters() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("ééééé ééééé", 6), "ééééé…");
    }
}
