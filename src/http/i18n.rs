//! The translation layer: every visible string is looked up here by key.
//!
//! Catalogs are `key = text` lines in `i18n/<lang>.txt`, compiled in. `{name}` placeholders are filled
//! from the parameters. A key missing in a language falls back to English, then to the key itself.

use std::collections::HashMap;
use std::sync::OnceLock;

pub mod format;

pub const LANGUAGES: [&str; 3] = ["en", "fr", "it"];

const SOURCES: [(&str, &str); 3] =
    [("en", include_str!("i18n/en.txt")), ("fr", include_str!("i18n/fr.txt")), ("it", include_str!("i18n/it.txt"))];

fn catalogs() -> &'static HashMap<&'static str, HashMap<&'static str, &'static str>> {
    static CATALOGS: OnceLock<HashMap<&'static str, HashMap<&'static str, &'static str>>> = OnceLock::new();
    CATALOGS.get_or_init(|| {
        SOURCES
            .iter()
            .map(|(lang, text)| {
                let entries = text
                    .lines()
                    .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                    .filter_map(|l| l.split_once(" = "))
                    .map(|(k, v)| (k.trim(), v.trim()))
                    .collect();
                (*lang, entries)
            })
            .collect()
    })
}

/// The text of `key` in `lang`.
pub fn t(lang: &str, key: &str) -> String {
    lookup(lang, key).to_owned()
}

fn lookup<'a>(lang: &str, key: &'a str) -> &'a str {
    let c = catalogs();
    c.get(lang).and_then(|m| m.get(key)).or_else(|| c["en"].get(key)).copied().unwrap_or(key)
}

/// The text of `key` in `lang` with `{placeholders}` filled.
pub fn message<S: AsRef<str>>(lang: &str, key: &str, params: &[(&str, S)]) -> String {
    let mut text = lookup(lang, key).to_owned();
    for (name, value) in params {
        text = text.replace(&format!("{{{name}}}"), value.as_ref());
    }
    text
}

/// Picks the language: the user's choice, else the best match of `Accept-Language`, else English.
pub fn negotiate(user_choice: Option<&str>, accept_language: Option<&str>) -> &'static str {
    if let Some(l) = user_choice.and_then(|c| LANGUAGES.iter().find(|l| **l == c)) {
        return l;
    }
    let mut best: Option<(&'static str, f32)> = None;
    for part in accept_language.unwrap_or("").split(',') {
        let mut it = part.trim().split(';');
        let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        if let Some(lang) = LANGUAGES.iter().find(|l| **l == primary)
            && best.is_none_or(|(_, bq)| q > bq)
        {
            best = Some((lang, q));
        }
    }
    best.map(|(l, _)| l).unwrap_or("en")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_english_key() {
        let c = catalogs();
        for lang in LANGUAGES {
            let missing: Vec<_> = c["en"].keys().filter(|k| !c[lang].contains_key(*k)).collect();
            assert!(missing.is_empty(), "{lang} lacks {missing:?}");
        }
    }

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(message("en", "error.template_max", &[("max", "4")]), "at most 4 for this template");
    }

    #[test]
    fn language_negotiation() {
        assert_eq!(negotiate(None, Some("fr-CH, fr;q=0.9, en;q=0.8")), "fr");
        assert_eq!(negotiate(None, Some("de, it;q=0.5, en;q=0.4")), "it");
        assert_eq!(negotiate(Some("it"), Some("fr")), "it");
        assert_eq!(negotiate(None, Some("de")), "en");
        assert_eq!(negotiate(None, None), "en");
    }
}
